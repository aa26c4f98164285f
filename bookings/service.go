package bookings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	tierrules "github.com/loyalty-ledger/loyalty/tiers"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// Service turns a booking's events (a stay, a no-show, a cancellation, a
// guarantee, a late check-out) into one ledger transaction each with its
// effects: points by the programme's rules, tier qualification, the
// first-stay claim, the booking's outcome. Every entry point shares it:
// the RPC services today, file imports and jobs tomorrow. It decides; the
// callers authenticate, validate the shape of requests and map errors.
type Service struct {
	ledger   *ledger.Ledger
	members  *members.Store
	partners *partners.Store
	bookings *Store
	now      func() time.Time
}

// NewService returns the service; clock nil means time.Now.
func NewService(l *ledger.Ledger, m *members.Store, p *partners.Store, b *Store, clock func() time.Time) *Service {
	if clock == nil {
		clock = time.Now
	}
	return &Service{ledger: l, members: m, partners: p, bookings: b, now: clock}
}

// Request is who asks, and the identity of their request: a retry with the
// same caller and idempotency key (and fingerprint) is answered with the
// first result.
type Request struct {
	CallerID       string
	IdempotencyKey string
	// Fingerprint stands for the whole request in the ledger's idempotency
	// check (see ledger.PostRequest); optional.
	Fingerprint []byte
}

// FieldError is a request that the rules refuse for one of its fields.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldError(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// TooEarlyError is an outcome asked for before it can have happened: a
// no-show while the room is still held.
type TooEarlyError struct {
	StayID string
	// From is when the outcome can be recorded.
	From time.Time
}

func (e *TooEarlyError) Error() string {
	return fmt.Sprintf("the room of %s is held until %s at the hotel: a no-show is recorded after that", e.StayID, e.From.Format("2006-01-02 15:04"))
}

// ErrNoGuarantee: the stay has no guarantee.
var ErrNoGuarantee = errors.New("no guarantee for this stay")

// StayRef names a stay for the holds that guarantee it and the qualifying
// stays it counts for.
func StayRef(propertyID, stayID string) string { return "stay:" + propertyID + ":" + stayID }

// AtLocal is a local date's wall-clock time hour:00 at the hotel.
func AtLocal(day time.Time, hour int, property programmes.Property) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), hour, 0, 0, 0, property.Location)
}

// atClock is a local date's wall-clock time c at the hotel.
func atClock(day time.Time, c programme.Clock, property programmes.Property) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), c.Hour, c.Minute, 0, 0, property.Location)
}

// StayBegins is when a stay's rules are decided: the start of its arrival
// day at the hotel; the member's tier then is the stay's tier.
func StayBegins(arrival time.Time, property programmes.Property) time.Time {
	return AtLocal(arrival, 0, property)
}

// CompletedAt is when a stay counts as completed: noon, check-out time,
// on its departure day at the hotel.
func CompletedAt(departure time.Time, property programmes.Property) time.Time {
	return AtLocal(departure, 12, property)
}

// localToday is today's date at the hotel, as programme.ParseLocalDate
// gives dates.
func localToday(now time.Time, property programmes.Property) time.Time {
	y, m, d := now.In(property.Location).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// notAfterToday refuses a local date after today at the hotel.
func notAfterToday(field string, day, now time.Time, property programmes.Property, why string) error {
	if today := localToday(now, property); day.After(today) {
		return fieldError(field, "is %s, after today (%s) at the hotel: %s", day.Format(time.DateOnly), today.Format(time.DateOnly), why)
	}
	return nil
}

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

// RecordStay records a completed stay at check-out under the rules of v:
// its points (tier of its arrival day, first-stay bonus, booking bonus,
// promotions), its tier qualification and the upgrade it earns, and the
// booking's outcome, in one transaction.
func (s *Service) RecordStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, stay Stay) (StayResult, error) {
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
}

// recordStay computes a stay's points and tier effects on the member as
// now read, and posts them.
func (s *Service) recordStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, st Stay) (StayResult, error) {
	// The member, the tier in force when the stay began (it decides the
	// stay's rules, even if the member has moved up since, by another stay
	// recorded meanwhile) and the qualifying activity of the tier window,
	// in one round trip.
	now := s.now()
	rules := tierrules.FromProgramme(v.Programme)
	member, tierAtArrival, activity, err := s.members.StayView(ctx, st.MemberNumber, StayBegins(st.Arrival, property), rules.WindowStart(now), now)
	if err != nil {
		return StayResult{}, err
	}
	stay := st.Rules
	stay.Tier = tierAtArrival
	// The first stay a member completes earns the bonus; which stay that
	// is, is claimed with this stay's transaction (an effect below).
	ref := StayRef(property.ID, st.StayID)
	claimFirst := member.FirstStay == ""
	stay.FirstStay = claimFirst || member.FirstStay == ref
	points, lines, err := v.Programme.StayPoints(stay)
	if err != nil {
		return StayResult{}, err
	}
	out := StayResult{Tier: member.Tier}
	nights := int(st.Departure.Sub(st.Arrival).Hours()/24 + 0.5)
	completedAt := CompletedAt(st.Departure, property)
	claim := s.claim(req, property.ID, st.StayID, Stayed, member.Number, completedAt)
	if points == 0 { // nothing to post, but the booking has its outcome
		_, err := s.bookings.Claim(ctx, claim)
		return out, err
	}

	q := qualifyingStay{ref: ref, completedAt: completedAt, nights: nights}
	for _, l := range lines {
		if l.Rule == programme.RuleStayPoints {
			q.points += l.Points
		}
	}
	effects, decision := tierEffects(rules, member, activity, q, now, req.CallerID)
	if claimFirst {
		effects = append(effects, members.ClaimFirstStay(member.Number, ref))
	}
	effects = append(effects, ClaimWith(claim))

	postings := []ledger.Posting{{Account: member.Account(), Amount: points}}
	for _, source := range issuedBySource(lines) {
		postings = append(postings, ledger.Posting{Account: source.account, Amount: -source.points})
	}
	m := txmeta.Metadata{Kind: txmeta.KindStay, Member: member.Number, PropertyID: property.ID, StayID: st.StayID,
		Description: fmt.Sprintf("Stay at %s, %d night(s) from %s", property.Name, nights, st.Arrival.Format(time.DateOnly)),
		Breakdown:   txmeta.LinesOf(lines), ProgrammeVersion: v.Number,
		Nights: nights, QualifyingPoints: q.points, TierAfter: string(decision.To)}
	txn, err := s.ledger.Post(ctx, ledger.PostRequest{
		CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Kind: ledger.KindEarn, EffectiveAt: completedAt,
		Postings: postings, Metadata: m.JSON(), Fingerprint: req.Fingerprint, Effects: effects,
		Lots: v.LotPolicy(completedAt, true),
	})
	if err != nil {
		return StayResult{}, err
	}
	out.Transaction = &txn
	// The tier this stay left the member at, as first answered (a replay
	// returns the first transaction, and its metadata).
	out.Tier = programme.Tier(txmeta.Decode(txn.Metadata).TierAfter)
	return out, nil
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
// figures, and the upgrade they earn, decided on the member's activity in
// the window (read at now) with this stay.
func tierEffects(rules tierrules.Settings, member members.Member, activity tierrules.Activity, q qualifyingStay, now time.Time, callerID string) ([]ledger.Statement, tierrules.Decision) {
	if !q.completedAt.Before(activity.WindowStart) {
		activity.Nights, activity.Points, activity.Stays = activity.Nights+q.nights, activity.Points+q.points, activity.Stays+1
	}
	decision := rules.OnActivity(TiersMember(member), activity, now)
	effects := []ledger.Statement{members.QualifyingStay(member.Number, q.ref, q.completedAt, q.nights, q.points)}
	if decision.Changed {
		effects = append(effects, members.ChangeTier(member.Number, members.TierChange{From: decision.From, To: decision.To,
			Reason: decision.Reason, EffectiveAt: now, Nights: activity.Nights, Points: activity.Points, ChangedBy: callerID}))
	}
	return effects, decision
}

// TiersMember is a member as the tier rules see one who has stayed.
func TiersMember(m members.Member) tierrules.Member {
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

// claim is the claim of a booking's outcome by req.
func (s *Service) claim(req Request, propertyID, stayID string, outcome Outcome, memberNumber string, effectiveAt time.Time) Claim {
	return Claim{PropertyID: propertyID, StayID: stayID, Outcome: outcome, MemberNumber: memberNumber,
		CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, EffectiveAt: effectiveAt}
}

// refuseIfRecorded answers a request for an outcome of a booking that has
// one already (by another request) before anything else is checked or
// computed, so that the client hears ALREADY_EXISTS rather than a
// consequence of it. It only reads: the unique index stays the guard
// against two requests at the same moment. Stays, the bulk of writes,
// skip it and let the index answer.
func (s *Service) refuseIfRecorded(ctx context.Context, req Request, propertyID, stayID string, outcome Outcome) error {
	existing, err := s.bookings.Current(ctx, propertyID, stayID, outcome)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	case existing.CallerID == req.CallerID && existing.IdempotencyKey == req.IdempotencyKey:
		return nil // a retry: answered as the first time
	}
	return &RecordedError{PropertyID: propertyID, StayID: stayID, Asked: outcome, Existing: &existing}
}

// MissedStay is a booking whose guest did not come: a no-show, or a
// cancellation.
type MissedStay struct {
	MemberNumber, StayID string
	// Arrival is the booked arrival date, as programme.ParseLocalDate
	// gives it.
	Arrival time.Time
	Nights  int
}

// NoShowResult is a recorded no-show: its transaction (nil when nothing
// was posted) and whether the penalty was waived.
type NoShowResult struct {
	Transaction *ledger.Transaction
	Exempt      bool
}

// RecordNoShow records that the guest of a booking made at bookedAt did
// not arrive: the booking's open guarantee is captured, or else the
// no-show penalty is charged unless the booking was a late same-day one.
// It is refused while the room is still held.
func (s *Service) RecordNoShow(ctx context.Context, req Request, v programmes.Version, property programmes.Property, ms MissedStay, bookedAt time.Time) (NoShowResult, error) {
	if booked := localToday(bookedAt, property); booked.After(ms.Arrival) {
		return NoShowResult{}, fieldError("booked_at", "is on %s at the hotel, after the arrival date %s: a booking is made before its guest arrives",
			booked.Format(time.DateOnly), ms.Arrival.Format(time.DateOnly))
	}
	if err := s.refuseIfRecorded(ctx, req, property.ID, ms.StayID, NoShow); err != nil {
		return NoShowResult{}, err
	}
	member, err := s.members.Get(ctx, ms.MemberNumber)
	if err != nil {
		return NoShowResult{}, err
	}
	exempt, err := v.Programme.SameDayLateBooking(bookedAt, ms.Arrival.Format(time.DateOnly), property.Location)
	if err != nil {
		return NoShowResult{}, err
	}
	txn, exempted, err := s.chargeMissedStay(ctx, req, txmeta.KindNoShow, v, property, member, ms, exempt, time.Time{})
	return NoShowResult{Transaction: txn, Exempt: exempted}, err
}

// CancellationResult is a recorded cancellation: free (nothing posted, an
// open guarantee released), or charged by its transaction.
type CancellationResult struct {
	Transaction *ledger.Transaction
	Free        bool
}

// RecordCancellation records a cancellation made at cancelledAt: free
// before the deadline of the member's tier in force then (an open
// guarantee is released), otherwise charged like a no-show.
func (s *Service) RecordCancellation(ctx context.Context, req Request, v programmes.Version, property programmes.Property, ms MissedStay, cancelledAt time.Time) (CancellationResult, error) {
	if err := s.refuseIfRecorded(ctx, req, property.ID, ms.StayID, CancelledCharged); err != nil {
		return CancellationResult{}, err
	}
	member, err := s.members.Get(ctx, ms.MemberNumber)
	if err != nil {
		return CancellationResult{}, err
	}
	// The tier in force when the guest cancelled decides the deadline, not
	// the tier the member has reached since.
	tierThen, err := s.members.TierAt(ctx, member, cancelledAt)
	if err != nil {
		return CancellationResult{}, err
	}
	free, err := v.Programme.FreeCancellation(tierThen, cancelledAt, ms.Arrival.Format(time.DateOnly), property.Location)
	if err != nil {
		return CancellationResult{}, err
	}
	if !free {
		txn, _, err := s.chargeMissedStay(ctx, req, txmeta.KindCancellation, v, property, member, ms, false, cancelledAt)
		return CancellationResult{Transaction: txn}, err
	}
	// The booking's outcome first: a booking that already has one is
	// refused before its guarantee is touched.
	if _, err := s.bookings.Claim(ctx, s.claim(req, property.ID, ms.StayID, CancelledFree, member.Number, cancelledAt)); err != nil {
		return CancellationResult{}, err
	}
	hold, err := s.ledger.HoldByReference(ctx, StayRef(property.ID, ms.StayID))
	if err == nil && hold.Account == member.Account() {
		_, err = s.ledger.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, HoldID: hold.ID, Fingerprint: req.Fingerprint})
		if errors.Is(err, ledger.ErrHoldNotActive) || errors.Is(err, ledger.ErrHoldExpired) {
			err = nil // nothing left to release
		}
	}
	if err != nil && !errors.Is(err, ledger.ErrNotFound) {
		return CancellationResult{}, err
	}
	return CancellationResult{Free: true}, nil
}

// chargeMissedStay charges a no-show or a late cancellation (made at
// cancelledAt): it captures the stay's open guarantee, the charge the
// member agreed to in advance, or else posts the no-show penalty unless
// exempt. Either way it records the booking's outcome. It returns nil when
// nothing was posted, and whether the penalty was waived.
func (s *Service) chargeMissedStay(ctx context.Context, req Request, kind string, v programmes.Version, property programmes.Property, member members.Member, ms MissedStay, exempt bool, cancelledAt time.Time) (*ledger.Transaction, bool, error) {
	m := txmeta.Metadata{Kind: kind, Member: member.Number, PropertyID: property.ID, StayID: ms.StayID, ProgrammeVersion: v.Number}
	noShowAt := AtLocal(ms.Arrival, 18, property)
	claim := s.claim(req, property.ID, ms.StayID, NoShow, member.Number, noShowAt)
	if kind == txmeta.KindCancellation {
		claim.Outcome, claim.EffectiveAt = CancelledCharged, cancelledAt
	}
	hold, err := s.ledger.HoldByReference(ctx, StayRef(property.ID, ms.StayID))
	if kind == txmeta.KindNoShow {
		// A guest is a no-show only once the room is no longer held: after
		// the normal hold time, or the open guarantee's.
		heldUntil := atClock(ms.Arrival, v.Programme.GuaranteeNormalHoldUntil, property)
		if err == nil && hold.Status == ledger.HoldActive {
			var gm GuaranteeMetadata
			if json.Unmarshal(hold.Metadata, &gm) == nil {
				if c, perr := programme.ParseClock(gm.HoldUntil); perr == nil {
					heldUntil = atClock(ms.Arrival, c, property)
				}
			}
		}
		if s.now().Before(heldUntil) {
			return nil, false, &TooEarlyError{StayID: ms.StayID, From: heldUntil}
		}
	}
	switch {
	case err == nil && hold.Account == member.Account() && hold.Status != ledger.HoldReleased:
		// Active: capture it. Captured already: the ledger replays our own
		// capture, or says it was captured by another request.
		m.Description = fmt.Sprintf("Guarantee for %s at %s captured: %d points", ms.StayID, property.ID, hold.Points)
		m.Breakdown = []txmeta.Line{{Rule: "guarantee_capture", Description: m.Description, Points: 0, HeldPoints: -hold.Points}}
		txn, err := s.ledger.CaptureHold(ctx, ledger.CaptureRequest{
			CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, HoldID: hold.ID, Points: hold.Points,
			Destination: programme.AccountPenaltyGuarantee, Kind: ledger.KindHoldCapture, Metadata: m.JSON(),
			Fingerprint: req.Fingerprint, Effects: []ledger.Statement{ClaimWith(claim)},
		})
		if err != nil {
			return nil, false, err
		}
		return &txn, false, nil
	case err != nil && !errors.Is(err, ledger.ErrNotFound):
		return nil, false, err
	}
	points, lines := v.Programme.NoShowPenalty(ms.Nights, exempt)
	if points == 0 {
		_, err := s.bookings.Claim(ctx, claim)
		return nil, true, err
	}
	arrival := ms.Arrival.Format(time.DateOnly)
	m.Description = fmt.Sprintf("No-show penalty for %s at %s, arrival %s", ms.StayID, property.ID, arrival)
	if kind == txmeta.KindCancellation {
		m.Description = fmt.Sprintf("Late cancellation of %s at %s, arrival %s", ms.StayID, property.ID, arrival)
	}
	m.Breakdown = txmeta.LinesOf(lines)
	txn, err := s.post(ctx, req, ledger.KindPenalty, v, noShowAt, []ledger.Posting{
		{Account: member.Account(), Amount: points},
		{Account: programme.AccountPenaltyNoShow, Amount: -points},
	}, m, ClaimWith(claim))
	return txn, false, err
}

// post records a transaction of the service's with its effects.
func (s *Service) post(ctx context.Context, req Request, kind ledger.Kind, v programmes.Version, effectiveAt time.Time, postings []ledger.Posting, m txmeta.Metadata, effects ...ledger.Statement) (*ledger.Transaction, error) {
	txn, err := s.ledger.Post(ctx, ledger.PostRequest{
		CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Kind: kind, EffectiveAt: effectiveAt,
		Postings: postings, Metadata: m.JSON(), Fingerprint: req.Fingerprint,
		Lots: v.LotPolicy(effectiveAt, kind == ledger.KindEarn || kind == ledger.KindRedeem), Effects: effects,
	})
	if err != nil {
		return nil, err
	}
	return &txn, nil
}

// GuaranteeMetadata is kept with a guarantee's hold.
type GuaranteeMetadata struct {
	Member      string `json:"member_number"`
	PropertyID  string `json:"property_id"`
	StayID      string `json:"stay_id"`
	ArrivalDate string `json:"arrival_date"`
	HoldUntil   string `json:"hold_until"`
	Hours       int    `json:"hours"`
	Reason      string `json:"release_reason,omitempty"`
}

// PlaceGuarantee puts points on hold to keep a booking's room past the
// normal hold time, until holdUntil on the arrival day. The hold lasts
// until noon the day after arrival, so that a no-show recorded the next
// morning can still capture it.
func (s *Service) PlaceGuarantee(ctx context.Context, req Request, v programmes.Version, property programmes.Property, memberNumber, stayID string, arrival time.Time, holdUntil programme.Clock) (ledger.Hold, error) {
	member, err := s.members.Get(ctx, memberNumber)
	if err != nil {
		return ledger.Hold{}, err
	}
	hours, points, err := v.Programme.GuaranteeHold(holdUntil)
	if err != nil {
		return ledger.Hold{}, err
	}
	expiresAt := AtLocal(arrival.AddDate(0, 0, 1), 12, property)
	if !expiresAt.After(s.now()) {
		return ledger.Hold{}, fieldError("arrival_date", "is in the past: a guarantee is for an arrival to come")
	}
	gm := GuaranteeMetadata{Member: member.Number, PropertyID: property.ID, StayID: stayID,
		ArrivalDate: arrival.Format(time.DateOnly), HoldUntil: holdUntil.String(), Hours: hours}
	metadata, _ := json.Marshal(gm)
	return s.ledger.PlaceHold(ctx, ledger.HoldRequest{
		CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Account: member.Account(), Points: points,
		ExpiresAt: expiresAt, Reference: StayRef(property.ID, stayID), Metadata: metadata, Fingerprint: req.Fingerprint,
	})
}

// ReleaseGuarantee gives a booking's guarantee hold back to the member.
func (s *Service) ReleaseGuarantee(ctx context.Context, req Request, propertyID, stayID string) (ledger.Hold, error) {
	hold, err := s.ledger.HoldByReference(ctx, StayRef(propertyID, stayID))
	if errors.Is(err, ledger.ErrNotFound) {
		return ledger.Hold{}, ErrNoGuarantee
	}
	if err != nil {
		return ledger.Hold{}, err
	}
	return s.ledger.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, HoldID: hold.ID, Fingerprint: req.Fingerprint})
}

// LateCheckoutResult is a charged late check-out: its transaction, nil
// when the member's tier gets late check-out free.
type LateCheckoutResult struct {
	Transaction *ledger.Transaction
}

// RecordLateCheckout charges hours of late check-out of a booking departing
// on departure, at check-out: like a redemption it never overdraws; one
// charge per stay (more hours are a correction of it).
func (s *Service) RecordLateCheckout(ctx context.Context, req Request, v programmes.Version, property programmes.Property, memberNumber, stayID string, departure time.Time, hours int) (LateCheckoutResult, error) {
	if err := s.refuseIfRecorded(ctx, req, property.ID, stayID, LateCheckout); err != nil {
		return LateCheckoutResult{}, err
	}
	member, err := s.members.Get(ctx, memberNumber)
	if err != nil {
		return LateCheckoutResult{}, err
	}
	if err := notAfterToday("departure_date", departure, s.now(), property, "late check-out is charged at check-out"); err != nil {
		return LateCheckoutResult{}, err
	}
	points, lines, err := v.Programme.LateCheckoutCharge(hours, member.Tier)
	if err != nil {
		return LateCheckoutResult{}, err
	}
	if points == 0 { // free for the member's tier: nothing to post
		return LateCheckoutResult{}, nil
	}
	m := txmeta.Metadata{Kind: txmeta.KindLateCheckout, Member: member.Number, PropertyID: property.ID, StayID: stayID,
		Description: fmt.Sprintf("Late check-out of %d hour(s) at %s", hours, property.Name), Breakdown: txmeta.LinesOf(lines),
		ProgrammeVersion: v.Number}
	checkout := CompletedAt(departure, property)
	txn, err := s.post(ctx, req, ledger.KindRedeem, v, checkout, []ledger.Posting{
		{Account: member.Account(), Amount: points},
		{Account: programme.AccountPenaltyLateCheckout, Amount: -points},
	}, m, ClaimWith(s.claim(req, property.ID, stayID, LateCheckout, member.Number, checkout)))
	return LateCheckoutResult{Transaction: txn}, err
}

// ReversalEffects are the effects that go with the reversal of a
// transaction the service recorded, as its metadata m describes it: the
// booking it recorded is freed, and a stay no longer qualifies for tiers
// (a tier it earned stays until the review date, like any tier).
func ReversalEffects(original ledger.Transaction, m txmeta.Metadata) []ledger.Statement {
	var effects []ledger.Statement
	if m.StayID != "" {
		effects = append(effects, Release(original.ID))
	}
	if m.Kind == txmeta.KindStay {
		effects = append(effects, members.QualifyingStay(m.Member, StayRef(m.PropertyID, m.StayID), original.EffectiveAt, -m.Nights, -m.QualifyingPoints))
	}
	return effects
}

// Reverse reverses a transaction the service recorded, with its effects
// (ReversalEffects), for reason.
func (s *Service) Reverse(ctx context.Context, req Request, v programmes.Version, original ledger.Transaction, reason string) (ledger.Transaction, error) {
	om := txmeta.Decode(original.Metadata)
	var posted int64
	for _, p := range original.Postings {
		if p.Account == programme.MemberAccount(om.Member).Code {
			posted += p.Amount
		}
	}
	m := txmeta.Metadata{Kind: txmeta.KindReversal, Member: om.Member, PropertyID: om.PropertyID, StayID: om.StayID, Reason: reason,
		Description: fmt.Sprintf("Reversal of %s %s: %s", om.Kind, original.ID, reason),
		Breakdown:   []txmeta.Line{{Rule: "reversal", Description: "Reverses " + original.ID.String(), Points: -posted}}}
	return s.ledger.Reverse(ctx, ledger.ReverseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey,
		TransactionID: original.ID, Metadata: m.JSON(), Fingerprint: req.Fingerprint, Effects: ReversalEffects(original, om),
		Lots: v.LotPolicy(s.now(), false)})
}

// Redemption is a reward a member spends points on, at a hotel and for a
// booking if given.
type Redemption struct {
	MemberNumber string
	Reward       programme.Reward
	Quantity     int
	// PropertyID and StayID are where and for which booking, if any.
	PropertyID, StayID string
	// ExpectedPoints, when set, is the price the member was shown: a
	// different catalogue price is a PriceChangedError.
	ExpectedPoints *int64
}

// PriceChangedError is a redemption whose price is not the one the member
// was shown.
type PriceChangedError struct{ Points int64 }

func (e *PriceChangedError) Error() string { return fmt.Sprintf("the price is %d points", e.Points) }

// Redeem spends a member's points on a reward of the catalogue: never
// below zero available points.
func (s *Service) Redeem(ctx context.Context, req Request, v programmes.Version, r Redemption) (ledger.Transaction, error) {
	points, lines, err := v.Programme.RewardPrice(r.Reward, r.Quantity)
	if err != nil {
		return ledger.Transaction{}, err
	}
	price := -points // the points the member spends
	if r.ExpectedPoints != nil && *r.ExpectedPoints != price {
		return ledger.Transaction{}, &PriceChangedError{Points: price}
	}
	// Nothing of the member but its account is needed, and the ledger
	// knows whether that exists: no read of the member first.
	memberAccount := programme.MemberAccount(r.MemberNumber).Code
	m := txmeta.Metadata{Kind: txmeta.KindRedemption, Member: r.MemberNumber, PropertyID: r.PropertyID, StayID: r.StayID,
		Description: fmt.Sprintf("Redeemed %d x %s", r.Quantity, r.Reward), Breakdown: txmeta.LinesOf(lines), ProgrammeVersion: v.Number}
	txn, err := s.post(ctx, req, ledger.KindRedeem, v, s.now(), []ledger.Posting{
		{Account: memberAccount, Amount: -price},
		{Account: programme.RedeemedAccount(r.Reward), Amount: price},
	}, m)
	var unknown *ledger.UnknownAccountError
	if errors.As(err, &unknown) && unknown.Account == memberAccount {
		return ledger.Transaction{}, fmt.Errorf("member %s: %w", r.MemberNumber, members.ErrNotFound)
	}
	if err != nil {
		return ledger.Transaction{}, err
	}
	return *txn, nil
}

// PartnerStayOver refuses to award a stay at a partner's hotel before its
// check-out time (noon on the departure day at the hotel).
func PartnerStayOver(departure time.Time, property programmes.Property, now time.Time) error {
	if CompletedAt(departure, property).After(now) {
		return fieldError("departure_date", "check-out is in the future: award a stay once it is completed")
	}
	return nil
}

// PartnerStay is a completed stay at a partner's hotel, for the member the
// partner recognised, whose tier when the stay began is Tier.
type PartnerStay struct {
	Member             members.Member
	Tier               programme.Tier
	StayID             string
	Arrival, Departure time.Time
	// Charges are the nights' room charges, one per night.
	Charges []decimal.Decimal
}

// AwardPartnerStay awards a stay at a partner's hotel by the partner's rate
// card in force at check-out (rates), capped by the programme: the points,
// the partner's settlement entry and the booking's outcome in one
// transaction. A stay at a partner's hotel does not count for tiers.
func (s *Service) AwardPartnerStay(ctx context.Context, req Request, v programmes.Version, partner partners.Partner, rates partners.Rates,
	property programmes.Property, st PartnerStay) (StayResult, error) {
	points, lines, err := partners.StayPoints(rates.Card, st.Tier, st.Charges, v.Programme.PartnerMaxPointsPerUnit)
	if err != nil {
		return StayResult{}, err
	}
	out := StayResult{Tier: st.Tier}
	completedAt := CompletedAt(st.Departure, property)
	claim := s.claim(req, property.ID, st.StayID, Stayed, st.Member.Number, completedAt)
	if points == 0 { // nothing to post, but the booking has its outcome
		_, err := s.bookings.Claim(ctx, claim)
		return out, err
	}
	amount := partners.Amount(rates, points, 0)
	m := txmeta.Metadata{Kind: txmeta.KindPartnerStay, Member: st.Member.Number, PropertyID: property.ID, StayID: st.StayID,
		Description: fmt.Sprintf("Stay at %s, %d night(s) from %s", property.Name, len(st.Charges), st.Arrival.Format(time.DateOnly)),
		Breakdown:   txmeta.LinesOf(lines), ProgrammeVersion: v.Number,
		PartnerID: partner.ID, RateVersion: rates.Version, PartnerPointsIssued: points, Money: amount.String(), Currency: partner.Currency}
	txn, err := s.post(ctx, req, ledger.KindEarn, v, completedAt, []ledger.Posting{
		{Account: st.Member.Account(), Amount: points},
		{Account: partners.IssuedAccount(partner.ID).Code, Amount: -points},
	}, m, partners.Record(partners.Entry{
		PartnerID: partner.ID, PropertyID: property.ID, Kind: partners.KindAward, MemberNumber: st.Member.Number,
		StayID: st.StayID, RateVersion: rates.Version, PointsIssued: points, Amount: amount}),
		ClaimWith(claim))
	out.Transaction = txn
	return out, err
}

// PartnerRedemption is a reward a member the partner recognised spends
// points on at one of the partner's hotels.
type PartnerRedemption struct {
	Member   members.Member
	Reward   programme.Reward
	Quantity int
	StayID   string
}

// RedeemAtPartner spends a member's points on a reward at a partner's
// hotel, owed to the partner at its reimbursement rate in force now
// (rates).
func (s *Service) RedeemAtPartner(ctx context.Context, req Request, v programmes.Version, partner partners.Partner, rates partners.Rates,
	property programmes.Property, r PartnerRedemption) (ledger.Transaction, error) {
	points, lines, err := v.Programme.RewardPrice(r.Reward, r.Quantity)
	if err != nil {
		return ledger.Transaction{}, err
	}
	price := -points
	amount := partners.Amount(rates, 0, price)
	m := txmeta.Metadata{Kind: txmeta.KindPartnerRedemption, Member: r.Member.Number, PropertyID: property.ID, StayID: r.StayID,
		Description: fmt.Sprintf("Redeemed %d x %s at %s", r.Quantity, r.Reward, property.Name), Breakdown: txmeta.LinesOf(lines),
		ProgrammeVersion: v.Number, PartnerID: partner.ID, RateVersion: rates.Version, PartnerPointsRedeemed: price,
		Money: amount.String(), Currency: partner.Currency}
	txn, err := s.post(ctx, req, ledger.KindRedeem, v, s.now(), []ledger.Posting{
		{Account: r.Member.Account(), Amount: -price},
		{Account: partners.RedeemedAccount(partner.ID).Code, Amount: price},
	}, m, partners.Record(partners.Entry{
		PartnerID: partner.ID, PropertyID: property.ID, Kind: partners.KindRedemption, MemberNumber: r.Member.Number,
		StayID: r.StayID, RateVersion: rates.Version, PointsRedeemed: price, Amount: amount}))
	if err != nil {
		return ledger.Transaction{}, err
	}
	return *txn, nil
}

// ReverseAtPartner reverses a transaction at a partner's hotel and indexes
// the reversal for the partner's settlement: it counts in the period it is
// recorded in (a closed period is never rewritten), negative, at the rate
// version of the transaction it reverses, so that the money reversed is
// exactly the money first counted. A reversed award frees its booking.
func (s *Service) ReverseAtPartner(ctx context.Context, req Request, v programmes.Version, e partners.Entry, reason string) (ledger.Transaction, error) {
	if e.Kind == partners.KindReversal {
		return ledger.Transaction{}, ledger.ErrNotReversible
	}
	currency := ""
	if p, err := s.partners.Get(ctx, e.PartnerID); err == nil {
		currency = p.Currency
	}
	amount := e.Amount.Neg()
	m := txmeta.Metadata{Kind: txmeta.KindReversal, Member: e.MemberNumber, PropertyID: e.PropertyID, StayID: e.StayID, Reason: reason,
		Description: fmt.Sprintf("Reversal of %s %s: %s", e.Kind, e.TransactionID, reason),
		Breakdown:   []txmeta.Line{{Rule: "reversal", Description: "Reverses " + e.TransactionID.String(), Points: e.PointsRedeemed - e.PointsIssued}},
		PartnerID:   e.PartnerID, RateVersion: e.RateVersion, PartnerPointsIssued: -e.PointsIssued, PartnerPointsRedeemed: -e.PointsRedeemed,
		Money: amount.String(), Currency: currency}
	return s.ledger.Reverse(ctx, ledger.ReverseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, TransactionID: e.TransactionID,
		Metadata: m.JSON(), Fingerprint: req.Fingerprint, Lots: v.LotPolicy(s.now(), false),
		Effects: []ledger.Statement{partners.Record(partners.Entry{
			PartnerID: e.PartnerID, PropertyID: e.PropertyID, Kind: partners.KindReversal, MemberNumber: e.MemberNumber,
			StayID: e.StayID, RateVersion: e.RateVersion, PointsIssued: -e.PointsIssued, PointsRedeemed: -e.PointsRedeemed,
			Amount: amount, ReversesID: e.TransactionID}),
			Release(e.TransactionID)},
	})
}
