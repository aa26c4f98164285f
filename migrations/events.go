package migrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// The events' Go migration (see 00021_events.sql).
func init() {
	dialectMigrations = append(dialectMigrations,
		goose.NewGoMigration(22, &goose.GoFunc{RunDB: eventOutboxByRecordedAt}, &goose.GoFunc{RunDB: dropEventOutboxByRecordedAt}))
}

// eventOutboxByRecordedAt is the sequencer's reading order. Every write
// inserts at its end, which on CockroachDB is a single hot range: there
// it is hash-sharded.
func eventOutboxByRecordedAt(ctx context.Context, db *sql.DB) error {
	cockroach, err := isCockroach(ctx, db)
	if err != nil {
		return err
	}
	ddl := `CREATE INDEX IF NOT EXISTS event_outbox_by_recorded_at ON event_outbox (recorded_at, ordinal, id)`
	if cockroach {
		ddl += ` USING HASH`
	}
	_, err = db.ExecContext(ctx, ddl)
	return err
}

func dropEventOutboxByRecordedAt(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `DROP INDEX IF EXISTS event_outbox_by_recorded_at`)
	return err
}
