package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/rpc"
)

// importEnv is the service on a fresh database (a real HTTP server), with
// the chain's hotel SH-HQ-001, an admin key and a booking-channel key.
type importEnv struct {
	ctx               context.Context
	db                *database.DB
	url               string
	adminKey, bookKey string
	clock             *testclock.Clock
	booking           loyaltyv1connect.BookingServiceClient
	memberSvc         loyaltyv1connect.MemberServiceClient
	adminSvc          loyaltyv1connect.AdminServiceClient
}

// importNow is the service's clock in these tests: the stays of November
// 2026 are over, one ending on 2026-11-23 is not.
var importNow = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

func newImportEnv(t *testing.T) *importEnv {
	t.Helper()
	ctx := context.Background()
	db := dbtest.New(t)
	clock := testclock.Ticking(importNow, time.Millisecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now, Outbox: events.OfTransaction})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	keys := apikeys.New(l, clock.Now)
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := progs.PutProperty(ctx, "test", "property-SH", programmes.Property{ID: "SH-HQ-001", Name: "Shanghai Hongqiao"}); err != nil {
		t.Fatal(err)
	}
	srv, err := rpc.New(rpc.Config{Ledger: l, Members: members.New(l, clock.Now), Keys: keys, Programmes: progs, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	_, admin, err := keys.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, booking, err := keys.Create(ctx, "test", "booking-key", apikeys.CreateRequest{Name: "pms", Role: apikeys.RoleBookingChannel})
	if err != nil {
		t.Fatal(err)
	}
	e := &importEnv{db: db, url: ts.URL, adminKey: admin, bookKey: booking, clock: clock, ctx: ctx}
	e.booking = loyaltyv1connect.NewBookingServiceClient(http.DefaultClient, ts.URL, bearerOf(booking))
	e.memberSvc = loyaltyv1connect.NewMemberServiceClient(http.DefaultClient, ts.URL, bearerOf(booking))
	e.adminSvc = loyaltyv1connect.NewAdminServiceClient(http.DefaultClient, ts.URL, bearerOf(admin))
	return e
}

func bearerOf(key string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+key)
			return next(ctx, req)
		}
	}))
}

// enroll enrols n members named "Li Wei" and returns their numbers.
func (e *importEnv) enroll(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for i := range n {
		res, err := e.memberSvc.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{
			IdempotencyKey: fmt.Sprintf("enrol-%d", i), FullName: "Li Wei", Email: "li.wei@example.com", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Msg.GetMember().GetMemberNumber())
	}
	return out
}

func (e *importEnv) count(t *testing.T, query string) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(e.ctx, query).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// stayTransactions counts the earning transactions of stays.
func (e *importEnv) stayTransactions(t *testing.T) int {
	return e.count(t, `SELECT count(*) FROM transactions WHERE kind = 'earn'`)
}

// writeFile writes the lines to a file of the test's, named name.
func writeFile(t *testing.T, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readResults reads a result file: its rows by line, after the header.
func readResults(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) == 0 || strings.Join(recs[0], ",") != strings.Join(resultColumns, ",") {
		t.Fatalf("result header %v", recs)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, c := range resultColumns {
			m[c] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// wantRow is what a row of the result file must say (empty: anything).
type wantRow struct {
	row, status, code, field, contains string
}

func checkResults(t *testing.T, got []map[string]string, want []wantRow) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d result rows, want %d: %v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g["row"] != w.row || g["status"] != w.status || g["code"] != w.code || g["field"] != w.field || !strings.Contains(g["error"], w.contains) {
			t.Errorf("result %d: %v, want %+v", i, g, w)
		}
		switch w.status {
		case "recorded":
			if g["transaction_id"] == "" || g["points"] == "" || g["points"] == "0" || g["tier"] == "" {
				t.Errorf("result %d: recorded without its transaction, points or tier: %v", i, g)
			}
		case "refused":
			if g["error"] == "" {
				t.Errorf("result %d: refused without a message: %v", i, g)
			}
		}
	}
}

const stayHeader = "property_id,stay_id,member_number,arrival_date,departure_date,room_charges,room_charge,nights,currency_code,channel,booked_for_other,unbooked_extension_nights,booked_at"

// TestImportReportsEveryRowInFileOrder: a CSV of good rows, rows the file
// alone refuses (a date that is no date, nights that do not match the
// dates, a charge that is no amount, an unknown channel, a missing value,
// booked_at after departure), rows the service refuses (an unknown hotel,
// an unknown member, a departure in the future), the same booking twice in
// the file and a booking recorded earlier by a single RecordStay: the
// result file says each row's outcome on the row's own line number, the
// summary counts the refusals by reason, and the exit status is 1.
func TestImportReportsEveryRowInFileOrder(t *testing.T) {
	e := newImportEnv(t)
	m := e.enroll(t, 2)
	early, err := e.booking.RecordStay(e.ctx, connect.NewRequest(&loyaltyv1.RecordStayRequest{IdempotencyKey: "pms-early", MemberNumber: m[1],
		PropertyId: "SH-HQ-001", StayId: "B-EARLY", ArrivalDate: "2026-11-01", DepartureDate: "2026-11-02", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB,
		Nights: []*loyaltyv1.StayNight{{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: "300.00"}}}}))
	if err != nil {
		t.Fatal(err)
	}
	good := "SH-HQ-001,B-1," + m[0] + ",2026-11-01,2026-11-03,388.00;388.00,,,CNY,APP,,,2026-10-01T10:00:00+08:00"
	path := writeFile(t, "stays.csv", stayHeader,
		good, // line 2
		"SH-HQ-001,B-2,"+m[1]+",2026-11-05,2026-11-08,,300.00,3,CNY,web,true,1,",    // 3: one charge for 3 nights
		"SH-HQ-001,B-3,"+m[0]+",2026-02-30,2026-03-02,388.00,,,CNY,APP,,,",          // 4
		"SH-HQ-001,B-4,"+m[0]+",2026-11-05,2026-11-08,,300.00,2,CNY,APP,,,",         // 5
		"SH-HQ-001,B-5,"+m[0]+",2026-11-05,2026-11-07,\"388.00;3,88\",,,CNY,APP,,,", // 6
		"SH-HQ-001,B-6,"+m[0]+",2026-11-05,2026-11-06,388.00,,,CNY,PIGEON,,,",       // 7
		"NOWHERE,B-7,"+m[0]+",2026-11-05,2026-11-06,388.00,,,CNY,APP,,,",            // 8
		"SH-HQ-001,B-8,0000000000,2026-11-05,2026-11-06,388.00,,,CNY,APP,,,",        // 9
		"SH-HQ-001,B-9,"+m[0]+",2026-11-21,2026-11-23,388.00;388.00,,,CNY,APP,,,",   // 10
		"SH-HQ-001,B-10,,2026-11-05,2026-11-06,388.00,,,CNY,APP,,,",                 // 11
		"SH-HQ-001,B-1,"+m[0]+",2026-11-01,2026-11-03,400.00;400.00,,,CNY,APP,,,",   // 12: B-1 again, edited
		good, // 13: line 2 again
		"SH-HQ-001,B-EARLY,"+m[1]+",2026-11-01,2026-11-02,300.00,,,CNY,WEB,,,",                  // 14
		"SH-HQ-001,B-11,"+m[0]+",2026-11-05,2026-11-06,388.00,,,CNY,APP,,,2026-11-09T00:00:00Z", // 15
		"SH-HQ-001,B-12,"+m[0]+",2026-11-10,2026-11-12,500.00;500.00,,,CNY,FRONT_DESK,,,",       // 16
	)
	before := e.stayTransactions(t)
	code, stdout, _ := runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", e.bookKey, "-batch", "4", path)
	if code != exitError {
		t.Fatalf("exit %d, want 1", code)
	}
	got := readResults(t, path+".results.csv")
	checkResults(t, got, []wantRow{
		{row: "2", status: "recorded"},
		{row: "3", status: "recorded"},
		{row: "4", status: "refused", code: "invalid_argument", field: "arrival_date", contains: "2026-02-30"},
		{row: "5", status: "refused", code: "invalid_argument", field: "nights", contains: "3 nights"},
		{row: "6", status: "refused", code: "invalid_argument", field: "room_charges", contains: "3,88"},
		{row: "7", status: "refused", code: "invalid_argument", field: "channel", contains: "PIGEON"},
		{row: "8", status: "refused", code: "not_found", field: "property_id"},
		{row: "9", status: "refused", code: "not_found"},
		{row: "10", status: "refused", code: "invalid_argument", field: "departure_date", contains: "after today"},
		{row: "11", status: "refused", code: "invalid_argument", field: "member_number", contains: "required"},
		{row: "12", status: "already_recorded"},
		{row: "13", status: "already_recorded"},
		{row: "14", status: "already_recorded"},
		{row: "15", status: "refused", code: "invalid_argument", field: "booked_at", contains: "after the departure"},
		{row: "16", status: "recorded"},
	})
	if got[0]["booked_at"] != "2026-10-01T10:00:00+08:00" {
		t.Errorf("booked_at not in the results: %v", got[0])
	}
	for _, i := range []int{10, 11} { // B-1 twice: line 2's transaction
		if got[i]["transaction_id"] != got[0]["transaction_id"] {
			t.Errorf("line %s: transaction %q, want line 2's %q", got[i]["row"], got[i]["transaction_id"], got[0]["transaction_id"])
		}
	}
	if id := early.Msg.GetTransaction().GetTransactionId(); got[12]["transaction_id"] != id {
		t.Errorf("B-EARLY: transaction %q, want the single call's %q", got[12]["transaction_id"], id)
	}
	if n := e.stayTransactions(t) - before; n != 3 {
		t.Errorf("%d stays posted, want 3", n)
	}
	for _, want := range []string{"15 rows: 3 recorded, 3 already recorded, 9 refused\n", "refused by reason:\n",
		"        1  invalid_argument arrival_date\n", "        1  not_found\n", "        1  not_found property_id\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary without %q:\n%s", want, stdout)
		}
	}
	// Again: nothing is recorded twice; the rows recorded are replayed.
	code, stdout, _ = runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", e.bookKey, path)
	if code != exitError || !strings.Contains(stdout, "15 rows: 3 recorded, 3 already recorded, 9 refused\n") {
		t.Errorf("second run: exit %d\n%s", code, stdout)
	}
	again := readResults(t, path+".results.csv")
	for i := range got {
		if again[i]["status"] != got[i]["status"] || again[i]["transaction_id"] != got[i]["transaction_id"] || again[i]["points"] != got[i]["points"] {
			t.Errorf("second run, line %s: %v, first %v", got[i]["row"], again[i], got[i])
		}
	}
	if n := e.stayTransactions(t) - before; n != 3 {
		t.Errorf("%d stays posted after two runs, want 3", n)
	}
	// A run that has no result (a wrong key) leaves the last results.
	resultsBefore, err := os.ReadFile(path + ".results.csv")
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, _ = runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", "lk_not_a_key", path)
	resultsAfter, err := os.ReadFile(path + ".results.csv")
	if code != exitError || err != nil || string(resultsAfter) != string(resultsBefore) || !strings.Contains(stdout, "no row has a result") {
		t.Errorf("a run with a wrong key: exit %d, %v\n%s\nthe results file changed: %v", code, err, stdout, string(resultsAfter) != string(resultsBefore))
	}
	if _, err := os.Stat(path + ".results.csv.partial"); !os.IsNotExist(err) {
		t.Errorf("a partial results file is left: %v", err)
	}
}

// TestImportReadsJSONLines: the same rows as JSON Lines (numbers and
// lists where CSV has text); an unknown key refuses its row, naming it,
// and so does a line that is not JSON.
func TestImportReadsJSONLines(t *testing.T) {
	e := newImportEnv(t)
	m := e.enroll(t, 1)[0]
	path := writeFile(t, "stays.jsonl",
		`{"property_id":"SH-HQ-001","stay_id":"J-1","member_number":"`+m+`","arrival_date":"2026-11-01","departure_date":"2026-11-03","room_charges":["388.00","388.00"],"currency_code":"CNY","channel":"app"}`,
		`{"property_id":"SH-HQ-001","stay_id":"J-2","member_number":"`+m+`","arrival_date":"2026-11-05","departure_date":"2026-11-07","room_charge":250.00,"nights":2,"currency_code":"CNY","channel":"FRONT_DESK","booked_for_other":false}`,
		``,
		`{"property_id":"SH-HQ-001","stay_id":"J-3","member_number":"`+m+`","arrival_date":"2026-11-08","departure_date":"2026-11-09","room_charges":"300.00","currency_code":"CNY","channel":"WEB","colour":"red"}`,
		`property_id=SH-HQ-001`,
	)
	// The file may come before the flags.
	code, stdout, _ := runCLI(t, afterAsOf, "import", "stays", path, "-url", e.url, "-dry-run=false", "-key", e.bookKey)
	if code != exitError {
		t.Fatalf("exit %d, want 1", code)
	}
	checkResults(t, readResults(t, path+".results.csv"), []wantRow{
		{row: "1", status: "recorded"},
		{row: "2", status: "recorded"},
		{row: "4", status: "refused", code: "invalid_argument", contains: `unknown key "colour"`},
		{row: "5", status: "refused", code: "invalid_argument", contains: "not a JSON object"},
	})
	if !strings.Contains(stdout, "4 rows: 2 recorded, 0 already recorded, 2 refused\n") {
		t.Errorf("summary:\n%s", stdout)
	}
}

// TestImportUsageErrors: a CSV header with an unknown column stops the
// import before anything is sent (exit 1, naming it); bad flags, no file
// or two exit 2.
func TestImportUsageErrors(t *testing.T) {
	e := newImportEnv(t)
	bad := writeFile(t, "bad.csv", stayHeader+",colour", "SH-HQ-001,B-1,1,2026-11-01,2026-11-02,1.00,,,CNY,APP,,,,red")
	code, _, stderr := runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", e.bookKey, bad)
	if code != exitError || !strings.Contains(stderr, `unknown column "colour"`) {
		t.Errorf("unknown column: exit %d\n%s", code, stderr)
	}
	for _, args := range [][]string{
		{"import", "stays", "-url", e.url, "-key", e.bookKey},
		{"import", "stays", "-url", e.url, "-key", e.bookKey, bad, bad},
		{"import", "stays", "-url", e.url, "-key", e.bookKey, bad, "-pigeon"},
		{"import", "stays", "-url", e.url, "-key", e.bookKey, "-batch", "1001", bad},
		{"import", "stays", "-url", e.url, "-key", e.bookKey, "-parallel", "9", bad},
		{"import", "stays", "-url", e.url, "-key", e.bookKey, "-api", "pigeon", bad},
		{"import", "stays", "-url", e.url, "-key", e.bookKey, filepath.Join(t.TempDir(), "missing.csv")},
	} {
		if code, _, _ := runCLI(t, afterAsOf, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// stayFile writes a CSV of n stays of the given members, each member's
// stays one after another in time (departures in November 2026).
func stayFile(t *testing.T, members []string, n int) string {
	t.Helper()
	lines := []string{stayHeader}
	for i := range n {
		day := 1 + (i/len(members))%18
		lines = append(lines, fmt.Sprintf("SH-HQ-001,S-%d,%s,2026-11-%02d,2026-11-%02d,%d.00,,,CNY,APP,,,", i, members[i%len(members)], day, day+1, 200+i%300))
	}
	return writeFile(t, "many.csv", lines...)
}

// TestImportResumesAfterKill: loyaltyctl killed (SIGKILL) mid-file, then
// run again on the same file, records every stay exactly once: as many
// stay transactions as rows, every row recorded (the rows recorded before
// the kill are replayed with their first transactions).
func TestImportResumesAfterKill(t *testing.T) {
	e := newImportEnv(t)
	ms := e.enroll(t, 40)
	const rows = 2000
	path := stayFile(t, ms, rows)
	bin := filepath.Join(t.TempDir(), "loyaltyctl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	before := e.stayTransactions(t)
	cmd := exec.Command(bin, "import", "stays", "-batch", "50", "-parallel", "2", path)
	cmd.Env = append(os.Environ(), "LOYALTY_URL="+e.url, "LOYALTY_KEY="+e.bookKey)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Killed once some results are in the file.
	results := path + ".results.csv"
	start := time.Now()
	for {
		b, _ := os.ReadFile(results)
		if bytes.Count(b, []byte("\n")) > 200 {
			break
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("no progress in a minute:\n%s", out.String())
		}
		time.Sleep(5 * time.Millisecond) // polling the file: no event to wait on
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	partial := e.stayTransactions(t) - before
	t.Logf("killed with %d of %d stays recorded", partial, rows)
	if partial == 0 || partial >= rows {
		t.Fatalf("killed with %d of %d stays recorded: not mid-file", partial, rows)
	}
	code, stdout, _ := runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", e.bookKey, "-batch", "50", path)
	if code != exitOK || !strings.Contains(stdout, fmt.Sprintf("%d rows: %d recorded, 0 already recorded, 0 refused\n", rows, rows)) {
		t.Fatalf("resumed: exit %d\n%s", code, stdout)
	}
	if n := e.stayTransactions(t) - before; n != rows {
		t.Errorf("%d stays posted, want %d (each once)", n, rows)
	}
	got := readResults(t, results)
	ids := map[string]bool{}
	for _, r := range got {
		if r["status"] != "recorded" || ids[r["transaction_id"]] {
			t.Fatalf("row %v: not recorded once", r)
		}
		ids[r["transaction_id"]] = true
	}
}

// TestImportStopsAfterTheBatchInFlight: SIGINT while a batch is in flight
// lets it finish, sends no other, says how to resume and exits 1; the
// results file has exactly the batches sent.
func TestImportStopsAfterTheBatchInFlight(t *testing.T) {
	e := newImportEnv(t)
	ms := e.enroll(t, 5)
	path := stayFile(t, ms, 60)
	target, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	signals := make(chan os.Signal, 2)
	var calls atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	// The signal arrives while the second batch is in flight.
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 2 {
			signals <- syscall.SIGINT
			// The watcher has taken it before the batch answers.
			for len(signals) > 0 {
				time.Sleep(time.Millisecond) // polling the channel: the watcher has no other signal
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	var stdout, stderr bytes.Buffer
	code := dispatch(env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, now: afterAsOf, signals: signals},
		[]string{"import", "stays", "-url", front.URL, "-key", e.bookKey, "-batch", "10", "-parallel", "1", path})
	t.Logf("stdout:\n%sstderr:\n%s", stdout.String(), stderr.String())
	if code != exitError {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(stderr.String(), "stopped after line 21: 20 of 60 rows have results") || !strings.Contains(stderr.String(), "Run the same command again to resume") {
		t.Errorf("no resume hint")
	}
	if n := len(readResults(t, path+".results.csv")); n != 20 {
		t.Errorf("%d results, want the 2 batches' 20", n)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

// partner creates a partner with rates in force since October 2026, a
// hotel of its, and a key of its; it returns the key.
func (e *importEnv) partner(t *testing.T, id, hotel string) string {
	t.Helper()
	card := &loyaltyv1.RateCard{PointsPerCurrencyUnit: "1", TierMultiplier: map[string]string{"regular": "1", "silver": "1", "gold": "1.2", "platinum": "1.5"}}
	if _, err := e.adminSvc.CreatePartner(e.ctx, connect.NewRequest(&loyaltyv1.CreatePartnerRequest{
		IdempotencyKey: "partner-" + id, PartnerId: id, Name: "Partner " + id, SettlementCurrency: "CNY",
		Rates: &loyaltyv1.PartnerRates{IssueRate: "0.0085", ReimbursementRate: "0.0061", RateCard: card,
			EffectiveAt: timestamppb.New(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))}})); err != nil {
		t.Fatal(err)
	}
	if _, err := e.adminSvc.PutProperty(e.ctx, connect.NewRequest(&loyaltyv1.PutPropertyRequest{
		IdempotencyKey: "property-" + hotel, Property: &loyaltyv1.Property{PropertyId: hotel, Name: "Hotel " + hotel, PartnerId: id}})); err != nil {
		t.Fatal(err)
	}
	res, err := e.adminSvc.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{
		IdempotencyKey: "key-" + id, Name: id + "-pms", Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_PARTNER, PartnerId: id}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetSecret()
}

// TestAPartnersImportAwardsOnlyAtItsOwnHotels: a partner's key imports a
// file (-api auto: the service answers PERMISSION_DENIED on
// BookingService, so the rows go to AwardStays) with stays at its own
// hotel, at another partner's (refused per row, not_found, as AwardStay
// refuses it), one without the member's family name (refused before it
// is sent) and one with a wrong one. A dry run before says the same and
// writes nothing.
func TestAPartnersImportAwardsOnlyAtItsOwnHotels(t *testing.T) {
	e := newImportEnv(t)
	alpha := e.partner(t, "ALPHA", "A-1")
	e.partner(t, "BETA", "B-1")
	m := e.enroll(t, 2)
	_, err := loyaltyv1connect.NewBookingServiceClient(http.DefaultClient, e.url, bearerOf(alpha)).RecordStays(e.ctx,
		connect.NewRequest(&loyaltyv1.RecordStaysRequest{Stays: []*loyaltyv1.RecordStayRequest{{}}}))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a partner's key on RecordStays: %v, want permission_denied (what -api auto relies on)", err)
	}
	path := writeFile(t, "partner.csv", "property_id,stay_id,member_number,arrival_date,departure_date,room_charges,currency_code,family_name",
		"A-1,P-1,"+m[0]+",2026-11-10,2026-11-11,500.00,CNY,Wei",
		"B-1,P-2,"+m[0]+",2026-11-10,2026-11-11,500.00,CNY,Wei",
		"A-1,P-3,"+m[1]+",2026-11-12,2026-11-14,300.00;300.00,CNY,wei",
		"A-1,P-4,"+m[1]+",2026-11-15,2026-11-16,300.00,CNY,",
		"A-1,P-5,"+m[1]+",2026-11-15,2026-11-16,300.00,CNY,Wrong",
	)
	// A dry run first: the awards it would make, nothing written.
	written := `SELECT (SELECT count(*) FROM transactions) + (SELECT count(*) FROM partner_transactions) + (SELECT count(*) FROM booking_outcomes)`
	before := e.count(t, written)
	runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", alpha, "-dry-run", path)
	dry := readResults(t, path+".results.csv")
	if n := e.count(t, written); n != before {
		t.Errorf("a partner's dry run wrote %d rows", n-before)
	}
	code, stdout, _ := runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", alpha, path)
	if code != exitError {
		t.Fatalf("exit %d, want 1", code)
	}
	got := readResults(t, path+".results.csv")
	for i := range got {
		want := got[i]["status"]
		if want == "recorded" {
			want = "would_record"
		}
		if dry[i]["status"] != want || dry[i]["points"] != got[i]["points"] || dry[i]["code"] != got[i]["code"] {
			t.Errorf("line %s: dry run %v, import %v", got[i]["row"], dry[i], got[i])
		}
	}
	checkResults(t, got, []wantRow{
		{row: "2", status: "recorded"},
		{row: "3", status: "refused", code: "not_found", contains: "B-1"},
		{row: "4", status: "recorded"},
		{row: "5", status: "refused", code: "invalid_argument", field: "family_name", contains: "partner"},
		// The service names fields as JSON spells them.
		{row: "6", status: "refused", code: "not_found", contains: "familyName"},
	})
	if got[0]["points"] != "500" || got[2]["points"] != "600" {
		t.Errorf("points %s and %s, want 500 and 600 (1 per CNY)", got[0]["points"], got[2]["points"])
	}
	if !strings.Contains(stdout, "through AllianceService.AwardStays") {
		t.Errorf("summary:\n%s", stdout)
	}
}

// TestImportEarnsWhatSingleCallsEarn: the same rows, imported on one
// database and sent one by one to RecordStay on another, earn the same
// points and leave the same tiers, row by row (first stays, upgrades,
// a member's stays in order across batches and lanes).
func TestImportEarnsWhatSingleCallsEarn(t *testing.T) {
	a, b := newImportEnv(t), newImportEnv(t)
	ma, mb := a.enroll(t, 6), b.enroll(t, 6)
	var rows []string
	type stay struct {
		member           int
		arrival, charges string
		nights           int
		channel          string
		forOther         bool
	}
	var stays []stay
	for i := range 60 {
		stays = append(stays, stay{member: i % 6, arrival: fmt.Sprintf("2026-10-%02d", 1+i/3), nights: 1 + i%3,
			charges: fmt.Sprintf("%d.00", 400+50*(i%7)), channel: []string{"APP", "FRONT_DESK", "WEB"}[i%3], forOther: i%11 == 0})
	}
	row := func(members []string, i int, s stay) string {
		arr, _ := time.Parse(time.DateOnly, s.arrival)
		return fmt.Sprintf("SH-HQ-001,E-%d,%s,%s,%s,,%s,%d,CNY,%s,%t,,", i, members[s.member], s.arrival,
			arr.AddDate(0, 0, s.nights).Format(time.DateOnly), s.charges, s.nights, s.channel, s.forOther)
	}
	rows = append(rows, stayHeader)
	for i, s := range stays {
		rows = append(rows, row(ma, i, s))
	}
	path := writeFile(t, "equal.csv", rows...)
	if code, _, _ := runCLI(t, afterAsOf, "import", "stays", "-url", a.url, "-key", a.bookKey, "-batch", "7", "-parallel", "3", path); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	got := readResults(t, path+".results.csv")
	for i, s := range stays {
		arr, _ := time.Parse(time.DateOnly, s.arrival)
		req := &loyaltyv1.RecordStayRequest{IdempotencyKey: fmt.Sprintf("single-%d", i), MemberNumber: mb[s.member], PropertyId: "SH-HQ-001",
			StayId: fmt.Sprintf("E-%d", i), ArrivalDate: s.arrival, DepartureDate: arr.AddDate(0, 0, s.nights).Format(time.DateOnly),
			Channel: loyaltyv1.BookingChannel(loyaltyv1.BookingChannel_value["BOOKING_CHANNEL_"+s.channel]), BookedForOther: s.forOther}
		for range s.nights {
			req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: s.charges}})
		}
		res, err := b.booking.RecordStay(b.ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		points := fmt.Sprint(res.Msg.GetTransaction().GetAvailablePointsDelta())
		tier := strings.ToLower(strings.TrimPrefix(res.Msg.GetTier().String(), "TIER_"))
		if got[i]["row"] != fmt.Sprint(i+2) {
			t.Fatalf("result %d is line %s: not in the file's order", i, got[i]["row"])
		}
		if got[i]["points"] != points || got[i]["tier"] != tier {
			t.Errorf("row %d: imported %s points, tier %s; single call %s, %s", i+2, got[i]["points"], got[i]["tier"], points, tier)
		}
	}
}

// TestADryRunWritesNothing: -dry-run answers would_record with the points
// and tier the import then records (one stay per member: a dry run does
// not see a member's earlier rows), refuses what the import refuses,
// answers already_recorded for a booking recorded before, and writes
// nothing at all: no transaction, booking outcome, qualifying stay, tier
// change, first-stay claim, idempotency key or event.
func TestADryRunWritesNothing(t *testing.T) {
	e := newImportEnv(t)
	m := e.enroll(t, 3)
	if _, err := e.booking.RecordStay(e.ctx, connect.NewRequest(&loyaltyv1.RecordStayRequest{IdempotencyKey: "pms-early", MemberNumber: m[2],
		PropertyId: "SH-HQ-001", StayId: "D-EARLY", ArrivalDate: "2026-11-01", DepartureDate: "2026-11-02", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB,
		Nights: []*loyaltyv1.StayNight{{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: "300.00"}}}})); err != nil {
		t.Fatal(err)
	}
	path := writeFile(t, "dry.csv", stayHeader,
		"SH-HQ-001,D-1,"+m[0]+",2026-11-01,2026-11-03,388.00;388.00,,,CNY,APP,,,",
		"SH-HQ-001,D-2,"+m[1]+",2026-11-05,2026-11-08,,300.00,3,CNY,FRONT_DESK,true,1,",
		"SH-HQ-001,D-3,0000000000,2026-11-05,2026-11-06,388.00,,,CNY,APP,,,",
		"SH-HQ-001,D-4,"+m[0]+",2026-11-21,2026-11-23,388.00;388.00,,,CNY,APP,,,",
		"SH-HQ-001,D-EARLY,"+m[2]+",2026-11-01,2026-11-02,300.00,,,CNY,WEB,,,",
		"SH-HQ-001,D-5,"+m[2]+",2026-11-01,2026-11-02,USD,,,CNY,WEB,,,",
	)
	tables := []string{"transactions", "postings", "booking_outcomes", "qualifying_stays", "tier_changes", "first_stay_claims",
		"idempotency_keys", "event_outbox", "events", "member_changes", "partner_transactions"}
	counts := func() map[string]int {
		out := map[string]int{}
		for _, table := range tables {
			out[table] = e.count(t, "SELECT count(*) FROM "+table)
		}
		return out
	}
	before := counts()
	code, stdout, _ := runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", e.bookKey, "-dry-run", path)
	if code != exitError {
		t.Fatalf("exit %d, want 1 (rows refused)", code)
	}
	dry := readResults(t, path+".results.csv")
	checkResults(t, dry, []wantRow{
		{row: "2", status: "would_record"},
		{row: "3", status: "would_record"},
		{row: "4", status: "refused", code: "not_found"},
		{row: "5", status: "refused", code: "invalid_argument", field: "departure_date"},
		{row: "6", status: "already_recorded"},
		{row: "7", status: "refused", code: "invalid_argument", field: "room_charges"},
	})
	if after := counts(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("a dry run wrote: before %v, after %v", before, after)
	}
	if !strings.Contains(stdout, "6 rows (dry run, nothing written): 2 would record, 1 already recorded, 3 refused\n") {
		t.Errorf("summary:\n%s", stdout)
	}
	for _, i := range []int{0, 1} {
		if dry[i]["transaction_id"] != "" || dry[i]["points"] == "" || dry[i]["points"] == "0" || dry[i]["tier"] == "" {
			t.Errorf("row %s: %v, want points and a tier, no transaction", dry[i]["row"], dry[i])
		}
	}
	// The import records what the dry run said.
	runCLI(t, afterAsOf, "import", "stays", "-url", e.url, "-key", e.bookKey, path)
	real := readResults(t, path+".results.csv")
	for _, i := range []int{0, 1} {
		if real[i]["status"] != "recorded" || real[i]["points"] != dry[i]["points"] || real[i]["tier"] != dry[i]["tier"] {
			t.Errorf("row %s: recorded %v, the dry run said %v", real[i]["row"], real[i], dry[i])
		}
	}
}
