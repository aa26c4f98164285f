package partners

import "testing"

// TestASettlementIsRoundedToItsCurrencysMinorUnits: an amount due can be
// paid in the partner's currency: cents for CNY, whole yen, fils for KWD.
func TestASettlementIsRoundedToItsCurrencysMinorUnits(t *testing.T) {
	for currency, want := range map[string]int32{"CNY": 2, "EUR": 2, "JPY": 0, "KRW": 0, "KWD": 3, "ZZZ": 2} {
		if got := SettlementPlaces(currency); got != want {
			t.Errorf("%s: %d places, want %d", currency, got, want)
		}
	}
}
