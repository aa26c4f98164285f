package trust

import (
	"testing"
	"time"
)

const ttl = time.Second

// someMachineTime stands for a reading of the machine's clock: the cache
// only subtracts its times.
var someMachineTime = time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)

func TestTheCacheStaysWithinItsLimit(t *testing.T) {
	c := New[string, string](ttl, 2)
	t0 := someMachineTime
	put := func(k string, readAt time.Time) { c.Put(k, k, readAt, c.Begin()) }
	put("a", t0)
	put("b", t0.Add(ttl/2))
	// Full: a has run out by now and makes room; b stays.
	put("d", t0.Add(ttl))
	if _, ok := c.Get("a", t0.Add(ttl)); ok {
		t.Error("an entry read ttl ago is still trusted")
	}
	if v, ok := c.Get("b", t0.Add(ttl)); !ok || v != "b" {
		t.Errorf("b, read ttl/2 ago: %v %v", v, ok)
	}
	if c.Len() != 2 {
		t.Errorf("%d entries remembered, limit 2", c.Len())
	}
	// Full of entries still trusted: everything is forgotten, then e kept.
	put("e", t0.Add(ttl))
	if c.Len() != 1 {
		t.Errorf("%d entries remembered after a full cache was cleared", c.Len())
	}
	if _, ok := c.Get("e", t0.Add(ttl)); !ok {
		t.Error("the entry put last is not trusted")
	}
}

// A read that began before a change was forgotten may have missed it: it
// is not remembered, and the forgotten entry is read again.
func TestAReadBegunBeforeAForgetIsNotRemembered(t *testing.T) {
	c := New[string, string](ttl, 10)
	c.Put("P", "active", someMachineTime, c.Begin())
	inFlight := c.Begin()
	c.Forget("P")
	if _, ok := c.Get("P", someMachineTime); ok {
		t.Error("a forgotten entry is still trusted")
	}
	c.Put("P", "active", someMachineTime, inFlight)
	if _, ok := c.Get("P", someMachineTime); ok {
		t.Error("a read begun before the forget was remembered")
	}
	c.Put("P", "suspended", someMachineTime, c.Begin())
	if v, ok := c.Get("P", someMachineTime); !ok || v != "suspended" {
		t.Errorf("a read begun after the forget: %v %v", v, ok)
	}
}
