package rpc_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// Two simulated years under the shipped rule: points expire 24 months
// after the member's last earning or redeeming, at 00:00 in the programme's
// time zone (Asia/Shanghai) the day after.
func TestTwoYearsOfPointsExpiry(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	job := expiry.New(e.ledger, programmes.New(e.ledger, e.clock.Now), e.clock.Now)
	advanceTo := func(t time.Time) { e.clock.Advance(t.Sub(e.clock.Now())) }
	stay := func(key, member, arrival string, charge string) int64 {
		t.Helper()
		a, _ := time.Parse(time.DateOnly, arrival)
		res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(&loyaltyv1.RecordStayRequest{IdempotencyKey: key, MemberNumber: member,
			PropertyId: "SH-HQ-001", StayId: key, ArrivalDate: arrival, DepartureDate: a.AddDate(0, 0, 1).Format(time.DateOnly),
			Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK,
			Nights:  []*loyaltyv1.StayNight{{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: charge}}}}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetTransaction().GetAvailablePointsDelta()
	}
	memberView := func(member string) *loyaltyv1.Member {
		t.Helper()
		res, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetMember()
	}
	run := func(asOf time.Time) expiry.Progress {
		t.Helper()
		p, err := job.Run(e.ctx, asOf, 2, nil) // batches of 2: three members take two batches
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	breakage := func() int64 {
		t.Helper()
		b, err := e.ledger.Balance(e.ctx, programme.AccountBreakage)
		if err != nil {
			t.Fatal(err)
		}
		return b.Posted
	}

	// 22 November 2026: Ana and Bo stay one night (checked out on the
	// 21st); Cai does not turn up and owes the no-show penalty.
	ana, bo, cai := e.enroll(t, c, "enrol-ana"), e.enroll(t, c, "enrol-bo"), e.enroll(t, c, "enrol-cai")
	anaPoints := stay("ana-1", ana, "2026-11-20", "400.00") // 400 x 1.5 (first stay) = 600
	boPoints := stay("bo-1", bo, "2026-11-20", "300.00")    // 450
	if anaPoints != 600 || boPoints != 450 {
		t.Fatalf("stay points %d and %d, want 600 and 450", anaPoints, boPoints)
	}
	if _, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "cai-ns",
		MemberNumber: cai, PropertyId: "SH-HQ-001", StayId: "cai-ns", ArrivalDate: "2026-11-21", Nights: 1,
		BookedAt: timestamppb.New(time.Date(2026, 11, 1, 10, 0, 0, 0, shanghai))})); err != nil {
		t.Fatal(err)
	}
	// Points earned at check-out on 21 November 2026 are good through 21
	// November 2028.
	firstExpiry := time.Date(2028, 11, 22, 0, 0, 0, 0, shanghai)
	if got := memberView(bo).GetPointsExpiry(); !got.GetNextExpiryAt().AsTime().Equal(firstExpiry) || got.GetNextExpiryPoints() != 450 ||
		got.GetRule() != programme.ExpiryInactivity || got.GetMonths() != 24 || got.GetExpiringWithin_90Days() != 0 {
		t.Fatalf("Bo's expiry view %v, want 450 points on %s", got, firstExpiry)
	}
	// A member in debt has no lot: the next earning repays the debt first.
	if got := memberView(cai); got.GetBalance().GetPostedPoints() != -300 || got.GetPointsExpiry().GetNextExpiryAt() != nil {
		t.Fatalf("Cai after the no-show: %v", got)
	}

	// 22 May 2027: Ana redeems a travel kit. Redeeming is activity: every
	// one of her lots now lasts until 24 months from today. Cai stays and
	// repays the debt; 150 of the 450 form a lot.
	advanceTo(time.Date(2027, 5, 22, 10, 0, 0, 0, shanghai))
	if _, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "ana-kit", MemberNumber: ana,
		Reward: loyaltyv1.Reward_REWARD_TRAVEL_KIT})); err != nil {
		t.Fatal(err)
	}
	caiPoints := stay("cai-1", cai, "2027-05-20", "300.00")
	if got := memberView(cai); got.GetBalance().GetPostedPoints() != caiPoints-300 || got.GetPointsExpiry().GetNextExpiryPoints() != caiPoints-300 {
		t.Fatalf("Cai after repaying the debt: %v (earned %d)", got, caiPoints)
	}
	anaExpiry := time.Date(2029, 5, 23, 0, 0, 0, 0, shanghai)
	if got := memberView(ana).GetPointsExpiry(); !got.GetNextExpiryAt().AsTime().Equal(anaExpiry) || got.GetNextExpiryPoints() != 200 {
		t.Fatalf("Ana's expiry view after redeeming %v, want 200 points on %s", got, anaExpiry)
	}

	// Sixty days before Bo's points expire, GetMember warns of them.
	advanceTo(firstExpiry.AddDate(0, 0, -45))
	if got := memberView(bo).GetPointsExpiry(); got.GetExpiringWithin_30Days() != 0 || got.GetExpiringWithin_60Days() != 450 || got.GetExpiringWithin_90Days() != 450 {
		t.Fatalf("Bo's expiry view 45 days ahead: %v", got)
	}

	// The boundary: nothing expires one second before 00:00 on 22 November
	// 2028 in Shanghai; Bo's 450 points expire at it. (A run is booked on
	// its as-of's day, so each runs while its day lasts.)
	advanceTo(firstExpiry.Add(-time.Second / 2))
	if p := run(firstExpiry.Add(-time.Second)); p.Expired != 0 || p.Processed != 0 {
		t.Fatalf("one second early: %+v", p)
	}
	advanceTo(firstExpiry.Add(time.Hour))
	p := run(firstExpiry)
	if p.Expired != 1 || p.Points != 450 || !p.Done {
		t.Fatalf("at the boundary: %+v, want Bo's 450 points", p)
	}
	if again := run(firstExpiry); again != p {
		t.Fatalf("a finished run started again: %+v, want the same %+v and nothing done", again, p)
	}
	if b := memberView(bo).GetBalance().GetPostedPoints(); b != 0 || breakage() != 450 {
		t.Fatalf("Bo's balance %d and breakage %d after expiry, want 0 and 450", b, breakage())
	}
	activity, err := c.members.ListActivity(e.ctx, connect.NewRequest(&loyaltyv1.ListActivityRequest{MemberNumber: bo}))
	if err != nil {
		t.Fatal(err)
	}
	expired := activity.Msg.GetTransactions()[0]
	if expired.GetKind() != loyaltyv1.TransactionKind_TRANSACTION_KIND_EXPIRY || expired.GetAvailablePointsDelta() != -450 ||
		len(expired.GetLots()) != 1 || expired.GetLots()[0].GetPoints() != -450 || !expired.GetLots()[0].GetExpiresAt().AsTime().Equal(firstExpiry) ||
		len(expired.GetBreakdown()) != 1 || expired.GetBreakdown()[0].GetPoints() != -450 {
		t.Fatalf("Bo's expiry in the statement: %v", expired)
	}
	if earned := activity.Msg.GetTransactions()[1]; expired.GetLots()[0].GetLotId() != earned.GetTransactionId() {
		t.Fatalf("the expiry drew lot %s, want the stay %s that earned it", expired.GetLots()[0].GetLotId(), earned.GetTransactionId())
	}
	if got := memberView(ana).GetBalance().GetPostedPoints(); got != 200 {
		t.Fatalf("Ana's points %d: her redemption kept them alive", got)
	}

	// 23 May 2029: two years after Ana's last activity, her points expire
	// too; Cai's, earned on 21 May 2027, expired two days before.
	advanceTo(anaExpiry.Add(time.Minute))
	p = run(anaExpiry)
	if p.Expired != 2 || p.Points != 200+caiPoints-300 {
		t.Fatalf("second expiry: %+v", p)
	}
	for _, m := range []string{ana, bo, cai} {
		if v := memberView(m); v.GetBalance().GetPostedPoints() != 0 || v.GetPointsExpiry().GetNextExpiryAt() != nil {
			t.Errorf("member %s after two years: %v", m, v)
		}
	}
	if want := int64(450 + 200 + caiPoints - 300); breakage() != want {
		t.Fatalf("breakage %d, want %d", breakage(), want)
	}
	// Finance sees the breakage as the roll-forward's expired line.
	rf, err := finance.New(e.ledger, finance.Options{Clock: e.clock.Now}).RollForward(e.ctx, time.Time{}, e.clock.Now(), finance.GroupBySource)
	if err != nil {
		t.Fatal(err)
	}
	var expiredPoints int64
	for _, l := range rf.Lines {
		if l.Category == finance.CategoryExpired {
			expiredPoints += l.Points
		}
	}
	if expiredPoints != -breakage() || !rf.Balanced || rf.ClosingPoints != 0 {
		t.Fatalf("roll-forward: expired %d (want %d), balanced %v, closing %d", expiredPoints, -breakage(), rf.Balanced, rf.ClosingPoints)
	}
	e.verify(t)
}

func TestExpiryJobResumesFromItsCheckpoint(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	const members = 5
	for i := range members {
		m := e.enroll(t, c, fmt.Sprintf("enrol-%d", i))
		if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest(fmt.Sprintf("stay-%d", i), m, fmt.Sprintf("S-%d", i), "100.00"))); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(3 * 365 * 24 * time.Hour)
	asOf := e.clock.Now()
	job := expiry.New(e.ledger, programmes.New(e.ledger, e.clock.Now), e.clock.Now)
	// The first run stops after its first batch of two...
	ctx, cancel := contextWithCancel(e)
	first, err := job.Run(ctx, asOf, 2, func(expiry.Progress) { cancel() })
	if err == nil || first.Processed != 2 || first.Done {
		t.Fatalf("interrupted run: %+v, %v", first, err)
	}
	// ...and the second finishes the other three.
	var batches int
	final, err := job.Run(e.ctx, asOf, 2, func(expiry.Progress) { batches++ })
	if err != nil || final.Processed != members || final.Expired != members || !final.Done || batches != 2 {
		t.Fatalf("resumed run: %+v, %v after %d batches", final, err, batches)
	}
	if got := e.transactionCount(t); got != 2*members {
		t.Fatalf("%d transactions, want %d stays and %d expiries", got, members, members)
	}
	e.verify(t)
}

func contextWithCancel(e *env) (context.Context, context.CancelFunc) {
	return context.WithCancel(e.ctx)
}

// TestAStayRecordedLateExpiresWithTheLastActivity: under the default
// inactivity rule every point expires 24 months after the member's last
// earning or redeeming, whatever order the stays were recorded in: a stay
// imported after a later one does not bring its points' expiry forward.
func TestAStayRecordedLateExpiresWithTheLastActivity(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	later := stayRequest("stay-later", member, "LATER", "388.00")
	later.ArrivalDate, later.DepartureDate = "2026-11-10", "2026-11-11"
	earlier := stayRequest("stay-earlier", member, "EARLIER", "388.00")
	for _, req := range []*loyaltyv1.RecordStayRequest{later, earlier} {
		if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Msg.GetMember()
	// Checked out on the 11th at noon in Shanghai: good through 11 November
	// 2028 in the programme's time zone.
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2028, 11, 12, 0, 0, 0, 0, shanghai)
	if got := m.GetPointsExpiry(); !got.GetNextExpiryAt().AsTime().Equal(want) || got.GetNextExpiryPoints() != m.GetBalance().GetPostedPoints() {
		t.Fatalf("expiry %v of %d points; want all of them at %s", got, m.GetBalance().GetPostedPoints(), want)
	}
}

// TestAStayReversedOnTheMorningOfItsDepartureNeverQualifies: a stay and
// its reversal qualify (and stop qualifying) at one instant, its
// check-out, even when both are recorded before it: at no moment do the
// member's tier figures, or the next stay's tier decision, count the
// reversed nights.
func TestAStayReversedOnTheMorningOfItsDepartureNeverQualifies(t *testing.T) {
	e := newEnv(t) // 09:00 UTC: 04:00 in New York
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-past", member, "PAST", "300.00"))); err != nil {
		t.Fatal(err)
	}
	nyStay := func(key, stayID string, nights int) *loyaltyv1.RecordStayResponse {
		t.Helper()
		charges := make([]string, nights)
		for i := range charges {
			charges[i] = "300.00"
		}
		req := stayRequest(key, member, stayID, charges...)
		req.PropertyId, req.ArrivalDate, req.DepartureDate = "NYC-1", time.Date(2026, 11, 22-nights, 0, 0, 0, 0, time.UTC).Format(time.DateOnly), "2026-11-22"
		res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg
	}
	reversed := nyStay("stay-reversed", "NY-R", 3)
	if _, err := c.booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{
		IdempotencyKey: "reverse-1", TransactionId: reversed.GetTransaction().GetTransactionId(), Reason: "booked twice"})); err != nil {
		t.Fatal(err)
	}
	nights := func() int32 {
		t.Helper()
		res, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetMember().GetTierStatus().GetQualifyingNights()
	}
	if got := nights(); got != 1 {
		t.Fatalf("before check-out, after the reversal: %d qualifying nights, want the past stay's 1", got)
	}
	if next := nyStay("stay-next", "NY-N", 2); next.GetTier() != loyaltyv1.Tier_TIER_SILVER {
		t.Errorf("the next stay left the member at %s, want silver (3 nights, the reversed ones not counted)", next.GetTier())
	}
	e.advanceTo(time.Date(2026, 11, 22, 17, 30, 0, 0, time.UTC)) // past noon in New York
	if got := nights(); got != 3 {
		t.Fatalf("after check-out: %d qualifying nights, want 3 (1 + 2; the reversed 3 net to nothing)", got)
	}
}
