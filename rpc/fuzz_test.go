package rpc

import (
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// FuzzWriteDecoding: whatever body a client sends, the strict codec and the
// request checks answer without panicking, and a body they accept decodes
// to a message that holds no control character.
func FuzzWriteDecoding(f *testing.F) {
	for _, seed := range []string{
		`{"idempotencyKey":"k","memberNumber":"1000000001","propertyId":"SH-1","stayId":"B-1","arrivalDate":"2026-11-01","departureDate":"2026-11-02","nights":[{"roomCharge":{"currencyCode":"CNY","amount":"388.00"}}],"channel":"BOOKING_CHANNEL_APP"}`,
		`{"idempotencyKey":"k","bookedForSomeoneElse":true}`,
		`{"idempotencyKey":"a\u0000b"}`,
		`{"channel":99}`,
		`{"nights":[{"roomCharge":{"amount":"1e9"}}]}`,
		`{`, `[]`, `null`, `{"stayId":"\ud800"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var msg loyaltyv1.RecordStayRequest
		if err := (strictJSON{name: "json"}).Unmarshal(body, &msg); err != nil {
			return
		}
		if bad := saneMessage(msg.ProtoReflect()); bad != nil {
			return
		}
		for _, s := range []string{msg.GetIdempotencyKey(), msg.GetMemberNumber(), msg.GetPropertyId(), msg.GetStayId(), msg.GetArrivalDate()} {
			if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' }) {
				t.Fatalf("a control character got through: %q", s)
			}
		}
	})
}

// FuzzMoneyAmount: an amount the contract's form accepts is an exact
// decimal of at most two places that reads back as written.
func FuzzMoneyAmount(f *testing.F) {
	for _, seed := range []string{"388.00", "0", "-1.5", "1e9", "388.001", " 1", "1,000.00", "999999999999.99", "0.1", ".5", "5.", "+1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, amount string) {
		if !moneyAmount.MatchString(amount) {
			return
		}
		d, err := decimal.NewFromString(amount)
		if err != nil {
			t.Fatalf("%q matches the money form but is not a decimal: %v", amount, err)
		}
		if d.Exponent() < -2 {
			t.Fatalf("%q has more than two decimal places", amount)
		}
		if !d.Equal(decimal.RequireFromString(d.String())) {
			t.Fatalf("%q does not read back", amount)
		}
	})
}
