package finance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// PointValue is the book value of one point from a UTC date on, until the
// next version.
type PointValue struct {
	EffectiveOn time.Time       // a UTC midnight
	Value       decimal.Decimal // money per point
	Currency    string          // ISO 4217
	CreatedAt   time.Time
	CreatedBy   string
}

// DefaultPointValue is in force from the beginning of time until the first
// version: 0.01 CNY per point.
var DefaultPointValue = PointValue{Value: decimal.New(1, -2), Currency: "CNY", CreatedBy: "default"}

// Limits of a point value: DECIMAL(20, 8) in the table.
const (
	MaxValueScale    = 8
	maxValueIntegers = 12
)

// ErrValueConflict is a version set again for the same date with another
// value: versions are never changed.
var ErrValueConflict = errors.New("a point value for this date exists with another value")

// SetPointValue adds a version of the book value taking effect at the start
// of effectiveOn (UTC). Setting the same value for the same date again is a
// no-op, so a retry is safe; another value for an existing date is
// ErrValueConflict. Every version has the currency of the default.
func (r *Reports) SetPointValue(ctx context.Context, caller string, effectiveOn time.Time, value decimal.Decimal, currency string) (PointValue, error) {
	switch {
	case caller == "":
		return PointValue{}, invalid("caller", "is required")
	case effectiveOn.IsZero() || !floorDay(effectiveOn).Equal(effectiveOn.UTC()):
		return PointValue{}, invalid("effective_on", "must be a date (a UTC midnight)")
	case value.IsNegative():
		return PointValue{}, invalid("value", "must not be negative, got %s", value)
	case -value.Exponent() > MaxValueScale && !value.Equal(value.Round(MaxValueScale)):
		return PointValue{}, invalid("value", "has more than %d decimal places", MaxValueScale)
	case value.Abs().GreaterThanOrEqual(decimal.New(1, maxValueIntegers)):
		return PointValue{}, invalid("value", "must be below 10^%d", maxValueIntegers)
	case currency != DefaultPointValue.Currency:
		return PointValue{}, invalid("currency", "must be %s, the currency of every version, got %q", DefaultPointValue.Currency, currency)
	}
	v := PointValue{EffectiveOn: floorDay(effectiveOn), Value: value, Currency: currency, CreatedAt: r.clock(), CreatedBy: caller}
	err := r.db.WriteTx(ctx, func(tx pgx.Tx) error {
		var existing decimal.Decimal
		err := tx.QueryRow(ctx, `SELECT value_per_point FROM finance_point_values WHERE effective_on = $1::DATE`, fmtDay(v.EffectiveOn)).Scan(&existing)
		if err == nil {
			if !existing.Equal(value) {
				return fmt.Errorf("%w: %s on %s", ErrValueConflict, existing, fmtDay(v.EffectiveOn))
			}
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO finance_point_values (effective_on, value_per_point, currency, created_at, created_by)
			VALUES ($1::DATE, $2, $3, $4, $5)`, fmtDay(v.EffectiveOn), value, currency, v.CreatedAt, caller)
		return err
	})
	if err != nil {
		return PointValue{}, fmt.Errorf("set point value on %s: %w", fmtDay(v.EffectiveOn), err)
	}
	return v, nil
}

// PointValues lists every version, oldest first, after the default.
func (r *Reports) PointValues(ctx context.Context) ([]PointValue, error) {
	return pointValues(ctx, r.db.Pool)
}

func pointValues(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]PointValue, error) {
	rows, err := q.Query(ctx, `SELECT effective_on::TEXT, value_per_point, currency, created_at, created_by
		FROM finance_point_values ORDER BY effective_on`)
	if err != nil {
		return nil, fmt.Errorf("read point values: %w", err)
	}
	out := []PointValue{DefaultPointValue}
	var day string
	var v PointValue
	if _, err := pgx.ForEachRow(rows, []any{&day, &v.Value, &v.Currency, &v.CreatedAt, &v.CreatedBy}, func() error {
		on, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return err
		}
		v.EffectiveOn, v.CreatedAt = on, v.CreatedAt.UTC()
		out = append(out, v)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read point values: %w", err)
	}
	return out, nil
}

// valueAt is the version in force at t: the last one effective at or
// before t. values starts with the default.
func valueAt(values []PointValue, t time.Time) PointValue {
	in := values[0]
	for _, v := range values[1:] {
		if v.EffectiveOn.After(t) {
			break
		}
		in = v
	}
	return in
}
