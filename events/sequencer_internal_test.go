package events

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
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

// A sequencer numbers a subject's events from the numbers it remembers
// only while no other process has sequenced since; after another has, it
// reads them again, so that a subject's numbers run on without a gap or a
// repeat whichever process numbers them. An event sequenced already and
// written to the outbox again (a notice a job wrote twice) is left out,
// by a step written again the careful way.
func TestASequencerNumbersSubjectsOnAcrossProcessesAndLeavesOutRepeats(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		clock := testclock.New(time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC))
		a, b := NewSequencer(db, clock.Now, "a"), NewSequencer(db, clock.Now, "b")
		write := func(id uuid.UUID, subject string) {
			t.Helper()
			if _, err := db.Pool.Exec(ctx, `INSERT INTO event_outbox (id, type, subject, occurred_at, recorded_at, ordinal, data)
				VALUES ($1, 'loyalty.points.earned.v1', $2, $3, $3, 1, '{}')`, id, subject, clock.Now()); err != nil {
				t.Fatal(err)
			}
			clock.Advance(time.Millisecond)
		}
		step := func(s *Sequencer, want int) {
			t.Helper()
			if n, err := s.Step(ctx, 100); err != nil || n != want {
				t.Fatalf("%s's step moved %d (%v), want %d", s.holder, n, err, want)
			}
		}
		handOver := func() { clock.Advance(SequencerLease + time.Second) }
		repeated := uuid.New()

		write(uuid.New(), "m1")
		write(repeated, "m2")
		step(a, 2) // m1 1, m2 1
		handOver()
		write(uuid.New(), "m1")
		step(b, 1) // m1 2, by b
		handOver()
		write(uuid.New(), "m1")
		write(uuid.New(), "m2")
		step(a, 2) // m1 3 (read again: b numbered m1 since), m2 2
		write(repeated, "m2")
		write(uuid.New(), "m2")
		step(a, 2) // the repeat left out; m2 3

		if a.carefulSteps != 1 || b.carefulSteps != 0 {
			t.Errorf("careful steps: a %d, b %d; want 1 (the repeat), 0", a.carefulSteps, b.carefulSteps)
		}
		rows, err := db.Pool.Query(ctx, `SELECT subject, seq, position FROM events ORDER BY position`)
		if err != nil {
			t.Fatal(err)
		}
		got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
			var subject string
			var seq, position int64
			err := r.Scan(&subject, &seq, &position)
			return fmt.Sprintf("%d:%s/%d", position, subject, seq), err
		})
		if err != nil {
			t.Fatal(err)
		}
		want := "[1:m1/1 2:m2/1 3:m1/2 4:m1/3 5:m2/2 6:m2/3]"
		if fmt.Sprint(got) != want {
			t.Errorf("events (position:subject/seq) %v, want %s", got, want)
		}
		var waiting int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM event_outbox`).Scan(&waiting); err != nil || waiting != 0 {
			t.Errorf("%d rows left in the outbox (%v), want none: the repeat is deleted with the step", waiting, err)
		}
	})
}
