package partners

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/programme"
)

// The version in force at a time is the latest started by then; before
// the oldest remembered, the cache cannot say.
func TestTheRememberedVersionInForceIsTheLatestStarted(t *testing.T) {
	v := func(n int, at time.Time) Rates {
		return Rates{Version: n, EffectiveAt: at, Card: RateCard{TierMultiplier: map[programme.Tier]decimal.Decimal{programme.TierRegular: decimal.NewFromInt(1)}}}
	}
	t0 := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	e := trustedPartner{rates: []Rates{v(3, t0), v(4, t0.Add(time.Hour)), v(5, t0.Add(2*time.Hour))}}
	for _, tc := range []struct {
		name    string
		at      time.Time
		version int // 0: not remembered
	}{
		{"before the oldest remembered", t0.Add(-time.Microsecond), 0},
		{"at the oldest's start", t0, 3},
		{"just before the next", t0.Add(time.Hour - time.Microsecond), 3},
		{"at the next's start", t0.Add(time.Hour), 4},
		{"long after the newest", t0.AddDate(1, 0, 0), 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := e.ratesAt(tc.at)
			if ok != (tc.version != 0) || r.Version != tc.version {
				t.Errorf("version %d, %v; want %d", r.Version, ok, tc.version)
			}
		})
	}
	if _, ok := (trustedPartner{}).ratesAt(t0); ok {
		t.Error("a partner without rates remembered has rates")
	}
	r, _ := e.ratesAt(t0)
	r.Card.TierMultiplier[programme.TierRegular] = decimal.NewFromInt(1000)
	if again, _ := e.ratesAt(t0); !again.Card.TierMultiplier[programme.TierRegular].Equal(decimal.NewFromInt(1)) {
		t.Error("a caller's change to the rate card it was given changed the cache")
	}
}
