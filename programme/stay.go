package programme

import (
	"fmt"
	"math"
	"time"

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
	// FirstStay: this is the member's first completed stay.
	FirstStay bool
	// PropertyID is the hotel of the stay (promotions may be limited to
	// some properties).
	PropertyID string
	// ArrivalDate is the local date ("YYYY-MM-DD") of the first night at
	// the property; night i is ArrivalDate + i days. Required when the
	// programme has promotions.
	ArrivalDate string
}

// StayPoints is what a stay earns, with the lines that explain it. The
// steps, in this order:
//
//  1. base: for each night that is not an unbooked extension,
//     floor(room charge × PointsPerCurrencyUnit) — line "stay_points".
//     Extension nights earn nothing, in this step or any other — line
//     "unbooked_extension" with 0 points says how many;
//  2. tier multiplier: each such night earns
//     floor(room charge × PointsPerCurrencyUnit × TierMultiplier[tier]),
//     rounded down per night; what that adds to the base is line
//     "tier_bonus" (only when it is not zero);
//  3. first stay (Stay.FirstStay): each such night earns instead
//     floor(room charge × PointsPerCurrencyUnit × TierMultiplier[tier] ×
//     FirstStayMultiplier), rounded down per night once (not after step
//     2's rounding); what that adds to step 2 is line "first_stay_bonus"
//     (only when it is not zero). The stay points are now base + tier
//     bonus + first-stay bonus;
//  4. booked for someone else: the stay points become
//     floor(stay points × BookedForOtherFactor) — a negative line
//     "booked_for_other". This comes after step 3, so a first stay
//     booked for someone else has its first-stay bonus halved too;
//  5. direct-booking bonus, only when the channel is self-service and at
//     least one night earned: regular and silver members get
//     DirectBookingBonusPoints per stay; gold and platinum members get
//     floor(sum of the earning nights' base points ×
//     SeniorDirectBookingExtraMultiplier) — line "direct_booking_bonus".
//     The bonus is added after step 4, so it is never halved;
//  6. promotions, after the direct-booking bonus: each promotion of the
//     programme is evaluated on its own (promotions stack, and none
//     multiplies another's points or any bonus above): for each earning
//     night whose date (ArrivalDate + i days) is in [StartsOn, EndsOn] and
//     whose property and channel match, floor(the night's base points from
//     step 1 × Multiplier), summed; plus BonusPoints once when at least
//     one night qualified. One line per promotion with a qualifying night,
//     in the order of the promotions' IDs, rule "promotion:<id>" (see
//     PromotionRule). Promotion points are computed on the base, so they
//     are not multiplied by the tier or the first-stay multiplier, and
//     they come after step 4, so they are never halved.
//
// The lines sum exactly to points. Errors are *FieldError: a currency that
// is not the programme's ("currency"), no nights or more than
// MaxNightsPerStay ("nights"), a negative room charge or one with more
// decimal places than the currency has ("nights[i].room_charge"), an
// unknown tier or one without a multiplier ("tier"), an unknown channel
// ("channel"), an arrival date that is not YYYY-MM-DD, or none when the
// programme has promotions ("arrival_date"); and, for a programme that
// was never validated, a first stay under a FirstStayMultiplier below 1
// ("first_stay_multiplier") or a promotion date that is not a date
// ("promotions[i].starts_on", "promotions[i].ends_on").
func (p Programme) StayPoints(s Stay) (points int64, lines []Line, err error) {
	if err := p.checkStay(s); err != nil {
		return 0, nil, err
	}
	var arrival time.Time
	if s.ArrivalDate != "" || len(p.Promotions) > 0 {
		if arrival, err = ParseLocalDate(s.ArrivalDate); err != nil {
			if s.ArrivalDate == "" {
				return 0, nil, fieldErr("arrival_date", "is required: the programme has promotions, which depend on the dates of the nights")
			}
			return 0, nil, fieldErr("arrival_date", "is %q, want YYYY-MM-DD", s.ArrivalDate)
		}
	}
	mult := p.TierMultiplier[s.Tier]
	firstMult := decimal.NewFromInt(1)
	if s.FirstStay {
		firstMult = p.FirstStayMultiplier
	}

	var base, tiered, earned, charges, firstCharge decimal.Decimal
	earning, extensions := 0, 0
	sameCharge := true
	nightBase := make([]*decimal.Decimal, len(s.Nights)) // nil: the night does not earn
	for i, n := range s.Nights {
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
		b := x.Floor()
		nightBase[i] = &b
		base = base.Add(b)
		tiered = tiered.Add(x.Mul(mult).Floor())
		earned = earned.Add(x.Mul(mult).Mul(firstMult).Floor())
		charges = charges.Add(n.RoomCharge)
	}

	stayAfterOther, bonus := earned, decimal.Zero
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
	promos, err := p.promotionsFor(s, arrival, nightBase)
	if err != nil {
		return 0, nil, err
	}
	total := stayAfterOther.Add(bonus)
	amounts := []decimal.Decimal{base, tiered, earned, stayAfterOther, bonus}
	for _, r := range promos {
		total = total.Add(r.points)
		amounts = append(amounts, r.points)
	}
	for _, d := range append(amounts, total) {
		if !fitsInt64(d) {
			return 0, nil, fieldErr("nights", "the stay's points are too large to count (room charges or bonuses)")
		}
	}
	basePts, tieredPts, earnedPts := base.IntPart(), tiered.IntPart(), earned.IntPart()

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
	if tier := tieredPts - basePts; tier != 0 {
		lines = append(lines, Line{
			Rule: RuleTierBonus,
			Description: fmt.Sprintf("%s member multiplier %s on %s, rounded down per night",
				s.Tier, mult.String(), plural(earning, "night")),
			Points: tier,
		})
	}
	if first := earnedPts - tieredPts; s.FirstStay && first != 0 {
		lines = append(lines, Line{
			Rule: RuleFirstStayBonus,
			Description: fmt.Sprintf("first stay: each night's points before rounding × %s (after the %s member multiplier), rounded down per night: %d in all instead of %d",
				firstMult.String(), s.Tier, earnedPts, tieredPts),
			Points: first,
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
	for _, r := range promos {
		lines = append(lines, r.line(earning))
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
	if s.FirstStay && p.FirstStayMultiplier.LessThan(decimal.NewFromInt(1)) {
		return fieldErr("first_stay_multiplier", "the programme's first-stay multiplier is %s, must be at least 1", p.FirstStayMultiplier.String())
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
