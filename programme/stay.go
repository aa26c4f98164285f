package programme

import (
	"fmt"
	"math"

	"github.com/shopspring/decimal"
)

// Night is one room-night of a stay.
type Night struct {
	// RoomCharge is the overnight room charge paid at member price, in the
	// stay's Currency. At most Programme.CurrencyDecimalPlaces decimals.
	RoomCharge decimal.Decimal
	// UnbookedExtension marks a night added at the desk, not booked in
	// advance through a self-service channel: it earns nothing.
	UnbookedExtension bool
}

// Stay is a completed stay, as recorded at check-out.
type Stay struct {
	// Currency is the ISO code of the room charges; it must equal
	// Programme.Currency.
	Currency string
	Nights   []Night
	// Channel is where the stay was booked.
	Channel Channel
	// BookedForOther: the member booked, someone else stayed.
	BookedForOther bool
	// Tier is the member's tier in force when the stay began.
	Tier Tier
}

// StayPoints is what a stay earns, with the lines that explain it. The
// steps, in this order:
//
//  1. base: for each night that is not an unbooked extension,
//     floor(room charge × PointsPerCurrencyUnit) — line "stay_points";
//  2. tier multiplier: each such night earns
//     floor(room charge × PointsPerCurrencyUnit × TierMultiplier[tier]),
//     rounded down per night; what that adds to the base is line
//     "tier_bonus" (only when it is not zero). Extension nights earn
//     nothing — line "unbooked_extension" with 0 points says how many;
//  3. booked for someone else: the stay points (base + tier bonus) become
//     floor(stay points × BookedForOtherFactor) — a negative line
//     "booked_for_other";
//  4. direct-booking bonus, only when the channel is self-service and at
//     least one night earned: regular and silver members get
//     DirectBookingBonusPoints per stay; gold and platinum members get
//     floor(sum of the earning nights' base points ×
//     SeniorDirectBookingExtraMultiplier) — line "direct_booking_bonus".
//     The bonus is added after step 3, so it is never halved.
//
// The lines sum exactly to points. Errors are *FieldError: a currency that
// is not the programme's ("currency"), no nights or more than
// MaxNightsPerStay ("nights"), a negative room charge or one with more
// decimal places than the currency has ("nights[i].room_charge"), an
// unknown tier or one without a multiplier ("tier"), an unknown channel
// ("channel").
func (p Programme) StayPoints(s Stay) (points int64, lines []Line, err error) {
	if err := p.checkStay(s); err != nil {
		return 0, nil, err
	}
	mult := p.TierMultiplier[s.Tier]

	var base, earned, charges, firstCharge decimal.Decimal
	earning, extensions := 0, 0
	sameCharge := true
	for _, n := range s.Nights {
		if n.UnbookedExtension {
			extensions++
			continue
		}
		if earning == 0 {
			firstCharge = n.RoomCharge
		} else if !n.RoomCharge.Equal(firstCharge) {
			sameCharge = false
		}
		earning++
		x := n.RoomCharge.Mul(p.PointsPerCurrencyUnit)
		base = base.Add(x.Floor())
		earned = earned.Add(x.Mul(mult).Floor())
		charges = charges.Add(n.RoomCharge)
	}

	var stayAfterOther, bonus decimal.Decimal = earned, decimal.Zero
	if s.BookedForOther {
		stayAfterOther = earned.Mul(p.BookedForOtherFactor).Floor()
	}
	direct := s.Channel.SelfService() && earning > 0
	if direct {
		if s.Tier.Senior() {
			bonus = base.Mul(p.SeniorDirectBookingExtraMultiplier).Floor()
		} else {
			bonus = decimal.NewFromInt(p.DirectBookingBonusPoints)
		}
	}
	for _, d := range []decimal.Decimal{base, earned, stayAfterOther, bonus, stayAfterOther.Add(bonus)} {
		if !fitsInt64(d) {
			return 0, nil, fieldErr("nights", "room charges are too large to count in points")
		}
	}
	basePts, earnedPts := base.IntPart(), earned.IntPart()

	rate := "1 point per " + p.Currency
	if !p.PointsPerCurrencyUnit.Equal(decimal.NewFromInt(1)) {
		rate = p.PointsPerCurrencyUnit.String() + " points per " + p.Currency
	}
	if earning > 0 {
		var desc string
		if sameCharge {
			desc = fmt.Sprintf("%s at %s %s, %s",
				plural(earning, "night"), p.money(firstCharge), p.Currency, rate)
		} else {
			desc = fmt.Sprintf("%s, %s %s in all, %s, rounded down per night",
				plural(earning, "night"), p.money(charges), p.Currency, rate)
		}
		lines = append(lines, Line{Rule: RuleStayPoints, Description: desc, Points: basePts})
	}
	if tier := earnedPts - basePts; tier != 0 {
		lines = append(lines, Line{
			Rule: RuleTierBonus,
			Description: fmt.Sprintf("%s member multiplier %s on %s, rounded down per night",
				s.Tier, mult.String(), plural(earning, "night")),
			Points: tier,
		})
	}
	if extensions > 0 {
		lines = append(lines, Line{
			Rule: RuleUnbookedExtension,
			Description: fmt.Sprintf("%s added at the desk, not booked in advance through a self-service channel, earned nothing",
				plural(extensions, "extension night")),
		})
	}
	if s.BookedForOther {
		after := stayAfterOther.IntPart()
		lines = append(lines, Line{
			Rule: RuleBookedForOther,
			Description: fmt.Sprintf("booked for someone else: stay points × %s, rounded down (%d to %d)",
				p.BookedForOtherFactor.String(), earnedPts, after),
			Points: after - earnedPts,
		})
	}
	if direct {
		var desc string
		if s.Tier.Senior() {
			desc = fmt.Sprintf("booked directly (%s): %s members get the stay's base points again (× %s of %d), not halved",
				s.Channel, s.Tier, p.SeniorDirectBookingExtraMultiplier.String(), basePts)
		} else {
			desc = fmt.Sprintf("booked directly (%s): %s member bonus per stay, not halved", s.Channel, s.Tier)
		}
		lines = append(lines, Line{Rule: RuleDirectBookingBonus, Description: desc, Points: bonus.IntPart()})
	}
	for _, l := range lines {
		points += l.Points
	}
	return points, lines, nil
}

func (p Programme) checkStay(s Stay) error {
	if s.Currency != p.Currency {
		return fieldErr("currency", "is %q, the programme's currency is %q", s.Currency, p.Currency)
	}
	if len(s.Nights) == 0 {
		return fieldErr("nights", "a stay has at least one night")
	}
	if len(s.Nights) > p.MaxNightsPerStay {
		return fieldErr("nights", "%d nights, at most %d", len(s.Nights), p.MaxNightsPerStay)
	}
	if !s.Tier.known() {
		return fieldErr("tier", "unknown tier %q; want one of regular, silver, gold, platinum", s.Tier)
	}
	if _, ok := p.TierMultiplier[s.Tier]; !ok {
		return fieldErr("tier", "the programme sets no multiplier for tier %q", s.Tier)
	}
	if !s.Channel.known() {
		return fieldErr("channel", "unknown channel %q; want one of web, app, sms, call_centre, front_desk, partner, travel_agency", s.Channel)
	}
	for i, n := range s.Nights {
		field := fmt.Sprintf("nights[%d].room_charge", i)
		if n.RoomCharge.IsNegative() {
			return fieldErr(field, "is %s, must not be negative", n.RoomCharge.String())
		}
		if !n.RoomCharge.Equal(n.RoomCharge.Truncate(p.CurrencyDecimalPlaces)) {
			return fieldErr(field, "%s has more than %d decimal places", n.RoomCharge.String(), p.CurrencyDecimalPlaces)
		}
	}
	return nil
}

// money formats an amount with the currency's decimal places.
func (p Programme) money(d decimal.Decimal) string {
	return d.StringFixed(p.CurrencyDecimalPlaces)
}

var (
	minInt64 = decimal.NewFromInt(math.MinInt64)
	maxInt64 = decimal.NewFromInt(math.MaxInt64)
)

func fitsInt64(d decimal.Decimal) bool {
	return d.GreaterThanOrEqual(minInt64) && d.LessThanOrEqual(maxInt64)
}
