package rpc

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

func TestFindJSONProblemNamesTheValueWhereItIs(t *testing.T) {
	for _, tc := range []struct {
		name          string
		msg           proto.Message
		json          string
		unknownFields bool
		wantPath      string // "": no problem
		wantEnum      bool
		// wantRefused is part of protojson's complaint about a value of
		// the wrong form ("": not such a problem).
		wantRefused string
	}{
		{"an unknown field deep in a list", &loyaltyv1.RecordStayRequest{},
			`{"nights":[{"roomCharge":{"amount":"1"}},{"roomCharge":{"amount":"1","currency":"CNY"}}]}`, true, "nights[1].roomCharge.currency", false, ""},
		{"an unknown field, where reads ignore it", &loyaltyv1.RecordStayRequest{}, `{"stayID":"x"}`, false, "", false, ""},
		{"fields by their proto names are known", &loyaltyv1.RecordStayRequest{}, `{"member_number":"1","stay_id":"x"}`, true, "", false, ""},
		{"an enum name its enum does not have, in a batch row", &loyaltyv1.RecordStaysRequest{},
			`{"stays":[{"channel":"BOOKING_CHANNEL_APP"},{"channel":"BOOKING_CHANNEL_FOO"}]}`, false, "stays[1].channel", true, ""},
		{"an enum by number is left to the checks after decoding", &loyaltyv1.RecordStayRequest{}, `{"channel":42}`, true, "", false, ""},
		{"a timestamp is a well-known type, not a message to walk", &loyaltyv1.RecordNoShowRequest{}, `{"bookedAt":"2026-11-01T10:00:00Z"}`, true, "", false, ""},
		{"null is no value", &loyaltyv1.RecordStayRequest{}, `{"channel":null,"nights":null}`, true, "", false, ""},
		{"not JSON is left to protojson", &loyaltyv1.RecordStayRequest{}, `{"nights":[`, true, "", false, ""},
		{"a timestamp without its zone", &loyaltyv1.GetRollForwardRequest{}, `{"from":"2026-12-01T00:00:00Z","to":"2026-12-02T00:00:00"}`, false, "to", false, "RFC 3339"},
		{"a date where a timestamp goes", &loyaltyv1.GetTrialBalanceRequest{}, `{"asOf":"2026-12-01"}`, false, "asOf", false, "Timestamp"},
		{"a timestamp deep in a batch row", &loyaltyv1.RecordStaysRequest{},
			`{"stays":[{"stayId":"a"},{"stayId":"b","nights":[{"roomCharge":{"amount":388}}]}]}`, true, "stays[1].nights[0].roomCharge.amount", false, "string"},
		{"a number that is no number", &loyaltyv1.ListEventsRequest{}, `{"pageSize":"ten"}`, false, "pageSize", false, "int32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := findJSONProblem(tc.msg.ProtoReflect().Descriptor(), []byte(tc.json), tc.unknownFields, true)
			switch {
			case tc.wantPath == "" && p != nil:
				t.Fatalf("found %v, want nothing", p)
			case tc.wantPath == "":
			case p == nil:
				t.Fatalf("found nothing, want %s", tc.wantPath)
			case p.path != tc.wantPath || (p.enum != nil) != tc.wantEnum || !strings.Contains(p.refused, tc.wantRefused) || (tc.wantRefused == "") != (p.refused == ""):
				t.Fatalf("found %q (enum %v): %v; want %q, refused %q", p.path, p.enum != nil, p, tc.wantPath, tc.wantRefused)
			}
		})
	}
}
