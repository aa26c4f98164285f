package apikeys_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// server is one loyaltyd process's key store over a shared database.
func server(db *database.DB, clock func() time.Time) *apikeys.Store {
	return apikeys.New(ledger.New(db, ledger.Options{Clock: clock}), clock)
}

func TestARevokedKeyStopsOnEveryServerOnceTheRevocationAnswers(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		admin, frontDesk := server(db, testclock.Wall), server(db, testclock.Wall)
		key, secret, err := admin.Create(ctx, "admin", "create-desk", apikeys.CreateRequest{Name: "front desk", Role: apikeys.RoleBookingChannel})
		if err != nil {
			t.Fatal(err)
		}
		// The front desk's server has read the key, and trusts it.
		if _, err := frontDesk.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		if _, err := admin.Revoke(ctx, "admin", "revoke-desk", key.ID); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(started); waited < apikeys.TrustFor {
			t.Errorf("Revoke answered after %v, before any server's trust (%v) in the key ran out", waited, apikeys.TrustFor)
		}
		for name, s := range map[string]*apikeys.Store{"the revoking server": admin, "another server": frontDesk} {
			if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikeys.ErrUnauthenticated) {
				t.Errorf("%s after the revocation answered: %v, want ErrUnauthenticated", name, err)
			}
		}
		// A retried revocation replays, and waits as well.
		started = time.Now()
		replayed, err := admin.Revoke(ctx, "admin", "revoke-desk", key.ID)
		if err != nil || replayed.RevokedAt.IsZero() {
			t.Fatalf("replayed revocation: %+v, %v", replayed, err)
		}
		if waited := time.Since(started); waited < apikeys.TrustFor {
			t.Errorf("a replayed Revoke answered after %v", waited)
		}
	})
}

// A server reads a key again once TrustFor has passed, so even a change
// made behind the service's back (an operator's UPDATE) is seen by then.
func TestAServerTrustsAKeyItHasReadForAtMostTrustFor(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	s := server(db, testclock.Wall)
	_, secret, err := s.Create(ctx, "admin", "create", apikeys.CreateRequest{Name: "web", Role: apikeys.RoleBookingChannel})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	after := time.Now() // the server read the key between before and after
	if _, err := db.Pool.Exec(ctx, `UPDATE api_keys SET revoked_at = $1, revoked_by = 'operator'`, testclock.Wall()); err != nil {
		t.Fatal(err)
	}
	_, err = s.Authenticate(ctx, secret)
	if time.Since(before) < apikeys.TrustFor && err != nil {
		t.Errorf("a key read less than TrustFor ago was read again: %v", err)
	}
	time.Sleep(time.Until(after.Add(apikeys.TrustFor)))
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikeys.ErrUnauthenticated) {
		t.Errorf("TrustFor after the key was read, it is still trusted: %v", err)
	}
}

// Trust covers revocation only: a key stops at its expiry to the instant,
// on the service's clock.
func TestATrustedKeyStillExpiresOnTime(t *testing.T) {
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	s := server(dbtest.New(t), clock.Now)
	expiresAt := clock.Now().Add(time.Hour)
	_, secret, err := s.Create(ctx, "admin", "create", apikeys.CreateRequest{Name: "audit", Role: apikeys.RoleFinance, ExpiresAt: expiresAt})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if _, err := s.Authenticate(ctx, secret); !errors.Is(err, apikeys.ErrUnauthenticated) {
		t.Errorf("a trusted key at its expiry: %v, want ErrUnauthenticated", err)
	}
}

// An interrupted revocation is committed but not confirmed: the caller
// hears an error and retries with the same idempotency key.
func TestAnInterruptedRevocationSaysSo(t *testing.T) {
	db := dbtest.New(t)
	s := server(db, testclock.Wall)
	key, secret, err := s.Create(context.Background(), "admin", "create", apikeys.CreateRequest{Name: "web", Role: apikeys.RoleBookingChannel})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := s.Revoke(ctx, "admin", "revoke", key.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Revoke interrupted while servers stop trusting the key: %v, want DeadlineExceeded", err)
	}
	if _, err := s.Authenticate(context.Background(), secret); !errors.Is(err, apikeys.ErrUnauthenticated) {
		t.Errorf("the revocation is committed on this server: %v", err)
	}
}
