package database_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
)

// Two write transactions that read and write different rows of a small
// table by key both commit, on the first attempt, though each runs while
// the other is open. On PostgreSQL the planner would read a small table
// with a sequential scan, which at SERIALIZABLE locks the whole table:
// each transaction would then have read what the other wrote, and one of
// them would be aborted.
func TestWritesToDifferentRowsOfASmallTableDoNotConflict(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, shared *database.DB) {
		ctx := context.Background()
		createCounters(t, shared, 3)
		// One attempt each: a conflict is an error, not a retry.
		db, err := database.Open(ctx, shared.Pool.Config().ConnString(), database.Options{MaxAttempts: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if db.Dialect.Engine == database.PostgreSQL {
			// The premise: outside a write transaction the planner scans.
			var plan string
			if err := db.Pool.QueryRow(ctx, `EXPLAIN SELECT n FROM counters WHERE k = 1`).Scan(&plan); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(plan, "Seq Scan") {
				t.Fatalf("this test needs a table the planner scans; the plan is %q", plan)
			}
		}

		// The subquery reads the row as a balance check would.
		const readAndWrite = `UPDATE counters SET n = n + 1 WHERE k = $1 AND (SELECT n FROM counters WHERE k = $1) >= 0`
		writeTx := func(ctx context.Context, k int64, run func(func() error) error) error {
			return db.WriteTx(ctx, func(tx pgx.Tx) error {
				return run(func() error { _, err := tx.Exec(ctx, readAndWrite, k); return err })
			})
		}
		writeBatches := func(ctx context.Context, k int64, run func(func() error) error) error {
			return db.WriteBatches(ctx, func(tx *database.BatchTx) error {
				if err := run(func() error {
					b := &pgx.Batch{}
					b.Queue(readAndWrite, k)
					return tx.Send(ctx, b, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
				}); err != nil {
					return err
				}
				return tx.SendAndCommit(ctx, &pgx.Batch{}, func(pgx.BatchResults) error { return nil })
			})
		}
		for _, tc := range []struct {
			name  string
			write func(ctx context.Context, k int64, run func(func() error) error) error
			k1    int64
			k2    int64
		}{
			{"WriteTx", writeTx, 1, 2},
			{"WriteBatches", writeBatches, 2, 3},
		} {
			t.Run(tc.name, func(t *testing.T) {
				// first reads and writes k1, then waits while second
				// reads and writes k2; second commits after first.
				firstWrote, secondWrote, firstDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
				go func() {
					firstDone <- tc.write(ctx, tc.k1, func(readWrite func() error) error {
						err := readWrite()
						close(firstWrote)
						if err != nil {
							return err
						}
						<-secondWrote
						return nil
					})
				}()
				<-firstWrote
				secondErr := tc.write(ctx, tc.k2, func(readWrite func() error) error {
					err := readWrite()
					close(secondWrote)
					if err != nil {
						return err
					}
					return <-firstDone
				})
				if secondErr != nil {
					t.Fatalf("a write transaction conflicted with one on another row: %v", secondErr)
				}
			})
		}
		var sum int64
		if err := db.Pool.QueryRow(ctx, `SELECT sum(n) FROM counters`).Scan(&sum); err != nil {
			t.Fatal(err)
		}
		if sum != 4 {
			t.Errorf("the counters sum to %d; want 4 (four committed increments of one)", sum)
		}
	})
}
