// Package trust remembers, for a bounded time, what a process read of a
// thing that every request asks about and that rarely changes (an API key,
// a partner), so that a request need not read it again. Whoever changes
// such a thing waits out the time after its commit before it answers
// (apikeys.Revoke, partners.SetStatus): by then no process still uses its
// old read.
//
// Times are the machine's (monotonic) clock, not a business clock: the
// bound is real time, the time the changer waits.
package trust

import (
	"sync"
	"time"
)

// Cache is what a process read recently, by key: at most limit entries,
// each trusted for ttl after it was read.
type Cache[K comparable, V any] struct {
	mu    sync.Mutex
	ttl   time.Duration
	limit int
	// generation counts the keys forgotten: a read begun before a forget
	// may have missed the change, so it is not remembered.
	generation uint64
	entries    map[K]entry[V]
}

type entry[V any] struct {
	value  V
	readAt time.Time
}

// New returns a cache of at most limit entries trusted for ttl each.
func New[K comparable, V any](ttl time.Duration, limit int) *Cache[K, V] {
	return &Cache[K, V]{ttl: ttl, limit: limit, entries: map[K]entry[V]{}}
}

// Get returns what was read of k less than ttl before now.
func (c *Cache[K, V]) Get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || now.Sub(e.readAt) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.value, true
}

// Begin is called before a read; its answer goes to Put with the read's
// result.
func (c *Cache[K, V]) Begin() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// Put remembers v, read of k at readAt (stamped before the read was sent)
// by a read begun at generation, unless a key has been forgotten since.
// When full it forgets what has run out, and everything if nothing has.
func (c *Cache[K, V]) Put(k K, v V, readAt time.Time, generation uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if generation != c.generation {
		return
	}
	if _, ok := c.entries[k]; !ok && len(c.entries) >= c.limit {
		for old, e := range c.entries {
			if readAt.Sub(e.readAt) >= c.ttl {
				delete(c.entries, old)
			}
		}
		if len(c.entries) >= c.limit {
			clear(c.entries)
		}
	}
	c.entries[k] = entry[V]{value: v, readAt: readAt}
}

// Forget drops what was read of k, and keeps reads in flight from putting
// it back: the process that changes a thing sees the change at once.
func (c *Cache[K, V]) Forget(k K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.generation++
	delete(c.entries, k)
}

// Len is how many entries the cache holds.
func (c *Cache[K, V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
