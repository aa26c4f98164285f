package members_test

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

// StayView reads in one round trip what Get, TierAt and
// QualifyingActivity read one by one, and MemberAt what Get and TierAt
// read, and they give the same answers: before a tier change, after it,
// and for an unknown member.
func TestStayViewAndMemberAtAgreeWithTheirParts(t *testing.T) {
	f := newStoreFixture(t)
	ctx, db, store := f.ctx, f.db, f.store
	m := f.enrol(t, "enrol")
	upgradedAt := enrolled.AddDate(0, 3, 0)
	for _, s := range []ledger.Statement{
		members.QualifyingStay(m.Number, "s-1", enrolled.AddDate(0, 1, 0), 3, 900),
		members.QualifyingStay(m.Number, "s-2", enrolled.AddDate(0, 2, 0), 2, 400),
		members.ChangeTier(m.Number, members.TierChange{From: programme.TierRegular, To: programme.TierSilver, Reason: "first stay",
			EffectiveAt: upgradedAt, ChangedBy: "test"}, upgradedAt),
	} {
		if _, err := db.Pool.Exec(ctx, s.Text(), s.Args...); err != nil {
			t.Fatal(err)
		}
	}
	from, to := enrolled, enrolled.AddDate(1, 0, 0)
	for _, arrival := range []time.Time{upgradedAt.Add(-time.Hour), upgradedAt, upgradedAt.AddDate(0, 1, 0)} {
		member, tier, activity, err := store.StayView(ctx, m.Number, arrival, from, to)
		if err != nil {
			t.Fatal(err)
		}
		wantMember, err := store.Get(ctx, m.Number)
		if err != nil {
			t.Fatal(err)
		}
		wantTier, err := store.TierAt(ctx, wantMember, arrival)
		if err != nil {
			t.Fatal(err)
		}
		wantActivity, err := store.QualifyingActivity(ctx, m.Number, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if member.Tier != wantMember.Tier || tier != wantTier || activity != wantActivity {
			t.Errorf("arrival %s: StayView %s, %s, %+v; parts %s, %s, %+v", arrival, member.Tier, tier, activity, wantMember.Tier, wantTier, wantActivity)
		}
		member, tier, err = store.MemberAt(ctx, m.Number, arrival)
		if err != nil {
			t.Fatal(err)
		}
		if member.Tier != wantMember.Tier || tier != wantTier {
			t.Errorf("arrival %s: MemberAt %s, %s; parts %s, %s", arrival, member.Tier, tier, wantMember.Tier, wantTier)
		}
	}
	if _, _, _, err := store.StayView(ctx, "9999999999", upgradedAt, from, to); !errors.Is(err, members.ErrNotFound) {
		t.Errorf("StayView of an unknown member: %v", err)
	}
	if _, _, err := store.MemberAt(ctx, "9999999999", upgradedAt); !errors.Is(err, members.ErrNotFound) {
		t.Errorf("MemberAt of an unknown member: %v", err)
	}
}

// View reads in one round trip what Get, the ledger's Balance and Lots
// and QualifyingActivity read one by one, and gives the same answers;
// an unknown member is ErrNotFound.
func TestViewAgreesWithItsParts(t *testing.T) {
	f := newStoreFixture(t)
	ctx, db, store, l := f.ctx, f.db, f.store, f.ledger
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	m := f.enrol(t, "enrol")
	for i, points := range []int64{300, 200} {
		if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprintf("earn-%d", i), Kind: ledger.KindEarn,
			EffectiveAt: enrolled, Postings: []ledger.Posting{{Account: m.Account(), Amount: points}, {Account: programme.AccountIssuedStay, Amount: -points}},
			Lots: ledger.LotPolicy{ExpiresAt: enrolled.AddDate(0, 1+i, 0)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.PlaceHold(ctx, ledger.HoldRequest{CallerID: "test", IdempotencyKey: "hold", Account: m.Account(), Points: 120,
		ExpiresAt: enrolled.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	stay := members.QualifyingStay(m.Number, "s-1", enrolled.AddDate(0, 1, 0), 3, 900)
	if _, err := db.Pool.Exec(ctx, stay.Text(), stay.Args...); err != nil {
		t.Fatal(err)
	}
	from, to := enrolled, enrolled.AddDate(1, 0, 0)

	// A process that has not seen the member's account yet, and one that has.
	for _, s := range []*members.Store{members.New(ledger.New(db, ledger.Options{Clock: f.clock.Now}), f.clock.Now), store} {
		view, err := s.View(ctx, m.Number, from, to)
		if err != nil {
			t.Fatal(err)
		}
		wantMember, err := store.Get(ctx, m.Number)
		if err != nil {
			t.Fatal(err)
		}
		wantBalance, err := l.Balance(ctx, m.Account())
		if err != nil {
			t.Fatal(err)
		}
		wantLots, err := l.Lots(ctx, m.Account())
		if err != nil {
			t.Fatal(err)
		}
		wantActivity, err := store.QualifyingActivity(ctx, m.Number, from, to)
		if err != nil {
			t.Fatal(err)
		}
		if view.Member.Number != wantMember.Number || view.Member.Tier != wantMember.Tier || view.Balance != wantBalance ||
			!reflect.DeepEqual(view.Lots, wantLots) || view.Activity != wantActivity {
			t.Errorf("View: %+v\nparts: %+v %+v %+v %+v", view, wantMember, wantBalance, wantLots, wantActivity)
		}
		if view.Balance.Posted != 500 || view.Balance.Held != 120 || len(view.Lots) != 2 || view.Activity.Nights != 3 {
			t.Errorf("View: %+v, want 500 posted, 120 held, 2 lots, 3 nights", view)
		}
	}
	if _, err := store.View(ctx, "9999999999", from, to); !errors.Is(err, members.ErrNotFound) {
		t.Errorf("an unknown member: %v", err)
	}
}

// The reads that come before a member's write (Get, MemberAt, StayView)
// make a process that has not seen the member's account know it, in the
// same round trip: the posting that follows need not read it. An unknown
// member is still ErrNotFound.
func TestReadsBeforeAWriteLearnTheMembersAccount(t *testing.T) {
	f := newStoreFixture(t)
	ctx := f.ctx
	m := f.enrol(t, "enrol")
	at := enrolled.AddDate(0, 1, 0)
	for _, tc := range []struct {
		read string
		do   func(*members.Store, string) (members.Member, error)
	}{
		{"Get", func(s *members.Store, number string) (members.Member, error) { return s.Get(ctx, number) }},
		{"MemberAt", func(s *members.Store, number string) (members.Member, error) {
			m, _, err := s.MemberAt(ctx, number, at)
			return m, err
		}},
		{"StayView", func(s *members.Store, number string) (members.Member, error) {
			m, _, _, err := s.StayView(ctx, number, at, enrolled, at)
			return m, err
		}},
	} {
		t.Run(tc.read, func(t *testing.T) {
			fresh := ledger.New(f.db, ledger.Options{Clock: f.clock.Now}) // another process
			store := members.New(fresh, f.clock.Now)
			if _, err := tc.do(store, "9999999999"); !errors.Is(err, members.ErrNotFound) {
				t.Errorf("an unknown member: %v, want ErrNotFound", err)
			}
			got, err := tc.do(store, m.Number)
			if err != nil {
				t.Fatal(err)
			}
			if got.Number != m.Number || got.Tier != m.Tier {
				t.Errorf("read %s at %s, want %s at %s", got.Number, got.Tier, m.Number, m.Tier)
			}
			b := &pgx.Batch{}
			if fresh.QueueAccount(b, m.Account()); b.Len() != 0 {
				t.Errorf("after %s the process still reads the member's account (%d statements queued)", tc.read, b.Len())
			}
		})
	}
}
