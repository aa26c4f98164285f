package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// outcomeRecorded asserts the answer to a second outcome of a booking:
// ALREADY_EXISTS, naming the outcome that holds the booking and its
// transaction (empty when that outcome posted nothing).
func outcomeRecorded(t *testing.T, err error, outcome, transactionID string) {
	t.Helper()
	info := errorInfo(t, wantCode(t, err, connect.CodeAlreadyExists))
	if info.GetReason() != "BOOKING_OUTCOME_RECORDED" || info.GetMetadata()["outcome"] != outcome ||
		info.GetMetadata()["transaction_id"] != transactionID {
		t.Fatalf("ErrorInfo %v, want BOOKING_OUTCOME_RECORDED with outcome %s and transaction %q", info, outcome, transactionID)
	}
}

func (e *env) qualifyingNights(t *testing.T, member string) int {
	t.Helper()
	var nights int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT COALESCE(SUM(nights), 0) FROM qualifying_stays WHERE member_number = $1`, member).Scan(&nights); err != nil {
		t.Fatal(err)
	}
	return nights
}

func (e *env) available(t *testing.T, c clients, member string) int64 {
	t.Helper()
	res, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetMember().GetBalance().GetAvailablePoints()
}

func noShow(key, member, stayID, arrival string) *connect.Request[loyaltyv1.RecordNoShowRequest] {
	return connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: key, MemberNumber: member, PropertyId: "SH-HQ-001",
		StayId: stayID, ArrivalDate: arrival, Nights: 1, BookedAt: timestamppb.New(time.Date(2026, 10, 1, 2, 0, 0, 0, time.UTC))})
}

// TestABookingHasOneOutcome: whatever the idempotency key, a booking
// (property, stay id) is recorded once: a stay re-sent under a new key, a
// no-show after the stay, a second no-show, a late cancellation after a
// no-show, a second late check-out are refused with the outcome that holds
// the booking; points, tier nights and the first-stay bonus count once; a
// retry under the same key still replays; a reversed outcome frees the
// booking.
func TestABookingHasOneOutcome(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")

	// A five-night stay, a new member's first: 5 x 300, x1.5, +77.
	first, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00", "300.00", "300.00", "300.00", "300.00")))
	if err != nil {
		t.Fatal(err)
	}
	stayTxn := first.Msg.GetTransaction().GetTransactionId()
	points := first.Msg.GetTransaction().GetAvailablePointsDelta()
	if points != 2327 {
		t.Fatalf("the stay earned %d points, want 2327", points)
	}

	// The hotel's system re-sends its check-out after a crash, under a new key.
	_, err = c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1-resent", member, "B-1", "300.00", "300.00", "300.00", "300.00", "300.00")))
	outcomeRecorded(t, err, "stayed", stayTxn)
	// The same request under its own key is a retry: the first answer.
	again, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00", "300.00", "300.00", "300.00", "300.00")))
	if err != nil || again.Msg.GetTransaction().GetTransactionId() != stayTxn {
		t.Fatalf("retry under the same key: %v, %v; want the first transaction %s", again, err, stayTxn)
	}
	for _, tc := range []struct {
		name    string
		call    func() error
		outcome string
	}{
		{"a no-show after the stay", func() error {
			_, err := c.booking.RecordNoShow(e.ctx, noShow("ns-1", member, "B-1", "2026-11-01"))
			return err
		}, "stayed"},
		{"a late cancellation after the stay", func() error {
			_, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx-1",
				MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-1", ArrivalDate: "2026-11-01", Nights: 1,
				CancelledAt: timestamppb.New(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC))}))
			return err
		}, "stayed"},
		{"a free cancellation after the stay", func() error {
			_, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx-2",
				MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-1", ArrivalDate: "2026-11-01", Nights: 1,
				CancelledAt: timestamppb.New(time.Date(2026, 10, 30, 12, 0, 0, 0, time.UTC))}))
			return err
		}, "stayed"},
	} {
		t.Run(tc.name, func(t *testing.T) { outcomeRecorded(t, tc.call(), tc.outcome, stayTxn) })
	}
	if got := e.available(t, c, member); got != points {
		t.Errorf("available %d after the refused outcomes, want %d: the stay counted once", got, points)
	}
	if nights := e.qualifyingNights(t, member); nights != 5 {
		t.Errorf("%d qualifying nights, want 5", nights)
	}

	// A no-show, then the same no-show again and a late cancellation of it.
	ns, err := c.booking.RecordNoShow(e.ctx, noShow("ns-2", member, "B-2", "2026-11-10"))
	if err != nil {
		t.Fatal(err)
	}
	nsTxn := ns.Msg.GetTransaction().GetTransactionId()
	_, err = c.booking.RecordNoShow(e.ctx, noShow("ns-2-again", member, "B-2", "2026-11-10"))
	outcomeRecorded(t, err, "no_show", nsTxn)
	_, err = c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx-3",
		MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-2", ArrivalDate: "2026-11-10", Nights: 1,
		CancelledAt: timestamppb.New(time.Date(2026, 11, 10, 13, 0, 0, 0, time.UTC))}))
	outcomeRecorded(t, err, "no_show", nsTxn)
	if got, want := e.available(t, c, member), points-300; got != want {
		t.Errorf("available %d after one no-show, want %d", got, want)
	}

	// A free cancellation posts nothing, and still holds its booking.
	if _, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx-4",
		MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-3", ArrivalDate: "2026-11-20", Nights: 1,
		CancelledAt: timestamppb.New(time.Date(2026, 11, 19, 12, 0, 0, 0, time.UTC))})); err != nil {
		t.Fatal(err)
	}
	_, err = c.booking.RecordNoShow(e.ctx, noShow("ns-3", member, "B-3", "2026-11-20"))
	outcomeRecorded(t, err, "cancelled_free", "")

	// One late check-out charge per stay.
	late := func(key string, hours int32) error {
		_, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: key,
			MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-1", DepartureDate: "2026-11-06", Hours: hours}))
		return err
	}
	if err := late("late-1", 1); err != nil {
		t.Fatal(err)
	}
	if err := late("late-2", 2); err == nil {
		t.Fatal("a second late check-out of the same stay was charged")
	} else if info := errorInfo(t, wantCode(t, err, connect.CodeAlreadyExists)); info.GetMetadata()["outcome"] != "late_checkout" {
		t.Errorf("second late check-out: %v", info)
	}

	// A late check-out is of a guest who stayed; a no-show or a
	// cancellation of one who never came: one refuses the other, so that
	// no member is charged both for one booking.
	lateAt := func(key, stayID, departure string) (string, error) {
		res, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: key,
			MemberNumber: member, PropertyId: "SH-HQ-001", StayId: stayID, DepartureDate: departure, Hours: 1}))
		if err != nil {
			return "", err
		}
		return res.Msg.GetTransaction().GetTransactionId(), nil
	}
	before := e.available(t, c, member)
	_, err = lateAt("late-after-no-show", "B-2", "2026-11-11")
	outcomeRecorded(t, err, "no_show", nsTxn)
	_, err = lateAt("late-after-free-cancellation", "B-3", "2026-11-21")
	outcomeRecorded(t, err, "cancelled_free", "")
	lateTxn, err := lateAt("late-4", "B-4", "2026-11-15")
	if err != nil {
		t.Fatalf("a late check-out before its stay is recorded: %v", err)
	}
	_, err = c.booking.RecordNoShow(e.ctx, noShow("ns-after-late", member, "B-4", "2026-11-14"))
	outcomeRecorded(t, err, "late_checkout", lateTxn)
	_, err = c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx-after-late",
		MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-4", ArrivalDate: "2026-11-14", Nights: 1,
		CancelledAt: timestamppb.New(time.Date(2026, 11, 13, 12, 0, 0, 0, time.UTC))}))
	outcomeRecorded(t, err, "late_checkout", lateTxn)
	if got, want := e.available(t, c, member), before-500; got != want {
		t.Errorf("available %d after the contradicting outcomes, want %d: only the late check-out of B-4 charged", got, want)
	}

	// Reversing the stay frees the booking: the corrected stay is recorded.
	if _, err := c.booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{
		IdempotencyKey: "reverse-1", TransactionId: stayTxn, Reason: "folio corrected"})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1-corrected", member, "B-1", "300.00", "300.00", "300.00", "300.00"))); err != nil {
		t.Fatalf("the corrected stay after the reversal: %v", err)
	}
	if nights := e.qualifyingNights(t, member); nights != 4 {
		t.Errorf("%d qualifying nights after the correction, want 4", nights)
	}
	e.verify(t)
}

// TestAPartnersHotelIsThePartners: at a partner's hotel the booking is
// the partner's. A second award of the same booking, under another key, is
// refused with the first; the chain's own booking events at the partner's
// hotel are refused, pointing to the alliance API, so that every point
// moved there is booked to the partner and settles.
func TestAPartnersHotelIsThePartners(t *testing.T) {
	w := newAllianceWorld(t)
	alpha := w.alliance(w.alphaKey)
	a, err := alpha.AwardStay(w.ctx, award("award-1", w.m1, "A-1", "ALPHA-7", "2026-11-10", "300.00"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = alpha.AwardStay(w.ctx, award("award-1-resent", w.m1, "A-1", "ALPHA-7", "2026-11-10", "300.00"))
	outcomeRecorded(t, err, "stayed", a.Msg.GetTransaction().GetTransactionId())

	booking := w.clients(w.bookingKey).booking
	chain := stayRequest("chain-1", w.m1, "ALPHA-8", "300.00")
	chain.PropertyId = "A-1"
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"a stay", func() error { _, err := booking.RecordStay(w.ctx, connect.NewRequest(chain)); return err }},
		{"a redemption", func() error {
			_, err := booking.Redeem(w.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "milk", MemberNumber: w.m1,
				Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, PropertyId: "A-1"}))
			return err
		}},
		{"a late check-out", func() error {
			_, err := booking.RecordLateCheckout(w.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late",
				MemberNumber: w.m1, PropertyId: "A-1", StayId: "ALPHA-7", DepartureDate: "2026-11-11", Hours: 1}))
			return err
		}},
		{"a no-show", func() error {
			req := noShow("ns", w.m1, "ALPHA-9", "2026-11-10")
			req.Msg.PropertyId = "A-1"
			_, err := booking.RecordNoShow(w.ctx, req)
			return err
		}},
		{"a guarantee", func() error {
			_, err := booking.PlaceGuarantee(w.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g",
				MemberNumber: w.m1, PropertyId: "A-1", StayId: "ALPHA-10", ArrivalDate: "2026-11-25", HoldUntil: "19:00"}))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), connect.CodeInvalidArgument)
			if field := badRequestField(t, ce); field != "propertyId" || !strings.Contains(ce.Message(), "AllianceService") {
				t.Fatalf("%v: want a refusal of propertyId pointing to AllianceService", ce)
			}
		})
	}
	if st := w.settlement(t, w.alphaKey); st.GetPointsIssued() != 300 {
		t.Errorf("ALPHA issued %d points, want 300: the award once", st.GetPointsIssued())
	}
	w.verify(t)
}

// TestConflictingOutcomesRaceToOne: a stay and a no-show of the same
// booking sent at the same moment, round after round: exactly one of
// them is committed, and the booking's record names it.
func TestConflictingOutcomesRaceToOne(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	const rounds = 8
	for round := range rounds {
		stayID := fmt.Sprintf("R-%d", round)
		var wg sync.WaitGroup
		var stayErr, noShowErr error
		var stayTxn, noShowTxn string
		wg.Go(func() {
			res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-"+stayID, member, stayID, "200.00")))
			if stayErr = err; err == nil {
				stayTxn = res.Msg.GetTransaction().GetTransactionId()
			}
		})
		wg.Go(func() {
			res, err := c.booking.RecordNoShow(e.ctx, noShow("ns-"+stayID, member, stayID, "2026-11-01"))
			if noShowErr = err; err == nil {
				noShowTxn = res.Msg.GetTransaction().GetTransactionId()
			}
		})
		wg.Wait()
		if (stayErr == nil) == (noShowErr == nil) {
			t.Fatalf("round %d: stay %v, no-show %v: want exactly one to succeed", round, stayErr, noShowErr)
		}
		winner, loser, outcome := stayTxn, noShowErr, "stayed"
		if noShowErr == nil {
			winner, loser, outcome = noShowTxn, stayErr, "no_show"
		}
		var ce *connect.Error
		if !errors.As(loser, &ce) || ce.Code() != connect.CodeAlreadyExists {
			t.Fatalf("round %d: the loser's answer %v, want ALREADY_EXISTS", round, loser)
		}
		var recorded, txn string
		if err := e.db.Pool.QueryRow(e.ctx, `SELECT outcome, transaction_id::TEXT FROM booking_outcomes
			WHERE property_id = 'SH-HQ-001' AND stay_id = $1 AND released_by IS NULL`, stayID).Scan(&recorded, &txn); err != nil {
			t.Fatal(err)
		}
		if recorded != outcome || txn != winner {
			t.Errorf("round %d: booking holds %s %s, want %s %s", round, recorded, txn, outcome, winner)
		}
		var outcomes int
		if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM transactions WHERE metadata->>'stay_id' = $1`, stayID).Scan(&outcomes); err != nil {
			t.Fatal(err)
		}
		if outcomes != 1 {
			t.Errorf("round %d: %d transactions for the booking, want 1", round, outcomes)
		}
	}
	e.verify(t)
}

// TestDatesAreCheckedAgainstTheHotelsClock: the service's clock stands at
// 17:00 on 22 November in Shanghai (09:00 UTC, 04:00 in New York). A stay
// is recorded at or after check-out, a no-show after the room's hold
// time, a cancellation or a booking once made; nothing is written when
// refused.
func TestDatesAreCheckedAgainstTheHotelsClock(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	local := func(s string) *timestamppb.Timestamp {
		ts, err := time.ParseInLocation("2006-01-02 15:04:05", s, shanghai)
		if err != nil {
			t.Fatal(err)
		}
		return timestamppb.New(ts)
	}
	stayAt := func(property, arrival, departure string) error {
		req := stayRequest("stay-"+property+arrival, member, "S-"+property+arrival, "100.00")
		req.PropertyId, req.ArrivalDate, req.DepartureDate = property, arrival, departure
		_, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req))
		return err
	}
	noShowOf := func(key, arrival string, bookedAt *timestamppb.Timestamp) error {
		req := noShow(key, member, key, arrival)
		req.Msg.BookedAt = bookedAt
		_, err := c.booking.RecordNoShow(e.ctx, req)
		return err
	}
	before := e.transactionCount(t)
	for _, tc := range []struct {
		name   string
		call   func() error
		code   connect.Code
		field  string
		reason string
	}{
		{"a stay departing tomorrow is refused", func() error { return stayAt("SH-HQ-001", "2026-11-22", "2026-11-23") },
			connect.CodeInvalidArgument, "departureDate", ""},
		{"a stay departing next week is refused", func() error { return stayAt("SH-HQ-001", "2026-11-28", "2026-11-29") },
			connect.CodeInvalidArgument, "departureDate", ""},
		{"in New York it is still the 22nd's early morning: the 23rd is refused", func() error { return stayAt("NYC-1", "2026-11-22", "2026-11-23") },
			connect.CodeInvalidArgument, "departureDate", ""},
		{"a no-show for an arrival next week is refused", func() error { return noShowOf("N-next-week", "2026-11-29", local("2026-11-01 10:00:00")) },
			connect.CodeFailedPrecondition, "", "NO_SHOW_TOO_EARLY"},
		{"a no-show at 17:00 on the arrival day, before the 18:00 hold time, is refused", func() error {
			return noShowOf("N-today", "2026-11-22", local("2026-11-01 10:00:00"))
		}, connect.CodeFailedPrecondition, "", "NO_SHOW_TOO_EARLY"},
		{"a booking made in the future is refused", func() error { return noShowOf("N-future-booking", "2026-11-20", local("2026-11-23 10:00:00")) },
			connect.CodeInvalidArgument, "bookedAt", ""},
		{"a booking made after the arrival date is refused", func() error { return noShowOf("N-late-booking", "2026-11-20", local("2026-11-21 09:00:00")) },
			connect.CodeInvalidArgument, "bookedAt", ""},
		{"a booking made before 2000 is refused", func() error {
			return noShowOf("N-old-booking", "2026-11-20", timestamppb.New(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC)))
		},
			connect.CodeInvalidArgument, "bookedAt", ""},
		{"a cancellation made tomorrow is refused", func() error {
			_, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx", MemberNumber: member,
				PropertyId: "SH-HQ-001", StayId: "C-1", ArrivalDate: "2026-11-23", Nights: 1, CancelledAt: local("2026-11-23 18:30:00")}))
			return err
		}, connect.CodeInvalidArgument, "cancelledAt", ""},
		{"a guarantee whose hold time has passed at the hotel is refused", func() error {
			// 04:00 on the 22nd in New York: yesterday's 19:00 is gone,
			// though the hold would run to noon today.
			_, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-gone", MemberNumber: member,
				PropertyId: "NYC-1", StayId: "G-gone", ArrivalDate: "2026-11-21", HoldUntil: "19:00"}))
			return err
		}, connect.CodeInvalidArgument, "holdUntil", ""},
		{"a cancellation of an arrival two years ahead is refused", func() error {
			_, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx-far", MemberNumber: member,
				PropertyId: "SH-HQ-001", StayId: "C-far", ArrivalDate: "2028-11-22", Nights: 1, CancelledAt: timestamppb.New(e.clock.Now())}))
			return err
		}, connect.CodeInvalidArgument, "arrivalDate", ""},
		{"a guarantee for an arrival two years ahead is refused", func() error {
			_, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-far", MemberNumber: member,
				PropertyId: "SH-HQ-001", StayId: "G-far", ArrivalDate: "2028-11-22", HoldUntil: "19:00"}))
			return err
		}, connect.CodeInvalidArgument, "arrivalDate", ""},
		{"a late check-out of a stay departing in 2027 is refused", func() error {
			_, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late", MemberNumber: member,
				PropertyId: "SH-HQ-001", StayId: "L-1", DepartureDate: "2027-01-02", Hours: 1}))
			return err
		}, connect.CodeInvalidArgument, "departureDate", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), tc.code)
			if tc.field != "" {
				if got := badRequestField(t, ce); got != tc.field {
					t.Fatalf("field %q, want %q (%v)", got, tc.field, ce)
				}
			}
			if tc.reason != "" {
				if got := errorInfo(t, ce).GetReason(); got != tc.reason {
					t.Fatalf("reason %q, want %q", got, tc.reason)
				}
			}
		})
	}
	if n := e.transactionCount(t); n != before {
		t.Fatalf("%d transactions written by refused requests", n-before)
	}
	// What is in time is recorded: a stay checking out today, a no-show
	// once the hold time has passed, a booking a second after 18:00 on the
	// arrival day exempt from the penalty, one at 18:00:00 not.
	if err := stayAt("SH-HQ-001", "2026-11-21", "2026-11-22"); err != nil {
		t.Fatalf("a stay checking out today: %v", err)
	}
	e.advanceTo(time.Date(2026, 11, 22, 10, 0, 1, 0, time.UTC)) // 18:00:01 in Shanghai
	if err := noShowOf("N-today", "2026-11-22", local("2026-11-01 10:00:00")); err != nil {
		t.Fatalf("a no-show after the hold time: %v", err)
	}
	for _, tc := range []struct {
		bookedAt string
		exempt   bool
	}{{"2026-11-20 18:00:00", false}, {"2026-11-20 18:00:01", true}} {
		stayID := "N-" + strings.ReplaceAll(tc.bookedAt[11:], ":", "")
		req := noShow(stayID, member, stayID, "2026-11-20")
		req.Msg.BookedAt = local(tc.bookedAt)
		res, err := c.booking.RecordNoShow(e.ctx, req)
		if err != nil || res.Msg.GetPenaltyExempt() != tc.exempt {
			t.Errorf("a same-day booking made at %s: %v, %v; want exempt %v", tc.bookedAt, res, err, tc.exempt)
		}
	}
	e.verify(t)
}

// TestACancellationUsesTheTierInForceWhenItWasMade: a regular member
// cancels at 18:30 on the arrival day (free until 18:00 for regular
// members, 19:00 for gold), becomes gold before the cancellation is
// recorded, and still pays: the deadline is the tier's at cancellation.
func TestACancellationUsesTheTierInForceWhenItWasMade(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	e.advanceTo(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	// Ten nights make the member gold, at their check-out on the 23rd
	// (an upgrade is dated at the stay's completion).
	stay := stayRequest("stay-1", member, "B-1",
		"100.00", "100.00", "100.00", "100.00", "100.00", "100.00", "100.00", "100.00", "100.00", "100.00")
	stay.ArrivalDate, stay.DepartureDate = "2026-11-13", "2026-11-23"
	res, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stay))
	if err != nil || res.Msg.GetTier() != loyaltyv1.Tier_TIER_GOLD {
		t.Fatalf("ten nights: %v, %v; want gold", res, err)
	}
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	cancelled, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx",
		MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "C-1", ArrivalDate: "2026-11-22", Nights: 1,
		CancelledAt: timestamppb.New(time.Date(2026, 11, 22, 18, 30, 0, 0, shanghai))}))
	if err != nil || cancelled.Msg.GetFreeCancellation() || cancelled.Msg.GetTransaction().GetAvailablePointsDelta() != -300 {
		t.Fatalf("cancelled at 18:30 while regular: %v, %v; want charged 300", cancelled, err)
	}
}

// TestGetBookingShowsWhatBecameOfIt: a client that lost its answers reads
// the booking: the outcome in force and its transaction, the reversed one
// and its reversal, the guarantee and its capture; an unknown booking is
// NOT_FOUND.
func TestGetBookingShowsWhatBecameOfIt(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	get := func(stayID string) (*loyaltyv1.Booking, error) {
		res, err := c.booking.GetBooking(e.ctx, connect.NewRequest(&loyaltyv1.GetBookingRequest{PropertyId: "SH-HQ-001", StayId: stayID}))
		if err != nil {
			return nil, err
		}
		return res.Msg.GetBooking(), nil
	}
	_, err := get("B-1")
	wantCode(t, err, connect.CodeNotFound)

	first, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00")))
	if err != nil {
		t.Fatal(err)
	}
	firstID := first.Msg.GetTransaction().GetTransactionId()
	b, err := get("B-1")
	if err != nil || b.GetOutcome() != loyaltyv1.BookingOutcome_BOOKING_OUTCOME_STAYED || b.GetOutcomeTransactionId() != firstID ||
		b.GetMemberNumber() != member || len(b.GetTransactions()) != 1 {
		t.Fatalf("after the stay: %v, %v", b, err)
	}
	reversal, err := c.booking.ReverseTransaction(e.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{
		IdempotencyKey: "reverse-1", TransactionId: firstID, Reason: "wrong folio"}))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = get("B-1"); err != nil || b.GetOutcome() != loyaltyv1.BookingOutcome_BOOKING_OUTCOME_UNSPECIFIED || len(b.GetTransactions()) != 2 {
		t.Fatalf("after the reversal: %v, %v", b, err)
	}
	second, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1-corrected", member, "B-1", "380.00")))
	if err != nil {
		t.Fatal(err)
	}
	b, err = get("B-1")
	var ids []string
	for _, txn := range b.GetTransactions() {
		ids = append(ids, txn.GetTransactionId())
	}
	if want := []string{firstID, reversal.Msg.GetTransaction().GetTransactionId(), second.Msg.GetTransaction().GetTransactionId()}; err != nil ||
		b.GetOutcomeTransactionId() != want[2] || fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("after the correction: %v, %v; want transactions %v", b, err, want)
	}

	// A guarantee captured by a no-show.
	if _, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: member,
		PropertyId: "SH-HQ-001", StayId: "G-1", ArrivalDate: "2026-11-22", HoldUntil: "19:00"})); err != nil {
		t.Fatal(err)
	}
	e.advanceTo(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)) // 20:00 in Shanghai
	ns, err := c.booking.RecordNoShow(e.ctx, noShow("ns-1", member, "G-1", "2026-11-22"))
	if err != nil {
		t.Fatal(err)
	}
	b, err = get("G-1")
	if err != nil || b.GetOutcome() != loyaltyv1.BookingOutcome_BOOKING_OUTCOME_NO_SHOW || len(b.GetGuarantees()) != 1 ||
		b.GetGuarantees()[0].GetState() != loyaltyv1.GuaranteeState_GUARANTEE_STATE_CAPTURED ||
		len(b.GetTransactions()) != 1 || b.GetTransactions()[0].GetTransactionId() != ns.Msg.GetTransaction().GetTransactionId() {
		t.Fatalf("a captured guarantee: %v, %v", b, err)
	}
}

func correctStay(key, member, stayID, reason string, charges ...string) *loyaltyv1.CorrectStayRequest {
	s := stayRequest(key, member, stayID, charges...)
	return &loyaltyv1.CorrectStayRequest{IdempotencyKey: key, Reason: reason, MemberNumber: s.MemberNumber, PropertyId: s.PropertyId,
		StayId: s.StayId, ArrivalDate: s.ArrivalDate, DepartureDate: s.DepartureDate, Nights: s.Nights, Channel: s.Channel}
}

// memberBooks is what a member's books show: points, tier qualification
// and the first stay.
type memberBooks struct {
	available, qualifyingPoints int64
	qualifyingNights            int
	firstStay                   string
}

func (e *env) books(t *testing.T, c clients, member string) memberBooks {
	t.Helper()
	b := memberBooks{available: e.available(t, c, member)}
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT COALESCE(SUM(nights), 0), COALESCE(SUM(points), 0) FROM qualifying_stays WHERE member_number = $1`,
		member).Scan(&b.qualifyingNights, &b.qualifyingPoints); err != nil {
		t.Fatal(err)
	}
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT COALESCE(first_stay, '') FROM members WHERE member_number = $1`, member).Scan(&b.firstStay); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestACorrectedOutcomeLeavesTheBooksAsIfOnlyTheStayHappened: a stay whose
// folio changed, a no-show who did arrive, a captured guarantee, a free
// cancellation: each corrected into the stay leaves the member's points,
// tier qualification and first stay exactly as a member's who only had
// that stay; the two transactions name each other; a retry answers the
// same; a booking with no outcome has nothing to correct.
func TestACorrectedOutcomeLeavesTheBooksAsIfOnlyTheStayHappened(t *testing.T) {
	e := newEnv(t)
	c, admin := e.clients(e.bookingKey), e.clients(e.adminKey).admin
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	for i, tc := range []struct {
		name  string
		first func(member string) error
	}{
		{"a stay whose folio changed", func(member string) error {
			_, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("first-"+member, member, "B-"+member, "300.00", "300.00", "300.00")))
			return err
		}},
		{"a no-show who did arrive", func(member string) error {
			_, err := c.booking.RecordNoShow(e.ctx, noShow("first-"+member, member, "B-"+member, "2026-11-01"))
			return err
		}},
		{"a captured guarantee of a guest who did arrive", func(member string) error {
			if _, err := admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "gw-" + member, MemberNumber: member,
				Points: 600, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "welcome"})); err != nil {
				return err
			}
			if _, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-" + member,
				MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-" + member, ArrivalDate: "2026-11-22", HoldUntil: "19:00"})); err != nil {
				return err
			}
			e.advanceTo(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
			_, err := c.booking.RecordNoShow(e.ctx, noShow("first-"+member, member, "B-"+member, "2026-11-22"))
			return err
		}},
		{"a free cancellation of a guest who came anyway", func(member string) error {
			_, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "first-" + member,
				MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "B-" + member, ArrivalDate: "2026-11-01", Nights: 1,
				CancelledAt: timestamppb.New(time.Date(2026, 10, 30, 12, 0, 0, 0, shanghai))}))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			corrected := e.enroll(t, c, fmt.Sprint("enrol-corrected-", i))
			control := e.enroll(t, c, fmt.Sprint("enrol-control-", i))
			if err := tc.first(corrected); err != nil {
				t.Fatal(err)
			}
			// The stay as it was: one night at 250 (the control member's
			// only outcome).
			req := correctStay("fix-"+corrected, corrected, "B-"+corrected, "guest stayed one night", "250.00")
			if tc.name == "a captured guarantee of a guest who did arrive" {
				req.ArrivalDate, req.DepartureDate = "2026-11-22", "2026-11-23"
				e.advanceTo(time.Date(2026, 11, 23, 6, 0, 0, 0, time.UTC))
				if _, err := admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "gw-" + control, MemberNumber: control,
					Points: 600, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "welcome"})); err != nil {
					t.Fatal(err)
				}
			}
			res, err := c.booking.CorrectStay(e.ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			only := stayRequest("only-"+control, control, "B-"+control, "250.00")
			only.ArrivalDate, only.DepartureDate = req.ArrivalDate, req.DepartureDate
			if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(only)); err != nil {
				t.Fatal(err)
			}
			got, want := e.books(t, c, corrected), e.books(t, c, control)
			want.firstStay = strings.Replace(want.firstStay, control, corrected, 1)
			if got != want {
				t.Errorf("corrected member's books %+v, want those of a member with only the stay: %+v", got, want)
			}
			stay, reversal := res.Msg.GetTransaction(), res.Msg.GetReversal()
			if reversal != nil && (stay.GetCorrectsTransactionId() != reversal.GetReversesTransactionId() ||
				reversal.GetCorrectedByTransactionId() != stay.GetTransactionId()) {
				t.Errorf("links: stay corrects %q, reversal reverses %q and is corrected by %q (stay %s)", stay.GetCorrectsTransactionId(),
					reversal.GetReversesTransactionId(), reversal.GetCorrectedByTransactionId(), stay.GetTransactionId())
			}
			if (reversal == nil) != (tc.name == "a free cancellation of a guest who came anyway") {
				t.Errorf("reversal %v", reversal)
			}
			again, err := c.booking.CorrectStay(e.ctx, connect.NewRequest(req))
			if err != nil || again.Msg.GetTransaction().GetTransactionId() != stay.GetTransactionId() ||
				again.Msg.GetReversal().GetTransactionId() != reversal.GetTransactionId() {
				t.Fatalf("retry: %v, %v; want the first correction", again, err)
			}
			b, err := c.booking.GetBooking(e.ctx, connect.NewRequest(&loyaltyv1.GetBookingRequest{PropertyId: "SH-HQ-001", StayId: "B-" + corrected}))
			if err != nil || b.Msg.GetBooking().GetOutcome() != loyaltyv1.BookingOutcome_BOOKING_OUTCOME_STAYED ||
				b.Msg.GetBooking().GetOutcomeTransactionId() != stay.GetTransactionId() {
				t.Fatalf("the booking after the correction: %v, %v", b, err)
			}
		})
	}
	_, err := c.booking.CorrectStay(e.ctx, connect.NewRequest(correctStay("fix-none", e.enroll(t, c, "enrol-none"), "NEVER", "no such stay", "100.00")))
	wantCode(t, err, connect.CodeNotFound)
	e.verify(t)
}

// TestAPartnersCorrectionReachesItsSettlement: a partner reverses an award
// whose folio changed and awards the stay again: the booking takes the new
// award, and the settlement counts the new one, the old one reversed.
func TestAPartnersCorrectionReachesItsSettlement(t *testing.T) {
	w := newAllianceWorld(t)
	alpha := w.alliance(w.alphaKey)
	first, err := alpha.AwardStay(w.ctx, award("award-1", w.m1, "A-1", "ALPHA-9", "2026-11-10", "300.00"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alpha.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{IdempotencyKey: "reverse-1",
		TransactionId: first.Msg.GetTransaction().GetTransactionId(), Reason: "folio corrected"})); err != nil {
		t.Fatal(err)
	}
	second, err := alpha.AwardStay(w.ctx, award("award-2", w.m1, "A-1", "ALPHA-9", "2026-11-10", "250.00"))
	if err != nil {
		t.Fatalf("the corrected award: %v", err)
	}
	st := w.settlement(t, w.alphaKey)
	// points_issued is net of the reversals' share, which is shown too.
	if st.GetPointsIssued() != 250 || st.GetReversedPointsIssued() != -300 {
		t.Errorf("settlement issued %d, of which reversed %d; want 250 net, of which -300 reversed", st.GetPointsIssued(), st.GetReversedPointsIssued())
	}
	b, err := w.clients(w.bookingKey).booking.GetBooking(w.ctx, connect.NewRequest(&loyaltyv1.GetBookingRequest{PropertyId: "A-1", StayId: "ALPHA-9"}))
	if err != nil || b.Msg.GetBooking().GetOutcomeTransactionId() != second.Msg.GetTransaction().GetTransactionId() {
		t.Fatalf("the booking: %v, %v", b, err)
	}
	// The chain's CorrectStay leaves a partner's award to the partner, as
	// the contract says: FAILED_PRECONDITION.
	req := correctStay("fix", w.m1, "ALPHA-9", "wrong folio", "200.00")
	req.PropertyId, req.ArrivalDate, req.DepartureDate = "A-1", "2026-11-10", "2026-11-11"
	_, err = w.clients(w.bookingKey).booking.CorrectStay(w.ctx, connect.NewRequest(req))
	if ce := wantCode(t, err, connect.CodeFailedPrecondition); !strings.Contains(ce.Message(), "awarded by the partner") {
		t.Errorf("the refusal: %v", ce)
	}
	w.verify(t)
}

// TestABookingIsOneMembers: a booking's outcomes and its guarantee name
// one member. A stay, a late check-out, a cancellation or a no-show of a
// booking in another member's name is refused (FAILED_PRECONDITION,
// BOOKING_OF_ANOTHER_MEMBER), and so is a guarantee for a booking whose
// outcome is recorded (BOOKING_CLOSED); nothing is charged or released.
func TestABookingIsOneMembers(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	guest, other := e.enroll(t, c, "enrol-guest"), e.enroll(t, c, "enrol-other")
	for _, m := range []string{guest, other} {
		e.adjust(t, "goodwill-"+m, m, 5000)
	}
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", guest, "D-2", "388.00"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: guest,
		PropertyId: "SH-HQ-001", StayId: "MIX-1", ArrivalDate: "2026-11-23", HoldUntil: "19:00"})); err != nil {
		t.Fatal(err)
	}
	balance := func(m string) *loyaltyv1.PointsBalance {
		res, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: m}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetMember().GetBalance()
	}
	guestBefore, otherBefore := balance(guest), balance(other)

	for _, tc := range []struct {
		name, reason string
		call         func() error
	}{
		{"another member's late check-out of a stay", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			_, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late-other", MemberNumber: other,
				PropertyId: "SH-HQ-001", StayId: "D-2", DepartureDate: "2026-11-02", Hours: 1}))
			return err
		}},
		{"another member's free cancellation of a guaranteed booking", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			_, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cancel-other", MemberNumber: other,
				PropertyId: "SH-HQ-001", StayId: "MIX-1", ArrivalDate: "2026-11-23", Nights: 1, CancelledAt: timestamppb.New(e.clock.Now())}))
			return err
		}},
		{"another member's no-show of a guaranteed booking", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			_, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "no-show-other", MemberNumber: other,
				PropertyId: "SH-HQ-001", StayId: "MIX-1", ArrivalDate: "2026-11-23", Nights: 1, BookedAt: timestamppb.New(e.clock.Now().Add(-time.Hour))}))
			return err
		}},
		{"another member's late check-out of a guaranteed booking", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			_, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late-other-mix", MemberNumber: other,
				PropertyId: "SH-HQ-001", StayId: "MIX-1", DepartureDate: "2026-11-22", Hours: 1}))
			return err
		}},
		// Not ALREADY_EXISTS: that answer would show the guest's outcome
		// and transaction to whoever names the booking.
		{"another member's no-show of a booking stayed", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			_, err := c.booking.RecordNoShow(e.ctx, connect.NewRequest(&loyaltyv1.RecordNoShowRequest{IdempotencyKey: "no-show-other-d2", MemberNumber: other,
				PropertyId: "SH-HQ-001", StayId: "D-2", ArrivalDate: "2026-11-01", Nights: 1, BookedAt: timestamppb.New(time.Date(2026, 10, 20, 0, 0, 0, 0, time.UTC))}))
			return err
		}},
		// Nor the guest's transaction id, as ALREADY_EXISTS would give it.
		{"another member's stay of a booking stayed", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			_, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-other", other, "D-2", "388.00")))
			return err
		}},
		{"another member's stay of a booking stayed, in a batch", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			return batchRowError(c, false, stayRequest("stay-other-batch", other, "D-2", "388.00"))
		}},
		{"another member's stay of a booking stayed, in a dry run", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			return batchRowError(c, true, stayRequest("stay-other-dry", other, "D-2", "388.00"))
		}},
		{"a guarantee for a booking already stayed", "BOOKING_CLOSED", func() error {
			_, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-stayed", MemberNumber: guest,
				PropertyId: "SH-HQ-001", StayId: "D-2", ArrivalDate: "2026-11-23", HoldUntil: "19:00"}))
			return err
		}},
		{"another member's guarantee for a booking stayed", "BOOKING_OF_ANOTHER_MEMBER", func() error {
			_, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-other", MemberNumber: other,
				PropertyId: "SH-HQ-001", StayId: "D-2", ArrivalDate: "2026-11-23", HoldUntil: "19:00"}))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), connect.CodeFailedPrecondition)
			if got := errorInfo(t, ce).GetReason(); got != tc.reason {
				t.Errorf("reason %s, want %s: %v", got, tc.reason, ce)
			}
		})
	}
	if g, o := balance(guest), balance(other); !proto.Equal(g, guestBefore) || !proto.Equal(o, otherBefore) {
		t.Errorf("balances moved: the guest's %v -> %v, the other's %v -> %v", guestBefore, g, otherBefore, o)
	}

	t.Run("the guest's own late check-out is charged", func(t *testing.T) {
		if _, err := c.booking.RecordLateCheckout(e.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "late-guest", MemberNumber: guest,
			PropertyId: "SH-HQ-001", StayId: "D-2", DepartureDate: "2026-11-02", Hours: 1})); err != nil {
			t.Fatal(err)
		}
	})
}

// batchRowError sends row alone in a RecordStays batch (a dry run when
// validateOnly) and returns its refusal as the Connect error a single call
// would have answered, or nil.
func batchRowError(c clients, validateOnly bool, row *loyaltyv1.RecordStayRequest) error {
	res, err := c.booking.RecordStays(context.Background(), connect.NewRequest(&loyaltyv1.RecordStaysRequest{Stays: []*loyaltyv1.RecordStayRequest{row}, ValidateOnly: validateOnly}))
	if err != nil {
		return err
	}
	r := res.Msg.GetResults()[0]
	if r.GetStatus() != refused {
		return nil
	}
	var code connect.Code
	if err := code.UnmarshalText([]byte(strings.ToLower(r.GetError().GetCode()))); err != nil {
		return err
	}
	e := connect.NewError(code, errors.New(r.GetError().GetMessage()))
	if detail, err := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: r.GetError().GetReason()}); err == nil {
		e.AddDetail(detail)
	}
	return e
}

// TestAStayThatEarnsNothingStillCounts: a stay whose nights were paid with
// a free-night reward (room charge "0") earns no points, but it is a
// completed stay: its nights count for tiers, and a regular member's first
// stay makes it silver. It leaves the first-stay bonus to the first stay
// that earns.
func TestAStayThatEarnsNothingStillCounts(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	frontDesk := func(key, stayID string, charges ...string) *connect.Request[loyaltyv1.RecordStayRequest] {
		r := stayRequest(key, member, stayID, charges...)
		r.Channel = loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK // no direct-booking bonus
		return connect.NewRequest(r)
	}
	free, err := c.booking.RecordStay(e.ctx, frontDesk("free-nights", "B-FREE", "0", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if free.Msg.GetTransaction() != nil || free.Msg.GetTier() != loyaltyv1.Tier_TIER_SILVER {
		t.Errorf("a stay paid with free nights: %v; want no transaction and SILVER", free.Msg)
	}
	if b := e.books(t, c, member); b.qualifyingNights != 2 || b.firstStay != "" || b.available != 0 {
		t.Errorf("after the free nights: %+v; want 2 qualifying nights, no first stay claimed, no points", b)
	}
	again, err := c.booking.RecordStay(e.ctx, frontDesk("free-nights", "B-FREE", "0", "0"))
	if err != nil || again.Msg.GetTier() != loyaltyv1.Tier_TIER_SILVER {
		t.Errorf("its retry: %v, %v", again, err)
	}
	paid, err := c.booking.RecordStay(e.ctx, frontDesk("paid", "B-PAID", "100.00"))
	if err != nil {
		t.Fatal(err)
	}
	if got := paid.Msg.GetTransaction().GetAvailablePointsDelta(); got != 150 {
		t.Errorf("the first stay that earns: %d points, want 150 (100 x 1.5, the new member's bonus)", got)
	}
	if b := e.books(t, c, member); b.qualifyingNights != 3 {
		t.Errorf("%d qualifying nights, want 3", b.qualifyingNights)
	}
	// Corrected into one paid night, the free stay's two nights no longer
	// count.
	corrected := correctStay("correct-free", member, "B-FREE", "the second night was paid, the first never stayed", "200.00")
	corrected.Channel = loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK
	res, err := c.booking.CorrectStay(e.ctx, connect.NewRequest(corrected))
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Msg.GetTransaction().GetAvailablePointsDelta(); got != 200 || res.Msg.GetReversal() != nil {
		t.Errorf("the correction: %v; want 200 points and nothing to reverse", res.Msg)
	}
	if b := e.books(t, c, member); b.qualifyingNights != 2 || b.available != 350 {
		t.Errorf("after the correction: %+v; want 2 qualifying nights and 350 points", b)
	}
	e.verify(t)
}

// TestASameDayLateBookingIsCancelledFree: a booking made after 18:00 on
// its arrival day no-shows without penalty; cancelled, it is free too (its
// deadline had passed when it was made), where it was charged 300 (the
// member who cancelled paid, the one who did not come did not). Before
// 18:00 the deadline applies as ever; booked_at after cancelled_at is
// refused.
func TestASameDayLateBookingIsCancelledFree(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00", "300.00"))); err != nil {
		t.Fatal(err)
	}
	e.advanceTo(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)) // 21:00 in Shanghai
	shanghai := func(hour, minute int) *timestamppb.Timestamp {
		return timestamppb.New(time.Date(2026, 11, 22, hour-8, minute, 0, 0, time.UTC))
	}
	for i, tc := range []struct {
		name       string
		bookedAt   *timestamppb.Timestamp
		wantFree   bool
		wantPoints int64
		wantField  string
	}{
		{name: "booked at 19:00, cancelled at 20:00: free", bookedAt: shanghai(19, 0), wantFree: true},
		{name: "booked at 17:30, cancelled at 20:00: late", bookedAt: shanghai(17, 30), wantPoints: -300},
		{name: "no booked_at: late", wantPoints: -300},
		{name: "booked after the cancellation", bookedAt: shanghai(20, 30), wantField: "bookedAt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: fmt.Sprintf("cx-%d", i),
				MemberNumber: member, PropertyId: "SH-HQ-001", StayId: fmt.Sprintf("S-%d", i), ArrivalDate: "2026-11-22", Nights: 1,
				CancelledAt: shanghai(20, 0), BookedAt: tc.bookedAt}))
			if tc.wantField != "" {
				if field := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); field != tc.wantField {
					t.Errorf("refused on %q, want %q", field, tc.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetFreeCancellation() != tc.wantFree || res.Msg.GetTransaction().GetAvailablePointsDelta() != tc.wantPoints {
				t.Errorf("%v; want free %v, %d points", res.Msg, tc.wantFree, tc.wantPoints)
			}
		})
	}
}
