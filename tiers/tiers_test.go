package tiers

import (
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/programme"
)

var asOf = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func stay(daysAgo, nights int, points int64) Stay {
	return Stay{CheckOut: asOf.AddDate(0, 0, -daysAgo), Nights: nights, Points: points}
}

func TestQualifyingActivityWindow(t *testing.T) {
	s := Default()
	cases := []struct {
		name   string
		stays  []Stay
		nights int
		points int64
	}{
		{"a stay today counts", []Stay{stay(0, 2, 500)}, 2, 500},
		{"a stay exactly 12 months ago counts", []Stay{{CheckOut: asOf.AddDate(-1, 0, 0), Nights: 3, Points: 900}}, 3, 900},
		{"a stay 12 months and 1 day ago does not", []Stay{{CheckOut: asOf.AddDate(-1, 0, -1), Nights: 3, Points: 900}}, 0, 0},
		{"a reversed stay no longer counts", []Stay{stay(10, 5, 1500), {CheckOut: asOf.AddDate(0, 0, -5), Nights: 4, Points: 1200, Reversed: true}}, 5, 1500},
		{"a stay after the day asked about does not count", []Stay{{CheckOut: asOf.Add(time.Hour), Nights: 1, Points: 100}}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := s.ActivityAt(tc.stays, asOf)
			if a.Nights != tc.nights || a.Points != tc.points {
				t.Fatalf("activity %+v, want %d nights and %d points", a, tc.nights, tc.points)
			}
		})
	}
	t.Run("a calendar-year window starts on 1 January", func(t *testing.T) {
		cy := Default()
		cy.Window = CalendarYear
		a := cy.ActivityAt([]Stay{{CheckOut: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Nights: 2, Points: 10},
			{CheckOut: time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC), Nights: 5, Points: 50}}, asOf)
		if a.Nights != 2 {
			t.Fatalf("calendar-year activity %+v", a)
		}
	})
}

func TestQualification(t *testing.T) {
	s := Default()
	cases := []struct {
		name       string
		nights     int
		points     int64
		everStayed bool
		want       programme.Tier
	}{
		{"a member who never stayed is regular", 0, 0, false, programme.TierRegular},
		{"the first completed stay makes silver", 1, 100, true, programme.TierSilver},
		{"10 nights reach gold exactly", 10, 0, true, programme.TierGold},
		{"9 nights are one short of gold", 9, 2999, true, programme.TierSilver},
		{"3,000 points reach gold exactly", 1, 3000, true, programme.TierGold},
		{"2,999 points are one short of gold", 1, 2999, true, programme.TierSilver},
		{"25 nights reach platinum", 25, 0, true, programme.TierPlatinum},
		{"8,000 points reach platinum", 3, 8000, true, programme.TierPlatinum},
		{"24 nights and 7,999 points stay gold", 24, 7999, true, programme.TierGold},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.Qualified(Activity{Nights: tc.nights, Points: tc.points}, tc.everStayed); got != tc.want {
				t.Fatalf("qualified %s, want %s", got, tc.want)
			}
		})
	}
}

func TestUpgradesAreImmediateDowngradesWaitForReview(t *testing.T) {
	s := Default()
	since := asOf.AddDate(0, -6, 0)
	gold := Member{Tier: programme.TierGold, Since: since, EverStayed: true}
	platinum := Member{Tier: programme.TierPlatinum, Since: asOf.AddDate(-1, 0, 0), EverStayed: true}
	none := Activity{}
	cases := []struct {
		name    string
		decide  func() Decision
		want    programme.Tier
		changed bool
	}{
		{"a stay reaching platinum upgrades at once", func() Decision {
			return s.OnActivity(gold, Activity{Nights: 25}, asOf)
		}, programme.TierPlatinum, true},
		{"a stay never downgrades", func() Decision { return s.OnActivity(gold, none, asOf) }, programme.TierGold, false},
		{"no downgrade before the review date", func() Decision { return s.Review(gold, none, asOf) }, programme.TierGold, false},
		{"a downgrade at the review date goes one step only", func() Decision {
			return s.Review(platinum, none, asOf)
		}, programme.TierGold, true},
		{"a member who requalifies keeps the tier at review", func() Decision {
			return s.Review(platinum, Activity{Nights: 30}, asOf)
		}, programme.TierPlatinum, false},
		{"a manual tier without an end holds against a downgrade", func() Decision {
			m := platinum
			m.Manual = &Manual{Tier: programme.TierPlatinum, Reason: "ambassador"}
			return s.Review(m, none, asOf)
		}, programme.TierPlatinum, false},
		{"a manual tier holds against an upgrade too", func() Decision {
			m := gold
			m.Manual = &Manual{Tier: programme.TierGold, Until: asOf.AddDate(0, 1, 0), Reason: "status match"}
			return s.OnActivity(m, Activity{Nights: 40}, asOf)
		}, programme.TierGold, false},
		{"a member who requalified at a review is next due a year later", func() Decision {
			m := platinum
			m.Since = asOf.AddDate(0, -13, 0)
			m.LastReview = asOf.AddDate(0, -1, 0) // reviewed at its anniversary, a month ago
			return s.Review(m, none, asOf)
		}, programme.TierPlatinum, false},
		{"after a manual tier ends the next review is 12 months on", func() Decision {
			m := platinum
			m.Manual = &Manual{Tier: programme.TierPlatinum, Until: asOf.AddDate(0, -1, 0), Reason: "status match"}
			return s.Review(m, none, asOf)
		}, programme.TierPlatinum, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.decide()
			if d.To != tc.want || d.Changed != tc.changed || d.Reason == "" {
				t.Fatalf("decision %+v, want %s (changed %v) with a reason", d, tc.want, tc.changed)
			}
		})
	}
}

func TestWhatTheNextTierNeeds(t *testing.T) {
	s := Default()
	next, nights, points, ok := s.Needed(programme.TierSilver, Activity{Nights: 4, Points: 3200})
	if !ok || next != programme.TierGold || nights != 6 || points != 0 {
		t.Fatalf("silver needs %s: %d nights or %d points (%v)", next, nights, points, ok)
	}
	if _, _, _, ok := s.Needed(programme.TierPlatinum, Activity{}); ok {
		t.Fatal("platinum is the top: nothing is needed")
	}
}

func TestTierSettingsComeFromTheProgramme(t *testing.T) {
	if got, want := FromProgramme(programme.Default()), Default(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the default programme's tier settings %+v, want %+v", got, want)
	}
	p := programme.Default()
	p.TierRules.Thresholds[0].Nights = 8
	p.TierRules.Window = "calendar_year"
	s := FromProgramme(p)
	if s.Qualified(Activity{Nights: 8}, true) != programme.TierGold || s.Window != CalendarYear {
		t.Fatalf("a programme with gold at 8 nights in a calendar year: %+v", s)
	}
	p.TierRules.Thresholds[1].Tier = programme.TierSilver
	if err := p.Validate(); err == nil {
		t.Fatal("thresholds out of ladder order must be refused")
	}
}

// TestDatesDoNotDependOnTheTimeZoneOfTheirInput: the window and the review
// date are counted in UTC, so a server in Shanghai or New York (whose
// clock and database answer in local time) finds the same ones as a
// server in UTC, across a leap day, a new year and a change to summer time.
func TestDatesDoNotDependOnTheTimeZoneOfTheirInput(t *testing.T) {
	newYork, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	zones := []*time.Location{time.FixedZone("Asia/Shanghai", 8*3600), newYork, time.FixedZone("UTC-12", -12*3600)}
	calendarYear := Default()
	calendarYear.Window = CalendarYear
	for _, tc := range []struct {
		name                  string
		at                    time.Time // in UTC
		windowStart           time.Time
		calendarYearStart     time.Time
		reviewDateOfTierSince time.Time
	}{
		// A year before or after 29 February is 1 March.
		{"a leap day's evening", time.Date(2024, 2, 29, 20, 0, 0, 0, time.UTC),
			time.Date(2023, 3, 1, 20, 0, 0, 0, time.UTC), time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2025, 3, 1, 20, 0, 0, 0, time.UTC)},
		{"new year's eve", time.Date(2026, 12, 31, 20, 0, 0, 0, time.UTC),
			time.Date(2025, 12, 31, 20, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2027, 12, 31, 20, 0, 0, 0, time.UTC)},
		{"the night New York moves to summer time", time.Date(2027, 3, 14, 6, 30, 0, 0, time.UTC),
			time.Date(2026, 3, 14, 6, 30, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2028, 3, 14, 6, 30, 0, 0, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, zone := range append(zones, time.UTC) {
				at := tc.at.In(zone)
				if got := Default().WindowStart(at); !got.Equal(tc.windowStart) {
					t.Errorf("in %s: 12-month window from %s, want %s", zone, got.UTC(), tc.windowStart)
				}
				if got := calendarYear.WindowStart(at); !got.Equal(tc.calendarYearStart) {
					t.Errorf("in %s: calendar-year window from %s, want %s", zone, got.UTC(), tc.calendarYearStart)
				}
				if got := Default().ReviewDate(Member{Tier: programme.TierGold, Since: at}); !got.Equal(tc.reviewDateOfTierSince) {
					t.Errorf("in %s: review date %s, want %s", zone, got.UTC(), tc.reviewDateOfTierSince)
				}
			}
		})
	}
}

// TestTheNextReviewIsTheFirstAnniversaryAfterTheLastReview: a member's
// review date is the anniversary (every ReviewMonths) of the tier taking
// effect, or of a manual tier ending; once a review has found the member
// due and left the tier as it was, it is the first anniversary after that
// review, so a member who kept the tier is next reviewed a year on, not
// again at the date just passed.
func TestTheNextReviewIsTheFirstAnniversaryAfterTheLastReview(t *testing.T) {
	since := time.Date(2025, 11, 3, 0, 0, 0, 0, time.UTC)
	shanghai := time.FixedZone("Asia/Shanghai", 8*3600)
	leapDay := time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name       string
		since      time.Time
		lastReview time.Time // zero: never reviewed
		manual     *Manual
		want       time.Time
	}{
		{"never reviewed: the first anniversary of the tier", since, time.Time{}, nil,
			time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"reviewed on the anniversary and kept: a year on", since, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC), nil,
			time.Date(2027, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"reviewed late (the job ran weeks after the anniversary): still the tier's anniversary a year on", since,
			time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC), nil, time.Date(2027, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"reviewed a microsecond before the anniversary: the anniversary is still to come", since,
			time.Date(2026, 11, 2, 23, 59, 59, 999999000, time.UTC), nil, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"a review written in Shanghai time is the same instant", since,
			time.Date(2026, 11, 3, 8, 0, 0, 0, shanghai), nil, time.Date(2027, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"reviews missed for years: the first anniversary after the last one", since,
			time.Date(2029, 1, 15, 0, 0, 0, 0, time.UTC), nil, time.Date(2029, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"a review before the current tier took effect does not count", since,
			time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), nil, time.Date(2026, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"a tier since a leap day, reviewed and kept: 1 March two years on", leapDay,
			time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC), nil, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"a manual tier that ended: its end's anniversary", since, time.Time{},
			&Manual{Tier: programme.TierGold, Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
			time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC)},
		{"a manual tier that ended, reviewed at its end's anniversary and kept: a year on", since,
			time.Date(2027, 2, 1, 0, 0, 0, 0, time.UTC),
			&Manual{Tier: programme.TierGold, Until: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)},
			time.Date(2028, 2, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := Member{Tier: programme.TierGold, Since: tc.since, EverStayed: true, Manual: tc.manual, LastReview: tc.lastReview}
			if got := Default().ReviewDate(m); !got.Equal(tc.want) {
				t.Fatalf("review date %s, want %s", got, tc.want)
			}
		})
	}
}
