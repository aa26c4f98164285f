package bookings

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	tierrules "github.com/loyalty-ledger/loyalty/tiers"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// Stay is a completed stay at one of the chain's hotels.
type Stay struct {
	MemberNumber, StayID string
	// Arrival and Departure are local dates, as programme.ParseLocalDate
	// gives them.
	Arrival, Departure time.Time
	// Rules is the stay as the programme's rules read it (nights, channel,
	// booked for someone else); its Tier and FirstStay are the service's.
	Rules programme.Stay
}

// StayResult is a recorded stay: its transaction (nil when it earned
// nothing) and the tier it left the member at.
type StayResult struct {
	Transaction *ledger.Transaction
	Tier        programme.Tier
}

// maxStayAttempts bounds how often a stay is computed again after losing
// the member's first stay to another.
const maxStayAttempts = 3

// RecordStay records a completed stay under the rules of v, the version in
// force at its StayAsOf, as of then: its points (tier of its arrival day, first-stay bonus, booking bonus,
// promotions), its tier qualification and the upgrade it earns, and the
// booking's outcome, in one transaction.
func (s *Service) RecordStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, stay Stay) (StayResult, error) {
	return answerRetry(ctx, s, req, &bookingSlot{property.ID, stay.StayID, Stayed}, func(ctx context.Context) (StayResult, error) {
		if err := ChainHotel(property); err != nil {
			return StayResult{}, err
		}
		if err := notAfterToday("departure_date", stay.Departure, s.now(), property, "a stay is recorded at or after check-out"); err != nil {
			return StayResult{}, err
		}
		// Two stays of a new member recorded at once may both find no first
		// stay; the one that commits second finds the claim taken and is
		// computed again, without the bonus.
		for attempt := 1; ; attempt++ {
			out, err := s.recordStay(ctx, req, v, property, stay)
			if errors.Is(err, members.ErrFirstStayTaken) && attempt < maxStayAttempts {
				continue
			}
			return out, err
		}
	})
}

// recordStay computes a stay's points and tier effects as of its
// completion (StayAsOf), and posts them.
func (s *Service) recordStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, st Stay) (StayResult, error) {
	plan, err := s.planStay(ctx, req, v, property, st, nil, ClaimEvent{})
	if err != nil {
		return StayResult{}, err
	}
	out := StayResult{Tier: plan.member.Tier}
	if plan.post.Postings == nil {
		// Nothing to post, but the booking has its outcome, and the stay
		// its qualifying figures and upgrade, in one database transaction.
		_, err := s.bookings.Claim(ctx, plan.claim, ClaimEvent{}, plan.unposted...)
		out.Tier = plan.tierAfter
		return out, err
	}
	txn, err := s.ledger.Post(ctx, plan.post)
	if err != nil {
		return StayResult{}, err
	}
	out.Transaction = &txn
	// The tier this stay left the member at, as first answered (a replay
	// returns the first transaction, and its metadata).
	out.Tier = programme.Tier(txmeta.Decode(txn.Metadata).TierAfter)
	return out, nil
}

// stayPlan is a stay computed: the transaction to post (no postings when
// it earns nothing) and the booking's claim.
type stayPlan struct {
	member members.Member
	post   ledger.PostRequest
	claim  Claim
	// unposted, for a stay that earns nothing, are its qualifying figures
	// and upgrade, written with its claim; tierAfter is the member's tier
	// after it.
	unposted  []ledger.Statement
	tierAfter programme.Tier
}

// planStay computes a stay's points and tier effects as of its completion
// (StayAsOf): the tier at its arrival, the qualifying window that ends at
// its completion, the upgrade dated then. v is the programme version in
// force then (the caller looks it up: StayAsOf). replaced, when set, is the stay this one corrects, reversed in the
// same commit: its figures no longer count in the tier window. event is
// what the booking's event says besides the stay (a correction's).
func (s *Service) planStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, st Stay, replaced *qualifyingStay, event ClaimEvent) (stayPlan, error) {
	// The member, the tier in force when the stay began (it decides the
	// stay's rules, even if the member has moved up since, by another stay
	// recorded meanwhile) and the qualifying activity of the tier window,
	// in one round trip.
	// The stay is decided as of its completion (see StayAsOf): the tier
	// window ends then, so that stays recorded in order of departure, a
	// history imported years later, decide the tiers as they happened.
	at := StayAsOf(st.Departure, property, s.now())
	rules := tierrules.FromProgramme(v.Programme)
	member, tierAtArrival, activity, err := s.members.StayView(ctx, st.MemberNumber, StayBegins(st.Arrival, property), rules.WindowStart(at), at)
	if err != nil {
		return stayPlan{}, err
	}
	if replaced != nil {
		// The stay replaced counts in the window only if it was completed
		// in it.
		if !replaced.completedAt.Before(activity.WindowStart) && !replaced.completedAt.After(activity.WindowEnd) {
			activity.Nights, activity.Points, activity.Stays = activity.Nights-replaced.nights, activity.Points-replaced.points, activity.Stays-1
		}
	}
	stay := st.Rules
	stay.Tier = tierAtArrival
	// The first stay a member completes earns the bonus; which stay that
	// is, is claimed with this stay's transaction (an effect below).
	ref := stayRef(property.ID, st.StayID)
	claimFirst := member.FirstStay == ""
	stay.FirstStay = claimFirst || member.FirstStay == ref
	points, lines, err := v.Programme.StayPoints(stay)
	if err != nil {
		return stayPlan{}, err
	}
	nights := int(st.Departure.Sub(st.Arrival).Hours()/24 + 0.5)
	// The stay's transaction, its qualifying figures and its outcome are
	// dated at its as-of too: never in the future (a stay recorded the
	// morning of its departure counts from then, for reports and tiers
	// alike, not from noon).
	completedAt := at
	plan := stayPlan{member: member, claim: s.claim(req, property.ID, st.StayID, Stayed, member.Number, completedAt)}
	q := qualifyingStay{ref: ref, completedAt: completedAt, nights: nights}
	if points == 0 {
		// A completed stay all the same (nights paid with a free-night
		// reward): its nights count for tiers, and a regular member's
		// first stay makes it silver. It does not take the first-stay
		// bonus from the first stay that earns.
		var decision tierrules.Decision
		plan.unposted, decision = tierEffects(rules, member, activity, q, at, s.now(), req, property.ID, st.StayID, false)
		plan.tierAfter = decision.To
		return plan, nil
	}

	for _, l := range lines {
		if l.Rule == programme.RuleStayPoints {
			q.points += l.Points
		}
	}
	effects, decision := tierEffects(rules, member, activity, q, at, s.now(), req, property.ID, st.StayID, true)
	if claimFirst {
		effects = append(effects, members.ClaimFirstStay(member.Number, ref))
	}
	event.Points = points
	effects = append(effects, ClaimWith(plan.claim, event))

	postings := []ledger.Posting{{Account: member.Account(), Amount: points}}
	for _, source := range issuedBySource(lines) {
		postings = append(postings, ledger.Posting{Account: source.account, Amount: -source.points})
	}
	m := txmeta.Metadata{Kind: txmeta.KindStay, Member: member.Number, PropertyID: property.ID, StayID: st.StayID,
		Description: fmt.Sprintf("Stay at %s, %d night(s) from %s", property.Name, nights, st.Arrival.Format(time.DateOnly)),
		Breakdown:   txmeta.LinesOf(lines), ProgrammeVersion: v.Number,
		Nights: nights, QualifyingPoints: q.points, TierAfter: string(decision.To)}
	plan.post = ledger.PostRequest{
		CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Kind: ledger.KindEarn, EffectiveAt: completedAt,
		Postings: postings, Metadata: m.JSON(), Announced: m, Fingerprint: req.Fingerprint, Effects: effects,
		Lots: v.LotPolicy(completedAt, true),
	}
	return plan, nil
}

// qualifyingStay is what a stay counts for tiers: its nights and base stay
// points.
type qualifyingStay struct {
	ref         string
	completedAt time.Time
	nights      int
	points      int64
}

// tierEffects are the writes that commit with a stay: its qualifying
// figures, and the upgrade they earn (announced), decided at the stay's
// as-of at (StayAsOf) on the member's activity in the window that ends
// then, with this stay, at propertyID. withTransaction: they are effects
// of the stay's ledger transaction, which the upgrade's event names; else
// the stay posts nothing.
func tierEffects(rules tierrules.Settings, member members.Member, activity tierrules.Activity, q qualifyingStay, at, now time.Time, req Request,
	propertyID, stayID string, withTransaction bool) ([]ledger.Statement, tierrules.Decision) {
	if !q.completedAt.Before(activity.WindowStart) {
		activity.Nights, activity.Points, activity.Stays = activity.Nights+q.nights, activity.Points+q.points, activity.Stays+1
	}
	decision := rules.OnActivity(tiersMember(member), activity, at)
	effects := []ledger.Statement{members.QualifyingStay(member.Number, q.ref, q.completedAt, q.nights, q.points)}
	if decision.Changed {
		change := members.TierChange{From: decision.From, To: decision.To,
			Reason: decision.Reason, EffectiveAt: upgradeAt(member, at, now), Nights: activity.Nights, Points: activity.Points, ChangedBy: req.CallerID,
			Cause: events.TierCauseStay, EventKey: req.key(), PropertyID: propertyID, StayID: stayID}
		if withTransaction {
			effects = append(effects, members.ChangeTierWith(member.Number, change))
		} else {
			effects = append(effects, members.ChangeTier(member.Number, change, now))
		}
	}
	return effects, decision
}

// upgradeAt is when a stay's upgrade takes effect: at the stay's as-of
// at, so that the tier history of stays recorded in order of departure is
// the history as it happened; but now (as before this rule) when the
// member's tier has changed since at (a stay recorded after later ones, or
// after a review): a change dated before the latest one would rewrite the
// history after it, which later stays' tiers at arrival were read from.
// After a change at the same instant (another stay that checked out then)
// it is a microsecond later, so that the history orders the two. A member
// whose tier never changed has TierSince at enrolment, which a migrated
// history precedes: that is no change.
func upgradeAt(member members.Member, at, now time.Time) time.Time {
	if member.TierSince.Before(at) || member.TierSince.Equal(member.EnrolledAt) {
		return at
	}
	if member.TierSince.Equal(at) {
		return at.Add(time.Microsecond)
	}
	return now
}

// tiersMember is a member as the tier rules see one who has stayed.
func tiersMember(m members.Member) tierrules.Member {
	return tierrules.Member{Tier: m.Tier, Since: m.TierSince, EverStayed: true, Manual: m.Manual}
}

type issued struct {
	account string
	points  int64
}

// issuedBySource splits a stay's points by the programme account they are
// issued from, as finance reports them: stay points (with the tier and
// first-stay bonuses and the booked-for-someone-else cut), direct-booking
// bonus, promotions.
func issuedBySource(lines []programme.Line) []issued {
	var stay, bonus, promotion int64
	for _, l := range lines {
		switch {
		case l.Rule == programme.RuleDirectBookingBonus:
			bonus += l.Points
		case strings.HasPrefix(l.Rule, programme.PromotionRule("")):
			promotion += l.Points
		default:
			stay += l.Points
		}
	}
	var out []issued
	for _, s := range []issued{{programme.AccountIssuedStay, stay}, {programme.AccountIssuedBookingBonus, bonus}, {programme.AccountIssuedPromotion, promotion}} {
		if s.points != 0 {
			out = append(out, s)
		}
	}
	return out
}
