package members

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// ReviewProgress is reported after every batch of a review, with the
// counts of the whole review at its as-of (earlier runs it resumed
// included).
type ReviewProgress struct {
	// Processed is the members scanned, due or not.
	Processed int64
	// Changed is the members whose tier the review changed: down one step
	// at their review date, or up (a member whose stays reach a higher
	// tier goes up at any review, due or not).
	Changed int64
	// Unchanged is the members due (their review date had come by the
	// as-of) who kept their tier; they are marked reviewed at the as-of,
	// so that their next review is a year on.
	Unchanged int64
	Cursor    string // the last member number reviewed
	Done      bool
}

// Due is the members the review decided on: those whose review date had
// come by the as-of, and any member it moved up before that date.
func (p ReviewProgress) Due() int64 { return p.Changed + p.Unchanged }

// NotDue is the members scanned whose review date had not come.
func (p ReviewProgress) NotDue() int64 { return p.Processed - p.Due() }

// MaxReviewBatch bounds one batch of the review job.
const MaxReviewBatch = 5000

// ReviewTiers reviews every member due at asOf, in member-number order and
// in batches of batchSize, each batch in one transaction with its
// checkpoint: a run that stops (a crash, a deploy) resumes after the last
// committed batch when started again with the same asOf, and a finished
// run does nothing when started again. A member whose tier changes gets
// tier_since = asOf, and a member due who keeps the tier gets reviewed_at
// = asOf, so a second review at the same asOf does not find them due:
// running it twice changes nothing the second time, and their next review
// date (Member.ForTierRules, tiers.Settings.ReviewDate) is a year on.
func (s *Store) ReviewTiers(ctx context.Context, settings tiers.Settings, asOf time.Time, batchSize int, progress func(ReviewProgress)) (ReviewProgress, error) {
	if batchSize < 1 || batchSize > MaxReviewBatch {
		return ReviewProgress{}, fmt.Errorf("review batch size %d: must be 1 to %d", batchSize, MaxReviewBatch)
	}
	asOf = asOf.UTC().Truncate(time.Microsecond)
	job := "tier-review:" + asOf.Format(time.RFC3339Nano)
	var p ReviewProgress
	// The checkpoint's amount, the job's running total besides its
	// counts, is the unchanged members.
	err := s.db.Pool.QueryRow(ctx, `SELECT cursor, done, processed, changed, amount FROM job_checkpoints WHERE job = $1`, job).
		Scan(&p.Cursor, &p.Done, &p.Processed, &p.Changed, &p.Unchanged)
	if err != nil && err != pgx.ErrNoRows {
		return p, fmt.Errorf("read checkpoint of %s: %w", job, err)
	}
	windowStart := settings.WindowStart(asOf)
	for !p.Done {
		// The scan for the next batch reads a few seconds back, so that on
		// CockroachDB it neither waits on nor pushes the writes in its
		// range; the members it finds are then read again by key in the
		// transaction that changes them. A member enrolled in those few
		// seconds has nothing to review yet.
		var numbers []string
		err := s.db.StaleReadTx(ctx, func(tx pgx.Tx) error {
			var err error
			numbers, err = nextMembers(ctx, tx, p.Cursor, batchSize)
			return err
		})
		if err != nil {
			return p, fmt.Errorf("review tiers at %s after member %q: %w", asOf.Format(time.RFC3339), p.Cursor, err)
		}
		next := p
		err = s.db.WriteTx(ctx, func(tx pgx.Tx) error {
			next = p
			now := s.now().UTC().Truncate(time.Microsecond)
			if len(numbers) > 0 {
				next.Cursor = numbers[len(numbers)-1]
			}
			batch, err := reviewBatch(ctx, tx, numbers, windowStart, asOf)
			if err != nil {
				return err
			}
			b := &pgx.Batch{}
			var requalified []string
			for _, m := range batch {
				d := settings.Review(m.member, m.activity, asOf)
				next.Processed++
				next.Cursor = m.number
				if !d.Changed {
					if !asOf.Before(settings.ReviewDate(m.member)) {
						requalified = append(requalified, m.number) // due, and kept the tier
					}
					continue
				}
				next.Changed++
				c := ChangeTier(m.number, TierChange{From: d.From, To: d.To, Reason: d.Reason, EffectiveAt: asOf,
					Nights: m.activity.Nights, Points: m.activity.Points, ChangedBy: "tier-review",
					Cause: events.TierCauseReview, EventKey: job}, now)
				b.Queue(c.SQL, c.Args...)
			}
			if len(requalified) > 0 {
				next.Unchanged += int64(len(requalified))
				b.Queue(`UPDATE members SET reviewed_at = $2 WHERE member_number = ANY($1)`, requalified, asOf)
			}
			next.Done = len(numbers) < batchSize
			b.Queue(`INSERT INTO job_checkpoints (job, cursor, done, processed, changed, amount, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor, done = excluded.done,
					processed = excluded.processed, changed = excluded.changed, amount = excluded.amount,
					updated_at = excluded.updated_at`,
				job, next.Cursor, next.Done, next.Processed, next.Changed, next.Unchanged, now)
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return p, fmt.Errorf("review tiers at %s after member %q: %w", asOf.Format(time.RFC3339), p.Cursor, err)
		}
		p = next
		if progress != nil {
			progress(p)
		}
	}
	return p, nil
}

type reviewed struct {
	number   string
	member   tiers.Member
	activity tiers.Activity
}

// nextMembers returns, in order, up to limit member numbers after cursor.
func nextMembers(ctx context.Context, tx pgx.Tx, cursor string, limit int) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT member_number FROM members WHERE member_number > $1 ORDER BY member_number LIMIT $2`, cursor, limit)
	if err != nil {
		return nil, fmt.Errorf("find the next members to review: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// reviewBatch reads the members numbered with their qualifying activity in
// the window, in one query, by key.
func reviewBatch(ctx context.Context, tx pgx.Tx, numbers []string, windowStart, asOf time.Time) ([]reviewed, error) {
	rows, err := tx.Query(ctx, `
		WITH batch AS (
			SELECT member_number, tier, COALESCE(tier_since, enrolled_at) AS since, first_stay IS NOT NULL AS stayed,
				manual_tier, manual_until, COALESCE(manual_reason, '') AS manual_reason, reviewed_at
			FROM members WHERE member_number = ANY($1::TEXT[])
		)
		SELECT b.member_number, b.tier, b.since, b.stayed, b.manual_tier, b.manual_until, b.manual_reason, b.reviewed_at,
			COALESCE(SUM(q.nights), 0)::INT8, COALESCE(SUM(q.points), 0)::INT8
		FROM batch b LEFT JOIN qualifying_stays q
			ON q.member_number = b.member_number AND q.completed_at >= $2 AND q.completed_at <= $3
		GROUP BY b.member_number, b.tier, b.since, b.stayed, b.manual_tier, b.manual_until, b.manual_reason, b.reviewed_at
		ORDER BY b.member_number`, numbers, windowStart, asOf)
	if err != nil {
		return nil, fmt.Errorf("read review batch: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (reviewed, error) {
		var m reviewed
		var tier, reason string
		var manualTier *string
		var manualUntil, reviewedAt *time.Time
		var nights int64
		err := r.Scan(&m.number, &tier, &m.member.Since, &m.member.EverStayed, &manualTier, &manualUntil, &reason, &reviewedAt, &nights, &m.activity.Points)
		if reviewedAt != nil {
			m.member.LastReview = *reviewedAt
		}
		m.member.Tier, m.activity.Nights = programme.Tier(tier), int(nights)
		m.activity.WindowStart, m.activity.WindowEnd = windowStart, asOf
		if manualTier != nil {
			m.member.Manual = &tiers.Manual{Tier: programme.Tier(*manualTier), Reason: reason}
			if manualUntil != nil {
				m.member.Manual.Until = *manualUntil
			}
		}
		return m, err
	})
}
