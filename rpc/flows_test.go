package rpc_test

import (
	"fmt"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// TestMemberLifecycle walks one member through every RPC of the booking
// channels and the admin, over each protocol, and proves the books after.
func TestMemberLifecycle(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.clients(e.bookingKey, p.opts...)
			admin := e.clients(e.adminKey, p.opts...)
			member := e.enroll(t, c, "enrol-1")

			// A regular member's first stay, booked on the app, one night at
			// 388.00 CNY: 388 stay points, the first stay's 1.5x (+194) and the
			// +77 direct-booking bonus.
			stay, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "388.00")))
			if err != nil {
				t.Fatal(err)
			}
			txn := stay.Msg.GetTransaction()
			if txn.GetAvailablePointsDelta() != 659 || txn.GetBalanceAfter().GetAvailablePoints() != 659 || txn.GetKind() != loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY {
				t.Fatalf("stay transaction %v", txn)
			}
			var sum, lines int64
			for _, pst := range txn.GetPostings() {
				sum += pst.GetAmount()
			}
			for _, l := range txn.GetBreakdown() {
				lines += l.GetPoints()
			}
			if sum != 0 || lines != 659 {
				t.Fatalf("postings sum to %d, breakdown to %d", sum, lines)
			}
			if stay.Msg.GetTier() != loyaltyv1.Tier_TIER_SILVER {
				t.Fatalf("tier after the first stay %s, want SILVER", stay.Msg.GetTier())
			}

			// Not enough for a free night (2,000).
			_, err = c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "redeem-1", MemberNumber: member,
				Reward: loyaltyv1.Reward_REWARD_FREE_NIGHT}))
			info := errorInfo(t, wantCode(t, err, connect.CodeFailedPrecondition))
			if info.GetReason() != "INSUFFICIENT_POINTS" || info.GetMetadata()["shortfall_points"] != "1341" || info.GetMetadata()["available_points"] != "659" {
				t.Fatalf("insufficient points detail %v", info)
			}
			// A bedtime milk (200) is fine, and shows the price it was told.
			price := int64(200)
			redeemed, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "redeem-2", MemberNumber: member,
				Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, ExpectedPoints: &price}))
			if err != nil || redeemed.Msg.GetTransaction().GetBalanceAfter().GetAvailablePoints() != 459 {
				t.Fatalf("redeem: %v, %v", redeemed, err)
			}

			// A guarantee until 20:00 holds 2 hours x 500 points: more than
			// available.
			_, err = c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: member,
				PropertyId: "SH-HQ-001", StayId: "B-2", ArrivalDate: "2026-11-23", HoldUntil: "20:00"}))
			wantCode(t, err, connect.CodeFailedPrecondition)
			// Goodwill from the admin makes it possible.
			if _, err := admin.admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "gw-1", MemberNumber: member,
				Points: 1000, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "noisy room"})); err != nil {
				t.Fatal(err)
			}
			placed, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-2", MemberNumber: member,
				PropertyId: "SH-HQ-001", StayId: "B-2", ArrivalDate: "2026-11-23", HoldUntil: "20:00"}))
			if err != nil {
				t.Fatal(err)
			}
			if g, b := placed.Msg.GetGuarantee(), placed.Msg.GetBalance(); g.GetPointsHeld() != 1000 || g.GetHours() != 2 ||
				b.GetHeldPoints() != 1000 || b.GetAvailablePoints() != 459 || b.GetPostedPoints() != 1459 {
				t.Fatalf("guarantee %v, balance %v", g, b)
			}
			released, err := c.booking.ReleaseGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.ReleaseGuaranteeRequest{IdempotencyKey: "g-3",
				PropertyId: "SH-HQ-001", StayId: "B-2", Reason: loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_ARRIVED}))
			if err != nil || released.Msg.GetGuarantee().GetState() != loyaltyv1.GuaranteeState_GUARANTEE_STATE_RELEASED || released.Msg.GetBalance().GetAvailablePoints() != 1459 {
				t.Fatalf("release: %v, %v", released, err)
			}

			// Two hours of late check-out cost 1,000 points, charged on the
			// departure day.
			e.advanceTo(time.Date(2026, 11, 24, 6, 0, 0, 0, time.UTC))
			late, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late-1", MemberNumber: member,
				PropertyId: "SH-HQ-001", StayId: "B-2", DepartureDate: "2026-11-24", Hours: 2}))
			if err != nil || late.Msg.GetTransaction().GetAvailablePointsDelta() != -1000 {
				t.Fatalf("late check-out: %v, %v", late, err)
			}
			// The front desk made a mistake: reverse it.
			reversal, err := c.booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{IdempotencyKey: "rev-1",
				TransactionId: late.Msg.GetTransaction().GetTransactionId(), Reason: "guest left on time"}))
			if err != nil {
				t.Fatal(err)
			}
			if r := reversal.Msg.GetTransaction(); r.GetKind() != loyaltyv1.TransactionKind_TRANSACTION_KIND_REVERSAL ||
				r.GetAvailablePointsDelta() != 1000 || r.GetReversesTransactionId() != late.Msg.GetTransaction().GetTransactionId() {
				t.Fatalf("reversal %v", r)
			}

			// The statement, newest first, in pages of 2.
			var kinds []loyaltyv1.TransactionKind
			token := ""
			for range 10 {
				page, err := c.members.ListActivity(e.ctx, connect.NewRequest(&loyaltyv1.ListActivityRequest{MemberNumber: member, PageSize: 2, PageToken: token}))
				if err != nil {
					t.Fatal(err)
				}
				for _, tx := range page.Msg.GetTransactions() {
					kinds = append(kinds, tx.GetKind())
				}
				if token = page.Msg.GetNextPageToken(); token == "" {
					break
				}
			}
			want := []loyaltyv1.TransactionKind{
				loyaltyv1.TransactionKind_TRANSACTION_KIND_REVERSAL, loyaltyv1.TransactionKind_TRANSACTION_KIND_LATE_CHECKOUT,
				loyaltyv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT, loyaltyv1.TransactionKind_TRANSACTION_KIND_REDEMPTION,
				loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY,
			}
			if fmt.Sprint(kinds) != fmt.Sprint(want) {
				t.Fatalf("statement kinds %v, want %v", kinds, want)
			}

			got, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
			if err != nil {
				t.Fatal(err)
			}
			if m := got.Msg.GetMember(); m.GetBalance().GetAvailablePoints() != 1459 || m.GetTier() != loyaltyv1.Tier_TIER_SILVER || m.GetFullName() != "Li Wei" {
				t.Fatalf("member %v", m)
			}
			// A member corrects their contact data.
			phone := "+86 138 0000 0000"
			updated, err := c.members.UpdateMember(e.ctx, connect.NewRequest(&loyaltyv1.UpdateMemberRequest{IdempotencyKey: "upd-1", MemberNumber: member, Phone: &phone}))
			if err != nil || updated.Msg.GetMember().GetPhone() != phone || updated.Msg.GetMember().GetEmail() != "li.wei@example.com" {
				t.Fatalf("update: %v, %v", updated, err)
			}
			e.verify(t)
		})
	}
}

func TestMissedStays(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	for i := range 4 { // 4 stays at 700 CNY: 3,458 points, and still silver (2,800 qualifying points)
		if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest(fmt.Sprintf("stay-%d", i), member, fmt.Sprintf("S-%d", i), "700.00"))); err != nil {
			t.Fatal(err)
		}
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	at := func(day, clock string) *timestamppb.Timestamp {
		ts, err := time.ParseInLocation("2006-01-02 15:04", day+" "+clock, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(ts)
	}

	t.Run("a no-show is charged 300 points per room-night", func(t *testing.T) {
		res, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns-1", MemberNumber: member,
			PropertyId: "P1", StayId: "N-1", ArrivalDate: "2026-11-20", Nights: 2, BookedAt: at("2026-11-10", "09:00")}))
		if err != nil || res.Msg.GetTransaction().GetAvailablePointsDelta() != -600 || res.Msg.GetPenaltyExempt() {
			t.Fatalf("no-show: %v, %v", res, err)
		}
	})
	t.Run("a same-day booking made after 18:00 is not penalised", func(t *testing.T) {
		res, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns-2", MemberNumber: member,
			PropertyId: "P1", StayId: "N-2", ArrivalDate: "2026-11-20", Nights: 1, BookedAt: at("2026-11-20", "18:30")}))
		if err != nil || res.Msg.GetTransaction() != nil || !res.Msg.GetPenaltyExempt() {
			t.Fatalf("exempt no-show: %v, %v", res, err)
		}
	})
	t.Run("a guaranteed no-show captures the guarantee instead", func(t *testing.T) {
		if _, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: member,
			PropertyId: "P1", StayId: "N-3", ArrivalDate: "2026-11-22", HoldUntil: "21:00"})); err != nil {
			t.Fatal(err)
		}
		e.advanceTo(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)) // 21:00 in Shanghai: the guarantee's hold time
		req := &loyaltyv1.RecordNoShowRequest{IdempotencyKey: "ns-3", MemberNumber: member,
			PropertyId: "P1", StayId: "N-3", ArrivalDate: "2026-11-22", Nights: 1, BookedAt: at("2026-11-01", "10:00")}
		res, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		txn := res.Msg.GetTransaction()
		if txn.GetKind() != loyaltyv1.TransactionKind_TRANSACTION_KIND_NO_SHOW || txn.GetHeldPointsDelta() != -1500 || txn.GetAvailablePointsDelta() != 0 ||
			txn.GetBalanceAfter().GetHeldPoints() != 0 {
			t.Fatalf("capture %v", txn)
		}
		again, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(req))
		if err != nil || !proto.Equal(again.Msg, res.Msg) {
			t.Fatalf("replayed capture: %v, %v\nfirst %v", again, err, res)
		}
	})
	t.Run("a silver member cancelling at 18:30 on arrival day pays the no-show penalty", func(t *testing.T) {
		e.advanceTo(time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC)) // 19:00 in Shanghai: the cancellation is recorded
		res, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "c-1", MemberNumber: member,
			PropertyId: "P1", StayId: "C-1", ArrivalDate: "2026-11-25", Nights: 1, CancelledAt: at("2026-11-25", "18:30")}))
		if err != nil || res.Msg.GetFreeCancellation() || res.Msg.GetTransaction().GetAvailablePointsDelta() != -300 ||
			res.Msg.GetTransaction().GetKind() != loyaltyv1.TransactionKind_TRANSACTION_KIND_CANCELLATION {
			t.Fatalf("late cancellation: %v, %v", res, err)
		}
	})
	t.Run("a cancellation before 18:00 is free and releases the guarantee", func(t *testing.T) {
		if _, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-2", MemberNumber: member,
			PropertyId: "P1", StayId: "C-2", ArrivalDate: "2026-11-26", HoldUntil: "19:00"})); err != nil {
			t.Fatal(err)
		}
		e.advanceTo(time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)) // 18:00 in Shanghai
		res, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "c-2", MemberNumber: member,
			PropertyId: "P1", StayId: "C-2", ArrivalDate: "2026-11-26", Nights: 1, CancelledAt: at("2026-11-26", "17:59")}))
		if err != nil || !res.Msg.GetFreeCancellation() || res.Msg.GetTransaction() != nil {
			t.Fatalf("free cancellation: %v, %v", res, err)
		}
		got, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
		if err != nil || got.Msg.GetMember().GetBalance().GetHeldPoints() != 0 {
			t.Fatalf("held after a free cancellation: %v, %v", got, err)
		}
	})
	e.verify(t)
}

func TestIdempotentReplay(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.clients(e.bookingKey, p.opts...)
			member := e.enroll(t, c, "enrol-1")
			if again := e.enroll(t, c, "enrol-1"); again != member {
				t.Fatalf("a replayed enrolment made member %s, first %s", again, member)
			}
			req := stayRequest("stay-1", member, "B-1", "388.00", "400.50")
			first, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			// Another stay in between changes the balance, not the replay.
			if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-2", member, "B-2", "100.00"))); err != nil {
				t.Fatal(err)
			}
			before := e.transactionCount(t)
			again, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(first.Msg, again.Msg) {
				t.Fatalf("replay differs:\nfirst %v\nagain %v", first.Msg, again.Msg)
			}
			if e.transactionCount(t) != before {
				t.Fatal("a replay posted again")
			}
			changed := stayRequest("stay-1", member, "B-1", "388.00", "400.00")
			_, err = c.booking.RecordStay(e.ctx, connect.NewRequest(changed))
			info := errorInfo(t, wantCode(t, err, connect.CodeAlreadyExists))
			if info.GetMetadata()["idempotency_key"] != "stay-1" {
				t.Fatalf("conflict detail %v", info)
			}
			// The enrolment's replay is its first response, though the member
			// has since earned points and moved up a tier.
			enrol := &loyaltyv1.EnrollMemberRequest{IdempotencyKey: "enrol-2", FullName: "Zhao Min", Phone: "+86 139 0000 0001",
				Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB}
			enrolled, err := c.members.EnrollMember(e.ctx, connect.NewRequest(enrol))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-3", enrolled.Msg.GetMember().GetMemberNumber(), "B-3", "100.00"))); err != nil {
				t.Fatal(err)
			}
			reEnrolled, err := c.members.EnrollMember(e.ctx, connect.NewRequest(enrol))
			if err != nil || !proto.Equal(enrolled.Msg, reEnrolled.Msg) {
				t.Fatalf("replayed enrolment %v (%v), first %v", reEnrolled, err, enrolled)
			}
		})
	}
}

// TestOnlyOneOfConcurrentFirstStaysEarnsTheBonus: a new member's stays
// recorded at the same moment each find no first stay; exactly one of them
// is the first and earns the 1.5x bonus, and the others are computed again
// without it.
func TestOnlyOneOfConcurrentFirstStaysEarnsTheBonus(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-first")
	const stays = 12
	type result struct {
		stayID string
		bonus  int64
		err    error
	}
	results := make(chan result, stays)
	for i := range stays {
		go func() {
			id := fmt.Sprintf("FS-%d", i)
			res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("first-"+id, member, id, "388.00")))
			r := result{stayID: id, err: err}
			if err == nil {
				for _, l := range res.Msg.GetTransaction().GetBreakdown() {
					if l.GetRule() == "first_stay_bonus" {
						r.bonus += l.GetPoints()
					}
				}
			}
			results <- r
		}()
	}
	var first []string
	for range stays {
		r := <-results
		if r.err != nil {
			t.Fatalf("stay %s: %v", r.stayID, r.err)
		}
		if r.bonus > 0 {
			if r.bonus != 194 {
				t.Errorf("stay %s: first-stay bonus %d, want 194", r.stayID, r.bonus)
			}
			first = append(first, r.stayID)
		}
	}
	if len(first) != 1 {
		t.Fatalf("stays with the first-stay bonus: %v, want exactly one", first)
	}
	// A retry of the first stay keeps its bonus; a retry of another does
	// not gain one.
	again, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("first-"+first[0], member, first[0], "388.00")))
	if err != nil || again.Msg.GetTransaction().GetAvailablePointsDelta() != 659 {
		t.Fatalf("retry of the first stay: %v, %v", again, err)
	}
	e.verify(t)
}
