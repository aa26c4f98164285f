package testclock

import (
	"strings"
	"testing"
	"time"
)

func TestShiftPutsNowWhereTheSettingSays(t *testing.T) {
	real := time.Date(2026, 12, 6, 23, 14, 51, 5e8, time.UTC)
	for _, tc := range []struct {
		name, setting string
		want          time.Time
	}{
		{"unset is the real clock", "", real},
		{"an RFC 3339 time is that instant", "2028-02-29T23:59:00-05:00", time.Date(2028, 3, 1, 4, 59, 0, 0, time.UTC)},
		{"fractional seconds are kept", "2031-01-01T00:00:00.25Z", time.Date(2031, 1, 1, 0, 0, 0, 25e7, time.UTC)},
		{"a date is that day at the real time of day in UTC", "2027-12-06", time.Date(2027, 12, 6, 23, 14, 51, 5e8, time.UTC)},
		{"the past works too", "2020-02-29", time.Date(2020, 2, 29, 23, 14, 51, 5e8, time.UTC)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := shiftFor(tc.setting, real)
			if err != nil {
				t.Fatal(err)
			}
			if got := real.Add(d); !got.Equal(tc.want) {
				t.Errorf("now = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestShiftRefusesWhatItCannotRead(t *testing.T) {
	for _, setting := range []string{"tomorrow", "2028-02-30", "29/02/2028", "2028-02-29 12:00"} {
		if _, err := shiftFor(setting, time.Date(2026, 12, 6, 23, 14, 51, 0, time.UTC)); err == nil || !strings.Contains(err.Error(), NowVariable) {
			t.Errorf("%q: error %v, want one naming %s", setting, err, NowVariable)
		}
	}
}

func TestTickingClockMovesAtEveryReading(t *testing.T) {
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	c := Ticking(start, time.Second)
	if a, b := c.Now(), c.Now(); !a.Equal(start.Add(time.Second)) || !b.Equal(start.Add(2*time.Second)) {
		t.Errorf("readings %s, %s; want one and two seconds after %s", a, b, start)
	}
	c.Advance(time.Hour)
	if got := c.Now(); !got.Equal(start.Add(time.Hour + 3*time.Second)) {
		t.Errorf("after Advance(1h): %s", got)
	}
}
