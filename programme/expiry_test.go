package programme

import (
	"testing"
	"time"
)

func TestPointsAreGoodThroughTheDayTheirPeriodEnds(t *testing.T) {
	shanghai := mustLoad(t, "Asia/Shanghai")
	newYork := mustLoad(t, "America/New_York")
	at := func(loc *time.Location, y int, m time.Month, d, h, min int) time.Time {
		return time.Date(y, m, d, h, min, 0, 0, loc)
	}
	tests := []struct {
		name   string
		months int
		loc    *time.Location
		earned time.Time
		want   time.Time
	}{
		{"24 months after the local earning date, through the whole day", 24, shanghai,
			at(shanghai, 2026, 3, 15, 10, 0), at(shanghai, 2028, 3, 16, 0, 0)},
		{"the local date counts, not the UTC one (23:30 in Shanghai is 15:30 UTC the same day)", 24, shanghai,
			at(shanghai, 2026, 3, 15, 23, 30), at(shanghai, 2028, 3, 16, 0, 0)},
		{"00:30 in Shanghai is the previous day in UTC, and the next local day counts", 24, shanghai,
			at(shanghai, 2026, 3, 16, 0, 30), at(shanghai, 2028, 3, 17, 0, 0)},
		{"a day the target month lacks is its last day", 1, shanghai,
			at(shanghai, 2026, 3, 31, 12, 0), at(shanghai, 2026, 5, 1, 0, 0)},
		{"29 February of a leap year, 12 months on, is good through 28 February", 12, shanghai,
			at(shanghai, 2028, 2, 29, 12, 0), at(shanghai, 2029, 3, 1, 0, 0)},
		{"in a zone with daylight saving, midnight local is still the boundary", 6, newYork,
			at(newYork, 2026, 9, 10, 12, 0), at(newYork, 2027, 3, 11, 0, 0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ExpiryRules{Rule: ExpiryLotAge, Months: tc.months}
			if got := r.PointsExpireAt(tc.earned, tc.loc); !got.Equal(tc.want) {
				t.Errorf("expire at %s, want %s", got.In(tc.loc), tc.want)
			}
		})
	}
}

func TestLotPolicyByRule(t *testing.T) {
	shanghai := mustLoad(t, "Asia/Shanghai")
	at := time.Date(2026, 3, 15, 10, 0, 0, 0, shanghai)
	expires := time.Date(2028, 3, 16, 0, 0, 0, 0, shanghai)
	tests := []struct {
		name       string
		rule       string
		activity   bool
		wantExtend bool
	}{
		{"inactivity: earning or redeeming extends every lot", ExpiryInactivity, true, true},
		{"inactivity: a penalty or an expiry is no activity", ExpiryInactivity, false, false},
		{"lot age: nothing extends a lot", ExpiryLotAge, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := ExpiryRules{Rule: tc.rule, Months: 24}.LotPolicy(at, shanghai, tc.activity)
			if !p.ExpiresAt.Equal(expires) {
				t.Errorf("new lot expires %s, want %s", p.ExpiresAt, expires)
			}
			if got := !p.ExtendTo.IsZero(); got != tc.wantExtend {
				t.Errorf("extends: %v, want %v", got, tc.wantExtend)
			}
		})
	}
}

func TestExpiryRulesValidate(t *testing.T) {
	for _, tc := range []struct {
		rules ExpiryRules
		field string
	}{
		{ExpiryRules{Rule: "never", Months: 24}, "expiry.rule"},
		{ExpiryRules{Rule: ExpiryLotAge, Months: 0}, "expiry.months"},
		{ExpiryRules{Rule: ExpiryLotAge, Months: MaxExpiryMonths + 1}, "expiry.months"},
	} {
		p := Default()
		p.Expiry = tc.rules
		err := p.Validate()
		fe, ok := err.(*FieldError)
		if !ok || fe.Field != tc.field {
			t.Errorf("%+v: got %v, want a field error on %s", tc.rules, err, tc.field)
		}
	}
}
