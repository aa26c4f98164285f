package webhooks_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// BenchmarkDispatch measures deliveries per second from sequenced events
// to a local receiver that answers 200 at once: b.N events of 1,000
// members, one endpoint, one dispatcher (Run, 32 workers), one event per
// request and 100. The events are written and sequenced before the timer
// starts; the time covers the windows' reads, the HTTP requests and the
// recording of the windows.
//
//	go test ./webhooks -run '^$' -bench Dispatch -benchtime 50000x
func BenchmarkDispatch(b *testing.B) {
	for _, batchSize := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batchSize), func(b *testing.B) { benchmarkDispatch(b, batchSize) })
	}
}

func benchmarkDispatch(b *testing.B, batchSize int) {
	const members, perTransaction = 1000, 500
	f := newFixture(b, dbtest.New(b), 0)
	rc := newReceiver(b, nil)
	f.endpoint(rc.url(), webhooks.CreateRequest{BatchSize: batchSize})
	for written := 0; written < b.N; {
		var batch []events.Record
		for ; written < b.N && len(batch) < perTransaction; written++ {
			batch = append(batch, events.Record{ID: events.NewID(events.TypeMemberUpdated, fmt.Sprint(written)), Type: events.TypeMemberUpdated,
				Subject: member(1 + written%members), OccurredAt: f.clock.Now(), RecordedAt: f.clock.Now(),
				Data: map[string]int{"n": written}})
		}
		f.announce(batch...)
	}
	for {
		n, err := f.seq.Step(f.ctx, events.MaxSequenceBatch)
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	d := f.dispatcher("bench", webhooks.DispatcherOptions{PollInterval: 5 * time.Millisecond})
	ctx, cancel := context.WithCancel(f.ctx)
	var running sync.WaitGroup
	defer running.Wait()
	defer cancel()

	b.ResetTimer()
	running.Go(func() {
		if err := d.Run(ctx); err != nil {
			b.Error(err)
		}
	})
	waitFor(b, 10*time.Minute, "every delivery recorded", func() bool { return d.Stats().Delivered >= uint64(b.N) })
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "deliveries/s")
	cancel()
	running.Wait()
	if st := d.Stats(); st.Delivered != uint64(b.N) {
		b.Fatalf("stats %+v: want %d delivered", st, b.N)
	}
}
