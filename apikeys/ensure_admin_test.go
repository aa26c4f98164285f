package apikeys_test

import (
	"context"
	"testing"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/pgfault"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
)

// The first admin key is created once, and its secret reaches the
// operator even when the commit that created it answered with an unknown
// outcome and was retried: the retry finds the key its own call inserted.
// Later starts find an admin key and create none.
func TestTheFirstAdminKeySurvivesACommitOfUnknownOutcome(t *testing.T) {
	for _, fault := range []pgfault.Fault{pgfault.DropAnswer, pgfault.AmbiguousResult} {
		t.Run(fault.String(), func(t *testing.T) {
			ctx := context.Background()
			direct := dbtest.PostgreSQL(t) // the proxy speaks to its Unix socket
			viaProxy, proxy := pgfault.Open(t, direct)

			proxy.Arm(fault)
			key, secret, err := server(viaProxy, testclock.Wall).EnsureAdmin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if proxy.Injected() != 1 || viaProxy.Stats().AmbiguousCommits != 1 {
				t.Fatalf("%d faults applied, stats %+v: the commit was not made ambiguous", proxy.Injected(), viaProxy.Stats())
			}
			if secret == "" {
				t.Fatal("the first admin key's secret was lost: EnsureAdmin took its own key for an existing one")
			}
			authenticated, err := server(direct, testclock.Wall).Authenticate(ctx, secret)
			if err != nil || authenticated.ID != key.ID {
				t.Fatalf("the secret returned authenticates as %+v (%v), want key %s", authenticated, err, key.ID)
			}
			var admins int
			if err := direct.Pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE role = 'admin'`).Scan(&admins); err != nil {
				t.Fatal(err)
			}
			if admins != 1 {
				t.Errorf("%d admin keys, want 1", admins)
			}
			if _, again, err := server(direct, testclock.Wall).EnsureAdmin(ctx); err != nil || again != "" {
				t.Errorf("a second start made a key (secret %q, err %v), want none", again, err)
			}
		})
	}
}
