package events

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
)

// MaxPruneBatch bounds the events one transaction of Prune reads.
const MaxPruneBatch = 5000

// WebhookRequestSpan bounds the positions of one request of the webhook
// request log (package webhooks): the events of a request are of one
// window of the stream, which reads at most this many consecutive
// positions. Prune finds a batch's requests by it.
const WebhookRequestSpan = 1000

// Prune deletes the sequenced events recorded before olderThan that no
// webhook endpoint needs any more, with their deliveries, and returns how
// many events it deleted. An endpoint that is not deleted needs an event
// it has not been given yet (past its fan-out cursor) and one whose
// delivery to it is pending (or done, but the next delivery of its subject
// is not yet released); a delivered or dead delivery, an event the
// endpoint does not take, or one from before it existed, it does not. A
// deleted endpoint needs nothing: its log goes with the events, and the
// endpoint itself once nothing of it is left and it was deleted before
// olderThan.
//
// It reads and deletes at most batch (1 to MaxPruneBatch) events per
// transaction, each short, so that writers are never held up for long;
// it goes on until it reaches events recorded after olderThan. The
// retention (olderThan) is the caller's. The webhook tables are read by
// name here because package webhooks builds on this one.
func Prune(ctx context.Context, db *database.DB, olderThan time.Time, batch int) (int, error) {
	if batch < 1 || batch > MaxPruneBatch {
		return 0, fmt.Errorf("prune events: batch %d: must be 1 to %d", batch, MaxPruneBatch)
	}
	total := 0
	after := int64(0)
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		var deleted int
		var last int64
		var done bool
		err := db.WriteTx(ctx, func(tx pgx.Tx) error {
			var err error
			deleted, last, done, err = pruneBatch(ctx, tx, after, olderThan, batch)
			return err
		})
		if err != nil {
			return total, fmt.Errorf("prune events after position %d: %w", after, err)
		}
		total += deleted
		if done {
			break
		}
		after = last
	}
	// Deleted endpoints whose log has gone with its events.
	if err := db.WriteTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM webhook_endpoints WHERE id IN (
			SELECT e.id FROM webhook_endpoints AS e
			WHERE e.deleted_at < $1 AND NOT EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.endpoint_id = e.id)
			  AND NOT EXISTS (SELECT 1 FROM webhook_requests AS r WHERE r.endpoint_id = e.id)
			LIMIT $2)`, olderThan, batch)
		return err
	}); err != nil {
		return total, fmt.Errorf("prune deleted webhook endpoints: %w", err)
	}
	return total, nil
}

// pruneBatch deletes what it may of the batch events after position
// after, and returns how many it deleted, the last position it read, and
// whether it is done (it read no event, or none old enough).
func pruneBatch(ctx context.Context, tx pgx.Tx, after int64, olderThan time.Time, batch int) (int, int64, bool, error) {
	rows, err := tx.Query(ctx, `SELECT id, deleted_at IS NULL, fanned_out FROM webhook_endpoints`)
	if err != nil {
		return 0, 0, false, fmt.Errorf("read webhook endpoints: %w", err)
	}
	var all, live []string
	floor := int64(1<<63 - 1)
	var id string
	var isLive bool
	var cursor int64
	if _, err := pgx.ForEachRow(rows, []any{&id, &isLive, &cursor}, func() error {
		all = append(all, id)
		if isLive {
			live = append(live, id)
			floor = min(floor, cursor)
		}
		return nil
	}); err != nil {
		return 0, 0, false, fmt.Errorf("read webhook endpoints: %w", err)
	}
	// Past floor, some endpoint has not been given the event yet.
	rows, err = tx.Query(ctx, `SELECT position, id, recorded_at FROM events
		WHERE position > $1 AND position <= $2 ORDER BY position LIMIT $3`, after, floor, batch)
	if err != nil {
		return 0, 0, false, fmt.Errorf("read events: %w", err)
	}
	type candidate struct {
		position   int64
		id         uuid.UUID
		recordedAt time.Time
	}
	read, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (candidate, error) {
		var c candidate
		err := r.Scan(&c.position, &c.id, &c.recordedAt)
		return c, err
	})
	if err != nil {
		return 0, 0, false, fmt.Errorf("read events: %w", err)
	}
	if len(read) == 0 {
		return 0, 0, true, nil
	}
	last := read[len(read)-1].position
	var ids []uuid.UUID
	for _, c := range read {
		if c.recordedAt.Before(olderThan) {
			ids = append(ids, c.id)
		}
	}
	if len(ids) == 0 {
		// Positions follow recording times (nearly: a late commit can be
		// sequenced after a later recording): a batch without an old
		// event is where the recent ones begin.
		return 0, last, true, nil
	}
	needed := map[uuid.UUID]bool{}
	if len(live) > 0 {
		// A done delivery not yet released still has its subject's next
		// delivery to let go.
		rows, err := tx.Query(ctx, `SELECT DISTINCT event_id FROM webhook_deliveries
			WHERE endpoint_id = ANY($1::TEXT[]) AND event_id = ANY($2::UUID[]) AND (status = 'pending' OR NOT released)`, live, ids)
		if err != nil {
			return 0, 0, false, fmt.Errorf("read pending deliveries: %w", err)
		}
		pending, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
		if err != nil {
			return 0, 0, false, fmt.Errorf("read pending deliveries: %w", err)
		}
		for _, p := range pending {
			needed[p] = true
		}
	}
	var prune []uuid.UUID
	for _, id := range ids {
		if !needed[id] {
			prune = append(prune, id)
		}
	}
	if len(prune) == 0 {
		return 0, last, false, nil
	}
	if len(all) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE endpoint_id = ANY($1::TEXT[]) AND event_id = ANY($2::UUID[])`,
			all, prune); err != nil {
			return 0, 0, false, fmt.Errorf("delete deliveries: %w", err)
		}
	}
	// The sequencer numbers a subject's next event after its newest one:
	// the numbers of the subjects' events about to go are kept, so that a
	// subject whose every event went goes on from where it was.
	if _, err := tx.Exec(ctx, `INSERT INTO event_subjects (subject, last_seq)
		SELECT subject, max(seq) FROM events WHERE id = ANY($1::UUID[]) GROUP BY subject
		ON CONFLICT (subject) DO UPDATE SET last_seq = GREATEST(event_subjects.last_seq, excluded.last_seq)`, prune); err != nil {
		return 0, 0, false, fmt.Errorf("keep the pruned subjects' sequence numbers: %w", err)
	}
	tag, err := tx.Exec(ctx, `DELETE FROM events WHERE id = ANY($1::UUID[])`, prune)
	if err != nil {
		return 0, 0, false, fmt.Errorf("delete events: %w", err)
	}
	// The requests that delivered only events gone now go too. A request's
	// events are fewer than WebhookRequestSpan apart: the requests of this
	// batch's events begin after after-WebhookRequestSpan.
	if len(all) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM webhook_requests
			WHERE endpoint_id = ANY($1::TEXT[]) AND first_position > $2 AND first_position <= $3
			  AND NOT EXISTS (SELECT 1 FROM events AS e WHERE e.position = ANY(webhook_requests.positions))`,
			all, after-WebhookRequestSpan, last); err != nil {
			return 0, 0, false, fmt.Errorf("delete delivery requests: %w", err)
		}
	}
	return int(tag.RowsAffected()), last, false, nil
}
