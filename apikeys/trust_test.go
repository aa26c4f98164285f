package apikeys

import (
	"crypto/sha256"
	"testing"
	"time"
)

func TestTheTrustCacheStaysWithinItsLimit(t *testing.T) {
	c := trustCache{limit: 2}
	t0 := time.Now()
	a, b, d := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b")), sha256.Sum256([]byte("d"))
	c.put(a, Key{ID: "a"}, t0)
	c.put(b, Key{ID: "b"}, t0.Add(TrustFor/2))
	// Full: a has run out by now and makes room; b stays.
	c.put(d, Key{ID: "d"}, t0.Add(TrustFor))
	if _, ok := c.get(a, t0.Add(TrustFor)); ok {
		t.Error("a key read TrustFor ago is still trusted")
	}
	if k, ok := c.get(b, t0.Add(TrustFor)); !ok || k.ID != "b" {
		t.Errorf("b, read TrustFor/2 ago: %v %v", k, ok)
	}
	if len(c.keys) != 2 {
		t.Errorf("%d keys remembered, limit 2", len(c.keys))
	}
	// Full of keys still trusted: everything is forgotten, then e kept.
	e := sha256.Sum256([]byte("e"))
	c.put(e, Key{ID: "e"}, t0.Add(TrustFor))
	if len(c.keys) != 1 {
		t.Errorf("%d keys remembered after a full cache was cleared", len(c.keys))
	}
	if _, ok := c.get(e, t0.Add(TrustFor)); !ok {
		t.Error("the key put last is not trusted")
	}
}
