// Package database opens the service's connection pool and runs transactions
// the same way on PostgreSQL and CockroachDB.
//
// Every difference between the two engines lives here, in Dialect: how a
// serializable write is retried and how a consistent read is taken. Callers
// write one code path and pick nothing by engine.
package database

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/cockroach-go/v2/crdb"
	crdbpgx "github.com/cockroachdb/cockroach-go/v2/crdb/crdbpgxv5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Engine names a database engine the service runs on.
type Engine string

const (
	PostgreSQL  Engine = "postgresql"
	CockroachDB Engine = "cockroachdb"
)

// Dialect is the engine behind a pool, detected from SELECT version().
type Dialect struct {
	Engine  Engine
	Version string // the full version() string
}

// DetectDialect classifies the text of SELECT version().
func DetectDialect(version string) Dialect {
	if strings.Contains(version, "CockroachDB") {
		return Dialect{Engine: CockroachDB, Version: version}
	}
	return Dialect{Engine: PostgreSQL, Version: version}
}

// writeTxSettings are set for every write transaction, right after BEGIN.
//
// PostgreSQL: no sequential scans. At SERIALIZABLE a sequential scan locks
// the whole table for the serializability check, so any other transaction
// writing any row of it conflicts with this one, and one of the two is
// aborted. The planner picks sequential scans for small tables (a new
// programme's, a test's): there TestLoad saw most write transactions
// retried and some give up after every attempt. A write transaction looks
// rows up by key, so with sequential scans off it reads through the index
// and locks only what it reads.
//
// CockroachDB locks the key spans a query reads, whatever the plan chose:
// nothing to set.
func (d Dialect) writeTxSettings() [][2]string {
	if d.Engine == PostgreSQL {
		return [][2]string{{"enable_seqscan", "off"}}
	}
	return nil
}

// batchTxSettings are writeTxSettings and, on PostgreSQL, generic plans.
// Its plan cache re-plans a statement with array parameters (the group
// commit's = ANY($1), UPDATE ... FROM unnest) at every execution: measured
// with pg_stat_statements at the peak of loyaltybench, planning took a
// third as long as executing, and forcing generic plans in these
// transactions raised committed writes/s by 13% (764 to 864 in one
// setup). A write transaction's statements look rows up by key, so one
// plan serves every parameter.
func (d Dialect) batchTxSettings() [][2]string {
	settings := d.writeTxSettings()
	if d.Engine == PostgreSQL {
		settings = append(settings, [2]string{"plan_cache_mode", "force_generic_plan"})
	}
	return settings
}

// retriesAlone reports whether a retried BatchTx waits until it is the
// only one of this process in flight (and new ones wait for it).
//
// PostgreSQL: yes. The ledger never has two writes of one process on the
// same rows in flight, yet on PostgreSQL they can fail each other's
// serializability check, whose predicate locks cover whole index pages: a
// small programme's balances share a few. Two such writes in flight
// together can conflict again and again (TestLoad saw eight attempts of
// one stay in a row, and twelve in CI); alone, a retry can only meet
// other processes' writes. Retries are rare at scale (about one write in
// a thousand at the peak of make bench), so the wait costs little.
//
// CockroachDB tracks what a transaction read by key, so writes on other
// rows do not fail each other: a retry has no one in this process to wait
// for, and waiting would only slow the others.
func (d Dialect) retriesAlone() bool { return d.Engine == PostgreSQL }

// setLocal is one statement that makes settings for the rest of the
// transaction only (set_config's is_local: SET LOCAL), or "" for none:
// one statement however many there are, as each costs the server a
// parse and an execution per transaction. Names and values are constants.
func setLocal(settings [][2]string) string {
	if len(settings) == 0 {
		return ""
	}
	calls := make([]string, len(settings))
	for i, s := range settings {
		calls[i] = fmt.Sprintf("set_config('%s', '%s', true)", s[0], s[1])
	}
	return "SELECT " + strings.Join(calls, ", ")
}

// Options tune a DB. Zero values take the defaults.
type Options struct {
	// MaxAttempts bounds how often one write transaction is tried (default 12).
	MaxAttempts int
	// MaxConns is the pool size (default: pgx's, at least 16, which keeps a
	// small server busy without queueing inside PostgreSQL).
	MaxConns int32
}

// ErrContention is returned when a write still conflicts after MaxAttempts tries.
var ErrContention = errors.New("transaction aborted by contention after all retries")

// Stats counts what the retry loop did since the DB was opened.
type Stats struct {
	Attempts         uint64 // transaction attempts started, writes and reads
	Retries          uint64 // attempts that were retried (serialization, deadlock, lost connection, unknown outcome)
	AmbiguousCommits uint64 // commits whose outcome was unknown and were retried
}

// DB is a pool plus the dialect it speaks.
type DB struct {
	Pool        *pgxpool.Pool
	Dialect     Dialect
	maxAttempts int
	// beginWrite begins a WriteTx transaction on PostgreSQL; setupBatch
	// follows BEGIN in a BatchTx.
	beginWrite pgx.TxOptions
	setupBatch string

	// batchGate makes a retried BatchTx the only one of this process in
	// flight (Dialect.retriesAlone).
	batchGate sync.RWMutex

	attempts, retries, ambiguous atomic.Uint64
}

// Open connects to url, detects the engine and returns a ready DB.
func Open(ctx context.Context, url string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if cfg.MaxConns < 16 {
		cfg.MaxConns = 16
	}
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error {
		encodeUUIDsAsBytes(conn.TypeMap())
		scanTimestampsInUTC(conn.TypeMap())
		return nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to database: %w", err)
	}
	var version string
	if err := pool.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		pool.Close()
		return nil, fmt.Errorf("detect database engine: %w", err)
	}
	db := &DB{Pool: pool, Dialect: DetectDialect(version), maxAttempts: opts.MaxAttempts}
	db.setupBatch = setLocal(db.Dialect.batchTxSettings())
	db.beginWrite = pgx.TxOptions{BeginQuery: beginSerializable}
	if set := setLocal(db.Dialect.writeTxSettings()); set != "" {
		// One simple-protocol message: BEGIN and the settings in one round trip.
		db.beginWrite.BeginQuery += "; " + set
	}
	if db.maxAttempts <= 0 {
		db.maxAttempts = 12
	}
	return db, nil
}

// Close closes the pool.
func (db *DB) Close() { db.Pool.Close() }

// CloseWithin closes the pool, or gives up after grace with an error: a
// pool's Close waits for every connection to come back (a query on a
// database that does not answer may never end) and closes each with a
// 15 s timeout. Given up, the connections go with the process.
func (db *DB) CloseWithin(grace time.Duration) error {
	closed := make(chan struct{})
	go func() {
		db.Pool.Close()
		close(closed)
	}()
	select {
	case <-closed:
		return nil
	case <-time.After(grace):
		return fmt.Errorf("the database pool was not closed within %s: the database does not answer", grace)
	}
}

// Stats returns the retry counters.
func (db *DB) Stats() Stats {
	return Stats{Attempts: db.attempts.Load(), Retries: db.retries.Load(), AmbiguousCommits: db.ambiguous.Load()}
}

// WriteTx runs fn in a SERIALIZABLE transaction and commits it, retrying the
// whole transaction on serialization failures (40001), deadlocks (40P01) and
// lost connections, at most MaxAttempts times with jittered backoff.
//
// A commit whose outcome is unknown (the connection died during COMMIT, or
// CockroachDB answered 40003, result is ambiguous) is
// retried too. That is only safe because fn must be idempotent across
// attempts: every ledger write claims an idempotency key in the same
// transaction, so a retry of a write that did commit finds its key and
// returns the first result instead of posting again.
//
// fn may run several times; it must not keep state between attempts except
// what it recomputes. A nil return means the transaction committed.
func (db *DB) WriteTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return db.retry(ctx, db.maxAttempts, nil, func() error { return db.tryWrite(ctx, fn) })
}

// LockedTx is WriteTx for bookkeeping whose correctness comes from a row
// lock that every writer of the data takes first (SELECT ... FOR UPDATE,
// or an UPDATE of that row), not from serializability: the event
// sequencer's one row, a webhook endpoint's row.
//
// PostgreSQL: READ COMMITTED. Such a transaction reads a range that every
// ledger write inserts into (the event outbox, the event log); at
// SERIALIZABLE, PostgreSQL's predicate locks on that range (promoted to
// the whole table past a few dozen rows) made it fail to serialize with
// the writers at every attempt under load (measured: the sequencer gave
// up after 12 attempts again and again at loyaltybench's peak). The row
// lock orders these transactions among themselves; what they read of the
// range is committed, and they write only rows no ledger write touches.
//
// CockroachDB: the serializable WriteTx, as everywhere; its locks are
// best effort under SERIALIZABLE and it tracks reads by key, so there a
// reader of a range conflicts only with the writes inside what it read.
func (db *DB) LockedTx(ctx context.Context, fn func(pgx.Tx) error) error {
	if db.Dialect.Engine == CockroachDB {
		return db.WriteTx(ctx, fn)
	}
	readCommitted := pgx.TxOptions{IsoLevel: pgx.ReadCommitted}
	return db.retry(ctx, db.maxAttempts, nil, func() error { return db.tryOnce(ctx, readCommitted, fn) })
}

// retry runs try until it succeeds, fails for good, or has run
// maxAttempts times (at most MaxAttempts), with jittered backoff. With a
// gate, the first attempt runs as one of its readers and every retry as
// its only writer.
func (db *DB) retry(ctx context.Context, maxAttempts int, gate *sync.RWMutex, try func() error) error {
	maxAttempts = min(max(maxAttempts, 1), db.maxAttempts)
	var last error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if attempt > 1 {
			db.retries.Add(1)
			if err := sleepBackoff(ctx, attempt); err != nil {
				return fmt.Errorf("%w (last: %v)", err, last)
			}
		}
		db.attempts.Add(1)
		err := gated(gate, attempt == 1, try)
		if err == nil {
			return nil
		}
		if ambiguous(err) {
			db.ambiguous.Add(1)
			last = err
			continue
		}
		if !retryable(err) || ctx.Err() != nil {
			return err
		}
		last = err
	}
	if Unavailable(last) {
		return fmt.Errorf("%w: %d attempts: %w", ErrUnavailable, maxAttempts, last)
	}
	return fmt.Errorf("%w: %d attempts: %v", ErrContention, maxAttempts, last)
}

func gated(gate *sync.RWMutex, shared bool, try func() error) error {
	switch {
	case gate == nil:
	case shared:
		gate.RLock()
		defer gate.RUnlock()
	default:
		gate.Lock()
		defer gate.Unlock()
	}
	return try()
}

var txOptions = pgx.TxOptions{IsoLevel: pgx.Serializable}

func (db *DB) tryWrite(ctx context.Context, fn func(pgx.Tx) error) error {
	if db.Dialect.Engine == CockroachDB {
		// cockroach-go's savepoint protocol is right on CockroachDB, where
		// RELEASE SAVEPOINT cockroach_restart is the commit. It retries
		// in place; our loop above only sees what it gives up on.
		err := crdbpgx.ExecuteTx(crdb.WithMaxRetries(ctx, db.maxAttempts), db.Pool, txOptions, fn)
		var amb *crdb.AmbiguousCommitError
		if errors.As(err, &amb) {
			return &ambiguousCommitError{err}
		}
		var exhausted *crdb.MaxRetriesExceededError
		if errors.As(err, &exhausted) {
			return fmt.Errorf("%w: %v", ErrContention, err)
		}
		return err
	}
	// PostgreSQL: a plain transaction restarted as a whole. RELEASE SAVEPOINT
	// is not a commit here, so the savepoint protocol would acknowledge
	// writes that COMMIT then rejects.
	return db.tryOnce(ctx, db.beginWrite, fn)
}

// tryOnce runs fn in one plain transaction and commits it; a commit whose
// outcome is unknown is an ambiguousCommitError.
func (db *DB) tryOnce(ctx context.Context, opts pgx.TxOptions, fn func(pgx.Tx) error) error {
	tx, err := db.Pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return commitError(ctx, err)
	}
	return nil
}

// ambiguous reports whether err leaves a transaction's outcome unknown: a
// commit whose answer was lost, or SQLSTATE 40003 (result is ambiguous),
// which CockroachDB can answer to COMMIT, to RELEASE and to any statement
// sent with them. The write may have committed: it is retried, and its
// idempotency claim returns the first result if it did.
func ambiguous(err error) bool {
	var amb *ambiguousCommitError
	var pgErr *pgconn.PgError
	return errors.As(err, &amb) || errors.As(err, &pgErr) && pgErr.Code == ambiguousResult
}

// ambiguousResult is SQLSTATE 40003, statement_completion_unknown.
const ambiguousResult = "40003"

type ambiguousCommitError struct{ err error }

func (e *ambiguousCommitError) Error() string {
	return "commit outcome unknown: " + e.err.Error()
}
func (e *ambiguousCommitError) Unwrap() error { return e.err }

// retryable reports whether a failed attempt may be run again from the start.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01":
			return true
		}
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	// A caller's own way of saying "run the transaction again".
	var r interface{ Retryable() bool }
	if errors.As(err, &r) {
		return r.Retryable()
	}
	// A connection that broke before COMMIT leaves nothing committed.
	if pgconn.SafeToRetry(err) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// sleepBackoff waits before attempt n (n >= 2): full jitter over an
// exponential ceiling from 1ms to 100ms.
func sleepBackoff(ctx context.Context, attempt int) error {
	ceiling := time.Millisecond << min(attempt-2, 7)
	ceiling = min(ceiling, 100*time.Millisecond)
	wait := time.Duration(rand.Int64N(int64(ceiling)) + 1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
