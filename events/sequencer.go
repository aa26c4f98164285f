package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-ledger/loyalty/database"
)

// MaxSequenceBatch bounds the outbox rows one step moves.
const MaxSequenceBatch = 5000

// SequencerLease is how long a process keeps the sequencer once it took
// it without stepping again: another process takes over after that.
const SequencerLease = 10 * time.Second

// maxKnownSubjects bounds the subjects whose last sequence number a
// sequencer remembers (about 100 bytes each): past it, it forgets them all
// and reads them again as they come.
const maxKnownSubjects = 200_000

// Sequencer moves committed outbox rows to events. Several processes may
// run one; one at a time sequences (a lease on the event_sequencer row),
// and each step is one serializable transaction over that row, so two
// steps never give out the same position even when leases overlap.
type Sequencer struct {
	db     *database.DB
	now    func() time.Time
	holder string

	// mu makes a process's steps one at a time, so that known describes
	// the step before.
	mu sync.Mutex
	// known is the last sequence number this sequencer gave each subject,
	// as of the step that left the last position at knownPosition. It is
	// good while no other process has sequenced since: the last position
	// is still knownPosition. Reading a subject's last number from the
	// events' index cost as much, per event, as a third of the copy.
	known         map[string]int64
	knownPosition int64
	// carefulSteps counts the steps written again the careful way.
	carefulSteps int
}

// NewSequencer returns a sequencer that holds the lease as holder (unique
// per process: host, pid, a random part).
func NewSequencer(db *database.DB, now func() time.Time, holder string) *Sequencer {
	if now == nil {
		now = time.Now
	}
	return &Sequencer{db: db, now: now, holder: holder, knownPosition: -1}
}

// errNotHolder: another process holds the sequencer's lease.
var errNotHolder = errors.New("another process sequences")

// Step moves up to batch outbox rows, oldest recorded first, to events,
// and returns how many it moved: 0 when the outbox is empty or another
// process holds the lease.
//
// A step first assumes that no outbox row repeats an event sequenced
// already, and that the subjects' last numbers it remembers are current.
// A repeated event (a notice a job wrote again) fails the step's insert on
// the events' unique id; the step is then written again the careful way:
// it leaves the repeats out and reads every subject's last number.
func (s *Sequencer) Step(ctx context.Context, batch int) (int, error) {
	if batch < 1 || batch > MaxSequenceBatch {
		return 0, fmt.Errorf("sequence batch %d: must be 1 to %d", batch, MaxSequenceBatch)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	moved, err := s.step(ctx, batch, false)
	if isUniqueViolation(err) {
		s.carefulSteps++
		moved, err = s.step(ctx, batch, true)
	}
	if errors.Is(err, errNotHolder) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sequence events: %w", err)
	}
	return moved, nil
}

// step is one attempt of Step; careful leaves out events sequenced already
// and reads every subject's last number from the database.
func (s *Sequencer) step(ctx context.Context, batch int, careful bool) (int, error) {
	var moved int
	var numbered map[string]int64
	var lastBefore, lastAfter int64
	// The lease's UPDATE locks the one row every step updates, which orders
	// the steps; they need no more than that (database.LockedTx).
	err := s.db.LockedTx(ctx, func(tx pgx.Tx) error {
		moved, numbered = 0, nil
		now := s.now().UTC()
		var last int64
		err := tx.QueryRow(ctx, `UPDATE event_sequencer SET holder = $1, lease_until = $2
			WHERE id = 1 AND (holder = $1 OR lease_until IS NULL OR lease_until < $3)
			RETURNING last_position`, s.holder, now.Add(SequencerLease), now).Scan(&last)
		if errors.Is(err, pgx.ErrNoRows) {
			return errNotHolder
		}
		if err != nil {
			return fmt.Errorf("take the sequencer: %w", err)
		}
		if err := byIndexes(ctx, tx, s.db.Dialect.Engine); err != nil {
			return err
		}
		pending, err := readOutbox(ctx, tx, batch)
		if err != nil {
			return err
		}
		if len(pending) == 0 {
			return nil
		}
		fresh := pending
		if careful {
			if fresh, err = notYetSequenced(ctx, tx, pending); err != nil {
				return err
			}
		}
		var known map[string]int64
		if !careful && last == s.knownPosition {
			known = s.known
		}
		seqs, err := lastSeqs(ctx, tx, fresh, known)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		queueSequenced(b, fresh, seqs, last, now)
		b.Queue(outboxDeleteSQL, outboxIDs(pending))
		br := tx.SendBatch(ctx, b)
		for i := range b.Len() {
			tag, err := br.Exec()
			if err != nil {
				_ = br.Close()
				return fmt.Errorf("sequence %d events: %w", len(pending), err)
			}
			// The outbox rows read are locked out of every other step by
			// the lease's row: each must have been copied.
			if i == 0 && tag.RowsAffected() != int64(len(fresh)) {
				_ = br.Close()
				return fmt.Errorf("sequence %d events: %d copied from the outbox", len(fresh), tag.RowsAffected())
			}
		}
		if err := br.Close(); err != nil {
			return err
		}
		moved, numbered, lastBefore, lastAfter = len(pending), seqs, last, last+int64(len(fresh))
		return nil
	})
	if err != nil {
		return 0, err
	}
	if numbered != nil {
		s.remember(lastBefore, numbered, lastAfter)
	}
	return moved, nil
}

// remember keeps the last numbers a committed step gave: the step started
// from the last position lastBefore and left it at lastAfter.
func (s *Sequencer) remember(lastBefore int64, numbered map[string]int64, lastAfter int64) {
	// Another process sequenced since the numbers remembered: they may be
	// behind.
	if lastBefore != s.knownPosition || len(s.known)+len(numbered) > maxKnownSubjects {
		s.known = nil
	}
	if s.known == nil {
		s.known = make(map[string]int64, len(numbered))
	}
	for subject, seq := range numbered {
		s.known[subject] = seq
	}
	s.knownPosition = lastAfter
}

// isUniqueViolation: a statement found its key taken (SQLSTATE 23505, on
// both engines).
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// outboxReadSQL reads only what orders and numbers the rows: the
// statement that sequences them copies the rest from the outbox in the
// database.
const outboxReadSQL = `SELECT id, subject FROM event_outbox ORDER BY recorded_at, ordinal, id LIMIT $1`

// outboxDeleteSQL deletes the rows a step sequenced.
const outboxDeleteSQL = `DELETE FROM event_outbox WHERE id = ANY($1::UUID[])`

// readOutbox reads the batch oldest outbox rows.
func readOutbox(ctx context.Context, tx pgx.Tx, batch int) ([]outboxRow, error) {
	return collectOutbox(tx.Query(ctx, outboxReadSQL, batch))
}

// byIndexes makes the rest of a step's transaction read by indexes.
//
// On PostgreSQL the outbox's heap keeps the size of its largest backlog
// (a deleted row's room is reused, not given back), while its statistics,
// once vacuumed, count the few live rows: the planner then reads the
// whole heap, at every step, to find the oldest rows (a sort of all of
// them) and the rows to delete, rather than a few entries of an index.
// Measured during events-ab: 11 ms a read over 1,957 pages holding 70
// rows, and 58 ms a delete of 370 rows by id. Every statement of a step
// finds its rows by a key. CockroachDB reads by the index.
func byIndexes(ctx context.Context, tx pgx.Tx, engine database.Engine) error {
	if engine != database.PostgreSQL {
		return nil
	}
	if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
		return fmt.Errorf("read the outbox by its indexes: %w", err)
	}
	return nil
}

func collectOutbox(rows pgx.Rows, err error) ([]outboxRow, error) {
	if err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	pending, err := pgx.CollectRows(rows, scanOutboxRow)
	if err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	return pending, nil
}

type outboxRow struct {
	id      uuid.UUID
	subject string
}

func scanOutboxRow(r pgx.CollectableRow) (outboxRow, error) {
	var o outboxRow
	err := r.Scan(&o.id, &o.subject)
	return o, err
}

// notYetSequenced is pending without the events already sequenced: a
// fact announced again under the id it had (a notice a job wrote twice)
// is announced once.
func notYetSequenced(ctx context.Context, tx pgx.Tx, pending []outboxRow) ([]outboxRow, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM events WHERE id = ANY($1::UUID[])`, outboxIDs(pending))
	if err != nil {
		return nil, fmt.Errorf("find events sequenced already: %w", err)
	}
	done, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
	if err != nil {
		return nil, fmt.Errorf("find events sequenced already: %w", err)
	}
	if len(done) == 0 {
		return pending, nil
	}
	return slices.DeleteFunc(slices.Clone(pending), func(o outboxRow) bool { return slices.Contains(done, o.id) }), nil
}

func outboxIDs(rows []outboxRow) []uuid.UUID {
	ids := make([]uuid.UUID, len(rows))
	for i, o := range rows {
		ids[i] = o.id
	}
	return ids
}

// lastSeqs returns the last sequence number of each subject of pending:
// known's, for the subjects it has, and otherwise read: the subject's
// newest event's, found in events' (subject, seq) index, or, when Prune
// has deleted every event of the subject, the number Prune kept in
// event_subjects. A step writes nothing per subject: a row per subject
// updated by every step cost as much as the events it numbered. One
// statement reads both, so that it sees a concurrent Prune's delete and
// the number it kept together (one snapshot, whatever the isolation).
func lastSeqs(ctx context.Context, tx pgx.Tx, pending []outboxRow, known map[string]int64) (map[string]int64, error) {
	seqs := map[string]int64{}
	var unknown []string
	for _, o := range pending {
		if _, ok := seqs[o.subject]; ok {
			continue
		}
		last, ok := known[o.subject]
		seqs[o.subject] = last
		if !ok {
			unknown = append(unknown, o.subject)
		}
	}
	if len(unknown) == 0 {
		return seqs, nil
	}
	rows, err := tx.Query(ctx, `SELECT v.subject, GREATEST(
			COALESCE((SELECT e.seq FROM events AS e WHERE e.subject = v.subject ORDER BY e.seq DESC LIMIT 1), 0),
			COALESCE((SELECT s.last_seq FROM event_subjects AS s WHERE s.subject = v.subject), 0))
		FROM unnest($1::TEXT[]) AS v (subject)`, unknown)
	if err != nil {
		return nil, fmt.Errorf("read subjects' sequences: %w", err)
	}
	var subject string
	var last int64
	_, err = pgx.ForEachRow(rows, []any{&subject, &last}, func() error { seqs[subject] = last; return nil })
	if err != nil {
		return nil, fmt.Errorf("read subjects' sequences: %w", err)
	}
	return seqs, nil
}

// queueSequenced queues the writes of one step: the events with their
// positions after last and their subjects' next numbers, copied from the
// outbox, and the last position.
func queueSequenced(b *pgx.Batch, pending []outboxRow, seqs map[string]int64, last int64, now time.Time) {
	n := len(pending)
	ids, positions, seq := make([]uuid.UUID, n), make([]int64, n), make([]int64, n)
	for i, o := range pending {
		seqs[o.subject]++
		ids[i], positions[i], seq[i] = o.id, last+int64(i)+1, seqs[o.subject]
	}
	b.Queue(`INSERT INTO events (position, id, type, subject, seq, occurred_at, recorded_at, sequenced_at, partner_id, property_id, transaction_id, data)
		SELECT v.position, o.id, o.type, o.subject, v.seq, o.occurred_at, o.recorded_at, $4, o.partner_id, o.property_id, o.transaction_id, o.data
		FROM unnest($1::UUID[], $2::INT8[], $3::INT8[]) AS v (id, position, seq)
		JOIN event_outbox AS o ON o.id = v.id`,
		ids, positions, seq, now)
	b.Queue(`UPDATE event_sequencer SET last_position = $1 WHERE id = 1`, last+int64(n))
}
