package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

// enrolAt enrols n members at the time at, with idempotency keys key-0,
// key-1..., on a database where loyaltyd has published the default
// programme.
func enrolAt(t *testing.T, db *database.DB, at time.Time, key string, n int) []members.Member {
	t.Helper()
	ctx := context.Background()
	clock := testclock.Ticking(at, time.Millisecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	if err := programmes.New(l, clock.Now).EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	store := members.New(l, clock.Now)
	var out []members.Member
	for i := range n {
		m, err := store.Enroll(ctx, "test", fmt.Sprintf("%s-%d", key, i), members.Enrollment{FullName: "M", Phone: "+86 1", Channel: programme.ChannelApp})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

// TestTiersReviewCountsOnlyTheMembersDue: of 12 members, 3 gold members
// are due (the anniversary of their tier has come): two without activity
// go down to silver, one with 12 nights in the window keeps gold; 9
// members enrolled two months ago are not due. The summary says so, and a
// review a day later finds nobody due: the one who kept gold is next due a
// year on.
func TestTiersReviewCountsOnlyTheMembersDue(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	gold := enrolAt(t, db, asOf.AddDate(0, -14, 0), "old", 3)
	for _, m := range gold {
		if _, err := db.Pool.Exec(ctx, `UPDATE members SET tier = 'gold', tier_since = $2, first_stay = 'x' WHERE member_number = $1`,
			m.Number, asOf.AddDate(0, -13, 0)); err != nil {
			t.Fatal(err)
		}
	}
	kept := gold[0]
	stay := members.QualifyingStay(kept.Number, "s-1", asOf.AddDate(0, -1, 0), 12, 2400)
	if _, err := db.Pool.Exec(ctx, stay.Text(), stay.Args...); err != nil {
		t.Fatal(err)
	}
	fresh := enrolAt(t, db, asOf.AddDate(0, -2, 0), "new", 9)
	url := db.Pool.Config().ConnString()
	t.Setenv("LOYALTY_DATABASE_URL", url)

	code, stdout, stderr := runCLI(t, afterAsOf, "tiers", "review", "-as-of", asOf.Format(time.RFC3339), "-batch", "5")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	if m := summary.FindStringSubmatch(stdout); m == nil || fmt.Sprint(m[1:]) != "[12 3 2 1 9]" {
		t.Fatalf("summary %q, want 12 members scanned: 3 due (2 changed, 1 unchanged), 9 not due", stdout)
	}
	for _, m := range gold {
		want := "silver"
		if m.Number == kept.Number {
			want = "gold"
		}
		if got := tierOf(t, db, m.Number); got != want {
			t.Errorf("gold member %s is %s after the review, want %s", m.Number, got, want)
		}
	}
	for _, m := range fresh {
		if got := tierOf(t, db, m.Number); got != "regular" {
			t.Errorf("member %s, not due, is %s, want regular", m.Number, got)
		}
	}

	nextDay := func() time.Time { return asOf.AddDate(0, 0, 2) }
	code, stdout, _ = runCLI(t, nextDay, "tiers", "review", "-as-of", asOf.AddDate(0, 0, 1).Format(time.RFC3339), "-batch", "5")
	if m := summary.FindStringSubmatch(stdout); code != 0 || m == nil || fmt.Sprint(m[1:]) != "[12 0 0 0 12]" {
		t.Fatalf("the next day's review: exit %d, summary %q; want 12 members scanned and none due", code, stdout)
	}
	if n := tierChanges(t, db); n != 2 {
		t.Fatalf("%d tier changes, want the first review's 2", n)
	}
}

// TestTiersReviewRefusesAFutureAsOf: an -as-of after now is a usage error
// (exit status 2) that names -allow-future-as-of, and nothing is written;
// with -allow-future-as-of the review runs (a rehearsal on a copy of the
// data), says so, and dates its tier changes at the -as-of.
func TestTiersReviewRefusesAFutureAsOf(t *testing.T) {
	db := dbtest.New(t)
	enrolMembers(t, db, 3, 1) // one gold member due at asOf
	t.Setenv("LOYALTY_DATABASE_URL", db.Pool.Config().ConnString())
	beforeAsOf := func() time.Time { return asOf.Add(-time.Hour) }
	checkpoints := func() int {
		t.Helper()
		var n int
		if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM job_checkpoints WHERE job LIKE 'tier-review:%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	for _, asOfFlag := range []string{asOf.Format(time.RFC3339), asOf.Add(time.Second).UTC().Format(time.RFC3339), "2027-01-01T00:00:00+08:00"} {
		code, stdout, stderr := runCLI(t, beforeAsOf, "tiers", "review", "-as-of", asOfFlag)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "is in the future") || !strings.Contains(stderr, "-allow-future-as-of") {
			t.Errorf("-as-of %s an hour or more ahead: exit %d, stdout %q, stderr %q; want exit 2 naming -allow-future-as-of", asOfFlag, code, stdout, stderr)
		}
	}
	if n, c := tierChanges(t, db), checkpoints(); n != 0 || c != 0 {
		t.Fatalf("after the refused runs: %d tier changes, %d review checkpoints; want none", n, c)
	}

	code, stdout, stderr := runCLI(t, beforeAsOf, "tiers", "review", "-as-of", asOf.Format(time.RFC3339), "-allow-future-as-of")
	if code != 0 || !strings.Contains(stderr, "is in the future (-allow-future-as-of)") {
		t.Fatalf("with -allow-future-as-of: exit %d, stderr %q; want 0 with a note that the as-of is in the future", code, stderr)
	}
	if m := summary.FindStringSubmatch(stdout); m == nil || fmt.Sprint(m[1:]) != "[3 3 1 2 0]" {
		t.Fatalf("with -allow-future-as-of: summary %q, want 3 members scanned: 3 due (1 changed, 2 unchanged)", stdout)
	}
	var effectiveAt time.Time
	if err := db.Pool.QueryRow(context.Background(), `SELECT effective_at FROM tier_changes`).Scan(&effectiveAt); err != nil || !effectiveAt.Equal(asOf) {
		t.Fatalf("the rehearsal's tier change is effective at %s (%v), want the -as-of %s", effectiveAt, err, asOf)
	}

	// Now is what counts, not the flag: an -as-of that has come needs no flag.
	code, _, stderr = runCLI(t, afterAsOf, "tiers", "review", "-as-of", asOf.Format(time.RFC3339))
	if code != 0 || strings.Contains(stderr, "in the future") {
		t.Fatalf("-as-of an hour ago: exit %d, stderr %q; want 0 without a note", code, stderr)
	}
	code, stdout, _ = runCLI(t, afterAsOf, "tiers", "review", "-h")
	if code != 0 || !strings.Contains(stdout, "-allow-future-as-of") || !strings.Contains(stdout, "rehearsal on a copy of the data") {
		t.Fatalf("tiers review -h: exit %d, %q; want -allow-future-as-of explained", code, stdout)
	}
}
