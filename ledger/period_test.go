package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// TestAPeriodListsAtMostItsMaximumOfEntries: a period with exactly the
// maximum of entries is read whole, opening plus entries making the
// closing; one more entry than the maximum is TooManyEntriesError, never a
// statement cut short (a member's statement export says "ask for a shorter
// period" from it).
func TestAPeriodListsAtMostItsMaximumOfEntries(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	for range 3 {
		f.earn(t, member(1), 10)
	}
	from, to := start.Add(-time.Hour), start.Add(time.Hour)
	for _, tc := range []struct {
		name        string
		maxEntries  int
		wantTooMany bool
	}{
		{"the maximum is the period's entries", 3, false},
		{"more than enough", 100, false},
		{"one entry too many", 2, true},
		{"a maximum of one", 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := f.ledger.Period(f.ctx, member(1), from, to, tc.maxEntries)
			var tooMany *ledger.TooManyEntriesError
			if tc.wantTooMany {
				if !errors.As(err, &tooMany) || tooMany.Max != tc.maxEntries || tooMany.Account != member(1) {
					t.Fatalf("period: %+v, %v; want TooManyEntriesError with max %d", p, err, tc.maxEntries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sum := p.Opening.Posted
			for _, e := range p.Entries {
				sum += e.Amount
			}
			if len(p.Entries) != 3 || p.Opening.Posted != 0 || sum != p.Closing.Posted || p.Closing.Posted != 30 {
				t.Errorf("period: %d entries, opening %d, closing %d (opening plus entries %d)", len(p.Entries), p.Opening.Posted, p.Closing.Posted, sum)
			}
		})
	}
	if _, err := f.ledger.Period(f.ctx, member(1), from, to, 0); err == nil {
		t.Error("a maximum of 0 entries was accepted")
	}
}
