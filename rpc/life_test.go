package rpc_test

import (
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// TestWholeLifeOfAMember records a member's life with the default
// programme and checks the final balance and the statement line by line.
func TestWholeLifeOfAMember(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	local := func(s string) *timestamppb.Timestamp {
		ts, err := time.ParseInLocation("2006-01-02 15:04", s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(ts)
	}
	must := func(step string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}

	// 1. First stay, two nights booked on the app: base 388 + 400 (400.50
	// rounds down) = 788; the first stay earns 1.5x per night, rounded down:
	// 582 + 600 = 1182, so a first-stay bonus of 394; the direct-booking
	// bonus of a regular member is 77. 1,259 points, and SILVER.
	first := stayRequest("stay-1", member, "B-1", "388.00", "400.50")
	res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(first))
	must("first stay", err)
	wantLines(t, res.Msg.GetTransaction(), "stay_points", 788, "first_stay_bonus", 394, "direct_booking_bonus", 77)
	if res.Msg.GetTier() != loyaltyv1.Tier_TIER_SILVER {
		t.Fatalf("tier %s after the first stay", res.Msg.GetTier())
	}

	// 2. A guarantee until 20:00 (2 hours x 500), then the guest arrives.
	_, err = c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: member,
		PropertyId: "SH-HQ-001", StayId: "B-2", ArrivalDate: "2026-11-23", HoldUntil: "20:00"}))
	must("guarantee", err)
	_, err = c.booking.ReleaseGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.ReleaseGuaranteeRequest{IdempotencyKey: "g-1-arrived",
		PropertyId: "SH-HQ-001", StayId: "B-2", Reason: loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_ARRIVED}))
	must("arrival", err)
	// 3. That stay, one night on the web, as a silver member: 300 + 77.
	second := stayRequest("stay-2", member, "B-2", "300.00")
	second.Channel = loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB
	res, err = c.booking.RecordStay(e.ctx, connect.NewRequest(second))
	must("second stay", err)
	wantLines(t, res.Msg.GetTransaction(), "stay_points", 300, "direct_booking_bonus", 77)

	// 4. A guarantee until 19:00 (1 hour, 500 points), and a no-show: the
	// guarantee is captured instead of the no-show penalty.
	_, err = c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-2", MemberNumber: member,
		PropertyId: "SH-HQ-001", StayId: "B-3", ArrivalDate: "2026-11-24", HoldUntil: "19:00"}))
	must("second guarantee", err)
	e.advanceTo(time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)) // 20:00 in Shanghai, past the guarantee
	_, err = c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns-1", MemberNumber: member,
		PropertyId: "SH-HQ-001", StayId: "B-3", ArrivalDate: "2026-11-24", Nights: 1, BookedAt: local("2026-11-20 10:00")}))
	must("no-show", err)

	// 5. A cancellation at 18:30 on the arrival day: late for a silver
	// member (free until 18:00): the no-show penalty, 300 for one night.
	e.advanceTo(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC))
	_, err = c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "c-1", MemberNumber: member,
		PropertyId: "SH-HQ-001", StayId: "B-4", ArrivalDate: "2026-11-25", Nights: 1, CancelledAt: local("2026-11-25 18:30")}))
	must("late cancellation", err)

	// 6. One hour of late check-out (500), then a bedtime milk (200).
	_, err = c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late-1", MemberNumber: member,
		PropertyId: "SH-HQ-001", StayId: "B-2", DepartureDate: "2026-11-24", Hours: 1}))
	must("late check-out", err)
	_, err = c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r-1", MemberNumber: member,
		Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, PropertyId: "SH-HQ-001"}))
	must("redemption", err)
	// 7. A travel kit (400) is more than the 136 points left: refused,
	// nothing posted.
	_, err = c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "r-2", MemberNumber: member,
		Reward: loyaltyv1.Reward_REWARD_TRAVEL_KIT}))
	if info := errorInfo(t, wantCode(t, err, connect.CodeFailedPrecondition)); info.GetMetadata()["shortfall_points"] != "264" {
		t.Fatalf("shortfall %v", info.GetMetadata())
	}

	got, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	must("get member", err)
	if b := got.Msg.GetMember().GetBalance(); b.GetPostedPoints() != 136 || b.GetHeldPoints() != 0 || b.GetAvailablePoints() != 136 {
		t.Fatalf("final balance %v, want 136 posted and available", b)
	}

	page, err := c.members.ListActivity(e.ctx, connect.NewRequest(&loyaltyv1.ListActivityRequest{MemberNumber: member}))
	must("statement", err)
	type line struct {
		kind                         loyaltyv1.TransactionKind
		available, held, postedAfter int64
	}
	want := []line{
		{loyaltyv1.TransactionKind_TRANSACTION_KIND_REDEMPTION, -200, 0, 136},
		{loyaltyv1.TransactionKind_TRANSACTION_KIND_LATE_CHECKOUT, -500, 0, 336},
		{loyaltyv1.TransactionKind_TRANSACTION_KIND_CANCELLATION, -300, 0, 836},
		{loyaltyv1.TransactionKind_TRANSACTION_KIND_NO_SHOW, 0, -500, 1136},
		{loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY, 377, 0, 1636},
		{loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY, 1259, 0, 1259},
	}
	var gotLines []line
	for _, tx := range page.Msg.GetTransactions() {
		gotLines = append(gotLines, line{tx.GetKind(), tx.GetAvailablePointsDelta(), tx.GetHeldPointsDelta(), tx.GetBalanceAfter().GetPostedPoints()})
		if tx.GetProgrammeVersion() != 1 {
			t.Errorf("%s computed by version %d, want 1", tx.GetTransactionId(), tx.GetProgrammeVersion())
		}
	}
	if fmt.Sprint(gotLines) != fmt.Sprint(want) {
		t.Fatalf("statement\n got %v\nwant %v", gotLines, want)
	}
	e.verify(t)
}

// wantLines asserts a transaction's breakdown, rule by rule, and that it
// adds up to the points the transaction moved.
func wantLines(t *testing.T, txn *loyaltyv1.Transaction, rulesAndPoints ...any) {
	t.Helper()
	var got []string
	var sum int64
	for _, l := range txn.GetBreakdown() {
		if l.GetPoints() == 0 && l.GetHeldPoints() == 0 {
			continue // explanatory lines, e.g. nights that earned nothing
		}
		got = append(got, fmt.Sprintf("%s=%d", l.GetRule(), l.GetPoints()))
		sum += l.GetPoints()
	}
	var want []string
	for i := 0; i < len(rulesAndPoints); i += 2 {
		want = append(want, fmt.Sprintf("%s=%d", rulesAndPoints[i], rulesAndPoints[i+1]))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || sum != txn.GetAvailablePointsDelta() {
		t.Fatalf("breakdown %v (sum %d, transaction %d), want %v", got, sum, txn.GetAvailablePointsDelta(), want)
	}
}
