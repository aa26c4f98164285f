package programme

import (
	"encoding/json"
	"fmt"
	"time"
)

// Clock is a local time of day at a property, to the minute, such as the
// 18:00 free-cancellation cutoff. It has no date and no zone: it is read
// on the property's wall clock.
type Clock struct {
	Hour   int // 0..23
	Minute int // 0..59
}

// ParseClock parses a time of day written exactly as "HH:MM", 00:00 to
// 23:59.
func ParseClock(s string) (Clock, error) {
	bad := fmt.Errorf("programme: invalid time of day %q: want HH:MM, 00:00 to 23:59", s)
	if len(s) != 5 || s[2] != ':' {
		return Clock{}, bad
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return Clock{}, bad
		}
	}
	c := Clock{
		Hour:   int(s[0]-'0')*10 + int(s[1]-'0'),
		Minute: int(s[3]-'0')*10 + int(s[4]-'0'),
	}
	if !c.valid() {
		return Clock{}, bad
	}
	return c, nil
}

// String formats the clock as "HH:MM".
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", c.Hour, c.Minute) }

// MarshalJSON writes the clock as the JSON string "HH:MM". A clock that is
// not a time of day is an error.
func (c Clock) MarshalJSON() ([]byte, error) {
	if !c.valid() {
		return nil, fmt.Errorf("programme: clock %d:%d is not a time of day", c.Hour, c.Minute)
	}
	return []byte(`"` + c.String() + `"`), nil
}

// UnmarshalJSON reads a JSON string written exactly as ParseClock wants
// ("HH:MM", 00:00 to 23:59). Anything else, null included, is an error.
func (c *Clock) UnmarshalJSON(data []byte) error {
	var s string
	if len(data) < 2 || data[0] != '"' || json.Unmarshal(data, &s) != nil {
		return fmt.Errorf("programme: invalid time of day %s: want a JSON string \"HH:MM\"", clip(data))
	}
	parsed, err := ParseClock(s)
	if err != nil {
		return err
	}
	*c = parsed
	return nil
}

// clip shortens data for an error message.
func clip(data []byte) string {
	const max = 40
	if len(data) > max {
		return string(data[:max]) + "…"
	}
	return string(data)
}

func (c Clock) valid() bool { return c.Hour >= 0 && c.Hour <= 23 && c.Minute >= 0 && c.Minute <= 59 }

// minutes is the clock's minute of the day.
func (c Clock) minutes() int { return c.Hour*60 + c.Minute }

// ParseLocalDate parses a calendar date written exactly as "YYYY-MM-DD"
// (leading zeros required, nothing before or after, a real day of a real
// month). The result is midnight UTC of that date; only its year, month
// and day matter.
func ParseLocalDate(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != len(time.DateOnly) {
		return time.Time{}, fmt.Errorf("programme: invalid date %q: want YYYY-MM-DD", s)
	}
	return t, nil
}

// onLocalDay places instant t on the wall clock of loc relative to the
// calendar date day ("YYYY-MM-DD"): cmp is -1 when t falls on an earlier
// local date, 0 on that date, +1 on a later one; sinceMidnight is t's
// local time of day, to the nanosecond. Wall-clock reading makes
// daylight-saving changes harmless: 19:00 is 19:00 local whatever the UTC
// offset that day.
func onLocalDay(t time.Time, day string, loc *time.Location) (cmp int, sinceMidnight time.Duration, err error) {
	d, err := ParseLocalDate(day)
	if err != nil {
		return 0, 0, fieldErr("arrival_date", "is %q, want YYYY-MM-DD", day)
	}
	if loc == nil {
		return 0, 0, fieldErr("time_zone", "the property's time zone is required")
	}
	lt := t.In(loc)
	y, m, dd := lt.Date()
	local := time.Date(y, m, dd, 0, 0, 0, 0, time.UTC)
	switch {
	case local.Before(d):
		cmp = -1
	case local.After(d):
		cmp = 1
	}
	clock := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute +
		time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	return cmp, clock, nil
}

// since is the clock's time of day.
func (c Clock) since() time.Duration { return time.Duration(c.minutes()) * time.Minute }

// SameDayLateBooking reports whether a booking made at bookedAt is a
// same-day booking made late enough to be exempt from the no-show penalty:
// in loc (the property's zone), bookedAt falls on arrivalDate
// ("YYYY-MM-DD") after SameDayBookingExemptAfter: "after 18:00" leaves
// 18:00:00 itself penalised, and exempts 18:00:00.001. Errors are
// *FieldError "arrival_date" (not a date) or "time_zone" (nil loc).
func (p Programme) SameDayLateBooking(bookedAt time.Time, arrivalDate string, loc *time.Location) (bool, error) {
	cmp, clock, err := onLocalDay(bookedAt, arrivalDate, loc)
	if err != nil {
		return false, err
	}
	return cmp == 0 && clock > p.SameDayBookingExemptAfter.since(), nil
}

// FreeCancellation reports whether a cancellation made at cancelledAt is
// free. Read on the property's wall clock (loc): before the arrival date it
// is free; on the arrival date it is free strictly before the tier's
// FreeCancellationUntil (regular and silver 18:00, gold and platinum 19:00
// by default); after the arrival date it is not. Errors are *FieldError
// "tier" (unknown, or no cutoff set), "arrival_date" or "time_zone".
func (p Programme) FreeCancellation(tier Tier, cancelledAt time.Time, arrivalDate string, loc *time.Location) (bool, error) {
	if !tier.known() {
		return false, fieldErr("tier", "unknown tier %q; want one of regular, silver, gold, platinum", tier)
	}
	cutoff, ok := p.FreeCancellationUntil[tier]
	if !ok {
		return false, fieldErr("tier", "the programme sets no free-cancellation time for tier %q", tier)
	}
	cmp, clock, err := onLocalDay(cancelledAt, arrivalDate, loc)
	if err != nil {
		return false, err
	}
	switch cmp {
	case -1:
		return true, nil
	case 0:
		return clock < cutoff.since(), nil
	}
	return false, nil
}

// GuaranteeHold is what guaranteeing a room until holdUntil (local time on
// the arrival day) puts on hold: one unit per started hour past
// GuaranteeNormalHoldUntil, hours = ceil((holdUntil −
// GuaranteeNormalHoldUntil) / 1h), and points = hours ×
// GuaranteePointsPerHour (positive: the amount to hold). holdUntil must be
// a valid clock, after GuaranteeNormalHoldUntil and not after
// GuaranteeLatest (FieldError "hold_until").
func (p Programme) GuaranteeHold(holdUntil Clock) (hours int, points int64, err error) {
	if !holdUntil.valid() {
		return 0, 0, fieldErr("hold_until", "%s is not a time of day", holdUntil)
	}
	if holdUntil.minutes() <= p.GuaranteeNormalHoldUntil.minutes() {
		return 0, 0, fieldErr("hold_until", "is %s, must be after %s (rooms are held until then anyway)",
			holdUntil, p.GuaranteeNormalHoldUntil)
	}
	if holdUntil.minutes() > p.GuaranteeLatest.minutes() {
		return 0, 0, fieldErr("hold_until", "is %s, a guarantee holds a room until %s at the latest",
			holdUntil, p.GuaranteeLatest)
	}
	extra := holdUntil.minutes() - p.GuaranteeNormalHoldUntil.minutes()
	if extra%60 != 0 {
		// The contract guarantees whole hours: 20:15 would charge for a
		// quarter-hour nobody asked to pay a full hour for.
		return 0, 0, fieldErr("hold_until", "is %s, must be whole hours after %s, such as %s",
			holdUntil, p.GuaranteeNormalHoldUntil, Clock{Hour: (holdUntil.minutes() + 59) / 60 % 24, Minute: p.GuaranteeNormalHoldUntil.Minute})
	}
	hours = extra / 60
	return hours, int64(hours) * p.GuaranteePointsPerHour, nil
}
