package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/pgfault"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// TestAcknowledgedWritesAreCommitted runs many conflicting writers over a
// few members and the shared programme accounts, and proves the books
// afterwards: every transaction the ledger acknowledged is in the
// database, no other is, every replay got the first result, no redemption
// or transfer took a member below zero, and verification passes.
func TestAcknowledgedWritesAreCommitted(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		const (
			members    = 10
			workers    = 16
			operations = 6500 // of which about 5,500 post (the rest replay earlier requests)
			seedPoints = 1000
		)
		f := newFixture(t, db, members)
		for m := 1; m <= members; m++ {
			f.earn(t, member(m), seedPoints)
		}

		var (
			mu           sync.Mutex
			acknowledged = map[uuid.UUID]ledger.Transaction{}
			refused      atomic.Int64
			replays      atomic.Int64
			next         atomic.Int64
		)
		// Four ledgers on one database, as four service processes would be:
		// each queues its own writers in memory, and the database settles
		// the conflicts between them.
		var processes [4]*ledger.Ledger
		for i := range processes {
			processes[i] = ledger.New(db, ledger.Options{Clock: f.clock.Now})
		}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				l := processes[w%len(processes)]
				rng := rand.New(rand.NewPCG(uint64(w), 42))
				var mine []ledger.PostRequest
				var mineIDs []uuid.UUID
				for next.Add(1) <= operations {
					var req ledger.PostRequest
					key := fmt.Sprintf("w%d-%d", w, len(mine))
					ai := rng.IntN(members)
					bi := (ai + 1 + rng.IntN(members-1)) % members // never ai
					a, b := member(1+ai), member(1+bi)
					switch r := rng.IntN(100); {
					case r < 10 && len(mine) > 0: // a client retrying an earlier request
						i := rng.IntN(len(mine))
						txn, err := postAsAClient(f.ctx, l, mine[i])
						if err != nil {
							t.Errorf("replay: %v", err)
							return
						}
						if txn.ID != mineIDs[i] {
							t.Errorf("replay of %s returned %s, first was %s", mine[i].IdempotencyKey, txn.ID, mineIDs[i])
						}
						replays.Add(1)
						continue
					case r < 50:
						req = earnRequest(key, a, int64(1+rng.IntN(200)))
						// Lots that expire in another order than they are earned.
						req.Lots.ExpiresAt = lotExpiry.AddDate(0, rng.IntN(12), 0)
					case r < 85:
						req = redeemRequest(key, a, int64(50+rng.IntN(400)))
					default:
						points := int64(1 + rng.IntN(300))
						req = ledger.PostRequest{CallerID: caller, IdempotencyKey: key, Kind: ledger.KindTransfer, EffectiveAt: start,
							Postings: []ledger.Posting{{Account: a, Amount: -points}, {Account: b, Amount: points}},
							Lots:     ledger.LotPolicy{ExpiresAt: lotExpiry.AddDate(0, rng.IntN(12), 0)}}
					}
					txn, err := postAsAClient(f.ctx, l, req)
					if errors.Is(err, ledger.ErrInsufficientPoints) {
						refused.Add(1)
						continue
					}
					if err != nil {
						t.Errorf("post %s: %v", key, err)
						return
					}
					mine, mineIDs = append(mine, req), append(mineIDs, txn.ID)
					mu.Lock()
					acknowledged[txn.ID] = txn
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}

		// Every acknowledged transaction is committed, and nothing else is.
		rows, err := db.Pool.Query(f.ctx, `SELECT id FROM transactions WHERE idempotency_key LIKE 'w%'`)
		if err != nil {
			t.Fatal(err)
		}
		inDB := map[uuid.UUID]bool{}
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			inDB[id] = true
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		for id := range acknowledged {
			if !inDB[id] {
				t.Errorf("acknowledged transaction %s is not in the database", id)
			}
		}
		for id := range inDB {
			if _, ok := acknowledged[id]; !ok {
				t.Errorf("transaction %s is in the database but was never acknowledged", id)
			}
		}

		// Balances are exactly what the acknowledged postings say, and no
		// member is below zero (these kinds may not create debt).
		want := map[string]int64{}
		for m := 1; m <= members; m++ {
			want[member(m)] = seedPoints
		}
		for _, txn := range acknowledged {
			for _, p := range txn.Postings {
				want[p.Account] += p.Amount
			}
		}
		for m := 1; m <= members; m++ {
			b := f.balance(t, member(m))
			if b.Posted != want[member(m)] || b.Posted < 0 {
				t.Errorf("%s: balance %d, acknowledged postings say %d", member(m), b.Posted, want[member(m)])
			}
		}
		f.mustVerify(t)
		stats := db.Stats()
		t.Logf("%d acknowledged, %d refused for insufficient points, %d replays; %d attempts, %d retries",
			len(acknowledged), refused.Load(), replays.Load(), stats.Attempts, stats.Retries)
		if len(acknowledged) < operations/3 {
			t.Fatalf("only %d of %d operations were acknowledged", len(acknowledged), operations)
		}
	})
}

// TestAmbiguousCommitIsRetriedSafely makes the outcome of a post's COMMIT
// unknown to the ledger after the server committed it: the connection dies
// before the answer arrives, or the answer is SQLSTATE 40003 (result is
// ambiguous, as CockroachDB can answer). The ledger retries with the same
// idempotency key and must return the committed transaction, not post a
// second one.
func TestAmbiguousCommitIsRetriedSafely(t *testing.T) {
	for _, fault := range []pgfault.Fault{pgfault.DropAnswer, pgfault.AmbiguousResult} {
		t.Run(fault.String(), func(t *testing.T) {
			direct := dbtest.PostgreSQL(t) // the proxy speaks to its Unix socket
			viaProxy, proxy := pgfault.Open(t, direct)
			f := newFixture(t, viaProxy, 1)

			proxy.Arm(fault)
			txn, err := f.ledger.Post(f.ctx, earnRequest("stay-after-blackout", member(1), 250))
			if err != nil {
				t.Fatalf("post across a commit of unknown outcome: %v", err)
			}
			if proxy.Injected() != 1 {
				t.Fatalf("the proxy applied %d faults, want 1", proxy.Injected())
			}
			if s := viaProxy.Stats(); s.AmbiguousCommits != 1 {
				t.Fatalf("stats %+v, want one ambiguous commit", s)
			}
			var n int
			var id uuid.UUID
			if err := direct.Pool.QueryRow(f.ctx, `SELECT count(*), min(id::TEXT)::UUID FROM transactions WHERE idempotency_key = 'stay-after-blackout'`).Scan(&n, &id); err != nil {
				t.Fatal(err)
			}
			if n != 1 || id != txn.ID {
				t.Fatalf("%d transactions in the database (first %s); the ledger returned %s", n, id, txn.ID)
			}
			if b := f.balance(t, member(1)); b.Posted != 250 {
				t.Fatalf("balance %d, want 250", b.Posted)
			}
			f.mustVerify(t)
		})
	}
}

// postAsAClient posts as the API's clients are told to: a request aborted
// by contention (ABORTED) is sent again with the same idempotency key, a
// few times. What the ledger acknowledged in the end is what counts.
func postAsAClient(ctx context.Context, l *ledger.Ledger, req ledger.PostRequest) (ledger.Transaction, error) {
	var txn ledger.Transaction
	var err error
	for range 5 {
		if txn, err = l.Post(ctx, req); !errors.Is(err, database.ErrContention) {
			break
		}
	}
	return txn, err
}

// TestHoldsAndRedemptionsNeverOverdraw races guarantees (holds placed and
// released) against redemptions of the same members from two ledgers on
// one database: no acknowledged hold or redemption may take a member's
// available points (posted - held) below zero, every answer's balance
// after is what the books say once the race is over, and every
// acknowledged hold is stored in the state it was left in.
func TestHoldsAndRedemptionsNeverOverdraw(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		const (
			members    = 4
			workers    = 12
			operations = 1500
			seedPoints = 2000
		)
		f := newFixture(t, db, members)
		for m := 1; m <= members; m++ {
			f.earn(t, member(m), seedPoints)
		}
		processes := [2]*ledger.Ledger{ledger.New(db, ledger.Options{Clock: f.clock.Now}), ledger.New(db, ledger.Options{Clock: f.clock.Now})}
		var (
			mu       sync.Mutex
			redeemed = map[string]int64{}
			earned   = map[string]int64{}
			placed   atomic.Int64
			// holds placed or released that gave up after all retries:
			// both ledgers write the same four members' rows, and
			// PostgreSQL aborts one of two serializable writers of a row.
			contended atomic.Int64
			active    = map[uuid.UUID]ledger.Hold{} // acknowledged and not released
			released  = map[uuid.UUID]bool{}
			next      atomic.Int64
		)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() {
				l := processes[w%len(processes)]
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				var mine []uuid.UUID // this worker's active holds
				for i := 0; next.Add(1) <= operations; i++ {
					key := fmt.Sprintf("h%d-%d", w, i)
					account := member(1 + rng.IntN(members))
					switch r := rng.IntN(100); {
					case r < 40 && len(mine) > 0:
						id := mine[0]
						h, err := l.ReleaseHold(f.ctx, ledger.ReleaseRequest{CallerID: caller, IdempotencyKey: key, HoldID: id})
						if errors.Is(err, database.ErrContention) {
							// Nothing was written: the hold stays active,
							// to be released again later.
							contended.Add(1)
							continue
						}
						if err != nil {
							t.Errorf("release %s: %v", id, err)
							return
						}
						if h.Status != ledger.HoldReleased || h.BalanceAfter == nil || h.BalanceAfter.Available < 0 {
							t.Errorf("release %s answered %+v", id, h)
						}
						mine = mine[1:]
						mu.Lock()
						delete(active, id)
						released[id] = true
						mu.Unlock()
					case r < 70:
						h, err := l.PlaceHold(f.ctx, ledger.HoldRequest{CallerID: caller, IdempotencyKey: key, Account: account,
							Points: int64(1 + rng.IntN(600)), ExpiresAt: f.clock.Now().Add(24 * time.Hour)})
						if errors.Is(err, database.ErrContention) {
							contended.Add(1)
							continue
						}
						if errors.Is(err, ledger.ErrInsufficientPoints) {
							continue
						}
						if err != nil {
							t.Errorf("place hold: %v", err)
							return
						}
						if h.BalanceAfter == nil || h.BalanceAfter.Available < 0 {
							t.Errorf("hold %s answered %+v", h.ID, h.BalanceAfter)
						}
						mine = append(mine, h.ID)
						placed.Add(1)
						mu.Lock()
						active[h.ID] = h
						mu.Unlock()
					case r < 85:
						points := int64(1 + rng.IntN(300))
						if _, err := postAsAClient(f.ctx, l, earnRequest(key, account, points)); err != nil {
							t.Errorf("earn: %v", err)
							return
						}
						mu.Lock()
						earned[account] += points
						mu.Unlock()
					default:
						points := int64(1 + rng.IntN(400))
						txn, err := postAsAClient(f.ctx, l, redeemRequest(key, account, points))
						if errors.Is(err, ledger.ErrInsufficientPoints) {
							continue
						}
						if err != nil {
							t.Errorf("redeem: %v", err)
							return
						}
						for _, b := range txn.BalancesAfter {
							if b.Available < 0 {
								t.Errorf("redemption %s left %s at %+v", txn.ID, b.Account, b)
							}
						}
						mu.Lock()
						redeemed[account] += points
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		held := map[string]int64{}
		for _, h := range active {
			held[h.Account] += h.Points
		}
		for m := 1; m <= members; m++ {
			b := f.balance(t, member(m))
			posted := seedPoints + earned[member(m)] - redeemed[member(m)]
			if b.Posted != posted || b.Held != held[member(m)] || b.Available < 0 {
				t.Errorf("%s: %+v; acknowledged writes say posted %d, held %d", member(m), b, posted, held[member(m)])
			}
		}
		for id := range released {
			h, err := f.ledger.GetHold(f.ctx, id)
			if err != nil || h.Status != ledger.HoldReleased {
				t.Errorf("released hold %s is stored as %+v, %v", id, h, err)
			}
		}
		f.mustVerify(t)
		t.Logf("%d holds placed, %d left active, %d released, %d gave up on contention; earned %v, redeemed %v",
			placed.Load(), len(active), len(released), contended.Load(), earned, redeemed)
		if placed.Load() < operations/10 || int(contended.Load()) > operations/20 {
			t.Fatalf("%d holds placed, %d gave up on contention: the race did not happen, or writers starve", placed.Load(), contended.Load())
		}
	})
}
