package members_test

import (
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

// StayView reads in one round trip what Get, TierAt and
// QualifyingActivity read one by one, and gives the same answers: before
// a tier change, after it, and for an unknown member.
func TestStayViewAgreesWithItsParts(t *testing.T) {
	f := newStoreFixture(t)
	ctx, db, store := f.ctx, f.db, f.store
	m := f.enrol(t, "enrol")
	upgradedAt := enrolled.AddDate(0, 3, 0)
	for _, s := range []ledger.Statement{
		members.QualifyingStay(m.Number, "s-1", enrolled.AddDate(0, 1, 0), 3, 900),
		members.QualifyingStay(m.Number, "s-2", enrolled.AddDate(0, 2, 0), 2, 400),
		members.ChangeTier(m.Number, members.TierChange{From: programme.TierRegular, To: programme.TierSilver, Reason: "first stay",
			EffectiveAt: upgradedAt, ChangedBy: "test"}),
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
	}
	if _, _, _, err := store.StayView(ctx, "9999999999", upgradedAt, from, to); err == nil {
		t.Error("an unknown member was found")
	}
}
