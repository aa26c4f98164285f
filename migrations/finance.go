package migrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// The finance reports' Go migration, kept in its own file (registered from
// init) so that it touches nothing of the list above.
func init() {
	dialectMigrations = append(dialectMigrations,
		goose.NewGoMigration(14, &goose.GoFunc{RunDB: transactionsByRecordedAtIndex}, &goose.GoFunc{RunDB: dropTransactionsByRecordedAtIndex}))
}

// transactionsByRecordedAtIndex lets the finance jobs and reports read one
// period of the journal (a day to roll up or seal, the open tail after the
// last closed day) without scanning it all. Its leading column only grows,
// which on CockroachDB is a single hot range: there it is hash-sharded.
func transactionsByRecordedAtIndex(ctx context.Context, db *sql.DB) error {
	cockroach, err := isCockroach(ctx, db)
	if err != nil {
		return err
	}
	ddl := `CREATE INDEX IF NOT EXISTS transactions_by_recorded_at ON transactions (recorded_at)`
	if cockroach {
		ddl += ` USING HASH`
	}
	_, err = db.ExecContext(ctx, ddl)
	return err
}

func dropTransactionsByRecordedAtIndex(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS transactions_by_recorded_at`)
	return err
}
