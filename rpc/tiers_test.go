package rpc_test

import (
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/members"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	tierrules "github.com/loyalty-ledger/loyalty/tiers"
)

// TestStaysMoveMembersUpTiers: the first stay makes silver; the stay that
// reaches 10 nights makes gold at once, in its own transaction, but is
// itself earned at silver (the tier when it began); the next stay earns
// at gold. A reversed stay stops qualifying; the tier stays until review.
func TestStaysMoveMembersUpTiers(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	stay := func(n int, charges ...string) *loyaltyv1.RecordStayResponse {
		t.Helper()
		res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest(fmt.Sprintf("stay-%d", n), member, fmt.Sprintf("B-%d", n), charges...)))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg
	}
	nights := func(n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = "100.00"
		}
		return out
	}

	if got := stay(1, "500.00").GetTier(); got != loyaltyv1.Tier_TIER_SILVER {
		t.Fatalf("after the first stay: %s", got)
	}
	stay(2, nights(4)...)
	if got := stay(3, nights(4)...).GetTier(); got != loyaltyv1.Tier_TIER_SILVER {
		t.Fatalf("9 nights: %s, want SILVER", got)
	}
	// The 10th night, checked out after the others: a stay's window ends
	// at its check-out, so the stays counted are those completed by then.
	req4 := stayRequest("stay-4", member, "B-4", nights(1)...)
	req4.ArrivalDate, req4.DepartureDate = "2026-11-05", "2026-11-06"
	res4, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req4))
	if err != nil {
		t.Fatal(err)
	}
	fourth := res4.Msg
	if fourth.GetTier() != loyaltyv1.Tier_TIER_GOLD {
		t.Fatalf("10 nights: %s, want GOLD", fourth.GetTier())
	}
	wantLines(t, fourth.GetTransaction(), "stay_points", 100, "direct_booking_bonus", 77)
	// A stay that began before the upgrade keeps silver's rules...
	early := stay(5, nights(1)...) // arrived 2026-11-01, before the upgrade
	wantLines(t, early.GetTransaction(), "stay_points", 100, "direct_booking_bonus", 77)
	// ...and one that began after it earns at gold: 1.2x and the stay points
	// again for booking direct.
	req := stayRequest("stay-6", member, "B-6", "100.00")
	req.ArrivalDate, req.DepartureDate = "2026-11-23", "2026-11-24"
	e.advanceTo(time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC)) // its departure day
	late, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, late.Msg.GetTransaction(), "stay_points", 100, "tier_bonus", 20, "direct_booking_bonus", 100)

	history, err := c.members.GetTierHistory(e.ctx, connect.NewRequest(&loyaltyv1.GetTierHistoryRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range history.Msg.GetChanges() {
		got = append(got, fmt.Sprintf("%s->%s@%dn", ch.GetFromTier(), ch.GetToTier(), ch.GetQualifyingNights()))
	}
	if want := "[TIER_SILVER->TIER_GOLD@10n TIER_REGULAR->TIER_SILVER@1n]"; fmt.Sprint(got) != want {
		t.Fatalf("tier history %v, want %s", got, want)
	}

	status, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	// 12 nights and 1,600 base stay points so far (the stay that checked
	// out this morning counts); platinum needs 25 nights or 8,000 points.
	if ts := status.Msg.GetMember().GetTierStatus(); ts.GetQualifyingNights() != 12 || ts.GetQualifyingPoints() != 1600 ||
		ts.GetNextTier() != loyaltyv1.Tier_TIER_PLATINUM || ts.GetNightsToNextTier() != 13 || ts.GetPointsToNextTier() != 6400 ||
		ts.GetNextReviewAt().AsTime().Sub(history.Msg.GetChanges()[0].GetEffectiveAt().AsTime()) < 365*24*time.Hour {
		t.Fatalf("tier status %v", ts)
	}

	if _, err := c.booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{IdempotencyKey: "rev-4",
		TransactionId: fourth.GetTransaction().GetTransactionId(), Reason: "booked in error"})); err != nil {
		t.Fatal(err)
	}
	var qualifyingNights int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT SUM(nights) FROM qualifying_stays WHERE member_number = $1`, member).Scan(&qualifyingNights); err != nil {
		t.Fatal(err)
	}
	if qualifyingNights != 11 {
		t.Fatalf("qualifying nights after reversing a 1-night stay of 12: %d", qualifyingNights)
	}
	got2, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil || got2.Msg.GetMember().GetTier() != loyaltyv1.Tier_TIER_GOLD {
		t.Fatalf("a reversal downgrades only at review: %v, %v", got2, err)
	}

	// An admin sets platinum by hand for three months: it shows, and it is
	// in the history.
	until := time.Date(2027, 2, 22, 0, 0, 0, 0, time.UTC)
	if _, err := e.clients(e.adminKey).admin.SetTier(e.ctx, connect.NewRequest(&loyaltyv1.SetTierRequest{IdempotencyKey: "tier-1",
		MemberNumber: member, Tier: loyaltyv1.Tier_TIER_PLATINUM, Reason: "brand ambassador", Until: timestamppb.New(until)})); err != nil {
		t.Fatal(err)
	}
	manual, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if m := manual.Msg.GetMember(); err != nil || m.GetTier() != loyaltyv1.Tier_TIER_PLATINUM || !m.GetTierStatus().GetManual() ||
		!m.GetTierStatus().GetManualUntil().AsTime().Equal(until) {
		t.Fatalf("manual tier: %v, %v", manual, err)
	}
	e.verify(t)
}

// TestTwoYearsOfTiers follows a member over two simulated years: up with
// stays at once, down one step at the review date when the activity has
// gone, and every stay earned at the tier in force when it began.
func TestTwoYearsOfTiers(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	n := 0
	// stay records a stay that began yesterday and ends today.
	stayNights := func(nights int) *loyaltyv1.RecordStayResponse {
		t.Helper()
		n++
		today := e.clock.Now()
		arrival := today.AddDate(0, 0, -nights)
		req := &loyaltyv1.RecordStayRequest{IdempotencyKey: fmt.Sprintf("stay-%d", n), MemberNumber: member, PropertyId: "SH-HQ-001",
			StayId: fmt.Sprintf("Y-%d", n), ArrivalDate: arrival.Format(time.DateOnly), DepartureDate: today.Format(time.DateOnly),
			Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK} // no direct-booking bonus: the tier shows alone
		for range nights {
			req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: "200.00"}})
		}
		res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg
	}
	tierNow := func() loyaltyv1.Tier {
		t.Helper()
		res, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetMember().GetTier()
	}
	review := members.New(e.ledger, e.clock.Now)

	if got := stayNights(1).GetTier(); got != loyaltyv1.Tier_TIER_SILVER { // 2026-11-22
		t.Fatalf("first stay: %s", got)
	}
	e.clock.Advance(30 * 24 * time.Hour)
	upgrade := stayNights(10) // 11 nights in the window: gold at once
	if upgrade.GetTier() != loyaltyv1.Tier_TIER_GOLD {
		t.Fatalf("11 nights: %s", upgrade.GetTier())
	}
	wantLines(t, upgrade.GetTransaction(), "stay_points", 2000) // earned as silver: the tier when it began

	e.clock.Advance(180 * 24 * time.Hour)                                              // mid 2027
	wantLines(t, stayNights(1).GetTransaction(), "stay_points", 200, "tier_bonus", 40) // gold: 1.2x

	// The review date is a year after the upgrade; before it nothing moves.
	if p, err := review.ReviewTiers(e.ctx, tierrules.Default(), e.clock.Now(), 100, nil); err != nil || p.Changed != 0 {
		t.Fatalf("a review before the review date: %+v, %v", p, err)
	}
	e.clock.Advance(190 * 24 * time.Hour) // past the anniversary; the 10-night stay left the window
	asOf := e.clock.Now()
	if p, err := review.ReviewTiers(e.ctx, tierrules.Default(), asOf, 100, nil); err != nil || p.Changed != 1 {
		t.Fatalf("the review at the anniversary: %+v, %v", p, err)
	}
	if got := tierNow(); got != loyaltyv1.Tier_TIER_SILVER {
		t.Fatalf("after the review: %s, want one step down to SILVER", got)
	}
	if p, err := review.ReviewTiers(e.ctx, tierrules.Default(), asOf, 100, nil); err != nil || p.Changed != 1 {
		t.Fatalf("the same review again: %+v, %v (it must change nothing more)", p, err)
	}
	e.clock.Advance(48 * time.Hour)                                  // a stay that began after the downgrade
	wantLines(t, stayNights(1).GetTransaction(), "stay_points", 200) // silver again: no tier bonus

	// A year later, with one night in the window, silver holds: it needs
	// only a stay ever.
	e.clock.Advance(366 * 24 * time.Hour)
	if p, err := review.ReviewTiers(e.ctx, tierrules.Default(), e.clock.Now(), 100, nil); err != nil || p.Changed != 0 {
		t.Fatalf("the next year's review: %+v, %v", p, err)
	}
	history, err := c.members.GetTierHistory(e.ctx, connect.NewRequest(&loyaltyv1.GetTierHistoryRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range history.Msg.GetChanges() {
		got = append(got, fmt.Sprintf("%s->%s", ch.GetFromTier(), ch.GetToTier()))
	}
	if want := "[TIER_GOLD->TIER_SILVER TIER_SILVER->TIER_GOLD TIER_REGULAR->TIER_SILVER]"; fmt.Sprint(got) != want {
		t.Fatalf("two years of tiers: %v, want %s", got, want)
	}
	e.verify(t)
}

// TestABackdatedTierCorrection: an admin corrects a member's tier from a
// past moment; outcomes recorded afterwards whose stay began, or whose
// cancellation was made, after it use it. A tier is not backdated into the
// future, before enrolment or before the latest tier change.
func TestABackdatedTierCorrection(t *testing.T) {
	e := newEnv(t)
	c, admin := e.clients(e.bookingKey), e.clients(e.adminKey).admin
	member := e.enroll(t, c, "enrol-1") // 2026-11-22 09:00 UTC
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	e.advanceTo(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))
	set := func(key string, at time.Time) error {
		_, err := admin.SetTier(e.ctx, connect.NewRequest(&loyaltyv1.SetTierRequest{IdempotencyKey: key, MemberNumber: member,
			Tier: loyaltyv1.Tier_TIER_GOLD, Reason: "status match from another chain", EffectiveAt: timestamppb.New(at)}))
		return err
	}
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"in the future", time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)},
		{"before enrolment", time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)},
	} {
		if got := badRequestField(t, wantCode(t, set(fmt.Sprint("bad-", len(tc.name)), tc.at), connect.CodeInvalidArgument)); got != "effectiveAt" {
			t.Errorf("%s: field %q", tc.name, got)
		}
	}
	if err := set("gold", time.Date(2026, 11, 23, 0, 0, 0, 0, shanghai)); err != nil {
		t.Fatal(err)
	}
	// Before the change just made: refused.
	if got := badRequestField(t, wantCode(t, set("before-latest", time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)), connect.CodeInvalidArgument)); got != "effectiveAt" {
		t.Errorf("before the latest change: field %q", got)
	}
	// Cancelled at 18:30 on the 24th: gold cancels free until 19:00.
	cancelled, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx",
		MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "C-1", ArrivalDate: "2026-11-24", Nights: 1,
		CancelledAt: timestamppb.New(time.Date(2026, 11, 24, 18, 30, 0, 0, shanghai))}))
	if err != nil || !cancelled.Msg.GetFreeCancellation() {
		t.Fatalf("a gold member's cancellation at 18:30: %v, %v; want free", cancelled, err)
	}
	// A stay that began on the 23rd earns at gold.
	req := stayRequest("stay-1", member, "B-1", "100.00")
	req.ArrivalDate, req.DepartureDate = "2026-11-23", "2026-11-24"
	stayed, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	wantLines(t, stayed.Msg.GetTransaction(), "stay_points", 100, "tier_bonus", 20, "first_stay_bonus", 60, "direct_booking_bonus", 100)
}

// TestGetMemberShowsTheNextReviewAYearOnAfterAReviewThatKeepsTheTier: a
// gold member who still qualifies at the review date keeps gold, and
// GetMember's next review moves from the date just passed to a year on
// (the review marks the member reviewed; the store reads it back). A
// review the next day finds the member not due.
func TestGetMemberShowsTheNextReviewAYearOnAfterAReviewThatKeepsTheTier(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	n := 0
	// stay records a stay of nights that ends today.
	stay := func(nights int) {
		t.Helper()
		n++
		today := e.clock.Now()
		req := &loyaltyv1.RecordStayRequest{IdempotencyKey: fmt.Sprintf("stay-%d", n), MemberNumber: member, PropertyId: "SH-HQ-001",
			StayId: fmt.Sprintf("K-%d", n), ArrivalDate: today.AddDate(0, 0, -nights).Format(time.DateOnly),
			DepartureDate: today.Format(time.DateOnly), Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK}
		for range nights {
			req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: "200.00"}})
		}
		if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req)); err != nil {
			t.Fatal(err)
		}
	}
	status := func() (loyaltyv1.Tier, time.Time) {
		t.Helper()
		res, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
		if err != nil {
			t.Fatal(err)
		}
		m := res.Msg.GetMember()
		return m.GetTier(), m.GetTierStatus().GetNextReviewAt().AsTime()
	}
	changes := func() int {
		t.Helper()
		res, err := c.members.GetTierHistory(e.ctx, connect.NewRequest(&loyaltyv1.GetTierHistoryRequest{MemberNumber: member}))
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Msg.GetChanges())
	}

	stay(10) // 10 nights: gold at once
	tier, anniversary := status()
	if tier != loyaltyv1.Tier_TIER_GOLD {
		t.Fatalf("after 10 nights: %s, want GOLD", tier)
	}
	history, err := c.members.GetTierHistory(e.ctx, connect.NewRequest(&loyaltyv1.GetTierHistoryRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	if upgraded := history.Msg.GetChanges()[0].GetEffectiveAt().AsTime(); !anniversary.Equal(upgraded.AddDate(1, 0, 0)) {
		t.Fatalf("next review %s, want the upgrade's anniversary %s", anniversary, upgraded.AddDate(1, 0, 0))
	}
	e.clock.Advance(300 * 24 * time.Hour)
	stay(10) // in the window at the review: gold is kept

	e.advanceTo(anniversary.Add(24 * time.Hour)) // the job runs a day after the anniversary
	if _, next := status(); !next.Equal(anniversary) {
		t.Fatalf("due but not yet reviewed: next review %s, want the anniversary %s", next, anniversary)
	}
	before := changes()
	review := members.New(e.ledger, e.clock.Now)
	p, err := review.ReviewTiers(e.ctx, tierrules.Default(), e.clock.Now(), 100, nil)
	if err != nil || p.Processed != 1 || p.Due() != 1 || p.Changed != 0 || p.Unchanged != 1 {
		t.Fatalf("the review: %+v, %v; want the member due and unchanged", p, err)
	}
	tier, next := status()
	if want := anniversary.AddDate(1, 0, 0); tier != loyaltyv1.Tier_TIER_GOLD || !next.Equal(want) {
		t.Fatalf("after a review that kept the tier: %s, next review %s; want GOLD and %s", tier, next, want)
	}
	if after := changes(); after != before {
		t.Fatalf("%d tier changes after the review, want still %d", after, before)
	}

	e.clock.Advance(24 * time.Hour)
	p, err = review.ReviewTiers(e.ctx, tierrules.Default(), e.clock.Now(), 100, nil)
	if err != nil || p.Processed != 1 || p.Due() != 0 || p.NotDue() != 1 {
		t.Fatalf("a review the next day: %+v, %v; want the member not due", p, err)
	}
	if _, again := status(); !again.Equal(next) {
		t.Fatalf("after a review that did not find the member due: next review %s, want still %s", again, next)
	}
	e.verify(t)
}
