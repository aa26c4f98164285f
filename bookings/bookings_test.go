package bookings_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var checkout = time.Date(2026, 11, 5, 4, 0, 0, 0, time.UTC)

const member = "1000000001"

type fixture struct {
	ctx    context.Context
	ledger *ledger.Ledger
	store  *bookings.Store
}

func newFixture(t *testing.T, db *database.DB) fixture {
	t.Helper()
	clock := testclock.Ticking(checkout.Add(time.Hour), time.Millisecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	f := fixture{ctx: context.Background(), ledger: l, store: bookings.New(l, clock.Now)}
	if err := l.CreateAccounts(f.ctx, append(programme.ChartOfAccounts(), programme.MemberAccount(member))); err != nil {
		t.Fatal(err)
	}
	return f
}

func claim(stayID string, outcome bookings.Outcome, key string) bookings.Claim {
	return bookings.Claim{PropertyID: "H1", StayID: stayID, Outcome: outcome, MemberNumber: member,
		CallerID: "desk", IdempotencyKey: key, EffectiveAt: checkout}
}

// post records an outcome's transaction (points to the member, or from
// the member for a penalty) with its claim.
func (f fixture) post(c bookings.Claim, points int64) (ledger.Transaction, error) {
	return f.ledger.Post(f.ctx, ledger.PostRequest{CallerID: c.CallerID, IdempotencyKey: c.IdempotencyKey, Kind: ledger.KindEarn,
		EffectiveAt: checkout, Lots: ledger.LotPolicy{ExpiresAt: checkout.AddDate(2, 0, 0)},
		Postings: []ledger.Posting{{Account: programme.MemberAccount(member).Code, Amount: points}, {Account: programme.AccountIssuedStay, Amount: -points}},
		Effects:  []ledger.Statement{bookings.ClaimWith(c, bookings.ClaimEvent{})}})
}

// TestABookingTakesOneFinalOutcomeAndOneLateCheckout: the rule of the
// lifecycle, outcome by outcome, through the ledger and on their own.
func TestABookingTakesOneFinalOutcomeAndOneLateCheckout(t *testing.T) {
	for _, tc := range []struct {
		name          string
		first, second bookings.Outcome
		refused       bool
	}{
		{"a stay re-sent is refused", bookings.Stayed, bookings.Stayed, true},
		{"a no-show after a stay is refused", bookings.Stayed, bookings.NoShow, true},
		{"a second no-show is refused", bookings.NoShow, bookings.NoShow, true},
		{"a late cancellation after a no-show is refused", bookings.NoShow, bookings.CancelledCharged, true},
		{"a stay after a free cancellation is refused", bookings.CancelledFree, bookings.Stayed, true},
		{"a late check-out goes with a stay", bookings.Stayed, bookings.LateCheckout, false},
		{"a second late check-out is refused", bookings.LateCheckout, bookings.LateCheckout, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, dbtest.New(t))
			firstTxn, err := f.post(claim("B1", tc.first, "first"), 100)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.post(claim("B1", tc.second, "second"), 100)
			var recorded *bookings.RecordedError
			switch {
			case !tc.refused && err != nil:
				t.Fatalf("second outcome refused: %v", err)
			case tc.refused && !errors.As(err, &recorded):
				t.Fatalf("second outcome: %v, want a RecordedError", err)
			case tc.refused:
				explained := f.store.Explain(f.ctx, err)
				if !errors.As(explained, &recorded) || recorded.Existing == nil || recorded.Existing.Outcome != tc.first ||
					recorded.Existing.TransactionID != firstTxn.ID {
					t.Fatalf("explained: %v, want the first outcome %s in %s", explained, tc.first, firstTxn.ID)
				}
				// Without a transaction, the same.
				if _, err := f.store.Claim(f.ctx, claim("B1", tc.second, "third"), bookings.ClaimEvent{}); !errors.Is(err, bookings.ErrRecorded) {
					t.Fatalf("the same outcome claimed alone: %v", err)
				}
			}
			found, err := f.ledger.Verify(f.ctx)
			if err != nil || len(found) != 0 {
				t.Fatalf("verify: %v %v", found, err)
			}
		})
	}
}

// TestAnOutcomeWithoutTransactionReplaysUnderItsKey: a free cancellation's
// retry under its own key finds its record; another key is refused.
func TestAnOutcomeWithoutTransactionReplaysUnderItsKey(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	first, err := f.store.Claim(f.ctx, claim("B1", bookings.CancelledFree, "cancel"), bookings.ClaimEvent{})
	if err != nil {
		t.Fatal(err)
	}
	again, err := f.store.Claim(f.ctx, claim("B1", bookings.CancelledFree, "cancel"), bookings.ClaimEvent{})
	if err != nil || again.ID != first.ID || !again.EffectiveAt.Equal(checkout) {
		t.Fatalf("retry: %+v, %v; want %+v", again, err, first)
	}
	if _, err := f.store.Claim(f.ctx, claim("B1", bookings.CancelledFree, "cancel-again"), bookings.ClaimEvent{}); !errors.Is(err, bookings.ErrRecorded) {
		t.Fatalf("the same cancellation under another key: %v", err)
	}
	if _, err := f.store.Current(f.ctx, "H1", "B2", bookings.Stayed); !errors.Is(err, bookings.ErrNotFound) {
		t.Fatalf("an unknown booking: %v", err)
	}
}

// TestAReversalFreesTheBooking: the outcome's transaction reversed, the
// booking takes an outcome again.
func TestAReversalFreesTheBooking(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	stay, err := f.post(claim("B1", bookings.Stayed, "stay"), 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Reverse(f.ctx, ledger.ReverseRequest{CallerID: "desk", IdempotencyKey: "reverse", TransactionID: stay.ID,
		Effects: []ledger.Statement{bookings.Release(stay.ID, bookings.Released{MemberNumber: member, PropertyID: "H1", StayID: "B1"})}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Current(f.ctx, "H1", "B1", bookings.Stayed); !errors.Is(err, bookings.ErrNotFound) {
		t.Fatalf("after the reversal the booking still has an outcome: %v", err)
	}
	corrected, err := f.post(claim("B1", bookings.Stayed, "stay-corrected"), 80)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := f.store.Current(f.ctx, "H1", "B1", bookings.Stayed); err != nil || r.TransactionID != corrected.ID {
		t.Fatalf("the booking's outcome: %+v, %v; want the corrected stay %s", r, err, corrected.ID)
	}
}

// TestOutcomesRacingForABookingCommitOne: writers from two processes claim
// the same booking at once, each under its own key: one commits, every
// other is refused, on every engine.
func TestOutcomesRacingForABookingCommitOne(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db)
		other := fixture{ctx: f.ctx, ledger: ledger.New(db, ledger.Options{Clock: testclock.Ticking(checkout.Add(time.Hour), time.Millisecond).Now})}
		const writers = 8
		for round := range 3 {
			stayID := fmt.Sprint("R", round)
			var wg sync.WaitGroup
			errs := make([]error, writers)
			for w := range writers {
				wg.Go(func() {
					outcome := []bookings.Outcome{bookings.Stayed, bookings.NoShow, bookings.CancelledCharged}[w%3]
					via := []fixture{f, other}[w%2]
					_, errs[w] = via.post(claim(stayID, outcome, fmt.Sprint(stayID, "-", w)), 10)
				})
			}
			wg.Wait()
			committed := 0
			for w, err := range errs {
				switch {
				case err == nil:
					committed++
				case !errors.Is(err, bookings.ErrRecorded):
					t.Errorf("round %d writer %d: %v, want committed or refused as recorded", round, w, err)
				}
			}
			if committed != 1 {
				t.Fatalf("round %d: %d outcomes committed, want 1", round, committed)
			}
		}
		var points int64
		if b, err := f.ledger.Balance(f.ctx, programme.MemberAccount(member).Code); err != nil {
			t.Fatal(err)
		} else {
			points = b.Posted
		}
		if points != 30 {
			t.Errorf("the member has %d points, want 30: one outcome of 10 per booking", points)
		}
		found, err := f.ledger.Verify(f.ctx)
		if err != nil || len(found) != 0 {
			t.Fatalf("verify: %v %v", found, err)
		}
	})
}
