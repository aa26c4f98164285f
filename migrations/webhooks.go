package migrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// The webhooks' Go migration (see 00023_webhooks.sql).
func init() {
	dialectMigrations = append(dialectMigrations,
		goose.NewGoMigration(24, &goose.GoFunc{RunDB: webhookDeliveryIndexes}, &goose.GoFunc{RunDB: dropWebhookDeliveryIndexes}))
}

// webhookDeliveryIndexes: the due deliveries of an endpoint, oldest due
// first (what a dispatcher leases), and an endpoint's deliveries by
// position (its delivery log). Within an endpoint the second column only
// grows, and a programme has few endpoints, which on CockroachDB is a
// hot range each: there they are hash-sharded.
func webhookDeliveryIndexes(ctx context.Context, db *sql.DB) error {
	cockroach, err := isCockroach(ctx, db)
	if err != nil {
		return err
	}
	hash := ""
	if cockroach {
		hash = ` USING HASH`
	}
	for _, ddl := range []string{
		`CREATE INDEX IF NOT EXISTS webhook_deliveries_due
			ON webhook_deliveries (endpoint_id, next_attempt_at)` + hash + ` WHERE status = 'pending' AND NOT blocked`,
		`CREATE INDEX IF NOT EXISTS webhook_deliveries_by_position
			ON webhook_deliveries (endpoint_id, position)` + hash,
	} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}

func dropWebhookDeliveryIndexes(ctx context.Context, db *sql.DB) error {
	for _, ddl := range []string{
		`DROP INDEX IF EXISTS webhook_deliveries_by_position`,
		`DROP INDEX IF EXISTS webhook_deliveries_due`,
	} {
		if _, err := db.ExecContext(ctx, ddl); err != nil {
			return err
		}
	}
	return nil
}
