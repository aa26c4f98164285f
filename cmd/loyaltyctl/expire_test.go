package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/datadir"
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
	code, stdout, _ = runCLI(t, afterAsOf, "expire", "-database-url", url)
	if code != exitOK || !strings.Contains(stdout, "had already finished") {
		t.Fatalf("without -as-of (today, 2026-06-01 in Shanghai): exit %d, stdout %q; want the same run, finished", code, stdout)
	}
	code, _, stderr = runCLI(t, afterAsOf, "expire", "-as-of", "2026-05-31", "-database-url", url)
	if code != exitUsage || !strings.Contains(stderr, "must be today (2026-06-01 in Asia/Shanghai") {
		t.Fatalf("-as-of yesterday: exit %d, stderr %q; want a usage error: the books date an expiry on its as-of's day", code, stderr)
	}
	for _, args := range [][]string{
		{"expire", "-as-of", "2026-05-20", "-database-url", url}, // a day that has ended
		{"expire", "-as-of", "2026-06-02", "-database-url", url}, // in the future: the operator's clock is at asOf + 1h
		{"expire", "-as-of", "2026-06-01", "-batch", "0", "-database-url", url},
		{"expire", "-as-of", "2026-06-01"}, // no database
	} {
		if code, _, _ := runCLI(t, afterAsOf, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// TestExpireAsOfAPlainDateIsMidnightInTheProgrammesZone: `expire -as-of
// 2026-06-01` runs as of 00:00 that day in the programme's time zone
// (Shanghai, 16:00 UTC the day before), says so with the zone's offset and
// name, and expires the lot due at that midnight; the job's checkpoint is
// that instant.
func TestExpireAsOfAPlainDateIsMidnightInTheProgrammesZone(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	m := enrolMembers(t, db, 1, 0)[0] // publishes the shipped programme
	l := ledger.New(db, ledger.Options{Clock: testclock.Ticking(asOf.AddDate(0, 0, -7), time.Millisecond).Now})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	// Points are good through 31 May and expire at 00:00 on 1 June, Shanghai time.
	if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "earn", Kind: ledger.KindEarn,
		EffectiveAt: asOf.AddDate(-2, 0, 0), Lots: ledger.LotPolicy{ExpiresAt: asOf},
		Postings: []ledger.Posting{{Account: m.Account(), Amount: 100}, {Account: programme.AccountIssuedStay, Amount: -100}}}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LOYALTY_DATABASE_URL", db.Pool.Config().ConnString())

	code, stdout, stderr := runCLI(t, afterAsOf, "expire", "-as-of", "2026-06-01")
	if code != exitOK || !strings.HasPrefix(stdout, "expired 100 points of 1 members") {
		t.Fatalf("exit %d, stdout %q; want the lot due at 00:00 Shanghai expired", code, stdout)
	}
	if want := "points expiry as of 2026-06-01T00:00:00+08:00 (Asia/Shanghai, the programme's time zone)"; !strings.Contains(stderr, want) {
		t.Errorf("stderr %q lacks %q", stderr, want)
	}
	var job string
	if err := db.Pool.QueryRow(ctx, `SELECT job FROM job_checkpoints WHERE job LIKE 'expiry:%'`).Scan(&job); err != nil || job != "expiry:2026-05-31T16:00:00Z" {
		t.Errorf("the job ran as of %q (%v), want expiry:2026-05-31T16:00:00Z", job, err)
	}
}

// TestDataDirFindsTheEmbeddedDatabase: with no database URL, a command
// reads the one loyaltyd left in -data-dir (or LOYALTY_DATA_DIR).
func TestDataDirFindsTheEmbeddedDatabase(t *testing.T) {
	db := dbtest.New(t)
	enrolMembers(t, db, 1, 0)
	t.Setenv("LOYALTY_DATABASE_URL", "")
	t.Setenv("LOYALTY_DATA_DIR", "")
	dir := t.TempDir()
	if err := datadir.WriteURL(dir, db.Pool.Config().ConnString()); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, afterAsOf, "report", "trial-balance", "-as-of", "2026-06-01", "-data-dir", dir); code != exitOK ||
		!strings.Contains(stderr, "trial balance as of 2026-05-31T16:00:00Z") {
		t.Errorf("-data-dir: exit %d, stderr %q; want 0, as of 00:00 Shanghai", code, stderr)
	}
	t.Setenv("LOYALTY_DATA_DIR", dir)
	if code, _, _ := runCLI(t, afterAsOf, "expire", "-as-of", "2026-06-01"); code != exitOK {
		t.Errorf("LOYALTY_DATA_DIR: exit %d, want 0", code)
	}
}
