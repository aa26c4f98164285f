package partners

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/programme"
)

// RateCard is a partner's own earning rule for stays at its hotels: points
// per unit of room charge (in the programme's currency) times the member's
// tier multiplier. The programme caps it (Programme.PartnerMaxPointsPerUnit).
type RateCard struct {
	PointsPerCurrencyUnit decimal.Decimal                    `json:"points_per_currency_unit"`
	TierMultiplier        map[programme.Tier]decimal.Decimal `json:"tier_multiplier"`
}

// The tiers a rate card prices, lowest first.
var cardTiers = []programme.Tier{programme.TierRegular, programme.TierSilver, programme.TierGold, programme.TierPlatinum}

// maxRate bounds every rate and multiplier: a typo of a few orders of
// magnitude is refused rather than priced.
var maxRate = decimal.NewFromInt(1000)

// Validate checks that the card prices every tier with sane numbers.
func (c RateCard) Validate() error {
	if err := checkRate("rate_card.points_per_currency_unit", c.PointsPerCurrencyUnit); err != nil {
		return err
	}
	for _, t := range cardTiers {
		m, ok := c.TierMultiplier[t]
		if !ok {
			return fieldError("rate_card.tier_multiplier."+string(t), "is required: every tier has a multiplier")
		}
		if err := checkRate("rate_card.tier_multiplier."+string(t), m); err != nil {
			return err
		}
	}
	if len(c.TierMultiplier) != len(cardTiers) {
		return fieldError("rate_card.tier_multiplier", "names a tier that does not exist (regular, silver, gold, platinum)")
	}
	return nil
}

func checkRate(field string, d decimal.Decimal) error {
	if d.IsNegative() || d.GreaterThan(maxRate) {
		return fieldError(field, fmt.Sprintf("is %s, must be 0 to %s", d.String(), maxRate.String()))
	}
	if d.Exponent() < -maxRateDecimals {
		return fieldError(field, fmt.Sprintf("has more than %d decimal places", maxRateDecimals))
	}
	return nil
}

// The Rule names of a partner stay's Lines.
const (
	RuleStayPoints = "partner_stay_points" // the rate card's base points
	RuleTierBonus  = "partner_tier_bonus"  // what the tier multiplier adds (or takes)
	RuleCap        = "partner_cap"         // what the programme's cap takes back
)

// StayPoints is what a stay at a partner's hotel earns: per night,
// floor(charge × points per unit × the tier's multiplier), but never more
// than floor(charge × maxPerUnit), the programme's cap. Points are rounded
// down per night, like the programme's own stays. An extension night not
// booked in advance earns nothing, as at the programme's own hotels. The
// Lines (base, tier bonus, cap; zero lines left out) sum to the points.
// nights are the room charges per night in the programme's currency, each
// positive.
func StayPoints(card RateCard, tier programme.Tier, nights []programme.Night, maxPerUnit decimal.Decimal) (int64, []programme.Line, error) {
	mult, ok := card.TierMultiplier[tier]
	if !ok {
		return 0, nil, fieldError("tier", fmt.Sprintf("the rate card has no multiplier for %q", tier))
	}
	var base, withTier, capped int64
	earning := 0
	for i, n := range nights {
		c := n.RoomCharge
		if !c.IsPositive() {
			return 0, nil, fieldError(fmt.Sprintf("nights[%d].room_charge.amount", i), "must be positive")
		}
		if n.UnbookedExtension {
			continue
		}
		earning++
		b := c.Mul(card.PointsPerCurrencyUnit).Floor().IntPart()
		t := c.Mul(card.PointsPerCurrencyUnit).Mul(mult).Floor().IntPart()
		limit := c.Mul(maxPerUnit).Floor().IntPart()
		base += b
		withTier += t
		capped += min(t, limit)
	}
	var lines []programme.Line
	add := func(rule, desc string, points int64) {
		if points != 0 {
			lines = append(lines, programme.Line{Rule: rule, Description: desc, Points: points})
		}
	}
	nightsEarning := fmt.Sprintf("%d night(s)", earning)
	if extensions := len(nights) - earning; extensions > 0 {
		nightsEarning += fmt.Sprintf(" (and %d unbooked extension night(s), which earn nothing)", extensions)
	}
	add(RuleStayPoints, fmt.Sprintf("%s, %s point(s) per unit of room charge", nightsEarning, card.PointsPerCurrencyUnit.String()), base)
	add(RuleTierBonus, fmt.Sprintf("%s tier: x%s", tier, mult.String()), withTier-base)
	add(RuleCap, fmt.Sprintf("programme cap: at most %s point(s) per unit of room charge", maxPerUnit.String()), capped-withTier)
	return capped, lines, nil
}
