package finance

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
)

// Categories of a roll-forward line: what moved the members' points.
const (
	CategoryIssued     = "issued"      // stays, booking bonus, promotions, suggestions, goodwill, partner awards
	CategoryRedeemed   = "redeemed"    // by reward, and at partner hotels
	CategoryPenalty    = "penalty"     // no-show, guarantee capture, late check-out
	CategoryExpired    = "expired"     // breakage
	CategoryForfeited  = "forfeited"   // balances of closed memberships
	CategoryWrittenOff = "written_off" // debts of closed memberships
	CategoryAdjustment = "adjustment"  // points an admin took back
	CategoryReversal   = "reversal"    // transactions of kind reversal, whatever they reverse
	CategoryOther      = "other"       // a counter-account of no known kind: listed, never dropped
)

var categoryOrder = map[string]int{
	CategoryIssued: 0, CategoryRedeemed: 1, CategoryPenalty: 2, CategoryExpired: 3,
	CategoryForfeited: 4, CategoryWrittenOff: 5, CategoryAdjustment: 6, CategoryReversal: 7, CategoryOther: 8,
}

// classify names the line a counter-account's postings land on. A reversal
// is its own category whatever it reverses (detail: what it reverses); the
// rest go by the counter-account.
func classify(account, kind string) (category, detail string) {
	category, detail = classifyAccount(account)
	if kind == "reversal" {
		return CategoryReversal, category + ":" + detail
	}
	return category, detail
}

func classifyAccount(account string) (category, detail string) {
	parts := strings.Split(account, ":")
	switch {
	case len(parts) == 3 && parts[0] == "programme" && parts[1] == "issued":
		return CategoryIssued, parts[2]
	case len(parts) == 3 && parts[0] == "programme" && parts[1] == "redeemed":
		return CategoryRedeemed, parts[2]
	case len(parts) == 3 && parts[0] == "programme" && parts[1] == "penalty":
		return CategoryPenalty, parts[2]
	case len(parts) == 3 && parts[0] == "programme" && parts[1] == "adjustment":
		return CategoryAdjustment, parts[2]
	case account == "programme:breakage":
		return CategoryExpired, "breakage"
	case account == "programme:forfeited":
		return CategoryForfeited, "closure"
	case account == "programme:debt_written_off":
		return CategoryWrittenOff, "closure"
	case len(parts) == 3 && parts[0] == "partner" && parts[2] == "issued":
		return CategoryIssued, "partner_award"
	case len(parts) == 3 && parts[0] == "partner" && parts[2] == "redeemed":
		return CategoryRedeemed, "partner"
	}
	return CategoryOther, account
}

// partnerOf is the partner a line belongs to: the transaction's partner_id,
// else the partner named by a partner account.
func partnerOf(k totalKey) string {
	if k.PartnerID != "" {
		return k.PartnerID
	}
	if parts := strings.Split(k.Account, ":"); len(parts) == 3 && parts[0] == "partner" {
		return parts[1]
	}
	return ""
}

// GroupBy is how roll-forward lines are broken down.
type GroupBy string

const (
	GroupBySource   GroupBy = "source"   // category and detail
	GroupByProperty GroupBy = "property" // the property of the transaction, then source
	GroupByPartner  GroupBy = "partner"  // the partner of the transaction or account, then source
)

// RollLine is one movement of the points liability over the period.
type RollLine struct {
	Category string
	Detail   string
	// Dimension is the property or partner id when grouped by one ("" for
	// movements that name none).
	Dimension string
	// Points is the change in the members' points: positive for issued,
	// negative for redeemed, penalties and expiry.
	Points   int64
	Money    decimal.Decimal // each movement at the point value in force when it was recorded
	Postings int64
}

// RollForward is the points liability over a period (From, To]: opening +
// the lines = closing, in points and, with the revaluation line, in money.
type RollForward struct {
	From, To time.Time
	GroupBy  GroupBy
	Currency string

	OpeningPoints int64
	OpeningValue  decimal.Decimal // per point, in force at From
	OpeningMoney  decimal.Decimal
	Lines         []RollLine
	// MovementPoints and MovementMoney are the sums of the lines.
	MovementPoints int64
	MovementMoney  decimal.Decimal
	// RevaluationMoney is the outstanding points times each change of the
	// point value inside the period.
	RevaluationMoney decimal.Decimal
	ClosingPoints    int64
	ClosingValue     decimal.Decimal // per point, in force at To
	ClosingMoney     decimal.Decimal

	// Balanced says both identities hold exactly: opening + movements =
	// closing in points, and opening + movements + revaluation = closing
	// in money. Closing points are the sum of the member postings; the
	// lines are the counter-postings of the same transactions, so a
	// transaction that does not sum to zero breaks it.
	Balanced bool
	// Basis states the time basis.
	Basis string
}

// Basis is the time basis every report states.
const Basis = "transactions by recorded_at (as ledger.BalanceAt): opening as of From inclusive, movements recorded in (From, To], closing as of To inclusive; an expiry is recorded on its as-of's day in the programme's time zone"

// RollForward computes the points liability roll-forward over (from, to]
// (zero from: from the beginning), in one snapshot.
func (r *Reports) RollForward(ctx context.Context, from, to time.Time, groupBy GroupBy) (RollForward, error) {
	switch groupBy {
	case "":
		groupBy = GroupBySource
	case GroupBySource, GroupByProperty, GroupByPartner:
	default:
		return RollForward{}, invalid("group_by", "must be source, property or partner, got %q", groupBy)
	}
	if to.IsZero() {
		return RollForward{}, invalid("to", "is required")
	}
	from, to, err := r.period(from, to)
	if err != nil {
		return RollForward{}, err
	}
	var rf RollForward
	_, err = r.db.SnapshotTx(ctx, to, r.clock(), func(tx pgx.Tx) error {
		var err error
		rf, err = rollForward(ctx, tx, from, to, groupBy)
		return err
	})
	if err != nil {
		return RollForward{}, fmt.Errorf("roll-forward (%s, %s]: %w", fmtTime(from), fmtTime(to), err)
	}
	return rf, nil
}

// period checks a report's period (from, to] and ends it now when it ends
// in the future: a report of a period still running shows what is
// recorded so far, and says so by its end, as the trial balance does, so
// that it is never read as final. A period that has not begun is refused.
func (r *Reports) period(from, to time.Time) (time.Time, time.Time, error) {
	if !from.IsZero() {
		from = dbTime(from)
	}
	to = dbTime(to)
	if !from.IsZero() && !to.After(from) {
		return from, to, invalid("to", "must be after from (%s), got %s", fmtTime(from), fmtTime(to))
	}
	if now := dbTime(r.clock()); to.After(now) {
		if !from.IsZero() && !now.After(from) {
			return from, to, invalid("from", "is %s, in the future: the period has not begun", fmtTime(from))
		}
		to = now
	}
	return from, to, nil
}

type lineKey struct{ category, detail, dimension string }

func rollForward(ctx context.Context, tx pgx.Tx, from, to time.Time, groupBy GroupBy) (RollForward, error) {
	values, err := pointValues(ctx, tx)
	if err != nil {
		return RollForward{}, err
	}
	rf := RollForward{From: from, To: to, GroupBy: groupBy, Currency: values[0].Currency, Basis: Basis}
	if !from.IsZero() {
		opening, err := periodTotals(ctx, tx, accountGrain, time.Time{}, from)
		if err != nil {
			return RollForward{}, err
		}
		rf.OpeningPoints = memberPoints(opening)
	}
	rf.OpeningValue = valueAt(values, from).Value
	rf.OpeningMoney = rf.OpeningValue.Mul(decimal.NewFromInt(rf.OpeningPoints))

	// Cut the period where the point value changes: the movements of each
	// piece are valued at the value in force during it, and the points
	// outstanding at each change are revalued.
	cuts := []time.Time{}
	for _, v := range values[1:] {
		if v.EffectiveOn.After(from) && v.EffectiveOn.Before(to) {
			cuts = append(cuts, v.EffectiveOn)
		}
	}
	cuts = append(cuts, to)
	g := accountGrain
	if groupBy == GroupByProperty {
		g = propertyGrain
	}
	lines := map[lineKey]*RollLine{}
	outstanding := rf.OpeningPoints
	rf.RevaluationMoney = decimal.Zero
	rf.MovementMoney = decimal.Zero
	a := from
	for _, b := range cuts {
		t, err := periodTotals(ctx, tx, g, a, b)
		if err != nil {
			return RollForward{}, err
		}
		value := valueAt(values, a).Value
		for k, s := range t {
			if k.Account == MemberAggregate {
				outstanding += s.Points
				continue
			}
			if !k.TouchesMember {
				continue
			}
			category, detail := classify(k.Account, k.Kind)
			lk := lineKey{category: category, detail: detail}
			switch groupBy {
			case GroupByProperty:
				lk.dimension = k.PropertyID
			case GroupByPartner:
				lk.dimension = partnerOf(k)
			}
			l := lines[lk]
			if l == nil {
				l = &RollLine{Category: category, Detail: detail, Dimension: lk.dimension, Money: decimal.Zero}
				lines[lk] = l
			}
			points := -s.Points // the counter-side's raw sum, seen from the members
			l.Points += points
			l.Postings += s.Postings
			l.Money = l.Money.Add(value.Mul(decimal.NewFromInt(points)))
		}
		// A version effective exactly at b revalues what is outstanding then.
		before, after := valueAt(values, b.Add(-time.Microsecond)).Value, valueAt(values, b).Value
		if !after.Equal(before) {
			rf.RevaluationMoney = rf.RevaluationMoney.Add(after.Sub(before).Mul(decimal.NewFromInt(outstanding)))
		}
		a = b
	}
	for _, l := range lines {
		rf.Lines = append(rf.Lines, *l)
		rf.MovementPoints += l.Points
		rf.MovementMoney = rf.MovementMoney.Add(l.Money)
	}
	slices.SortFunc(rf.Lines, func(x, y RollLine) int {
		return cmp.Or(strings.Compare(x.Dimension, y.Dimension),
			cmp.Compare(categoryOrder[x.Category], categoryOrder[y.Category]),
			strings.Compare(x.Detail, y.Detail))
	})
	rf.ClosingPoints = outstanding
	rf.ClosingValue = valueAt(values, to).Value
	rf.ClosingMoney = rf.ClosingValue.Mul(decimal.NewFromInt(rf.ClosingPoints))
	rf.Balanced = rf.OpeningPoints+rf.MovementPoints == rf.ClosingPoints &&
		rf.OpeningMoney.Add(rf.MovementMoney).Add(rf.RevaluationMoney).Equal(rf.ClosingMoney)
	return rf, nil
}

// memberPoints is the members' points outstanding in t: the raw
// (credit-positive) sum of their postings.
func memberPoints(t totals) int64 {
	var n int64
	for k, s := range t {
		if k.Account == MemberAggregate {
			n += s.Points
		}
	}
	return n
}
