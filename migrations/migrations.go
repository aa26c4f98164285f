// Package migrations holds the database schema as ordered migrations,
// embedded in the binary and applied with goose.
//
// SQL files are portable between PostgreSQL and CockroachDB; each runs
// outside a transaction with idempotent statements (IF NOT EXISTS), so a
// migration interrupted half-way is simply run again. The few statements
// whose DDL differs by engine are Go migrations below that ask the
// database which engine it is.
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

// Apply brings the schema of the database behind pool up to date.
func Apply(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	sqlDB := stdlib.OpenDBFromPool(pool)
	defer sqlDB.Close()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sqlFiles,
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(dialectMigrations...),
		goose.WithSlog(logger),
	)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range results {
		logger.Info("migration applied", "version", r.Source.Version, "path", r.Source.Path, "duration", r.Duration)
	}
	return nil
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
