package finance_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const (
	issuedStay   = programme.AccountIssuedStay
	issuedBonus  = programme.AccountIssuedBookingBonus
	goodwill     = programme.AccountIssuedGoodwill
	adjustment   = programme.AccountAdjustmentDebit
	noShow       = programme.AccountPenaltyNoShow
	breakage     = "programme:breakage"
	partnerIssue = "partner:P1:issued"
	partnerRedem = "partner:P1:redeemed"
	suspense     = "suspense:unknown" // a prefix no report knows: must land in "other"
)

var (
	freeNight = programme.RedeemedAccount("free_night")
	// start is mid-morning, so that a day's transactions are well inside it.
	start = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
)

func member(n int) string { return programme.MemberAccount(fmt.Sprint(100000000 + n)).Code }

type fixture struct {
	t       *testing.T
	ctx     context.Context
	db      *database.DB
	clock   *testclock.Clock
	ledger  *ledger.Ledger
	reports *finance.Reports
	key     int
}

func newFixture(t *testing.T, db *database.DB) *fixture {
	t.Helper()
	clock := testclock.New(start)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	f := &fixture{t: t, ctx: context.Background(), db: db, clock: clock, ledger: l,
		reports: finance.New(l, finance.Options{Clock: clock.Now})}
	accounts := programme.ChartOfAccounts()
	for _, extra := range []struct {
		code string
		side ledger.Side
	}{{breakage, ledger.Credit}, {partnerIssue, ledger.Debit}, {partnerRedem, ledger.Credit}, {suspense, ledger.Debit}} {
		accounts = append(accounts, ledger.Account{Code: extra.code, NormalSide: extra.side, AllowNegative: true, Shards: 4})
	}
	for i := 1; i <= 5; i++ {
		accounts = append(accounts, programme.MemberAccount(fmt.Sprint(100000000+i)))
	}
	if err := l.CreateAccounts(f.ctx, accounts); err != nil {
		t.Fatal(err)
	}
	return f
}

// post records a transaction moving points from one account to another,
// with metadata naming a property or partner when given.
func (f *fixture) post(kind ledger.Kind, from, to string, points int64, meta map[string]string) ledger.Transaction {
	f.t.Helper()
	f.key++
	raw, _ := json.Marshal(meta)
	if meta == nil {
		raw = nil
	}
	txn, err := f.ledger.Post(f.ctx, ledger.PostRequest{
		CallerID: "test", IdempotencyKey: fmt.Sprint("k", f.key), Kind: kind, EffectiveAt: f.clock.Now(),
		Postings: []ledger.Posting{{Account: from, Amount: -points}, {Account: to, Amount: points}},
		Metadata: raw, Lots: ledger.LotPolicy{ExpiresAt: f.clock.Now().AddDate(2, 0, 0)},
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return txn
}

func (f *fixture) earn(m int, account string, points int64, property string) ledger.Transaction {
	return f.post(ledger.KindEarn, account, member(m), points, map[string]string{"property_id": property})
}

// lines indexes a roll-forward's lines by dimension/category/detail.
func lines(rf finance.RollForward) map[string]int64 {
	out := map[string]int64{}
	for _, l := range rf.Lines {
		out[l.Dimension+"|"+l.Category+"|"+l.Detail] += l.Points
	}
	return out
}

func assertBalanced(t *testing.T, rf finance.RollForward) {
	t.Helper()
	if !rf.Balanced || rf.OpeningPoints+rf.MovementPoints != rf.ClosingPoints {
		t.Fatalf("roll-forward does not balance: opening %d + movements %d != closing %d (money %s + %s + %s vs %s)",
			rf.OpeningPoints, rf.MovementPoints, rf.ClosingPoints, rf.OpeningMoney, rf.MovementMoney, rf.RevaluationMoney, rf.ClosingMoney)
	}
	if !rf.OpeningMoney.Add(rf.MovementMoney).Add(rf.RevaluationMoney).Equal(rf.ClosingMoney) {
		t.Fatalf("money identity: %s + %s + %s != %s", rf.OpeningMoney, rf.MovementMoney, rf.RevaluationMoney, rf.ClosingMoney)
	}
}

func TestRollForwardLinesFollowTheCounterAccounts(t *testing.T) {
	cases := []struct {
		name string
		// act records transactions in the period; want are the lines it adds
		// (dimension|category|detail -> points) when grouped by groupBy.
		act     func(f *fixture)
		groupBy finance.GroupBy
		want    map[string]int64
	}{
		{"stay points and booking bonus are issued by source", func(f *fixture) {
			f.earn(1, issuedStay, 388, "H1")
			f.earn(1, issuedBonus, 77, "H1")
		}, finance.GroupBySource, map[string]int64{"|issued|stay": 388, "|issued|booking_bonus": 77}},
		{"goodwill is issued even though its kind is adjustment", func(f *fixture) {
			f.post(ledger.KindAdjustment, goodwill, member(1), 50, nil)
		}, finance.GroupBySource, map[string]int64{"|issued|goodwill": 50}},
		{"a redemption lowers the liability by reward", func(f *fixture) {
			f.post(ledger.KindRedeem, member(2), freeNight, 800, map[string]string{"property_id": "H2"})
		}, finance.GroupBySource, map[string]int64{"|redeemed|free_night": -800}},
		{"a no-show penalty lowers the liability", func(f *fixture) {
			f.post(ledger.KindPenalty, member(2), noShow, 300, map[string]string{"property_id": "H1"})
		}, finance.GroupBySource, map[string]int64{"|penalty|no_show": -300}},
		{"expired points go to breakage as expired", func(f *fixture) {
			f.post(ledger.KindExpiry, member(3), breakage, 100, nil)
		}, finance.GroupBySource, map[string]int64{"|expired|breakage": -100}},
		{"an admin's debit is an adjustment", func(f *fixture) {
			f.post(ledger.KindAdjustment, member(3), adjustment, 40, nil)
		}, finance.GroupBySource, map[string]int64{"|adjustment|debit": -40}},
		{"a reversal is its own line naming what it reverses", func(f *fixture) {
			txn := f.earn(4, issuedStay, 500, "H1")
			f.key++
			if _, err := f.ledger.Reverse(f.ctx, ledger.ReverseRequest{CallerID: "test", IdempotencyKey: fmt.Sprint("k", f.key), TransactionID: txn.ID}); err != nil {
				f.t.Fatal(err)
			}
		}, finance.GroupBySource, map[string]int64{"|issued|stay": 500, "|reversal|issued:stay": -500}},
		{"partner awards and redemptions group by partner", func(f *fixture) {
			f.post(ledger.KindEarn, partnerIssue, member(4), 600, map[string]string{"partner_id": "P1", "property_id": "PH1"})
			f.post(ledger.KindRedeem, member(4), partnerRedem, 200, nil) // partner named by the account only
			f.earn(4, issuedStay, 10, "H1")
		}, finance.GroupByPartner, map[string]int64{"P1|issued|partner_award": 600, "P1|redeemed|partner": -200, "|issued|stay": 10}},
		{"lines group by property", func(f *fixture) {
			f.earn(1, issuedStay, 100, "H1")
			f.earn(2, issuedStay, 200, "H2")
			f.post(ledger.KindRedeem, member(2), freeNight, 150, map[string]string{"property_id": "H2"})
		}, finance.GroupByProperty, map[string]int64{"H1|issued|stay": 100, "H2|issued|stay": 200, "H2|redeemed|free_night": -150}},
		{"an unknown counter-account lands in other, never vanishes", func(f *fixture) {
			f.post(ledger.KindTransfer, suspense, member(5), 70, nil)
		}, finance.GroupBySource, map[string]int64{"|other|suspense:unknown": 70}},
		{"a transaction no member takes part in is no movement", func(f *fixture) {
			f.post(ledger.KindTransfer, suspense, issuedStay, 999, nil)
		}, finance.GroupBySource, map[string]int64{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, dbtest.New(t))
			// Opening points, recorded before the period.
			for m := 1; m <= 5; m++ {
				f.earn(m, issuedStay, 1000, "H0")
			}
			f.clock.Advance(time.Hour)
			from := f.clock.Now()
			f.clock.Advance(time.Minute)
			c.act(f)
			f.clock.Advance(time.Minute)
			to := f.clock.Now()
			rf, err := f.reports.RollForward(f.ctx, from, to, c.groupBy)
			if err != nil {
				t.Fatal(err)
			}
			assertBalanced(t, rf)
			if rf.OpeningPoints != 5000 {
				t.Errorf("opening = %d, want 5000", rf.OpeningPoints)
			}
			got := lines(rf)
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("lines = %v, want %v", got, c.want)
			}
			var sum int64
			for _, p := range c.want {
				sum += p
			}
			if rf.ClosingPoints != 5000+sum {
				t.Errorf("closing = %d, want %d", rf.ClosingPoints, 5000+sum)
			}
		})
	}
}

// activity records a few days of varied transactions, some at the very
// edge of a day, and returns the time after the last.
func activity(f *fixture) {
	for day := 0; day < 4; day++ {
		f.earn(1, issuedStay, int64(100+day), "H1")
		f.earn(2, issuedBonus, 77, "H2")
		f.post(ledger.KindRedeem, member(1), freeNight, 50, map[string]string{"property_id": "H1"})
		f.post(ledger.KindPenalty, member(3), noShow, 300, nil)
		f.post(ledger.KindTransfer, suspense, member(5), 7, nil)
		// Exactly midnight: belongs to the day that ends then.
		next := time.Date(start.Year(), start.Month(), start.Day()+day+1, 0, 0, 0, 0, time.UTC)
		f.clock.Advance(next.Sub(f.clock.Now()))
		f.earn(4, issuedStay, 11, "H3")
		f.clock.Advance(9 * time.Hour)
	}
}

// sameFiguresWithRollups computes the roll-forward and trial balance of
// every period from the postings alone, runs the rollup job, and checks that
// the figures are the same from the rollups, and that Reconcile finds
// nothing. It returns the rollup job's progress.
func sameFiguresWithRollups(t *testing.T, f *fixture, periods [][2]time.Time) finance.JobProgress {
	t.Helper()
	type figures struct {
		rf map[finance.GroupBy]finance.RollForward
		tb finance.TrialBalance
	}
	compute := func() []figures {
		var out []figures
		for _, p := range periods {
			fig := figures{rf: map[finance.GroupBy]finance.RollForward{}}
			for _, g := range []finance.GroupBy{finance.GroupBySource, finance.GroupByProperty, finance.GroupByPartner} {
				rf, err := f.reports.RollForward(f.ctx, p[0], p[1], g)
				if err != nil {
					t.Fatal(err)
				}
				assertBalanced(t, rf)
				fig.rf[g] = rf
			}
			tb, err := f.reports.TrialBalance(f.ctx, p[1], finance.TrialOptions{})
			if err != nil {
				t.Fatal(err)
			}
			fig.tb = tb
			out = append(out, fig)
		}
		return out
	}
	before := compute()
	progress, err := f.reports.RollUp(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.reports.RollUp(f.ctx)
	if err != nil || again.Days != 0 {
		t.Fatalf("second run rolled up %d days (err %v), want 0", again.Days, err)
	}
	after := compute()
	for i := range periods {
		for g, rf := range after[i].rf {
			b := before[i].rf[g]
			if fmt.Sprint(rf.Lines, rf.OpeningPoints, rf.ClosingPoints) != fmt.Sprint(b.Lines, b.OpeningPoints, b.ClosingPoints) {
				t.Errorf("period %v by %s: with rollups\n%v %d %d\nwithout\n%v %d %d", periods[i], g,
					rf.Lines, rf.OpeningPoints, rf.ClosingPoints, b.Lines, b.OpeningPoints, b.ClosingPoints)
			}
		}
		if fmt.Sprint(after[i].tb.Lines) != fmt.Sprint(before[i].tb.Lines) {
			t.Errorf("period %v: trial balance with rollups %v, without %v", periods[i], after[i].tb.Lines, before[i].tb.Lines)
		}
	}
	rec, err := f.reports.Reconcile(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !rec.OK() {
		t.Errorf("reconcile found %v", rec.Discrepancies)
	}
	return progress
}

func TestRollupsGiveTheSameFiguresAsPostings(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	activity(f)
	now := f.clock.Now()
	f.clock.Advance(24 * time.Hour)
	progress := sameFiguresWithRollups(t, f, [][2]time.Time{
		{{}, now},
		{start.Add(-time.Hour), now},
		{start.Add(5 * time.Hour), start.Add(53 * time.Hour)},                                      // partial days on both edges
		{time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)}, // midnight to midnight
	})
	if progress.Days != 5 {
		t.Errorf("rolled up %d days, want 5 (2026-03-01 through 2026-03-05, closed at 03-06 00:10)", progress.Days)
	}
}

// TestMonthlyRollupsGiveTheSameFigures: over two and a half months, periods
// that start and end inside months, on month boundaries, and span whole
// months read monthly rows, daily rows and raw postings, and add up the
// same as the postings alone.
func TestMonthlyRollupsGiveTheSameFigures(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	for day := 0; day < 75; day++ { // 2026-03-01 to 2026-05-14
		f.earn(1+day%3, issuedStay, int64(100+day), fmt.Sprint("H", day%4))
		f.post(ledger.KindRedeem, member(1+day%3), freeNight, 30, map[string]string{"property_id": "H1"})
		f.post(ledger.KindEarn, partnerIssue, member(4), 20, map[string]string{"partner_id": "P1"})
		f.clock.Advance(24 * time.Hour)
	}
	now := f.clock.Now()
	progress := sameFiguresWithRollups(t, f, [][2]time.Time{
		{{}, now},
		{time.Date(2026, 3, 10, 13, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 15, 0, 0, 0, 0, time.UTC), time.Date(2026, 5, 10, 5, 0, 0, 0, time.UTC)},
		{time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 30, 23, 0, 0, 0, time.UTC)},
	})
	var months int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT COUNT(DISTINCT month) FROM finance_monthly_totals`).Scan(&months); err != nil {
		t.Fatal(err)
	}
	if months != 2 || progress.Until.Format(time.DateOnly) != "2026-05-15" {
		t.Errorf("%d months rolled up, days until %s; want March and April, until 2026-05-15 (the clock is at 05-15 09:00)", months, progress.Until.Format(time.DateOnly))
	}
}

func TestTrialBalanceIsZeroAndMembersAddUp(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	activity(f)
	asOf := f.clock.Now()
	f.clock.Advance(time.Hour)
	f.earn(1, issuedStay, 5000, "H1") // after asOf: not in the balance
	tb, err := f.reports.TrialBalance(f.ctx, asOf, finance.TrialOptions{IndividualMembers: true, PageSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if tb.Total != 0 || tb.TotalDebit != tb.TotalCredit || tb.TotalDebit == 0 {
		t.Fatalf("total %d, debits %d, credits %d", tb.Total, tb.TotalDebit, tb.TotalCredit)
	}
	byAccount := map[string]finance.TrialLine{}
	for _, l := range tb.Lines {
		byAccount[l.Account] = l
	}
	// 4 days of 100..103 stay points and 4 midnight stays of 11.
	if l := byAccount[issuedStay]; l.Balance != 100+101+102+103+44 || l.NormalSide != "debit" || l.Class != finance.ClassProgramme {
		t.Errorf("stay line %+v", l)
	}
	if l := byAccount[suspense]; l.Class != finance.ClassOther || l.Balance != 28 {
		t.Errorf("unknown account line %+v, want class other, balance 28", l)
	}
	if l, ok := byAccount[programme.AccountIssuedSuggestion]; !ok || l.Balance != 0 || l.Postings != 0 {
		t.Errorf("an account nothing was posted to: %+v (listed %v), want a zero line", l, ok)
	}
	members := tb.Members
	for tb.NextPageToken != "" {
		// The token pins the first page's as-of: a page asked as of now
		// (zero) is still as of asOf.
		if tb, err = f.reports.TrialBalance(f.ctx, time.Time{}, finance.TrialOptions{IndividualMembers: true, PageSize: 2, PageToken: tb.NextPageToken}); err != nil {
			t.Fatal(err)
		}
		if !tb.AsOf.Equal(asOf.UTC().Truncate(time.Microsecond)) {
			t.Errorf("a later page is as of %s, want the first page's %s", tb.AsOf, asOf)
		}
		members = append(members, tb.Members...)
	}
	var sum int64
	for _, m := range members {
		sum += m.Balance
	}
	if len(members) != 5 || sum != byAccount[finance.MemberAggregate].Balance {
		t.Errorf("%d member lines summing to %d, aggregate %d", len(members), sum, byAccount[finance.MemberAggregate].Balance)
	}
	if _, err := f.reports.TrialBalance(f.ctx, asOf, finance.TrialOptions{PageSize: finance.MaxPageSize + 1}); err == nil {
		t.Error("page size above the limit was accepted")
	}
	// An account created since is not in a report of the time before it:
	// the report reads the same, made again.
	before, err := f.reports.TrialBalance(f.ctx, asOf, finance.TrialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.ledger.CreateAccounts(f.ctx, []ledger.Account{{Code: programme.RedeemedAccount("new_reward"), NormalSide: ledger.Credit, AllowNegative: true, Shards: 1}}); err != nil {
		t.Fatal(err)
	}
	again, err := f.reports.TrialBalance(f.ctx, asOf, finance.TrialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Lines, before.Lines) {
		t.Errorf("made again after an account was created, the trial balance of %s changed: %d lines, then %d", asOf, len(before.Lines), len(again.Lines))
	}
}

func TestMoneyRollForwardRevaluesAtAChangeOfValue(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	f.earn(1, issuedStay, 1000, "H1") // 2026-03-01 09:00, at 0.01
	change := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	if _, err := f.reports.SetPointValue(f.ctx, "finance", "v1", change, decimal.RequireFromString("0.012"), "CNY"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reports.SetPointValue(f.ctx, "finance", "v1-again", change, decimal.RequireFromString("0.012"), "CNY"); err != nil {
		t.Fatalf("the same version again: %v", err)
	}
	if _, err := f.reports.SetPointValue(f.ctx, "finance", "v2", change, decimal.RequireFromString("0.02"), "CNY"); !errors.Is(err, finance.ErrValueConflict) {
		t.Fatal("another value for the same date was accepted")
	}
	if _, err := f.reports.SetPointValue(f.ctx, "finance", "v3", change.Add(time.Hour), decimal.RequireFromString("0.02"), "CNY"); !errors.Is(err, ledger.ErrInvalid) {
		t.Fatal("a value effective mid-day was accepted")
	}
	f.clock.Advance(24 * time.Hour) // 2026-03-02 09:00, at 0.012
	f.post(ledger.KindRedeem, member(1), freeNight, 400, nil)

	rf, err := f.reports.RollForward(f.ctx, start.Add(-time.Hour), f.clock.Now(), finance.GroupBySource)
	if err != nil {
		t.Fatal(err)
	}
	assertBalanced(t, rf)
	want := map[string]string{
		"opening":     "0",
		"issued":      "10",   // 1000 x 0.01
		"redeemed":    "-4.8", // -400 x 0.012
		"revaluation": "2",    // 1000 outstanding at the change x 0.002
		"closing":     "7.2",  // 600 x 0.012
	}
	got := map[string]string{"opening": rf.OpeningMoney.String(), "revaluation": rf.RevaluationMoney.String(), "closing": rf.ClosingMoney.String()}
	for _, l := range rf.Lines {
		got[l.Category] = l.Money.String()
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("money = %v, want %v", got, want)
	}
	values, err := f.reports.PointValues(f.ctx)
	if err != nil || len(values) != 2 || !values[1].Value.Equal(decimal.RequireFromString("0.012")) {
		t.Errorf("values %v (err %v)", values, err)
	}
}

func TestReconcileNamesWhatIsOff(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	activity(f)
	f.clock.Advance(24 * time.Hour)
	if _, err := f.reports.RollUp(f.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reports.SealDays(f.ctx); err != nil {
		t.Fatal(err)
	}
	rec, err := f.reports.Reconcile(f.ctx)
	if err != nil || !rec.OK() {
		t.Fatalf("clean books: %v (err %v)", rec.Discrepancies, err)
	}
	// Tamper: one posting of a day already rolled up and sealed.
	var txID string
	if err := f.db.Pool.QueryRow(f.ctx, `UPDATE postings SET amount = amount + 1
		WHERE (transaction_id, seq) = (SELECT p.transaction_id, p.seq FROM postings p JOIN transactions t ON t.id = p.transaction_id
			WHERE t.recorded_at > '2026-03-02' AND t.recorded_at < '2026-03-03' AND p.account_code = $1 LIMIT 1)
		RETURNING transaction_id::TEXT`, issuedStay).Scan(&txID); err != nil {
		t.Fatal(err)
	}
	rec, err = f.reports.Reconcile(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	checks := map[string]bool{}
	for _, d := range rec.Discrepancies {
		checks[d.Check] = true
		switch d.Check {
		case ledger.CheckTransactionSum:
			if d.TransactionID.String() != txID {
				t.Errorf("sum check names %s, want %s", d.TransactionID, txID)
			}
		case finance.CheckRollupEqualsPostings:
			if d.Day.Format(time.DateOnly) != "2026-03-02" || d.Account != issuedStay {
				t.Errorf("rollup check names %s", d)
			}
		case finance.CheckSealChain:
			if d.Day.Format(time.DateOnly) != "2026-03-02" {
				t.Errorf("seal check names %s", d)
			}
		}
	}
	for _, want := range []string{ledger.CheckTransactionSum, ledger.CheckStoredBalance, finance.CheckTrialBalanceZero,
		finance.CheckRollupEqualsPostings, finance.CheckSealChain} {
		if !checks[want] {
			t.Errorf("no %s discrepancy in %v", want, rec.Discrepancies)
		}
	}
}

func TestVerifySealsNamesTheFirstChangedDay(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	activity(f)
	// Not closed yet: the last day ends at 2026-03-05 00:00, closed 10 minutes later.
	f.clock.Advance(time.Date(2026, 3, 5, 0, 5, 0, 0, time.UTC).Sub(f.clock.Now()))
	p, err := f.reports.SealDays(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Days != 3 { // 03-01 to 03-03; 03-04 closes at 03-05 00:10
		t.Errorf("sealed %d days until %s, want 3", p.Days, p.Until)
	}
	f.clock.Advance(10 * time.Minute)
	if _, err := f.reports.SealDays(f.ctx); err != nil {
		t.Fatal(err)
	}
	seals, err := f.reports.Seals(f.ctx, time.Time{}, time.Time{}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(seals) != 4 || seals[0].Day.Format(time.DateOnly) != "2026-03-01" || seals[3].Day.Format(time.DateOnly) != "2026-03-04" {
		t.Fatalf("seals %v", seals)
	}
	check, err := f.reports.VerifySeals(f.ctx)
	if err != nil || !check.OK() || check.Checked != 4 {
		t.Fatalf("untouched: %+v (err %v)", check, err)
	}
	tamper := []struct {
		name, sql string
	}{
		{"a posting's account", `UPDATE postings SET account_code = 'programme:issued:promotion' WHERE account_code = 'programme:issued:booking_bonus'
			AND recorded_at > '2026-03-03' AND recorded_at <= '2026-03-04'`},
		{"a transaction's metadata", `UPDATE transactions SET metadata = '{"property_id": "H9"}'
			WHERE recorded_at > '2026-03-02' AND recorded_at <= '2026-03-03' AND metadata->>'property_id' = 'H2'`},
	}
	for _, c := range tamper {
		if _, err := f.db.Pool.Exec(f.ctx, c.sql); err != nil {
			t.Fatal(err)
		}
	}
	check, err = f.reports.VerifySeals(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if check.OK() || check.FirstBad.Format(time.DateOnly) != "2026-03-02" {
		t.Errorf("first bad day %s (%s), want 2026-03-02", check.FirstBad.Format(time.DateOnly), check.Problem)
	}
}

// TestReportsReadASnapshotThatBlocksNoWriter: inside a snapshot a report
// keeps its figures while a writer commits a transaction meanwhile, and the
// writer does not wait for the snapshot to end.
func TestReportsReadASnapshotThatBlocksNoWriter(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	f.earn(1, issuedStay, 100, "H1")
	count := func(tx pgx.Tx) int64 {
		var n int64
		if err := tx.QueryRow(f.ctx, `SELECT COALESCE(SUM(amount), 0) FROM postings WHERE account_code = $1`, member(1)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	_, err := f.db.SnapshotTx(f.ctx, f.clock.Now(), f.clock.Now(), func(tx pgx.Tx) error {
		before := count(tx)
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		defer cancel()
		f.key++
		if _, err := f.ledger.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprint("k", f.key), Kind: ledger.KindEarn,
			EffectiveAt: f.clock.Now(), Postings: []ledger.Posting{{Account: issuedStay, Amount: -50}, {Account: member(1), Amount: 50}},
			Lots: ledger.LotPolicy{ExpiresAt: f.clock.Now().AddDate(2, 0, 0)}}); err != nil {
			return fmt.Errorf("a write while a snapshot is open: %w", err)
		}
		if after := count(tx); after != before || before != 100 {
			return fmt.Errorf("inside the snapshot: %d then %d, want 100 both times", before, after)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SnapshotTx(f.ctx, f.clock.Now(), f.clock.Now(), func(tx pgx.Tx) error {
		_, err := tx.Exec(f.ctx, `DELETE FROM finance_seals`)
		return err
	}); err == nil {
		t.Error("a snapshot accepted a write")
	}
	var n int64
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT SUM(amount) FROM postings WHERE account_code = $1`, member(1)).Scan(&n); err != nil || n != 150 {
		t.Fatalf("after the snapshot: %d (err %v), want 150", n, err)
	}
}

// TestJobsRunTwiceAtOnce: two rollup and two seal runs at the same time
// do each day once between them, and the books reconcile.
func TestJobsRunTwiceAtOnce(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	activity(f)
	f.clock.Advance(24 * time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	days := make([]int, 4)
	for i := range 4 {
		wg.Go(func() {
			var p finance.JobProgress
			if i%2 == 0 {
				p, errs[i] = f.reports.RollUp(f.ctx)
			} else {
				p, errs[i] = f.reports.SealDays(f.ctx)
			}
			days[i] = p.Days
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if days[0]+days[2] != 5 || days[1]+days[3] != 5 {
		t.Errorf("days done: rollups %d+%d, seals %d+%d; want 5 each", days[0], days[2], days[1], days[3])
	}
	rec, err := f.reports.Reconcile(f.ctx)
	if err != nil || !rec.OK() || rec.SealsChecked != 5 {
		t.Errorf("reconcile: %v, %d seals (err %v)", rec.Discrepancies, rec.SealsChecked, err)
	}
}
