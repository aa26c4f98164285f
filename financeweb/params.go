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

// parseWhen reads a time parameter: a date (its 00:00 UTC) or, when
// timesToo, an RFC 3339 time. ok is false when the parameter is absent or
// empty.
func parseWhen(q url.Values, name string, timesToo bool) (t time.Time, ok bool, err error) {
	v := q.Get(name)
	if v == "" {
		return time.Time{}, false, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
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

// monthStart is the first day of t's month, UTC.
func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// period reads from and to, the period (from, to] on finance's time basis.
// Defaults: the previous full UTC month when neither is given; a month
// before to, or a month after from, when one is.
func period(q url.Values, now time.Time, timesToo bool) (from, to time.Time, err error) {
	from, hasFrom, err := parseWhen(q, "from", timesToo)
	if err != nil {
		return from, to, err
	}
	to, hasTo, err := parseWhen(q, "to", timesToo)
	if err != nil {
		return from, to, err
	}
	switch {
	case !hasFrom && !hasTo:
		to = monthStart(now)
		from = to.AddDate(0, -1, 0)
	case !hasFrom:
		from = to.AddDate(0, -1, 0)
	case !hasTo:
		to = from.AddDate(0, 1, 0)
	}
	if !to.After(from) {
		return from, to, &badParam{"to", fmt.Sprintf("must be after from (%s), got %s", stamp(from), stamp(to))}
	}
	if to.Sub(from) > MaxPeriod {
		return from, to, &badParam{"to", fmt.Sprintf("a period is at most %d days; got %s to %s", int(MaxPeriod/(24*time.Hour)), stamp(from), stamp(to))}
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
// midnight, else the second in RFC 3339's basic form (no colons, which
// file systems dislike).
func stamp(t time.Time) string {
	t = t.UTC()
	if t.Equal(time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)) {
		return t.Format(time.DateOnly)
	}
	return t.Format("2006-01-02T150405Z")
}
