package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/events"
)

// Streaming: the way most events reach an endpoint. A dispatcher that
// holds an endpoint's stream lease reads a window of events after its
// cursor, sends them in messages of up to BatchSize events, several
// messages at once (one lane per group of subjects, a lane's messages one
// after another, so one member's events go out in order), and then, in
// one transaction, moves the cursor past the window and writes its
// delivery log: a row per request that delivered events, none per event
// (requests.go). A delivered event costs no row of its own, and the whole
// window one commit.
//
// Only what fails leaves the stream: a failed message's events become
// pending deliveries that the dispatchers retry one by one (dispatcher.go),
// and the later events of their subjects follow them there, blocked, so
// that order per subject holds. A subject with pending deliveries stays
// there until they are done.
const (
	// streamWindow is the most events one window reads: a request's
	// events are of one window, and the request log finds them by it.
	streamWindow = events.WebhookRequestSpan
	// stopAfterFailures: a window whose first this many messages all fail
	// sends no more; the endpoint looks down.
	stopAfterFailures = 4
)

// errStreamLost: the endpoint's cursor moved, or its lease went to another
// dispatcher, while this one sent a window. What it sent is sent again:
// at least once.
var errStreamLost = errors.New("the endpoint's stream went to another dispatcher")

// streamState is what a dispatcher remembers of an endpoint between
// windows: after a window in which every attempt failed, it waits before
// the next.
type streamState struct {
	failedWindows int
	retryAt       time.Time
}

// stream sends a window of events to each endpoint that has events after
// its cursor, is not paused and is not waiting after failures. It returns
// how many deliveries it attempted and how many endpoints have more
// waiting at once (their window was full).
func (d *Dispatcher) stream(ctx context.Context, targets []*target, last int64) (int, int, error) {
	attempted, backlogged := 0, 0
	for _, t := range targets {
		if t.fannedOut >= last {
			d.noteStreamAge(t.id, 0)
		}
		if t.paused || t.fannedOut >= last || ctx.Err() != nil {
			continue
		}
		d.streamsMu.Lock()
		st := d.streams[t.id]
		d.streamsMu.Unlock()
		if d.now().Before(st.retryAt) {
			continue
		}
		n, more, err := d.streamWindow(ctx, t)
		attempted += n
		if err != nil {
			return attempted, backlogged, err
		}
		if more {
			backlogged++
		}
	}
	return attempted, backlogged, nil
}

// windowEvent is an event of a window and what became of it.
type windowEvent struct {
	event events.Event
	state eventState
	// outcome is its message's, for delivered and failed events, and
	// message numbers the messages of a window from 1.
	outcome outcome
	message int
	at      time.Time
}

type eventState int

const (
	// unsettled: not sent (the window stopped first); the cursor stays
	// before it.
	unsettled eventState = iota
	// skipped: the endpoint does not take it.
	skipped
	delivered
	failed
	// blocked: an earlier delivery of its subject is pending.
	blocked
)

// streamWindow takes the endpoint's stream lease, sends one window and
// records it. It returns how many deliveries it attempted and whether the
// endpoint has more waiting at once: the window was full, and recorded.
func (d *Dispatcher) streamWindow(ctx context.Context, t *target) (int, bool, error) {
	takenAt := d.now().UTC()
	var cursor int64
	err := d.db.Pool.QueryRow(ctx, `UPDATE webhook_endpoints SET stream_holder = $2, stream_until = $3
		WHERE id = $1 AND deleted_at IS NULL AND NOT paused
		  AND (stream_holder IS NULL OR stream_holder = $2 OR stream_until < $4)
		RETURNING fanned_out`, t.id, d.holder, takenAt.Add(d.lease), takenAt).Scan(&cursor)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil // another dispatcher streams it, or it was paused or deleted
	}
	if err != nil {
		return 0, false, fmt.Errorf("take the stream of %s: %w", t.id, err)
	}
	window, pendingSubjects, err := d.readWindow(ctx, t, cursor)
	if err != nil {
		return 0, false, err
	}
	if len(window) == 0 {
		return 0, false, d.dropStream(ctx, t.id)
	}
	d.noteStreamAge(t.id, takenAt.Sub(window[0].event.RecordedAt))
	// Stop sending in time for the last attempt to end and be recorded
	// while the lease holds.
	sendUntil := takenAt.Add((d.lease - d.attemptTimeout) / 2)
	attempted := d.sendWindow(ctx, t, window, pendingSubjects, sendUntil)
	moved, n, deliveredCount, failedCount, err := d.recordWindow(ctx, t, cursor, window)
	if errors.Is(err, errStreamLost) {
		d.log.Warn("webhook stream lost mid-window: its events are sent again", "endpoint_id", t.id)
		return attempted, false, nil
	}
	if err != nil {
		return attempted, false, err
	}
	d.fannedOut.Add(uint64(n))
	d.streamsMu.Lock()
	st := d.streams[t.id]
	if failedCount > 0 && deliveredCount == 0 {
		st.failedWindows++
		st.retryAt = d.now().Add(backoff(st.failedWindows))
	} else if deliveredCount > 0 {
		st = streamState{}
	}
	d.streams[t.id] = st
	d.streamsMu.Unlock()
	return attempted, moved > cursor && len(window) == streamWindow, nil
}

// dropStream gives the endpoint's stream lease back.
func (d *Dispatcher) dropStream(ctx context.Context, endpointID string) error {
	if _, err := d.db.Pool.Exec(ctx, `UPDATE webhook_endpoints SET stream_holder = NULL, stream_until = NULL
		WHERE id = $1 AND stream_holder = $2`, endpointID, d.holder); err != nil {
		return fmt.Errorf("give back the stream of %s: %w", endpointID, err)
	}
	return nil
}

// readWindow reads up to streamWindow events after cursor, marks those the
// endpoint does not take skipped, and reads which of the others' subjects
// have pending deliveries.
func (d *Dispatcher) readWindow(ctx context.Context, t *target, cursor int64) ([]windowEvent, map[string]bool, error) {
	rows, err := d.db.Pool.Query(ctx, `SELECT position, id, type, subject, seq, occurred_at, recorded_at, sequenced_at,
			COALESCE(partner_id, ''), COALESCE(property_id, ''), transaction_id, data::TEXT
		FROM events WHERE position > $1 ORDER BY position LIMIT $2`, cursor, streamWindow)
	if err != nil {
		return nil, nil, fmt.Errorf("read events for %s: %w", t.id, err)
	}
	read, err := pgx.CollectRows(rows, events.ScanEvent)
	if err != nil {
		return nil, nil, fmt.Errorf("read events for %s: %w", t.id, err)
	}
	window := make([]windowEvent, len(read))
	var subjects []string
	for i, e := range read {
		window[i].event = e
		if !t.takes(e) {
			window[i].state = skipped
			continue
		}
		if !slices.Contains(subjects, e.Subject) {
			subjects = append(subjects, e.Subject)
		}
	}
	pending := map[string]bool{}
	if len(subjects) == 0 {
		return window, pending, nil
	}
	rows, err = d.db.Pool.Query(ctx, `SELECT DISTINCT subject FROM webhook_deliveries
		WHERE endpoint_id = $1 AND status = 'pending' AND subject = ANY($2::TEXT[])`, t.id, subjects)
	if err != nil {
		return nil, nil, fmt.Errorf("read pending subjects of %s: %w", t.id, err)
	}
	waiting, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("read pending subjects of %s: %w", t.id, err)
	}
	for _, s := range waiting {
		pending[s] = true
	}
	return window, pending, nil
}

// takes reports whether the endpoint receives e: one of its types, and at
// its partner's hotels for a partner's endpoint.
func (t *target) takes(e events.Event) bool {
	return (len(t.types) == 0 || slices.Contains(t.types, e.Type)) && (t.partnerID == "" || e.PartnerID == t.partnerID)
}

// sendWindow sends the window's events the endpoint takes, lane by lane,
// and marks each event with what became of it. It stops taking new
// messages at sendUntil, when ctx ends, and when the first messages all
// failed. It returns how many deliveries it attempted.
func (d *Dispatcher) sendWindow(ctx context.Context, t *target, window []windowEvent, pendingSubjects map[string]bool, sendUntil time.Time) int {
	var taken []int
	subjects := map[string]bool{}
	for i, w := range window {
		if w.state == skipped {
			continue
		}
		if pendingSubjects[w.event.Subject] {
			window[i].state = blocked
			continue
		}
		taken = append(taken, i)
		subjects[w.event.Subject] = true
	}
	if len(taken) == 0 {
		return 0
	}
	// As many lanes as fill their messages, up to one per worker: a lane
	// sends one message at a time.
	lanes := make([][]int, min(d.workers, len(subjects), (len(taken)+t.batchSize-1)/t.batchSize))
	for _, i := range taken {
		h := fnv.New32a()
		h.Write([]byte(window[i].event.Subject))
		lane := int(h.Sum32() % uint32(len(lanes)))
		lanes[lane] = append(lanes[lane], i)
	}
	var attempted, sent, succeeded, messages atomic.Int64
	var stop atomic.Bool
	var wg sync.WaitGroup
	for _, lane := range lanes {
		if len(lane) == 0 {
			continue
		}
		wg.Go(func() {
			// A lane holds every event of its subjects: what it blocks
			// concerns it alone.
			failedSubjects := map[string]bool{}
			for next := 0; next < len(lane); {
				if stop.Load() || ctx.Err() != nil || !d.now().Before(sendUntil) {
					return // the rest stays unsettled
				}
				var message []int
				for next < len(lane) && len(message) < t.batchSize {
					i := lane[next]
					next++
					if failedSubjects[window[i].event.Subject] {
						window[i].state = blocked
						continue
					}
					message = append(message, i)
				}
				if len(message) == 0 {
					continue
				}
				evs := make([]events.Event, len(message))
				for k, i := range message {
					evs[k] = window[i].event
				}
				at := d.now().UTC()
				o := d.post(ctx, t, evs)
				if o.interrupted {
					return
				}
				number := int(messages.Add(1))
				attempted.Add(int64(len(message)))
				state := delivered
				if o.ok {
					succeeded.Add(1)
				} else {
					state = failed
					for _, e := range evs {
						failedSubjects[e.Subject] = true
					}
				}
				for _, i := range message {
					window[i].state, window[i].outcome, window[i].message, window[i].at = state, o, number, at
				}
				if sent.Add(1) >= stopAfterFailures && succeeded.Load() == 0 {
					stop.Store(true)
				}
			}
		})
	}
	wg.Wait()
	return int(attempted.Load())
}

// recordWindow moves the endpoint's cursor past the window's settled
// prefix and writes its deliveries, in one transaction that holds the
// endpoint's row and checks that the stream is still this dispatcher's.
// Delivered events are logged a request at a time (webhook_requests: a
// row per request, not per event, which cost the database as much as
// the events themselves); a failed
// message's events pending ones, due again after a backoff (the first of
// each subject; its later events wait, blocked), as the events whose
// subjects had pending deliveries. Events past the prefix (not sent when
// the window stopped, or sent after one that was not) are the next
// window's. It returns the new cursor, how many deliveries it recorded,
// and how many of them were delivered and failed.
func (d *Dispatcher) recordWindow(ctx context.Context, t *target, from int64, window []windowEvent) (int64, int, int, int, error) {
	cursor := window[len(window)-1].event.Position
	for _, w := range window {
		if w.state == unsettled {
			cursor = w.event.Position - 1
			break
		}
	}
	now := d.now().UTC()
	var rows deliveryRows
	var requests requestRows
	waiting := map[string]bool{}
	// heldBack are the subjects whose events were blocked by deliveries
	// pending when the window was read.
	var heldBack []string
	deliveredCount, failedCount := 0, 0
	for _, w := range window {
		if w.event.Position > cursor {
			break
		}
		switch w.state {
		case delivered:
			deliveredCount++
			requests.add(w)
		case failed:
			failedCount++
			if waiting[w.event.Subject] {
				rows.add(w.event, StatusPending, true, 1, w.at, now, w.outcome, now)
			} else {
				rows.add(w.event, StatusPending, false, 1, w.at, w.at.Add(backoff(1)), w.outcome, now)
			}
			waiting[w.event.Subject] = true
		case blocked:
			rows.add(w.event, StatusPending, true, 0, time.Time{}, now, outcome{}, now)
			if !waiting[w.event.Subject] {
				heldBack = append(heldBack, w.event.Subject)
			}
			waiting[w.event.Subject] = true
		}
	}
	// Recorded even when ctx has ended: the receiver has what was sent.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	err := d.db.LockedTx(cctx, func(tx pgx.Tx) error {
		var at int64
		var holder *string
		err := tx.QueryRow(cctx, `SELECT fanned_out, stream_holder FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, t.id).Scan(&at, &holder)
		if err != nil {
			return fmt.Errorf("read the cursor: %w", err)
		}
		if at != from || holder == nil || *holder != d.holder {
			return errStreamLost
		}
		b := &pgx.Batch{}
		if len(rows.eventIDs) > 0 {
			rows.queue(b, t.id, now)
		}
		if len(requests.positions) > 0 {
			requests.queue(b, t.id, now)
		}
		// The deliveries that held these subjects back may have been done,
		// and released, since the window was read: then the first of
		// what this window queued goes now.
		for _, subject := range heldBack {
			b.Queue(unblockFirstSQL, t.id, subject)
		}
		b.Queue(`UPDATE webhook_endpoints SET fanned_out = $2, stream_holder = NULL, stream_until = NULL WHERE id = $1`, t.id, cursor)
		if err := tx.SendBatch(cctx, b).Close(); err != nil {
			return fmt.Errorf("record %d deliveries: %w", len(rows.eventIDs), err)
		}
		return nil
	})
	if err != nil {
		return from, 0, 0, 0, fmt.Errorf("record a window of %s: %w", t.id, err)
	}
	d.delivered.Add(uint64(deliveredCount))
	d.failed.Add(uint64(failedCount))
	return cursor, len(rows.eventIDs) + deliveredCount, deliveredCount, failedCount, nil
}

// requestRows are the requests of a window that delivered events: each
// message's outcome, and its events' positions, flat, with their
// message's number.
type requestRows struct {
	messages     []int32
	statusCodes  []int32
	latencies    []int64
	attemptedAt  []time.Time
	positions    []int64
	positionsOf  []int32
	seenMessages map[int]bool
}

func (r *requestRows) add(w windowEvent) {
	if r.seenMessages == nil {
		r.seenMessages = map[int]bool{}
	}
	if !r.seenMessages[w.message] {
		r.seenMessages[w.message] = true
		r.messages = append(r.messages, int32(w.message))
		r.statusCodes = append(r.statusCodes, int32(w.outcome.statusCode))
		r.latencies = append(r.latencies, w.outcome.latency.Microseconds())
		r.attemptedAt = append(r.attemptedAt, w.at)
	}
	r.positions, r.positionsOf = append(r.positions, w.event.Position), append(r.positionsOf, int32(w.message))
}

// queue queues the insert of one row per request, recorded at now.
func (r *requestRows) queue(b *pgx.Batch, endpointID string, now time.Time) {
	b.Queue(`INSERT INTO webhook_requests (endpoint_id, first_position, last_position, positions, status_code, latency_us, attempted_at, recorded_at)
		SELECT $1, min(p.position), max(p.position), array_agg(p.position), m.status_code, m.latency_us, m.attempted_at, $8
		FROM unnest($2::INT4[], $3::INT4[], $4::INT8[], $5::TIMESTAMPTZ[]) AS m (message, status_code, latency_us, attempted_at)
		JOIN unnest($6::INT4[], $7::INT8[]) AS p (message, position) ON p.message = m.message
		GROUP BY m.message, m.status_code, m.latency_us, m.attempted_at`,
		endpointID, r.messages, r.statusCodes, r.latencies, r.attemptedAt, r.positionsOf, r.positions, now)
}

// deliveryRows are deliveries to insert, column by column.
type deliveryRows struct {
	eventIDs                    []uuid.UUID
	positions                   []int64
	types, subjects, statuses   []string
	blocked                     []bool
	attempts                    []int32
	firstAttemptAt, nextAttempt []*time.Time
	codes                       []int32
	errors                      []string
	latencies                   []int64
	deliveredAt                 []*time.Time
}

// add appends a delivery; attemptedAt zero means never attempted.
func (r *deliveryRows) add(e events.Event, status string, isBlocked bool, attempts int32, attemptedAt, next time.Time, o outcome, now time.Time) {
	r.eventIDs = append(r.eventIDs, e.ID)
	r.positions = append(r.positions, e.Position)
	r.types, r.subjects, r.statuses = append(r.types, e.Type), append(r.subjects, e.Subject), append(r.statuses, status)
	r.blocked, r.attempts = append(r.blocked, isBlocked), append(r.attempts, attempts)
	var first, deliveredAt *time.Time
	if !attemptedAt.IsZero() {
		first = &attemptedAt
	}
	if status == StatusDelivered {
		deliveredAt = &now
	}
	r.firstAttemptAt, r.nextAttempt = append(r.firstAttemptAt, first), append(r.nextAttempt, &next)
	r.codes, r.errors, r.latencies = append(r.codes, int32(o.statusCode)), append(r.errors, o.errText), append(r.latencies, o.latency.Microseconds())
	r.deliveredAt = append(r.deliveredAt, deliveredAt)
}

// queue queues the insert of the rows, created at now.
func (r *deliveryRows) queue(b *pgx.Batch, endpointID string, now time.Time) {
	b.Queue(`INSERT INTO webhook_deliveries (endpoint_id, event_id, position, event_type, subject, status, blocked, released,
			attempts, next_attempt_at, first_attempt_at, last_attempt_at, last_status_code, last_error, last_latency_us, delivered_at, created_at)
		SELECT $1, v.event_id, v.position, v.event_type, v.subject, v.status, v.blocked, true,
			v.attempts, v.next_attempt_at, v.first_attempt_at, v.first_attempt_at, v.status_code, v.error, v.latency_us, v.delivered_at, $14
		FROM unnest($2::UUID[], $3::INT8[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::BOOL[], $8::INT4[], $9::TIMESTAMPTZ[],
				$10::TIMESTAMPTZ[], $11::INT4[], $12::TEXT[], $13::INT8[], $15::TIMESTAMPTZ[])
			AS v (event_id, position, event_type, subject, status, blocked, attempts, next_attempt_at,
				first_attempt_at, status_code, error, latency_us, delivered_at)`,
		endpointID, r.eventIDs, r.positions, r.types, r.subjects, r.statuses, r.blocked, r.attempts, r.nextAttempt,
		r.firstAttemptAt, r.codes, r.errors, r.latencies, now, r.deliveredAt)
}

// messageID is the webhook-id of a message: the event's id for one event,
// else one derived from its events' ids, so that the same batch sent again
// has the same id.
func messageID(evs []events.Event) string {
	if len(evs) == 1 {
		return evs[0].ID.String()
	}
	h := sha256.New()
	for _, e := range evs {
		h.Write(e.ID[:])
	}
	return "batch_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// noteStreamAge records how long the oldest event an endpoint has not been
// sent has waited since it was recorded.
func (d *Dispatcher) noteStreamAge(endpointID string, age time.Duration) {
	d.streamsMu.Lock()
	defer d.streamsMu.Unlock()
	d.streamAges[endpointID] = max(age, 0)
}
