package ledger

import (
	"sync"
	"sync/atomic"
)

// immutableCache keeps values that never change once committed (an
// account's settings, the account a hold is on), so that using them again
// costs no round trip. It is emptied whenever it would pass its limit: a
// programme of millions of members must not keep them all in memory, and
// what is in use comes back at its next read.
type immutableCache[K comparable, V any] struct {
	entries sync.Map // K -> V
	stored  atomic.Int64
	limit   int64
}

func (c *immutableCache[K, V]) load(k K) (V, bool) {
	v, ok := c.entries.Load(k)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}

func (c *immutableCache[K, V]) store(k K, v V) {
	if c.stored.Add(1) > c.limit {
		c.entries.Clear()
		c.stored.Store(1)
	}
	c.entries.Store(k, v)
}
