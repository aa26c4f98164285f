package programme

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Promotion is a campaign: extra points for the nights of a stay that fall
// in a date window, at some properties, booked through some channels.
//
// For each earning night of a stay (not an unbooked extension) whose local
// date is in [StartsOn, EndsOn], whose property is in Properties (or
// Properties is empty) and whose booking channel is in Channels (or
// Channels is empty), the promotion adds floor(the night's base points ×
// Multiplier), where a night's base points are floor(room charge ×
// PointsPerCurrencyUnit) as on the "stay_points" line; plus BonusPoints
// once per stay when at least one night qualified. See StayPoints for where
// this sits among the other rules.
type Promotion struct {
	// ID is the promotion's stable name: 1 to 64 characters of a-z, 0-9
	// and "-", unique in the programme, e.g. "double-points-2026-12". Lines
	// name it as "promotion:<id>".
	ID string `json:"id"`
	// Name is what a member is told, e.g. "Double points in December".
	Name string `json:"name"`
	// StartsOn is the first local date ("YYYY-MM-DD", at the property)
	// whose night qualifies.
	StartsOn string `json:"starts_on"`
	// EndsOn is the last local date whose night qualifies (inclusive).
	EndsOn string `json:"ends_on"`
	// Properties are the property ids the promotion runs at; empty means
	// every property.
	Properties []string `json:"properties,omitempty"`
	// Channels are the booking channels the promotion rewards; empty means
	// every channel.
	Channels []Channel `json:"channels,omitempty"`
	// Multiplier is the extra multiple of a qualifying night's base points
	// (1 is double points); zero is none.
	Multiplier decimal.Decimal `json:"multiplier,omitzero"`
	// BonusPoints is a fixed bonus per stay when any night qualifies.
	BonusPoints int64 `json:"bonus_points,omitempty"`
}

// PromotionRule is the Rule of the Line of the promotion with this id:
// "promotion:<id>".
func PromotionRule(id string) string { return "promotion:" + id }

// MaxPromotionIDLen is the longest promotion id.
const MaxPromotionIDLen = 64

// promotionResult is what one promotion adds to one stay.
type promotionResult struct {
	promo      Promotion
	qualifying int             // earning nights that qualified
	fromNights decimal.Decimal // sum of floor(base × Multiplier) over them
	points     decimal.Decimal // fromNights + BonusPoints
}

// promotionsFor evaluates every promotion of p against the stay, in the
// order of their IDs. base[i] is night i's base points, or nil for a night
// that does not earn (an unbooked extension). arrival is the stay's
// arrival date (only read when there are promotions). Only promotions with
// at least one qualifying night are returned.
func (p Programme) promotionsFor(s Stay, arrival time.Time, base []*decimal.Decimal) ([]promotionResult, error) {
	order := make([]int, len(p.Promotions))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return strings.Compare(p.Promotions[a].ID, p.Promotions[b].ID) })

	var out []promotionResult
	for _, i := range order {
		pr := p.Promotions[i]
		from, err := ParseLocalDate(pr.StartsOn)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("promotions[%d].starts_on", i), "the programme's promotion %q starts on %q, not a YYYY-MM-DD date", pr.ID, pr.StartsOn)
		}
		to, err := ParseLocalDate(pr.EndsOn)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("promotions[%d].ends_on", i), "the programme's promotion %q ends on %q, not a YYYY-MM-DD date", pr.ID, pr.EndsOn)
		}
		if len(pr.Properties) > 0 && !slices.Contains(pr.Properties, s.PropertyID) {
			continue
		}
		if len(pr.Channels) > 0 && !slices.Contains(pr.Channels, s.Channel) {
			continue
		}
		r := promotionResult{promo: pr}
		for n, b := range base {
			if b == nil {
				continue
			}
			night := arrival.AddDate(0, 0, n)
			if night.Before(from) || night.After(to) {
				continue
			}
			r.qualifying++
			r.fromNights = r.fromNights.Add(b.Mul(pr.Multiplier).Floor())
		}
		if r.qualifying == 0 {
			continue
		}
		r.points = r.fromNights.Add(decimal.NewFromInt(pr.BonusPoints))
		out = append(out, r)
	}
	return out, nil
}

// line explains what the promotion added.
func (r promotionResult) line(earning int) Line {
	pr := r.promo
	var parts []string
	if !pr.Multiplier.IsZero() {
		parts = append(parts, fmt.Sprintf("base points × %s, rounded down per night (%s)", pr.Multiplier.String(), r.fromNights.String()))
	}
	if pr.BonusPoints != 0 {
		parts = append(parts, fmt.Sprintf("%d bonus points per stay", pr.BonusPoints))
	}
	desc := fmt.Sprintf("promotion %q (%s), %s to %s: %d of %s qualified; %s; not multiplied by tier, not halved",
		pr.Name, pr.ID, pr.StartsOn, pr.EndsOn, r.qualifying, plural(earning, "earning night"), strings.Join(parts, " + "))
	return Line{Rule: PromotionRule(pr.ID), Description: desc, Points: r.points.IntPart()}
}
