package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// A closed account takes no posting and no hold. It closes only at zero,
// with nothing on hold, decided under its lock: a transaction that would
// leave points (the balance moved since the caller read it) writes nothing,
// its key included, and the caller settles again.
func TestAClosedAccountTakesNoMorePostingsOrHolds(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db, 2)
		f.earn(t, member(1), 300)
		settle := func(key string, points int64) (ledger.Transaction, error) {
			req := redeemRequest(key, member(1), points)
			req.CloseAccounts = []string{member(1)}
			return f.ledger.Post(f.ctx, req)
		}
		// A write in flight lands between the balance read (300) and the
		// settlement: the settlement of 300 would leave 50.
		f.earn(t, member(1), 50)
		var moved *ledger.NotSettledError
		if _, err := settle("settle", 300); !errors.As(err, &moved) || moved.Posted != 50 {
			t.Fatalf("settling 300 of 350: %v, want NotSettledError with 50 left", err)
		}
		if b := f.balance(t, member(1)); b.Posted != 350 {
			t.Fatalf("balance %d after a refused settlement, want 350", b.Posted)
		}
		// The same key again, with the balance read again: settled and closed.
		if _, err := settle("settle", 350); err != nil {
			t.Fatalf("settling 350: %v", err)
		}
		for _, tc := range []struct {
			rule  string
			write func() error
		}{
			{"an earning", func() error { _, err := f.ledger.Post(f.ctx, earnRequest(f.nextKey(), member(1), 10)); return err }},
			{"a debit", func() error {
				req := redeemRequest(f.nextKey(), member(1), 10)
				_, err := f.ledger.Post(f.ctx, req)
				return err
			}},
			{"a hold", func() error {
				_, err := f.ledger.PlaceHold(f.ctx, ledger.HoldRequest{CallerID: caller, IdempotencyKey: f.nextKey(),
					Account: member(1), Points: 1, ExpiresAt: f.clock.Now().Add(time.Hour)})
				return err
			}},
			{"a second closure", func() error { _, err := settle(f.nextKey(), 1); return err }},
		} {
			t.Run(tc.rule, func(t *testing.T) {
				var closed *ledger.AccountClosedError
				if err := tc.write(); !errors.As(err, &closed) || !errors.Is(err, ledger.ErrAccountClosed) || closed.Account != member(1) {
					t.Fatalf("%s on the closed account: %v, want AccountClosedError", tc.rule, err)
				}
			})
		}
		if b := f.balance(t, member(1)); b.Posted != 0 || b.Held != 0 {
			t.Fatalf("closed account %+v, want nothing", b)
		}
		// An account at zero closes without a transaction; one with points
		// does not.
		if err := f.ledger.CloseAccount(f.ctx, member(2)); err != nil {
			t.Fatalf("closing an empty account: %v", err)
		}
		if _, err := f.ledger.Post(f.ctx, earnRequest(f.nextKey(), member(2), 10)); !errors.Is(err, ledger.ErrAccountClosed) {
			t.Fatalf("earning on the closed empty account: %v", err)
		}
		if err := f.ledger.CloseAccount(f.ctx, member(2)); err != nil {
			t.Fatalf("closing it again: %v, want nothing done", err)
		}
		f.mustVerify(t)
	})
}
