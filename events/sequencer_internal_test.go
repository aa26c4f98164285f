package events

import (
	"context"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
)

// A sequencer's step finds the outbox rows it reads and deletes by the
// outbox's indexes even when the outbox's heap is as large as a past
// backlog and its statistics, after a vacuum, count a few live rows: the
// plans PostgreSQL chooses then, left alone, read the whole heap (checked
// first, so that the test stands on the case it is about).
func TestASequencerStepReadsABloatedOutboxByItsIndexes(t *testing.T) {
	db := dbtest.New(t)
	if db.Dialect.Engine != database.PostgreSQL {
		t.Skip("a PostgreSQL planner case")
	}
	ctx := context.Background()
	for _, sql := range []string{
		`INSERT INTO event_outbox (id, type, subject, occurred_at, recorded_at, ordinal, data)
			SELECT gen_random_uuid(), 'loyalty.points.earned.v1', 'm' || (i % 1000), now(), now(), i, '{"padding": "` + strings.Repeat("x", 400) + `"}'
			FROM generate_series(1, 30000) AS g (i)`,
		`DELETE FROM event_outbox WHERE ordinal > 50`,
		`VACUUM ANALYZE event_outbox`,
	} {
		if _, err := db.Pool.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]uuid.UUID, 400)
	for i := range ids {
		ids[i] = uuid.New()
	}
	for _, tc := range []struct {
		name  string
		sql   string
		args  []any
		index string
	}{
		{"the oldest rows", outboxReadSQL, []any{1000}, "Index Scan using event_outbox_by_recorded_at"},
		{"the rows sequenced", outboxDeleteSQL, []any{ids}, "event_outbox_pkey"},
	} {
		plan := func(engine database.Engine) string {
			var out []string
			err := db.LockedTx(ctx, func(tx pgx.Tx) error {
				if err := byIndexes(ctx, tx, engine); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, `EXPLAIN `+tc.sql, tc.args...)
				if err != nil {
					return err
				}
				out, err = pgx.CollectRows(rows, pgx.RowTo[string])
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return strings.Join(out, "\n")
		}
		// As on CockroachDB: no setting of PostgreSQL's.
		if p := plan(database.CockroachDB); !strings.Contains(p, "Seq Scan") {
			t.Fatalf("%s: left alone, PostgreSQL finds them by an index: the case is not reproduced\n%s", tc.name, p)
		}
		if p := plan(database.PostgreSQL); !strings.Contains(p, tc.index) || strings.Contains(p, "Seq Scan") {
			t.Fatalf("%s: the step's plan is\n%s\nwant %s", tc.name, p, tc.index)
		}
	}
}
