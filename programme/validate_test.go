package programme

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	promo := func(id string) Promotion {
		return Promotion{ID: id, Name: "Promotion " + id, StartsOn: "2026-12-01", EndsOn: "2026-12-31", Multiplier: dec("1")}
	}
	three := func(p *Programme) { p.Promotions = []Promotion{promo("a"), promo("b"), promo("c")} }
	tests := []struct {
		name   string
		change func(*Programme)
		field  string // "" when valid
	}{
		{name: "the default programme is valid", change: func(*Programme) {}},
		{name: "a programme with promotions and free late check-out is valid", change: func(p *Programme) {
			three(p)
			p.Promotions[1].Properties = []string{"SHA-001", "PEK-002"}
			p.Promotions[1].Channels = []Channel{ChannelApp, ChannelWeb}
			p.FreeLateCheckoutTiers = []Tier{TierGold, TierPlatinum}
		}},
		{name: "nil promotions and free tiers are valid", change: func(p *Programme) { p.Promotions, p.FreeLateCheckoutTiers = nil, nil }},

		{name: "currency is 3 upper-case letters, not lower-case", change: func(p *Programme) { p.Currency = "cny" }, field: "currency"},
		{name: "currency is 3 letters, not 2", change: func(p *Programme) { p.Currency = "CN" }, field: "currency"},
		{name: "currency is required", change: func(p *Programme) { p.Currency = "" }, field: "currency"},
		{name: "currency decimal places are not negative", change: func(p *Programme) { p.CurrencyDecimalPlaces = -1 }, field: "currency_decimal_places"},
		{name: "currency decimal places are at most 8", change: func(p *Programme) { p.CurrencyDecimalPlaces = 9 }, field: "currency_decimal_places"},
		{name: "currency may have no decimal places", change: func(p *Programme) { p.Currency, p.CurrencyDecimalPlaces = "JPY", 0 }},
		{name: "the earning rate is not negative", change: func(p *Programme) { p.PointsPerCurrencyUnit = dec("-1") }, field: "points_per_currency_unit"},

		{name: "every tier has a multiplier", change: func(p *Programme) { delete(p.TierMultiplier, TierGold) }, field: "tier_multiplier.gold"},
		{name: "a tier multiplier is not negative", change: func(p *Programme) { p.TierMultiplier[TierPlatinum] = dec("-0.1") }, field: "tier_multiplier.platinum"},
		{name: "a tier multiplier of 0 is allowed", change: func(p *Programme) { p.TierMultiplier[TierRegular] = dec("0") }},
		{name: "a tier multiplier for an unknown tier is refused", change: func(p *Programme) { p.TierMultiplier["bronze"] = dec("1") }, field: "tier_multiplier.bronze"},
		{name: "a missing tier is reported lowest tier first", change: func(p *Programme) {
			delete(p.TierMultiplier, TierPlatinum)
			delete(p.TierMultiplier, TierSilver)
		}, field: "tier_multiplier.silver"},

		{name: "first-stay multiplier below 1 is refused", change: func(p *Programme) { p.FirstStayMultiplier = dec("0.9") }, field: "first_stay_multiplier"},
		{name: "first-stay multiplier left out (zero) is refused", change: func(p *Programme) { p.FirstStayMultiplier = dec("0") }, field: "first_stay_multiplier"},
		{name: "first-stay multiplier 1 turns the bonus off", change: func(p *Programme) { p.FirstStayMultiplier = dec("1") }},
		{name: "direct-booking bonus is not negative", change: func(p *Programme) { p.DirectBookingBonusPoints = -1 }, field: "direct_booking_bonus_points"},
		{name: "senior direct-booking multiplier is not negative", change: func(p *Programme) { p.SeniorDirectBookingExtraMultiplier = dec("-1") }, field: "senior_direct_booking_extra_multiplier"},
		{name: "booked-for-other factor is not negative", change: func(p *Programme) { p.BookedForOtherFactor = dec("-0.5") }, field: "booked_for_other_factor"},
		{name: "booked-for-other factor is at most 1", change: func(p *Programme) { p.BookedForOtherFactor = dec("1.5") }, field: "booked_for_other_factor"},

		{name: "no-show penalty is not negative", change: func(p *Programme) { p.NoShowPenaltyPerNight = -300 }, field: "no_show_penalty_per_night"},
		{name: "same-day exemption time is a time of day", change: func(p *Programme) { p.SameDayBookingExemptAfter = Clock{24, 0} }, field: "same_day_booking_exempt_after"},
		{name: "every tier has a free-cancellation time", change: func(p *Programme) { delete(p.FreeCancellationUntil, TierSilver) }, field: "free_cancellation_until.silver"},
		{name: "a free-cancellation time is a time of day", change: func(p *Programme) { p.FreeCancellationUntil[TierGold] = Clock{19, 60} }, field: "free_cancellation_until.gold"},
		{name: "a free-cancellation time for an unknown tier is refused", change: func(p *Programme) { p.FreeCancellationUntil["bronze"] = Clock{18, 0} }, field: "free_cancellation_until.bronze"},
		{name: "the normal hold time is a time of day", change: func(p *Programme) { p.GuaranteeNormalHoldUntil = Clock{-1, 0} }, field: "guarantee_normal_hold_until"},
		{name: "the latest guarantee time is a time of day", change: func(p *Programme) { p.GuaranteeLatest = Clock{23, 99} }, field: "guarantee_latest"},
		{name: "the normal hold time is before the latest guarantee time", change: func(p *Programme) { p.GuaranteeNormalHoldUntil = Clock{23, 30} }, field: "guarantee_latest"},
		{name: "the normal hold time may not equal the latest guarantee time", change: func(p *Programme) { p.GuaranteeLatest = Clock{18, 0} }, field: "guarantee_latest"},
		{name: "a guarantee of one minute past the hold is allowed", change: func(p *Programme) { p.GuaranteeLatest = Clock{18, 1} }},
		{name: "guarantee points per hour are not negative", change: func(p *Programme) { p.GuaranteePointsPerHour = -1 }, field: "guarantee_points_per_hour"},
		{name: "late check-out points per hour are not negative", change: func(p *Programme) { p.LateCheckoutPointsPerHour = -1 }, field: "late_checkout_points_per_hour"},
		{name: "the late check-out limit is more than 0", change: func(p *Programme) { p.MaxLateCheckoutHours = 0 }, field: "max_late_checkout_hours"},
		{name: "free late check-out tiers are known tiers", change: func(p *Programme) { p.FreeLateCheckoutTiers = []Tier{TierGold, "bronze"} }, field: "free_late_checkout_tiers[1]"},
		{name: "free late check-out tiers are listed once", change: func(p *Programme) { p.FreeLateCheckoutTiers = []Tier{TierGold, TierGold} }, field: "free_late_checkout_tiers[1]"},

		{name: "every reward price is more than 0", change: func(p *Programme) { p.Rewards[RewardFreeNight] = 0 }, field: "rewards.free_night"},
		{name: "a reward price is never negative", change: func(p *Programme) { p.Rewards[RewardTravelKit] = -400 }, field: "rewards.travel_kit"},
		{name: "a reward name fits an account code", change: func(p *Programme) { p.Rewards["Spa Day"] = 3000 }, field: "rewards.Spa Day"},
		{name: "a reward name is not empty", change: func(p *Programme) { p.Rewards[""] = 3000 }, field: "rewards."},
		{name: "a new reward may be added", change: func(p *Programme) { p.Rewards["spa_day"] = 3000 }},
		{name: "the reward quantity limit is more than 0", change: func(p *Programme) { p.MaxRewardQuantity = 0 }, field: "max_reward_quantity"},
		{name: "adopted-suggestion points are not negative", change: func(p *Programme) { p.AdoptedSuggestionPoints = -50 }, field: "adopted_suggestion_points"},
		{name: "the time zone is required", change: func(p *Programme) { p.TimeZone = "" }, field: "time_zone"},
		{name: "the time zone is not blank", change: func(p *Programme) { p.TimeZone = "  " }, field: "time_zone"},
		{name: "the time zone is a known IANA zone", change: func(p *Programme) { p.TimeZone = "Mars/Olympus" }, field: "time_zone"},
		{name: "a higher tier needs at least the points of the tier beneath", change: func(p *Programme) {
			p.TierRules.Thresholds[1].Points = p.TierRules.Thresholds[0].Points - 1
		}, field: "tier_rules.thresholds[1].points"},
		{name: "a higher tier needs at least the nights of the tier beneath", change: func(p *Programme) {
			p.TierRules.Thresholds[1].Nights = p.TierRules.Thresholds[0].Nights - 1
		}, field: "tier_rules.thresholds[1].nights"},
		{name: "a higher tier may ask as much as the tier beneath", change: func(p *Programme) {
			p.TierRules.Thresholds[1].Nights, p.TierRules.Thresholds[1].Points = p.TierRules.Thresholds[0].Nights, p.TierRules.Thresholds[0].Points
		}},
		{name: "the nights limit is more than 0", change: func(p *Programme) { p.MaxNightsPerStay = -1 }, field: "max_nights_per_stay"},

		{name: "promotion multiplier is not negative, reported at its index", change: func(p *Programme) { three(p); p.Promotions[2].Multiplier = dec("-1") }, field: "promotions[2].multiplier"},
		{name: "promotion id is required", change: func(p *Programme) { three(p); p.Promotions[0].ID = "" }, field: "promotions[0].id"},
		{name: "promotion id is lower-case", change: func(p *Programme) { three(p); p.Promotions[1].ID = "Double" }, field: "promotions[1].id"},
		{name: "promotion id has no underscore or space", change: func(p *Programme) { three(p); p.Promotions[1].ID = "double points" }, field: "promotions[1].id"},
		{name: "promotion id is at most 64 characters", change: func(p *Programme) { three(p); p.Promotions[0].ID = strings.Repeat("a", 65) }, field: "promotions[0].id"},
		{name: "promotion id of 64 characters is allowed", change: func(p *Programme) { three(p); p.Promotions[0].ID = strings.Repeat("a", 64) }},
		{name: "promotion ids are unique", change: func(p *Programme) { three(p); p.Promotions[2].ID = "a" }, field: "promotions[2].id"},
		{name: "promotion name is required", change: func(p *Programme) { three(p); p.Promotions[0].Name = " " }, field: "promotions[0].name"},
		{name: "promotion start is a date", change: func(p *Programme) { three(p); p.Promotions[0].StartsOn = "2026-02-30" }, field: "promotions[0].starts_on"},
		{name: "promotion start is required", change: func(p *Programme) { three(p); p.Promotions[0].StartsOn = "" }, field: "promotions[0].starts_on"},
		{name: "promotion end is a date", change: func(p *Programme) { three(p); p.Promotions[0].EndsOn = "2026-12-31T23:59" }, field: "promotions[0].ends_on"},
		{name: "promotion ends on or after it starts", change: func(p *Programme) { three(p); p.Promotions[1].EndsOn = "2026-11-30" }, field: "promotions[1].ends_on"},
		{name: "promotion of one day is allowed", change: func(p *Programme) { three(p); p.Promotions[1].EndsOn = "2026-12-01" }},
		{name: "promotion bonus points are not negative", change: func(p *Programme) { three(p); p.Promotions[0].BonusPoints = -1 }, field: "promotions[0].bonus_points"},
		{name: "promotion gives something: multiplier and bonus both 0 is refused", change: func(p *Programme) { three(p); p.Promotions[0].Multiplier = dec("0") }, field: "promotions[0].multiplier"},
		{name: "promotion with bonus points only is allowed", change: func(p *Programme) {
			three(p)
			p.Promotions[0].Multiplier, p.Promotions[0].BonusPoints = dec("0"), 100
		}},
		{name: "promotion channels are known", change: func(p *Programme) { three(p); p.Promotions[0].Channels = []Channel{ChannelApp, "fax"} }, field: "promotions[0].channels[1]"},
		{name: "promotion channels are listed once", change: func(p *Programme) { three(p); p.Promotions[0].Channels = []Channel{ChannelApp, ChannelApp} }, field: "promotions[0].channels[1]"},
		{name: "promotion properties are not empty", change: func(p *Programme) { three(p); p.Promotions[0].Properties = []string{""} }, field: "promotions[0].properties[0]"},
		{name: "promotion properties have no spaces", change: func(p *Programme) { three(p); p.Promotions[0].Properties = []string{"SHA-001", "SHA 002"} }, field: "promotions[0].properties[1]"},
		{name: "promotion properties are listed once", change: func(p *Programme) { three(p); p.Promotions[0].Properties = []string{"SHA-001", "SHA-001"} }, field: "promotions[0].properties[1]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Default()
			tc.change(&p)
			err := p.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			wantFieldError(t, err, tc.field)
		})
	}
}

func TestValidateReturnsUntypedNil(t *testing.T) {
	// A nil *FieldError in an error interface would not be == nil.
	if err := Default().Validate(); err != nil {
		t.Fatalf("Validate() = %#v", err)
	}
}
