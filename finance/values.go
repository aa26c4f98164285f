package finance

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/ledger"
)

// PointValue is the book value of one point from a UTC date on, until the
// next version.
type PointValue struct {
	EffectiveOn time.Time       `json:"effective_on"` // a UTC midnight
	Value       decimal.Decimal `json:"value_per_point"`
	Currency    string          `json:"currency"` // ISO 4217
	CreatedAt   time.Time       `json:"created_at,omitzero"`
	CreatedBy   string          `json:"created_by,omitempty"`
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
// of effectiveOn (UTC), guarded by the caller's idempotency key: a retry
// returns the first answer. A version is never changed: another value for
// a date that has one is ErrValueConflict (the same value again is a no-op).
// A new version starts after today (UTC): an earlier one would reprice
// recorded movements and closed periods. Every version has the currency of
// the default.
func (r *Reports) SetPointValue(ctx context.Context, caller, idempotencyKey string, effectiveOn time.Time, value decimal.Decimal, currency string) (PointValue, error) {
	switch {
	case effectiveOn.IsZero() || !floorDay(effectiveOn).Equal(effectiveOn.UTC()):
		return PointValue{}, invalid("effective_on", "must be a date (a UTC midnight)")
	case value.IsNegative():
		return PointValue{}, invalid("value_per_point", "must not be negative, got %s", value)
	case !value.Equal(value.Round(MaxValueScale)):
		return PointValue{}, invalid("value_per_point", "has more than %d decimal places", MaxValueScale)
	case value.GreaterThanOrEqual(decimal.New(1, maxValueIntegers)):
		return PointValue{}, invalid("value_per_point", "must be below 10^%d", maxValueIntegers)
	case currency != DefaultPointValue.Currency:
		return PointValue{}, invalid("currency_code", "must be %s, the currency of every version, got %q", DefaultPointValue.Currency, currency)
	}
	request := PointValue{EffectiveOn: floorDay(effectiveOn), Value: value, Currency: currency}
	v, err := ledger.KeyedWriteOf(ctx, r.ledger, caller, idempotencyKey, "set_point_value", request,
		func(ctx context.Context, tx pgx.Tx) (PointValue, error) {
			v := request
			v.CreatedAt, v.CreatedBy = r.clock(), caller
			var existing PointValue
			var day string
			err := tx.QueryRow(ctx, `SELECT effective_on::TEXT, value_per_point, currency, created_at, created_by
				FROM finance_point_values WHERE effective_on = $1::DATE`, fmtDay(v.EffectiveOn)).
				Scan(&day, &existing.Value, &existing.Currency, &existing.CreatedAt, &existing.CreatedBy)
			if err == nil {
				if !existing.Value.Equal(value) {
					return v, fmt.Errorf("%w: %s on %s", ErrValueConflict, existing.Value, fmtDay(v.EffectiveOn))
				}
				existing.EffectiveOn, existing.CreatedAt = v.EffectiveOn, existing.CreatedAt.UTC()
				return existing, nil
			}
			if !errors.Is(err, pgx.ErrNoRows) {
				return v, err
			}
			// A new version never reprices what is recorded: the money of a
			// movement is at the value in force when it was recorded, and a
			// closed or sealed period must read the same for ever.
			if today := floorDay(r.clock()); !v.EffectiveOn.After(today) {
				return v, invalid("effective_on", "is %s: a new value starts after today (%s, UTC), so that nothing recorded, and no closed period, is repriced",
					fmtDay(v.EffectiveOn), fmtDay(today))
			}
			_, err = tx.Exec(ctx, `INSERT INTO finance_point_values (effective_on, value_per_point, currency, created_at, created_by)
				VALUES ($1::DATE, $2, $3, $4, $5)`, fmtDay(v.EffectiveOn), value, currency, v.CreatedAt, caller)
			return v, err
		})
	if err != nil {
		return PointValue{}, fmt.Errorf("set point value on %s: %w", fmtDay(request.EffectiveOn), err)
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
