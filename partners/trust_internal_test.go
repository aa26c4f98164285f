package partners

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/programme"
)

// someMachineTime stands for a reading of the machine's clock: the cache
// only subtracts its times.
var someMachineTime = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

func TestTheTrustCacheStaysWithinItsLimit(t *testing.T) {
	c := trustCache{limit: 2}
	t0 := someMachineTime
	put := func(id string, readAt time.Time) {
		c.put(id, trustedPartner{partner: Partner{ID: id}, readAt: readAt}, c.begin())
	}
	put("a", t0)
	put("b", t0.Add(TrustFor/2))
	// Full: a has run out by now and makes room; b stays.
	put("d", t0.Add(TrustFor))
	if _, ok := c.get("a", t0.Add(TrustFor)); ok {
		t.Error("a partner read TrustFor ago is still trusted")
	}
	if e, ok := c.get("b", t0.Add(TrustFor)); !ok || e.partner.ID != "b" {
		t.Errorf("b, read TrustFor/2 ago: %v %v", e, ok)
	}
	if len(c.partners) != 2 {
		t.Errorf("%d partners remembered, limit 2", len(c.partners))
	}
	// Full of partners still trusted: everything is forgotten, then e kept.
	put("e", t0.Add(TrustFor))
	if len(c.partners) != 1 {
		t.Errorf("%d partners remembered after a full cache was cleared", len(c.partners))
	}
	if _, ok := c.get("e", t0.Add(TrustFor)); !ok {
		t.Error("the partner put last is not trusted")
	}
}

// A read that began before a change was forgotten may have missed it: it
// is not remembered, and the forgotten partner is read again.
func TestAReadBegunBeforeAForgetIsNotRemembered(t *testing.T) {
	c := trustCache{limit: 10}
	c.put("P", trustedPartner{partner: Partner{ID: "P", Status: StatusActive}, readAt: someMachineTime}, c.begin())
	inFlight := c.begin()
	c.forget("P")
	if _, ok := c.get("P", someMachineTime); ok {
		t.Error("a forgotten partner is still trusted")
	}
	c.put("P", trustedPartner{partner: Partner{ID: "P", Status: StatusActive}, readAt: someMachineTime}, inFlight)
	if _, ok := c.get("P", someMachineTime); ok {
		t.Error("a read begun before the forget was remembered")
	}
	c.put("P", trustedPartner{partner: Partner{ID: "P", Status: StatusSuspended}, readAt: someMachineTime}, c.begin())
	if e, ok := c.get("P", someMachineTime); !ok || e.partner.Status != StatusSuspended {
		t.Errorf("a read begun after the forget: %v %v", e, ok)
	}
}

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
