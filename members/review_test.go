package members_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// TestTierReviewDowngradesOneStepOnceAndResumes: platinum and gold
// members without activity go down one step at their review date, a
// member still qualifying keeps the tier, a member not yet due is left
// alone; a review that stops half-way resumes with its counts (due,
// changed, unchanged) carried over, and a second run changes nothing. A
// review an hour later finds nobody due: the changed members' tiers and
// the unchanged members' reviews are an hour old.
func TestTierReviewDowngradesOneStepOnceAndResumes(t *testing.T) {
	f := newStoreFixture(t)
	ctx, db, store := f.ctx, f.db, f.store
	enrol := func(i int) members.Member { return f.enrol(t, fmt.Sprintf("enrol-%d", i)) }
	exec := func(s ledger.Statement) {
		if _, err := db.Pool.Exec(ctx, s.Text(), s.Args...); err != nil {
			t.Fatal(err)
		}
	}
	setTier := func(m members.Member, to programme.Tier, at time.Time) {
		if _, err := db.Pool.Exec(ctx, `UPDATE members SET tier = $2, tier_since = $3, first_stay = 'x' WHERE member_number = $1`, m.Number, string(to), at); err != nil {
			t.Fatal(err)
		}
	}
	asOf := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	dueSince := asOf.AddDate(-1, 0, -1)
	platinum, gold, busy, fresh := enrol(1), enrol(2), enrol(3), enrol(4)
	setTier(platinum, programme.TierPlatinum, dueSince)
	setTier(gold, programme.TierGold, dueSince)
	setTier(busy, programme.TierGold, dueSince)
	setTier(fresh, programme.TierGold, asOf.AddDate(0, -2, 0)) // review in 10 months
	exec(members.QualifyingStay(busy.Number, "s", asOf.AddDate(0, -1, 0), 12, 2000))
	var filler []members.Member
	for i := range 7 {
		filler = append(filler, enrol(10+i))
	}

	// A first run that stops after its first batch of 3.
	stopAfterOne, stop := context.WithCancel(ctx)
	_, err := store.ReviewTiers(stopAfterOne, tiers.Default(), asOf, 3, func(members.ReviewProgress) { stop() })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the interrupted run: %v", err)
	}
	got, err := store.ReviewTiers(ctx, tiers.Default(), asOf, 3, nil)
	if err != nil {
		t.Fatal(err)
	}
	if total := int64(4 + len(filler)); got.Processed != total || !got.Done {
		t.Fatalf("resumed review %+v, want %d members processed once each", got, total)
	}
	want := map[string]programme.Tier{platinum.Number: programme.TierGold, gold.Number: programme.TierSilver,
		busy.Number: programme.TierGold, fresh.Number: programme.TierGold}
	for number, tier := range want {
		m, err := store.Get(ctx, number)
		if err != nil || m.Tier != tier {
			t.Fatalf("member %s is %s (%v), want %s", number, m.Tier, err, tier)
		}
	}
	// Due: platinum and gold (changed), busy and the fillers enrolled more
	// than a year ago (their anniversary has come; unchanged); fresh is not.
	if got.Changed != 2 || got.Unchanged != 1+int64(len(filler)) || got.Due() != 3+int64(len(filler)) || got.NotDue() != 1 {
		t.Fatalf("review %+v (due %d, not due %d), want 2 changed, %d unchanged, %d due, 1 not due",
			got, got.Due(), got.NotDue(), 1+len(filler), 3+len(filler))
	}
	again, err := store.ReviewTiers(ctx, tiers.Default(), asOf, 3, nil)
	if err != nil || again != got {
		t.Fatalf("a second run at the same time: %+v, %v; want the finished review's counts %+v and nothing new", again, err, got)
	}
	later, err := store.ReviewTiers(ctx, tiers.Default(), asOf.Add(time.Hour), 3, nil)
	if err != nil || later.Changed != 0 || later.Due() != 0 || later.NotDue() != got.Processed {
		t.Fatalf("a new run an hour later: %+v, %v; want nobody due again and no change", later, err)
	}
	if m, err := store.Get(ctx, busy.Number); err != nil || !m.LastReview.Equal(asOf) {
		t.Fatalf("the member who kept gold was last reviewed at %s (%v), want %s", m.LastReview, err, asOf)
	}
	if m, err := store.Get(ctx, fresh.Number); err != nil || !m.LastReview.IsZero() {
		t.Fatalf("the member not due was last reviewed at %s (%v), want never", m.LastReview, err)
	}
	history, err := store.TierHistory(ctx, platinum.Number, 10)
	if err != nil || len(history) != 1 || history[0].To != programme.TierGold || history[0].ChangedBy != "tier-review" {
		t.Fatalf("history %+v, %v", history, err)
	}
}
