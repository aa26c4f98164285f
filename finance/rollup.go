package finance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// JobProgress is what a run of a finance job did.
type JobProgress struct {
	Days  int       // days written by this run
	Until time.Time // end of the last day done (zero: nothing to do yet)
}

// errMoved is a job run finding that another run did the day first.
var errMoved = errors.New("another run moved the checkpoint")

// isUniqueViolation is the other way a run finds that another one did the
// day first: both read the old checkpoint, the other committed the day's
// rows first.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// firstDay is the day of the oldest transaction; ok is false when there is
// none.
func firstDay(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (time.Time, bool, error) {
	var first *time.Time
	if err := q.QueryRow(ctx, `SELECT MIN(recorded_at) FROM transactions`).Scan(&first); err != nil {
		return time.Time{}, false, fmt.Errorf("find the first transaction: %w", err)
	}
	if first == nil {
		return time.Time{}, false, nil
	}
	return dayOf(*first), true, nil
}

// RollUp writes the totals of every closed day that is not rolled up yet,
// oldest first, one day per transaction together with the checkpoint. It
// reads each day in a snapshot (no writer waits for it) and writes only
// finance tables, so it is off the write path. It resumes after the last
// day it committed, and a run with nothing closed to do does nothing:
// running it again, or twice at once, is harmless.
func (r *Reports) RollUp(ctx context.Context) (JobProgress, error) {
	var p JobProgress
	closed := closedUntil(r.clock())
	for {
		day, ok, err := rolledUntil(ctx, r.db.Pool)
		if err != nil {
			return p, err
		}
		if !ok {
			if day, ok, err = firstDay(ctx, r.db.Pool); err != nil || !ok {
				return p, err
			}
		}
		p.Until = day
		end := day.AddDate(0, 0, 1)
		if end.After(closed) {
			return p, nil
		}
		var byAccount, byProperty totals
		_, err = r.db.SnapshotTx(ctx, end, r.clock(), func(tx pgx.Tx) error {
			if byAccount, err = rawTotals(ctx, tx, accountGrain, day, end); err != nil {
				return err
			}
			byProperty, err = rawTotals(ctx, tx, propertyGrain, day, end)
			return err
		})
		if err != nil {
			return p, fmt.Errorf("roll up %s: %w", fmtDay(day), err)
		}
		err = r.db.WriteTx(ctx, func(tx pgx.Tx) error {
			current, ok, err := rolledUntil(ctx, tx)
			if err != nil {
				return err
			}
			if ok && !current.Equal(day) {
				return errMoved
			}
			return writeDayTotals(ctx, tx, day, byAccount, byProperty, r.clock())
		})
		if errors.Is(err, errMoved) || isUniqueViolation(err) {
			continue // another run did this day: go on from where it is
		}
		if err != nil {
			return p, fmt.Errorf("roll up %s: %w", fmtDay(day), err)
		}
		p.Days++
		p.Until = end
	}
}

func writeDayTotals(ctx context.Context, tx pgx.Tx, day time.Time, byAccount, byProperty totals, now time.Time) error {
	b := &pgx.Batch{}
	queueTotals(b, accountGrain, day, byAccount)
	queueTotals(b, propertyGrain, day, byProperty)
	if end := day.AddDate(0, 0, 1); end.Day() == 1 {
		// The month's last day: its days are all in the daily tables now
		// (days are rolled up in order, this one just above).
		month := floorMonth(day)
		for _, g := range []grain{accountGrain, propertyGrain} {
			b.Queue(`INSERT INTO `+g.monthTable+`
					(month, account_code, kind, property_id, partner_id, touches_member, points, postings)
				SELECT $1::DATE, account_code, kind, property_id, partner_id, touches_member, SUM(points)::INT8, SUM(postings)::INT8
				FROM `+g.table+` WHERE day >= $1::DATE AND day < $2::DATE
				GROUP BY account_code, kind, property_id, partner_id, touches_member`,
				fmtDay(month), fmtDay(end))
		}
	}
	b.Queue(`INSERT INTO job_checkpoints (job, cursor, done, processed, changed, updated_at)
		VALUES ($1, $2, false, 1, $3, $4)
		ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor,
			processed = job_checkpoints.processed + 1,
			changed = job_checkpoints.changed + excluded.changed, updated_at = excluded.updated_at`,
		rollupJob, fmtDay(day.AddDate(0, 0, 1)), int64(len(byAccount)+len(byProperty)), now)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("write totals of %s: %w", fmtDay(day), err)
	}
	return nil
}

func queueTotals(b *pgx.Batch, g grain, day time.Time, t totals) {
	n := len(t)
	if n == 0 {
		return
	}
	accounts, kinds, properties, partners := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	touches, points, postings := make([]bool, 0, n), make([]int64, 0, n), make([]int64, 0, n)
	for k, s := range t {
		accounts, kinds, properties, partners = append(accounts, k.Account), append(kinds, k.Kind), append(properties, k.PropertyID), append(partners, k.PartnerID)
		touches, points, postings = append(touches, k.TouchesMember), append(points, s.Points), append(postings, s.Postings)
	}
	b.Queue(`INSERT INTO `+g.table+`
			(day, account_code, kind, property_id, partner_id, touches_member, points, postings)
		SELECT $1::DATE, a, k, pr, pa, tm, pt, ps
		FROM unnest($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BOOL[], $7::INT8[], $8::INT8[])
			AS u (a, k, pr, pa, tm, pt, ps)`,
		fmtDay(day), accounts, kinds, properties, partners, touches, points, postings)
}
