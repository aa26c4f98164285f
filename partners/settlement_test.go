package partners_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var (
	from = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	to   = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

func standard() partners.RateCard {
	one := decimal.NewFromInt(1)
	return partners.RateCard{PointsPerCurrencyUnit: one, TierMultiplier: map[programme.Tier]decimal.Decimal{
		programme.TierRegular: one, programme.TierSilver: one, programme.TierGold: one, programme.TierPlatinum: one}}
}

// post records a transaction at partner P's hotel the way the service does:
// the postings and the index row in one ledger transaction.
func post(t *testing.T, l *ledger.Ledger, key string, at time.Time, r partners.Rates, issued, redeemed int64) {
	t.Helper()
	member := programme.MemberAccount("1000000001").Code
	e := partners.Entry{PartnerID: "P", PropertyID: "P-1", MemberNumber: "1000000001", RateVersion: r.Version,
		PointsIssued: issued, PointsRedeemed: redeemed, Amount: partners.Amount(r, issued, redeemed)}
	req := ledger.PostRequest{CallerID: "test", IdempotencyKey: key, EffectiveAt: at, Lots: ledger.LotPolicy{ExpiresAt: at.AddDate(2, 0, 0)}}
	if issued > 0 {
		e.Kind, req.Kind = partners.KindAward, ledger.KindEarn
		req.Postings = []ledger.Posting{{Account: member, Amount: issued}, {Account: partners.IssuedAccount("P").Code, Amount: -issued}}
	} else {
		e.Kind, req.Kind = partners.KindRedemption, ledger.KindRedeem
		req.Postings = []ledger.Posting{{Account: member, Amount: -redeemed}, {Account: partners.RedeemedAccount("P").Code, Amount: redeemed}}
	}
	req.Effects = []ledger.Statement{partners.Record(e)}
	if _, err := l.Post(context.Background(), req); err != nil {
		t.Fatal(err)
	}
}

// setup creates partner P, with rates in force from a month before the
// period, on a ledger and a store that read clock: the ledger stamps
// recorded_at with it, the time a settlement's period is of.
func setup(t *testing.T, db *database.DB, issue, reimburse string, clock *testclock.Clock) (*ledger.Ledger, *partners.Store, partners.Rates) {
	t.Helper()
	ctx := context.Background()
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	if err := l.CreateAccount(ctx, programme.MemberAccount("1000000001")); err != nil {
		t.Fatal(err)
	}
	s := partners.New(l, clock.Now)
	p, err := s.Create(ctx, "test", "create-P", partners.NewPartner{ID: "P", Name: "P", Currency: "CNY", Rates: partners.Rates{
		IssueRate: decimal.RequireFromString(issue), ReimbursementRate: decimal.RequireFromString(reimburse), Card: standard(),
		EffectiveAt: from.AddDate(0, -1, 0)}})
	if err != nil {
		t.Fatal(err)
	}
	return l, s, p.Rates[0]
}

// TestSettlementRoundsOnceAtTheEnd: exact sums, rounded half away from
// zero to cents once per side; net is the difference of the rounded sides.
func TestSettlementRoundsOnceAtTheEnd(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		issue, reimburse            string
		issued, redeemed            []int64
		toProgramme, toPartner, net string
	}{
		{"half a cent rounds up", "0.00125", "0", []int64{4}, nil, "0.01", "0.00", "0.01"},
		{"just under half a cent rounds down", "0.00124", "0", []int64{4}, nil, "0.00", "0.00", "0.00"},
		{"per-transaction amounts are not rounded one by one", "0.004", "0", []int64{1, 1, 1}, nil, "0.01", "0.00", "0.01"},
		{"a partner owed more has a negative net", "0.003", "0.0061", []int64{3000}, []int64{2000}, "9.00", "12.20", "-3.20"},
		{"each side is rounded, then the difference taken", "0.00125", "0.00125", []int64{4}, []int64{3}, "0.01", "0.00", "0.01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := testclock.New(from.Add(time.Hour))
			l, s, r := setup(t, dbtest.New(t), tc.issue, tc.reimburse, clock)
			at := clock.Now()
			for i, n := range tc.issued {
				post(t, l, fmt.Sprintf("award-%d", i), at, r, n, 0)
			}
			for i, n := range tc.redeemed {
				post(t, l, fmt.Sprintf("redeem-%d", i), at, r, 0, n)
			}
			st, err := s.Settlement(context.Background(), "P", from, to)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{st.OwedToProgramme.StringFixed(2), st.OwedToPartner.StringFixed(2), st.Net.StringFixed(2)}
			if want := []string{tc.toProgramme, tc.toPartner, tc.net}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("owed to programme, to partner, net = %v, want %v", got, want)
			}
		})
	}
}

// TestSettlementPeriod: a period (from, to] is of recording time, the
// books' basis: what was recorded at from belongs to the period before,
// what was recorded at to to this one, whatever the business time; and a
// period is sane.
func TestSettlementPeriod(t *testing.T) {
	clock := testclock.New(from.Add(-time.Hour))
	l, s, r := setup(t, dbtest.New(t), "0.01", "0.01", clock)
	for _, p := range []struct {
		key        string
		recordedAt time.Time
		points     int64
	}{
		{"at-from", from, 10},
		{"just-after-from", from.Add(time.Microsecond), 100},
		{"at-to", to, 1},
		{"after-to", to.Add(time.Microsecond), 1000},
	} {
		clock.Advance(p.recordedAt.Sub(clock.Now()))
		// Check-out a week earlier: business time does not decide the period.
		post(t, l, p.key, p.recordedAt.AddDate(0, 0, -7), r, p.points, 0)
	}
	ctx := context.Background()
	st, err := s.Settlement(ctx, "P", from, to)
	if err != nil {
		t.Fatal(err)
	}
	if st.PointsIssued != 101 || len(st.Lines) != 1 || st.Lines[0].RateVersion != 1 {
		t.Errorf("November: %d points in %d lines, want 101 in 1", st.PointsIssued, len(st.Lines))
	}
	var fe *ledger.FieldError
	if _, err := s.Settlement(ctx, "P", to, from); !errors.As(err, &fe) {
		t.Errorf("a period that ends before it starts: %v", err)
	}
	if _, err := s.Settlement(ctx, "P", from, from.AddDate(2, 0, 0)); !errors.As(err, &fe) {
		t.Errorf("a two-year period: %v", err)
	}
	if _, err := s.Settlement(ctx, "NOBODY", from, to); !errors.Is(err, partners.ErrNotFound) {
		t.Errorf("an unknown partner: %v", err)
	}
}

// TestRatesAreAppendOnly: a new version starts after the latest and not in
// the past; the version in force at a time is the latest started by then.
func TestRatesAreAppendOnly(t *testing.T) {
	clock := testclock.New(from)
	_, s, _ := setup(t, dbtest.New(t), "0.01", "0.01", clock)
	ctx := context.Background()
	next := partners.Rates{IssueRate: decimal.RequireFromString("0.02"), ReimbursementRate: decimal.RequireFromString("0.02"), Card: standard()}
	var fe *ledger.FieldError
	next.EffectiveAt = clock.Now().Add(-time.Hour)
	if _, err := s.SetRates(ctx, "test", "past", "P", next); !errors.As(err, &fe) || fe.Field != "rates.effective_at" {
		t.Errorf("rates from the past: %v", err)
	}
	next.EffectiveAt = clock.Now().Add(partners.RateLead - time.Microsecond)
	if _, err := s.SetRates(ctx, "test", "too-soon", "P", next); !errors.As(err, &fe) || fe.Field != "rates.effective_at" {
		t.Errorf("rates starting sooner than RateLead from now: %v", err)
	}
	start := clock.Now().Add(time.Hour)
	next.EffectiveAt = start
	v2, err := s.SetRates(ctx, "test", "v2", "P", next)
	if err != nil || v2.Version != 2 {
		t.Fatalf("v2: %+v, %v", v2, err)
	}
	next.EffectiveAt = start.Add(-time.Minute)
	if _, err := s.SetRates(ctx, "test", "before-v2", "P", next); !errors.As(err, &fe) {
		t.Errorf("a version before the latest: %v", err)
	}
	for _, tc := range []struct {
		at   time.Time
		want int
	}{{start.Add(-time.Microsecond), 1}, {start, 2}, {start.AddDate(1, 0, 0), 2}} {
		r, err := s.RatesAt(ctx, "P", tc.at)
		if err != nil || r.Version != tc.want {
			t.Errorf("at %s: version %d, %v; want %d", tc.at, r.Version, err, tc.want)
		}
	}
	if _, err := s.RatesAt(ctx, "P", from.AddDate(-1, 0, 0)); !errors.Is(err, partners.ErrNoRates) {
		t.Errorf("before the first version: %v", err)
	}
}

// TestVerify: the index rows and the ledger agree; a posting on a
// partner's account without its row is found.
func TestVerify(t *testing.T) {
	db := dbtest.New(t)
	l, s, r := setup(t, db, "0.01", "0.01", testclock.New(from.Add(time.Hour)))
	post(t, l, "award", from, r, 100, 0)
	ctx := context.Background()
	if found, err := s.Verify(ctx); err != nil || len(found) != 0 {
		t.Fatalf("consistent books: %v, %v", found, err)
	}
	// A transaction on the partner's account that bypassed the index.
	if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "bypass", Kind: ledger.KindEarn, EffectiveAt: from,
		Lots:     ledger.LotPolicy{ExpiresAt: from.AddDate(2, 0, 0)},
		Postings: []ledger.Posting{{Account: programme.MemberAccount("1000000001").Code, Amount: 5}, {Account: partners.IssuedAccount("P").Code, Amount: -5}}}); err != nil {
		t.Fatal(err)
	}
	found, err := s.Verify(ctx)
	if err != nil || len(found) != 1 || !strings.Contains(found[0], "100 points issued in its transactions, 105 on partner:P:issued") {
		t.Fatalf("after a bypass: %v, %v", found, err)
	}
}
