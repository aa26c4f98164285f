package ledger

import (
	"math/rand/v2"
	"sync"
)

// shardLeases hands each in-flight transaction of this process a balance
// shard of every sharded account that no other in-flight transaction of
// this process is using. Two transactions on one row would serialise, and
// at SERIALIZABLE the second would abort when the first commits; with
// leases they never meet inside one process, and other processes start
// from other shards, so they rarely meet across processes either.
type shardLeases struct {
	pools sync.Map // account code -> chan int of free shards
}

// lease returns the shard each account's balance moves on, and a func
// that gives the shards back once the transaction has ended.
func (s *shardLeases) lease(accounts map[string]Account) (map[string]int, func()) {
	shards := make(map[string]int, len(accounts))
	var taken []func()
	for code, a := range accounts {
		if a.Shards <= 1 {
			shards[code] = 0
			continue
		}
		free := s.pool(a)
		select {
		case shard := <-free:
			shards[code] = shard
			taken = append(taken, func() { free <- shard })
		default:
			// More transactions in flight than shards: share one.
			shards[code] = rand.IntN(a.Shards)
		}
	}
	return shards, func() {
		for _, giveBack := range taken {
			giveBack()
		}
	}
}

func (s *shardLeases) pool(a Account) chan int {
	if p, ok := s.pools.Load(a.Code); ok {
		return p.(chan int)
	}
	free := make(chan int, a.Shards)
	for _, shard := range rand.Perm(a.Shards) {
		free <- shard
	}
	p, _ := s.pools.LoadOrStore(a.Code, free)
	return p.(chan int)
}
