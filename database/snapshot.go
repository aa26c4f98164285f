package database

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// SnapshotStaleness is how far in the past a snapshot is read on
// CockroachDB. A read at a timestamp a few seconds old finds the writes of
// that moment already resolved, so it neither waits for in-flight writers
// nor makes them restart; what it misses is the last few seconds, which a
// report "as of now" states. PostgreSQL reads the current snapshot.
const SnapshotStaleness = 5 * time.Second

// SnapshotTx runs fn in a read-only transaction over one consistent
// snapshot that never blocks writers, for reports that read a lot:
//
//   - PostgreSQL: BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY. The
//     snapshot is taken at the first statement; MVCC readers take no locks
//     that writers wait for, and a read-only REPEATABLE READ transaction
//     never fails with a serialization error.
//   - CockroachDB: a read-only transaction whose first statement is
//     SET TRANSACTION AS OF SYSTEM TIME '-5s' (SnapshotStaleness): a
//     historical read, consistent, free of contention.
//
// fn must only read. It runs once: a snapshot read has nothing to retry.
func (db *DB) SnapshotTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if db.Dialect.Engine == CockroachDB {
		opts := pgx.TxOptions{AccessMode: pgx.ReadOnly}
		return pgx.BeginTxFunc(ctx, db.Pool, opts, func(tx pgx.Tx) error {
			// The timestamp is a constant of ours, not input: AS OF SYSTEM
			// TIME takes a literal expression, not a placeholder.
			stmt := fmt.Sprintf(`SET TRANSACTION AS OF SYSTEM TIME '-%dms'`, SnapshotStaleness.Milliseconds())
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("set snapshot time: %w", err)
			}
			return fn(tx)
		})
	}
	opts := pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
	return pgx.BeginTxFunc(ctx, db.Pool, opts, fn)
}
