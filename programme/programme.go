// Package programme is the loyalty programme's rules as pure functions: how
// many points a stay earns and why, what a no-show, a late-arrival guarantee
// or a late check-out costs, what a reward is priced at, when a cancellation
// is free, and the programme's chart of accounts in the ledger.
//
// Every number is a field of a Programme value, and a Programme is data: it
// round-trips through JSON, Validate says whether a definition is complete
// and sane, and Default returns the shipped programme's defaults (the
// domain brief). Which version is in force when is the business of the
// store that keeps the versions, not of this package. Nothing here reads a
// database, a clock, a file or the environment: callers pass in the
// instants, the property's *time.Location and the member's tier, and get
// back points and the Lines that explain them.
//
// Money is decimal.Decimal, never float. Points are whole int64 numbers.
//
// Rounding: fractional points are always rounded down (decimal Floor) to
// whole points, at these places and nowhere else:
//   - stay points, per night, once, after the tier and (on a first stay)
//     first-stay multipliers: floor(room charge × PointsPerCurrencyUnit ×
//     tier multiplier [× FirstStayMultiplier]); the base shown on its own
//     line is likewise floored per night, before any multiplier, and so
//     is the amount after the tier multiplier alone;
//   - the halving of a stay booked for someone else, on the stay's total;
//   - a senior member's direct-booking bonus, on its total;
//   - a promotion's multiplier, per night, on that night's base points.
//
// Signs: the points returned together with Lines, and every Line.Points, are
// the signed effect on the member's balance: earning is positive; penalties,
// charges and redemptions are negative. The Lines of a result always sum to
// its points.
package programme

import (
	"fmt"
	"slices"

	"github.com/shopspring/decimal"
)

// Tier is a member's tier. The tier in force when a stay began is the one
// that applies to that stay.
type Tier string

const (
	TierRegular  Tier = "regular"
	TierSilver   Tier = "silver"
	TierGold     Tier = "gold"
	TierPlatinum Tier = "platinum"
)

// Senior reports whether the tier is a senior one (gold or platinum).
func (t Tier) Senior() bool { return t == TierGold || t == TierPlatinum }

func (t Tier) known() bool {
	switch t {
	case TierRegular, TierSilver, TierGold, TierPlatinum:
		return true
	}
	return false
}

// Channel is where a booking was made.
type Channel string

const (
	ChannelWeb          Channel = "web"
	ChannelApp          Channel = "app"
	ChannelSMS          Channel = "sms"
	ChannelCallCentre   Channel = "call_centre"
	ChannelFrontDesk    Channel = "front_desk"
	ChannelPartner      Channel = "partner"
	ChannelTravelAgency Channel = "travel_agency"
)

// SelfService reports whether the channel is one of the chain's own direct
// self-service channels (web, app, SMS): the ones that earn the
// direct-booking bonus.
func (c Channel) SelfService() bool {
	return c == ChannelWeb || c == ChannelApp || c == ChannelSMS
}

func (c Channel) known() bool {
	switch c {
	case ChannelWeb, ChannelApp, ChannelSMS, ChannelCallCentre, ChannelFrontDesk, ChannelPartner, ChannelTravelAgency:
		return true
	}
	return false
}

// Reward is an item of the rewards catalogue. Which rewards exist, and
// their prices, is Programme.Rewards.
type Reward string

// The default catalogue's rewards.
const (
	RewardFreeNight        Reward = "free_night"
	RewardLateCheckoutHour Reward = "late_checkout_hour"
	RewardTravelKit        Reward = "travel_kit"
	RewardBedtimeMilk      Reward = "bedtime_milk"
	RewardMemberCard       Reward = "member_card"
)

// Line explains one part of a calculation.
type Line struct {
	// Rule is a stable machine name: "stay_points", "tier_bonus",
	// "first_stay_bonus", "booked_for_other", "unbooked_extension",
	// "direct_booking_bonus", "promotion:<id>" (see PromotionRule),
	// "no_show_penalty", "late_checkout", "reward", "adopted_suggestion".
	Rule string
	// Description is a human sentence, e.g. "2 nights at 388.00 CNY,
	// 1 point per CNY".
	Description string
	// Points is the signed effect on the member's points.
	Points int64
}

// The Rule names of Lines.
const (
	RuleStayPoints         = "stay_points"
	RuleTierBonus          = "tier_bonus"
	RuleFirstStayBonus     = "first_stay_bonus"
	RuleDirectBookingBonus = "direct_booking_bonus"
	RuleBookedForOther     = "booked_for_other"
	RuleUnbookedExtension  = "unbooked_extension"
	RuleNoShowPenalty      = "no_show_penalty"
	RuleLateCheckout       = "late_checkout"
	RuleReward             = "reward"
	RuleAdoptedSuggestion  = "adopted_suggestion"
)

// FieldError says which input is wrong and why.
type FieldError struct {
	Field   string // e.g. "currency", "nights[2].room_charge", "hold_until"
	Problem string // e.g. `is "USD", the programme's currency is "CNY"`
}

func (e *FieldError) Error() string { return "programme: " + e.Field + ": " + e.Problem }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Programme is the set of rules in force. Every number of the rules is one
// of its fields. A Programme is a value: its methods never change it.
//
// A Programme is data: it round-trips through encoding/json (snake_case
// names; decimals as strings such as "1.2"; clocks as "HH:MM"; maps keyed by
// tier or reward as JSON objects). Which version of the rules is in force
// when is not part of it: the store that keeps the versions owns that.
// Validate checks a definition; ParseProgramme decodes one strictly.
type Programme struct {
	// Currency is the ISO code room charges are in ("CNY").
	Currency string `json:"currency"`
	// CurrencyDecimalPlaces is how many decimal places a charge in
	// Currency may have (2 for CNY).
	CurrencyDecimalPlaces int32 `json:"currency_decimal_places"`
	// PointsPerCurrencyUnit is the base earning rate (1 point per CNY).
	PointsPerCurrencyUnit decimal.Decimal `json:"points_per_currency_unit"`
	// TierMultiplier multiplies stay points: regular 1.0, silver 1.0,
	// gold 1.2, platinum 1.5.
	TierMultiplier map[Tier]decimal.Decimal `json:"tier_multiplier"`
	// FirstStayMultiplier multiplies the stay points (after the tier
	// multiplier) of a member's first completed stay (1.5; 1 is no bonus).
	FirstStayMultiplier decimal.Decimal `json:"first_stay_multiplier"`
	// DirectBookingBonusPoints is the flat bonus per stay for regular and
	// silver members booking on a self-service channel (77).
	DirectBookingBonusPoints int64 `json:"direct_booking_bonus_points"`
	// SeniorDirectBookingExtraMultiplier is the bonus of gold and platinum
	// members booking on a self-service channel, as a multiple of the
	// stay's base points (1: the stay points again).
	SeniorDirectBookingExtraMultiplier decimal.Decimal `json:"senior_direct_booking_extra_multiplier"`
	// BookedForOtherFactor scales stay points when the member booked for
	// someone else (0.5).
	BookedForOtherFactor decimal.Decimal `json:"booked_for_other_factor"`
	// Promotions are the campaigns of the programme (none by default).
	// See Promotion and StayPoints.
	Promotions []Promotion `json:"promotions"`
	// NoShowPenaltyPerNight is deducted per room-night of a no-show (300).
	NoShowPenaltyPerNight int64 `json:"no_show_penalty_per_night"`
	// SameDayBookingExemptAfter: a booking made on the arrival day after
	// this local time (18:00:00 itself is not after it) is not penalised
	// for a no-show (18:00).
	SameDayBookingExemptAfter Clock `json:"same_day_booking_exempt_after"`
	// FreeCancellationUntil is, per tier, the local time on the arrival
	// day before which a cancellation is free: regular and silver 18:00,
	// gold and platinum 19:00.
	FreeCancellationUntil map[Tier]Clock `json:"free_cancellation_until"`
	// GuaranteeNormalHoldUntil is the local time a room is held until
	// anyway, without a guarantee (18:00).
	GuaranteeNormalHoldUntil Clock `json:"guarantee_normal_hold_until"`
	// GuaranteeLatest is the latest local time a guarantee can hold a
	// room until (23:00).
	GuaranteeLatest Clock `json:"guarantee_latest"`
	// GuaranteePointsPerHour is put on hold per started hour of guarantee
	// past GuaranteeNormalHoldUntil (500).
	GuaranteePointsPerHour int64 `json:"guarantee_points_per_hour"`
	// LateCheckoutPointsPerHour is deducted at check-out per hour of late
	// check-out (500).
	LateCheckoutPointsPerHour int64 `json:"late_checkout_points_per_hour"`
	// MaxLateCheckoutHours is the most hours of late check-out charged
	// at once (6).
	MaxLateCheckoutHours int `json:"max_late_checkout_hours"`
	// FreeLateCheckoutTiers are the tiers whose late check-out is free
	// (none by default).
	FreeLateCheckoutTiers []Tier `json:"free_late_checkout_tiers"`
	// Rewards is the catalogue: each reward's price in points.
	Rewards map[Reward]int64 `json:"rewards"`
	// MaxRewardQuantity is the most items of one reward in one redemption
	// (10).
	MaxRewardQuantity int `json:"max_reward_quantity"`
	// AdoptedSuggestionPoints is awarded for a suggestion the chain
	// adopted (50).
	AdoptedSuggestionPoints int64 `json:"adopted_suggestion_points"`
	// TimeZone is the IANA zone of a property that does not name its own
	// ("Asia/Shanghai"). The functions here take a *time.Location; loading
	// it is the caller's job.
	TimeZone string `json:"time_zone"`
	// MaxNightsPerStay is the most nights one stay may have (90).
	MaxNightsPerStay int `json:"max_nights_per_stay"`
	// TierRules decide members' tiers; package tiers applies them.
	TierRules TierRules `json:"tier_rules"`
	// Expiry says when earned points expire, in the programme's TimeZone.
	Expiry ExpiryRules `json:"expiry"`
	// PartnerMaxPointsPerUnit caps what a partner's own rate card may
	// award at its hotels: at most this many points per unit of room
	// charge, after the tier multiplier (2).
	PartnerMaxPointsPerUnit decimal.Decimal `json:"partner_max_points_per_unit"`
}

// TierRules are the tier settings of a programme. The ladder is regular,
// silver, gold, platinum.
type TierRules struct {
	// AfterFirstStay is the tier the first completed stay reaches (silver).
	AfterFirstStay Tier `json:"after_first_stay"`
	// Thresholds of the higher tiers, lowest first: a tier is reached with
	// either its nights or its points (qualifying stays only) in the window.
	Thresholds []TierThreshold `json:"thresholds"`
	// Window is "rolling" (the last WindowMonths months) or
	// "calendar_year".
	Window       string `json:"window"`
	WindowMonths int    `json:"window_months"`
	// ReviewMonths after the last tier change is the review date (12: the
	// anniversary); a downgrade happens only then, one tier at a time.
	ReviewMonths int `json:"review_months"`
}

// TierThreshold is what reaching a tier takes.
type TierThreshold struct {
	Tier   Tier  `json:"tier"`
	Nights int   `json:"nights"`
	Points int64 `json:"points"`
}

// Default returns the shipped programme: the defaults of the domain brief.
// Each call returns fresh maps and slices, so changing one result never
// changes another.
func Default() Programme {
	return Programme{
		Currency:              "CNY",
		CurrencyDecimalPlaces: 2,
		PointsPerCurrencyUnit: decimal.NewFromInt(1),
		TierMultiplier: map[Tier]decimal.Decimal{
			TierRegular:  decimal.NewFromInt(1),
			TierSilver:   decimal.NewFromInt(1),
			TierGold:     decimal.RequireFromString("1.2"),
			TierPlatinum: decimal.RequireFromString("1.5"),
		},
		FirstStayMultiplier:                decimal.RequireFromString("1.5"),
		DirectBookingBonusPoints:           77,
		SeniorDirectBookingExtraMultiplier: decimal.NewFromInt(1),
		BookedForOtherFactor:               decimal.RequireFromString("0.5"),
		Promotions:                         []Promotion{},
		NoShowPenaltyPerNight:              300,
		SameDayBookingExemptAfter:          Clock{Hour: 18},
		FreeCancellationUntil: map[Tier]Clock{
			TierRegular:  {Hour: 18},
			TierSilver:   {Hour: 18},
			TierGold:     {Hour: 19},
			TierPlatinum: {Hour: 19},
		},
		GuaranteeNormalHoldUntil:  Clock{Hour: 18},
		GuaranteeLatest:           Clock{Hour: 23},
		GuaranteePointsPerHour:    500,
		LateCheckoutPointsPerHour: 500,
		MaxLateCheckoutHours:      6,
		FreeLateCheckoutTiers:     []Tier{},
		Rewards: map[Reward]int64{
			RewardFreeNight:        2000,
			RewardLateCheckoutHour: 500,
			RewardTravelKit:        400,
			RewardBedtimeMilk:      200,
			RewardMemberCard:       100,
		},
		MaxRewardQuantity:       10,
		AdoptedSuggestionPoints: 50,
		TimeZone:                "Asia/Shanghai",
		MaxNightsPerStay:        90,
		TierRules: TierRules{
			AfterFirstStay: TierSilver,
			Thresholds: []TierThreshold{
				{Tier: TierGold, Nights: 10, Points: 3000},
				{Tier: TierPlatinum, Nights: 25, Points: 8000},
			},
			Window:       "rolling",
			WindowMonths: 12,
			ReviewMonths: 12,
		},
		Expiry:                  ExpiryRules{Rule: ExpiryInactivity, Months: 24},
		PartnerMaxPointsPerUnit: decimal.NewFromInt(2),
	}
}

// NoShowPenalty is the penalty for a no-show of the given number of
// room-nights (booked, did not arrive, did not cancel): −NoShowPenaltyPerNight
// per room-night, as a negative number. A same-day booking made after
// SameDayBookingExemptAfter (see SameDayLateBooking) is exempt: 0 points, with
// a line that says why. Fewer than one room-night is nothing to penalise:
// 0 points (callers validate the count).
func (p Programme) NoShowPenalty(nights int, sameDayBookingAfterCutoff bool) (int64, []Line) {
	switch {
	case sameDayBookingAfterCutoff:
		return 0, []Line{{
			Rule: RuleNoShowPenalty,
			Description: fmt.Sprintf("same-day booking made after %s local time: no-show not penalised",
				p.SameDayBookingExemptAfter),
		}}
	case nights < 1:
		return 0, []Line{{Rule: RuleNoShowPenalty, Description: "no room-nights: no-show not penalised"}}
	}
	pts := -p.NoShowPenaltyPerNight * int64(nights)
	return pts, []Line{{
		Rule:        RuleNoShowPenalty,
		Description: fmt.Sprintf("no-show: %s not cancelled, %d points per room-night", plural(nights, "room-night"), p.NoShowPenaltyPerNight),
		Points:      pts,
	}}
}

// LateCheckoutCharge is what hours of late check-out cost a member of the
// given tier (the tier in force when the stay began), deducted at
// check-out: −hours × LateCheckoutPointsPerHour, or 0 points for a tier in
// FreeLateCheckoutTiers, with one "late_checkout" line either way. hours
// must be 1..MaxLateCheckoutHours (FieldError "hours"), free or not; an
// unknown tier is a FieldError "tier".
func (p Programme) LateCheckoutCharge(hours int, tier Tier) (points int64, lines []Line, err error) {
	if hours < 1 || hours > p.MaxLateCheckoutHours {
		return 0, nil, fieldErr("hours", "is %d, must be 1 to %d", hours, p.MaxLateCheckoutHours)
	}
	if !tier.known() {
		return 0, nil, fieldErr("tier", "unknown tier %q; want one of regular, silver, gold, platinum", tier)
	}
	if slices.Contains(p.FreeLateCheckoutTiers, tier) {
		return 0, []Line{{
			Rule:        RuleLateCheckout,
			Description: fmt.Sprintf("%s of late check-out, free for %s members", plural(hours, "hour"), tier),
		}}, nil
	}
	pts := -p.LateCheckoutPointsPerHour * int64(hours)
	return pts, []Line{{
		Rule:        RuleLateCheckout,
		Description: fmt.Sprintf("%s of late check-out, %d points per hour", plural(hours, "hour"), p.LateCheckoutPointsPerHour),
		Points:      pts,
	}}, nil
}

// RewardPrice is what quantity items of reward r cost. Like every result
// with Lines, points is the effect on the member's balance, so it is
// negative: −quantity × Rewards[r]. An unknown reward is a FieldError
// "reward"; quantity must be 1..MaxRewardQuantity (FieldError "quantity").
func (p Programme) RewardPrice(r Reward, quantity int) (int64, []Line, error) {
	price, ok := p.Rewards[r]
	if !ok {
		return 0, nil, fieldErr("reward", "%q is not in the rewards catalogue", r)
	}
	if quantity < 1 || quantity > p.MaxRewardQuantity {
		return 0, nil, fieldErr("quantity", "is %d, must be 1 to %d", quantity, p.MaxRewardQuantity)
	}
	pts := -price * int64(quantity)
	return pts, []Line{{
		Rule:        RuleReward,
		Description: fmt.Sprintf("%d × %s at %d points", quantity, r, price),
		Points:      pts,
	}}, nil
}

// AdoptedSuggestion is the award for a suggestion the chain adopted:
// +AdoptedSuggestionPoints.
func (p Programme) AdoptedSuggestion() (int64, []Line) {
	return p.AdoptedSuggestionPoints, []Line{{
		Rule:        RuleAdoptedSuggestion,
		Description: "suggestion adopted",
		Points:      p.AdoptedSuggestionPoints,
	}}
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
