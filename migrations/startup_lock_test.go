package migrations_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3/lock"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/migrations"
)

// TestServersStartingAtOnceMigrateOnce: several instances starting at once,
// each with its own pool, on the first rollout (an empty database: even the
// lock table is created by the racing instances) and on an upgrade (a
// database at an older version). All start; exactly one applies the
// pending migrations, all of them, while the others wait for its lock and
// then find nothing to do; goose records each migration once and the lock
// is free at the end. Several rounds, each on a new database, to give a
// race more than one chance (one on CockroachDB, where a first rollout is
// some forty schema-change jobs).
func TestServersStartingAtOnceMigrateOnce(t *testing.T) {
	const servers = 4
	for _, c := range []struct {
		name string
		at   int64 // the version the database is at when they start
	}{
		{"first rollout", 0},
		{"upgrade from 15", 15},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbtest.ForEachEngine(t, func(t *testing.T, base *database.DB) {
				versions := sourceVersions(t, base)
				var pending []int64
				for _, v := range versions {
					if v > c.at {
						pending = append(pending, v)
					}
				}
				rounds, timeout := 3, 5*time.Minute
				if base.Dialect.Engine == database.CockroachDB {
					rounds, timeout = 1, 15*time.Minute
				}
				for round := 1; round <= rounds; round++ {
					t.Run(fmt.Sprintf("round %d", round), func(t *testing.T) {
						startAtOnce(t, base, servers, timeout, c.at, versions, pending)
					})
				}
			})
		})
	}
}

// startAtOnce starts servers instances at once on a new database at
// version at, and checks that one of them applied pending.
func startAtOnce(t *testing.T, base *database.DB, servers int, timeout time.Duration, at int64, versions, pending []int64) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	connString := newEmptyDatabase(t, base)
	dbs := make([]*database.DB, servers)
	for i := range dbs {
		db, err := database.Open(ctx, connString, database.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(db.Close)
		dbs[i] = db
	}
	if at > 0 {
		sqlDB := stdlib.OpenDBFromPool(dbs[0].Pool)
		_, err := newProvider(t, sqlDB).UpTo(ctx, at)
		sqlDB.Close()
		if err != nil {
			t.Fatal(err)
		}
	}

	logs := make([]*logRecorder, servers)
	errs := make([]error, servers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range servers {
		logs[i] = &logRecorder{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = migrations.Apply(ctx, dbs[i].Pool, logs[i].logger())
		}()
	}
	close(start)
	wg.Wait()

	migrators := 0
	for i := range servers {
		if errs[i] != nil {
			t.Errorf("server %d: %v", i, errs[i])
		}
		if applied := logs[i].applied(); len(applied) > 0 {
			migrators++
			if !slices.Equal(applied, pending) {
				t.Errorf("server %d applied %v, want %v", i, applied, pending)
			}
		}
	}
	if migrators != 1 {
		t.Errorf("%d servers applied migrations, want 1", migrators)
	}
	requireRecordedOnce(t, dbs[0], versions)
	var locked bool
	if err := dbs[0].Pool.QueryRow(ctx, `SELECT locked FROM goose_lock WHERE lock_id = $1`, lock.DefaultLockID).Scan(&locked); err != nil || locked {
		t.Errorf("migration lock after the start: locked %v (%v), want free", locked, err)
	}
}

// TestAKilledInstancesMigrationLockExpires: an instance killed while it
// migrated leaves the lock taken and stops renewing its lease. The next
// instance says whom it waits for, takes the lock over when the lease has
// run out, and migrates.
func TestAKilledInstancesMigrationLockExpires(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		const lease = 3 * time.Second
		if _, err := db.Pool.Exec(ctx, `INSERT INTO goose_lock (lock_id, locked, locked_at, locked_by, lease_expires_at, updated_at)
			VALUES ($1, true, now(), 'killed-instance', now() + $2::INTERVAL, now())
			ON CONFLICT (lock_id) DO UPDATE SET locked = true, locked_at = now(), locked_by = 'killed-instance',
				lease_expires_at = now() + $2::INTERVAL, updated_at = now()`,
			lock.DefaultLockID, fmt.Sprintf("%d seconds", int(lease.Seconds()))); err != nil {
			t.Fatal(err)
		}
		versions := sourceVersions(t, db)
		latest := versions[len(versions)-1]
		forgetFrom(t, db, latest)

		rec := &logRecorder{}
		began := time.Now()
		if err := migrations.Apply(ctx, db.Pool, rec.logger()); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(began); took < lease-time.Second {
			t.Errorf("migrated after %v, before the killed instance's lease (%v) ran out", took, lease)
		}
		if got := rec.applied(); len(got) != 1 || got[0] != latest {
			t.Errorf("applied %v, want [%d]", got, latest)
		}
		waiting := rec.find("waiting for another instance's migrations")
		if len(waiting) == 0 || waiting[0].attrs["held_by"] != "killed-instance" {
			t.Errorf("logged while waiting: %+v, want a line naming killed-instance", waiting)
		}
	})
}
