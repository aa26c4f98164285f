package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BatchTx is a SERIALIZABLE write transaction sent as pipelined batches:
// BEGIN travels in the first batch and COMMIT in the last, so a transaction
// of two batches costs two round trips instead of four. The group
// committer writes every group this way.
type BatchTx struct {
	conn  *pgxpool.Conn
	setup string // run after BEGIN, if not "" (Dialect.batchTxSettings)
	begun bool
	ended bool
}

const beginSerializable = "BEGIN ISOLATION LEVEL SERIALIZABLE"

// Send sends b in one round trip (beginning the transaction first, if this
// is the first batch) and hands its results to read, which must read every
// one of them, in queue order, or return an error.
func (t *BatchTx) Send(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	return t.send(ctx, b, false, read)
}

// SendAndCommit is Send with COMMIT as the batch's last statement. A nil
// return means the transaction committed.
//
// COMMIT travels with the batch, so read cannot stop it: an error read
// returns for a statement that failed on the server is a rollback, but a
// check of a result in Go comes too late. A condition the commit depends
// on must fail a statement on the server (a constraint), or be checked
// after an earlier Send.
func (t *BatchTx) SendAndCommit(ctx context.Context, b *pgx.Batch, read func(pgx.BatchResults) error) error {
	return t.send(ctx, b, true, read)
}

func (t *BatchTx) send(ctx context.Context, b *pgx.Batch, commit bool, read func(pgx.BatchResults) error) error {
	if t.ended {
		return errors.New("batch transaction: already committed")
	}
	wire := &pgx.Batch{}
	if !t.begun {
		wire.Queue(beginSerializable)
		if t.setup != "" {
			wire.Queue(t.setup)
		}
	}
	beginning := len(wire.QueuedQueries)
	wire.QueuedQueries = append(wire.QueuedQueries, b.QueuedQueries...)
	if commit {
		wire.Queue("COMMIT")
	}
	br := t.conn.SendBatch(ctx, wire)
	if !t.begun {
		for range beginning {
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				if commit && (connectionLost(err) || ambiguous(err)) {
					return &ambiguousCommitError{fmt.Errorf("begin: %w", err)}
				}
				return fmt.Errorf("begin: %w", err)
			}
		}
		t.begun = true
	}
	if err := read(br); err != nil {
		_ = br.Close()
		if commit && (connectionLost(err) || ambiguous(err)) {
			// COMMIT went out with the batch: it may have committed.
			return &ambiguousCommitError{err}
		}
		return err
	}
	if commit {
		t.ended = true
		tag, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return commitError(ctx, err)
		}
		if tag.String() != "COMMIT" {
			// PostgreSQL answers COMMIT of a failed transaction with
			// ROLLBACK, not an error.
			_ = br.Close()
			return pgx.ErrTxCommitRollback
		}
	}
	if err := br.Close(); err != nil {
		if commit {
			return commitError(ctx, err)
		}
		return err
	}
	return nil
}

// commitError tells a refused commit (the server answered: nothing was
// written) from one whose outcome is unknown (the connection broke).
// SQLSTATE 40003 is the server saying it does not know either.
func commitError(ctx context.Context, err error) error {
	if ambiguous(err) {
		return &ambiguousCommitError{err}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) || errors.Is(err, pgx.ErrTxCommitRollback) || ctx.Err() != nil {
		return err
	}
	return &ambiguousCommitError{err}
}

// WriteBatches runs fn in a BatchTx, which fn must end with SendAndCommit,
// and retries it as WriteTx does. The transaction restarts as a whole on
// both engines: the savepoint protocol would cost CockroachDB round trips
// that this path exists to save.
//
// On PostgreSQL a retry runs alone among this process's batch
// transactions (Dialect.retriesAlone). fn must not start another batch
// transaction.
func (db *DB) WriteBatches(ctx context.Context, fn func(*BatchTx) error) error {
	return db.WriteBatchesAttempts(ctx, db.maxAttempts, fn)
}

// WriteBatchesAttempts is WriteBatches with its own bound on attempts (at
// most MaxAttempts).
func (db *DB) WriteBatchesAttempts(ctx context.Context, maxAttempts int, fn func(*BatchTx) error) error {
	var gate *sync.RWMutex
	if db.Dialect.retriesAlone() {
		gate = &db.batchGate
	}
	return db.retry(ctx, maxAttempts, gate, func() error { return db.tryBatches(ctx, fn) })
}

func (db *DB) tryBatches(ctx context.Context, fn func(*BatchTx) error) error {
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	t := &BatchTx{conn: conn, setup: db.setupBatch}
	err = fn(t)
	if err == nil && !t.ended {
		err = errors.New("batch transaction: fn returned without committing")
	}
	if status := conn.Conn().PgConn().TxStatus(); status == 'T' || status == 'E' {
		// Still open (fn failed before COMMIT, or a statement failed and
		// the pipeline skipped the rest): roll back, so the connection goes
		// back to the pool clean. If even that fails, the pool drops it.
		_, _ = conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
	return err
}

// connectionLost reports whether err is the connection failing (rather
// than the server answering, or the caller's own check).
func connectionLost(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)
}
