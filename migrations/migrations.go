// Package migrations holds the database schema as ordered migrations,
// embedded in the binary and applied with goose at every start of loyaltyd.
//
// The rule: every migration must be safe to run again after a partial
// apply. On CockroachDB a schema change is not transactional with the rest
// of its transaction: from v25.1 (autocommit_before_ddl) each DDL statement
// commits on its own, and before that a DDL whose validation failed at
// COMMIT left the transaction's other writes committed. So goose's record
// of a migration (its row in goose_db_version) and the schema change it
// records can part: a crash between them leaves the change without the
// record, and the next start runs the migration again over it. Therefore:
//
//   - one schema change per statement;
//   - IF NOT EXISTS (IF EXISTS on the way down) wherever the engine allows;
//   - a catalogue check before a DDL statement that has no such form and
//     fails when repeated (ADD CONSTRAINT, renames): those are Go
//     migrations, since PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS;
//   - no DDL and data writes in one transaction: SQL files with DDL run
//     outside one (-- +goose NO TRANSACTION), and data writes are written
//     so that a second run changes nothing (absolute values, NOT EXISTS);
//   - DDL that differs by engine lives in a Go migration that asks the
//     database which engine it is.
//
// Several instances may start at once. Apply holds goose's table lock, a
// lease on one row of goose_lock (CockroachDB has no advisory locks), while
// it migrates: one instance migrates, the others wait and then find
// nothing to do.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/pressly/goose/v3"
)

//go:embed *.sql
var sqlFiles embed.FS

// Apply brings the schema of the database behind pool up to date. While
// another instance migrates the same database it waits (at most lockWait,
// 5 minutes), then finds that instance's work done.
func Apply(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	provider, err := newProvider(sqlDB, logger)
	if err != nil {
		return err
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range results {
		path := r.Source.Path
		if path == "" { // a Go migration of this package
			path = fmt.Sprintf("migrations (Go migration %d)", r.Source.Version)
		}
		logger.Info("migration applied", "version", r.Source.Version, "path", path, "duration", r.Duration.String())
	}
	return nil
}

// newProvider is the one goose set-up of this package, for Apply and for
// the tests that take a schema down and up again.
func newProvider(db *sql.DB, logger *slog.Logger) (*goose.Provider, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	locker, err := newClusterLocker(logger)
	if err != nil {
		return nil, err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, sqlFiles,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(dialectMigrations...),
		goose.WithSlog(logger),
		goose.WithLocker(locker),
	)
	if err != nil {
		return nil, fmt.Errorf("load migrations: %w", err)
	}
	return provider, nil
}

var dialectMigrations = []*goose.Migration{
	goose.NewGoMigration(4, &goose.GoFunc{RunDB: postingsByAccountIndex}, &goose.GoFunc{RunDB: dropPostingsByAccountIndex}),
	goose.NewGoMigration(5, &goose.GoFunc{RunDB: balanceRowsRoomForUpdates}, &goose.GoFunc{RunDB: balanceRowsDefaultFill}),
	goose.NewGoMigration(13, &goose.GoFunc{RunDB: partnerTransactionsByTime}, &goose.GoFunc{RunDB: dropPartnerTransactionsByTime}),
}

// partnerTransactionsByTime serves a partner's settlement and activity.
// Within a busy partner its second column only grows, which on CockroachDB
// is a single hot range: there it is hash-sharded.
func partnerTransactionsByTime(ctx context.Context, db *sql.DB) error {
	cockroach, err := isCockroach(ctx, db)
	if err != nil {
		return err
	}
	// By business time for a partner's activity; by recording time for its
	// settlements, which use the books' time basis.
	for _, ddl := range []string{
		`CREATE INDEX IF NOT EXISTS partner_transactions_by_time
			ON partner_transactions (partner_id, effective_at DESC, transaction_id DESC)`,
		`CREATE INDEX IF NOT EXISTS partner_transactions_by_recorded_at
			ON partner_transactions (partner_id, recorded_at)`,
	} {
		if cockroach {
			ddl += ` USING HASH`
		}
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}

func dropPartnerTransactionsByTime(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS partner_transactions_by_recorded_at`); err != nil {
		return err
	}
	_, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS partner_transactions_by_time`)
	return err
}

// balanceRowsRoomForUpdates leaves free space in account_balances pages on
// PostgreSQL, so that moving a balance is a HOT update that writes no new
// index entry: at SERIALIZABLE an index insert would conflict with the
// page-level predicate locks of every transaction that read a neighbouring
// balance, and abort one of them. CockroachDB has no such pages: nothing to
// do there.
func balanceRowsRoomForUpdates(ctx context.Context, db *sql.DB) error {
	return onPostgreSQL(ctx, db, `ALTER TABLE account_balances SET (fillfactor = 50)`)
}

func balanceRowsDefaultFill(ctx context.Context, db *sql.DB) error {
	return onPostgreSQL(ctx, db, `ALTER TABLE account_balances RESET (fillfactor)`)
}

func onPostgreSQL(ctx context.Context, db *sql.DB, ddl string) error {
	cockroach, err := isCockroach(ctx, db)
	if err != nil || cockroach {
		return err
	}
	_, err = db.ExecContext(ctx, ddl)
	return err
}

// postingsByAccountIndex serves statements and point-in-time balances. For a
// programme account its second column only grows, which on CockroachDB is a
// single hot range: there it is hash-sharded.
func postingsByAccountIndex(ctx context.Context, db *sql.DB) error {
	cockroach, err := isCockroach(ctx, db)
	if err != nil {
		return err
	}
	ddl := `CREATE INDEX IF NOT EXISTS postings_by_account
		ON postings (account_code, recorded_at DESC, transaction_id DESC, seq DESC)`
	if cockroach {
		ddl += ` USING HASH`
	}
	_, err = db.ExecContext(ctx, ddl)
	return err
}

func dropPostingsByAccountIndex(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS postings_by_account`)
	return err
}

func isCockroach(ctx context.Context, db *sql.DB) (bool, error) {
	var version string
	if err := db.QueryRowContext(ctx, `SELECT version()`).Scan(&version); err != nil {
		return false, fmt.Errorf("detect engine: %w", err)
	}
	return database.DetectDialect(version).Engine == database.CockroachDB, nil
}
