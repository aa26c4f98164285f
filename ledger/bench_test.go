package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
)

const benchMembers = 100_000

var benchSetup struct {
	once   sync.Once
	db     *database.DB
	ledger *ledger.Ledger
	err    error
}

// benchLedger is one database with 100,000 members, 100,000 spread source
// accounts and the shared stay-points account, shared by both modes.
func benchLedger(b *testing.B) (*database.DB, *ledger.Ledger) {
	benchSetup.once.Do(func() {
		db := dbtest.Engines()[0].NewDatabase(b)
		l := ledger.New(db, ledger.Options{Clock: testclock.Wall})
		accounts := []ledger.Account{{Code: stayPoints, NormalSide: ledger.Debit, AllowNegative: true, Shards: 32}}
		for i := range benchMembers {
			accounts = append(accounts,
				ledger.Account{Code: member(i), NormalSide: ledger.Credit, Shards: 1},
				ledger.Account{Code: fmt.Sprintf("source:%d", i), NormalSide: ledger.Debit, AllowNegative: true, Shards: 1})
		}
		benchSetup.db, benchSetup.ledger = db, l
		if benchSetup.err = l.CreateAccounts(context.Background(), accounts); benchSetup.err != nil {
			return
		}
		// Planner statistics for the bulk load, as autovacuum would gather
		// them on a live system: without them PostgreSQL may scan instead of
		// using the keys, and serializable transactions then conflict on
		// whole tables.
		_, benchSetup.err = db.Pool.Exec(context.Background(), `ANALYZE`)
	})
	if benchSetup.err != nil {
		b.Fatal(benchSetup.err)
	}
	return benchSetup.db, benchSetup.ledger
}

// BenchmarkEarn posts the same two-posting earn, from 16 concurrent
// clients, in two modes:
//   - spread: the points come from one of 100,000 source accounts, so
//     transactions rarely share a row;
//   - hot: every transaction takes its points from the one shared
//     programme account, as real stays do.
//
// The hot mode should be within 10% of the spread mode: the programme
// account's balance is spread over shards leased to in-flight transactions.
// Run: make bench-ledger (PostgreSQL with fsync on).
func BenchmarkEarn(b *testing.B) {
	db, l := benchLedger(b)
	var seq atomic.Int64
	for _, mode := range []string{"spread", "hot"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			before := db.Stats()
			b.SetParallelism(max(1, 16/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
				for pb.Next() {
					n := seq.Add(1)
					to := member(rng.IntN(benchMembers))
					from := stayPoints
					if mode == "spread" {
						from = fmt.Sprintf("source:%d", rng.IntN(benchMembers))
					}
					_, err := l.Post(ctx, ledger.PostRequest{
						CallerID: "bench", IdempotencyKey: fmt.Sprintf("bench-%d", n), Kind: ledger.KindEarn, EffectiveAt: start,
						Postings: []ledger.Posting{{Account: from, Amount: -100}, {Account: to, Amount: 100}},
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			after := db.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
			b.ReportMetric(float64(after.Retries-before.Retries)/float64(b.N), "retries/op")
		})
	}
}
