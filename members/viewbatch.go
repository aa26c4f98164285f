package members

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// Stay views read together: every stay and every partner's write reads its
// member before it is written (StayView, MemberAt), three statements and a
// round trip each, more of the database's work per write than the
// ledger's group commit spends on the write itself. Reads that arrive
// while one is in flight go to the database together, in one statement
// for all of them; each caller gets its own member, as if it had read it
// alone at the moment the batch was read.
const (
	// maxViewBatch bounds the members one statement reads.
	maxViewBatch = 64
	// viewReaders is how many batches may be in flight at once: reads do
	// not conflict, and a second batch keeps a slow one from holding up
	// every caller.
	viewReaders = 2
	// viewReadTimeout bounds one batch's read.
	viewReadTimeout = 10 * time.Second
)

// viewBatcher collects the stay views asked for and reads them in batches.
type viewBatcher struct {
	mu      sync.Mutex
	pending []*viewRead
	slots   chan struct{}
}

func newViewBatcher() *viewBatcher {
	return &viewBatcher{slots: make(chan struct{}, viewReaders)}
}

// viewRead is one caller's read: its member, the time of the tier it
// needs, and the window of its qualifying activity (from and to zero: no
// activity wanted).
type viewRead struct {
	number   string
	at       time.Time
	from, to time.Time
	done     chan viewResult // buffered: a caller that gave up is not waited for
}

type viewResult struct {
	member   Member
	tierAt   programme.Tier
	activity tiers.Activity
	err      error
}

// readView queues r and waits for its answer or for ctx.
func (s *Store) readView(ctx context.Context, r *viewRead) (viewResult, error) {
	if err := ctx.Err(); err != nil {
		return viewResult{}, fmt.Errorf("read member %s: %w", r.number, err)
	}
	r.done = make(chan viewResult, 1)
	b := s.views
	b.mu.Lock()
	b.pending = append(b.pending, r)
	b.mu.Unlock()
	select {
	case b.slots <- struct{}{}:
		go s.readViewsLoop()
	default:
		// Every reader is busy; each looks at pending before it stops.
	}
	select {
	case res := <-r.done:
		return res, res.err
	case <-ctx.Done():
		return viewResult{}, fmt.Errorf("read member %s: %w", r.number, ctx.Err())
	}
}

func (s *Store) readViewsLoop() {
	b := s.views
	for {
		for {
			b.mu.Lock()
			n := min(len(b.pending), maxViewBatch)
			batch := slices.Clone(b.pending[:n])
			b.pending = b.pending[n:]
			b.mu.Unlock()
			if n == 0 {
				break
			}
			s.readViews(batch)
		}
		<-b.slots
		// A read queued between our last look and the release may have
		// found no free slot: look once more.
		b.mu.Lock()
		more := len(b.pending) > 0
		b.mu.Unlock()
		if !more {
			return
		}
		select {
		case b.slots <- struct{}{}:
		default:
			return // another reader has it
		}
	}
}

// viewBatchSQL reads, for each ($1[i], $2[i], $3[i], $4[i]): the member,
// the tier it had at $2[i] (tierAtSQL's), and its qualifying activity in
// [$3[i], $4[i]] (qualifyingActivitySQL's; none when $3[i] is NULL). An
// unknown member has no row.
const viewBatchSQL = `SELECT v.i, m.member_number, m.full_name, COALESCE(m.email, ''), COALESCE(m.phone, ''), m.tier,
		m.enrolment_channel, COALESCE(m.enrolment_property, ''), m.enrolled_at, m.enrolled_by, COALESCE(m.first_stay, ''),
		COALESCE(m.tier_since, m.enrolled_at), m.manual_tier, m.manual_until, COALESCE(m.manual_reason, ''), m.reviewed_at, m.closed_at,
		(SELECT c.tier FROM (
			(SELECT to_tier AS tier, 0 AS pref FROM tier_changes WHERE member_number = v.number AND effective_at <= v.at
				ORDER BY effective_at DESC LIMIT 1)
			UNION ALL
			(SELECT from_tier, 1 FROM tier_changes WHERE member_number = v.number AND effective_at > v.at
				ORDER BY effective_at ASC LIMIT 1)
		) AS c ORDER BY c.pref LIMIT 1),
		a.nights, a.points, a.stays
	FROM unnest($1::TEXT[], $2::TIMESTAMPTZ[], $3::TIMESTAMPTZ[], $4::TIMESTAMPTZ[]) WITH ORDINALITY AS v (number, at, from_at, to_at, i)
	JOIN members AS m ON m.member_number = v.number
	LEFT JOIN LATERAL (
		SELECT COALESCE(SUM(q.nights), 0)::INT8 AS nights, COALESCE(SUM(q.points), 0)::INT8 AS points,
			COALESCE(SUM(CASE WHEN q.nights > 0 THEN 1 WHEN q.nights < 0 THEN -1 ELSE 0 END), 0)::INT8 AS stays
		FROM qualifying_stays AS q
		WHERE v.from_at IS NOT NULL AND q.member_number = v.number AND q.completed_at >= v.from_at AND q.completed_at <= v.to_at
	) AS a ON true`

// readViews reads a batch and answers each of its reads.
func (s *Store) readViews(batch []*viewRead) {
	ctx, cancel := context.WithTimeout(context.Background(), viewReadTimeout)
	defer cancel()
	n := len(batch)
	numbers, at, from, to := make([]string, n), make([]time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
	for i, r := range batch {
		numbers[i], at[i] = r.number, r.at
		if !r.from.IsZero() {
			from[i], to[i] = &batch[i].from, &batch[i].to
		}
	}
	results := make([]viewResult, n)
	found := make([]bool, n)
	rows, err := s.db.Pool.Query(ctx, viewBatchSQL, numbers, at, from, to)
	if err == nil {
		err = readViewRows(rows, batch, results, found)
	}
	for i, r := range batch {
		switch {
		case err != nil:
			results[i] = viewResult{err: fmt.Errorf("read member %s: %w", r.number, err)}
		case !found[i]:
			results[i] = viewResult{err: fmt.Errorf("member %s: %w", r.number, ErrNotFound)}
		}
		r.done <- results[i]
	}
}

// readViewRows scans the rows of viewBatchSQL into results, by ordinal.
func readViewRows(rows pgx.Rows, batch []*viewRead, results []viewResult, found []bool) error {
	defer rows.Close()
	for rows.Next() {
		var i int64
		var m Member
		var tier, channel, manualReason string
		var manualTier, tierAt *string
		var manualUntil, reviewedAt, closedAt *time.Time
		var nights, points, stays *int64
		if err := rows.Scan(&i, &m.Number, &m.FullName, &m.Email, &m.Phone, &tier, &channel, &m.EnrolmentProperty, &m.EnrolledAt, &m.EnrolledBy,
			&m.FirstStay, &m.TierSince, &manualTier, &manualUntil, &manualReason, &reviewedAt, &closedAt,
			&tierAt, &nights, &points, &stays); err != nil {
			return err
		}
		if i < 1 || int(i) > len(batch) {
			return fmt.Errorf("member view %d of a batch of %d", i, len(batch))
		}
		m = withMemberColumns(m, tier, channel, manualTier, manualUntil, manualReason, reviewedAt, closedAt)
		r := batch[i-1]
		res := viewResult{member: m, tierAt: m.Tier}
		// The tier at r.at: the tier now if it has not changed since, else
		// what the history says (as TierAt).
		if tierAt != nil && m.TierSince.After(r.at) {
			res.tierAt = programme.Tier(*tierAt)
		}
		if !r.from.IsZero() {
			if nights == nil || points == nil || stays == nil {
				return errors.New("member view without its qualifying activity")
			}
			res.activity = tiers.Activity{WindowStart: r.from, WindowEnd: r.to, Nights: int(*nights), Points: *points, Stays: int(*stays)}
		}
		results[i-1], found[i-1] = res, true
	}
	return rows.Err()
}
