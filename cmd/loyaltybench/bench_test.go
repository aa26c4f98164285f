package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/rpc"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// testServer is a real server (HTTP/2 over TLS) on a fresh database, set
// up as rpc's tests set theirs up, but on the run's wall clock
// (testclock.Wall), which the load generator's dates follow too
// (runConfig.Now): guarantees are for arrivals to come, stays are over.
func testServer(t *testing.T) (*database.DB, *ledger.Ledger, *httptest.Server, string) {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	l := ledger.New(db, ledger.Options{Clock: testclock.Wall})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	keys := apikeys.New(l, testclock.Wall)
	progs := programmes.New(l, testclock.Wall)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	srv, err := rpc.New(rpc.Config{Ledger: l, Members: members.New(l, testclock.Wall), Keys: keys, Programmes: progs, Clock: testclock.Wall})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	_, adminSecret, err := keys.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return db, l, ts, adminSecret
}

// TestLoad runs the load generator against the real server for a few
// seconds and checks what it saw against the database: no errors, replays
// answered with the first answer, every acknowledged write in the ledger
// under its key and nothing more, and books that balance.
func TestLoad(t *testing.T) {
	for _, mode := range []string{modeSpread, modeHot} {
		t.Run(mode, func(t *testing.T) { testLoad(t, mode) })
	}
}

func testLoad(t *testing.T, mode string) {
	db, l, ts, key := testServer(t)
	ctx := t.Context()
	m, err := parseMix(defaultMix)
	if err != nil {
		t.Fatal(err)
	}
	cfg := runConfig{URL: ts.URL, Key: key, Clients: 8, Duration: 3 * time.Second, Members: 200, Mix: m,
		Dist: "uniform", Duplicates: 0.05, Mode: mode, Seed: 7, TrackAcks: true, Now: testclock.Wall}
	rep, err := runLoad(ctx, cfg, func() *http.Client { return ts.Client() })
	if err != nil {
		t.Fatal(err)
	}
	if mode == modeHot {
		// Half of hot mode's stays are at the partner's hotel.
		var awards int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM partner_transactions WHERE kind = 'award'`).Scan(&awards); err != nil {
			t.Fatal(err)
		}
		if awards == 0 {
			t.Error("hot mode awarded no stay at its partner's hotel")
		}
	}
	var out strings.Builder
	rep.print(&out)
	t.Log(out.String())

	if n := rep.errorCount(); n != 0 {
		t.Errorf("%d errors: %s; examples: %q", n, formatCodes(rep.errorsByCode()), rep.Examples)
	}
	if rep.Mismatches != 0 {
		t.Errorf("%d replays answered differently from the first answer: %q", rep.Mismatches, rep.Examples)
	}
	if stays := rep.kind(kindStay); stays.Count == 0 || rep.Replays == 0 || len(rep.Acked) == 0 {
		t.Fatalf("the run did too little to check anything: %d stays, %d replays, %d acknowledged", stays.Count, rep.Replays, len(rep.Acked))
	}
	if rep.LedgerTx != int64(len(rep.Acked)) {
		t.Errorf("%d ledger transactions counted, %d acknowledged tracked", rep.LedgerTx, len(rep.Acked))
	}
	problems, err := checkAcknowledged(ctx, db.Pool, rep)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
	found, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range found {
		t.Errorf("discrepancy: %s", d)
	}
}

// TestPacedLoad: with -rate the clients together start no more operations
// than the schedule allows, however fast the service answers.
func TestPacedLoad(t *testing.T) {
	_, _, ts, key := testServer(t)
	m, err := parseMix(defaultMix)
	if err != nil {
		t.Fatal(err)
	}
	const rate, count = 40.0, 40
	cfg := runConfig{URL: ts.URL, Key: key, Clients: 4, Count: count, Members: 20, Mix: m,
		Dist: "uniform", Mode: modeSpread, Seed: 7, Rate: rate, Now: testclock.Wall}
	rep, err := runLoad(t.Context(), cfg, func() *http.Client { return ts.Client() })
	if err != nil {
		t.Fatal(err)
	}
	// Operation n starts no earlier than (n-1)/rate: the last at 39/40 s.
	if earliest := time.Duration(float64(count-1) / rate * float64(time.Second)); rep.Ops != count || rep.Elapsed < earliest {
		t.Fatalf("%d operations in %s at %g/s; want %d, in no less than %s", rep.Ops, rep.Elapsed, rate, count, earliest)
	}
	if rep.modeText() != "spread@40/s" {
		t.Errorf("mode shown as %q", rep.modeText())
	}
	if n := rep.errorCount(); n != 0 {
		t.Errorf("%d errors: %q", n, rep.Examples)
	}
}

// TestBaseline runs the raw-SQL baseline briefly in both modes; its own
// check of the books must pass.
func TestBaseline(t *testing.T) {
	db := dbtest.New(t)
	for _, mode := range []string{modeSpread, modeHot} {
		rep, err := runBaseline(t.Context(), baselineConfig{Clients: 8, Duration: time.Second, Mode: mode, Accounts: 1000, Seed: 3}, db.Pool)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Committed == 0 {
			t.Errorf("%s: no transfer committed", mode)
		}
		if n := rep.errorCount(); n != 0 {
			t.Errorf("%s: %d errors: %q", mode, n, rep.Examples)
		}
		for _, p := range rep.Problems {
			t.Errorf("%s: %s", mode, p)
		}
	}
}

func TestParseMix(t *testing.T) {
	m, err := parseMix("stay=1, get=3")
	if err != nil {
		t.Fatal(err)
	}
	if m.String() != "stay=1,redeem=0,guarantee=0,get=3" || m.total != 4 {
		t.Errorf("got %s (total %d)", m, m.total)
	}
	for _, bad := range []string{"", "stay", "stay=x", "fly=1", "stay=0", "stay=-1"} {
		if _, err := parseMix(bad); err == nil {
			t.Errorf("parseMix(%q) succeeded", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	var s []time.Duration
	for i := 1; i <= 100; i++ {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{.5: 50 * time.Millisecond, .9: 90 * time.Millisecond, .99: 99 * time.Millisecond, 1: 100 * time.Millisecond} {
		if got := percentile(s, p); got != want {
			t.Errorf("p%v = %s, want %s", p*100, got, want)
		}
	}
	if percentile(nil, .5) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

// A phase reads the server's counters by name from its Prometheus text:
// labelled series and other metrics are skipped, and a missing counter is
// an error rather than a zero.
func TestScrapeCountersReadsNamedCounters(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "# HELP loyalty_ledger_groups_total Groups.\n# TYPE loyalty_ledger_groups_total counter\n"+
			"loyalty_ledger_groups_total 12\n"+
			"loyalty_rpc_requests_total{code=\"ok\",procedure=\"/x\"} 99\n"+
			"loyalty_ledger_group_requests_total 42\n")
	}))
	defer srv.Close()
	got, err := scrapeCounters(context.Background(), srv.URL, metricGroups, metricGroupRequests)
	if err != nil || got[metricGroups] != 12 || got[metricGroupRequests] != 42 {
		t.Fatalf("got %v, %v", got, err)
	}
	if _, err := scrapeCounters(context.Background(), srv.URL, metricRetries); err == nil {
		t.Fatal("a missing counter read as zero")
	}
}

// TestStayDatesAreOverAndRecent: on any day, whatever the machine's time
// zone, every stay drawn (up to three nights) is over at noon on its
// departure day in every time zone, none is more than a year and a week
// old, and a guarantee's arrival, two days on at the earliest, is a day
// ahead in every time zone.
func TestStayDatesAreOverAndRecent(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	for _, now := range []time.Time{
		time.Date(2028, 2, 29, 23, 58, 0, 0, newYork),
		time.Date(2031, 1, 1, 0, 0, 0, 0, time.FixedZone("Asia/Shanghai", 8*3600)),
		time.Date(2027, 3, 14, 1, 58, 0, 0, newYork),
		time.Date(2026, 12, 31, 23, 59, 59, 0, time.UTC),
		testclock.Wall(),
	} {
		d := newStayDates(now)
		lastArrival := d.first.AddDate(0, 0, d.days-1)
		// Noon at UTC-12 is the last noon of a day: 00:00 UTC the day after.
		if latestDeparture := lastArrival.AddDate(0, 0, 3); latestDeparture.AddDate(0, 0, 1).After(now) {
			t.Errorf("at %s: a stay can depart on %s, not over everywhere", now, latestDeparture.Format(time.DateOnly))
		}
		if d.first.Before(now.AddDate(-1, 0, -7)) {
			t.Errorf("at %s: stays from %s, more than a year back", now, d.first.Format(time.DateOnly))
		}
		if arrival := d.today.AddDate(0, 0, 2); !arrival.After(now.Add(24 * time.Hour)) {
			t.Errorf("at %s: a guarantee for %s is not a day ahead", now, arrival.Format(time.DateOnly))
		}
	}
}

// TestGeneratedStayFilesAreSortedPastStays: import-ab's file is sorted by
// departure, every stay over two days before now in Shanghai and within
// 180 days, of one to three nights with a charge each, each booking once,
// and reads back as written.
func TestGeneratedStayFilesAreSortedPastStays(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC) // already 7 December in Shanghai
	stays := generateStays(5000, []string{"100000001", "100000002", "100000003"}, []string{"H-1", "H-2"}, now)
	lastDeparture := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	seen := map[string]bool{}
	for i, s := range stays {
		nights := int(s.departure.Sub(s.arrival).Hours() / 24)
		switch {
		case i > 0 && s.departure.Before(stays[i-1].departure):
			t.Fatalf("stay %d departs %s, before stay %d's %s", i, s.departure, i-1, stays[i-1].departure)
		case s.departure.After(lastDeparture) || s.departure.Before(lastDeparture.AddDate(0, 0, -180)):
			t.Fatalf("stay %d departs %s, outside the 180 days up to %s", i, s.departure, lastDeparture)
		case nights < 1 || nights > 3 || len(s.charges) != nights:
			t.Fatalf("stay %d: %d nights, %d charges", i, nights, len(s.charges))
		case seen[s.stayID]:
			t.Fatalf("booking %s twice", s.stayID)
		}
		seen[s.stayID] = true
	}
	if got := stays[len(stays)-1].departure.In(shanghai); got.Format(time.DateOnly) > "2026-12-05" {
		t.Fatalf("the last departure %s is not over", got)
	}
	path := t.TempDir() + "/stays.csv"
	if err := writeStayFile(path, stays); err != nil {
		t.Fatal(err)
	}
	back, err := readStayFile(path)
	if err != nil || len(back) != len(stays) || fmt.Sprint(back[17]) != fmt.Sprint(stays[17]) {
		t.Fatalf("read back %d stays (%v); stay 17 %v, want %v", len(back), err, back[17], stays[17])
	}
}
