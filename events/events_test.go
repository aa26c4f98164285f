package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var start = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

type fixture struct {
	ctx    context.Context
	db     *database.DB
	ledger *ledger.Ledger
	clock  *testclock.Clock
}

func newFixture(t *testing.T, db *database.DB, members int) *fixture {
	t.Helper()
	clock := testclock.New(start)
	f := &fixture{ctx: context.Background(), db: db, clock: clock,
		ledger: ledger.New(db, ledger.Options{Clock: clock.Now, Outbox: events.OfTransaction})}
	accounts := programme.ChartOfAccounts()
	for m := 1; m <= members; m++ {
		accounts = append(accounts, programme.MemberAccount(member(m)))
	}
	if err := f.ledger.CreateAccounts(f.ctx, accounts); err != nil {
		t.Fatal(err)
	}
	return f
}

func member(m int) string { return fmt.Sprintf("%09d", 100000000+m) }

func (f *fixture) post(kind ledger.Kind, key string, m int, points int64) (ledger.Transaction, error) {
	account := programme.MemberAccount(member(m)).Code
	other := programme.AccountIssuedStay
	if kind == ledger.KindRedeem {
		other = programme.AccountIssuedGoodwill
	}
	return f.ledger.Post(f.ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: key, Kind: kind, EffectiveAt: f.clock.Now(),
		Postings: []ledger.Posting{{Account: other, Amount: -points}, {Account: account, Amount: points}},
		Lots:     ledger.LotPolicy{ExpiresAt: start.AddDate(2, 0, 0)}})
}

// sequenceAll runs the sequencer until the outbox is empty.
func sequenceAll(t *testing.T, f *fixture) {
	t.Helper()
	s := events.NewSequencer(f.db, f.clock.Now, "test")
	for {
		n, err := s.Step(f.ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func listAll(t *testing.T, f *fixture, filter events.Filter) []events.Event {
	t.Helper()
	var all []events.Event
	after := int64(0)
	for {
		page, err := events.NewStore(f.db).List(f.ctx, after, filter, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// Every committed ledger transaction announces exactly one event per
// member it moves, and a refused or retried one none more: many writers
// over few members, then the events against the transactions. Positions
// run from 1 without a gap, and each member's sequence numbers from 1
// without a gap, in the order of the member's balances.
func TestEveryCommittedTransactionIsAnnouncedOnce(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		const members, workers, perWorker = 4, 8, 40
		f := newFixture(t, db, members)
		var mu sync.Mutex
		committed := map[string]ledger.Transaction{}
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					m := 1 + (w+i)%members
					kind, points := ledger.KindEarn, int64(10+i)
					if i%3 == 2 {
						kind, points = ledger.KindRedeem, -int64(25+i) // some are refused: not enough points
					}
					key := fmt.Sprintf("w%d-%d", w, i)
					txn, err := f.post(kind, key, m, points)
					var insufficient *ledger.InsufficientPointsError
					if errors.As(err, &insufficient) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					if i%5 == 0 { // a retry with the same key announces nothing more
						if _, err := f.post(kind, key, m, points); err != nil {
							t.Error(err)
						}
					}
					mu.Lock()
					committed[txn.ID.String()] = txn
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		sequenceAll(t, f)
		all := listAll(t, f, events.Filter{})
		if len(all) != len(committed) {
			t.Fatalf("%d events for %d committed transactions", len(all), len(committed))
		}
		seen := map[string]bool{}
		lastSeq, posted := map[string]int64{}, map[string]int64{}
		for i, e := range all {
			if e.Position != int64(i+1) {
				t.Fatalf("event %d has position %d: positions must run from 1 without a gap", i, e.Position)
			}
			txn, ok := committed[e.TransactionID.String()]
			if !ok || seen[e.TransactionID.String()] {
				t.Fatalf("event %s announces transaction %s: not committed, or announced twice", e.ID, e.TransactionID)
			}
			seen[e.TransactionID.String()] = true
			want := events.TypePointsEarned
			if txn.Kind == ledger.KindRedeem {
				want = events.TypePointsRedeemed
			}
			if e.Type != want || e.Seq != lastSeq[e.Subject]+1 {
				t.Fatalf("event %d: type %s seq %d, want %s seq %d", i, e.Type, e.Seq, want, lastSeq[e.Subject]+1)
			}
			lastSeq[e.Subject] = e.Seq
			var d events.PointsData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if d.BalanceAfter.Posted != posted[e.Subject]+d.Points || d.MemberNumber != e.Subject || d.TransactionID != txn.ID.String() {
				t.Fatalf("event %d of %s: %+v after a balance of %d: out of the ledger's order", e.Seq, e.Subject, d, posted[e.Subject])
			}
			posted[e.Subject] = d.BalanceAfter.Posted
		}
		var outbox int
		if err := db.Pool.QueryRow(f.ctx, `SELECT count(*) FROM event_outbox`).Scan(&outbox); err != nil || outbox != 0 {
			t.Fatalf("outbox has %d rows after sequencing (%v)", outbox, err)
		}
	})
}

// A subject's sequence numbers go on after Prune: the sequencer numbers a
// subject's next event after its newest, and when Prune has deleted every
// event of a subject, after the number Prune kept. Member 1's events all
// go; member 2 keeps its recent one.
func TestASubjectsSequenceGoesOnAfterItsEventsArePruned(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db, 2)
		for i := range 3 {
			if _, err := f.post(ledger.KindEarn, fmt.Sprintf("old1-%d", i), 1, 10); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := f.post(ledger.KindEarn, "old2", 2, 10); err != nil {
			t.Fatal(err)
		}
		sequenceAll(t, f)
		f.clock.Advance(48 * time.Hour)
		if _, err := f.post(ledger.KindEarn, "recent2", 2, 10); err != nil {
			t.Fatal(err)
		}
		sequenceAll(t, f)
		if n, err := events.Prune(f.ctx, f.db, f.clock.Now().Add(-24*time.Hour), 2); err != nil || n != 4 {
			t.Fatalf("pruned %d events (%v), want the 4 old ones", n, err)
		}
		for m := 1; m <= 2; m++ {
			if _, err := f.post(ledger.KindEarn, fmt.Sprintf("next%d", m), m, 10); err != nil {
				t.Fatal(err)
			}
		}
		sequenceAll(t, f)
		for _, tc := range []struct {
			member int
			seqs   []int64
		}{
			{1, []int64{4}},    // after the number Prune kept
			{2, []int64{2, 3}}, // after its newest event
		} {
			var got []int64
			for _, e := range listAll(t, f, events.Filter{Subject: member(tc.member)}) {
				got = append(got, e.Seq)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.seqs) {
				t.Errorf("member %d's sequence numbers after the prune: %v, want %v", tc.member, got, tc.seqs)
			}
		}
	})
}
