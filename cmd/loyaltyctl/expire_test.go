package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

// TestPointsExpire: three members with a lot due at -as-of and one whose
// lot is not; the CLI expires the three into breakage, and a second run
// with the same -as-of finds the run finished.
func TestPointsExpire(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	all := enrolMembers(t, db, 4, 0)
	l := ledger.New(db, ledger.Options{Clock: testclock.Ticking(asOf.AddDate(0, 0, -7), time.Millisecond).Now})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		expires := asOf.AddDate(0, 0, -1)
		if i == 3 {
			expires = asOf.AddDate(1, 0, 0)
		}
		if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprint("earn-", i), Kind: ledger.KindEarn,
			EffectiveAt: asOf.AddDate(-2, 0, 0), Lots: ledger.LotPolicy{ExpiresAt: expires},
			Postings: []ledger.Posting{{Account: m.Account(), Amount: 100}, {Account: programme.AccountIssuedStay, Amount: -100}}}); err != nil {
			t.Fatal(err)
		}
	}
	url := db.Pool.Config().ConnString()
	t.Setenv("LOYALTY_DATABASE_URL", "")

	code, stdout, stderr := runCLI(t, afterAsOf, "expire", "--as-of", "2026-06-01", "-batch", "2", "-database-url", url)
	if code != exitOK || !strings.HasPrefix(stdout, "expired 300 points of 3 members (3 found due)") {
		t.Fatalf("exit %d, stdout %q, stderr:\n%s", code, stdout, stderr)
	}
	breakage, err := l.Balance(ctx, programme.AccountBreakage)
	if err != nil || breakage.Posted != 300 {
		t.Fatalf("breakage %+v, %v; want 300", breakage, err)
	}
	code, stdout, _ = runCLI(t, afterAsOf, "expire", "-as-of", "2026-06-01", "-database-url", url)
	if code != exitOK || !strings.Contains(stdout, "had already finished") {
		t.Fatalf("second run: exit %d, stdout %q", code, stdout)
	}
	for _, args := range [][]string{
		{"expire", "-database-url", url},                         // no -as-of
		{"expire", "-as-of", "2026-06-02", "-database-url", url}, // in the future: the operator's clock is at asOf + 1h
		{"expire", "-as-of", "2026-06-01", "-batch", "0", "-database-url", url},
		{"expire", "-as-of", "2026-06-01"}, // no database
	} {
		if code, _, _ := runCLI(t, afterAsOf, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
