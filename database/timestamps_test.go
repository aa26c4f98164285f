package database_test

import (
	"context"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
)

// Timestamps come back in UTC whatever the machine's time zone, alone and
// in arrays, as the instants they were.
func TestTimestampsScanInUTC(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	shanghai := time.FixedZone("CST", 8*3600)
	sent := time.Date(2024, 3, 1, 4, 0, 0, 0, shanghai) // 2024-02-29 20:00 UTC
	var one time.Time
	var many []time.Time
	if err := db.Pool.QueryRow(ctx, `SELECT $1::TIMESTAMPTZ, ARRAY[$1::TIMESTAMPTZ, $1::TIMESTAMPTZ + INTERVAL '1 day']`, sent).
		Scan(&one, &many); err != nil {
		t.Fatal(err)
	}
	for i, got := range append([]time.Time{one}, many...) {
		if got.Location() != time.UTC || !got.Equal(sent.AddDate(0, 0, max(i-1, 0))) {
			t.Errorf("value %d scanned as %s (%s), want %s in UTC", i, got, got.Location(), sent.UTC().AddDate(0, 0, max(i-1, 0)))
		}
	}
	// The anniversary a year on is the UTC one, wherever this runs.
	if got := one.AddDate(1, 0, 0).Format(time.DateOnly); got != "2025-03-01" {
		t.Errorf("a year after 2024-02-29 20:00 UTC is %s, want 2025-03-01", got)
	}
}
