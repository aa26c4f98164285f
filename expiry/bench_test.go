package expiry_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

const (
	benchMembers = 1_000_000
	benchChunk   = 100_000 // members per set-up transaction
	benchPoints  = 500     // each member's one lot
	benchBatch   = 1000    // members per expiry batch
)

// BenchmarkExpiry1M expires the points of 1,000,000 members, all due,
// once, in batches of 1000: the expiry job's figure on this machine
// (PostgreSQL with fsync on, as every benchmark of dbtest). Each member
// earned 500 points in one transaction (its one lot), loaded in bulk by SQL
// with the postings, balances and lots the ledger would have written. b.N is
// ignored: run it with -benchtime 1x (make bench-expiry). The ledger is
// verified afterwards: a discrepancy fails the run.
//
// Metrics: members/s, points (expired in all), heap-MiB (the largest Go
// heap seen after any batch), setup-s.
func BenchmarkExpiry1M(b *testing.B) {
	ctx := context.Background()
	earnedAt := time.Date(2023, 6, 1, 0, 0, 0, 0, time.UTC)
	expiresAt := time.Date(2025, 6, 2, 0, 0, 0, 0, time.UTC)
	asOf := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	setupStart := time.Now()
	db := dbtest.New(b)
	// The job runs an hour after asOf, as the daily job would.
	clock := testclock.Ticking(asOf.Add(time.Hour), time.Microsecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		b.Fatal(err)
	}
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		b.Fatal(err)
	}
	for lo := 1; lo <= benchMembers; lo += benchChunk {
		hi := min(lo+benchChunk-1, benchMembers)
		// The lot's id is the earning transaction's: md5 of its number,
		// the same in every statement.
		member := `'member:' || (1000000000 + g) || ':points'`
		lot := `md5('seed-' || g)::UUID`
		series := ` FROM generate_series($1::INT8, $2::INT8) AS s (g)`
		for _, stmt := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO accounts (code, normal_side, allow_negative, shards, tracks_lots, created_at)
			  SELECT ` + member + `, 'credit', false, 1, true, $3::TIMESTAMPTZ` + series, []any{lo, hi, earnedAt}},
			{`INSERT INTO account_balances (account_code, shard, balance, lots, next_lot_expiry)
			  SELECT ` + member + `, 0, $3::INT8,
			         jsonb_build_array(jsonb_build_object('lot', ` + lot + `, 'expires_at', $4::TIMESTAMPTZ, 'open', $3::INT8)), $4::TIMESTAMPTZ` + series,
				[]any{lo, hi, benchPoints, expiresAt}},
			{`INSERT INTO transactions (id, kind, caller_id, idempotency_key, effective_at, recorded_at, posting_count, metadata, lots)
			  SELECT ` + lot + `, 'earn', 'bench', 'seed-' || g, $3::TIMESTAMPTZ, $3::TIMESTAMPTZ, 2, '{}'::JSONB,
			         jsonb_build_array(jsonb_build_object('account', ` + member + `, 'lot', ` + lot + `, 'points', $4::INT8, 'expires_at', $5::TIMESTAMPTZ))` + series,
				[]any{lo, hi, earnedAt, benchPoints, expiresAt}},
			{`INSERT INTO postings (transaction_id, seq, account_code, amount, recorded_at, balance_after, held_after)
			  SELECT ` + lot + `, 0, ` + member + `, $4::INT8, $3::TIMESTAMPTZ, $4::INT8, 0` + series + `
			  UNION ALL
			  SELECT ` + lot + `, 1, 'programme:issued:stay', -$4::INT8, $3::TIMESTAMPTZ, NULL, NULL` + series,
				[]any{lo, hi, earnedAt, benchPoints}},
			{`UPDATE account_balances SET balance = balance - ($2::INT8 - $1::INT8 + 1) * $3::INT8
			  WHERE account_code = 'programme:issued:stay' AND shard = 0`, []any{lo, hi, benchPoints}},
		} {
			if _, err := db.Pool.Exec(ctx, stmt.sql, stmt.args...); err != nil {
				b.Fatalf("set up members %d-%d: %v", lo, hi, err)
			}
		}
	}
	if _, err := db.Pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	setup := time.Since(setupStart)
	b.Logf("setup: %d members with one due lot each in %s", benchMembers, setup.Round(time.Millisecond))

	var mem runtime.MemStats
	var peakHeap uint64
	sample := func() {
		runtime.ReadMemStats(&mem)
		peakHeap = max(peakHeap, mem.HeapAlloc)
	}
	runtime.GC()
	sample()
	job := expiry.New(l, progs, clock.Now)
	b.ResetTimer()
	start := time.Now()
	got, err := job.Run(ctx, asOf, benchBatch, func(expiry.Progress) { sample() })
	elapsed := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if got.Expired != benchMembers || got.Points != benchMembers*benchPoints || !got.Done {
		b.Fatalf("expiry %+v: want all %d members' %d points expired", got, benchMembers, benchMembers*benchPoints)
	}
	found, err := l.Verify(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, d := range found {
		b.Errorf("discrepancy: %s", d)
	}
	b.ReportMetric(float64(got.Expired)/elapsed.Seconds(), "members/s")
	b.ReportMetric(float64(got.Points), "points")
	b.ReportMetric(float64(peakHeap)/(1<<20), "heap-MiB")
	b.ReportMetric(setup.Seconds(), "setup-s")
	b.Logf("expiry: %d members, %d points, in %s (%.0f members/s), peak Go heap %.1f MiB; verified",
		got.Expired, got.Points, elapsed.Round(time.Millisecond), float64(got.Expired)/elapsed.Seconds(), float64(peakHeap)/(1<<20))
}
