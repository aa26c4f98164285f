package ledger_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// TestACorrectionIsNeverHalfDone: the reversal and the replacement commit
// together; a replacement that fails leaves the original unreversed; a
// retry returns the first correction; a reversed transaction is not
// corrected again.
func TestACorrectionIsNeverHalfDone(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db, 1)
		original := f.earn(t, member(1), 300)
		correct := func(key string, points int64, effects ...ledger.Statement) (ledger.Correction, error) {
			replacement := earnRequest("", member(1), points)
			replacement.Effects = effects
			return f.ledger.Correct(f.ctx, ledger.CorrectRequest{CallerID: caller, IdempotencyKey: key, TransactionID: original.ID,
				ReversalLots: ledger.LotPolicy{ExpiresAt: lotExpiry}, ReplacementID: uuid.New(), Replacement: replacement})
		}
		before := f.transactionCount(t)
		// A replacement whose effect fails: nothing of the correction stays.
		broken := ledger.Statement{SQL: `SELECT 1/0`}
		if _, err := correct("broken", 250, broken); err == nil {
			t.Fatal("a correction whose replacement failed was committed")
		}
		if n := f.transactionCount(t); n != before {
			t.Fatalf("%d transactions written by a failed correction", n-before)
		}
		if b := f.balance(t, member(1)); b.Posted != 300 {
			t.Fatalf("balance %d after a failed correction, want 300", b.Posted)
		}
		c, err := correct("fix", 250)
		if err != nil {
			t.Fatal(err)
		}
		if c.Reversal.ReversesID != original.ID || c.Replacement.ReversesID != uuid.Nil {
			t.Fatalf("correction %+v", c)
		}
		if b := f.balance(t, member(1)); b.Posted != 250 {
			t.Fatalf("balance %d after the correction, want 250", b.Posted)
		}
		again, err := correct("fix", 250)
		if err != nil || again.Reversal.ID != c.Reversal.ID || again.Replacement.ID != c.Replacement.ID {
			t.Fatalf("retry: %+v, %v; want %+v", again, err, c)
		}
		var reversed *ledger.AlreadyReversedError
		if _, err := correct("fix-again", 200); !errors.As(err, &reversed) {
			t.Fatalf("correcting a reversed transaction: %v", err)
		}
		if found, err := f.ledger.Verify(f.ctx); err != nil || len(found) != 0 {
			t.Fatalf("verify: %v %v", found, err)
		}
	})
}
