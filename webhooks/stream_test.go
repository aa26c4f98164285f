package webhooks_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// envelopesOf is what a request carried, one event or a batch.
func envelopesOf(c call) []events.Envelope {
	if c.Envelopes != nil {
		return c.Envelopes
	}
	return []events.Envelope{c.Envelope}
}

// inOrder checks that the events delivered to each member came in their
// sequence, from 1 and without a gap, each once.
func inOrder(t *testing.T, delivered []events.Envelope) {
	t.Helper()
	next := map[string]int64{}
	for _, e := range delivered {
		seq, err := strconv.ParseInt(e.Sequence, 10, 64)
		if err != nil {
			t.Fatalf("event %s: sequence %q", e.ID, e.Sequence)
		}
		if want := next[e.Subject] + 1; seq != want {
			t.Fatalf("%s got its event %d after %d", e.Subject, seq, want-1)
		}
		next[e.Subject] = seq
	}
}

// An endpoint with a batch size gets the events in the CloudEvents JSON
// batch format, at most that many per request, each request signed as a
// whole with a webhook-id naming the batch (the event's own id for a
// batch of one): every event once, each member's in order.
func TestABatchEndpointGetsSignedCloudEventsBatchesInOrder(t *testing.T) {
	const members, perMember, batchSize = 3, 20, 7
	f := newFixture(t, dbtest.New(t), members)
	rc := newReceiver(t, nil)
	ep, secret := f.endpoint(rc.url(), webhooks.CreateRequest{BatchSize: batchSize})
	want := map[string]bool{}
	for i := range perMember {
		for m := 1; m <= members; m++ {
			want[f.earn(fmt.Sprintf("%d-%d", m, i), m, 10).String()] = true
		}
	}
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{Workers: 2})
	if n := f.drain(d); n != len(want) {
		t.Fatalf("attempted %d deliveries, want %d", n, len(want))
	}
	var delivered []events.Envelope
	for _, c := range rc.got() {
		if c.ContentType != "application/cloudevents-batch+json" {
			t.Fatalf("content type %q", c.ContentType)
		}
		if err := verify(secret, c, f.clock.Now()); err != nil {
			t.Fatalf("request %s: %v", c.ID, err)
		}
		if len(c.Envelopes) == 0 || len(c.Envelopes) > batchSize {
			t.Fatalf("a request of %d events, want 1 to %d", len(c.Envelopes), batchSize)
		}
		if len(c.Envelopes) == 1 && c.ID != c.Envelopes[0].ID || len(c.Envelopes) > 1 && !strings.HasPrefix(c.ID, "batch_") {
			t.Fatalf("webhook-id %q for a batch of %d", c.ID, len(c.Envelopes))
		}
		delivered = append(delivered, c.Envelopes...)
	}
	if len(delivered) != len(want) {
		t.Fatalf("%d events delivered, want %d", len(delivered), len(want))
	}
	for _, e := range delivered {
		if !want[e.ID] {
			t.Fatalf("unexpected event %s", e.ID)
		}
	}
	inOrder(t, delivered)
	if got := f.deliveries(ep.ID, webhooks.StatusDelivered); len(got) != len(want) {
		t.Fatalf("%d deliveries logged delivered, want %d", len(got), len(want))
	}
}

// A batch that fails is not sent again as it was: its events wait for
// their retries and come one by one, each as a batch of one whose
// webhook-id is the event's id, every member's in order after the
// members' events that were delivered.
func TestAFailedBatchsEventsComeAgainOneByOneInOrder(t *testing.T) {
	const members, perMember = 2, 3
	f := newFixture(t, dbtest.New(t), members)
	var once sync.Once
	rc := newReceiver(t, func(call, http.ResponseWriter, *http.Request) int {
		status := 0
		once.Do(func() { status = http.StatusInternalServerError })
		return status
	})
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{BatchSize: 10})
	var ids []uuid.UUID
	for i := range perMember {
		for m := 1; m <= members; m++ {
			ids = append(ids, f.earn(fmt.Sprintf("%d-%d", m, i), m, 10))
		}
	}
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{Workers: 1})
	if n := f.step(d); n != len(ids) {
		t.Fatalf("first round attempted %d, want one batch of %d", n, len(ids))
	}
	if pending := f.deliveries(ep.ID, webhooks.StatusPending); len(pending) != len(ids) {
		t.Fatalf("%d deliveries pending after the failed batch, want %d", len(pending), len(ids))
	}
	f.clock.Advance(2 * time.Hour)
	if n := f.drain(d); n != len(ids) {
		t.Fatalf("retries attempted %d, want %d", n, len(ids))
	}
	calls := rc.got()
	if len(calls) != 1+len(ids) || len(calls[0].Envelopes) != len(ids) {
		t.Fatalf("%d requests (the first of %d events), want the batch of %d and then one per event", len(calls), len(calls[0].Envelopes), len(ids))
	}
	var delivered []events.Envelope
	for _, c := range calls[1:] {
		if len(c.Envelopes) != 1 || c.ID != c.Envelopes[0].ID {
			t.Fatalf("retry %s carried %d events", c.ID, len(c.Envelopes))
		}
		delivered = append(delivered, c.Envelopes...)
	}
	inOrder(t, delivered)
	for _, id := range ids {
		if dl := f.delivery(ep.ID, id); dl.Status != webhooks.StatusDelivered || dl.Attempts != 2 {
			t.Errorf("%s: %+v, want delivered at its second attempt", id, dl)
		}
	}
}

// An endpoint whose every attempt fails is not sent the rest of its
// events over and over: a window stops after a few failures, and the
// next waits for a backoff; its events wait after its cursor, or for
// their own retries, and all arrive once it answers again.
func TestAnEndpointThatFailsEverythingIsLeftAloneUntilItsBackoffEnds(t *testing.T) {
	const members = 10
	f := newFixture(t, dbtest.New(t), members)
	var mu sync.Mutex
	down := true
	rc := newReceiver(t, func(call, http.ResponseWriter, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	want := map[string]bool{}
	for m := 1; m <= members; m++ {
		want[f.earn(fmt.Sprintf("e%d", m), m, 10).String()] = true
	}
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{Workers: 1})
	first := f.step(d)
	if first == 0 || first >= members {
		t.Fatalf("the first round attempted %d, want a few, not all %d", first, members)
	}
	if n := f.step(d); n != 0 {
		t.Fatalf("attempted %d more before the backoff ended", n)
	}
	if failing := f.deliveries(ep.ID, webhooks.StatusPending); len(failing) != first {
		t.Fatalf("%d deliveries wait for a retry, want the %d attempted", len(failing), first)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	f.clock.Advance(2 * time.Hour)
	f.drain(d)
	got := map[string]int{}
	for _, c := range rc.got()[first:] {
		got[c.Envelope.ID]++
	}
	if len(got) != members {
		t.Fatalf("%d events delivered once it answered, want %d", len(got), members)
	}
	for id, n := range got {
		if !want[id] || n != 1 {
			t.Fatalf("event %s delivered %d times", id, n)
		}
	}
}

// A window that queues a member's event behind a retry still pending when
// it was read, and records it after that retry was delivered and let its
// member go, lets the event go itself: it is not left blocked with nothing
// before it.
func TestAnEventQueuedBehindARetryDoneMeanwhileIsNotLeftBlocked(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 2)
	release := make(chan struct{})
	var failOnce sync.Once
	var mu sync.Mutex
	var hold string
	rc := newReceiver(t, func(c call, _ http.ResponseWriter, r *http.Request) int {
		mu.Lock()
		held := c.ID == hold
		mu.Unlock()
		if held && c.Nth == 1 {
			return hang(r, release)
		}
		status := 0
		if c.Envelope.Subject == member(1) {
			failOnce.Do(func() { status = http.StatusInternalServerError })
		}
		return status
	})
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	a, b := f.dispatcher("a", webhooks.DispatcherOptions{}), f.dispatcher("b", webhooks.DispatcherOptions{})
	first := f.earn("first", 1, 10)
	f.sequence()
	f.step(a) // first fails: a retry is pending
	f.clock.Advance(2 * time.Hour)

	second, other := f.earn("second", 1, 10), f.earn("other", 2, 10)
	mu.Lock()
	hold = other.String()
	mu.Unlock()
	f.sequence()
	stepped := make(chan error, 1)
	go func() {
		_, err := a.Step(f.ctx) // its window: second waits behind first's retry, other hangs
		stepped <- err
	}()
	for c := range rc.arrived {
		if c.ID == other.String() {
			break
		}
	}
	f.step(b) // first's retry, delivered
	f.step(b) // lets member 1 go: nothing of it is pending yet
	if dl := f.delivery(ep.ID, first); dl.Status != webhooks.StatusDelivered {
		t.Fatalf("first's retry: %+v", dl)
	}
	close(release)
	if err := <-stepped; err != nil {
		t.Fatal(err)
	}
	f.drain(a)
	if dl := f.delivery(ep.ID, second); dl.Status != webhooks.StatusDelivered {
		t.Fatalf("second is %+v, want delivered once first was", dl)
	}
}
