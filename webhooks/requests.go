package webhooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/loyalty-ledger/loyalty/events"
)

// The request log: the stream logs the events it delivers a request at a
// time (webhook_requests, written by recordWindow), and the delivery log
// shows each of them as a delivery, delivered at its first attempt, with
// its request's status code and latency. An event has a delivery row or a
// place in a request, never both: RedeliverWebhookEvent takes it out of
// its request when it gives it a row.

// maxRequestSpan bounds the positions of one request: its events are of
// one window, which reads consecutive positions.
const maxRequestSpan = events.WebhookRequestSpan

type loggedRequest struct {
	firstPosition         int64
	positions             []int64
	statusCode            int32
	latencyMicros         int64
	attemptedAt, recorded time.Time
}

func scanLoggedRequest(r pgx.CollectableRow) (loggedRequest, error) {
	var q loggedRequest
	err := r.Scan(&q.firstPosition, &q.positions, &q.statusCode, &q.latencyMicros, &q.attemptedAt, &q.recorded)
	return q, err
}

// loggedDeliveries returns the newest limit deliveries before position
// before that the endpoint's request log holds, newest first.
func loggedDeliveries(ctx context.Context, db *pgxpool.Pool, endpointID string, before int64, limit int) ([]Delivery, error) {
	type candidate struct {
		position int64
		request  *loggedRequest
	}
	var candidates []candidate
	upper := before // the requests not read yet begin before upper
	for {
		rows, err := db.Query(ctx, `SELECT first_position, positions, status_code, latency_us, attempted_at, recorded_at
			FROM webhook_requests WHERE endpoint_id = $1 AND first_position < $2
			ORDER BY first_position DESC LIMIT $3`, endpointID, upper, limit)
		if err != nil {
			return nil, fmt.Errorf("read the request log: %w", err)
		}
		page, err := pgx.CollectRows(rows, scanLoggedRequest)
		if err != nil {
			return nil, fmt.Errorf("read the request log: %w", err)
		}
		for i := range page {
			for _, p := range page[i].positions {
				if p < before {
					candidates = append(candidates, candidate{p, &page[i]})
				}
			}
		}
		if len(page) < limit {
			break // read them all
		}
		upper = page[len(page)-1].firstPosition
		slices.SortFunc(candidates, func(a, b candidate) int { return cmp.Compare(b.position, a.position) })
		// A request not read yet holds positions below upper+maxRequestSpan-1:
		// none of them is among the newest limit when the limit-th is above.
		if len(candidates) >= limit && upper+maxRequestSpan-1 <= candidates[limit-1].position {
			break
		}
	}
	slices.SortFunc(candidates, func(a, b candidate) int { return cmp.Compare(b.position, a.position) })
	candidates = candidates[:min(len(candidates), limit)]
	if len(candidates) == 0 {
		return nil, nil
	}
	positions := make([]int64, len(candidates))
	for i, c := range candidates {
		positions[i] = c.position
	}
	type eventRef struct {
		id           uuid.UUID
		typ, subject string
	}
	refs := map[int64]eventRef{}
	rows, err := db.Query(ctx, `SELECT position, id, type, subject FROM events WHERE position = ANY($1::INT8[])`, positions)
	if err != nil {
		return nil, fmt.Errorf("read the logged events: %w", err)
	}
	var position int64
	var ref eventRef
	if _, err := pgx.ForEachRow(rows, []any{&position, &ref.id, &ref.typ, &ref.subject}, func() error { refs[position] = ref; return nil }); err != nil {
		return nil, fmt.Errorf("read the logged events: %w", err)
	}
	out := make([]Delivery, 0, len(candidates))
	for _, c := range candidates {
		e, ok := refs[c.position]
		if !ok {
			continue // pruned with its request, in a transaction not yet seen
		}
		q := c.request
		out = append(out, Delivery{EndpointID: endpointID, EventID: e.id, EventType: e.typ, Position: c.position, Subject: e.subject,
			Status: StatusDelivered, Attempts: 1, LastStatusCode: int(q.statusCode),
			LastLatency: time.Duration(q.latencyMicros) * time.Microsecond, LastAttemptAt: q.attemptedAt.UTC(),
			DeliveredAt: q.recorded.UTC(), CreatedAt: q.recorded.UTC()})
	}
	return out, nil
}

// redeliverLogged gives an event that the stream delivered a delivery row,
// pending and due at now, and takes it out of its request; ErrNotFound
// when no request of the endpoint delivered it.
func redeliverLogged(ctx context.Context, tx pgx.Tx, endpointID string, eventID uuid.UUID, now time.Time) (Delivery, error) {
	var position int64
	var typ, subject string
	err := tx.QueryRow(ctx, `SELECT position, type, subject FROM events WHERE id = $1`, eventID).Scan(&position, &typ, &subject)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read event: %w", err)
	}
	var first int64
	var statusCode int32
	var latencyMicros int64
	var attemptedAt, recordedAt time.Time
	err = tx.QueryRow(ctx, `SELECT first_position, status_code, latency_us, attempted_at, recorded_at FROM webhook_requests
		WHERE endpoint_id = $1 AND first_position <= $2 AND first_position > $2 - $3 AND $2 = ANY(positions)
		FOR UPDATE`, endpointID, position, maxRequestSpan).Scan(&first, &statusCode, &latencyMicros, &attemptedAt, &recordedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, fmt.Errorf("read the request log: %w", err)
	}
	if _, err := tx.Exec(ctx, `UPDATE webhook_requests SET positions = array_remove(positions, $3)
		WHERE endpoint_id = $1 AND first_position = $2`, endpointID, first, position); err != nil {
		return Delivery{}, fmt.Errorf("take the event out of its request: %w", err)
	}
	return scanDelivery(tx.QueryRow(ctx, `INSERT INTO webhook_deliveries (endpoint_id, event_id, position, event_type, subject, status, blocked, released,
			attempts, next_attempt_at, first_attempt_at, last_attempt_at, last_status_code, last_error, last_latency_us, delivered_at, created_at)
		VALUES ($1, $2, $3, $4, $5, 'pending', false, true, 1, $6, NULL, $7, $8, '', $9, NULL, $10)
		RETURNING `+deliveryColumns, endpointID, eventID, position, typ, subject, now, attemptedAt, statusCode, latencyMicros, recordedAt))
}
