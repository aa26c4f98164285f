package members_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// TestTierReviewNoticesOncePerMemberAndDate: the members whose review
// falls within 30 days, at a tier a review can take away, hear what
// keeping it takes (the activity that will still count at the review, and
// what is missing); the others hear nothing. A second run on the same date,
// a run that lost its checkpoint and two runs at once write each notice
// once; the next date writes new ones.
func TestTierReviewNoticesOncePerMemberAndDate(t *testing.T) {
	f := newStoreFixture(t)
	asOf := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		if _, err := f.db.Pool.Exec(f.ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	stay := func(s ledger.Statement) { exec(s.Text(), s.Args...) }
	member := func(i int, tier programme.Tier, since time.Time) string {
		m := f.enrol(t, fmt.Sprint("enrol-", i))
		exec(`UPDATE members SET tier = $2, tier_since = $3, first_stay = 'x' WHERE member_number = $1`, m.Number, string(tier), since)
		return m.Number
	}
	// tier_since a year before the review date.
	reviewIn := func(days int) time.Time { return asOf.AddDate(0, 0, days).AddDate(-1, 0, 0) }
	short := member(1, programme.TierGold, reviewIn(10))
	stay(members.QualifyingStay(short, "recent", asOf.AddDate(0, -2, 0), 4, 1000))
	stay(members.QualifyingStay(short, "too-old", asOf.AddDate(0, -14, 0), 20, 9000)) // before the review's window
	kept := member(2, programme.TierPlatinum, reviewIn(5))
	stay(members.QualifyingStay(kept, "many", asOf.AddDate(0, -1, 0), 30, 9000))
	member(3, programme.TierGold, reviewIn(40))            // not yet
	member(4, programme.TierSilver, reviewIn(10))          // nothing a review takes away
	member(5, programme.TierGold, asOf.AddDate(-1, -1, 0)) // due already: the review's, not a notice's
	manual := member(6, programme.TierGold, reviewIn(10))
	exec(`UPDATE members SET manual_tier = 'gold' WHERE member_number = $1`, manual) // a manual tier without end
	f.clock.Advance(asOf.Sub(enrolled))

	var cursor int64
	f.newEvents(t, &cursor) // the enrolments'
	run := func(at time.Time) members.NoticeProgress {
		t.Helper()
		p, err := f.store.ReviewNotices(f.ctx, tiers.Default(), at, shanghai, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	notices := func(date string) map[string]events.TierReviewComingData {
		t.Helper()
		out := map[string]events.TierReviewComingData{}
		for _, e := range f.newEvents(t, &cursor) {
			var d events.TierReviewComingData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if e.Type != events.TypeTierReviewComing || e.Subject != d.MemberNumber || d.NoticeDate != date || e.PartnerID != "" {
				t.Fatalf("event %s of %s: %+v", e.Type, e.Subject, d)
			}
			if _, twice := out[d.MemberNumber]; twice {
				t.Fatalf("two notices to %s on %s", d.MemberNumber, date)
			}
			out[d.MemberNumber] = d
		}
		return out
	}

	if p := run(asOf); !p.Done || p.Noticed != 2 || p.Processed != 6 || p.Date != "2026-06-01" {
		t.Fatalf("progress %+v", p)
	}
	first := notices("2026-06-01")
	if len(first) != 2 {
		t.Fatalf("notices to %v, want to %s and %s", first, short, kept)
	}
	want := events.TierReviewComingData{MemberNumber: short, NoticeDate: "2026-06-01", Tier: "gold",
		ReviewDate: events.Time(asOf.AddDate(0, 0, 10)), WindowStart: events.Time(asOf.AddDate(0, 0, 10).AddDate(-1, 0, 0)),
		Nights: 4, Points: 1000, NightsNeeded: 6, PointsNeeded: 2000, Kept: false, TierIfNotKept: "silver"}
	if got := first[short]; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("notice to the member short of the tier:\n got %+v\nwant %+v", got, want)
	}
	if got := first[kept]; !got.Kept || got.NightsNeeded != 0 || got.Tier != "platinum" || got.TierIfNotKept != "gold" {
		t.Errorf("notice to the member who keeps the tier: %+v", got)
	}

	// The same date again: later the same day, and after losing the
	// checkpoint, twice before the sequencer runs.
	run(asOf.Add(time.Hour))
	for range 2 {
		exec(`DELETE FROM job_checkpoints WHERE job LIKE 'tier-review-notices:%'`)
		if p := run(asOf); p.Noticed != 2 {
			t.Fatalf("the run without its checkpoint: %+v", p)
		}
	}
	if again := notices("2026-06-01"); len(again) != 0 {
		t.Fatalf("notices written again on the same date: %v", again)
	}

	// The next date, by two runs at once.
	next := asOf.AddDate(0, 0, 1)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := f.store.ReviewNotices(f.ctx, tiers.Default(), next, shanghai, 2, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	second := notices("2026-06-02")
	if len(second) != 2 || second[short].ReviewDate != want.ReviewDate {
		t.Fatalf("notices of the next date: %v", second)
	}
}
