// Package testclock gives tests their clocks: a clock that tests move by
// hand, for the code that takes its clock as a func() time.Time, and Wall,
// the run's reading of the calendar, which LOYALTY_TEST_NOW moves to any
// date so that the suite can be run as if today were that day.
//
// A test reads the calendar only through this package: it either stands
// its clock at a fixed date (New, Ticking) or starts it at Wall(). Go's
// time.Now does not go through libc, so libfaketime cannot move it; a
// test that read time.Now for a date would pass today and fail on some
// other day, which is what a shifted run finds out.
package testclock

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Clock is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	tick time.Duration
}

// New returns a clock standing at start.
func New(start time.Time) *Clock { return &Clock{now: start} }

// Ticking returns a clock that moves by tick at every reading, so that
// everything recorded has its own time, as on a real clock.
func Ticking(start time.Time, tick time.Duration) *Clock { return &Clock{now: start, tick: tick} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.tick)
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set puts the clock at t, forward or back: for a test that tries one
// operation at several instants.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// NowVariable names the environment variable that moves Wall: an RFC 3339
// time (LOYALTY_TEST_NOW=2028-02-29T23:59:00-05:00) puts the run's "now" at
// that instant when the test binary starts; a date alone (2028-02-29) puts
// it on that day at the real time of day in UTC. From there Wall runs at
// the real pace.
const NowVariable = "LOYALTY_TEST_NOW"

// shift is how far Wall stands from the real clock, read once per test
// binary from NowVariable.
var shift = sync.OnceValues(func() (time.Duration, error) {
	return shiftFor(os.Getenv(NowVariable), time.Now())
})

// shiftFor is the distance from real to the "now" that setting asks for.
func shiftFor(setting string, real time.Time) (time.Duration, error) {
	if setting == "" {
		return 0, nil
	}
	if at, err := time.Parse(time.RFC3339Nano, setting); err == nil {
		return at.Sub(real), nil
	}
	day, err := time.Parse(time.DateOnly, setting)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want an RFC 3339 time (2028-02-29T23:59:00-05:00) or a date (2028-02-29)", NowVariable, setting)
	}
	utc := real.UTC()
	at := time.Date(day.Year(), day.Month(), day.Day(), utc.Hour(), utc.Minute(), utc.Second(), utc.Nanosecond(), time.UTC)
	return at.Sub(real), nil
}

// Wall is the test run's wall clock: the real time, moved to the date
// LOYALTY_TEST_NOW gives when it is set. Pass it (or a Clock started at
// its reading) to everything a test builds that takes a clock. An invalid
// LOYALTY_TEST_NOW stops the run rather than leave it on today's date.
func Wall() time.Time {
	d, err := shift()
	if err != nil {
		panic(err)
	}
	return time.Now().Add(d)
}

// Check reports an unreadable LOYALTY_TEST_NOW, for a test binary to stop
// on before it runs anything.
func Check() error {
	_, err := shift()
	return err
}

// Describe says which calendar this run reads, for a test binary's
// first line of output.
func Describe() string {
	d, err := shift()
	if err != nil {
		return err.Error()
	}
	if d == 0 {
		return "the real clock (set " + NowVariable + " to run as of another date)"
	}
	return fmt.Sprintf("%s=%s: now is %s", NowVariable, os.Getenv(NowVariable),
		Wall().Format("2006-01-02 15:04:05 -07:00 MST"))
}
