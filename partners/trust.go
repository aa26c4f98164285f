package partners

import (
	"context"
	"maps"
	"sort"
	"sync"
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

// trustCache is the partners a process has read recently, by id. Times are
// the machine's (monotonic) clock, not the injected business clock: the
// bound is real time, the time SetStatus and SetRates wait.
type trustCache struct {
	mu    sync.Mutex
	limit int
	// generation counts the forgotten partners: a read begun before a
	// forget may have missed the change, so it is not remembered.
	generation uint64
	partners   map[string]trustedPartner
}

// trustedPartner is one read of a partner: the partner without its rates,
// and its newest rate versions (at most maxTrustedRates), oldest first.
type trustedPartner struct {
	partner Partner
	rates   []Rates
	readAt  time.Time
}

// get returns what was read of the partner less than TrustFor before now.
func (c *trustCache) get(partnerID string, now time.Time) (trustedPartner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.partners[partnerID]
	if !ok || now.Sub(e.readAt) >= TrustFor {
		return trustedPartner{}, false
	}
	return e, true
}

// begin is called before a read, and its answer passed to put with the
// read's result.
func (c *trustCache) begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// put remembers a read begun at generation, unless a partner has been
// forgotten since. When full it forgets what has run out, and everything
// if nothing has.
func (c *trustCache) put(partnerID string, e trustedPartner, generation uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return
	}
	if c.partners == nil {
		c.partners = map[string]trustedPartner{}
	}
	if _, ok := c.partners[partnerID]; !ok && len(c.partners) >= c.limit {
		for id, old := range c.partners {
			if e.readAt.Sub(old.readAt) >= TrustFor {
				delete(c.partners, id)
			}
		}
		if len(c.partners) >= c.limit {
			clear(c.partners)
		}
	}
	c.partners[partnerID] = e
}

// forget drops what was read of a partner, and keeps reads in flight from
// putting it back: the process that changes a partner sees the change at
// once.
func (c *trustCache) forget(partnerID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	delete(c.partners, partnerID)
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
