package migrations

import (
	"context"
	"database/sql"

	"github.com/pressly/goose/v3"
)

// The webhooks' Go migration (see 00023_webhooks.sql).
func init() {
	dialectMigrations = append(dialectMigrations,
		goose.NewGoMigration(24, &goose.GoFunc{RunDB: webhookDeliveryIndexes}, &goose.GoFunc{RunDB: dropWebhookDeliveryIndexes}),
		goose.NewGoMigration(29, &goose.GoFunc{RunDB: webhookRequests}, &goose.GoFunc{RunDB: dropWebhookRequests}))
}

// webhookDeliveryIndexes: the due deliveries of an endpoint, oldest due
// first (what a dispatcher leases), and an endpoint's deliveries by
// position (its delivery log). Within an endpoint the second column only
// grows, and a programme has few endpoints, which on CockroachDB is a
// hot range each: there they are hash-sharded.
func webhookDeliveryIndexes(ctx context.Context, db *sql.DB) error {
	hash, err := hashSharded(ctx, db)
	if err != nil {
		return err
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

// webhookRequests is the log of the requests that delivered streamed
// events (package webhooks): one row per request, not per event. A
// request's events are positions of one window of the endpoint's stream
// (first_position to last_position, fewer than a window apart); the
// events that failed, waited or were sent again have rows of their own in
// webhook_deliveries instead, never both. Within an endpoint
// first_position only grows: on CockroachDB the primary key is
// hash-sharded.
func webhookRequests(ctx context.Context, db *sql.DB) error {
	hash, err := hashSharded(ctx, db)
	if err != nil {
		return err
	}
	_, err = db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS webhook_requests (
		endpoint_id    TEXT NOT NULL REFERENCES webhook_endpoints (id),
		first_position INT8 NOT NULL,
		last_position  INT8 NOT NULL,
		-- The events the request delivered, by position.
		positions      INT8[] NOT NULL,
		status_code    INT4 NOT NULL,
		latency_us     INT8 NOT NULL,
		attempted_at   TIMESTAMPTZ NOT NULL,
		recorded_at    TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (endpoint_id, first_position)`+hash+`
	)`)
	return err
}

func dropWebhookRequests(ctx context.Context, db *sql.DB) error {
	_, err := db.ExecContext(ctx, `DROP TABLE IF EXISTS webhook_requests`)
	return err
}

// hashSharded is the clause that hash-shards an index whose leading
// columns only grow: " USING HASH" on CockroachDB, nothing on PostgreSQL.
func hashSharded(ctx context.Context, db *sql.DB) (string, error) {
	cockroach, err := isCockroach(ctx, db)
	if err != nil || !cockroach {
		return "", err
	}
	return ` USING HASH`, nil
}
