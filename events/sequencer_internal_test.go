package events

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
)

// The sequencer reads the outbox by its index even when the outbox's heap
// is as large as a past backlog and its statistics, after a vacuum, count
// a few live rows: the plan PostgreSQL chooses for its reading then, left
// alone, reads and sorts the whole heap (checked first, so that the test
// stands on the case it is about). The plan is of the statements the
// sequencer sends, EXPLAIN before its reading; readOutbox then runs them.
func TestTheSequencerReadsABloatedOutboxByItsIndex(t *testing.T) {
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
	plan := func(engine database.Engine) string {
		var out []string
		err := db.LockedTx(ctx, func(tx pgx.Tx) error {
			out = nil
			b, at := outboxRead(engine, `EXPLAIN `+outboxReadSQL, 1000)
			br := tx.SendBatch(ctx, b)
			for i := range b.Len() {
				if i != at {
					if _, err := br.Exec(); err != nil {
						_ = br.Close()
						return err
					}
					continue
				}
				rows, err := br.Query()
				if err == nil {
					out, err = pgx.CollectRows(rows, pgx.RowTo[string])
				}
				if err != nil {
					_ = br.Close()
					return err
				}
			}
			if err := br.Close(); err != nil {
				return err
			}
			if _, err := readOutbox(ctx, tx, engine, 1000); err != nil {
				return err
			}
			// The rest of the step plans as it would.
			var setting string
			if err := tx.QueryRow(ctx, `SHOW enable_seqscan`).Scan(&setting); err != nil || setting != "on" {
				return fmt.Errorf("enable_seqscan %q after the reading (%v), want on", setting, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	// As CockroachDB's reading is: no setting of PostgreSQL's.
	if p := plan(database.CockroachDB); !strings.Contains(p, "Seq Scan") {
		t.Fatalf("left alone, PostgreSQL reads the bloated outbox by its index: the case is not reproduced\n%s", p)
	}
	if p := plan(database.PostgreSQL); !strings.Contains(p, "Index Scan using event_outbox_by_recorded_at") {
		t.Fatalf("the sequencer's reading of the outbox:\n%s\nwant its index", p)
	}
}
