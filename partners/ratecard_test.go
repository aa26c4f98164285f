package partners

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func card(perUnit string, regular, silver, gold, platinum string) RateCard {
	return RateCard{PointsPerCurrencyUnit: d(perUnit), TierMultiplier: map[programme.Tier]decimal.Decimal{
		programme.TierRegular: d(regular), programme.TierSilver: d(silver), programme.TierGold: d(gold), programme.TierPlatinum: d(platinum)}}
}

func TestStayPoints(t *testing.T) {
	standard := card("1", "1", "1", "1.2", "1.5")
	for _, tc := range []struct {
		name    string
		card    RateCard
		tier    programme.Tier
		charges []string
		// extensions: the last nights are unbooked extensions.
		extensions int
		cap        string
		points     int64
		lines      map[string]int64
	}{
		{name: "one point per unit, regular", card: standard, tier: programme.TierRegular, charges: []string{"388.00"}, cap: "2",
			points: 388, lines: map[string]int64{RuleStayPoints: 388}},
		{name: "the tier multiplies, rounded down per night", card: standard, tier: programme.TierGold, charges: []string{"199.99", "199.99"}, cap: "2",
			points: 478, lines: map[string]int64{RuleStayPoints: 398, RuleTierBonus: 80}}, // floor(239.988)=239 per night
		{name: "the base is rounded down per night too", card: card("0.5", "1", "1", "1", "1"), tier: programme.TierSilver, charges: []string{"101", "101"}, cap: "2",
			points: 100, lines: map[string]int64{RuleStayPoints: 100}},
		{name: "the programme caps a generous card", card: card("3", "1", "1", "1", "2"), tier: programme.TierPlatinum, charges: []string{"100.50"}, cap: "2",
			points: 201, lines: map[string]int64{RuleStayPoints: 301, RuleTierBonus: 302, RuleCap: -402}},
		{name: "a cap of zero awards nothing", card: standard, tier: programme.TierRegular, charges: []string{"300"}, cap: "0",
			points: 0, lines: map[string]int64{RuleStayPoints: 300, RuleCap: -300}},
		{name: "a tier multiplier below one takes points away", card: card("1", "0.5", "1", "1", "1"), tier: programme.TierRegular, charges: []string{"99"}, cap: "2",
			points: 49, lines: map[string]int64{RuleStayPoints: 99, RuleTierBonus: -50}},
		{name: "an extension night not booked in advance earns nothing", card: standard, tier: programme.TierGold, charges: []string{"200", "300"}, extensions: 1, cap: "2",
			points: 240, lines: map[string]int64{RuleStayPoints: 200, RuleTierBonus: 40}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nights []programme.Night
			for i, c := range tc.charges {
				nights = append(nights, programme.Night{RoomCharge: d(c), UnbookedExtension: i >= len(tc.charges)-tc.extensions})
			}
			points, lines, err := StayPoints(tc.card, tc.tier, nights, d(tc.cap))
			if err != nil {
				t.Fatal(err)
			}
			if points != tc.points {
				t.Errorf("points = %d, want %d", points, tc.points)
			}
			var sum int64
			got := map[string]int64{}
			for _, l := range lines {
				sum += l.Points
				got[l.Rule] = l.Points
			}
			if sum != points {
				t.Errorf("lines sum to %d, points are %d", sum, points)
			}
			if len(got) != len(tc.lines) {
				t.Errorf("lines %v, want %v", got, tc.lines)
			}
			for rule, want := range tc.lines {
				if got[rule] != want {
					t.Errorf("%s = %d, want %d (lines %v)", rule, got[rule], want, got)
				}
			}
		})
	}
}

func TestStayPointsRefusesAFreeNight(t *testing.T) {
	_, _, err := StayPoints(card("1", "1", "1", "1", "1"), programme.TierRegular, []programme.Night{{RoomCharge: d("100")}, {RoomCharge: d("0")}}, d("2"))
	var fe *ledger.FieldError
	if !errors.As(err, &fe) || fe.Field != "nights[1].room_charge.amount" {
		t.Fatalf("got %v, want a field error on nights[1]", err)
	}
}

func TestRateCardValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		card  RateCard
		field string
	}{
		{name: "a complete card is valid", card: card("1", "1", "1", "1.2", "1.5")},
		{name: "the rate is not negative", card: card("-1", "1", "1", "1", "1"), field: "rate_card.points_per_currency_unit"},
		{name: "the rate is not absurd", card: card("1001", "1", "1", "1", "1"), field: "rate_card.points_per_currency_unit"},
		{name: "at most 8 decimal places", card: card("0.000000001", "1", "1", "1", "1"), field: "rate_card.points_per_currency_unit"},
		{name: "every tier has a multiplier", card: RateCard{PointsPerCurrencyUnit: d("1"), TierMultiplier: map[programme.Tier]decimal.Decimal{programme.TierRegular: d("1")}}, field: "rate_card.tier_multiplier.silver"},
		{name: "no unknown tier", card: func() RateCard { c := card("1", "1", "1", "1", "1"); c.TierMultiplier["diamond"] = d("3"); return c }(), field: "rate_card.tier_multiplier"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.card.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("got %v, want a field error on %s", err, tc.field)
			}
		})
	}
}

func TestSettlementAmount(t *testing.T) {
	r := Rates{IssueRate: d("0.0085"), ReimbursementRate: d("0.0061")}
	for _, tc := range []struct {
		issued, redeemed int64
		want             string
	}{
		{388, 0, "3.298"},
		{0, 2000, "12.2"},
		{-388, 0, "-3.298"},
	} {
		if got := Amount(r, tc.issued, tc.redeemed); !got.Equal(d(tc.want)) {
			t.Errorf("Amount(%d, %d) = %s, want %s", tc.issued, tc.redeemed, got, tc.want)
		}
	}
}
