package finance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// totalKey is the grain of the rollups: an account (members collapsed to
// MemberAggregate), the transaction kind, the property and partner the
// transaction's metadata names, and whether the transaction moved a
// member's points.
type totalKey struct {
	Account       string
	Kind          string
	PropertyID    string
	PartnerID     string
	TouchesMember bool
}

// sum is the raw (credit-positive) sum of postings and their count.
type sum struct {
	Points   int64
	Postings int64
}

type totals map[totalKey]sum

func (t totals) add(k totalKey, s sum) {
	cur := t[k]
	cur.Points += s.Points
	cur.Postings += s.Postings
	t[k] = cur
}

func (t totals) merge(o totals) {
	for k, s := range o {
		t.add(k, s)
	}
}

// grain is the detail a set of totals keeps, and the rollup table that
// holds it.
type grain struct {
	table      string // per day
	monthTable string // per calendar month
	byProperty bool
}

var (
	// accountGrain leaves the property out (property_id ''): a few dozen
	// rows a day, what the trial balance and most roll-forwards read.
	accountGrain = grain{table: "finance_daily_totals", monthTable: "finance_monthly_totals"}
	// propertyGrain keeps the property: for the roll-forward by property.
	propertyGrain = grain{table: "finance_daily_property_totals", monthTable: "finance_monthly_property_totals", byProperty: true}
)

// floorMonth is the first day of t's month; ceilMonth the first day of the
// month at or after the day t.
func floorMonth(t time.Time) time.Time {
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

func ceilMonth(t time.Time) time.Time {
	m := floorMonth(t)
	if m.Equal(t) {
		return m
	}
	return m.AddDate(0, 1, 0)
}

// rawTotalsSQL sums the postings of the transactions recorded in a period,
// at the grain of finance_daily_totals. %s is the period's condition on
// transactions t. The rollup job writes exactly what this returns for a
// day, so a rolled-up day and a raw one add up the same way. The second %s
// is the property expression (” at accountGrain).
const rawTotalsSQL = `
	WITH tp AS (
		SELECT t.id, t.kind,
			%s AS property_id,
			COALESCE(t.metadata->>'partner_id', '') AS partner_id,
			p.account_code, p.amount
		FROM transactions t JOIN postings p ON p.transaction_id = t.id
		WHERE %s
	), touched AS (
		SELECT DISTINCT id FROM tp WHERE account_code LIKE 'member:%%'
	)
	SELECT CASE WHEN tp.account_code LIKE 'member:%%' THEN 'member:*' ELSE tp.account_code END AS account,
		tp.kind, tp.property_id, tp.partner_id, touched.id IS NOT NULL AS touches_member,
		SUM(tp.amount)::INT8, COUNT(*)::INT8
	FROM tp LEFT JOIN touched ON touched.id = tp.id
	GROUP BY 1, 2, 3, 4, 5`

// rawTotals sums the postings recorded in (after, upTo]; a zero after
// means from the beginning.
func rawTotals(ctx context.Context, q pgx.Tx, g grain, after, upTo time.Time) (totals, error) {
	cond, args := `t.recorded_at <= $1`, []any{upTo}
	if !after.IsZero() {
		cond, args = `t.recorded_at > $2 AND t.recorded_at <= $1`, []any{upTo, after}
	}
	property := `''`
	if g.byProperty {
		property = `COALESCE(t.metadata->>'property_id', '')`
	}
	rows, err := q.Query(ctx, fmt.Sprintf(rawTotalsSQL, property, cond), args...)
	if err != nil {
		return nil, fmt.Errorf("sum postings in (%s, %s]: %w", fmtTime(after), fmtTime(upTo), err)
	}
	return collectTotals(rows)
}

// rolledTotals sums the rollups of the days in [fromDay, toDay) (zero
// fromDay: from the first): the monthly rows of the whole months inside,
// the daily rows of the days at either end. Every day before toDay is
// rolled up, so is every month that ends by then.
func rolledTotals(ctx context.Context, q pgx.Tx, g grain, fromDay, toDay time.Time) (totals, error) {
	lastMonth := floorMonth(toDay)
	firstMonth := time.Time{}
	if !fromDay.IsZero() {
		firstMonth = ceilMonth(fromDay)
		if !firstMonth.Before(lastMonth) {
			return sumRows(ctx, q, g.table, "day", fromDay, toDay)
		}
	}
	out, err := sumRows(ctx, q, g.monthTable, "month", firstMonth, lastMonth)
	if err != nil {
		return nil, err
	}
	if !fromDay.IsZero() && fromDay.Before(firstMonth) {
		head, err := sumRows(ctx, q, g.table, "day", fromDay, firstMonth)
		if err != nil {
			return nil, err
		}
		out.merge(head)
	}
	if lastMonth.Before(toDay) {
		tail, err := sumRows(ctx, q, g.table, "day", lastMonth, toDay)
		if err != nil {
			return nil, err
		}
		out.merge(tail)
	}
	return out, nil
}

// sumRows sums a rollup table's rows whose column col is in [from, to)
// (zero from: unbounded).
func sumRows(ctx context.Context, q pgx.Tx, table, col string, from, to time.Time) (totals, error) {
	cond, args := col+` < $1::DATE`, []any{fmtDay(to)}
	if !from.IsZero() {
		cond, args = col+` >= $2::DATE AND `+col+` < $1::DATE`, []any{fmtDay(to), fmtDay(from)}
	}
	rows, err := q.Query(ctx, `SELECT account_code, kind, property_id, partner_id, touches_member,
			SUM(points)::INT8, SUM(postings)::INT8
		FROM `+table+` WHERE `+cond+`
		GROUP BY account_code, kind, property_id, partner_id, touches_member`, args...)
	if err != nil {
		return nil, fmt.Errorf("sum %s before %s: %w", table, fmtDay(to), err)
	}
	return collectTotals(rows)
}

func collectTotals(rows pgx.Rows) (totals, error) {
	out := totals{}
	var k totalKey
	var s sum
	_, err := pgx.ForEachRow(rows, []any{&k.Account, &k.Kind, &k.PropertyID, &k.PartnerID, &k.TouchesMember, &s.Points, &s.Postings}, func() error {
		out.add(k, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read totals: %w", err)
	}
	return out, nil
}

// rollupJob names the rollup job's checkpoint: its cursor is the end of the
// last rolled-up day (every day ending at or before it is in
// finance_daily_totals).
const rollupJob = "finance-rollup"

// rolledUntil reads the rollup frontier; ok is false before the first run.
func rolledUntil(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (until time.Time, ok bool, err error) {
	var cursor string
	err = q.QueryRow(ctx, `SELECT cursor FROM job_checkpoints WHERE job = $1`, rollupJob).Scan(&cursor)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read rollup checkpoint: %w", err)
	}
	until, err = time.Parse(time.DateOnly, cursor)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("rollup checkpoint %q: %w", cursor, err)
	}
	return until, true, nil
}

// periodTotals sums the postings recorded in (after, upTo] (zero after:
// from the beginning): the rollups of the whole closed days inside the
// period plus the raw postings of the rest.
func periodTotals(ctx context.Context, q pgx.Tx, g grain, after, upTo time.Time) (totals, error) {
	if !after.IsZero() && !upTo.After(after) {
		return totals{}, nil
	}
	frontier, ok, err := rolledUntil(ctx, q)
	if err != nil {
		return nil, err
	}
	if !ok {
		return rawTotals(ctx, q, g, after, upTo)
	}
	var lo time.Time // first whole day; zero: from the first day
	if !after.IsZero() {
		lo = ceilDay(after)
	}
	hi := floorDay(upTo) // end of the last whole day
	if frontier.Before(hi) {
		hi = frontier
	}
	if !lo.IsZero() && !lo.Before(hi) {
		return rawTotals(ctx, q, g, after, upTo)
	}
	out, err := rolledTotals(ctx, q, g, lo, hi)
	if err != nil {
		return nil, err
	}
	if !lo.IsZero() && lo.After(after) {
		head, err := rawTotals(ctx, q, g, after, lo)
		if err != nil {
			return nil, err
		}
		out.merge(head)
	}
	if upTo.After(hi) {
		tail, err := rawTotals(ctx, q, g, hi, upTo)
		if err != nil {
			return nil, err
		}
		out.merge(tail)
	}
	return out, nil
}
