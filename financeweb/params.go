package financeweb

import (
	"fmt"
	"net/url"
	"time"

	"github.com/loyalty-ledger/loyalty/finance"
)

// MaxPeriod is the longest period the page and its downloads report on:
// a year, leap day included. Longer ones are loyaltyctl's.
const MaxPeriod = 366 * 24 * time.Hour

// maxEcho is how much of a bad value an error message repeats.
const maxEcho = 40

func echo(v string) string {
	if len(v) > maxEcho {
		v = v[:maxEcho] + "..."
	}
	return fmt.Sprintf("%q", v)
}

// parseWhen reads a time parameter: a date (its 00:00 in zone) or, when
// timesToo, an RFC 3339 time. ok is false when the parameter is absent or
// empty.
func parseWhen(q url.Values, name string, timesToo bool, zone *time.Location) (t time.Time, ok bool, err error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, false, nil
	}
	if t, err := time.ParseInLocation(time.DateOnly, v, zone); err == nil {
		return t, true, nil
	}
	if timesToo {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t.UTC(), true, nil
		}
		return time.Time{}, false, &badParam{name, echo(v) + " is not a date like 2026-11-01 or a time like 2026-11-01T08:00:00Z"}
	}
	return time.Time{}, false, &badParam{name, echo(v) + " is not a date like 2026-11-01"}
}

// maxZoneName bounds the zone parameter: IANA names are far shorter.
const maxZoneName = 64

// zoneParam reads zone, an IANA time zone name ("Asia/Shanghai", "UTC");
// ok is false when it is absent.
func zoneParam(q url.Values) (zone *time.Location, ok bool, err error) {
	v := q.Get("zone")
	if v == "" {
		return nil, false, nil
	}
	if len(v) > maxZoneName || v == "Local" {
		return nil, false, &badParam{"zone", echo(v) + " is not an IANA time zone name like Asia/Shanghai or UTC"}
	}
	zone, err = time.LoadLocation(v)
	if err != nil {
		return nil, false, &badParam{"zone", echo(v) + " is not an IANA time zone name like Asia/Shanghai or UTC"}
	}
	return zone, true, nil
}

// monthStart is the first day of t's month, 00:00 in zone.
func monthStart(t time.Time, zone *time.Location) time.Time {
	t = t.In(zone)
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, zone)
}

// period reads from and to, the period (from, to] on finance's time basis,
// dates being days in zone. Defaults: the previous full month when neither
// is given; a month before to, or a month after from, when one is.
func period(q url.Values, now time.Time, timesToo bool, zone *time.Location) (from, to time.Time, err error) {
	from, hasFrom, err := parseWhen(q, "from", timesToo, zone)
	if err != nil {
		return from, to, err
	}
	to, hasTo, err := parseWhen(q, "to", timesToo, zone)
	if err != nil {
		return from, to, err
	}
	switch {
	case !hasFrom && !hasTo:
		to = monthStart(now, zone)
		from = to.AddDate(0, -1, 0)
	case !hasFrom:
		from = to.In(zone).AddDate(0, -1, 0)
	case !hasTo:
		to = from.In(zone).AddDate(0, 1, 0)
	}
	if !to.After(from) {
		return from, to, &badParam{"to", fmt.Sprintf("must be after from (%s), got %s", stamp(from, zone), stamp(to, zone))}
	}
	if to.Sub(from) > MaxPeriod {
		return from, to, &badParam{"to", fmt.Sprintf("a period is at most %d days; got %s to %s", int(MaxPeriod/(24*time.Hour)), stamp(from, zone), stamp(to, zone))}
	}
	return from, to, nil
}

// groupBy reads group_by (default source).
func groupBy(q url.Values) (finance.GroupBy, error) {
	switch g := finance.GroupBy(q.Get("group_by")); g {
	case "":
		return finance.GroupBySource, nil
	case finance.GroupBySource, finance.GroupByProperty, finance.GroupByPartner:
		return g, nil
	default:
		return "", &badParam{"group_by", echo(string(g)) + " is not source, property or partner"}
	}
}

// stamp is a time as the page and file names show it: the date alone at
// midnight in zone, else the second in UTC in RFC 3339's basic form (no
// colons, which file systems dislike).
func stamp(t time.Time, zone *time.Location) string {
	local := t.In(zone)
	if local.Equal(time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, zone)) {
		return local.Format(time.DateOnly)
	}
	return t.UTC().Format("2006-01-02T150405Z")
}

// zoneLabel names a zone with its offset at t: "Asia/Shanghai (UTC+08:00)".
func zoneLabel(zone *time.Location, t time.Time) string {
	if zone == time.UTC {
		return "UTC"
	}
	return zone.String() + " (UTC" + t.In(zone).Format("-07:00") + ")"
}
