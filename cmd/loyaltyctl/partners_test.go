package main

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/rpc"
)

// serve starts the service on a fresh database, on clock, and returns its
// URL and an admin key.
func serve(t *testing.T, clock func() time.Time) (string, string) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	l := ledger.New(db, ledger.Options{Clock: clock})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	progs := programmes.New(l, clock)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	keys := apikeys.New(l, clock)
	srv, err := rpc.New(rpc.Config{Ledger: l, Members: members.New(l, clock), Keys: keys, Programmes: progs, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	_, secret, err := keys.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return ts.URL, secret
}

// TestPartnersCommands: create a partner, give it a hotel and new rates,
// suspend and reinstate it, read it back; refusals exit 1, usage errors 2.
func TestPartnersCommands(t *testing.T) {
	clock := testclock.Ticking(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), time.Millisecond)
	url, key := serve(t, clock.Now)
	api := []string{"-url", url, "-key", key}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // a fragment of the JSON answer
	}{
		{"create", []string{"partners", "create", "-id", "ALPHA", "-name", "Alpha Hotels", "-issue-rate", "0.0085", "-reimbursement-rate", "0.0061"}, 0, `"issueRate": "0.0085"`},
		{"a property of the partner", []string{"partners", "add-property", "-id", "ALPHA", "-property", "A-1", "-name", "Alpha Shanghai"}, 0, `"partnerId": "ALPHA"`},
		{"a property of an unknown partner is refused", []string{"partners", "add-property", "-id", "NOBODY", "-property", "N-1", "-name", "N"}, 1, ""},
		// A refusal is no reason to retry: only an unknown outcome is.
		{"a refusal does not suggest a retry", []string{"partners", "add-property", "-id", "NOBODY", "-property", "N-2", "-name", "N", "-idempotency-key", "k-1"}, 1, ""},
		{"new rates from tomorrow", []string{"partners", "set-rates", "-id", "ALPHA", "-issue-rate", "0.012", "-reimbursement-rate", "0.0075",
			"-effective-at", "2026-06-02T09:00:00Z"}, 0, `"version": 2`},
		// A plain date is 00:00 that day in the programme's time zone, Shanghai's.
		{"new rates from a date", []string{"partners", "set-rates", "-id", "ALPHA", "-issue-rate", "0.013", "-reimbursement-rate", "0.0075",
			"-effective-at", "2026-06-03"}, 0, `"effectiveAt": "2026-06-02T16:00:00Z"`},
		{"a malformed -effective-at is a usage error", []string{"partners", "set-rates", "-id", "ALPHA", "-issue-rate", "0.013", "-reimbursement-rate", "0.0075",
			"-effective-at", "3 June"}, 2, ""},
		{"rates in the past are refused", []string{"partners", "set-rates", "-id", "ALPHA", "-issue-rate", "0.012", "-reimbursement-rate", "0.0075",
			"-effective-at", "2020-01-01T00:00:00Z"}, 1, ""},
		{"suspend", []string{"partners", "suspend", "-id", "ALPHA", "-reason", "unpaid"}, 0, `"PARTNER_STATUS_SUSPENDED"`},
		{"get", []string{"partners", "get", "-id", "ALPHA"}, 0, `"statusReason": "unpaid"`},
		{"reinstate", []string{"partners", "reinstate", "-id", "ALPHA", "-reason", "paid"}, 0, `"PARTNER_STATUS_ACTIVE"`},
		{"list", []string{"partners", "list"}, 0, `"partnerId": "ALPHA"`},
		{"a missing flag is a usage error", []string{"partners", "suspend", "-id", "ALPHA"}, 2, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, clock.Now, append(tc.args, api...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d", code, tc.code)
			}
			if strings.Contains(stderr, "retry with") {
				t.Errorf("a refusal suggests a retry:\n%s", stderr)
			}
			// protojson's spacing is deliberately unstable: compare without it.
			if !strings.Contains(strings.ReplaceAll(stdout, " ", ""), strings.ReplaceAll(tc.stdout, " ", "")) {
				t.Errorf("stdout does not contain %s:\n%s", tc.stdout, stdout)
			}
		})
	}
}
