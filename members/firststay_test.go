package members_test

import (
	"context"
	"errors"
	"testing"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

// A member's first stay is claimed by the transaction that pays its bonus,
// or not at all: a second claim fails its whole transaction (nothing is
// posted, its key stays free).
func TestFirstStayIsClaimedOnceWithItsTransaction(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	clock := testclock.New(enrolled)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	store := members.New(l, clock.Now)
	m, err := store.Enroll(ctx, "test", "enrol", members.Enrollment{FullName: "M", Phone: "+86 1", Channel: programme.ChannelApp})
	if err != nil {
		t.Fatal(err)
	}
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
