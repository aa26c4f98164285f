package database_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/pgfault"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
)

// A commit whose outcome the service cannot know, because the connection
// died after the server committed or because the server answered 40003
// (result is ambiguous, as CockroachDB can), is counted as ambiguous and
// the transaction is run again: an idempotent write then finds what the
// first attempt committed, and the row is written once.
func TestACommitWithAnUnknownOutcomeIsRetriedAndWritesOnce(t *testing.T) {
	direct := dbtest.PostgreSQL(t) // the proxy speaks to its Unix socket
	ctx := context.Background()
	if _, err := direct.Pool.Exec(ctx, `CREATE TABLE claims (k TEXT PRIMARY KEY, attempt INT8 NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	for _, fault := range []pgfault.Fault{pgfault.DropAnswer, pgfault.AmbiguousResult} {
		for _, path := range []string{"WriteTx", "WriteBatches"} {
			t.Run(fmt.Sprintf("%s/%s", path, fault), func(t *testing.T) {
				db, proxy := pgfault.Open(t, direct)
				key := fmt.Sprintf("%s-%d", path, fault)
				attempts := 0
				// Claims the key on the first attempt; a later attempt finds
				// the claim, as the ledger's idempotency claim does.
				claim := `INSERT INTO claims (k, attempt) VALUES ($1, $2) ON CONFLICT (k) DO NOTHING`
				proxy.Arm(fault)
				var err error
				switch path {
				case "WriteTx":
					err = db.WriteTx(ctx, func(tx pgx.Tx) error {
						attempts++
						_, err := tx.Exec(ctx, claim, key, attempts)
						return err
					})
				case "WriteBatches":
					err = db.WriteBatches(ctx, func(tx *database.BatchTx) error {
						attempts++
						b := &pgx.Batch{}
						b.Queue(claim, key, attempts)
						return tx.SendAndCommit(ctx, b, func(br pgx.BatchResults) error { _, err := br.Exec(); return err })
					})
				}
				if err != nil {
					t.Fatalf("the write failed: %v", err)
				}
				if proxy.Injected() != 1 {
					t.Fatalf("the proxy applied %d faults, want 1", proxy.Injected())
				}
				if s := db.Stats(); s.AmbiguousCommits != 1 || attempts != 2 {
					t.Errorf("%d attempts, stats %+v; want 2 attempts and one ambiguous commit", attempts, s)
				}
				var rows, first int64
				if err := direct.Pool.QueryRow(ctx, `SELECT count(*), min(attempt) FROM claims WHERE k = $1`, key).Scan(&rows, &first); err != nil {
					t.Fatal(err)
				}
				if rows != 1 || first != 1 {
					t.Errorf("%d rows, first written by attempt %d; want one row, from attempt 1 (the server committed it)", rows, first)
				}
			})
		}
	}
}

// A read that fails to serialize (40001, which CockroachDB can answer to a
// read within another node's clock uncertainty) is run again as a whole.
// PostgreSQL never fails a read-only snapshot that way, so the server is
// made to raise that very error on the first attempt.
func TestAReadThatFailsToSerializeIsRunAgain(t *testing.T) {
	db := dbtest.PostgreSQL(t) // it raises the error with a DO block
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE TABLE facts (k INT8 PRIMARY KEY, v TEXT NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO facts VALUES (1, 'one')`); err != nil {
		t.Fatal(err)
	}
	now := testclock.Wall()
	reads := map[string]func(fn func(pgx.Tx) error) error{
		"ReadTx":      func(fn func(pgx.Tx) error) error { return db.ReadTx(ctx, fn) },
		"StaleReadTx": func(fn func(pgx.Tx) error) error { return db.StaleReadTx(ctx, fn) },
		"SnapshotTx": func(fn func(pgx.Tx) error) error {
			_, err := db.SnapshotTx(ctx, now, now, fn)
			return err
		},
	}
	for name, read := range reads {
		t.Run(name, func(t *testing.T) {
			attempts := 0
			var got []string
			err := read(func(tx pgx.Tx) error {
				attempts++
				got = got[:0]
				var v string
				if err := tx.QueryRow(ctx, `SELECT v FROM facts WHERE k = 1`).Scan(&v); err != nil {
					return err
				}
				got = append(got, v)
				if attempts == 1 {
					_, err := tx.Exec(ctx, `DO $$ BEGIN RAISE EXCEPTION 'restart transaction: read within uncertainty interval' USING ERRCODE = '40001'; END $$`)
					return err
				}
				return nil
			})
			if err != nil {
				t.Fatalf("the read failed: %v", err)
			}
			if attempts != 2 || len(got) != 1 || got[0] != "one" {
				t.Errorf("%d attempts read %q; want 2 attempts, the second reading [one]", attempts, got)
			}
		})
	}
}

// On CockroachDB a report reads the past only when everything up to its
// time is that old; a report of a more recent time reads the present, so
// that it sees a write made just before it was asked for. PostgreSQL
// always reads the present. Either way the report is told the time of the
// snapshot it read, and a write committed before the report sees it.
func TestAReportRightAfterAWriteSeesIt(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		if _, err := db.Pool.Exec(ctx, `CREATE TABLE entries (k INT8 PRIMARY KEY)`); err != nil {
			t.Fatal(err)
		}
		now := testclock.Wall()
		for i, asOf := range []struct {
			name string
			at   time.Time
		}{
			{"now", now},
			{"a second ago", now.Add(-time.Second)},
			{"in an hour", now.Add(time.Hour)},
		} {
			if err := db.WriteTx(ctx, func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO entries VALUES ($1)`, i)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			var n int
			readAt, err := db.SnapshotTx(ctx, asOf.at, now, func(tx pgx.Tx) error {
				return tx.QueryRow(ctx, `SELECT count(*) FROM entries`).Scan(&n)
			})
			if err != nil {
				t.Fatalf("report as of %s: %v", asOf.name, err)
			}
			if n != i+1 {
				t.Errorf("report as of %s, right after write %d, counted %d entries", asOf.name, i+1, n)
			}
			if !readAt.Equal(now) {
				t.Errorf("report as of %s says it read at %s; it read the present, %s", asOf.name, readAt, now)
			}
		}
		// A report of a time long enough ago may read the past: it says so.
		old := now.Add(-time.Hour)
		readAt, err := db.SnapshotTx(ctx, old, now, func(tx pgx.Tx) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		want := now
		if db.Dialect.Engine == database.CockroachDB {
			want = now.Add(-database.SnapshotStaleness)
		}
		if !readAt.Equal(want) {
			t.Errorf("report as of an hour ago read at %s, want %s", readAt, want)
		}
	})
}
