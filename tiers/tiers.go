// Package tiers decides members' tiers from their qualifying activity: the
// pure rules, separate from any store, so that every boundary is
// table-tested without a database.
//
// Qualifying activity is stays only (nights and stay points in a window),
// never the spendable balance: redemptions, penalties, transfers, goodwill
// and promotions neither raise nor lower it, and a reversed stay no longer
// counts. An upgrade takes effect at once; a downgrade happens only at the
// member's review date, one tier at a time, and only if the member no
// longer qualifies. A manual tier set by an admin holds until its end.
package tiers

import (
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/programme"
)

// Threshold is what reaching a tier takes within the window: either the
// nights or the stay points.
type Threshold struct {
	Tier   programme.Tier `json:"tier"`
	Nights int            `json:"nights"`
	Points int64          `json:"points"`
}

// Window is how qualifying activity is counted.
type Window string

const (
	// Rolling counts the last WindowMonths months up to the day asked about.
	Rolling Window = "rolling"
	// CalendarYear counts from 1 January of the year asked about.
	CalendarYear Window = "calendar_year"
)

// Settings are the tier rules of a programme.
type Settings struct {
	// Ladder is the tiers from lowest to highest.
	Ladder []programme.Tier `json:"ladder"`
	// AfterFirstStay is the tier a member reaches with the first completed
	// stay (silver); members below it start at the ladder's bottom.
	AfterFirstStay programme.Tier `json:"after_first_stay"`
	// Thresholds of the tiers above AfterFirstStay, by tier.
	Thresholds   []Threshold `json:"thresholds"`
	Window       Window      `json:"window"`
	WindowMonths int         `json:"window_months"`
	// ReviewMonths after the last tier change is the member's review date
	// (the anniversary, by default).
	ReviewMonths int `json:"review_months"`
}

// Default are the domain brief's tier rules.
func Default() Settings {
	return Settings{
		Ladder:         []programme.Tier{programme.TierRegular, programme.TierSilver, programme.TierGold, programme.TierPlatinum},
		AfterFirstStay: programme.TierSilver,
		Thresholds: []Threshold{
			{Tier: programme.TierGold, Nights: 10, Points: 3000},
			{Tier: programme.TierPlatinum, Nights: 25, Points: 8000},
		},
		Window:       Rolling,
		WindowMonths: 12,
		ReviewMonths: 12,
	}
}

// FromProgramme are the tier settings of a programme version. A version
// stored before programmes had tier rules gets the defaults.
func FromProgramme(p programme.Programme) Settings {
	r := p.TierRules
	if len(r.Thresholds) == 0 || r.WindowMonths == 0 || r.ReviewMonths == 0 {
		return Default()
	}
	s := Settings{
		Ladder:         []programme.Tier{programme.TierRegular, programme.TierSilver, programme.TierGold, programme.TierPlatinum},
		AfterFirstStay: r.AfterFirstStay,
		Window:         Window(r.Window),
		WindowMonths:   r.WindowMonths,
		ReviewMonths:   r.ReviewMonths,
	}
	for _, t := range r.Thresholds {
		s.Thresholds = append(s.Thresholds, Threshold{Tier: t.Tier, Nights: t.Nights, Points: t.Points})
	}
	return s
}

// Stay is one completed stay as the tier rules see it.
type Stay struct {
	// CheckOut is when the stay was completed; the window counts by it.
	CheckOut time.Time
	Nights   int
	// Points are the stay points (base and tier bonus), not bonuses of the
	// booking channel or promotions.
	Points   int64
	Reversed bool
}

// Activity is the qualifying activity in a window.
type Activity struct {
	Nights      int       `json:"nights"`
	Points      int64     `json:"points"`
	Stays       int       `json:"stays"`
	WindowStart time.Time `json:"window_start"`
	WindowEnd   time.Time `json:"window_end"`
}

// Manual is a tier set by an admin; automatic changes respect it until
// Until (zero: indefinitely).
type Manual struct {
	Tier   programme.Tier
	Until  time.Time
	Reason string
}

// Member is what the rules need to know of a member.
type Member struct {
	Tier programme.Tier
	// Since is when the member's current tier took effect.
	Since time.Time
	// EverStayed: the member has completed at least one stay.
	EverStayed bool
	Manual     *Manual
	// LastReview is when the member was last reviewed (zero: never).
	LastReview time.Time
}

// Decision is the outcome of applying the rules.
type Decision struct {
	From, To programme.Tier
	// Changed is false when To == From.
	Changed bool
	Reason  string
	// Activity the decision was based on.
	Activity Activity
}

// ActivityAt counts the qualifying activity of stays in the window that
// ends at asOf (inclusive).
func (s Settings) ActivityAt(stays []Stay, asOf time.Time) Activity {
	start := s.windowStart(asOf)
	a := Activity{WindowStart: start, WindowEnd: asOf}
	for _, st := range stays {
		if st.Reversed || st.CheckOut.Before(start) || st.CheckOut.After(asOf) {
			continue
		}
		a.Nights += st.Nights
		a.Points += st.Points
		a.Stays++
	}
	return a
}

// WindowStart is where the qualifying window that ends at asOf begins.
func (s Settings) WindowStart(asOf time.Time) time.Time { return s.windowStart(asOf) }

// windowStart counts months and years in UTC, whatever time zone asOf is
// in, so that the window is the same on every server.
func (s Settings) windowStart(asOf time.Time) time.Time {
	asOf = asOf.UTC()
	if s.Window == CalendarYear {
		return time.Date(asOf.Year(), 1, 1, 0, 0, 0, 0, asOf.Location())
	}
	return asOf.AddDate(0, -s.WindowMonths, 0)
}

// Qualified is the highest tier the activity reaches: a threshold tier
// when either its nights or its points are reached, else AfterFirstStay
// for a member who ever stayed, else the bottom of the ladder.
func (s Settings) Qualified(a Activity, everStayed bool) programme.Tier {
	best := s.Ladder[0]
	if everStayed {
		best = s.AfterFirstStay
	}
	for _, t := range s.Thresholds {
		if (a.Nights >= t.Nights || a.Points >= t.Points) && s.rank(t.Tier) > s.rank(best) {
			best = t.Tier
		}
	}
	return best
}

// OnActivity is the decision right after a stay is recorded (or reversed):
// an upgrade takes effect at once; never a downgrade, which waits for the
// review date. A manual tier in force is left alone.
func (s Settings) OnActivity(m Member, a Activity, now time.Time) Decision {
	d := Decision{From: m.Tier, To: m.Tier, Activity: a}
	if s.manualInForce(m, now) {
		d.Reason = "manual tier in force"
		return d
	}
	if q := s.Qualified(a, m.EverStayed); s.rank(q) > s.rank(m.Tier) {
		d.To, d.Changed = q, true
		d.Reason = fmt.Sprintf("upgrade: %s", s.why(q, a))
		return d
	}
	d.Reason = "no higher tier reached; a downgrade waits for the review date"
	return d
}

// ReviewDate is when a member's tier is next reviewed: the first
// anniversary (every ReviewMonths) of the tier taking effect, or of a
// manual tier ending, that is after the last review. Anniversaries are
// counted in UTC, whatever time zone the member's times are in, so that
// every server finds the same date.
func (s Settings) ReviewDate(m Member) time.Time {
	since := m.Since.UTC()
	if m.Manual != nil && !m.Manual.Until.IsZero() && m.Manual.Until.After(since) {
		since = m.Manual.Until.UTC()
	}
	date := since.AddDate(0, s.ReviewMonths, 0)
	for i := 1; !date.After(m.LastReview) && i < 1000; i++ {
		date = since.AddDate(0, s.ReviewMonths*(i+1), 0)
	}
	return date
}

// Review is the decision at asOf for a member who may be due for review:
// before the review date nothing changes; at or after it, a member who no
// longer qualifies for their tier goes down one step (never below what
// they qualify for), and one who qualifies higher goes up.
func (s Settings) Review(m Member, a Activity, asOf time.Time) Decision {
	d := Decision{From: m.Tier, To: m.Tier, Activity: a}
	if s.manualInForce(m, asOf) {
		d.Reason = "manual tier in force"
		return d
	}
	q := s.Qualified(a, m.EverStayed)
	switch {
	case s.rank(q) > s.rank(m.Tier):
		d.To, d.Changed, d.Reason = q, true, "upgrade at review: "+s.why(q, a)
	case asOf.Before(s.ReviewDate(m)):
		d.Reason = "not due for review"
	case s.rank(q) < s.rank(m.Tier):
		d.To, d.Changed = s.Ladder[s.rank(m.Tier)-1], true
		d.Reason = fmt.Sprintf("downgrade one step at review: %d nights and %d points in the window do not keep %s", a.Nights, a.Points, m.Tier)
	default:
		d.Reason = "requalified at review"
	}
	return d
}

// Needed is what the member needs for the next tier above current: its
// name and the nights or points still missing (either suffices). ok is
// false at the top of the ladder or below AfterFirstStay (one stay is
// what is needed there).
func (s Settings) Needed(current programme.Tier, a Activity) (next programme.Tier, nights int, points int64, ok bool) {
	for _, t := range s.Thresholds {
		if s.rank(t.Tier) == s.rank(current)+1 {
			return t.Tier, max(0, t.Nights-a.Nights), max(0, t.Points-a.Points), true
		}
	}
	return "", 0, 0, false
}

func (s Settings) manualInForce(m Member, at time.Time) bool {
	return m.Manual != nil && (m.Manual.Until.IsZero() || at.Before(m.Manual.Until))
}

func (s Settings) why(t programme.Tier, a Activity) string {
	for _, th := range s.Thresholds {
		if th.Tier == t {
			return fmt.Sprintf("%d nights (threshold %d) and %d points (threshold %d) in the window", a.Nights, th.Nights, a.Points, th.Points)
		}
	}
	return "first completed stay"
}

// rank is a tier's place on the ladder; -1 for a tier not on it.
func (s Settings) rank(t programme.Tier) int {
	for i, l := range s.Ladder {
		if l == t {
			return i
		}
	}
	return -1
}
