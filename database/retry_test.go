package database_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
)

// createCounters creates the table counters (k, n) with counters 1 to
// count at 0, and its statistics.
func createCounters(t *testing.T, db *database.DB, count int) {
	t.Helper()
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE counters (k INT8 PRIMARY KEY, n INT8 NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO counters SELECT k.id, 0 FROM generate_series(1, $1) AS k (id)`, count); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE counters`); err != nil {
		t.Fatal(err)
	}
}

// A write transaction that read a row another transaction then changed
// and committed fails to serialize (40001); it is run again as a whole,
// reads the committed value and commits. Nothing of the failed attempt
// remains.
func TestAWriteThatLosesARaceIsRunAgainAsAWhole(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		createCounters(t, db, 2)
		// increment reads counter k, lets the other writer in on the first
		// attempt, then writes what it read plus one.
		increment := func(k int64, attempts *int, read func(string, ...any) (int64, error), write func(string, ...any) error) error {
			*attempts++
			n, err := read(`SELECT n FROM counters WHERE k = $1`, k)
			if err != nil {
				return err
			}
			if *attempts == 1 {
				if _, err := db.Pool.Exec(ctx, `UPDATE counters SET n = n + 10 WHERE k = $1`, k); err != nil {
					return err
				}
			}
			return write(`UPDATE counters SET n = $2 WHERE k = $1`, k, n+1)
		}
		for _, tc := range []struct {
			name string
			k    int64
			run  func(attempts *int) error
		}{
			{"WriteTx", 1, func(attempts *int) error {
				return db.WriteTx(ctx, func(tx pgx.Tx) error {
					return increment(1, attempts,
						func(sql string, args ...any) (n int64, err error) { return n, tx.QueryRow(ctx, sql, args...).Scan(&n) },
						func(sql string, args ...any) error { _, err := tx.Exec(ctx, sql, args...); return err })
				})
			}},
			{"WriteBatches", 2, func(attempts *int) error {
				return db.WriteBatches(ctx, func(tx *database.BatchTx) error {
					var written bool
					err := increment(2, attempts,
						func(sql string, args ...any) (n int64, err error) {
							b := &pgx.Batch{}
							b.Queue(sql, args...)
							return n, tx.Send(ctx, b, func(br pgx.BatchResults) error { return br.QueryRow().Scan(&n) })
						},
						func(sql string, args ...any) error {
							b := &pgx.Batch{}
							b.Queue(sql, args...)
							written = true
							return tx.SendAndCommit(ctx, b, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
						})
					if err == nil && !written {
						t.Error("the increment did not write")
					}
					return err
				})
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var attempts int
				if err := tc.run(&attempts); err != nil {
					t.Fatalf("the write did not commit: %v", err)
				}
				if attempts != 2 {
					t.Errorf("the write ran %d times; want 2 (a conflict, then a clean run)", attempts)
				}
				var n int64
				if err := db.Pool.QueryRow(ctx, `SELECT n FROM counters WHERE k = $1`, tc.k).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 11 {
					t.Errorf("counter %d is %d; want 11 (the other writer's 10, then our 1 on top)", tc.k, n)
				}
			})
		}
	})
}

// On PostgreSQL a retried batch transaction runs alone among the
// process's batch transactions: it waits for those in flight, so that two
// writes which keep failing each other's serializability check (its
// predicate locks cover whole index pages) do not meet again on the retry.
func TestARetriedBatchTransactionWaitsForTheOthersInFlight(t *testing.T) {
	ctx := context.Background()
	db := dbtest.PostgreSQL(t) // the wait is its own
	var mu sync.Mutex
	var events []string
	event := func(e string) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}
	commit := func(tx *database.BatchTx) error {
		return tx.SendAndCommit(ctx, &pgx.Batch{}, func(pgx.BatchResults) error { return nil })
	}

	// other is in flight (its first attempt) until it is let go.
	otherStarted, letOtherGo, otherDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		otherDone <- db.WriteBatches(ctx, func(tx *database.BatchTx) error {
			close(otherStarted)
			<-letOtherGo
			event("other ends")
			return commit(tx)
		})
	}()
	<-otherStarted

	// retried fails its first attempt with a serialization failure.
	retriedDone := make(chan error, 1)
	var attempts atomic.Int32
	go func() {
		retriedDone <- db.WriteBatches(ctx, func(tx *database.BatchTx) error {
			if attempts.Add(1) == 1 {
				event("retried fails")
				return &pgconn.PgError{Code: "40001", Message: "could not serialize access"}
			}
			event("retried runs again")
			return commit(tx)
		})
	}()
	// However long other stays in flight, the retry waits for it.
	for attempts.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	close(letOtherGo)
	if err := <-otherDone; err != nil {
		t.Fatal(err)
	}
	if err := <-retriedDone; err != nil {
		t.Fatal(err)
	}
	want := []string{"retried fails", "other ends", "retried runs again"}
	if !slices.Equal(events, want) {
		t.Errorf("events %q; want %q", events, want)
	}
}
