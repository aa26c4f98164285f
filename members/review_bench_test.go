package members_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/tiers"
)

const (
	benchMembers    = 1_000_000
	benchChunk      = 200_000 // rows per INSERT statement (one transaction each)
	benchReviewSize = 1000    // members per review batch
)

// BenchmarkTierReview1M reviews 1,000,000 members, all due, once, in
// batches of 1000: the annual review's figure on this machine (PostgreSQL
// with fsync on, as every benchmark of dbtest). b.N is ignored: setting up a
// million members is the expensive part, so each invocation reviews them
// exactly once; run it with -benchtime 1x (make bench-tiers).
//
// The members are 10% platinum, 20% gold and 70% silver. Every fifth one
// (all the platinum members and the silver ones whose number ends in 5)
// has a qualifying stay of 1 to 30 nights in the window, so a fifth of the
// platinum members requalify and the rest go down to gold, every gold
// member goes down to silver, and most silver members with a stay go up:
// 353,331 changes with the default rules.
//
// Metrics: members/s, changed (members whose tier changed), heap-MiB (the
// largest Go heap, HeapAlloc, seen after any batch) and setup-s (creating
// the members and stays and ANALYZE, outside the timed part).
func BenchmarkTierReview1M(b *testing.B) {
	ctx := context.Background()
	asOf := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tierSince := asOf.AddDate(0, -13, 0) // everyone is due
	setupStart := time.Now()
	db := dbtest.New(b)
	for lo := 1; lo <= benchMembers; lo += benchChunk {
		hi := min(lo+benchChunk-1, benchMembers)
		if _, err := db.Pool.Exec(ctx, `
			INSERT INTO members (member_number, full_name, phone, tier, enrolment_channel, enrolled_at, enrolled_by,
				updated_at, updated_by, tier_since, first_stay)
			SELECT (1000000000 + g)::TEXT, 'M', '+86 1',
				CASE WHEN g % 10 = 0 THEN 'platinum' WHEN g % 4 = 0 THEN 'gold' ELSE 'silver' END,
				'app', $1, 'bench', $1, 'bench', $1, 'x'
			FROM generate_series($2::INT8, $3::INT8) AS s (g)`, tierSince, lo, hi); err != nil {
			b.Fatalf("insert members %d-%d: %v", lo, hi, err)
		}
		// Every fifth member (all platinum ones, and silver ones) stayed
		// 1 to 30 nights two months before asOf, 300 points a night:
		// 10 nights (3000 points) reach gold, 25 platinum.
		if _, err := db.Pool.Exec(ctx, `
			INSERT INTO qualifying_stays (id, member_number, stay_ref, completed_at, nights, points)
			SELECT gen_random_uuid(), (1000000000 + g)::TEXT, 'bench-' || g, $1,
				1 + (g / 5 * 7) % 30, (1 + (g / 5 * 7) % 30) * 300
			FROM generate_series($2::INT8, $3::INT8) AS s (g) WHERE g % 5 = 0`, asOf.AddDate(0, -2, 0), lo, hi); err != nil {
			b.Fatalf("insert stays %d-%d: %v", lo, hi, err)
		}
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE members, qualifying_stays`); err != nil {
		b.Fatal(err)
	}
	setup := time.Since(setupStart)
	b.Logf("setup: %d members and %d%% of them with a stay in %s", benchMembers, 20, setup.Round(time.Millisecond))

	// The review runs an hour after asOf, as the daily job would.
	clock := testclock.Ticking(asOf.Add(time.Hour), time.Microsecond)
	store := members.New(ledger.New(db, ledger.Options{Clock: clock.Now}), clock.Now)
	var mem runtime.MemStats
	var peakHeap uint64
	sample := func() {
		runtime.ReadMemStats(&mem)
		peakHeap = max(peakHeap, mem.HeapAlloc)
	}
	runtime.GC()
	sample()
	b.ResetTimer()
	start := time.Now()
	got, err := store.ReviewTiers(ctx, tiers.Default(), asOf, benchReviewSize, func(members.ReviewProgress) { sample() })
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if got.Processed != benchMembers || !got.Done {
		b.Fatalf("review %+v: want all %d members processed", got, benchMembers)
	}
	var history int64
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM tier_changes`).Scan(&history); err != nil || history != got.Changed {
		b.Fatalf("%d tier changes recorded (%v), the review reported %d", history, err, got.Changed)
	}
	b.ReportMetric(float64(got.Processed)/elapsed.Seconds(), "members/s")
	b.ReportMetric(float64(got.Changed), "changed")
	b.ReportMetric(float64(peakHeap)/(1<<20), "heap-MiB")
	b.ReportMetric(setup.Seconds(), "setup-s")
	b.Logf("review: %d members, %d changed, in %s (%.0f members/s), peak Go heap %.1f MiB",
		got.Processed, got.Changed, elapsed.Round(time.Millisecond), float64(got.Processed)/elapsed.Seconds(), float64(peakHeap)/(1<<20))
}
