package webhooks_test

import (
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// The stream logs what it delivers a request at a time: one row per
// request and none per event, while the delivery log still shows every
// event once, delivered at its first attempt with its request's status
// code, newest first, page after page (7 a page, over requests of 5
// events, on an endpoint that got 2 windows of events), for every status
// and for delivered alone, and nothing pending.
func TestStreamedEventsAreLoggedOneRowPerRequestAndListedOneByOne(t *testing.T) {
	const members, perMember = 3, 400 // 1,200 events: 2 windows
	f := newFixture(t, dbtest.New(t), members)
	rc := newReceiver(t, func(call, http.ResponseWriter, *http.Request) int { return http.StatusAccepted })
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{BatchSize: 5})
	var want []uuid.UUID
	for i := range perMember {
		for m := 1; m <= members; m++ {
			want = append(want, f.earn(fmt.Sprintf("%d-%d", m, i), m, 10))
		}
	}
	f.sequence()
	if n := f.drain(f.dispatcher("d", webhooks.DispatcherOptions{Workers: 3})); n != len(want) {
		t.Fatalf("attempted %d deliveries, want %d", n, len(want))
	}
	if rows := f.count(`SELECT count(*) FROM webhook_deliveries`); rows != 0 {
		t.Fatalf("%d delivery rows for events the stream delivered, want none", rows)
	}
	if rows, requests := f.count(`SELECT count(*) FROM webhook_requests WHERE endpoint_id = $1`, ep.ID), len(rc.got()); rows != requests {
		t.Fatalf("%d request rows for %d requests", rows, requests)
	}
	slices.Reverse(want) // newest first
	for _, status := range []string{"", webhooks.StatusDelivered} {
		got := f.deliveries(ep.ID, status)
		if len(got) != len(want) {
			t.Fatalf("status %q: %d deliveries listed, want %d", status, len(got), len(want))
		}
		for i, d := range got {
			if d.EventID != want[i] || d.Status != webhooks.StatusDelivered || d.Attempts != 1 || d.LastStatusCode != http.StatusAccepted ||
				d.LastAttemptAt.IsZero() || d.DeliveredAt.IsZero() || d.EventType != events.TypePointsEarned || d.Subject == "" {
				t.Fatalf("status %q: delivery %d is %+v, want event %s delivered at its first attempt with 202", status, i, d, want[i])
			}
			if i > 0 && d.Position >= got[i-1].Position {
				t.Fatalf("status %q: position %d after %d: not newest first", status, d.Position, got[i-1].Position)
			}
		}
	}
	if pending := f.deliveries(ep.ID, webhooks.StatusPending); len(pending) != 0 {
		t.Fatalf("%d pending deliveries, want none", len(pending))
	}
}

// RedeliverWebhookEvent of an event the stream delivered takes it out of
// its request's row and gives it a delivery row of its own, pending: the
// log shows it once, pending, among the delivered ones, then delivered
// again, with the event's id as webhook-id. Prune then deletes the
// requests and rows of the events it deletes.
func TestRedeliveringAStreamedEventGivesItARowOfItsOwn(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 2)
	rc := newReceiver(t, nil)
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{BatchSize: 4})
	var ids []uuid.UUID
	for i := range 10 {
		ids = append(ids, f.earn(fmt.Sprintf("e%d", i), 1+i%2, 10))
	}
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{})
	f.drain(d)
	again := ids[5]
	got, err := f.store.Redeliver(f.ctx, "admin", "again", ep.ID, again)
	if err != nil {
		t.Fatal(err)
	}
	if got.EventID != again || got.Status != webhooks.StatusPending || got.Attempts != 1 {
		t.Fatalf("Redeliver answered %+v, want the event pending after 1 attempt", got)
	}
	if n := f.count(`SELECT count(*) FROM webhook_requests WHERE (SELECT position FROM events WHERE id = $1) = ANY(positions)`, again); n != 0 {
		t.Fatalf("the redelivered event is still in %d requests", n)
	}
	statuses := func() map[uuid.UUID]string {
		out := map[uuid.UUID]string{}
		for _, dl := range f.deliveries(ep.ID, "") {
			if _, twice := out[dl.EventID]; twice {
				t.Fatalf("event %s listed twice", dl.EventID)
			}
			out[dl.EventID] = dl.Status
		}
		return out
	}
	listed := statuses()
	if len(listed) != len(ids) || listed[again] != webhooks.StatusPending || listed[ids[4]] != webhooks.StatusDelivered {
		t.Fatalf("after Redeliver the log lists %v, want every event once and %s pending", listed, again)
	}
	before := len(rc.got())
	f.drain(d)
	calls := rc.got()[before:]
	if len(calls) != 1 || calls[0].ID != again.String() {
		t.Fatalf("after Redeliver the receiver got %d requests (%+v), want one with webhook-id %s", len(calls), calls, again)
	}
	if listed := statuses(); listed[again] != webhooks.StatusDelivered || len(listed) != len(ids) {
		t.Fatalf("after the redelivery the log lists %v", listed)
	}

	f.clock.Advance(retention + time.Hour)
	if n := f.prune(); n != len(ids) {
		t.Fatalf("pruned %d events, want %d", n, len(ids))
	}
	if n := f.count(`SELECT count(*) FROM webhook_requests`) + f.count(`SELECT count(*) FROM webhook_deliveries`); n != 0 {
		t.Fatalf("%d requests and delivery rows left after their events were pruned", n)
	}
}
