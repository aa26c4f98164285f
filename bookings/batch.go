package bookings

import (
	"context"
	"slices"
	"sync"
)

// Batches: many stays in one call (a hotel's nightly check-outs, a
// partner's extract, an import), each recorded exactly as it would be
// alone, and the whole faster because stays of different members are
// recorded concurrently, so that the ledger's group commit writes them in
// shared transactions and commits.
//
// What must not run concurrently is what one row's result depends on:
// a member's stays (the first-stay bonus, the tier a stay is priced at
// and the upgrade it earns follow the order of the member's stays), a
// booking's requests (the first in the batch takes the booking) and an
// idempotency key's. Rows linked by a member, a booking or a key,
// directly or through other rows, form a chain that one lane runs in the
// batch's order; chains run side by
// side, up to BatchLanes at once.

const (
	// MaxBatchRows bounds a batch.
	MaxBatchRows = 1000
	// BatchLanes is how many rows of a batch are in flight at once. The
	// group commit writes up to 64 requests in a group, and the next group
	// fills while one is written: 32 keep groups of about half that size
	// without piling up on a database the process shares with its other
	// callers.
	BatchLanes = 32
)

// BatchRow is what orders a row of a batch: its member, its booking, and
// its idempotency key (two rows under one key: the first in the batch
// takes it, the other is the one refused, as in the batch's order).
type BatchRow struct {
	MemberNumber, PropertyID, StayID, IdempotencyKey string
}

// RowState is how a row's attempt ended, as it bears on the rows after it.
type RowState int

const (
	// RowDone: the row has its answer (recorded, already recorded or
	// refused for good); its chain goes on.
	RowDone RowState = iota
	// RowInDoubt: the row was not recorded for now (contention, a
	// deadline) or its outcome is unknown: the later rows of its chain
	// are not attempted, so that a retry of them all keeps their order.
	RowInDoubt
	// RowUnreachable: the database could not be reached (or a commit's
	// outcome is unknown): no row of the batch not yet started is
	// attempted.
	RowUnreachable
)

// Skipped is a row that was not attempted, because of an earlier row
// (Cause) that ended in State: an earlier row of the same chain in doubt,
// or any row that found the database unreachable.
type Skipped struct {
	Row, Cause int
	State      RowState
}

// RunBatch calls attempt for rows[i], for every i, at most lanes at once
// (lanes < 1: BatchLanes), each chain of rows (linked by a member or a booking) in the
// batch's order, and returns the rows it did not attempt, in order.
// attempt must be safe to call concurrently for rows of different chains.
// RunBatch returns when every attempt has returned; a cancelled ctx
// leaves the rows not yet started unattempted (Skipped with State
// RowUnreachable and Cause -1).
func RunBatch(ctx context.Context, rows []BatchRow, lanes int, attempt func(ctx context.Context, i int) RowState) []Skipped {
	if lanes < 1 {
		lanes = BatchLanes
	}
	chains := chainsOf(rows)
	var (
		mu          sync.Mutex
		skipped     []Skipped
		unreachable = -1 // the first row that found the database unreachable
	)
	skip := func(row, cause int, state RowState) {
		mu.Lock()
		skipped = append(skipped, Skipped{Row: row, Cause: cause, State: state})
		mu.Unlock()
	}
	down := func() int {
		mu.Lock()
		defer mu.Unlock()
		return unreachable
	}
	run := func(chain []int) {
		blocked, blockedBy := RowDone, -1
		for _, i := range chain {
			if cause := down(); cause >= 0 {
				skip(i, cause, RowUnreachable)
				continue
			}
			if ctx.Err() != nil {
				skip(i, -1, RowUnreachable)
				continue
			}
			if blocked != RowDone {
				skip(i, blockedBy, blocked)
				continue
			}
			switch state := attempt(ctx, i); state {
			case RowUnreachable:
				mu.Lock()
				if unreachable < 0 {
					unreachable = i
				}
				mu.Unlock()
				blocked, blockedBy = state, i
			case RowInDoubt:
				blocked, blockedBy = state, i
			}
		}
	}
	work := make(chan []int)
	var wg sync.WaitGroup
	for range min(lanes, len(chains)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for chain := range work {
				run(chain)
			}
		}()
	}
	for _, chain := range chains {
		work <- chain
	}
	close(work)
	wg.Wait()
	slices.SortFunc(skipped, func(a, b Skipped) int { return a.Row - b.Row })
	return skipped
}

// chainsOf groups rows linked by a member, a booking or a key, each chain in the
// batch's order, the chains in the order of their first rows.
func chainsOf(rows []BatchRow) [][]int {
	parent := make([]int, len(rows))
	for i := range parent {
		parent[i] = i
	}
	var root func(int) int
	root = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) {
		ra, rb := root(a), root(b)
		if ra > rb {
			ra, rb = rb, ra
		}
		parent[rb] = ra // the smaller index stays the root: chains keep their first row's place
	}
	// The first row of each member, booking and key; the names of
	// different kinds cannot meet (none holds a NUL). An empty one links
	// nothing: such a row is refused, whatever the others are.
	first := map[string]int{}
	link := func(i int, kind, name string) {
		if name == "" {
			return
		}
		key := kind + "\x00" + name
		if f, ok := first[key]; ok {
			union(f, i)
		} else {
			first[key] = i
		}
	}
	for i, r := range rows {
		link(i, "m", r.MemberNumber)
		if r.StayID != "" {
			link(i, "b", r.PropertyID+"\x00"+r.StayID)
		}
		link(i, "k", r.IdempotencyKey)
	}
	at := map[int]int{} // root -> index in chains
	var chains [][]int
	for i := range rows {
		r := root(i)
		k, ok := at[r]
		if !ok {
			k = len(chains)
			at[r] = k
			chains = append(chains, nil)
		}
		chains[k] = append(chains[k], i)
	}
	return chains
}
