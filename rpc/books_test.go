package rpc_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// The roll-forward line each counter-account of a member's posting lands
// on, as the domain brief's liability roll-forward names them: the
// specification the finance reports are held to below.
var rollForwardLine = map[string]string{
	"programme:issued:stay":               "issued/stay",
	"programme:issued:booking_bonus":      "issued/booking_bonus",
	"programme:issued:suggestion":         "issued/suggestion",
	"programme:issued:goodwill":           "issued/goodwill",
	"partner:ALPHA:issued":                "issued/partner_award",
	"programme:redeemed:bedtime_milk":     "redeemed/bedtime_milk",
	"partner:BETA:redeemed":               "redeemed/partner",
	"programme:penalty:no_show":           "penalty/no_show",
	"programme:penalty:guarantee_capture": "penalty/guarantee_capture",
	"programme:penalty:late_checkout":     "penalty/late_checkout",
	"programme:adjustment:debit":          "adjustment/debit",
	"programme:breakage":                  "expired/breakage",
}

// TestBooksOfEveryKindOfTransaction builds a ledger with every kind of
// transaction the service records (stays with a booking bonus, a
// suggestion, goodwill and a debit adjustment, a redemption and its
// reversal, a late check-out, no-shows with and without a captured
// guarantee, a released guarantee, a late cancellation, partner awards,
// redemptions and a partner reversal, and two years later the expiry of
// what is left), then holds the finance reports to it line by line: the
// roll-forward's lines are the counter-postings of the transactions as the
// API returned them, opening + movements = closing, the trial balance is
// zero and its member line is the liability, the partners' statements tie
// to the roll-forward, and Reconcile is clean; then it finds a corrupted
// balance and a broken seal.
func TestBooksOfEveryKindOfTransaction(t *testing.T) {
	w := newAllianceWorld(t)
	c, admin := w.clients(w.bookingKey), w.clients(w.adminKey)
	start := w.clock.Now()
	want := map[string]int64{} // roll-forward line -> members' points
	record := func(what string, txn *loyaltyv1.Transaction, err error) *loyaltyv1.Transaction {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if txn == nil {
			t.Fatalf("%s: no transaction", what)
		}
		reversal := txn.GetKind() == loyaltyv1.TransactionKind_TRANSACTION_KIND_REVERSAL
		for _, p := range txn.GetPostings() {
			if strings.HasPrefix(p.GetAccount(), "member:") {
				continue
			}
			line, ok := rollForwardLine[p.GetAccount()]
			if !ok {
				t.Fatalf("%s: posting on %s, which the test has no line for", what, p.GetAccount())
			}
			if reversal {
				line = "reversal/" + strings.Replace(line, "/", ":", 1)
			}
			want[line] -= p.GetAmount() // raw and credit-positive: what the counter-account gained, the members lost
		}
		return txn
	}
	shanghai := time.FixedZone("CST", 8*3600)
	at := func(day, clock string) *timestamppb.Timestamp {
		ts, err := time.ParseInLocation("2006-01-02 15:04", day+" "+clock, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(ts)
	}

	// The programme's own hotels.
	stay1, err := c.booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("stay-1", w.m1, "S-1", "400.00", "420.00")))
	record("stay on the app", stay1.Msg.GetTransaction(), err)
	stay2req := stayRequest("stay-2", w.m2, "S-2", "300.00")
	stay2req.Channel = loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK
	stay2, err := c.booking.RecordStay(w.ctx, connect.NewRequest(stay2req))
	record("stay at the front desk", stay2.Msg.GetTransaction(), err)
	sugg, err := c.members.AwardSuggestion(w.ctx, connect.NewRequest(&loyaltyv1.AwardSuggestionRequest{IdempotencyKey: "sugg", MemberNumber: w.m2, Suggestion: "more pillows"}))
	record("suggestion", sugg.Msg.GetTransaction(), err)
	gw, err := admin.admin.AdjustPoints(w.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "gw", MemberNumber: w.m1,
		Points: 100, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "noisy room"}))
	record("goodwill", gw.Msg.GetTransaction(), err)
	debit, err := admin.admin.AdjustPoints(w.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "debit", MemberNumber: w.m1,
		Points: -50, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "goodwill given twice"}))
	record("debit adjustment", debit.Msg.GetTransaction(), err)
	milk, err := c.booking.Redeem(w.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "milk", MemberNumber: w.m1, Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK}))
	record("redemption", milk.Msg.GetTransaction(), err)
	unmilk, err := c.booking.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{IdempotencyKey: "unmilk",
		TransactionId: milk.Msg.GetTransaction().GetTransactionId(), Reason: "milk was not delivered"}))
	record("reversal of the redemption", unmilk.Msg.GetTransaction(), err)
	late, err := c.booking.RecordLateCheckout(w.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late", MemberNumber: w.m1,
		PropertyId: "SH-HQ-001", StayId: "S-1", DepartureDate: "2026-11-03", Hours: 1}))
	record("late check-out", late.Msg.GetTransaction(), err)
	// A guarantee released on arrival, and one captured on a no-show.
	if _, err := c.booking.PlaceGuarantee(w.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: w.m2,
		PropertyId: "SH-HQ-001", StayId: "G-1", ArrivalDate: "2026-11-23", HoldUntil: "19:00"})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.booking.ReleaseGuarantee(w.ctx, connect.NewRequest(&loyaltyv1.ReleaseGuaranteeRequest{IdempotencyKey: "g-1-arrived",
		PropertyId: "SH-HQ-001", StayId: "G-1", Reason: loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_ARRIVED})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.booking.PlaceGuarantee(w.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-2", MemberNumber: w.m2,
		PropertyId: "SH-HQ-001", StayId: "G-2", ArrivalDate: "2026-11-24", HoldUntil: "19:00"})); err != nil {
		t.Fatal(err)
	}
	// 20:00 on the 24th in Shanghai: the guaranteed room was held until
	// 19:00, and the hold lasts until noon the next day.
	w.clock.Advance(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC).Sub(w.clock.Now()))
	captured, err := c.booking.RecordNoShow(w.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns-g", MemberNumber: w.m2,
		PropertyId: "SH-HQ-001", StayId: "G-2", ArrivalDate: "2026-11-24", Nights: 1, BookedAt: at("2026-11-10", "09:00")}))
	record("no-show with a guarantee", captured.Msg.GetTransaction(), err)
	noShow, err := c.booking.RecordNoShow(w.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns", MemberNumber: w.m1,
		PropertyId: "SH-HQ-001", StayId: "N-1", ArrivalDate: "2026-11-20", Nights: 1, BookedAt: at("2026-11-10", "09:00")}))
	record("no-show", noShow.Msg.GetTransaction(), err)
	// 20:00 on the 25th in Shanghai: a cancellation recorded after it was made.
	w.clock.Advance(time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC).Sub(w.clock.Now()))
	cancel, err := c.booking.RecordCancellation(w.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cancel", MemberNumber: w.m1,
		PropertyId: "SH-HQ-001", StayId: "C-1", ArrivalDate: "2026-11-25", Nights: 1, CancelledAt: at("2026-11-25", "18:30")}))
	record("late cancellation", cancel.Msg.GetTransaction(), err)

	// Partners: an award at ALPHA reversed, another kept; a redemption at BETA.
	partnerTxn := func(what string, txn *loyaltyv1.PartnerTransaction, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		full, err := admin.members.GetTransaction(w.ctx, connect.NewRequest(&loyaltyv1.GetTransactionRequest{TransactionId: txn.GetTransactionId()}))
		if err != nil {
			t.Fatal(err)
		}
		record(what, full.Msg.GetTransaction(), nil)
		return txn.GetTransactionId()
	}
	alpha, beta := w.alliance(w.alphaKey), w.alliance(w.betaKey)
	a1, err := alpha.AwardStay(w.ctx, award("a-1", w.m1, "A-1", "ST-1", "2026-11-10", "380.00"))
	first := partnerTxn("award at ALPHA", a1.Msg.GetTransaction(), err)
	a2, err := alpha.AwardStay(w.ctx, award("a-2", w.m2, "A-2", "ST-2", "2026-11-12", "260.00", "260.00"))
	partnerTxn("second award at ALPHA", a2.Msg.GetTransaction(), err)
	rev, err := alpha.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{IdempotencyKey: "a-1-rev",
		TransactionId: first, Reason: "stay disputed"}))
	partnerTxn("reversal at ALPHA", rev.Msg.GetTransaction(), err)
	b1, err := beta.Redeem(w.ctx, redeem("b-1", w.m2, "B-1", loyaltyv1.Reward_REWARD_MEMBER_CARD))
	partnerTxn("redemption at BETA", b1.Msg.GetTransaction(), err)
	november := w.clock.Now()

	// Two years later: what is left expires.
	w.clock.Advance(25 * 31 * 24 * time.Hour)
	job := expiry.New(w.ledger, programmes.New(w.ledger, w.clock.Now), w.clock.Now)
	if p, err := job.Run(w.ctx, w.clock.Now(), 100, nil); err != nil || p.Expired == 0 {
		t.Fatalf("expiry: %+v, %v", p, err)
	}
	// The expiries, from each member's statement (whose lines carry no
	// postings: the transaction itself does).
	for _, m := range []string{w.m1, w.m2} {
		a, err := c.members.ListActivity(w.ctx, connect.NewRequest(&loyaltyv1.ListActivityRequest{MemberNumber: m}))
		if err != nil {
			t.Fatal(err)
		}
		if last := a.Msg.GetTransactions()[0]; last.GetKind() == loyaltyv1.TransactionKind_TRANSACTION_KIND_EXPIRY {
			full, err := c.members.GetTransaction(w.ctx, connect.NewRequest(&loyaltyv1.GetTransactionRequest{TransactionId: last.GetTransactionId()}))
			record("expiry", full.Msg.GetTransaction(), err)
		}
	}
	for _, k := range []string{"issued/stay", "issued/booking_bonus", "issued/suggestion", "issued/goodwill", "issued/partner_award",
		"redeemed/partner", "penalty/no_show", "penalty/guarantee_capture", "penalty/late_checkout", "adjustment/debit",
		"reversal/redeemed:bedtime_milk", "reversal/issued:partner_award", "expired/breakage"} {
		if want[k] == 0 {
			t.Fatalf("the scenario has no %s movement: %v", k, want)
		}
	}

	reports := finance.New(w.ledger, finance.Options{Clock: w.clock.Now})
	for _, job := range []func() (finance.JobProgress, error){
		func() (finance.JobProgress, error) { return reports.RollUp(w.ctx) },
		func() (finance.JobProgress, error) { return reports.SealDays(w.ctx) },
	} {
		if _, err := job(); err != nil {
			t.Fatal(err)
		}
	}
	now := w.clock.Now()
	rf, err := reports.RollForward(w.ctx, start.Add(-time.Hour), now, finance.GroupBySource)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	for _, l := range rf.Lines {
		got[l.Category+"/"+l.Detail] += l.Points
	}
	if fmt.Sprint(sortedLines(got)) != fmt.Sprint(sortedLines(want)) {
		t.Errorf("roll-forward lines:\n got %v\nwant %v", sortedLines(got), sortedLines(want))
	}
	if !rf.Balanced || rf.OpeningPoints != 0 || rf.OpeningPoints+rf.MovementPoints != rf.ClosingPoints {
		t.Errorf("roll-forward identity: opening %d + movements %d = closing %d, balanced %v",
			rf.OpeningPoints, rf.MovementPoints, rf.ClosingPoints, rf.Balanced)
	}
	var members int64
	for _, m := range []string{w.m1, w.m2} {
		res, err := c.members.GetMember(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: m}))
		if err != nil {
			t.Fatal(err)
		}
		members += res.Msg.GetMember().GetBalance().GetPostedPoints()
	}
	if rf.ClosingPoints != members {
		t.Errorf("closing liability %d, the members hold %d", rf.ClosingPoints, members)
	}
	tb, err := reports.TrialBalance(w.ctx, now, finance.TrialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range tb.Lines {
		if l.Account == finance.MemberAggregate && l.Balance != members {
			t.Errorf("trial balance member line %d, want %d", l.Balance, members)
		}
		if l.Account == "programme:breakage" && l.Balance != -want["expired/breakage"] {
			t.Errorf("trial balance breakage %d, want %d", l.Balance, -want["expired/breakage"])
		}
	}
	if tb.Total != 0 || tb.TotalDebit != tb.TotalCredit {
		t.Errorf("trial balance: debits %d, credits %d, total %d", tb.TotalDebit, tb.TotalCredit, tb.Total)
	}
	statements, err := reports.PartnerStatements(w.ctx, start.Add(-time.Hour), november)
	if err != nil || !statements.Ties || len(statements.Statements) != 2 {
		t.Errorf("partner statements: %+v, %v", statements, err)
	}
	rec, err := reports.Reconcile(w.ctx)
	if err != nil || !rec.OK() {
		t.Fatalf("reconcile of sound books: %+v, %v", rec, err)
	}

	// A corrupted balance: Reconcile names the account.
	account := "member:" + w.m1 + ":points"
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE account_balances SET balance = balance + 7 WHERE account_code = $1`, account); err != nil {
		t.Fatal(err)
	}
	rec, err = reports.Reconcile(w.ctx)
	if err != nil || rec.OK() || !hasDiscrepancy(rec, ledger.CheckStoredBalance, account) {
		t.Errorf("reconcile after corrupting %s: %+v, %v", account, rec.Discrepancies, err)
	}
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE account_balances SET balance = balance - 7 WHERE account_code = $1`, account); err != nil {
		t.Fatal(err)
	}
	// A broken seal: a sealed transaction's metadata rewritten. The seal
	// check names the day it was recorded on.
	var day time.Time
	if err := w.db.Pool.QueryRow(w.ctx, `UPDATE transactions SET metadata = '{"description":"nothing to see"}'
		WHERE id = $1 RETURNING recorded_at`, stay2.Msg.GetTransaction().GetTransactionId()).Scan(&day); err != nil {
		t.Fatal(err)
	}
	seals, err := reports.VerifySeals(w.ctx)
	if err != nil || seals.OK() || !seals.FirstBad.Equal(day.UTC().Truncate(24*time.Hour)) {
		t.Errorf("verify seals after the rewrite of a transaction of %s: %+v, %v", day.UTC().Format(time.DateOnly), seals, err)
	}
	rec, err = reports.Reconcile(w.ctx)
	if err != nil || !hasDiscrepancy(rec, finance.CheckSealChain, "") {
		t.Errorf("reconcile after breaking a seal: %+v, %v", rec.Discrepancies, err)
	}
}

func sortedLines(m map[string]int64) []string {
	var out []string
	for k, v := range m {
		if v != 0 {
			out = append(out, fmt.Sprintf("%s=%d", k, v))
		}
	}
	sort.Strings(out)
	return out
}

func hasDiscrepancy(rec finance.Reconciliation, check, account string) bool {
	for _, d := range rec.Discrepancies {
		if d.Check == check && (account == "" || d.Account == account) {
			return true
		}
	}
	return false
}
