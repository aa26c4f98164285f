package finance

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// OutstandingSample is the members' points outstanding at one time and the
// liability they were then: the points at the book value in force.
type OutstandingSample struct {
	At        time.Time
	Points    int64
	Value     decimal.Decimal // per point, in force at At
	Liability decimal.Decimal // Points x Value
	Currency  string
}

// MaxOutstandingSamples bounds one series: each sample after the first is
// a sum over the postings (or rollups) recorded since the one before.
const MaxOutstandingSamples = 400

// Outstanding returns the members' points outstanding and the liability at
// each of the times, which must ascend strictly, in one snapshot. A sample
// at T counts what was recorded at or before T, like the roll-forward's
// opening and closing: the samples at its from and to are its opening and
// closing. Samples at UTC midnights read the rollups of the whole days
// between them.
func (r *Reports) Outstanding(ctx context.Context, at []time.Time) ([]OutstandingSample, error) {
	switch {
	case len(at) == 0:
		return nil, invalid("at", "needs at least one time")
	case len(at) > MaxOutstandingSamples:
		return nil, invalid("at", "at most %d times, got %d", MaxOutstandingSamples, len(at))
	}
	times := make([]time.Time, len(at))
	for i, t := range at {
		times[i] = dbTime(t)
		if t.IsZero() || (i > 0 && !times[i].After(times[i-1])) {
			return nil, invalid("at", "times must be set and ascend strictly (to the microsecond); #%d is %s", i, fmtTime(t))
		}
	}
	out := make([]OutstandingSample, 0, len(times))
	_, err := r.db.SnapshotTx(ctx, times[len(times)-1], r.clock(), func(tx pgx.Tx) error {
		out = out[:0]
		values, err := pointValues(ctx, tx)
		if err != nil {
			return err
		}
		var points int64
		prev := time.Time{} // the first sum runs from the beginning
		for _, t := range times {
			sums, err := periodTotals(ctx, tx, accountGrain, prev, t)
			if err != nil {
				return err
			}
			points += memberPoints(sums)
			v := valueAt(values, t)
			out = append(out, OutstandingSample{At: t, Points: points, Value: v.Value,
				Liability: v.Value.Mul(decimal.NewFromInt(points)), Currency: v.Currency})
			prev = t
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("points outstanding at %d times from %s: %w", len(times), fmtTime(times[0]), err)
	}
	return out, nil
}
