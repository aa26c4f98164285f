package members_test

import (
	"errors"
	"testing"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

// A member's first stay is claimed by the transaction that pays its bonus,
// or not at all: a second claim fails its whole transaction (nothing is
// posted, its key stays free).
func TestFirstStayIsClaimedOnceWithItsTransaction(t *testing.T) {
	f := newStoreFixture(t)
	ctx, l, store := f.ctx, f.ledger, f.store
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	m := f.enrol(t, "enrol")
	// stay posts 100 points, claiming the first stay ref unless ref is "".
	stay := func(key, ref string) error {
		var claim []ledger.Statement
		if ref != "" {
			claim = []ledger.Statement{members.ClaimFirstStay(m.Number, ref)}
		}
		_, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: key, Kind: ledger.KindEarn, EffectiveAt: enrolled,
			Postings: []ledger.Posting{{Account: m.Account(), Amount: 100}, {Account: programme.AccountIssuedStay, Amount: -100}},
			Lots:     ledger.LotPolicy{ExpiresAt: enrolled.AddDate(2, 0, 0)},
			Effects:  claim})
		return err
	}
	steps := []struct {
		name, key, ref string
		taken          bool
		balance        int64 // after the step: only transactions whose claim held posted
	}{
		{"the first stay claims", "k-1", "stay:H:1", false, 100},
		{"another stay may not", "k-2", "stay:H:2", true, 100},
		{"nor the first one twice", "k-3", "stay:H:1", true, 100},
		{"the refused stay's key is still free", "k-2", "", false, 200},
	}
	for _, s := range steps {
		err := stay(s.key, s.ref)
		if taken := errors.Is(err, members.ErrFirstStayTaken); taken != s.taken || (!s.taken && err != nil) {
			t.Fatalf("%s: %v", s.name, err)
		}
		if b, err := l.Balance(ctx, m.Account()); err != nil || b.Posted != s.balance {
			t.Fatalf("%s: balance %+v, %v, want %d", s.name, b, err, s.balance)
		}
	}
	got, err := store.Get(ctx, m.Number)
	if err != nil || got.FirstStay != "stay:H:1" {
		t.Fatalf("first stay %q, %v", got.FirstStay, err)
	}
}
