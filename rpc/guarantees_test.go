package rpc_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// TestAGuaranteeHoldsItsOwnArrival: a late-arrival guarantee keeps a room
// on its arrival day until its hold time, and the member owes its points
// only then:
//   - a no-show or a cancellation naming another arrival date than the
//     open guarantee's is refused on arrivalDate (it captured the
//     guarantee by the hold time of the wrong day);
//   - a member withdraws a guarantee only before the normal hold time
//     (18:00): after it, the guarantee is what keeps the room
//     (GUARANTEE_IN_FORCE); a guest who arrives releases it;
//   - a guarantee that lapsed (noon the day after arrival) is no longer
//     captured: a no-show recorded after that is charged the penalty (it
//     was refused for ever).
func TestAGuaranteeHoldsItsOwnArrival(t *testing.T) {
	e := newEnv(t) // 2026-11-22 17:00 in Shanghai
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "300.00", "300.00", "300.00", "300.00", "300.00", "300.00"))); err != nil {
		t.Fatal(err)
	}
	guarantee := func(stayID, arrival string) {
		t.Helper()
		if _, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-" + stayID, MemberNumber: member,
			PropertyId: "SH-HQ-001", StayId: stayID, ArrivalDate: arrival, HoldUntil: "19:00"})); err != nil {
			t.Fatal(err)
		}
	}
	release := func(key, stayID string, reason loyaltyv1.GuaranteeReleaseReason) error {
		_, err := c.booking.ReleaseGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.ReleaseGuaranteeRequest{IdempotencyKey: key,
			PropertyId: "SH-HQ-001", StayId: stayID, Reason: reason}))
		return err
	}
	for _, g := range []struct{ stayID, arrival string }{{"G-TOMORROW", "2026-11-23"}, {"G-W1", "2026-11-22"}, {"G-W2", "2026-11-22"}, {"G-LAPSES", "2026-11-22"},
		{"G-LAPSES-2", "2026-11-22"}} {
		guarantee(g.stayID, g.arrival)
	}
	available := e.available(t, c, member)

	t.Run("a no-show or a cancellation of another arrival date", func(t *testing.T) {
		_, err := c.booking.RecordNoShow(e.ctx, noShow("ns-wrong-date", member, "G-TOMORROW", "2026-11-21"))
		if field := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); field != "arrivalDate" {
			t.Errorf("no-show refused on %q, want arrivalDate", field)
		}
		_, err = c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "cx-wrong-date",
			MemberNumber: member, PropertyId: "SH-HQ-001", StayId: "G-TOMORROW", ArrivalDate: "2026-11-21", Nights: 1,
			CancelledAt: timestamppb.New(e.clock.Now())}))
		if field := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); field != "arrivalDate" {
			t.Errorf("cancellation refused on %q, want arrivalDate", field)
		}
		if got := e.available(t, c, member); got != available {
			t.Errorf("available %d, want %d: nothing captured", got, available)
		}
	})

	t.Run("withdrawn before the normal hold time, not after", func(t *testing.T) {
		if err := release("withdraw-1", "G-W1", loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_WITHDRAWN); err != nil {
			t.Fatalf("withdrawn at 17:00: %v", err)
		}
		e.advanceTo(time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC)) // 18:30 in Shanghai
		err := release("withdraw-2", "G-W2", loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_WITHDRAWN)
		if info := errorInfo(t, wantCode(t, err, connect.CodeFailedPrecondition)); info.GetReason() != "GUARANTEE_IN_FORCE" ||
			info.GetMetadata()["normal_hold_end"] != "2026-11-22T10:00:00Z" {
			t.Errorf("withdrawn at 18:30: %v", info)
		}
		if err := release("withdraw-1", "G-W1", loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_WITHDRAWN); err != nil {
			t.Errorf("the retry of a withdrawal made in time: %v", err)
		}
		if err := release("arrived-2", "G-W2", loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_ARRIVED); err != nil {
			t.Errorf("the guest arrived at 18:30: %v", err)
		}
	})

	t.Run("a no-show after the guarantee lapsed is charged the penalty", func(t *testing.T) {
		e.advanceTo(time.Date(2026, 11, 23, 5, 0, 0, 0, time.UTC)) // 13:00 the next day in Shanghai
		ns, err := c.booking.RecordNoShow(e.ctx, noShow("ns-lapsed", member, "G-LAPSES", "2026-11-22"))
		if err != nil {
			t.Fatalf("a no-show after the guarantee lapsed: %v", err)
		}
		if txn := ns.Msg.GetTransaction(); txn.GetKind() != loyaltyv1.TransactionKind_TRANSACTION_KIND_NO_SHOW ||
			txn.GetAvailablePointsDelta() != -300 || txn.GetHeldPointsDelta() != 0 {
			t.Errorf("no-show %v: want the 300-point penalty, no capture", txn)
		}
		// A lapsed guarantee no longer holds its arrival date either.
		if _, err := c.booking.RecordNoShow(e.ctx, noShow("ns-lapsed-2", member, "G-LAPSES-2", "2026-11-21")); err != nil {
			t.Errorf("a no-show of another date than a lapsed guarantee's: %v", err)
		}
	})
	e.verify(t)
}
