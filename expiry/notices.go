package expiry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

// NoticeDays is how far ahead a member hears of points about to expire.
const NoticeDays = 30

// MaxNoticeBatch bounds one batch of the notices job: the accounts read,
// and the notices written in one statement.
const MaxNoticeBatch = events.MaxOnceRows

// NoticeProgress is reported after every batch of Notices.
type NoticeProgress struct {
	// Date is the notices' date, in the programme's time zone.
	Date string
	// Processed is the accounts found with a lot expiring by the horizon,
	// Noticed the notices written, Points the points they announce.
	Processed, Noticed, Points int64
	Cursor                     string // the last account read
	Done                       bool
}

// Notices tells every member whose points expire within NoticeDays after
// asOf how many and when (loyalty.notice.points_expiring.v1), from the
// member's lots. Once per member and date (asOf's date in the time zone
// of the programme in force): the notice's id is the member's and the
// date's, written with ON CONFLICT DO NOTHING, and a run resumes from its
// checkpoint, so running it again on the same date (or two at once)
// writes nothing more, and the next date writes new notices. Accounts are
// taken in code order, batchSize at a time; each batch's notices are
// written in one transaction with the checkpoint.
func (j *Job) Notices(ctx context.Context, asOf time.Time, batchSize int, progress func(NoticeProgress)) (NoticeProgress, error) {
	if batchSize < 1 || batchSize > MaxNoticeBatch {
		return NoticeProgress{}, fmt.Errorf("notice batch size %d: must be 1 to %d", batchSize, MaxNoticeBatch)
	}
	asOf = asOf.UTC().Truncate(time.Microsecond)
	if asOf.After(j.now()) {
		return NoticeProgress{}, &ledger.FieldError{Field: "as_of", Problem: "must not be in the future"}
	}
	v, err := j.programmes.At(ctx, asOf)
	if err != nil {
		return NoticeProgress{}, err
	}
	p := NoticeProgress{Date: asOf.In(v.Location).Format(time.DateOnly)}
	name := "points-expiring-notices:" + p.Date
	db := j.ledger.DB()
	err = db.Pool.QueryRow(ctx, `SELECT cursor, done, processed, changed, amount FROM job_checkpoints WHERE job = $1`, name).
		Scan(&p.Cursor, &p.Done, &p.Processed, &p.Noticed, &p.Points)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("read checkpoint of %s: %w", name, err)
	}
	until := asOf.AddDate(0, 0, NoticeDays)
	for !p.Done {
		accounts, err := j.ledger.DueAccounts(ctx, p.Cursor, until, batchSize)
		if err != nil {
			return p, err
		}
		now := j.now().UTC().Truncate(time.Microsecond)
		next := p
		holdings, err := j.lotsOf(ctx, accounts)
		if err != nil {
			return p, fmt.Errorf("points expiring notices of %s: %w", p.Date, err)
		}
		var records []events.Record
		for i, account := range accounts {
			d, ok := expiring(memberNumberOf(account), p.Date, holdings[i], asOf, until)
			if !ok {
				continue
			}
			records = append(records, events.PointsExpiring(d, now))
			next.Points += d.Points
		}
		next.Processed += int64(len(accounts))
		next.Noticed += int64(len(records))
		if len(accounts) > 0 {
			next.Cursor = accounts[len(accounts)-1]
		}
		next.Done = len(accounts) < batchSize
		err = db.WriteTx(ctx, func(tx pgx.Tx) error {
			b := &pgx.Batch{}
			if len(records) > 0 {
				sql, args := events.InsertOnce(records)
				b.Queue(sql, args...)
			}
			b.Queue(`INSERT INTO job_checkpoints (job, cursor, done, processed, changed, amount, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7)
				ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor, done = excluded.done,
					processed = excluded.processed, changed = excluded.changed, amount = excluded.amount, updated_at = excluded.updated_at`,
				name, next.Cursor, next.Done, next.Processed, next.Noticed, next.Points, now)
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return p, fmt.Errorf("points expiring notices of %s after %q: %w", p.Date, p.Cursor, err)
		}
		p = next
		if progress != nil {
			progress(p)
		}
	}
	return p, nil
}

// lotsOf reads the open lots of member accounts, in one round trip.
func (j *Job) lotsOf(ctx context.Context, accounts []string) ([][]ledger.Lot, error) {
	if len(accounts) == 0 {
		return nil, nil
	}
	b := &pgx.Batch{}
	reads := make([]func(pgx.BatchResults) (ledger.Balance, []ledger.Lot, error), len(accounts))
	for i, account := range accounts {
		reads[i] = j.ledger.QueueHoldings(b, programme.MemberAccount(memberNumberOf(account)))
	}
	br := j.ledger.DB().Pool.SendBatch(ctx, b)
	defer br.Close()
	lots := make([][]ledger.Lot, len(accounts))
	for i, read := range reads {
		_, open, err := read(br)
		if err != nil {
			return nil, err
		}
		lots[i] = open
	}
	return lots, br.Close()
}

// expiring is the notice of a member whose lots are lots: the points of
// the lots that expire after asOf and by until, by expiry time; false when
// none does. Lots due by asOf are the expiry run's, not a notice's.
func expiring(member, date string, lots []ledger.Lot, asOf, until time.Time) (events.PointsExpiringData, bool) {
	d := events.PointsExpiringData{MemberNumber: member, NoticeDate: date, Until: events.Time(until)}
	byTime := map[time.Time]int64{}
	for _, l := range lots {
		if l.ExpiresAt.IsZero() || !l.ExpiresAt.After(asOf) || l.ExpiresAt.After(until) || l.Open <= 0 {
			continue
		}
		byTime[l.ExpiresAt.UTC()] += l.Open
		d.Points += l.Open
	}
	if d.Points == 0 {
		return d, false
	}
	times := make([]time.Time, 0, len(byTime))
	for t := range byTime {
		times = append(times, t)
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	d.FirstExpiresAt = events.Time(times[0])
	for _, t := range times[:min(len(times), events.MaxExpiringLots)] {
		d.Lots = append(d.Lots, events.ExpiringLot{Points: byTime[t], ExpiresAt: events.Time(t)})
	}
	return d, true
}
