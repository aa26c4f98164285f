package apikeys

import (
	"crypto/sha256"
	"sync"
	"time"
)

// TrustFor is how long a server goes on accepting a key it has read
// without reading it again. Every call used to read its key: a database
// round trip per request, about a tenth of the service's CPU at its peak.
const TrustFor = time.Second

// revocationWait is how long Revoke waits after its commit: TrustFor, and
// a margin for servers whose clocks tick at slightly different rates and
// for a read stamped a little early.
const revocationWait = TrustFor + 100*time.Millisecond

// maxTrusted bounds the keys a server remembers (an installation has a
// few hundred: booking channels, partners, finance, admins).
const maxTrusted = 10_000

// trustCache is the keys a server has read recently, by secret hash. Times
// are the machine's (monotonic) clock, not the injected business clock:
// the bound is real time, the time Revoke waits.
type trustCache struct {
	mu    sync.Mutex
	limit int
	keys  map[[sha256.Size]byte]trustedKey
}

type trustedKey struct {
	key    Key
	readAt time.Time
}

// get returns the key if it was read less than TrustFor before now.
func (c *trustCache) get(hash [sha256.Size]byte, now time.Time) (Key, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.keys[hash]
	if !ok || now.Sub(t.readAt) >= TrustFor {
		return Key{}, false
	}
	return t.key, true
}

// put remembers a key read at readAt. When full it forgets what has run
// out, and everything if nothing has.
func (c *trustCache) put(hash [sha256.Size]byte, k Key, readAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = map[[sha256.Size]byte]trustedKey{}
	}
	if _, ok := c.keys[hash]; !ok && len(c.keys) >= c.limit {
		for h, t := range c.keys {
			if readAt.Sub(t.readAt) >= TrustFor {
				delete(c.keys, h)
			}
		}
		if len(c.keys) >= c.limit {
			clear(c.keys)
		}
	}
	c.keys[hash] = trustedKey{key: k, readAt: readAt}
}
