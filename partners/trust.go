package partners

import (
	"context"
	"maps"
	"sort"
	"time"
)

// TrustFor is how long a process goes on using what it read of a partner
// (its status and its newest rate versions) without reading it again.
// Every write at a partner's hotels used to read them: a database round
// trip per request, 4.5% of the service's CPU under load.
const TrustFor = time.Second

// changeWait is how long SetStatus and SetRates wait after their commit:
// TrustFor, and a margin for machines whose clocks tick at slightly
// different rates and for a read stamped a little early.
const changeWait = TrustFor + 100*time.Millisecond

// maxTrusted bounds the partners a process remembers (an alliance has
// tens; List shows at most maxPartners).
const maxTrusted = maxPartners

// maxTrustedRates bounds the rate versions remembered of one partner: its
// newest. A write at a time before the oldest of them reads the database.
const maxTrustedRates = 64

// trustedPartner is one read of a partner: the partner without its rates,
// and its newest rate versions (at most maxTrustedRates), oldest first.
type trustedPartner struct {
	partner Partner
	rates   []Rates
}

// ratesAt is the remembered version in force at t; false when t is before
// the oldest remembered (an older version may be in force, or none). The
// card's multipliers are copied: the caller may not change the cache.
func (e trustedPartner) ratesAt(t time.Time) (Rates, bool) {
	// The first version starting after t; the one before it is in force.
	i := sort.Search(len(e.rates), func(i int) bool { return e.rates[i].EffectiveAt.After(t) })
	if i == 0 {
		return Rates{}, false
	}
	r := e.rates[i-1]
	r.Card.TierMultiplier = maps.Clone(r.Card.TierMultiplier)
	return r, true
}

// waitOutTrust waits until every process has stopped using what it read
// before a change that has committed.
func waitOutTrust(ctx context.Context) error {
	wait := time.NewTimer(changeWait)
	defer wait.Stop()
	select {
	case <-wait.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
