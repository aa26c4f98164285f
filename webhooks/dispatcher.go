package webhooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
)

// The delivery schedule and the dispatcher's bounds.
const (
	DefaultWorkers = 32
	MaxWorkers     = 256
	// DefaultAttemptTimeout bounds an attempt when the dispatcher's client
	// has no timeout of its own.
	DefaultAttemptTimeout = 10 * time.Second
	// RetryFor: a delivery still failing this long after its first
	// attempt is dead.
	RetryFor = 72 * time.Hour
	// Retries wait a random time (full jitter) up to a ceiling that
	// starts at FirstRetry and doubles at every attempt up to MaxRetry.
	FirstRetry = 5 * time.Second
	MaxRetry   = time.Hour
	// MaxErrorBytes bounds the error text kept of an attempt.
	MaxErrorBytes = 500
	// DefaultPollInterval is how long Run waits when nothing is due.
	DefaultPollInterval = 500 * time.Millisecond

	// DefaultLease is how long a dispatcher with the default client keeps
	// a delivery it attempts: the attempt's timeout, and time to record
	// its outcome. A process that dies mid-attempt leaves the delivery to
	// the others (or to its own next start) once the lease runs out.
	DefaultLease = DefaultAttemptTimeout + leaseMargin
	// MinLeaseMargin is how much longer than an attempt's timeout a lease
	// lasts at least: the attempt starts a moment after its lease (its
	// event is read first), and the processes' clocks differ a little.
	MinLeaseMargin = 2 * time.Second
	// MinLease is the shortest lease with the default client.
	MinLease = DefaultAttemptTimeout + MinLeaseMargin
	// MaxLease bounds a lease: a dead process's deliveries wait at most
	// this long.
	MaxLease = 10 * time.Minute

	// leaseMargin is how much longer than an attempt's timeout a lease
	// lasts by default: time to record the outcome, so that a slow
	// recording is not mistaken for a dead process.
	leaseMargin = 30 * time.Second
	// releaseBatch is the done deliveries one release transaction handles;
	// roundRepeats bounds the release transactions per endpoint and
	// round, and the stream windows of a Step.
	releaseBatch = 1000
	roundRepeats = 10
	// recordTimeout bounds the recording of an attempt's outcome, which
	// goes on when Run is stopped mid-way (a 2xx must not be lost).
	recordTimeout = 15 * time.Second
	// drainBytes is how much of an answer is read, so that its connection
	// can serve the next delivery.
	drainBytes = 64 << 10
	// maxErrorBackoff bounds Run's wait after a failed round.
	maxErrorBackoff = 30 * time.Second
	userAgent       = "loyalty-ledger-webhooks/1"
)

// DispatcherOptions tune a Dispatcher. Zero values take the defaults.
type DispatcherOptions struct {
	// Clock dates attempts, leases and retries (default: the store's).
	Clock func() time.Time
	// Client sends the deliveries; nil: a client with a 10 s timeout that
	// follows no redirect (a 3xx is a failed attempt).
	Client *http.Client
	// Holder is this process's name on its leases (default: host, pid and
	// a random part).
	Holder string
	// Workers is how many deliveries are in flight at once (default 32,
	// at most 256).
	Workers int
	Logger  *slog.Logger
	// PollInterval is how long Run waits when nothing was due (default
	// 500 ms).
	PollInterval time.Duration
	// Lease is how long a delivery being attempted stays this
	// dispatcher's (default: the attempt's timeout and 30 s more, 40 s
	// with the default client). A shorter lease gets the deliveries of a
	// process that died mid-attempt out sooner. It must outlast the
	// attempt's timeout (Client's, else DefaultAttemptTimeout): a lease
	// that ran out while its attempt still waited for an answer would let
	// another process (or this one) send the same delivery at the same
	// time. A lease shorter than the timeout and MinLeaseMargin is raised
	// to that; one longer than MaxLease is lowered to it.
	Lease time.Duration
}

// DispatcherStats are a dispatcher's counters since it was made, for
// metrics.
type DispatcherStats struct {
	// Attempts started; Delivered answered 2xx; Failed did not (a timeout,
	// a refused connection, another status); Dead are deliveries whose
	// last failure came three days after their first attempt.
	Attempts, Delivered, Failed, Dead uint64
	// FannedOut counts the deliveries this dispatcher recorded from its
	// streams: delivered, failed and blocked.
	FannedOut uint64
	// BacklogAge is how long the oldest event not yet sent has waited: in
	// a stream, since it was recorded; among retries, since it was due. 0
	// when the dispatchers keep up.
	BacklogAge time.Duration
}

// Dispatcher fans events out to deliveries and sends them. Several
// processes may run one on the same database: they lease deliveries, so
// one delivery is never in flight twice at once (unless a lease runs out,
// and then the receiver sees it again with the same webhook-id: at least
// once).
type Dispatcher struct {
	db             *database.DB
	store          *Store
	now            func() time.Time
	client         *http.Client
	holder         string
	workers        int
	log            *slog.Logger
	poll           time.Duration
	attemptTimeout time.Duration
	lease          time.Duration

	attempts, delivered, failed, dead, fannedOut atomic.Uint64
	// backlogAge is the retries' (dispatcher.go); streamAges each
	// endpoint's stream's (stream.go).
	backlogAge atomic.Int64
	streamsMu  sync.Mutex
	streams    map[string]streamState
	streamAges map[string]time.Duration
	// turn rotates which endpoint is served first in a round.
	turn atomic.Uint64
}

// NewDispatcher returns a dispatcher over db and store's endpoints.
func NewDispatcher(db *database.DB, store *Store, opts DispatcherOptions) *Dispatcher {
	d := &Dispatcher{db: db, store: store, now: opts.Clock, client: opts.Client, holder: opts.Holder,
		workers: opts.Workers, log: opts.Logger, poll: opts.PollInterval,
		streams: map[string]streamState{}, streamAges: map[string]time.Duration{}}
	if d.now == nil {
		d.now = store.now
	}
	if d.workers <= 0 {
		d.workers = DefaultWorkers
	}
	d.workers = min(d.workers, MaxWorkers)
	if d.client == nil {
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConnsPerHost = d.workers
		d.client = &http.Client{Timeout: DefaultAttemptTimeout, Transport: transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	d.attemptTimeout = DefaultAttemptTimeout
	if d.client.Timeout > 0 {
		d.attemptTimeout = d.client.Timeout
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.lease = leaseFor(opts.Lease, d.attemptTimeout)
	if opts.Lease != 0 && d.lease != opts.Lease {
		d.log.Warn("webhook lease out of bounds: a lease must outlast an attempt's timeout and last at most "+MaxLease.String(),
			"lease", opts.Lease.String(), "attempt_timeout", d.attemptTimeout.String(), "lease_used", d.lease.String())
	}
	if d.holder == "" {
		host, _ := os.Hostname()
		d.holder = fmt.Sprintf("%s-%d-%x", host, os.Getpid(), randomBytes(4))
	}
	if d.poll <= 0 {
		d.poll = DefaultPollInterval
	}
	return d
}

// leaseFor is the lease a dispatcher whose attempts time out after
// attemptTimeout uses when asked for lease (0: the default). Outlasting
// the attempt wins over MaxLease: a client that waits longer gets a
// longer lease, never two attempts of one delivery at once.
func leaseFor(lease, attemptTimeout time.Duration) time.Duration {
	if lease == 0 {
		return attemptTimeout + leaseMargin
	}
	return max(min(lease, MaxLease), attemptTimeout+MinLeaseMargin)
}

// Stats returns the dispatcher's counters.
func (d *Dispatcher) Stats() DispatcherStats {
	age := time.Duration(d.backlogAge.Load())
	d.streamsMu.Lock()
	for _, a := range d.streamAges {
		age = max(age, a)
	}
	d.streamsMu.Unlock()
	return DispatcherStats{Attempts: d.attempts.Load(), Delivered: d.delivered.Load(), Failed: d.failed.Load(),
		Dead: d.dead.Load(), FannedOut: d.fannedOut.Load(), BacklogAge: age}
}

// Step runs one round: streams each endpoint up to date (a bounded number
// of windows), then leases up to Workers due retries, attempts them all
// and records their outcomes. It returns how many deliveries it
// attempted.
func (d *Dispatcher) Step(ctx context.Context) (int, error) {
	streamed := 0
	for range roundRepeats {
		attempted, backlogged, err := d.streamRound(ctx)
		if err != nil {
			return streamed, err
		}
		streamed += attempted
		if backlogged == 0 {
			break
		}
	}
	jobs, _, err := d.round(ctx, d.workers)
	if err != nil {
		return streamed, err
	}
	results := make([]result, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Go(func() { results[i] = result{job: j, outcome: d.send(ctx, j)} })
	}
	wg.Wait()
	d.commit(ctx, results)
	return streamed + len(jobs), ctx.Err()
}

// streamRound sends a window to each endpoint with events after its
// cursor. It returns how many deliveries it attempted and how many
// endpoints have more waiting at once.
func (d *Dispatcher) streamRound(ctx context.Context) (int, int, error) {
	targets, err := d.targets(ctx)
	if err != nil {
		return 0, 0, err
	}
	var last int64
	if err := d.db.Pool.QueryRow(ctx, `SELECT last_position FROM event_sequencer WHERE id = 1`).Scan(&last); err != nil {
		return 0, 0, fmt.Errorf("read the last event position: %w", err)
	}
	return d.stream(ctx, targets, last)
}

// runStreams streams until ctx ends: at once again after a round that
// left an endpoint with more waiting, after the poll interval otherwise
// (so that a steady flow goes out in windows of many events, a commit
// each, not one per event), after a backoff when a round failed.
func (d *Dispatcher) runStreams(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		wait := d.poll
		_, backlogged, err := d.streamRound(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = min(time.Second<<min(failures-1, 5), maxErrorBackoff)
			d.log.Warn("webhook stream round failed", "error", err, "retry_in", wait.String())
		case err == nil:
			failures = 0
			if backlogged > 0 {
				continue
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

// Run dispatches until ctx ends, then waits for the attempts in flight to
// stop, records those that got an answer, and returns nil. An attempt cut
// short is not recorded: its lease runs out and it is attempted again,
// here or in another process. A failed round is logged and tried again
// after a backoff.
//
// Attempts run on Workers goroutines; one goroutine records their
// outcomes, as many at once as have come (one statement). An attempt's
// worker is free again once its outcome is recorded; the next round then
// lets its subject's next delivery go.
func (d *Dispatcher) Run(ctx context.Context) error {
	// Room for every attempt in flight, and more: neither channel blocks
	// its sender for long.
	results := make(chan result, 2*d.workers)
	recorded := make(chan int, 2*d.workers)
	var senders sync.WaitGroup
	streaming := make(chan struct{})
	go func() {
		defer close(streaming)
		d.runStreams(ctx)
	}()
	defer func() { <-streaming }()
	recorder := make(chan struct{})
	go func() {
		defer close(recorder)
		for r := range results {
			batch := append(make([]result, 0, d.workers), r)
			for more := true; more && len(batch) < d.workers; {
				select {
				case r, ok := <-results:
					if !ok {
						more = false
						break
					}
					batch = append(batch, r)
				default:
					more = false
				}
			}
			d.commit(ctx, batch)
			recorded <- len(batch)
		}
	}()
	defer func() {
		senders.Wait()
		close(results)
		<-recorder
	}()
	inFlight, failures := 0, 0
	for {
		if ctx.Err() != nil {
			return nil
		}
		var jobs []job
		var released int
		if free := d.workers - inFlight; free > 0 {
			var err error
			jobs, released, err = d.round(ctx, free)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				failures++
				wait := min(time.Second<<min(failures-1, 5), maxErrorBackoff)
				d.log.Warn("webhook dispatch round failed", "error", err, "retry_in", wait.String())
				inFlight -= waitFor(ctx, recorded, wait)
				continue
			}
			failures = 0
		}
		for _, j := range jobs {
			inFlight++
			senders.Go(func() { results <- result{job: j, outcome: d.send(ctx, j)} })
		}
		if (len(jobs) > 0 || released > 0) && inFlight < d.workers {
			// More may be due at once.
			inFlight -= drain(recorded)
			continue
		}
		// Nothing due, or no free worker: wait for outcomes to be recorded
		// (which may let their subjects' next deliveries go) or for the
		// poll.
		inFlight -= waitFor(ctx, recorded, d.poll)
	}
}

// waitFor waits until outcomes are recorded, wait passes or ctx ends, and
// returns how many outcomes were recorded.
func waitFor(ctx context.Context, recorded chan int, wait time.Duration) int {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return drain(recorded)
	case <-t.C:
		return drain(recorded)
	case n := <-recorded:
		return n + drain(recorded)
	}
}

func drain(recorded chan int) int {
	total := 0
	for {
		select {
		case n := <-recorded:
			total += n
		default:
			return total
		}
	}
}

// target is an endpoint as the dispatcher serves it.
type target struct {
	id, url       string
	types         []string
	partnerID     string
	paused        bool
	secret        string
	previous      string
	previousUntil time.Time
	fannedOut     int64
	batchSize     int
	// unreleased: done deliveries wait to let their subjects' next go.
	unreleased bool
}

// job is one leased attempt.
type job struct {
	target         *target
	eventID        uuid.UUID
	position       int64
	subject        string
	attempts       int
	firstAttemptAt time.Time
	event          events.Event
}

// round lets the next deliveries of done ones go, then leases up to free
// due deliveries and reads their events. It returns the leased attempts
// and how many done deliveries it released.
func (d *Dispatcher) round(ctx context.Context, free int) ([]job, int, error) {
	targets, err := d.targets(ctx)
	if err != nil {
		return nil, 0, err
	}
	released, err := d.releaseDone(ctx, targets)
	if err != nil {
		return nil, released, err
	}
	jobs, saturated, err := d.claim(ctx, targets, free)
	if err != nil {
		return nil, released, err
	}
	if jobs, err = d.readEvents(ctx, jobs); err != nil {
		return nil, released, err
	}
	if err := d.measureBacklog(ctx, saturated); err != nil {
		d.log.Warn("webhook backlog not measured", "error", err)
	}
	return jobs, released, nil
}

// targets reads the endpoints not deleted, and whether each has done
// deliveries whose subjects' next deliveries wait to be released.
func (d *Dispatcher) targets(ctx context.Context) ([]*target, error) {
	rows, err := d.db.Pool.Query(ctx, `SELECT e.id, e.url, e.event_types, COALESCE(e.partner_id, ''), e.paused, e.secret,
			COALESCE(e.previous_secret, ''), e.previous_secret_until, e.fanned_out, e.batch_size,
			EXISTS (SELECT 1 FROM webhook_deliveries AS d WHERE d.endpoint_id = e.id AND d.status <> 'pending' AND NOT d.released)
		FROM webhook_endpoints AS e WHERE e.deleted_at IS NULL ORDER BY e.id LIMIT $1`, 2*MaxEndpoints)
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*target, error) {
		t := &target{}
		var until *time.Time
		err := r.Scan(&t.id, &t.url, &t.types, &t.partnerID, &t.paused, &t.secret, &t.previous, &until, &t.fannedOut, &t.batchSize, &t.unreleased)
		if until != nil {
			t.previousUntil = *until
		}
		return t, err
	})
	if err != nil {
		return nil, fmt.Errorf("read webhook endpoints: %w", err)
	}
	return out, nil
}

// releaseDone lets the next pending delivery of each subject whose
// delivery is done go, a bounded number of transactions per endpoint, and
// returns how many done deliveries it handled.
func (d *Dispatcher) releaseDone(ctx context.Context, targets []*target) (int, error) {
	total := 0
	for _, t := range targets {
		for range roundRepeats {
			if !t.unreleased {
				break
			}
			released, err := d.releaseDoneOf(ctx, t.id)
			if err != nil {
				return total, err
			}
			total += released
			t.unreleased = released == releaseBatch
		}
	}
	return total, nil
}

// releaseDoneOf releases up to releaseBatch done deliveries of an endpoint
// in one transaction that holds its row, as the stream's recording does:
// only these two make deliveries of a subject wait or go, one at a time.
//
// Order per subject rests on this: only here are deliveries unblocked, and
// only the earliest pending one of a subject. The recording of an attempt
// marks a done delivery unreleased and reads nothing else, so it needs no
// transaction of its own; a delivery that a window records blocked behind
// one that is done meanwhile is released by the next round.
func (d *Dispatcher) releaseDoneOf(ctx context.Context, endpointID string) (int, error) {
	var released int
	// The endpoint's row, locked first, orders this with the stream's
	// recording (database.LockedTx).
	err := d.db.LockedTx(ctx, func(tx pgx.Tx) error {
		released = 0
		var deleted bool
		err := tx.QueryRow(ctx, `SELECT deleted_at IS NOT NULL FROM webhook_endpoints WHERE id = $1 FOR UPDATE`, endpointID).Scan(&deleted)
		if err != nil {
			return fmt.Errorf("lock the endpoint: %w", err)
		}
		if deleted {
			return nil
		}
		released, err = release(ctx, tx, endpointID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("release deliveries of %s: %w", endpointID, err)
	}
	return released, nil
}

// unblockFirstSQL unblocks the earliest pending delivery of endpoint $1
// and subject $2, if it is blocked.
const unblockFirstSQL = `UPDATE webhook_deliveries SET blocked = false
	WHERE endpoint_id = $1 AND blocked AND event_id = (
		SELECT event_id FROM webhook_deliveries
		WHERE endpoint_id = $1 AND subject = $2 AND status = 'pending'
		ORDER BY position LIMIT 1)`

// release unblocks the earliest pending delivery of each subject that has
// a done delivery not yet released, marks those released, and returns how
// many done deliveries it handled.
func release(ctx context.Context, tx pgx.Tx, endpointID string) (int, error) {
	rows, err := tx.Query(ctx, `SELECT event_id, subject FROM webhook_deliveries
		WHERE endpoint_id = $1 AND status <> 'pending' AND NOT released LIMIT $2`, endpointID, releaseBatch)
	if err != nil {
		return 0, fmt.Errorf("read done deliveries: %w", err)
	}
	var done []uuid.UUID
	var subjects []string
	var id uuid.UUID
	var subject string
	if _, err := pgx.ForEachRow(rows, []any{&id, &subject}, func() error {
		done = append(done, id)
		if !slices.Contains(subjects, subject) {
			subjects = append(subjects, subject)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("read done deliveries: %w", err)
	}
	if len(done) == 0 {
		return 0, nil
	}
	b := &pgx.Batch{}
	for _, subject := range subjects {
		b.Queue(unblockFirstSQL, endpointID, subject)
	}
	b.Queue(`UPDATE webhook_deliveries SET released = true WHERE endpoint_id = $1 AND event_id = ANY($2::UUID[])`, endpointID, done)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("release the next deliveries of %d subjects: %w", len(subjects), err)
	}
	return len(done), nil
}

// claimSQL leases up to $5 due deliveries of endpoint $1, oldest due
// first: each gets holder $2 and a lease until $3, which is also its next
// attempt if this one is lost. One statement, in its own transaction:
// SKIP LOCKED lets dispatchers leasing at the same moment take different
// rows, and the conditions repeated on the updated row make a row that
// another dispatcher leased meanwhile (its next_attempt_at moved) drop
// out, so one delivery is never leased twice. The candidates are
// MATERIALIZED so that they are chosen once: a subquery that the plan
// runs again per row could lease more than $5. Only the first pending
// delivery of a subject is unblocked: order per subject holds. An
// endpoint paused or deleted since the round read it gets nothing more.
const claimSQL = `WITH due AS MATERIALIZED (
		SELECT event_id FROM webhook_deliveries
		WHERE endpoint_id = $1 AND status = 'pending' AND NOT blocked AND next_attempt_at <= $4
		  AND EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = $1 AND NOT paused AND deleted_at IS NULL)
		ORDER BY next_attempt_at LIMIT $5
		FOR UPDATE SKIP LOCKED)
	UPDATE webhook_deliveries AS d
	SET leased_by = $2, lease_until = $3, next_attempt_at = $3, attempts = d.attempts + 1,
		first_attempt_at = COALESCE(d.first_attempt_at, $4), last_attempt_at = $4
	FROM due
	WHERE d.endpoint_id = $1 AND d.event_id = due.event_id
	  AND d.status = 'pending' AND NOT d.blocked AND d.next_attempt_at <= $4
	RETURNING d.event_id, d.position, d.subject, d.attempts, d.first_attempt_at`

// claim leases up to free due deliveries of the endpoints that are not
// paused, sharing them out: every endpoint gets its share first, then
// those with more due take what is left. It returns the leases and the
// endpoints that may have more due.
func (d *Dispatcher) claim(ctx context.Context, targets []*target, free int) ([]job, []*target, error) {
	var active []*target
	for _, t := range targets {
		if !t.paused {
			active = append(active, t)
		}
	}
	if len(active) == 0 || free <= 0 {
		return nil, nil, nil
	}
	start := int(d.turn.Add(1) % uint64(len(active)))
	active = append(active[start:], active[:start]...)
	share := max(1, free/len(active))
	var jobs []job
	// full are the endpoints whose claim got all it asked for: they may
	// have more due.
	var full []*target
	for _, t := range active {
		limit := min(share, free)
		if limit == 0 {
			full = append(full, t)
			continue
		}
		got, err := d.claimFrom(ctx, t, limit)
		if err != nil {
			return jobs, nil, err
		}
		jobs, free = append(jobs, got...), max(free-len(got), 0)
		if len(got) >= limit {
			full = append(full, t)
		}
	}
	var more []*target
	for _, t := range full {
		if free == 0 {
			more = append(more, t)
			continue
		}
		limit := free
		got, err := d.claimFrom(ctx, t, limit)
		if err != nil {
			return jobs, nil, err
		}
		jobs, free = append(jobs, got...), max(free-len(got), 0)
		if len(got) >= limit {
			more = append(more, t)
		}
	}
	return jobs, more, nil
}

func (d *Dispatcher) claimFrom(ctx context.Context, t *target, limit int) ([]job, error) {
	now := d.now().UTC()
	rows, err := d.db.Pool.Query(ctx, claimSQL, t.id, d.holder, now.Add(d.lease), now, limit)
	if err != nil {
		return nil, fmt.Errorf("lease deliveries of %s: %w", t.id, err)
	}
	jobs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (job, error) {
		j := job{target: t}
		err := r.Scan(&j.eventID, &j.position, &j.subject, &j.attempts, &j.firstAttemptAt)
		return j, err
	})
	if err != nil {
		// Leases that committed run out: nothing is lost.
		return nil, fmt.Errorf("lease deliveries of %s: %w", t.id, err)
	}
	return jobs, nil
}

// readEvents reads the events of the leased deliveries, and returns those
// it found.
func (d *Dispatcher) readEvents(ctx context.Context, jobs []job) ([]job, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	positions := make([]int64, len(jobs))
	for i, j := range jobs {
		positions[i] = j.position
	}
	rows, err := d.db.Pool.Query(ctx, `SELECT position, id, type, subject, seq, occurred_at, recorded_at, sequenced_at,
			COALESCE(partner_id, ''), COALESCE(property_id, ''), transaction_id, data::TEXT
		FROM events WHERE position = ANY($1::INT8[])`, positions)
	if err != nil {
		return nil, fmt.Errorf("read the events of %d deliveries: %w", len(jobs), err)
	}
	read, err := pgx.CollectRows(rows, events.ScanEvent)
	if err != nil {
		return nil, fmt.Errorf("read the events of %d deliveries: %w", len(jobs), err)
	}
	byPosition := make(map[int64]events.Event, len(read))
	for _, e := range read {
		byPosition[e.Position] = e
	}
	kept := jobs[:0]
	for _, j := range jobs {
		e, ok := byPosition[j.position]
		if !ok || e.ID != j.eventID {
			// events.Prune keeps the events of the pending deliveries of
			// endpoints not deleted: this one's endpoint was deleted since
			// it was leased, or it is a bug. Its lease runs out.
			d.log.Error("webhook delivery without its event", "endpoint_id", j.target.id, "event_id", j.eventID, "position", j.position)
			continue
		}
		j.event = e
		kept = append(kept, j)
	}
	return kept, nil
}

// measureBacklog records how long the oldest due delivery of the
// endpoints that may have more has been due.
func (d *Dispatcher) measureBacklog(ctx context.Context, saturated []*target) error {
	now := d.now().UTC()
	var oldest time.Time
	for _, t := range saturated {
		var due time.Time
		err := d.db.Pool.QueryRow(ctx, `SELECT next_attempt_at FROM webhook_deliveries
			WHERE endpoint_id = $1 AND status = 'pending' AND NOT blocked AND next_attempt_at <= $2
			ORDER BY next_attempt_at LIMIT 1`, t.id, now).Scan(&due)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read the oldest due delivery of %s: %w", t.id, err)
		}
		if oldest.IsZero() || due.Before(oldest) {
			oldest = due
		}
	}
	age := time.Duration(0)
	if !oldest.IsZero() {
		age = max(0, now.Sub(oldest))
	}
	d.backlogAge.Store(int64(age))
	return nil
}

// outcome is what an attempt got.
type outcome struct {
	ok         bool
	statusCode int
	errText    string
	latency    time.Duration
	// interrupted: the dispatcher was stopped during the attempt.
	interrupted bool
}

// result is an attempt and what it got.
type result struct {
	job
	outcome
}

// send POSTs a retry's event.
func (d *Dispatcher) send(ctx context.Context, j job) outcome {
	return d.post(ctx, j.target, []events.Event{j.event})
}

// batchContentType is the CloudEvents JSON batch format's media type.
const batchContentType = "application/cloudevents-batch+json"

// envelopeBytes is about what an envelope takes besides its data.
const envelopeBytes = 320

// post POSTs one message, signed as Standard Webhooks says: the event's
// envelope to an endpoint of batch size 1, else the events' envelopes in
// the CloudEvents JSON batch format (a batch of one for a retry).
func (d *Dispatcher) post(ctx context.Context, t *target, evs []events.Event) outcome {
	d.attempts.Add(uint64(len(evs)))
	if t.partnerID != "" {
		partners := make([]events.Event, len(evs))
		for i, e := range evs {
			partners[i] = e.ForPartner()
		}
		evs = partners
	}
	size := 2
	for _, e := range evs {
		size += envelopeBytes + len(e.Data)
	}
	body := make([]byte, 0, size)
	contentType := "application/json"
	if t.batchSize > 1 {
		body = append(body, '[')
		for i, e := range evs {
			if i > 0 {
				body = append(body, ',')
			}
			body = e.AppendJSON(body)
		}
		body = append(body, ']')
		contentType = batchContentType
	} else {
		body = evs[0].AppendJSON(body)
	}
	at := d.now()
	msgID := messageID(evs)
	signature := Sign(t.secret, msgID, at, body)
	if t.previous != "" && at.Before(t.previousUntil) {
		signature += " " + Sign(t.previous, msgID, at, body)
	}
	actx, cancel := context.WithTimeout(ctx, d.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		return outcome{errText: boundedText("build the request: " + err.Error())}
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Webhook-Id", msgID)
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("Webhook-Signature", signature)
	start := time.Now()
	resp, err := d.client.Do(req)
	latency := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return outcome{interrupted: true}
		}
		return outcome{latency: latency, errText: boundedText(attemptError(err, d.attemptTimeout))}
	}
	defer resp.Body.Close()
	o := outcome{ok: resp.StatusCode >= 200 && resp.StatusCode < 300, statusCode: resp.StatusCode, latency: latency}
	if !o.ok {
		head, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBytes))
		o.errText = boundedText(fmt.Sprintf("HTTP %d: %s", resp.StatusCode, head))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, drainBytes))
	return o
}

// attemptError says why an attempt got no answer, without the URL (the
// delivery log names the endpoint).
func attemptError(err error, timeout time.Duration) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Sprintf("no answer within %s", timeout)
		}
		err = ue.Err
	}
	return err.Error()
}

// boundedText is s as valid UTF-8 of at most MaxErrorBytes bytes.
func boundedText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= MaxErrorBytes {
		return s
	}
	cut := MaxErrorBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// commit records the outcomes of attempts, in one statement: each where
// this dispatcher still holds the delivery's lease (else the lease ran out
// and another attempt's outcome is the one that counts). A delivery that
// is done (delivered or dead) is marked unreleased: the next round's
// release lets its subject's next delivery go.
//
// One statement, in a transaction of its own, because it reads nothing
// but the rows it writes, guarded by their leases: on PostgreSQL,
// serializable transactions of several dispatchers over the same index
// pages would fail each other again and again. A statement that fails is
// tried again (the guards make a second run that finds its work done
// change nothing). It runs on after ctx ends (a 2xx must not be lost),
// for at most recordTimeout; what it cannot record is attempted again once
// the leases run out.
func (d *Dispatcher) commit(ctx context.Context, results []result) {
	var recorded []result
	for _, r := range results {
		if !r.interrupted {
			recorded = append(recorded, r)
		}
	}
	if len(recorded) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	n := len(recorded)
	now := d.now().UTC()
	endpoints, events, attempts := make([]string, n), make([]uuid.UUID, n), make([]int32, n)
	status, next, codes := make([]string, n), make([]time.Time, n), make([]int32, n)
	errTexts, latencies, deliveredAt := make([]string, n), make([]int64, n), make([]*time.Time, n)
	for i, r := range recorded {
		endpoints[i], events[i], attempts[i] = r.target.id, r.eventID, int32(r.attempts)
		codes[i], errTexts[i], latencies[i] = int32(r.statusCode), r.errText, r.latency.Microseconds()
		status[i], next[i] = StatusPending, now
		switch deadline := r.firstAttemptAt.Add(RetryFor); {
		case r.ok:
			status[i], deliveredAt[i] = StatusDelivered, &now
		case !now.Before(deadline):
			status[i] = StatusDead
		default:
			next[i] = now.Add(backoff(r.attempts))
			if next[i].After(deadline) {
				next[i] = deadline // the last attempt comes at the deadline
			}
		}
	}
	type key struct {
		endpointID string
		eventID    uuid.UUID
	}
	statuses := map[key]string{}
	var err error
	for try := 1; ; try++ {
		err = d.recordOutcomes(cctx, func(endpointID string, eventID uuid.UUID, st string) { statuses[key{endpointID, eventID}] = st },
			endpoints, events, attempts, status, next, codes, errTexts, latencies, deliveredAt)
		if err == nil || try == recordTries || cctx.Err() != nil {
			break
		}
		clear(statuses)
		wait := time.NewTimer(time.Duration(rand.Int64N(int64(10*time.Millisecond<<try))) + time.Millisecond)
		select {
		case <-cctx.Done():
		case <-wait.C:
		}
		wait.Stop()
	}
	if err != nil {
		// The leases run out and the deliveries are attempted again: at
		// least once.
		d.log.Warn("webhook attempts not recorded", "attempts", n, "error", err)
		return
	}
	for _, r := range recorded {
		switch statuses[key{r.target.id, r.eventID}] {
		case StatusDelivered:
			d.delivered.Add(1)
		case StatusDead:
			d.failed.Add(1)
			d.dead.Add(1)
		case StatusPending:
			d.failed.Add(1)
		}
	}
}

// recordTries bounds the runs of the statement that records outcomes.
const recordTries = 6

func (d *Dispatcher) recordOutcomes(ctx context.Context, recorded func(endpointID string, eventID uuid.UUID, status string), args ...any) error {
	rows, err := d.db.Pool.Query(ctx, `UPDATE webhook_deliveries AS d SET status = v.status, released = (v.status = 'pending'),
			next_attempt_at = v.next_attempt_at, last_status_code = v.status_code, last_error = v.error,
			last_latency_us = v.latency_us, delivered_at = v.delivered_at, leased_by = NULL, lease_until = NULL
		FROM unnest($1::TEXT[], $2::UUID[], $3::INT4[], $4::TEXT[], $5::TIMESTAMPTZ[], $6::INT4[], $7::TEXT[], $8::INT8[], $9::TIMESTAMPTZ[])
			AS v (endpoint_id, event_id, attempts, status, next_attempt_at, status_code, error, latency_us, delivered_at)
		WHERE d.endpoint_id = v.endpoint_id AND d.event_id = v.event_id AND d.attempts = v.attempts
		  AND d.leased_by = $10 AND d.status = 'pending'
		RETURNING d.endpoint_id, d.event_id, d.status`, append(args, d.holder)...)
	if err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	var endpointID, status string
	var eventID uuid.UUID
	if _, err := pgx.ForEachRow(rows, []any{&endpointID, &eventID, &status}, func() error {
		recorded(endpointID, eventID, status)
		return nil
	}); err != nil {
		return fmt.Errorf("record attempts: %w", err)
	}
	return nil
}

// backoff is the wait after the attempts-th failed attempt: uniform
// between 1 s and a ceiling of FirstRetry doubled per attempt, at most
// MaxRetry (full jitter, so that failing deliveries spread out).
func backoff(attempts int) time.Duration {
	ceiling := MaxRetry
	if attempts <= 20 {
		ceiling = min(FirstRetry<<max(attempts-1, 0), MaxRetry)
	}
	return time.Second + rand.N(ceiling)
}
