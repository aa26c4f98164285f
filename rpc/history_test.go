package rpc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	tierrules "github.com/loyalty-ledger/loyalty/tiers"
)

// historyEnv is a test's server with the calls a historical import makes.
type historyEnv struct {
	*env
	t *testing.T
	c clients
}

// stay records a stay of the past through RecordStay: 200.00 CNY a night
// at SH-HQ-001 (Asia/Shanghai), booked in the app.
func (h historyEnv) stay(member, stayID, arrival, departure string) *loyaltyv1.Transaction {
	h.t.Helper()
	a, err := time.Parse(time.DateOnly, arrival)
	if err != nil {
		h.t.Fatal(err)
	}
	d, err := time.Parse(time.DateOnly, departure)
	if err != nil {
		h.t.Fatal(err)
	}
	req := &loyaltyv1.RecordStayRequest{IdempotencyKey: "import-" + member + "-" + stayID, MemberNumber: member, PropertyId: "SH-HQ-001",
		StayId: stayID, ArrivalDate: arrival, DepartureDate: departure, Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}
	for range int(d.Sub(a).Hours() / 24) {
		req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: "200.00"}})
	}
	res, err := h.c.booking.RecordStay(h.ctx, connect.NewRequest(req))
	if err != nil {
		h.t.Fatalf("stay %s: %v", stayID, err)
	}
	return res.Msg.GetTransaction()
}

// history is the member's tier history, newest first, as
// "FROM->TO@effective time (UTC)".
func (h historyEnv) history(member string) string {
	h.t.Helper()
	res, err := h.c.members.GetTierHistory(h.ctx, connect.NewRequest(&loyaltyv1.GetTierHistoryRequest{MemberNumber: member}))
	if err != nil {
		h.t.Fatal(err)
	}
	var got []string
	for _, ch := range res.Msg.GetChanges() {
		got = append(got, fmt.Sprintf("%s->%s@%s", strings.TrimPrefix(ch.GetFromTier().String(), "TIER_"),
			strings.TrimPrefix(ch.GetToTier().String(), "TIER_"), ch.GetEffectiveAt().AsTime().UTC().Format(time.RFC3339)))
	}
	return strings.Join(got, " ")
}

func (h historyEnv) member(number string) *loyaltyv1.Member {
	h.t.Helper()
	res, err := h.c.members.GetMember(h.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: number}))
	if err != nil {
		h.t.Fatal(err)
	}
	return res.Msg.GetMember()
}

// publishDoubledPoints publishes version 2 of the programme, two points
// per CNY, in force an hour from now, and moves the clock to 2026-11-23
// 06:00 UTC, when it is.
func (h historyEnv) publishDoubledPoints() {
	h.t.Helper()
	p := programme.Default()
	p.PointsPerCurrencyUnit = decimal.NewFromInt(2)
	if _, err := programmes.New(h.ledger, h.clock.Now).Publish(h.ctx, "test", "v2", h.clock.Now().Add(time.Hour), p); err != nil {
		h.t.Fatal(err)
	}
	h.advanceTo(time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC))
}

// TestAHistoryImportedInDepartureOrderIsRecordedWithItsOwnDates: four
// years of a member's stays, with a gap of 27 months, recorded today
// (RecordStay, in order of departure) after the programme has changed:
// each stay earns by the programme version of its day, at the tier of its
// arrival as the rebuilt history has it (silver after the first stay, gold
// from the completion of the stay that reached 10 nights); the tier
// changes are dated at the stays' completions; the lots earned before the
// gap were due before the stays after it (not extended by them): the
// member's page shows them expired, and the expiry job takes exactly them.
// No tier review is replayed between the stays (see
// TestAMigrationReviewsTiersBetweenItsSlices): the stays after the gap
// still find the member gold.
func TestAHistoryImportedInDepartureOrderIsRecordedWithItsOwnDates(t *testing.T) {
	e := newEnv(t)
	h := historyEnv{env: e, t: t, c: e.clients(e.bookingKey)}
	h.publishDoubledPoints() // today's stays earn 2 points per CNY; the history 1
	member := e.enroll(t, h.c, "enrol-1")

	// Before the gap: 12 nights from December 2022 to May 2023.
	wantLines(t, h.stay(member, "S1", "2022-12-01", "2022-12-03"), // regular: the first stay
		"stay_points", 400, "first_stay_bonus", 200, "direct_booking_bonus", 77)
	wantLines(t, h.stay(member, "S2", "2023-02-10", "2023-02-15"), // silver since S1's check-out
		"stay_points", 1000, "direct_booking_bonus", 77)
	s3 := h.stay(member, "S3", "2023-04-01", "2023-04-04") // the 10th night: gold from its check-out
	wantLines(t, s3, "stay_points", 600, "direct_booking_bonus", 77)
	wantLines(t, h.stay(member, "S4", "2023-05-10", "2023-05-12"), // gold: 1.2x, and the stay points again for booking direct
		"stay_points", 400, "tier_bonus", 80, "direct_booking_bonus", 400)
	for _, txn := range []*loyaltyv1.Transaction{s3} {
		if txn.GetProgrammeVersion() != 1 {
			t.Fatalf("a stay of 2023 recorded under version %d, want 1 (in force then)", txn.GetProgrammeVersion())
		}
	}
	beforeGap := int64(400 + 200 + 77 + 1000 + 77 + 600 + 77 + 400 + 80 + 400)

	// 27 months later: the window of August 2025 holds 2 nights, no
	// upgrade and no downgrade (none without a review).
	wantLines(t, h.stay(member, "S5", "2025-08-20", "2025-08-22"), "stay_points", 400, "tier_bonus", 80, "direct_booking_bonus", 400)
	wantLines(t, h.stay(member, "S6", "2026-03-01", "2026-03-04"), "stay_points", 600, "tier_bonus", 120, "direct_booking_bonus", 600)
	wantLines(t, h.stay(member, "S7", "2026-10-10", "2026-10-11"), "stay_points", 200, "tier_bonus", 40, "direct_booking_bonus", 200)
	afterGap := int64(880 + 1320 + 440)

	// Check-out at noon in Shanghai, 04:00 UTC.
	if got, want := h.history(member), "SILVER->GOLD@2023-04-04T04:00:00Z REGULAR->SILVER@2022-12-03T04:00:00Z"; got != want {
		t.Fatalf("tier history %s, want %s", got, want)
	}

	// The lots before the gap: extended by S4 to 24 months after
	// 2023-05-12, due at 00:00 on 2025-05-13 in Shanghai, before S5 (which
	// did not rescue them); the later lots are extended by S7.
	m := h.member(member)
	if got := m.GetBalance().GetPostedPoints(); got != beforeGap+afterGap {
		t.Fatalf("balance %d, want %d", got, beforeGap+afterGap)
	}
	dueAt := time.Date(2025, 5, 12, 16, 0, 0, 0, time.UTC)
	if x := m.GetPointsExpiry(); !x.GetNextExpiryAt().AsTime().Equal(dueAt) || x.GetNextExpiryPoints() != beforeGap {
		t.Fatalf("points expiry %v, want %d points expired at %s", x, beforeGap, dueAt)
	}
	job := expiry.New(e.ledger, programmes.New(e.ledger, e.clock.Now), e.clock.Now)
	today, err := job.Today(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := job.Run(e.ctx, today, 10, nil); err != nil || p.Expired != 1 || p.Points != beforeGap {
		t.Fatalf("the expiry job: %+v, %v; want the %d points of before the gap", p, err, beforeGap)
	}
	m = h.member(member)
	keptUntil := time.Date(2028, 10, 11, 16, 0, 0, 0, time.UTC) // 24 months after S7's 2026-10-11
	if x := m.GetPointsExpiry(); m.GetBalance().GetPostedPoints() != afterGap || !x.GetNextExpiryAt().AsTime().Equal(keptUntil) || x.GetNextExpiryPoints() != afterGap {
		t.Fatalf("after the expiry job: balance %d, expiry %v; want %d points until %s", m.GetBalance().GetPostedPoints(), x, afterGap, keptUntil)
	}

	// A stay checked out today earns by today's version (2 points per
	// CNY), at gold.
	live := h.stay(member, "LIVE", "2026-11-22", "2026-11-23")
	if live.GetProgrammeVersion() != 2 {
		t.Fatalf("today's stay under version %d, want 2", live.GetProgrammeVersion())
	}
	wantLines(t, live, "stay_points", 400, "tier_bonus", 80, "direct_booking_bonus", 400)
	e.verify(t)
}

// TestAMigrationReviewsTiersBetweenItsSlices: the tier reviews a history
// went through are replayed by importing the stays in slices in order of
// departure, each followed by the review as of the slice's end (what
// loyaltyctl tiers review -as-of does). Ann's history is imported so: her
// gold lapses at its anniversary, and her stays after it earn at silver.
// Bo's history, the same stays, is imported whole before the same review
// runs: the review downgrades him as of the same date, but his stays after
// it had already earned at gold. A review after the fact is wrong for the
// stays after its date.
func TestAMigrationReviewsTiersBetweenItsSlices(t *testing.T) {
	e := newEnv(t)
	h := historyEnv{env: e, t: t, c: e.clients(e.bookingKey)}
	ann, bo := e.enroll(t, h.c, "enrol-ann"), e.enroll(t, h.c, "enrol-bo")
	review := func(asOf time.Time) {
		t.Helper()
		if _, err := members.New(e.ledger, e.clock.Now).ReviewTiers(e.ctx, tierrules.Default(), asOf, 100, nil); err != nil {
			t.Fatal(err)
		}
	}
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	stays := []struct{ id, arrival, departure string }{
		{"S1", "2022-12-01", "2022-12-03"},
		{"S2", "2023-02-10", "2023-02-15"},
		{"S3", "2023-04-01", "2023-04-04"}, // gold from its check-out
		{"S4", "2023-05-10", "2023-05-12"},
		{"S5", "2025-08-20", "2025-08-22"},
		{"S6", "2026-03-01", "2026-03-04"},
	}
	// Gold since 2023-04-04 12:00 in Shanghai: reviewed a year on, a
	// review as of the next day's start finds only S4's 2 nights in its
	// window. Reviews as of the start of a day, as loyaltyctl takes a
	// date, each after the stays that departed before that day.
	reviews := []time.Time{time.Date(2024, 4, 5, 0, 0, 0, 0, shanghai), time.Date(2025, 4, 5, 0, 0, 0, 0, shanghai)}

	got := map[string]*loyaltyv1.Transaction{}
	for _, s := range stays {
		got["bo-"+s.id] = h.stay(bo, "bo-"+s.id, s.arrival, s.departure)
	}
	next := 0
	for _, s := range stays {
		departure, _ := time.ParseInLocation(time.DateOnly, s.departure, shanghai)
		for ; next < len(reviews) && !departure.Before(reviews[next]); next++ {
			review(reviews[next])
		}
		got["ann-"+s.id] = h.stay(ann, "ann-"+s.id, s.arrival, s.departure)
	}
	for ; next < len(reviews); next++ {
		review(reviews[next])
	}

	wantLines(t, got["ann-S4"], "stay_points", 400, "tier_bonus", 80, "direct_booking_bonus", 400) // gold, before its anniversary
	wantLines(t, got["ann-S5"], "stay_points", 400, "direct_booking_bonus", 77)                    // silver since the review
	wantLines(t, got["ann-S6"], "stay_points", 600, "direct_booking_bonus", 77)
	wantLines(t, got["bo-S5"], "stay_points", 400, "tier_bonus", 80, "direct_booking_bonus", 400) // gold: the review came after
	if got, want := h.history(ann), "GOLD->SILVER@2024-04-04T16:00:00Z SILVER->GOLD@2023-04-04T04:00:00Z REGULAR->SILVER@2022-12-03T04:00:00Z"; got != want {
		t.Fatalf("Ann's tier history %s, want %s", got, want)
	}
	// Bo's history reads the same, but it was not the history his stays
	// after 2024-04-04 were earned in.
	if got, want := h.history(bo), "GOLD->SILVER@2024-04-04T16:00:00Z SILVER->GOLD@2023-04-04T04:00:00Z REGULAR->SILVER@2022-12-03T04:00:00Z"; got != want {
		t.Fatalf("Bo's tier history %s, want %s", got, want)
	}
	for _, number := range []string{ann, bo} {
		if m := h.member(number); m.GetTier() != loyaltyv1.Tier_TIER_SILVER {
			t.Fatalf("member %s today: %s, want SILVER", number, m.GetTier())
		}
	}
	e.verify(t)
}

// TestACorrectedHistoricalStayIsComputedAsOfItsOwnCompletion: a stay of
// 2023 corrected today (three more nights) is computed as recording it
// would be: under the version of its day, its window ending at its new
// check-out without the stay it replaces, the upgrade it now earns dated
// at that check-out.
func TestACorrectedHistoricalStayIsComputedAsOfItsOwnCompletion(t *testing.T) {
	e := newEnv(t)
	h := historyEnv{env: e, t: t, c: e.clients(e.bookingKey)}
	h.publishDoubledPoints()
	member := e.enroll(t, h.c, "enrol-1")
	h.stay(member, "S1", "2022-12-01", "2022-12-03")
	if s2 := h.stay(member, "S2", "2023-02-10", "2023-02-15"); s2.GetProgrammeVersion() != 1 {
		t.Fatalf("S2 under version %d", s2.GetProgrammeVersion())
	}
	req := &loyaltyv1.CorrectStayRequest{IdempotencyKey: "correct-S2", MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "S2",
		ArrivalDate: "2023-02-10", DepartureDate: "2023-02-18", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP,
		Reason: "the folio missed three nights"}
	for range 8 {
		req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: "200.00"}})
	}
	res, err := h.c.booking.CorrectStay(e.ctx, connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	// 2 + 8 nights by 2023-02-18: gold from then; the stay itself began at
	// silver and earns 1 point per CNY.
	if res.Msg.GetTier() != loyaltyv1.Tier_TIER_GOLD || res.Msg.GetTransaction().GetProgrammeVersion() != 1 {
		t.Fatalf("corrected S2: tier %s, version %d; want GOLD under version 1", res.Msg.GetTier(), res.Msg.GetTransaction().GetProgrammeVersion())
	}
	wantLines(t, res.Msg.GetTransaction(), "stay_points", 1600, "direct_booking_bonus", 77)
	if got, want := h.history(member), "SILVER->GOLD@2023-02-18T04:00:00Z REGULAR->SILVER@2022-12-03T04:00:00Z"; got != want {
		t.Fatalf("tier history %s, want %s", got, want)
	}
	e.verify(t)
}

// TestAStayRecordedAfterALaterTierChangeUpgradesFromNow: stays recorded
// out of order. The March stay, recorded first, makes the member silver
// from its check-out; the January stay of 10 nights, recorded after it,
// reaches gold in its own window, but the upgrade is dated now, not in
// January: dated before the March change it would rewrite the history
// that change, and the stays read from it, stand on.
func TestAStayRecordedAfterALaterTierChangeUpgradesFromNow(t *testing.T) {
	e := newEnv(t)
	h := historyEnv{env: e, t: t, c: e.clients(e.bookingKey)}
	member := e.enroll(t, h.c, "enrol-1")
	h.stay(member, "MARCH", "2023-03-01", "2023-03-02")
	h.stay(member, "JANUARY", "2023-01-05", "2023-01-15")
	history, now := h.history(member), e.clock.Now()
	changes := strings.Fields(history)
	var upgradedAt time.Time
	if len(changes) == 2 && strings.HasPrefix(changes[0], "SILVER->GOLD@") {
		upgradedAt, _ = time.Parse(time.RFC3339, strings.TrimPrefix(changes[0], "SILVER->GOLD@"))
	}
	// The history shows seconds; the clock ticks a millisecond a read.
	if len(changes) != 2 || changes[1] != "REGULAR->SILVER@2023-03-02T04:00:00Z" || now.Sub(upgradedAt) > time.Minute || upgradedAt.After(now) {
		t.Fatalf("tier history %s; want SILVER->GOLD now (%s) after REGULAR->SILVER at the March check-out", history, now.Format(time.RFC3339))
	}
	e.verify(t)
}

// TestTwoUpgradesAtOneCheckOutAreOrdered: two stays checking out the same
// day at the same hotel, the first making the member silver, the second
// gold: the second upgrade is dated a microsecond after the first, so the
// history (and the tier at a time, read from it) orders them.
func TestTwoUpgradesAtOneCheckOutAreOrdered(t *testing.T) {
	e := newEnv(t)
	h := historyEnv{env: e, t: t, c: e.clients(e.bookingKey)}
	member := e.enroll(t, h.c, "enrol-1")
	h.stay(member, "ONE-NIGHT", "2023-01-01", "2023-01-02")
	h.stay(member, "TEN-NIGHTS", "2022-12-23", "2023-01-02")
	var at []time.Time
	var from []string
	rows, err := e.db.Pool.Query(e.ctx, `SELECT effective_at, from_tier FROM tier_changes WHERE member_number = $1 ORDER BY effective_at`, member)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var when time.Time
		var tier string
		if err := rows.Scan(&when, &tier); err != nil {
			t.Fatal(err)
		}
		at, from = append(at, when), append(from, tier)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	checkOut := time.Date(2023, 1, 2, 4, 0, 0, 0, time.UTC)
	if len(at) != 2 || !at[0].Equal(checkOut) || !at[1].Equal(checkOut.Add(time.Microsecond)) || fmt.Sprint(from) != "[regular silver]" {
		t.Fatalf("tier changes at %v from %v; want regular at %s, silver a microsecond later", at, from, checkOut)
	}
}
