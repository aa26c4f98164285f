package migrations

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/pressly/goose/v3"
)

// Migration 17, once a SQL file that added the constraint in a transaction
// with goose's record of it. That is atomic on PostgreSQL only: on
// CockroachDB the constraint could commit without the record (and every
// later start's ADD CONSTRAINT then failed on the name). Databases that
// ran the SQL file keep their record of version 17 and never run this;
// one that runs it over the constraint finds it and does nothing.
//
// Migration 20 runs the same check again, for a CockroachDB database older
// than v25.1 that ran the SQL file: there a failed validation of the
// constraint committed goose's record of 17 without the constraint.
func init() {
	dialectMigrations = append(dialectMigrations,
		goose.NewGoMigration(17, &goose.GoFunc{RunDB: heldPointsNeverNegative}, &goose.GoFunc{RunDB: dropHeldPointsNeverNegative}),
		goose.NewGoMigration(20, &goose.GoFunc{RunDB: heldPointsNeverNegative}, &goose.GoFunc{RunDB: nothingToUndo}))
}

// nothingToUndo is the down step of a migration that only ensures what an
// earlier one made: the earlier one's down step undoes it.
func nothingToUndo(context.Context, *sql.DB) error { return nil }

// heldPointsNeverNegative: held points never go below zero. A release of
// more than is held would be a bug that makes points available twice, so
// the database refuses it. A constraint of its own, not part of migration
// 16's column, so that databases which ran migration 16 get it too.
//
// PostgreSQL has no ADD CONSTRAINT IF NOT EXISTS, hence the catalogue
// check. On CockroachDB the validation of existing rows is a job that
// outlives a crash of this process; should a second run come while it is
// still going (the constraint not yet in the catalogue), its ADD
// CONSTRAINT fails on the name and the start after that finds it.
func heldPointsNeverNegative(ctx context.Context, db *sql.DB) error {
	const table, name = "account_balances", "held_points_not_negative"
	exists, err := constraintExists(ctx, db, table, name)
	if err != nil || exists {
		return err
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE account_balances
		ADD CONSTRAINT held_points_not_negative CHECK (held_points >= 0)`); err != nil {
		return fmt.Errorf("add constraint %s to %s: %w", name, table, err)
	}
	return nil
}

func dropHeldPointsNeverNegative(ctx context.Context, db *sql.DB) error {
	if _, err := db.ExecContext(ctx, `ALTER TABLE account_balances DROP CONSTRAINT IF EXISTS held_points_not_negative`); err != nil {
		return fmt.Errorf("drop constraint held_points_not_negative: %w", err)
	}
	return nil
}

// constraintExists reports whether the table of that name in the current
// schema has a constraint of that name. It reads pg_catalog, which both
// engines serve, joined by name rather than through a ::regclass cast.
func constraintExists(ctx context.Context, db *sql.DB, table, constraint string) (bool, error) {
	var n int
	err := db.QueryRowContext(ctx, `SELECT count(*)
		FROM pg_catalog.pg_constraint AS c
		JOIN pg_catalog.pg_class AS t ON t.oid = c.conrelid
		JOIN pg_catalog.pg_namespace AS s ON s.oid = t.relnamespace
		WHERE s.nspname = current_schema() AND t.relname = $1 AND c.conname = $2`, table, constraint).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("look up constraint %s on %s: %w", constraint, table, err)
	}
	return n > 0, nil
}
