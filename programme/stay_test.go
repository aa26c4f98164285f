package programme

import (
	"slices"
	"strings"
	"testing"
)

type stayCase struct {
	name   string
	p      Programme // zero: Default()
	stay   Stay
	points int64
	lines  []rl
}

func runStayCases(t *testing.T, tests []stayCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p.Currency == "" {
				p = Default()
			}
			points, lines, err := p.StayPoints(tc.stay)
			if err != nil {
				t.Fatalf("StayPoints: %v", err)
			}
			if points != tc.points {
				t.Errorf("points = %d, want %d", points, tc.points)
			}
			if got := ruleLines(lines); !slices.Equal(got, tc.lines) {
				t.Errorf("lines = %+v, want %+v", got, tc.lines)
			}
			checkLines(t, points, lines)
		})
	}
}

func first(s Stay) Stay { s.FirstStay = true; return s }

// at places a stay at a property, arriving on a date.
func at(property, arrival string, s Stay) Stay {
	s.PropertyID, s.ArrivalDate = property, arrival
	return s
}

// withPromotions is the default programme with these promotions.
func withPromotions(ps ...Promotion) Programme {
	p := Default()
	p.Promotions = ps
	return p
}

// december doubles the points of nights in December 2026, everywhere.
var december = Promotion{ID: "double-points-2026-12", Name: "Double points in December", StartsOn: "2026-12-01", EndsOn: "2026-12-31", Multiplier: dec("1")}

func TestStayPointsFirstStay(t *testing.T) {
	two := Default()
	two.FirstStayMultiplier = dec("2")
	one := Default()
	one.FirstStayMultiplier = dec("1")
	runStayCases(t, []stayCase{
		{
			name: "first stay earns 1.5x, rounded down once per night", stay: first(stay(TierRegular, ChannelFrontDesk, "199.99", "199.99")),
			// 2 × floor(299.985) = 598; not 2 × floor(199 × 1.5) = 596, not floor(399.98 × 1.5) = 599
			points: 598, lines: []rl{{"stay_points", 398}, {"first_stay_bonus", 200}},
		},
		{
			name: "a stay that is not the first earns no first-stay bonus", stay: stay(TierRegular, ChannelFrontDesk, "199.99", "199.99"),
			points: 398, lines: []rl{{"stay_points", 398}},
		},
		{
			name: "first stay of a gold member: 1.5x on top of 1.2x, rounded down once", stay: first(stay(TierGold, ChannelFrontDesk, "388")),
			// floor(388 × 1.2 × 1.5) = floor(698.4) = 698; not floor(465 × 1.5) = 697
			points: 698, lines: []rl{{"stay_points", 388}, {"tier_bonus", 77}, {"first_stay_bonus", 233}},
		},
		{
			name: "first stay of a gold member booked directly: the senior bonus is the base again, not multiplied", stay: first(stay(TierGold, ChannelApp, "388")),
			points: 1086, lines: []rl{{"stay_points", 388}, {"tier_bonus", 77}, {"first_stay_bonus", 233}, {"direct_booking_bonus", 388}},
		},
		{
			name: "first stay booked for someone else: the first-stay bonus is halved too, odd total rounds down (389 to 194)", stay: forOther(first(stay(TierRegular, ChannelFrontDesk, "259.34"))),
			// floor(259.34 × 1.5) = 389; floor(389 × 0.5) = 194
			points: 194, lines: []rl{{"stay_points", 259}, {"first_stay_bonus", 130}, {"booked_for_other", -195}},
		},
		{
			name: "first stay booked directly: the regular direct bonus is not multiplied", stay: first(stay(TierRegular, ChannelApp, "100")),
			points: 227, lines: []rl{{"stay_points", 100}, {"first_stay_bonus", 50}, {"direct_booking_bonus", 77}},
		},
		{
			name: "first stay: extension nights still earn nothing", stay: first(stay(TierRegular, ChannelFrontDesk, "100", "+100")),
			points: 150, lines: []rl{{"stay_points", 100}, {"first_stay_bonus", 50}, {"unbooked_extension", 0}},
		},
		{
			name: "first stay of only extension nights earns nothing", stay: first(stay(TierRegular, ChannelFrontDesk, "+100")),
			points: 0, lines: []rl{{"unbooked_extension", 0}},
		},
		{
			name: "first stay multiplier is a setting", p: two, stay: first(stay(TierRegular, ChannelFrontDesk, "100.99")),
			points: 201, lines: []rl{{"stay_points", 100}, {"first_stay_bonus", 101}}, // floor(201.98)
		},
		{
			name: "first stay multiplier 1 is no bonus and no line", p: one, stay: first(stay(TierRegular, ChannelFrontDesk, "100")),
			points: 100, lines: []rl{{"stay_points", 100}},
		},
	})
}

func TestStayPointsPromotions(t *testing.T) {
	shanghai := december
	shanghai.ID, shanghai.Properties = "shanghai-double", []string{"SHA-001", "SHA-002"}
	appOnly := december
	appOnly.ID, appOnly.Channels = "app-double", []Channel{ChannelApp, ChannelWeb}
	halfAndBonus := december
	halfAndBonus.ID, halfAndBonus.Multiplier, halfAndBonus.BonusPoints = "half-and-200", dec("0.5"), 200
	bonusOnly := Promotion{ID: "winter-bonus", Name: "Winter welcome", StartsOn: "2026-12-20", EndsOn: "2027-02-28", BonusPoints: 300}
	zz := Promotion{ID: "zz-last", Name: "Last", StartsOn: "2026-12-01", EndsOn: "2026-12-31", BonusPoints: 10}
	aa := Promotion{ID: "aa-first", Name: "First", StartsOn: "2026-12-01", EndsOn: "2026-12-31", BonusPoints: 20}
	mm := Promotion{ID: "mm-middle", Name: "Middle", StartsOn: "2026-12-01", EndsOn: "2026-12-31", Multiplier: dec("0.1")}

	dbl := withPromotions(december)
	runStayCases(t, []stayCase{
		{
			name: "promotion: a night on the first day of the window qualifies", p: dbl,
			stay:   at("SHA-001", "2026-12-01", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 200, lines: []rl{{"stay_points", 100}, {"promotion:double-points-2026-12", 100}},
		},
		{
			name: "promotion: a night on the last day of the window qualifies", p: dbl,
			stay:   at("SHA-001", "2026-12-31", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 200, lines: []rl{{"stay_points", 100}, {"promotion:double-points-2026-12", 100}},
		},
		{
			name: "promotion: a night the day before the window does not qualify", p: dbl,
			stay:   at("SHA-001", "2026-11-30", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 100, lines: []rl{{"stay_points", 100}},
		},
		{
			name: "promotion: a night the day after the window does not qualify", p: dbl,
			stay:   at("SHA-001", "2027-01-01", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 100, lines: []rl{{"stay_points", 100}},
		},
		{
			name: "promotion: a stay across the start earns it only for the nights in the window", p: dbl,
			stay:   at("SHA-001", "2026-11-29", stay(TierRegular, ChannelFrontDesk, "100", "110", "120")), // 11-29, 11-30, 12-01
			points: 450, lines: []rl{{"stay_points", 330}, {"promotion:double-points-2026-12", 120}},
		},
		{
			name: "promotion: a stay across the end earns it only for the nights in the window", p: dbl,
			stay:   at("SHA-001", "2026-12-30", stay(TierRegular, ChannelFrontDesk, "100", "110", "120")), // 12-30, 12-31, 01-01
			points: 540, lines: []rl{{"stay_points", 330}, {"promotion:double-points-2026-12", 210}},
		},
		{
			name: "promotion: unbooked extension nights do not qualify", p: dbl,
			stay:   at("SHA-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "100", "+100")),
			points: 200, lines: []rl{{"stay_points", 100}, {"unbooked_extension", 0}, {"promotion:double-points-2026-12", 100}},
		},
		{
			name: "promotion property filter: a stay at a listed property qualifies", p: withPromotions(shanghai),
			stay:   at("SHA-002", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 200, lines: []rl{{"stay_points", 100}, {"promotion:shanghai-double", 100}},
		},
		{
			name: "promotion property filter: a stay at another property does not qualify", p: withPromotions(shanghai),
			stay:   at("PEK-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 100, lines: []rl{{"stay_points", 100}},
		},
		{
			name: "promotion channel filter: a stay booked on a listed channel qualifies", p: withPromotions(appOnly),
			stay:   at("SHA-001", "2026-12-05", stay(TierRegular, ChannelApp, "100")),
			points: 277, lines: []rl{{"stay_points", 100}, {"direct_booking_bonus", 77}, {"promotion:app-double", 100}},
		},
		{
			name: "promotion channel filter: a stay booked on another channel does not qualify", p: withPromotions(appOnly),
			stay:   at("SHA-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 100, lines: []rl{{"stay_points", 100}},
		},
		{
			name: "promotion multiplier and bonus: multiplier rounded down per night on the base, bonus once per stay", p: withPromotions(halfAndBonus),
			stay: at("SHA-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "199", "199", "199")),
			// 3 × floor(99.5) + 200 = 497; not floor(597 × 0.5) + 200 = 498
			points: 1094, lines: []rl{{"stay_points", 597}, {"promotion:half-and-200", 497}},
		},
		{
			name: "promotion bonus only: once per stay however many nights qualify", p: withPromotions(bonusOnly),
			stay:   at("SHA-001", "2026-12-19", stay(TierRegular, ChannelFrontDesk, "100", "100", "100")), // 12-20 and 12-21 qualify
			points: 600, lines: []rl{{"stay_points", 300}, {"promotion:winter-bonus", 300}},
		},
		{
			name: "promotions stack: each is computed on the base, neither multiplies the other", p: withPromotions(december, bonusOnly),
			stay:   at("SHA-001", "2026-12-20", stay(TierRegular, ChannelFrontDesk, "100", "100")),
			points: 700, lines: []rl{{"stay_points", 200}, {"promotion:double-points-2026-12", 200}, {"promotion:winter-bonus", 300}},
		},
		{
			name: "promotion lines are in the order of the promotions' IDs, not of the programme", p: withPromotions(zz, mm, aa),
			stay:   at("SHA-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "100")),
			points: 140, lines: []rl{{"stay_points", 100}, {"promotion:aa-first", 20}, {"promotion:mm-middle", 10}, {"promotion:zz-last", 10}},
		},
		{
			name: "promotion points are not halved when booked for someone else", p: dbl,
			stay:   forOther(at("SHA-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "389"))),
			points: 583, lines: []rl{{"stay_points", 389}, {"booked_for_other", -195}, {"promotion:double-points-2026-12", 389}},
		},
		{
			name: "promotion points are not multiplied by the tier", p: dbl,
			stay:   at("SHA-001", "2026-12-05", stay(TierGold, ChannelFrontDesk, "388")),
			points: 853, lines: []rl{{"stay_points", 388}, {"tier_bonus", 77}, {"promotion:double-points-2026-12", 388}},
		},
		{
			name: "promotion points are not multiplied by the first-stay multiplier", p: dbl,
			stay:   first(at("SHA-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "100"))),
			points: 250, lines: []rl{{"stay_points", 100}, {"first_stay_bonus", 50}, {"promotion:double-points-2026-12", 100}},
		},
		{
			name: "promotion does not multiply the senior direct-booking bonus", p: dbl,
			stay:   at("SHA-001", "2026-12-05", stay(TierPlatinum, ChannelWeb, "200")),
			points: 700, lines: []rl{{"stay_points", 200}, {"tier_bonus", 100}, {"direct_booking_bonus", 200}, {"promotion:double-points-2026-12", 200}},
		},
		{
			name: "promotion with a qualifying night at zero charge still pays its bonus", p: withPromotions(halfAndBonus),
			stay:   at("SHA-001", "2026-12-05", stay(TierRegular, ChannelFrontDesk, "0")),
			points: 200, lines: []rl{{"stay_points", 0}, {"promotion:half-and-200", 200}},
		},
		{
			name: "promotion: a stay of only extension nights qualifies for nothing", p: withPromotions(bonusOnly),
			stay:   at("SHA-001", "2026-12-20", stay(TierRegular, ChannelFrontDesk, "+100")),
			points: 0, lines: []rl{{"unbooked_extension", 0}},
		},
	})
}

func TestStayPointsPromotionDescription(t *testing.T) {
	p := withPromotions(Promotion{ID: "half-and-200", Name: "Half again", StartsOn: "2026-12-01", EndsOn: "2026-12-31", Multiplier: dec("0.5"), BonusPoints: 200})
	_, lines, err := p.StayPoints(at("SHA-001", "2026-11-30", stay(TierRegular, ChannelFrontDesk, "199", "199", "199")))
	if err != nil {
		t.Fatal(err)
	}
	l := lines[len(lines)-1]
	for _, w := range []string{`"Half again"`, "2026-12-01 to 2026-12-31", "2 of 3 earning nights", "× 0.5", "(198)", "200 bonus points per stay", "not halved"} {
		if !strings.Contains(l.Description, w) {
			t.Errorf("promotion line %q does not say %q", l.Description, w)
		}
	}
	_, lines, err = Default().StayPoints(forOther(first(stay(TierGold, ChannelFrontDesk, "388"))))
	if err != nil {
		t.Fatal(err)
	}
	if l := lines[2]; l.Rule != RuleFirstStayBonus || !strings.Contains(l.Description, "first stay") || !strings.Contains(l.Description, "× 1.5") {
		t.Errorf("first-stay line = %+v", l)
	}
}

func TestStayPointsPromotionErrors(t *testing.T) {
	badStart := withPromotions(december)
	badStart.Promotions[0].StartsOn = "2026-12"
	badEnd := withPromotions(bonus(), december)
	badEnd.Promotions[1].EndsOn = ""
	noFirst := Default()
	noFirst.FirstStayMultiplier = dec("0")
	tests := []struct {
		name  string
		p     Programme
		stay  Stay
		field string
	}{
		{name: "with promotions in play the arrival date is required", p: withPromotions(december), stay: stay(TierRegular, ChannelWeb, "100"), field: "arrival_date"},
		{name: "with promotions in play the arrival date must be a date", p: withPromotions(december), stay: at("SHA-001", "2026-12-32", stay(TierRegular, ChannelWeb, "100")), field: "arrival_date"},
		{name: "an arrival date given without promotions must be a date too", stay: at("SHA-001", "05/12/2026", stay(TierRegular, ChannelWeb, "100")), field: "arrival_date"},
		{name: "a promotion start that is not a date is refused (unvalidated programme)", p: badStart, stay: at("SHA-001", "2026-12-05", stay(TierRegular, ChannelWeb, "100")), field: "promotions[0].starts_on"},
		{name: "a promotion end that is not a date is refused (unvalidated programme)", p: badEnd, stay: at("SHA-001", "2026-12-05", stay(TierRegular, ChannelWeb, "100")), field: "promotions[1].ends_on"},
		{name: "a first stay under a first-stay multiplier below 1 is refused (unvalidated programme)", p: noFirst, stay: first(stay(TierRegular, ChannelWeb, "100")), field: "first_stay_multiplier"},
		{name: "promotion points too large to count are refused", p: withPromotions(Promotion{ID: "huge", Name: "Huge", StartsOn: "2026-01-01", EndsOn: "2026-12-31", BonusPoints: 1<<63 - 1}), stay: at("SHA-001", "2026-12-05", stay(TierRegular, ChannelWeb, "100")), field: "nights"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p.Currency == "" {
				p = Default()
			}
			points, lines, err := p.StayPoints(tc.stay)
			wantFieldError(t, err, tc.field)
			if points != 0 || lines != nil {
				t.Errorf("on error got points %d, lines %+v; want 0, nil", points, lines)
			}
		})
	}
	// A first stay under such a programme is refused; a later stay is not.
	if _, _, err := noFirst.StayPoints(stay(TierRegular, ChannelWeb, "100")); err != nil {
		t.Errorf("a stay that is not the first: %v", err)
	}
}

func bonus() Promotion {
	return Promotion{ID: "a-bonus", Name: "Bonus", StartsOn: "2026-01-01", EndsOn: "2026-12-31", BonusPoints: 50}
}

func TestPromotionRule(t *testing.T) {
	if got := PromotionRule("double-points-2026-12"); got != "promotion:double-points-2026-12" {
		t.Errorf("PromotionRule = %q", got)
	}
}
