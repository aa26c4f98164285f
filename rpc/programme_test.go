package rpc_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// TestANewProgrammeVersionChangesNewTransactionsOnly doubles the earning
// rate from a moment on: stays recorded before keep their points and their
// version's explanation; stays after earn double.
func TestANewProgrammeVersionChangesNewTransactionsOnly(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	admin := e.clients(e.adminKey)
	member := e.enroll(t, c, "enrol-1")
	before, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "388.00")))
	if err != nil {
		t.Fatal(err)
	}

	current, err := admin.admin.GetProgramme(e.ctx, connect.NewRequest(&loyaltyv1.GetProgrammeRequest{}))
	if err != nil || current.Msg.GetVersion() != 1 {
		t.Fatalf("programme in force: %v, %v", current, err)
	}
	var definition map[string]any
	if err := json.Unmarshal([]byte(current.Msg.GetDefinitionJson()), &definition); err != nil {
		t.Fatal(err)
	}
	definition["points_per_currency_unit"] = "2"
	changed, _ := json.Marshal(definition)
	effective := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)

	// A version may not start in the past, nor be malformed.
	_, err = admin.admin.PublishProgramme(e.ctx, connect.NewRequest(&loyaltyv1.PublishProgrammeRequest{IdempotencyKey: "v-past",
		EffectiveAt: timestamppb.New(effective.AddDate(0, -1, 0)), DefinitionJson: string(changed)}))
	if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != "effectiveAt" {
		t.Fatalf("a version in the past: field %s", got)
	}
	broken := strings.Replace(string(changed), `"points_per_currency_unit":"2"`, `"points_per_currency_unit":"-2"`, 1)
	_, err = admin.admin.PublishProgramme(e.ctx, connect.NewRequest(&loyaltyv1.PublishProgrammeRequest{IdempotencyKey: "v-broken",
		EffectiveAt: timestamppb.New(effective), DefinitionJson: broken}))
	if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != "definitionJson.points_per_currency_unit" {
		// The path into the definition is spelt as the definition spells it.
		t.Fatalf("a negative rate: field %s", got)
	}

	published, err := admin.admin.PublishProgramme(e.ctx, connect.NewRequest(&loyaltyv1.PublishProgrammeRequest{IdempotencyKey: "v-2",
		EffectiveAt: timestamppb.New(effective), DefinitionJson: string(changed)}))
	if err != nil || published.Msg.GetVersion() != 2 {
		t.Fatalf("publish: %v, %v", published, err)
	}
	// Before it takes effect, stays still earn under version 1.
	still, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-2", member, "B-2", "100.00")))
	if err != nil || still.Msg.GetTransaction().GetProgrammeVersion() != 1 || still.Msg.GetTransaction().GetAvailablePointsDelta() != 177 {
		t.Fatalf("a stay before version 2 takes effect: %v, %v", still, err)
	}

	e.clock.Advance(24 * time.Hour) // 2026-11-23: version 2 is in force
	// A stay completed at noon on the 23rd earns under version 2...
	stay3 := stayRequest("stay-3", member, "B-3", "100.00")
	stay3.ArrivalDate, stay3.DepartureDate = "2026-11-22", "2026-11-23"
	after, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stay3))
	if err != nil {
		t.Fatal(err)
	}
	// ...and one completed before version 2 took effect, recorded now,
	// under version 1: a stay earns by the rules of its own day.
	late, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-4", member, "B-4", "100.00")))
	if err != nil || late.Msg.GetTransaction().GetProgrammeVersion() != 1 || late.Msg.GetTransaction().GetAvailablePointsDelta() != 177 {
		t.Fatalf("a stay of 2026-11-02 recorded under version 2: %v, %v; want version 1's points", late, err)
	}
	if txn := after.Msg.GetTransaction(); txn.GetProgrammeVersion() != 2 || txn.GetAvailablePointsDelta() != 277 {
		t.Fatalf("a stay under version 2: %v", txn)
	}
	wantLines(t, after.Msg.GetTransaction(), "stay_points", 200, "direct_booking_bonus", 77)

	// The first stay still explains itself with version 1.
	old, err := c.members.GetTransaction(e.ctx, connect.NewRequest(&loyaltyv1.GetTransactionRequest{
		TransactionId: before.Msg.GetTransaction().GetTransactionId()}))
	if err != nil {
		t.Fatal(err)
	}
	if old.Msg.GetTransaction().GetProgrammeVersion() != 1 || old.Msg.GetTransaction().GetAvailablePointsDelta() != before.Msg.GetTransaction().GetAvailablePointsDelta() {
		t.Fatalf("the old stay now reads %v", old.Msg.GetTransaction())
	}
	wantLines(t, old.Msg.GetTransaction(), "stay_points", 388, "first_stay_bonus", 194, "direct_booking_bonus", 77)
	v1, err := admin.admin.GetProgramme(e.ctx, connect.NewRequest(&loyaltyv1.GetProgrammeRequest{Version: 1}))
	if err != nil || !strings.Contains(v1.Msg.GetDefinitionJson(), `"points_per_currency_unit": "1"`) {
		t.Fatalf("version 1 as published: %v, %v", v1, err)
	}
	e.verify(t)
}

func TestSuggestionsAndUnknownProperties(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	res, err := c.members.AwardSuggestion(e.ctx, connect.NewRequest(&loyaltyv1.AwardSuggestionRequest{IdempotencyKey: "sg-1",
		MemberNumber: member, Suggestion: "quieter air conditioning"}))
	if err != nil || res.Msg.GetTransaction().GetAvailablePointsDelta() != 50 {
		t.Fatalf("adopted suggestion: %v, %v", res, err)
	}
	before := e.transactionCount(t)
	req := stayRequest("stay-1", member, "B-1", "388.00")
	req.PropertyId = "NOWHERE-1"
	_, err = c.booking.RecordStay(e.ctx, connect.NewRequest(req))
	if ce := wantCode(t, err, connect.CodeNotFound); !strings.Contains(ce.Message(), `propertyId, "NOWHERE-1"`) {
		t.Fatalf("an unknown property: %v", ce)
	}
	if e.transactionCount(t) != before {
		t.Fatal("a stay at an unknown property posted")
	}
}

// TestCutOffsAreTheHotelsLocalTime cancels at a New York hotel on the day
// daylight saving time ends: 17:59 there is free, 18:01 is not, whatever
// the time is in Shanghai.
func TestCutOffsAreTheHotelsLocalTime(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	newYork, _ := time.LoadLocation("America/New_York")
	for _, tc := range []struct {
		clock string
		free  bool
	}{{"17:59", true}, {"18:01", false}} {
		at, err := time.ParseInLocation("2006-01-02 15:04", "2026-11-01 "+tc.clock, newYork)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.booking.RecordCancellation(e.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{
			IdempotencyKey: "c-" + tc.clock, MemberNumber: member, PropertyId: "NYC-1", StayId: "N-" + tc.clock,
			ArrivalDate: "2026-11-01", Nights: 1, CancelledAt: timestamppb.New(at)}))
		if err != nil {
			t.Fatalf("cancel at %s: %v", tc.clock, err)
		}
		if res.Msg.GetFreeCancellation() != tc.free {
			t.Fatalf("cancel at %s New York time: free=%v, want %v", tc.clock, res.Msg.GetFreeCancellation(), tc.free)
		}
	}
}
