package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/datadir"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// shanghai is the shipped programme's time zone.
var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// asOf is the day the jobs run as of: what "-as-of 2026-06-01" means,
// 00:00 that day in the programme's time zone (2026-05-31T16:00:00Z).
var asOf = time.Date(2026, 6, 1, 0, 0, 0, 0, shanghai)

// afterAsOf is the operator's clock: an hour after asOf.
func afterAsOf() time.Time { return asOf.Add(time.Hour) }

// enrolMembers enrols n members 14 months before asOf and makes the first
// `gold` of them gold since 13 months before asOf, with a stay behind
// them: due for review, with no activity in the window, so the review
// takes them down to silver.
func enrolMembers(t *testing.T, db *database.DB, n, gold int) []members.Member {
	t.Helper()
	ctx := context.Background()
	clock := testclock.Ticking(asOf.AddDate(0, -14, 0), time.Millisecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	// The default programme, as loyaltyd publishes it on its first start.
	if err := programmes.New(l, clock.Now).EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	store := members.New(l, clock.Now)
	var all []members.Member
	for i := range n {
		m, err := store.Enroll(ctx, "test", fmt.Sprintf("enrol-%d", i), members.Enrollment{FullName: "M", Phone: "+86 1", Channel: programme.ChannelApp})
		if err != nil {
			t.Fatal(err)
		}
		if i < gold {
			if _, err := db.Pool.Exec(ctx, `UPDATE members SET tier = 'gold', tier_since = $2, first_stay = 'x' WHERE member_number = $1`,
				m.Number, asOf.AddDate(0, -13, 0)); err != nil {
				t.Fatal(err)
			}
		}
		all = append(all, m)
	}
	return all
}

func tierOf(t *testing.T, db *database.DB, number string) string {
	t.Helper()
	var tier string
	if err := db.Pool.QueryRow(context.Background(), `SELECT tier FROM members WHERE member_number = $1`, number).Scan(&tier); err != nil {
		t.Fatal(err)
	}
	return tier
}

func tierChanges(t *testing.T, db *database.DB) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM tier_changes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// runCLI runs the command in-process, as main does, on the clock now.
func runCLI(t *testing.T, now func() time.Time, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut, now)
	t.Logf("loyaltyctl %s: exit %d\nstdout:\n%sstderr:\n%s", strings.Join(args, " "), code, out.String(), errOut.String())
	return code, out.String(), errOut.String()
}

// summary is the review's last line on stdout: members scanned, due,
// changed, unchanged and not due.
var summary = regexp.MustCompile(`^(\d+) members scanned: (\d+) due \((\d+) changed, (\d+) unchanged\), (\d+) not due, in \S+ \(\d+ members/s\)\n$`)

// TestTiersReview: the two gold members due for review go down to silver,
// the others (regular, enrolled more than a year ago: due too) keep their
// tier; a second run at the same -as-of finds the review finished and
// changes nothing.
func TestTiersReview(t *testing.T) {
	db := dbtest.New(t)
	all := enrolMembers(t, db, 5, 2)
	url := db.Pool.Config().ConnString()
	t.Setenv("LOYALTY_DATABASE_URL", "")
	defer func(every time.Duration) { progressEvery = every }(progressEvery)
	progressEvery = 0 // a progress line after every batch but the last

	code, stdout, stderr := runCLI(t, afterAsOf, "tiers", "review", "-as-of", "2026-06-01", "-batch", "2", "-database-url", url)
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr:\n%s", code, stderr)
	}
	progress := regexp.MustCompile(`(?m)^loyaltyctl: (\d+) members scanned: (\d+) due \((\d+) changed, (\d+) unchanged\), (\d+) not due, \d+ members/s, after member \d{10}$`).
		FindAllStringSubmatch(stderr, -1)
	// Member numbers are random: which batch holds the gold members is not
	// known, but every member is due.
	if len(progress) != 2 || fmt.Sprint(progress[0][1:3], " ", progress[0][5]) != "[2 2] 0" || fmt.Sprint(progress[1][1:3], " ", progress[1][5]) != "[4 4] 0" {
		t.Errorf("progress lines %q, want 2, after the batches of 2 and 4 members, all due", progress)
	}
	if m := summary.FindStringSubmatch(stdout); m == nil || fmt.Sprint(m[1:]) != "[5 5 2 3 0]" {
		t.Fatalf("summary %q, want 5 members scanned, 5 due: 2 changed and 3 unchanged", stdout)
	}
	for i, mem := range all {
		want := "regular"
		if i < 2 {
			want = "silver"
		}
		if got := tierOf(t, db, mem.Number); got != want {
			t.Errorf("member %d is %s, want %s", i, got, want)
		}
	}
	if n := tierChanges(t, db); n != 2 {
		t.Fatalf("%d tier changes recorded, want 2", n)
	}

	// Again, with the URL from the environment and the same time spelt
	// differently (in UTC): the same review, already finished.
	t.Setenv("LOYALTY_DATABASE_URL", url)
	code, stdout, stderr = runCLI(t, afterAsOf, "tiers", "review", "-as-of", "2026-05-31T16:00:00Z")
	if code != 0 {
		t.Fatalf("second run: exit %d, want 0; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "already finished: 5 members scanned: 5 due (2 changed, 3 unchanged), 0 not due; nothing was changed now") {
		t.Fatalf("second run said %q, want the finished review's figures and nothing changed", stdout)
	}
	if n := tierChanges(t, db); n != 2 {
		t.Fatalf("after the second run %d tier changes recorded, want still 2", n)
	}
	for i := range 2 {
		if got := tierOf(t, db, all[i].Number); got != "silver" {
			t.Errorf("after the second run member %d is %s, want silver", i, got)
		}
	}
}

// signalOnStart sends SIGINT once the review is about to start.
type signalOnStart struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	signals chan os.Signal
	sent    bool
}

func (w *signalOnStart) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.sent && bytes.Contains(p, []byte("tier review as of")) {
		w.sent = true
		w.signals <- syscall.SIGINT
	}
	return w.buf.Write(p)
}

// TestTiersReviewInterruptedResumes: SIGINT stops the review after a
// committed batch with a hint to run it again, and the next run with the
// same -as-of resumes and finishes it.
func TestTiersReviewInterruptedResumes(t *testing.T) {
	db := dbtest.New(t)
	const total = 20
	enrolMembers(t, db, total, 2)
	url := db.Pool.Config().ConnString()
	args := []string{"tiers", "review", "-as-of", "2026-06-01", "-batch", "1", "-database-url", url}

	signals := make(chan os.Signal, 2)
	stderr := &signalOnStart{signals: signals}
	var stdout bytes.Buffer
	code := dispatch(env{stdout: &stdout, stderr: stderr, getenv: func(string) string { return "" }, now: afterAsOf, signals: signals}, args)
	t.Logf("interrupted run: exit %d\nstdout:\n%sstderr:\n%s", code, stdout.String(), stderr.buf.String())
	if code != 1 {
		t.Fatalf("interrupted run: exit %d, want 1", code)
	}
	m := regexp.MustCompile(`interrupted: (\d+) members scanned`).FindStringSubmatch(stderr.buf.String())
	if m == nil || !strings.Contains(stderr.buf.String(), "Run the same command again (-as-of 2026-06-01T00:00:00+08:00) to resume") {
		t.Fatalf("interrupted run said %q, want how far it got and how to resume", stderr.buf.String())
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 || n >= total {
		t.Fatalf("interrupted after %d members, want at least one batch and not all %d", n, total)
	}

	code, out, errOut := runCLI(t, afterAsOf, args...)
	if code != 0 {
		t.Fatalf("resumed run: exit %d, want 0", code)
	}
	// Counted over both runs: every member is due (enrolled more than a
	// year ago), the two gold ones changed.
	if s := summary.FindStringSubmatch(out); s == nil || fmt.Sprint(s[1:]) != fmt.Sprintf("[%d %d 2 %d 0]", total, total, total-2) {
		t.Fatalf("resumed run said %q, want %d members scanned in all, all due, 2 changed and %d unchanged", out, total, total-2)
	}
	if !strings.Contains(errOut, "this run resumed an earlier one") {
		t.Fatalf("resumed run's stderr %q does not say it resumed", errOut)
	}
	if n := tierChanges(t, db); n != 2 {
		t.Fatalf("%d tier changes, want 2", n)
	}
}

// TestTiersReviewWithoutSchema: a database loyaltyd never migrated is an
// error that says how to fix it; loyaltyctl does not migrate it.
func TestTiersReviewWithoutSchema(t *testing.T) {
	db := dbtest.New(t)
	if _, err := db.Pool.Exec(context.Background(), `CREATE SCHEMA empty`); err != nil {
		t.Fatal(err)
	}
	url := db.Pool.Config().ConnString() + " search_path=empty"
	code, _, stderr := runCLI(t, afterAsOf, "tiers", "review", "-as-of", "2026-06-01", "-database-url", url)
	if code != 1 || !strings.Contains(stderr, "does not exist") || !strings.Contains(stderr, "start loyaltyd once") {
		t.Fatalf("exit %d, stderr %q; want 1 with the database's error and the hint to start loyaltyd once", code, stderr)
	}
	var tables int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'empty'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("%d tables in the empty schema (%v): loyaltyctl must not migrate", tables, err)
	}
}

func TestUsage(t *testing.T) {
	t.Setenv("LOYALTY_DATABASE_URL", "")
	t.Setenv("LOYALTY_DATA_DIR", "")
	noServer := t.TempDir()
	// A killed loyaltyd's file, naming a socket directory gone with it.
	killed := t.TempDir()
	if err := datadir.WriteURL(killed, "host="+filepath.Join(killed, "gone")+" port=5432 user=postgres dbname=loyalty"); err != nil {
		t.Fatal(err)
	}
	const past = "2026-06-01T00:00:00+08:00" // no time zone to look up in the database
	for _, tc := range []struct {
		args         []string
		code         int
		stdout, errs string
	}{
		{args: nil, code: 2, errs: "tiers review"},
		{args: []string{"-h"}, code: 0, stdout: "tiers review"},
		{args: []string{"help"}, code: 0, stdout: "Commands:"},
		{args: []string{"tiers", "-h"}, code: 0, stdout: "review"},
		{args: []string{"tiers"}, code: 2, errs: "a subcommand is required"},
		{args: []string{"tiers", "promote"}, code: 2, errs: `unknown subcommand "promote"`},
		{args: []string{"frobnicate"}, code: 2, errs: `unknown command "frobnicate"`},
		{args: []string{"report"}, code: 2, errs: "a subcommand is required"},
		{args: []string{"report", "roll-forward", "-database-url", "postgres://x/y"}, code: 2, errs: "-to is required"},
		{args: []string{"reconcile", "-h"}, code: 0, stdout: "exits 1 when there is any"},
		{args: []string{"verify-seals"}, code: 2, errs: "LOYALTY_DATABASE_URL"},
		{args: []string{"tiers", "review", "-h"}, code: 0, stdout: "-as-of"},
		{args: []string{"tiers", "review", "-as-of", "2026-06-01"}, code: 2, errs: "LOYALTY_DATABASE_URL"},
		// No URL, and no loyaltyd in embedded mode on the data directory.
		{args: []string{"tiers", "review", "-as-of", "2026-06-01", "-data-dir", noServer}, code: 2,
			errs: "no loyaltyd runs in embedded mode on " + noServer + " (it has no database-url file): start loyaltyd (make run) or give -database-url"},
		{args: []string{"report", "trial-balance"}, code: 2, errs: "no loyaltyd runs in embedded mode on .data/postgres"},
		{args: []string{"report", "trial-balance", "-data-dir", killed}, code: 2, errs: "is left from one that was killed"},
		{args: []string{"expire", "-h"}, code: 0, stdout: "-data-dir"},
		{args: []string{"tiers", "review", "-database-url", "postgres://x/y"}, code: 2, errs: "-as-of is required"},
		{args: []string{"tiers", "review", "-database-url", "postgres://x/y", "-as-of", "1 June"}, code: 2, errs: `-as-of "1 June": give a date like 2026-12-01`},
		{args: []string{"tiers", "review", "-database-url", "postgres://x/y", "-as-of", past, "-batch", "0"}, code: 2, errs: "-batch 0"},
		{args: []string{"tiers", "review", "-database-url", "postgres://x/y", "-as-of", past, "-batch", "5001"}, code: 2, errs: "must be 1 to 5000"},
		{args: []string{"tiers", "review", "-no-such-flag"}, code: 2, errs: "flag provided but not defined"},
		{args: []string{"tiers", "review", "-as-of", "2026-06-01", "extra"}, code: 2, errs: "unexpected arguments"},
		{args: []string{"expire", "-database-url", "postgres://x/y", "-as-of", "2026-06-02T00:00:00+08:00"}, code: 2, errs: "-as-of 2026-06-02T00:00:00+08:00 is in the future"},
		{args: []string{"report", "roll-forward", "-database-url", "postgres://x/y", "-to", "2026-07-01T00:00"}, code: 2, errs: `-to "2026-07-01T00:00": give a date`},
	} {
		code, stdout, stderr := runCLI(t, afterAsOf, tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.errs) {
			t.Errorf("loyaltyctl %q: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr with %q",
				tc.args, code, stdout, stderr, tc.code, tc.stdout, tc.errs)
		}
	}
}

// TestParseTime: the rule of every date flag. The programme's zone is
// Shanghai (UTC+8, no daylight saving time) here.
func TestParseTime(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rule, in string
		zone     *time.Location
		want     string // RFC 3339, as the result prints
	}{
		{"a plain date is midnight in the programme's time zone", "2026-11-27", shanghai, "2026-11-27T00:00:00+08:00"},
		{"a plain date is midnight in the programme's time zone, on New Year's Day", "2026-01-01", shanghai, "2026-01-01T00:00:00+08:00"},
		{"a plain date follows the programme's zone, daylight saving time included", "2027-03-14", newYork, "2027-03-14T00:00:00-05:00"},
		{"a plain date follows the programme's zone, in summer time", "2027-07-01", newYork, "2027-07-01T00:00:00-04:00"},
		{"a plain date on a leap day", "2028-02-29", shanghai, "2028-02-29T00:00:00+08:00"},
		{"an RFC 3339 time keeps its offset", "2026-11-27T00:00:00Z", shanghai, "2026-11-27T00:00:00Z"},
		{"an RFC 3339 time keeps its offset, another zone's", "2026-11-27T08:00:00+08:00", newYork, "2026-11-27T08:00:00+08:00"},
		{"an RFC 3339 time keeps its fraction", "2026-12-01T10:30:00.5Z", shanghai, "2026-12-01T10:30:00.5Z"},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			asked := 0
			got, err := parseTime("as-of", tc.in, func(day time.Time) (*time.Location, error) {
				asked++
				if day.Format(time.DateOnly) != tc.in {
					t.Errorf("the zone was asked for %s, want the day %s", day, tc.in)
				}
				return tc.zone, nil
			})
			if err != nil || got.Format(time.RFC3339Nano) != tc.want {
				t.Fatalf("parseTime(%q) = %s, %v; want %s", tc.in, got.Format(time.RFC3339Nano), err, tc.want)
			}
			if plain := !strings.Contains(tc.in, "T"); (asked == 1) != plain {
				t.Errorf("the programme's zone was looked up %d times; want once for a plain date, never for an RFC 3339 time", asked)
			}
		})
	}

	t.Run("bad inputs are refused naming the flag, before any look-up", func(t *testing.T) {
		for _, in := range []string{"", "2026-13-01", "2026-02-30", "01/12/2026", "2026-12-01 00:00", "2026-12-01T00:00:00", "1 June", "yesterday"} {
			_, err := parseTime("to", in, func(time.Time) (*time.Location, error) {
				t.Errorf("%q: the zone was looked up", in)
				return shanghai, nil
			})
			var zone *zoneError
			if err == nil || !strings.HasPrefix(err.Error(), fmt.Sprintf("-to %q: give a date like 2026-12-01", in)) || errors.As(err, &zone) {
				t.Errorf("parseTime(%q) = %v; want a usage error naming -to", in, err)
			}
		}
	})

	t.Run("a zone that cannot be looked up is an error of its own, not a usage error", func(t *testing.T) {
		_, err := parseTime("as-of", "2026-06-01", func(time.Time) (*time.Location, error) { return nil, errors.New("connection refused") })
		var zone *zoneError
		if !errors.As(err, &zone) || !strings.Contains(err.Error(), "-as-of 2026-06-01: the programme's time zone: connection refused") {
			t.Errorf("got %v; want a *zoneError naming the flag and the cause", err)
		}
	})
}

// TestCtrlCWhileConnectingStopsAtOnce: a database that accepts the
// connection and never answers (a frozen server) held loyaltyctl for two
// minutes, deaf to Ctrl-C; SIGINT now gives up at once, saying so.
func TestCtrlCWhileConnectingStopsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	defer func() {
		ln.Close()
		for len(accepted) > 0 {
			(<-accepted).Close()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			select {
			case accepted <- c: // held open, silent
			default:
				c.Close()
			}
		}
	}()
	url := "postgres://nobody@" + ln.Addr().String() + "/loyalty?sslmode=disable"
	signals := make(chan os.Signal, 2)
	go func() {
		time.Sleep(300 * time.Millisecond)
		signals <- syscall.SIGINT
	}()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	code := dispatch(env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, now: afterAsOf, signals: signals},
		[]string{"reconcile", "-database-url", url})
	if took := time.Since(start); code != exitError || took > 5*time.Second || !strings.Contains(stderr.String(), "interrupted while connecting") {
		t.Fatalf("exit %d after %s; stderr:\n%s\nwant 1 soon after SIGINT, saying so", code, took, stderr.String())
	}
}
