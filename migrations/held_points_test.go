package migrations_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/migrations"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestHeldPointsAreFilledFromTheActiveHolds runs migration 16 over books
// written before it: each account's held points become the sum of its
// active holds, and their expiry bound the earliest of them.
func TestHeldPointsAreFilledFromTheActiveHolds(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		now := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
		l := ledger.New(db, ledger.Options{Clock: func() time.Time { return now }})
		const programme, alice, bob = "programme:stays", "member:alice:points", "member:bob:points"
		if err := l.CreateAccounts(ctx, []ledger.Account{
			{Code: programme, NormalSide: ledger.Debit, AllowNegative: true, Shards: 1},
			{Code: alice, NormalSide: ledger.Credit, Shards: 1},
			{Code: bob, NormalSide: ledger.Credit, Shards: 1},
		}); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{alice, bob} {
			if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "earn-" + m, Kind: ledger.KindEarn, EffectiveAt: now,
				Postings: []ledger.Posting{{Account: programme, Amount: -1000}, {Account: m, Amount: 1000}},
				Metadata: json.RawMessage(`{}`)}); err != nil {
				t.Fatal(err)
			}
		}
		hold := func(key, account string, points int64, expiresAt time.Time) ledger.Hold {
			h, err := l.PlaceHold(ctx, ledger.HoldRequest{CallerID: "test", IdempotencyKey: key, Account: account, Points: points, ExpiresAt: expiresAt})
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
		hold("a1", alice, 300, now.Add(2*time.Hour))
		hold("a2", alice, 200, now.Add(time.Hour))
		released := hold("b1", bob, 100, now.Add(time.Hour))
		if _, err := l.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: "test", IdempotencyKey: "b2", HoldID: released.ID}); err != nil {
			t.Fatal(err)
		}

		// Back to the schema before migration 16, then up again: the
		// holds are all the migration has to go by.
		migrateDownAndUp(t, db, 15, 16)

		for _, want := range []struct {
			account      string
			heldPoints   int64
			expireFrom   *time.Time
			availableNow int64
		}{
			{alice, 500, ptr(now.Add(time.Hour)), 500},
			{bob, 0, nil, 1000},
		} {
			var held int64
			var from *time.Time
			if err := db.Pool.QueryRow(ctx, `SELECT held_points, holds_expire_from FROM account_balances
				WHERE account_code = $1 AND shard = 0`, want.account).Scan(&held, &from); err != nil {
				t.Fatal(err)
			}
			if held != want.heldPoints || (from == nil) != (want.expireFrom == nil) || from != nil && !from.Equal(*want.expireFrom) {
				t.Errorf("%s: held_points %d, holds_expire_from %v; want %d, %v", want.account, held, from, want.heldPoints, want.expireFrom)
			}
			b, err := l.Balance(ctx, want.account)
			if err != nil {
				t.Fatal(err)
			}
			if b.Available != want.availableNow {
				t.Errorf("%s: available %d, want %d", want.account, b.Available, want.availableNow)
			}
		}
		found, err := l.Verify(ctx)
		if err != nil || len(found) > 0 {
			t.Fatalf("verify: %v %v", found, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// migrateDownAndUp takes db's schema down to version down, then up to
// version up, with the goose set-up Apply uses (SQL and Go migrations).
func migrateDownAndUp(t *testing.T, db *database.DB, down, up int64) {
	t.Helper()
	ctx := context.Background()
	sqlDB := stdlib.OpenDBFromPool(db.Pool)
	defer sqlDB.Close()
	provider := newProvider(t, sqlDB)
	if _, err := provider.DownTo(ctx, down); err != nil {
		t.Fatal(err)
	}
	if _, err := provider.UpTo(ctx, up); err != nil {
		t.Fatal(err)
	}
}

func newProvider(t *testing.T, db *sql.DB) *goose.Provider {
	t.Helper()
	p, err := migrations.NewProvider(db, nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHeldPointsNeverGoBelowZero: the database refuses a balance row whose
// held points are negative, on a new database and on one that ran
// migration 16 before migration 17 existed.
func TestHeldPointsNeverGoBelowZero(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		l := ledger.New(db, ledger.Options{Clock: testclock.New(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)).Now})
		const member = "member:carol:points"
		if err := l.CreateAccount(ctx, ledger.Account{Code: member, NormalSide: ledger.Credit, Shards: 1}); err != nil {
			t.Fatal(err)
		}
		refused := func(t *testing.T) {
			t.Helper()
			_, err := db.Pool.Exec(ctx, `UPDATE account_balances SET held_points = -1 WHERE account_code = $1`, member)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
				t.Errorf("negative held points: got %v, want a check violation (23514)", err)
			}
		}
		refused(t)

		migrateDownAndUp(t, db, 16, 17)
		refused(t)
	})
}
