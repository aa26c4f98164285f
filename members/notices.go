package members

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// ReviewNoticeDays is how far ahead a member hears of the coming tier
// review.
const ReviewNoticeDays = 30

// MaxNoticeBatch bounds one batch of a notices job: the members scanned,
// and the notices written in one statement.
const MaxNoticeBatch = events.MaxOnceRows

// NoticeProgress is reported after every batch of a notices job.
type NoticeProgress struct {
	// Date is the notices' date, in the programme's time zone.
	Date string
	// Processed is the members scanned, Noticed the notices written.
	Processed, Noticed int64
	Cursor             string // the last member number scanned
	Done               bool
}

// ReviewNotices tells every member whose tier review falls within
// ReviewNoticeDays after asOf what keeping the tier still takes
// (loyalty.notice.tier_review_coming.v1): the members at a tier with a
// threshold, whose manual tier, if any, has ended by the review. Once per
// member and date (asOf's date in loc, the programme's time zone): the
// notice's id is the member's and the date's, written with ON CONFLICT DO
// NOTHING, and a run resumes from its checkpoint, so running it again on
// the same date (or two at once) writes nothing more; the next date
// writes new notices. It scans members in number order, batchSize at a
// time, each batch read a few seconds back (StaleReadTx: advice, not a
// decision, needs no lock) and written in one transaction with the
// checkpoint.
func (s *Store) ReviewNotices(ctx context.Context, settings tiers.Settings, asOf time.Time, loc *time.Location, batchSize int, progress func(NoticeProgress)) (NoticeProgress, error) {
	if batchSize < 1 || batchSize > MaxNoticeBatch {
		return NoticeProgress{}, fmt.Errorf("notice batch size %d: must be 1 to %d", batchSize, MaxNoticeBatch)
	}
	if loc == nil {
		loc = time.UTC
	}
	asOf = asOf.UTC().Truncate(time.Microsecond)
	p := NoticeProgress{Date: asOf.In(loc).Format(time.DateOnly)}
	job := "tier-review-notices:" + p.Date
	var changed int64
	err := s.db.Pool.QueryRow(ctx, `SELECT cursor, done, processed, changed FROM job_checkpoints WHERE job = $1`, job).
		Scan(&p.Cursor, &p.Done, &p.Processed, &changed)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("read checkpoint of %s: %w", job, err)
	}
	p.Noticed = changed
	until := asOf.AddDate(0, 0, ReviewNoticeDays)
	for !p.Done {
		var batch []reviewCandidate
		var scanned []string
		err := s.db.StaleReadTx(ctx, func(tx pgx.Tx) error {
			var err error
			scanned, batch, err = reviewCandidates(ctx, tx, settings, p.Cursor, batchSize, asOf, until)
			return err
		})
		if err != nil {
			return p, fmt.Errorf("tier review notices of %s after member %q: %w", p.Date, p.Cursor, err)
		}
		next := p
		next.Processed += int64(len(scanned))
		if len(scanned) > 0 {
			next.Cursor = scanned[len(scanned)-1]
		}
		next.Done = len(scanned) < batchSize
		now := s.now().UTC().Truncate(time.Microsecond)
		var records []events.Record
		for _, c := range batch {
			records = append(records, events.TierReviewComing(c.notice(settings, p.Date), now))
		}
		next.Noticed += int64(len(records))
		err = s.db.WriteTx(ctx, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			if len(records) > 0 {
				sql, args := events.InsertOnce(records)
				b.Queue(sql, args...)
			}
			b.Queue(`INSERT INTO job_checkpoints (job, cursor, done, processed, changed, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor, done = excluded.done,
					processed = excluded.processed, changed = excluded.changed, updated_at = excluded.updated_at`,
				job, next.Cursor, next.Done, next.Processed, next.Noticed, now)
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return p, fmt.Errorf("tier review notices of %s after member %q: %w", p.Date, p.Cursor, err)
		}
		p = next
		if progress != nil {
			progress(p)
		}
	}
	return p, nil
}

// reviewCandidate is a member whose review is coming, with the activity
// that will still count at it.
type reviewCandidate struct {
	number      string
	tier        programme.Tier
	reviewDate  time.Time
	windowStart time.Time
	threshold   tiers.Threshold
	activity    tiers.Activity
}

// notice is what the candidate is told on date.
func (c reviewCandidate) notice(settings tiers.Settings, date string) events.TierReviewComingData {
	d := events.TierReviewComingData{MemberNumber: c.number, NoticeDate: date, Tier: string(c.tier),
		ReviewDate: events.Time(c.reviewDate), WindowStart: events.Time(c.windowStart),
		Nights: c.activity.Nights, Points: c.activity.Points,
		NightsNeeded: max(0, c.threshold.Nights-c.activity.Nights), PointsNeeded: max(0, c.threshold.Points-c.activity.Points)}
	d.Kept = d.NightsNeeded == 0 || d.PointsNeeded == 0
	if i := slices.Index(settings.Ladder, c.tier); i > 0 {
		d.TierIfNotKept = string(settings.Ladder[i-1])
	}
	return d
}

// reviewCandidates scans up to limit members after cursor and returns
// their numbers and, of them, those whose review falls in (asOf, until]
// at a tier a review can take away, with their qualifying activity from
// the review's window start to asOf.
func reviewCandidates(ctx context.Context, tx pgx.Tx, settings tiers.Settings, cursor string, limit int, asOf, until time.Time) ([]string, []reviewCandidate, error) {
	rows, err := tx.Query(ctx, `SELECT member_number, tier, COALESCE(tier_since, enrolled_at), first_stay IS NOT NULL,
			manual_tier, manual_until, reviewed_at
		FROM members WHERE member_number > $1 ORDER BY member_number LIMIT $2`, cursor, limit)
	if err != nil {
		return nil, nil, fmt.Errorf("scan members: %w", err)
	}
	var scanned []string
	var candidates []reviewCandidate
	for rows.Next() {
		var number, tier string
		var m tiers.Member
		var manualTier *string
		var manualUntil, reviewedAt *time.Time
		if err := rows.Scan(&number, &tier, &m.Since, &m.EverStayed, &manualTier, &manualUntil, &reviewedAt); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("scan members: %w", err)
		}
		scanned = append(scanned, number)
		m.Tier = programme.Tier(tier)
		if reviewedAt != nil {
			m.LastReview = *reviewedAt
		}
		if manualTier != nil {
			m.Manual = &tiers.Manual{Tier: programme.Tier(*manualTier)}
			if manualUntil != nil {
				m.Manual.Until = *manualUntil
			}
		}
		i := slices.IndexFunc(settings.Thresholds, func(t tiers.Threshold) bool { return t.Tier == m.Tier })
		if i < 0 {
			continue // nothing to keep: a review never takes it away
		}
		review := settings.ReviewDate(m)
		if !review.After(asOf) || review.After(until) {
			continue
		}
		if m.Manual != nil && (m.Manual.Until.IsZero() || review.Before(m.Manual.Until)) {
			continue // the manual tier holds at the review
		}
		candidates = append(candidates, reviewCandidate{number: number, tier: m.Tier, reviewDate: review,
			windowStart: settings.WindowStart(review), threshold: settings.Thresholds[i]})
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("scan members: %w", err)
	}
	if len(candidates) == 0 {
		return scanned, nil, nil
	}
	numbers, starts := make([]string, len(candidates)), make([]time.Time, len(candidates))
	for i, c := range candidates {
		numbers[i], starts[i] = c.number, c.windowStart
	}
	rows, err = tx.Query(ctx, `SELECT v.member_number, COALESCE(SUM(q.nights), 0)::INT8, COALESCE(SUM(q.points), 0)::INT8
		FROM unnest($1::TEXT[], $2::TIMESTAMPTZ[]) AS v (member_number, window_start)
		LEFT JOIN qualifying_stays q
			ON q.member_number = v.member_number AND q.completed_at >= v.window_start AND q.completed_at <= $3
		GROUP BY v.member_number`, numbers, starts, asOf)
	if err != nil {
		return nil, nil, fmt.Errorf("read qualifying activity: %w", err)
	}
	activity := map[string]tiers.Activity{}
	var number string
	var nights, points int64
	_, err = pgx.ForEachRow(rows, []any{&number, &nights, &points}, func() error {
		activity[number] = tiers.Activity{Nights: int(nights), Points: points}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read qualifying activity: %w", err)
	}
	for i := range candidates {
		a := activity[candidates[i].number]
		a.WindowStart, a.WindowEnd = candidates[i].windowStart, asOf
		candidates[i].activity = a
	}
	return scanned, candidates, nil
}
