package financeweb_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/financecsv"
	"github.com/loyalty-ledger/loyalty/financeweb"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var (
	june = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	july = time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
)

// fixture is a ledger with a month of several kinds of transactions, the
// page served by a real HTTP server (mounted as loyaltyd mounts it), and
// keys of three roles.
type fixture struct {
	url                            string
	reports                        *finance.Reports
	ledger                         *ledger.Ledger
	db                             *database.DB
	clock                          *testclock.Clock
	keys                           *apikeys.Store
	finance, booking, admin, other string // secrets; other is no key's
}

// newFixture: before June, a stay earns 12,000 points (the opening: 120.00
// CNY at the default 0.01). In June: a stay of 3,000 (June 5), a travel kit
// of 4,000 redeemed (June 10), a no-show penalty of 500 (June 12), the book
// value set to 0.012 from June 15 (revaluing the 10,500 outstanding by
// 21.00), a stay of 2,000 (June 20), a partner's award of 1,000 (June 22)
// and an admin's adjustment of -300 (June 25): closing 13,200 points, 158.40
// CNY. The days up to July 1 are rolled up, as loyaltyd's job would.
func newFixture(t *testing.T) fixture { return newFixtureIn(t, nil) }

// newFixtureIn is newFixture with the programme's time zone the page is
// given (nil: none, so UTC).
func newFixtureIn(t *testing.T, zone *time.Location) fixture {
	t.Helper()
	db := dbtest.New(t)
	ctx := context.Background()
	clock := testclock.Ticking(time.Date(2026, 5, 20, 9, 0, 0, 0, time.UTC), time.Second)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	member := programme.MemberAccount("100000001")
	if err := l.CreateAccounts(ctx, append(programme.ChartOfAccounts(), member)); err != nil {
		t.Fatal(err)
	}
	one := decimal.NewFromInt(1)
	store := partners.New(l, clock.Now)
	p, err := store.Create(ctx, "test", "create-P", partners.NewPartner{ID: "P", Name: "Partner", Currency: "CNY", Rates: partners.Rates{
		IssueRate: decimal.RequireFromString("0.0085"), ReimbursementRate: decimal.RequireFromString("0.0061"), EffectiveAt: june.AddDate(0, -1, 0),
		Card: partners.RateCard{PointsPerCurrencyUnit: one, TierMultiplier: map[programme.Tier]decimal.Decimal{
			programme.TierRegular: one, programme.TierSilver: one, programme.TierGold: one, programme.TierPlatinum: one}}}})
	if err != nil {
		t.Fatal(err)
	}
	reports := finance.New(l, finance.Options{Clock: clock.Now})
	at := func(day int) {
		clock.Advance(time.Date(2026, 6, day, 9, 0, 0, 0, time.UTC).Sub(clock.Now()))
	}
	post := func(key string, kind ledger.Kind, from, to string, points int64, effects ...ledger.Statement) {
		t.Helper()
		if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: key, Kind: kind, EffectiveAt: clock.Now(),
			Postings: []ledger.Posting{{Account: from, Amount: -points}, {Account: to, Amount: points}}, Effects: effects,
			Lots: ledger.LotPolicy{ExpiresAt: clock.Now().AddDate(2, 0, 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	post("may-stay", ledger.KindEarn, programme.AccountIssuedStay, member.Code, 12000)
	at(5)
	post("stay-1", ledger.KindEarn, programme.AccountIssuedStay, member.Code, 3000)
	at(10)
	post("kit", ledger.KindRedeem, member.Code, programme.RedeemedAccount("travel_kit"), 4000)
	at(12)
	post("no-show", ledger.KindPenalty, member.Code, programme.AccountPenaltyNoShow, 500)
	if _, err := reports.SetPointValue(ctx, "test", "value-0615", june.AddDate(0, 0, 14), decimal.RequireFromString("0.012"), "CNY"); err != nil {
		t.Fatal(err)
	}
	at(20)
	post("stay-2", ledger.KindEarn, programme.AccountIssuedStay, member.Code, 2000)
	at(22)
	rates := p.Rates[0]
	award := partners.Entry{PartnerID: "P", PropertyID: "P-1", MemberNumber: "100000001", RateVersion: rates.Version, Kind: partners.KindAward,
		PointsIssued: 1000, Amount: partners.Amount(rates, 1000, 0)}
	post("award", ledger.KindEarn, partners.IssuedAccount("P").Code, member.Code, 1000, partners.Record(award))
	at(25)
	post("adjust", ledger.KindAdjustment, member.Code, programme.AccountAdjustmentDebit, 300)
	clock.Advance(july.Add(time.Hour).Sub(clock.Now()))
	if _, err := reports.RollUp(ctx); err != nil {
		t.Fatal(err)
	}

	keys := apikeys.New(l, clock.Now)
	secret := func(role apikeys.Role, partner string) string {
		t.Helper()
		_, s, err := keys.Create(ctx, "test", "key-"+string(role), apikeys.CreateRequest{Name: string(role), Role: role, PartnerID: partner})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	f := fixture{reports: reports, ledger: l, db: db, clock: clock, keys: keys, finance: secret(apikeys.RoleFinance, ""), booking: secret(apikeys.RoleBookingChannel, ""),
		admin: secret(apikeys.RoleAdmin, "")}
	f.other = f.finance[:len(f.finance)-4] + "0000"
	if f.other == f.finance {
		f.other = f.finance[:len(f.finance)-4] + "1111"
	}
	cfg := financeweb.Config{Reports: reports, Keys: keys, Clock: clock.Now}
	if zone != nil {
		cfg.Zone = func(context.Context, time.Time) (*time.Location, error) { return zone, nil }
	}
	h, err := financeweb.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(financeweb.Path, h)
	mux.Handle("/", http.NotFoundHandler()) // where loyaltyd's Connect services are
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}

type response struct {
	status int
	header http.Header
	body   string
}

func (f fixture) get(t *testing.T, method, path, secret string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if secret != "" {
		req.SetBasicAuth("finance", secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, string(body)}
}

// TestAccess: the page is for finance and admin keys, read-only, and says
// which parameter is wrong; every answer carries the security headers.
func TestAccess(t *testing.T) {
	f := newFixture(t)
	const page = "/finance/?from=2026-06-01&to=2026-07-01"
	for _, tc := range []struct {
		name, method, path, secret string
		status                     int
		bodyHas                    string
	}{
		{"no credentials are challenged", "GET", page, "", http.StatusUnauthorized, "API key"},
		{"an unknown key is challenged", "GET", page, f.other, http.StatusUnauthorized, "unknown"},
		{"a booking channel key is forbidden", "GET", page, f.booking, http.StatusForbidden, "role booking_channel"},
		{"a finance key sees the page", "GET", page, f.finance, http.StatusOK, "Points liability"},
		{"an admin key sees the page", "GET", page, f.admin, http.StatusOK, "Points liability"},
		{"HEAD is allowed", "HEAD", page, f.finance, http.StatusOK, ""},
		{"POST is not", "POST", page, f.finance, http.StatusMethodNotAllowed, "read-only"},
		{"POST is refused before credentials are read", "POST", page, "", http.StatusMethodNotAllowed, "read-only"},
		{"a bad date names from", "GET", "/finance/?from=2026-13-01&to=2026-07-01", f.finance, http.StatusBadRequest, "from: "},
		{"a time is not a date on the page", "GET", "/finance/?from=2026-06-01T08:00:00Z", f.finance, http.StatusBadRequest, "from: "},
		{"to before from names to", "GET", "/finance/?from=2026-07-01&to=2026-06-01", f.finance, http.StatusBadRequest, "to: must be after from"},
		{"a period over 366 days names to", "GET", "/finance/?from=2025-06-01&to=2026-06-03", f.finance, http.StatusBadRequest, "to: a period is at most 366 days"},
		{"an unknown grouping names group_by", "GET", page + "&group_by=hotel", f.finance, http.StatusBadRequest, "group_by: "},
		{"a bad as_of names as_of", "GET", "/finance/trial-balance.csv?as_of=yesterday", f.finance, http.StatusBadRequest, "as_of: "},
		{"an unknown page is not found", "GET", "/finance/ledger.csv", f.finance, http.StatusNotFound, ""},
		{"an unknown page is not revealed without a key", "GET", "/finance/ledger.csv", "", http.StatusUnauthorized, ""},
		{"the default period is the previous full month", "GET", "/finance/", f.finance, http.StatusOK, `value="2026-06-01"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.get(t, tc.method, tc.path, tc.secret)
			if r.status != tc.status || !strings.Contains(r.body, tc.bodyHas) {
				t.Fatalf("%s %s: %d %q, want %d with %q", tc.method, tc.path, r.status, r.body, tc.status, tc.bodyHas)
			}
			want := map[string]string{
				"Cache-Control":          "no-store",
				"X-Content-Type-Options": "nosniff",
				"X-Frame-Options":        "DENY",
			}
			if tc.status == http.StatusUnauthorized {
				want["WWW-Authenticate"] = `Basic realm="loyalty finance", charset="UTF-8"`
			}
			if tc.status == http.StatusOK {
				want["Content-Type"] = "text/html; charset=utf-8"
			}
			for k, v := range want {
				if got := r.header.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
			csp := r.header.Get("Content-Security-Policy")
			for _, d := range []string{"default-src 'none'", "style-src 'nonce-", "img-src 'self' data:", "frame-ancestors 'none'"} {
				if !strings.Contains(csp, d) {
					t.Errorf("Content-Security-Policy %q lacks %q", csp, d)
				}
			}
		})
	}
}

// TestCSVDownloads: each download is RFC 4180 (CRLF, a header row), is
// exactly what financecsv writes from finance's report of the same
// parameters (what loyaltyctl writes), and has the month's figures.
func TestCSVDownloads(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	want := func(write func(*bytes.Buffer) error) string {
		t.Helper()
		var b bytes.Buffer
		if err := write(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	rf := func(g finance.GroupBy) func(*bytes.Buffer) error {
		return func(b *bytes.Buffer) error {
			r, err := f.reports.RollForward(ctx, june, july, g)
			if err != nil {
				return err
			}
			return financecsv.RollForward(b, r)
		}
	}
	for _, tc := range []struct {
		name, path, filename string
		same                 func(*bytes.Buffer) error
		rows                 []string // must be among the rows
	}{
		{"roll-forward by source", "/finance/roll-forward.csv?from=2026-06-01&to=2026-07-01", "roll-forward-source-2026-06-01--2026-07-01.csv", rf(finance.GroupBySource), []string{
			"line,dimension,category,detail,points,money,currency,postings,money_exact",
			"opening,,,,12000,120.00,CNY,,120",
			"movement,,issued,stay,5000,54.00,CNY,2,54",
			"movement,,issued,partner_award,1000,12.00,CNY,1,12",
			"movement,,redeemed,travel_kit,-4000,-40.00,CNY,1,-40",
			"movement,,penalty,no_show,-500,-5.00,CNY,1,-5",
			"movement,,adjustment,debit,-300,-3.60,CNY,1,-3.6",
			"revaluation,,,,,21.00,CNY,,21",
			"closing,,,,13200,158.40,CNY,,158.4",
		}},
		{"roll-forward by partner", "/finance/roll-forward.csv?from=2026-06-01&to=2026-07-01&group_by=partner", "roll-forward-partner-2026-06-01--2026-07-01.csv", rf(finance.GroupByPartner), []string{
			"movement,P,issued,partner_award,1000,12.00,CNY,1,12",
		}},
		{"trial balance", "/finance/trial-balance.csv?as_of=2026-07-01", "trial-balance-2026-07-01.csv", func(b *bytes.Buffer) error {
			tb, err := f.reports.TrialBalance(ctx, july, finance.TrialOptions{})
			if err != nil {
				return err
			}
			return financecsv.TrialBalance(b, tb, nil)
		}, []string{
			"line,account,class,normal_side,debit,credit,balance,postings",
			"account,member:*,member,credit,0,13200,13200,7",
			"total,,,,18000,18000,0,",
		}},
		{"partner statements", "/finance/partner-statements.csv?from=2026-06-01&to=2026-07-01", "partner-statements-2026-06-01--2026-07-01.csv", func(b *bytes.Buffer) error {
			ps, err := f.reports.PartnerStatements(ctx, june, july)
			if err != nil {
				return err
			}
			if !ps.Ties {
				return fmt.Errorf("the statements do not tie: %v", ps.Discrepancies)
			}
			return financecsv.PartnerStatements(b, ps.Statements)
		}, []string{
			"P,rate,1,0.0085,0.0061,1000,0,0,0,8.50,0.00,,,CNY,8.5,0",
			"P,total,,,,1000,0,0,0,8.50,0.00,8.50,programme,CNY,8.5,0",
		}},
		{"point values", "/finance/point-values.csv", "point-values-2026-07-01.csv", func(b *bytes.Buffer) error {
			v, err := f.reports.PointValues(ctx)
			if err != nil {
				return err
			}
			return financecsv.PointValues(b, v)
		}, []string{",0.01,CNY,,default"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := f.get(t, "GET", tc.path, f.finance)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if got := r.header.Get("Content-Type"); got != "text/csv; charset=utf-8; header=present" {
				t.Errorf("Content-Type %q", got)
			}
			if got, want := r.header.Get("Content-Disposition"), `attachment; filename="`+tc.filename+`"`; got != want {
				t.Errorf("Content-Disposition %q, want %q", got, want)
			}
			if w := want(tc.same); r.body != w {
				t.Errorf("body is not what financecsv writes from finance's report:\n%q\nwant\n%q", r.body, w)
			}
			if !strings.HasSuffix(r.body, "\r\n") || strings.Count(r.body, "\n") != strings.Count(r.body, "\r\n") {
				t.Errorf("not every line ends in CRLF: %q", r.body)
			}
			records, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
			if err != nil || len(records) < 2 {
				t.Fatalf("not CSV with a header and rows: %v, %d records", err, len(records))
			}
			lines := map[string]bool{}
			for _, rec := range records {
				lines[strings.Join(rec, ",")] = true
			}
			for _, row := range tc.rows {
				if !lines[row] {
					t.Errorf("no row %q in\n%s", row, r.body)
				}
			}
		})
	}
}

// TestPageLinksDownloadEveryReport: the page links to each report of its
// period, and every link, followed as a browser would (relative to the
// page, same credentials), is a CSV file.
func TestPageLinksDownloadEveryReport(t *testing.T) {
	f := newFixture(t)
	const page = "/finance/?from=2026-06-01&to=2026-07-01"
	r := f.get(t, "GET", page, f.finance)
	if r.status != http.StatusOK {
		t.Fatalf("%d %s", r.status, r.body)
	}
	base, err := url.Parse(f.url + page)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range regexp.MustCompile(`<a href="([^"]+)" download>`).FindAllStringSubmatch(r.body, -1) {
		link, err := base.Parse(html.UnescapeString(m[1]))
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, link.RequestURI())
		d := f.get(t, "GET", link.RequestURI(), f.finance)
		if d.status != http.StatusOK || d.header.Get("Content-Type") != "text/csv; charset=utf-8; header=present" {
			t.Errorf("%s: %d %s %q", link.RequestURI(), d.status, d.header.Get("Content-Type"), d.body)
		}
	}
	want := []string{
		"/finance/trial-balance.csv?as_of=2026-07-01&zone=UTC",
		"/finance/roll-forward.csv?from=2026-06-01&group_by=source&to=2026-07-01&zone=UTC",
		"/finance/roll-forward.csv?from=2026-06-01&group_by=property&to=2026-07-01&zone=UTC",
		"/finance/roll-forward.csv?from=2026-06-01&group_by=partner&to=2026-07-01&zone=UTC",
		"/finance/partner-statements.csv?from=2026-06-01&to=2026-07-01&zone=UTC",
		"/finance/point-values.csv",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("links\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDatesAreDaysOfTheProgrammesTimeZone: the page's dates are days of the
// programme's time zone by default (where finance closes its books), and
// the page says which zone; zone= overrides it, and the download links
// carry the zone, so a file is the period the page shows. A stay recorded
// at 20:00 UTC on 1 July is on 2 July in Shanghai.
func TestDatesAreDaysOfTheProgrammesTimeZone(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	f := newFixtureIn(t, shanghai)
	f.clock.Advance(time.Date(2026, 7, 1, 20, 0, 0, 0, time.UTC).Sub(f.clock.Now()))
	if _, err := f.ledger.Post(context.Background(), ledger.PostRequest{CallerID: "test", IdempotencyKey: "late-stay", Kind: ledger.KindEarn,
		EffectiveAt: f.clock.Now(), Lots: ledger.LotPolicy{ExpiresAt: f.clock.Now().AddDate(2, 0, 0)},
		Postings: []ledger.Posting{{Account: programme.AccountIssuedStay, Amount: -777}, {Account: programme.MemberAccount("100000001").Code, Amount: 777}}}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(72 * time.Hour)
	for _, tc := range []struct {
		rule, path string
		issued     bool
		says       string
	}{
		{"1 July in Shanghai ends at 16:00 UTC, before the stay", "/finance/?from=2026-07-01&to=2026-07-02", false,
			"after 2026-07-01 00:00, up to and including 2026-07-02 00:00, Asia/Shanghai (UTC+08:00), the programme's time zone"},
		{"2 July in Shanghai holds the stay", "/finance/?from=2026-07-02&to=2026-07-03", true, "Asia/Shanghai (UTC+08:00)"},
		{"zone=UTC: 1 July in UTC holds it", "/finance/?from=2026-07-01&to=2026-07-02&zone=UTC", true,
			"after 2026-07-01 00:00, up to and including 2026-07-02 00:00, UTC."},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			r := f.get(t, "GET", tc.path, f.finance)
			if r.status != http.StatusOK {
				t.Fatalf("%d %s", r.status, r.body)
			}
			if !strings.Contains(html.UnescapeString(r.body), tc.says) {
				t.Errorf("the page does not say %q:\n%s", tc.says, r.body[:min(len(r.body), 3000)])
			}
			if got := strings.Contains(r.body, "777"); got != tc.issued {
				t.Errorf("the 777 points issued on the page: %v, want %v", got, tc.issued)
			}
		})
	}
	r := f.get(t, "GET", "/finance/roll-forward.csv?from=2026-07-02&to=2026-07-03&zone=Asia%2FShanghai", f.finance)
	if want := `filename="roll-forward-source-2026-07-02--2026-07-03.csv"`; r.status != http.StatusOK ||
		!strings.Contains(r.header.Get("Content-Disposition"), want) || !strings.Contains(r.body, "777") {
		t.Errorf("CSV of 2 July in Shanghai: %d %q, body %q", r.status, r.header.Get("Content-Disposition"), r.body)
	}
	if r := f.get(t, "GET", "/finance/?zone=Mars%2FOlympus", f.finance); r.status != http.StatusBadRequest || !strings.HasPrefix(r.body, "zone: ") {
		t.Errorf("an unknown zone: %d %q, want 400 naming zone", r.status, r.body)
	}
}

// TestAPeriodStillRunningIsNotShownAsFinal: a period that ends after now
// is reported up to now, and the page says its figures are not final; one
// that has not begun is a 400 naming from.
func TestAPeriodStillRunningIsNotShownAsFinal(t *testing.T) {
	f := newFixture(t) // the clock is at 2026-07-01 01:00 UTC
	running := f.get(t, http.MethodGet, "/finance/?from=2026-06-20&to=2026-07-05&zone=UTC", f.finance)
	if running.status != http.StatusOK || !strings.Contains(running.body, "not final") || !strings.Contains(running.body, "up to now, 2026-07-01 01:") {
		t.Errorf("a period still running: %d, the page does not say it is not final:\n%s", running.status, running.body)
	}
	closed := f.get(t, http.MethodGet, "/finance/?from=2026-06-01&to=2026-07-01&zone=UTC", f.finance)
	if closed.status != http.StatusOK || strings.Contains(closed.body, "not final") {
		t.Errorf("June, closed: %d, said to be not final", closed.status)
	}
	future := f.get(t, http.MethodGet, "/finance/?from=2026-07-03&to=2026-07-05&zone=UTC", f.finance)
	if future.status != http.StatusBadRequest || !strings.Contains(future.body, "from") {
		t.Errorf("a period not begun: %d %s", future.status, future.body)
	}
}

// TestStatementsThatDoNotTieAreNotServed: partner statements that disagree
// with the ledger's roll-forward are damaged books: the page answers 409
// with what is off, rather than a file to close the month with.
func TestStatementsThatDoNotTieAreNotServed(t *testing.T) {
	f := newFixture(t)
	path := "/finance/partner-statements.csv?from=2026-06-01&to=2026-07-01&zone=UTC"
	if r := f.get(t, http.MethodGet, path, f.finance); r.status != http.StatusOK {
		t.Fatalf("sound books: %d %s", r.status, r.body)
	}
	if _, err := f.db.Pool.Exec(context.Background(), `UPDATE partner_transactions SET points_issued = 1001 WHERE kind = 'award'`); err != nil {
		t.Fatal(err)
	}
	r := f.get(t, http.MethodGet, path, f.finance)
	if r.status != http.StatusConflict || !strings.Contains(r.body, "do not tie") || !strings.Contains(r.body, "partner:P:issued") {
		t.Errorf("damaged books: %d %s", r.status, r.body)
	}
}

// TestAnUnreachableDatabaseIsServiceUnavailable: when the database cannot
// be reached, the page and its files answer 503 with Retry-After (try
// again shortly), not 500 (our bug).
func TestAnUnreachableDatabaseIsServiceUnavailable(t *testing.T) {
	f := newFixture(t)
	h, err := financeweb.New(financeweb.Config{Reports: f.reports, Keys: f.keys, Clock: f.clock.Now,
		Zone: func(context.Context, time.Time) (*time.Location, error) {
			return nil, fmt.Errorf("read the programme: %w", database.ErrUnavailable)
		}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	for _, path := range []string{financeweb.Path, financeweb.Path + "roll-forward.csv"} {
		r := f.get(t, http.MethodGet, path, f.finance)
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || strings.Contains(r.body, "log") {
			t.Errorf("GET %s with the database unreachable: HTTP %d, Retry-After %q, %q; want 503 and when to try again",
				path, r.status, r.header.Get("Retry-After"), r.body)
		}
	}
}
