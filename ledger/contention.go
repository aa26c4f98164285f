package ledger

import (
	"hash/maphash"
	"math/rand/v2"
	"slices"
	"sync"
)

// How this ledger keeps concurrent writers from aborting each other.
//
// At SERIALIZABLE, two transactions that update the same row do not just
// queue: when the first commits, PostgreSQL aborts the second (40001) and
// it must start again. Under a burst on one member that is a retry storm.
// So the ledger queues writers in memory before they reach the database:
// single-row accounts (members) through striped mutexes, and sharded
// accounts (programme, partners) through shard leases. What remains is
// contention between processes, which the retry loop absorbs.

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

// rowQueues serialises, within this process, transactions that would
// update the same single-row balance. Mutexes are striped by account code
// and taken in stripe order, so two transactions over the same accounts
// cannot deadlock here.
type rowQueues struct {
	seed    maphash.Seed
	stripes [1024]sync.Mutex
}

func newRowQueues() *rowQueues { return &rowQueues{seed: maphash.MakeSeed()} }

// lock waits for every single-row account among accounts and returns the
// unlock func.
func (q *rowQueues) lock(accounts map[string]Account) func() {
	var idx []int
	for code, a := range accounts {
		if a.Shards == 1 {
			idx = append(idx, int(maphash.String(q.seed, code)%uint64(len(q.stripes))))
		}
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		q.stripes[i].Lock()
	}
	return func() {
		for _, i := range idx {
			q.stripes[i].Unlock()
		}
	}
}
