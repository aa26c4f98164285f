package webhooks_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

const retention = 30 * 24 * time.Hour

func (f *fixture) prune() int {
	f.t.Helper()
	n, err := events.Prune(f.ctx, f.db, f.clock.Now().Add(-retention), 2)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *fixture) eventIDs() []uuid.UUID {
	f.t.Helper()
	rows, err := f.db.Pool.Query(f.ctx, `SELECT id FROM events ORDER BY position`)
	if err != nil {
		f.t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		f.t.Fatal(err)
	}
	return ids
}

func (f *fixture) count(sql string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.db.Pool.QueryRow(f.ctx, sql, args...).Scan(&n); err != nil {
		f.t.Fatal(err)
	}
	return n
}

// Prune deletes the old events no endpoint needs, with their deliveries,
// in batches: an event delivered (or dead) everywhere, or that an endpoint
// does not take, goes; one pending at an endpoint, or not yet fanned out
// to one, stays; a deleted endpoint holds nothing back, and goes itself
// once its log has gone and it is older than the retention.
func TestPruneDeletesOnlyWhatNoEndpointNeeds(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 2)
	rc := newReceiver(t, nil)
	delivered, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	f.endpoint(rc.url()+"/redeemed", webhooks.CreateRequest{EventTypes: []string{events.TypePointsRedeemed}}) // takes none of them
	waiting, _ := f.endpoint(rc.url()+"/waiting", webhooks.CreateRequest{})
	paused := true
	if _, err := f.store.Update(f.ctx, "admin", "pause", waiting.ID, webhooks.UpdateRequest{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	var old []uuid.UUID
	for i := range 5 {
		old = append(old, f.earn(fmt.Sprintf("old%d", i), 1+i%2, 10))
	}
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{})
	f.drain(d)

	f.clock.Advance(retention + time.Hour)
	recent := f.earn("recent", 1, 10)
	f.sequence()
	f.drain(d)
	if n := f.prune(); n != 0 {
		t.Fatalf("pruned %d events while the paused endpoint's deliveries of them were pending", n)
	}

	// Deleted, the paused endpoint needs nothing; a new endpoint needs
	// only what came after it, and an event not fanned out to it yet.
	if err := f.store.Delete(f.ctx, "admin", "delete", waiting.ID); err != nil {
		t.Fatal(err)
	}
	f.endpoint(rc.url()+"/late", webhooks.CreateRequest{})
	f.clock.Advance(time.Minute)
	unsent := f.earn("unsent", 2, 10)
	f.sequence() // no dispatcher round: not fanned out yet
	if n := f.prune(); n != len(old) {
		t.Fatalf("pruned %d events, want the %d old ones", n, len(old))
	}
	if got, want := f.eventIDs(), []uuid.UUID{recent, unsent}; !slices.Equal(got, want) {
		t.Fatalf("events left %v, want %v", got, want)
	}
	if n := f.count(`SELECT count(*) FROM webhook_deliveries WHERE event_id = ANY($1::UUID[])`, old); n != 0 {
		t.Fatalf("%d deliveries of pruned events left", n)
	}
	if dl := f.deliveries(delivered.ID, ""); len(dl) != 1 || dl[0].EventID != recent {
		t.Fatalf("delivery log after the prune: %+v, want the recent event's", dl)
	}
	if n := f.count(`SELECT count(*) FROM webhook_endpoints WHERE id = $1`, waiting.ID); n != 1 {
		t.Fatal("the deleted endpoint went before its retention")
	}

	// Later, everything is old and delivered, and the deleted endpoint's
	// log is gone: it goes too.
	f.drain(d)
	f.clock.Advance(retention + time.Hour)
	f.sequence()
	if n := f.prune(); n != 2 {
		t.Fatalf("pruned %d events, want 2", n)
	}
	if n := f.count(`SELECT count(*) FROM webhook_endpoints WHERE id = $1`, waiting.ID); n != 0 {
		t.Fatal("the deleted endpoint is still there")
	}
	if n := f.count(`SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL`); n != 3 {
		t.Fatalf("%d endpoints left, want 3", n)
	}
	// Positions go on from where they were: pruning forgets no cursor.
	next := f.earn("next", 1, 10)
	f.sequence()
	f.drain(d)
	if dl := f.deliveries(delivered.ID, ""); len(dl) != 1 || dl[0].EventID != next || dl[0].Position != 8 {
		t.Fatalf("after the prune: %+v, want the next event at position 8", dl)
	}
}
