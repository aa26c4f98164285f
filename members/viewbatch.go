package members

import (
	"context"
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
// round trip each. Reads that arrive while one is in flight go to the
// database together, in one round trip; each caller gets its own member,
// as if it had read it alone at the moment the batch was read.
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

// readViews reads a batch, in one round trip, and answers each of its
// reads. Each read is the statements a caller alone would send (the
// member, its tier history around the time, its activity in the window):
// one statement for the whole batch, over arrays of their parameters, was
// planned anew at every call (a custom plan: PostgreSQL cannot estimate
// an array parameter's length), and planning it cost five times what
// running it did.
func (s *Store) readViews(batch []*viewRead) {
	ctx, cancel := context.WithTimeout(context.Background(), viewReadTimeout)
	defer cancel()
	b := &pgx.Batch{}
	for _, r := range batch {
		b.Queue(memberSelect+` WHERE member_number = $1`, r.number)
		b.Queue(tierAtSQL, r.number, r.at)
		if !r.from.IsZero() {
			b.Queue(qualifyingActivitySQL, r.number, r.from, r.to)
		}
	}
	br := s.db.Pool.SendBatch(ctx, b)
	results := make([]viewResult, len(batch))
	for i, r := range batch {
		results[i] = readView(br, r)
	}
	if err := br.Close(); err != nil {
		for i, r := range batch {
			if results[i].err == nil {
				results[i] = viewResult{err: fmt.Errorf("read member %s: %w", r.number, err)}
			}
		}
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

// readView reads the results of one read's statements.
func readView(br pgx.BatchResults, r *viewRead) viewResult {
	// Every statement's result is read, whatever the first says, so that
	// the next read's are where it expects them.
	m, err := scanMember(br.QueryRow(), r.number)
	tierAt, tierErr := tierFromRow(br.QueryRow(), m, r.at)
	a := tiers.Activity{WindowStart: r.from, WindowEnd: r.to}
	var activityErr error
	if !r.from.IsZero() {
		if activityErr = br.QueryRow().Scan(&a.Nights, &a.Points, &a.Stays); activityErr != nil {
			activityErr = fmt.Errorf("qualifying activity of %s: %w", r.number, activityErr)
		}
	}
	for _, err := range []error{err, tierErr, activityErr} {
		if err != nil {
			return viewResult{err: err}
		}
	}
	if !m.TierSince.After(r.at) { // no change since r.at: the tier now is the tier then
		tierAt = m.Tier
	}
	return viewResult{member: m, tierAt: tierAt, activity: a}
}
