package rpc

import (
	"testing"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

func TestFieldPathsAreSpeltAsJSONSpellsThem(t *testing.T) {
	stay := (&loyaltyv1.RecordStayRequest{}).ProtoReflect().Descriptor()
	partner := (&loyaltyv1.CreatePartnerRequest{}).ProtoReflect().Descriptor()
	programme := (&loyaltyv1.PublishProgrammeRequest{}).ProtoReflect().Descriptor()
	for _, tc := range []struct{ name, path, want string }{
		{"a field", "booked_for_other", "bookedForOther"},
		{"a field of a message in a list", "nights[2].room_charge.currency_code", "nights[2].roomCharge.currencyCode"},
		{"a one-word field", "channel", "channel"},
		{"a map key stays as it is", "rates.rate_card.tier_multiplier.gold_plus", "rates.rateCard.tierMultiplier.gold_plus"},
		{"a path into a document in a string keeps the document's spelling", "definition_json.tier_rules.window_months", "definitionJson.tier_rules.window_months"},
		{"a name the request does not have stays", "no_such_field", "no_such_field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := stay
			switch tc.path[:4] {
			case "rate":
				d = partner
			case "defi":
				d = programme
			}
			if got := jsonPath(d, tc.path); got != tc.want {
				t.Errorf("jsonPath(%q) = %q, want %q", tc.path, got, tc.want)
			}
		})
	}
	names := fieldNamesOf(stay)
	if got, want := respellText("departure_date: must be 1 to 90 days after arrival_date, not a first_stay_bonus", names),
		"departureDate: must be 1 to 90 days after arrivalDate, not a first_stay_bonus"; got != want {
		t.Errorf("respellText = %q, want %q", got, want)
	}
	// A quoted value is the client's: it keeps its spelling.
	if got, want := respellText(`no property with this property_id, "member_number"`, names),
		`no property with this propertyId, "member_number"`; got != want {
		t.Errorf("respellText = %q, want %q", got, want)
	}
}
