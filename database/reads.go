package database

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Reads come in three freshnesses, each one consistent snapshot:
//
//   - ReadTx reads the present, for answers acted on at once.
//   - SnapshotTx reads for a report as of a given time: in the past on
//     CockroachDB when that time is far enough back, else the present.
//   - StaleReadTx reads a few seconds back on CockroachDB, for large scans
//     whose rows are checked again under a lock before anything is written
//     (the jobs) or which check the books' consistency (Verify).
//
// Every read is retried as a whole, like a write, on 40001 and on a lost
// connection: on CockroachDB a read at the present can fail with 40001
// (ReadWithinUncertaintyIntervalError) when another node's clock is a
// little ahead. On PostgreSQL a read-only REPEATABLE READ transaction
// never fails to serialize, so there the loop only meets lost connections.
// fn may therefore run several times and must reset what it collects.

// SnapshotStaleness is how far in the past SnapshotTx reads on
// CockroachDB when the report's time allows it. A read that many seconds
// back finds the writes of that moment resolved, so it neither waits for
// writers in flight nor makes them restart.
const SnapshotStaleness = 5 * time.Second

// ReadTx runs fn in a read-only transaction over one consistent snapshot
// of the present: REPEATABLE READ on PostgreSQL (never blocks writers),
// a read-only serializable transaction on CockroachDB.
func (db *DB) ReadTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.read(ctx, "", fn)
}

// SnapshotTx runs fn, which must only read, for a report as of asOf
// (now's clock tells how old asOf is), and returns the time of the
// snapshot it read, on now's clock.
//
// CockroachDB reads SnapshotStaleness in the past (AS OF SYSTEM TIME)
// only when asOf is at least that old: the snapshot then holds every write
// recorded up to asOf. A report of a more recent time reads the present,
// so that it includes a write made just before it was asked for. A read
// in the past that finds a table younger than the snapshot reads the
// present instead. PostgreSQL always reads the present (MVCC readers do
// not block writers there).
func (db *DB) SnapshotTx(ctx context.Context, asOf, now time.Time, fn func(pgx.Tx) error) (time.Time, error) {
	if db.Dialect.Engine != CockroachDB || !readsInThePast(asOf, now) {
		return now, db.read(ctx, "", fn)
	}
	// A constant of ours, not input: AS OF SYSTEM TIME takes a literal.
	const past = `'-5000ms'`
	readAt := now.Add(-SnapshotStaleness)
	err := db.read(ctx, past, fn)
	var young *tooYoungError
	if errors.As(err, &young) {
		return now, db.read(ctx, "", fn)
	}
	return readAt, err
}

// readsInThePast reports whether a report as of asOf may read
// SnapshotStaleness before now.
func readsInThePast(asOf, now time.Time) bool {
	return !asOf.IsZero() && !asOf.After(now.Add(-SnapshotStaleness))
}

// StaleReadTx runs fn, which must only read, over a consistent snapshot a
// few seconds old on CockroachDB (follower_read_timestamp(), about 4.8 s
// back): a large scan there then neither waits on writers' intents nor
// pushes them, and any replica can serve it. Use it only where a slightly
// old snapshot is correct. PostgreSQL reads the present; so does
// CockroachDB when a table is younger than the snapshot.
func (db *DB) StaleReadTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if db.Dialect.Engine != CockroachDB {
		return db.read(ctx, "", fn)
	}
	err := db.read(ctx, "follower_read_timestamp()", fn)
	var young *tooYoungError
	if errors.As(err, &young) {
		return db.read(ctx, "", fn)
	}
	return err
}

// read runs fn in a read-only transaction at the present (at == "") or,
// on CockroachDB, AS OF SYSTEM TIME at, retrying it as a whole.
func (db *DB) read(ctx context.Context, at string, fn func(pgx.Tx) error) error {
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	switch {
	case db.Dialect.Engine != CockroachDB:
	case at == "":
		opts = pgx.TxOptions{IsoLevel: pgx.Serializable, AccessMode: pgx.ReadOnly}
	default:
		// A historical transaction is read-only by nature.
		opts = pgx.TxOptions{BeginQuery: "BEGIN AS OF SYSTEM TIME " + at}
	}
	return db.retry(ctx, db.maxAttempts, nil, func() error {
		err := pgx.BeginTxFunc(ctx, db.Pool, opts, fn)
		if at != "" && tableTooYoung(err) {
			return &tooYoungError{err}
		}
		return err
	})
}

// tableTooYoung reports whether a read in the past failed because a table
// or the database did not exist yet at that time.
func tableTooYoung(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "3D000")
}

type tooYoungError struct{ err error }

func (e *tooYoungError) Error() string {
	return "the snapshot is older than the schema: " + e.err.Error()
}
func (e *tooYoungError) Unwrap() error { return e.err }
