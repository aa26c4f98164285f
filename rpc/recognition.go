package rpc

import (
	"fmt"
	"math"
	"sync"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/time/rate"
)

// A partner recognises a member by number and family name (GetMemberStatus,
// AwardStay, Redeem). Each failure tells the partner that a guess was
// wrong: without a bound, a partner's key could try the common family
// names against every member number and learn who the members are. A front
// desk mistypes a few times an hour; a partner that fails more than the
// burst is refused every recognition, right or wrong (so that a refusal
// confirms nothing), until the bucket refills.

// RecognitionLimit bounds each partner's failed recognitions in one
// process: Burst failures, then one more per Every.
type RecognitionLimit struct {
	Burst int
	Every time.Duration
}

// DefaultRecognitionLimit: 60 failures, then one every 10 s (360 an hour).
var DefaultRecognitionLimit = RecognitionLimit{Burst: 60, Every: 10 * time.Second}

// maxGuardedPartners bounds the buckets kept (a few hundred bytes each);
// partners are far fewer. Past it the buckets start full again.
const maxGuardedPartners = 10_000

// recognitionGuard holds a token bucket of failures per partner.
type recognitionGuard struct {
	limit    RecognitionLimit
	mu       sync.Mutex
	partners map[string]*rate.Limiter
}

func newRecognitionGuard(limit RecognitionLimit) *recognitionGuard {
	if limit.Burst <= 0 || limit.Every <= 0 {
		limit = DefaultRecognitionLimit
	}
	return &recognitionGuard{limit: limit, partners: map[string]*rate.Limiter{}}
}

func (g *recognitionGuard) bucket(partnerID string) *rate.Limiter {
	g.mu.Lock()
	defer g.mu.Unlock()
	l, ok := g.partners[partnerID]
	if !ok {
		if len(g.partners) >= maxGuardedPartners {
			clear(g.partners)
		}
		l = rate.NewLimiter(rate.Every(g.limit.Every), g.limit.Burst)
		g.partners[partnerID] = l
	}
	return l
}

// check refuses a recognition by a partner that has failed too often:
// RESOURCE_EXHAUSTED, saying when to try again.
func (g *recognitionGuard) check(partnerID string, now time.Time) error {
	tokens := g.bucket(partnerID).TokensAt(now)
	if tokens >= 1 {
		return nil
	}
	wait := time.Duration(math.Ceil((1-tokens)*g.limit.Every.Seconds())) * time.Second
	retryAt := now.Add(wait).UTC().Format(time.RFC3339)
	e := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
		"this partner named too many members wrongly (member_number and family_name did not match %d times, then more than one every %s): "+
			"no member is recognised for it until %s; check the names your system sends",
		g.limit.Burst, g.limit.Every, retryAt))
	addInfo(e, "TOO_MANY_FAILED_RECOGNITIONS", map[string]string{"retry_at": retryAt})
	return e
}

// failed counts a recognition that did not match.
func (g *recognitionGuard) failed(partnerID string, now time.Time) {
	g.bucket(partnerID).AllowN(now, 1)
}
