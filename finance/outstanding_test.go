package finance_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// TestOutstandingIsTheRollForwardsClosing: at every sample (at midnights,
// at the very edge of a day and inside days, across a change of the point
// value) the points outstanding and the liability are the closing of the
// roll-forward up to that time, and they are the same read from the
// rollups as from the postings alone.
func TestOutstandingIsTheRollForwardsClosing(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	if _, err := f.reports.SetPointValue(f.ctx, "test", "value", time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC), decimal.RequireFromString("0.02"), "CNY"); err != nil {
		t.Fatal(err)
	}
	activity(f)
	end := f.clock.Now()
	var at []time.Time
	for x := start.Add(-time.Hour); x.Before(end.Add(time.Hour)); x = x.Add(6 * time.Hour) {
		at = append(at, x)
	}
	for d := range 5 {
		midnight := time.Date(2026, 3, 2+d, 0, 0, 0, 0, time.UTC)
		at = append(at, midnight, midnight.Add(time.Microsecond))
	}
	// Ascending (the 6-hour grid is never at midnight: no duplicates).
	for i := 1; i < len(at); i++ {
		for j := i; j > 0 && at[j].Before(at[j-1]); j-- {
			at[j], at[j-1] = at[j-1], at[j]
		}
	}
	before, err := f.reports.Outstanding(f.ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range before {
		rf, err := f.reports.RollForward(f.ctx, time.Time{}, at[i], finance.GroupBySource)
		if err != nil {
			t.Fatal(err)
		}
		if s.Points != rf.ClosingPoints || !s.Liability.Equal(rf.ClosingMoney) || !s.Value.Equal(rf.ClosingValue) || !s.At.Equal(at[i]) {
			t.Errorf("sample %d at %s: %d points, %s (at %s); roll-forward closing %d, %s (at %s)",
				i, at[i], s.Points, s.Liability, s.Value, rf.ClosingPoints, rf.ClosingMoney, rf.ClosingValue)
		}
	}
	if first, last := before[0], before[len(before)-1]; first.Points != 0 || last.Points == 0 || !last.Value.Equal(decimal.RequireFromString("0.02")) {
		t.Errorf("first sample %+v (before any transaction), last %+v (after all, at 0.02)", first, last)
	}
	f.clock.Advance(48 * time.Hour)
	if p, err := f.reports.RollUp(f.ctx); err != nil || p.Days == 0 {
		t.Fatalf("rollup: %+v, %v", p, err)
	}
	after, err := f.reports.Outstanding(f.ctx, at)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("with rollups\n%v\nwithout\n%v", after, before)
	}
}

func TestOutstandingRefusesBadTimes(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	tooMany := make([]time.Time, finance.MaxOutstandingSamples+1)
	for i := range tooMany {
		tooMany[i] = start.Add(time.Duration(i) * time.Hour)
	}
	for _, tc := range []struct {
		name string
		at   []time.Time
	}{
		{"no times", nil},
		{"a zero time", []time.Time{{}, start}},
		{"descending", []time.Time{start, start.Add(-time.Hour)}},
		{"the same microsecond twice", []time.Time{start, start.Add(time.Nanosecond)}},
		{"too many", tooMany},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.reports.Outstanding(f.ctx, tc.at)
			var field *ledger.FieldError
			if !errors.As(err, &field) || field.Field != "at" {
				t.Errorf("err %v, want a FieldError on at", err)
			}
		})
	}
}
