package migrations_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/migrations"
)

// TestEveryMigrationRunsAgainAfterAPartialApply is this package's rule. On
// CockroachDB a migration's schema change and goose's record of it do not
// commit together, so a crash between them leaves the change and loses the
// record; goose stops at the first failure, so the records of every later
// migration are missing too. The next start runs all of them again over
// what is there: it must succeed, leave the constraint there once, the
// held points as the holds say and the booking outcomes undoubled, and a
// further such run must change nothing. Each case is a state such a crash
// leaves; the last is the normal one, which is also that of a database
// that ran migration 17 when it was a SQL file: nothing runs again.
func TestEveryMigrationRunsAgainAfterAPartialApply(t *testing.T) {
	for _, c := range []struct {
		name string
		// forgetFrom is the first version whose record is missing (0: none).
		forgetFrom int64
		// noConstraint: migration 17's ADD CONSTRAINT had not committed.
		noConstraint bool
	}{
		{name: "16 to 20 done, none recorded", forgetFrom: 16},
		{name: "16 done, none recorded, 17 not done", forgetFrom: 16, noConstraint: true},
		{name: "16 recorded, 17 not done", forgetFrom: 17, noConstraint: true},
		{name: "17 to 20 done, none recorded", forgetFrom: 17},
		{name: "18 to 20 done, none recorded", forgetFrom: 18},
		{name: "19 and 20 done, not recorded", forgetFrom: 19},
		// CockroachDB before v25.1 recorded the SQL file's 17 when its
		// constraint failed to validate; migration 20 adds it.
		{name: "17 to 19 recorded without the constraint, 20 not done", forgetFrom: 20, noConstraint: true},
		{name: "all recorded", forgetFrom: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
				ctx := context.Background()
				member := seedHoldAndStay(t, db)
				versions := sourceVersions(t, db)
				var rerun []int64
				if c.forgetFrom > 0 {
					for _, v := range versions {
						if v >= c.forgetFrom {
							rerun = append(rerun, v)
						}
					}
				}
				if c.noConstraint {
					if _, err := db.Pool.Exec(ctx, `ALTER TABLE account_balances DROP CONSTRAINT held_points_not_negative`); err != nil {
						t.Fatal(err)
					}
				}

				var states []migratedState
				for pass := 1; pass <= 2; pass++ {
					if c.forgetFrom > 0 {
						forgetFrom(t, db, c.forgetFrom)
					}
					rec := &logRecorder{}
					if err := migrations.Apply(ctx, db.Pool, rec.logger()); err != nil {
						t.Fatalf("pass %d: %v", pass, err)
					}
					if got := rec.applied(); !slices.Equal(got, rerun) {
						t.Errorf("pass %d applied %v, want %v", pass, got, rerun)
					}
					requireRecordedOnce(t, db, versions)
					states = append(states, stateOf(t, db, member))
				}

				want := migratedState{constraints: 1, heldPoints: 300}
				if c.forgetFrom > 0 && c.forgetFrom <= 19 {
					// Migration 19 ran over a stay posted after its first run.
					want.outcomes = "H1/S1/outcome/stayed"
				}
				for pass, got := range states {
					if got != want {
						t.Errorf("after pass %d: %+v, want %+v", pass+1, got, want)
					}
				}
				_, err := db.Pool.Exec(ctx, `UPDATE account_balances SET held_points = -1 WHERE account_code = $1`, member)
				var pgErr *pgconn.PgError
				if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
					t.Errorf("negative held points: got %v, want a check violation (23514)", err)
				}
			})
		})
	}
}

// migratedState is what migrations 16 to 19 leave that a second run could
// double or undo.
type migratedState struct {
	constraints int    // held_points_not_negative on account_balances
	heldPoints  int64  // the member's, as migration 16 computes them
	outcomes    string // booking_outcomes, as migration 19 fills it
}

func stateOf(t *testing.T, db *database.DB, member string) migratedState {
	t.Helper()
	ctx := context.Background()
	var s migratedState
	if err := db.Pool.QueryRow(ctx, `SELECT count(*)
		FROM pg_catalog.pg_constraint AS c
		JOIN pg_catalog.pg_class AS t ON t.oid = c.conrelid
		WHERE t.relname = 'account_balances' AND c.conname = 'held_points_not_negative'`).Scan(&s.constraints); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT held_points FROM account_balances WHERE account_code = $1 AND shard = 0`,
		member).Scan(&s.heldPoints); err != nil {
		t.Fatal(err)
	}
	rows, err := db.Pool.Query(ctx, `SELECT property_id || '/' || stay_id || '/' || slot || '/' || outcome
		FROM booking_outcomes ORDER BY property_id, stay_id, slot`)
	if err != nil {
		t.Fatal(err)
	}
	outcomes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	s.outcomes = strings.Join(outcomes, ",")
	return s
}

// seedHoldAndStay writes, through the ledger, the rows migrations 16 and
// 19 derive theirs from: a member with 300 points on hold, and a stay
// posted without its booking outcome (as before bookings had one).
func seedHoldAndStay(t *testing.T, db *database.DB) (member string) {
	t.Helper()
	ctx := context.Background()
	clock := testclock.Ticking(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), time.Second)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	const programme = "programme:stays"
	member = "member:1000000001:points"
	if err := l.CreateAccounts(ctx, []ledger.Account{
		{Code: programme, NormalSide: ledger.Debit, AllowNegative: true, Shards: 1},
		{Code: member, NormalSide: ledger.Credit, Shards: 1},
	}); err != nil {
		t.Fatal(err)
	}
	metadata, _ := json.Marshal(map[string]string{"kind": "stay", "member_number": "1000000001", "property_id": "H1", "stay_id": "S1"})
	if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "desk", IdempotencyKey: "stay", Kind: ledger.KindEarn, EffectiveAt: clock.Now(),
		Postings: []ledger.Posting{{Account: programme, Amount: -1000}, {Account: member, Amount: 1000}}, Metadata: metadata}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.PlaceHold(ctx, ledger.HoldRequest{CallerID: "desk", IdempotencyKey: "hold", Account: member, Points: 300,
		ExpiresAt: clock.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	return member
}
