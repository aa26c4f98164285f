package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	tierrules "github.com/loyalty-ledger/loyalty/tiers"
)

type bookingService struct{ *Server }

var _ loyaltyv1connect.BookingServiceHandler = bookingService{}

// stayRef names a stay for the holds that guarantee it.
func stayRef(propertyID, stayID string) string { return "stay:" + propertyID + ":" + stayID }

// moneyAmount is the decimal form the contract allows: no exponent, no
// grouping, at most two decimals.
var moneyAmount = regexp.MustCompile(`^-?[0-9]{1,12}(\.[0-9]{1,2})?$`)

func (s bookingService) RecordStay(ctx context.Context, req *connect.Request[loyaltyv1.RecordStayRequest]) (*connect.Response[loyaltyv1.RecordStayResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	stay, arrival, departure, err := s.stayFromRequest(v.Programme, msg)
	if err != nil {
		return nil, err
	}
	property, err := s.property(ctx, msg.GetPropertyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if err := notAfterToday("departure_date", departure, s.now(), property.Location, "a stay is recorded at or after check-out"); err != nil {
		return nil, err
	}
	// Two stays of a new member recorded at once may both find no first
	// stay; the one that commits second finds the claim taken and is
	// computed again, without the bonus.
	for attempt := 1; ; attempt++ {
		out, err := s.recordStay(ctx, v, msg, stay, arrival, departure, property)
		if errors.Is(err, members.ErrFirstStayTaken) && attempt < maxStayAttempts {
			continue
		}
		if err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
		return connect.NewResponse(out), nil
	}
}

// maxStayAttempts bounds how often RecordStay computes a stay again after
// losing the member's first stay to another.
const maxStayAttempts = 3

// recordStay computes a valid stay's points and tier effects on the
// member as now read, and posts them.
func (s bookingService) recordStay(ctx context.Context, v programmes.Version, msg *loyaltyv1.RecordStayRequest, stay programme.Stay,
	arrival, departure time.Time, property programmes.Property) (*loyaltyv1.RecordStayResponse, error) {
	// The member, the tier in force when the stay began (it decides the
	// stay's rules, even if the member has moved up since, by another stay
	// recorded meanwhile) and the qualifying activity of the tier window,
	// in one round trip.
	now := s.now()
	rules := tierrules.FromProgramme(v.Programme)
	member, tierAtArrival, activity, err := s.members.StayView(ctx, msg.GetMemberNumber(),
		atLocal(arrival, 0, property.Location), rules.WindowStart(now), now)
	if err != nil {
		return nil, err
	}
	stay.Tier = tierAtArrival
	// The first stay a member completes earns the bonus; which stay that
	// is, is claimed with this stay's transaction (an effect below).
	ref := stayRef(msg.GetPropertyId(), msg.GetStayId())
	claimFirst := member.FirstStay == ""
	stay.FirstStay = claimFirst || member.FirstStay == ref
	points, lines, err := v.Programme.StayPoints(stay)
	if err != nil {
		return nil, err
	}
	out := &loyaltyv1.RecordStayResponse{Tier: tierOf(member.Tier)}
	nights := int(departure.Sub(arrival).Hours()/24 + 0.5)
	completedAt := atLocal(departure, 12, property.Location)
	claim := s.outcomeClaim(ctx, msg.GetPropertyId(), msg.GetStayId(), bookings.Stayed, member.Number, msg.GetIdempotencyKey(), completedAt)
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
	effects, decision := s.tierEffects(ctx, rules, member, activity, q, now)
	if claimFirst {
		effects = append(effects, members.ClaimFirstStay(member.Number, ref))
	}
	effects = append(effects, bookings.ClaimWith(claim))

	postings := []ledger.Posting{{Account: member.Account(), Amount: points}}
	for _, source := range issuedBySource(lines) {
		postings = append(postings, ledger.Posting{Account: source.account, Amount: -source.points})
	}
	m := meta{Kind: kindStay, Member: member.Number, PropertyID: msg.GetPropertyId(), StayID: msg.GetStayId(),
		Description: fmt.Sprintf("Stay at %s, %d night(s) from %s", property.Name, nights, msg.GetArrivalDate()),
		Breakdown:   linesOf(lines), ProgrammeVersion: v.Number,
		Nights: nights, QualifyingPoints: q.points, TierAfter: string(decision.To)}
	txn, err := s.ledger.Post(ctx, ledger.PostRequest{
		CallerID: caller(ctx).ID, IdempotencyKey: msg.GetIdempotencyKey(), Kind: ledger.KindEarn, EffectiveAt: completedAt,
		Postings: postings, Metadata: m.json(), Fingerprint: requestFingerprint(ctx), Effects: effects,
		Lots: v.LotPolicy(completedAt, true),
	})
	if err != nil {
		return nil, err
	}
	out.Transaction = toProtoTransaction(txn)
	// The tier this stay left the member at, as first answered (a replay
	// returns the first transaction, and its metadata).
	out.Tier = tierOf(programme.Tier(decodeMeta(txn.Metadata).TierAfter))
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
func (s *Server) tierEffects(ctx context.Context, rules tierrules.Settings, member members.Member, activity tierrules.Activity, q qualifyingStay, now time.Time) ([]ledger.Statement, tierrules.Decision) {
	if !q.completedAt.Before(activity.WindowStart) {
		activity.Nights, activity.Points, activity.Stays = activity.Nights+q.nights, activity.Points+q.points, activity.Stays+1
	}
	decision := rules.OnActivity(tiersMember(member), activity, now)
	effects := []ledger.Statement{members.QualifyingStay(member.Number, q.ref, q.completedAt, q.nights, q.points)}
	if decision.Changed {
		effects = append(effects, members.ChangeTier(member.Number, members.TierChange{From: decision.From, To: decision.To,
			Reason: decision.Reason, EffectiveAt: now, Nights: activity.Nights, Points: activity.Points, ChangedBy: caller(ctx).ID}))
	}
	return effects, decision
}

func tierOf(t programme.Tier) loyaltyv1.Tier { return tiers[t] }

func tiersMember(m members.Member) tierrules.Member {
	return tierrules.Member{Tier: m.Tier, Since: m.TierSince, EverStayed: true, Manual: m.Manual}
}

func (s bookingService) stayFromRequest(rules programme.Programme, msg *loyaltyv1.RecordStayRequest) (programme.Stay, time.Time, time.Time, error) {
	stay := programme.Stay{PropertyID: msg.GetPropertyId(), ArrivalDate: msg.GetArrivalDate()}
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return stay, time.Time{}, time.Time{}, err
	}
	if err := checkID("property_id", msg.GetPropertyId(), true); err != nil {
		return stay, time.Time{}, time.Time{}, err
	}
	if err := checkID("stay_id", msg.GetStayId(), true); err != nil {
		return stay, time.Time{}, time.Time{}, err
	}
	arrival, err := localDate("arrival_date", msg.GetArrivalDate())
	if err != nil {
		return stay, time.Time{}, time.Time{}, err
	}
	departure, err := localDate("departure_date", msg.GetDepartureDate())
	if err != nil {
		return stay, time.Time{}, time.Time{}, err
	}
	nights := int(departure.Sub(arrival).Hours()/24 + 0.5)
	if nights < 1 || nights > maxNights {
		return stay, time.Time{}, time.Time{}, badField("departure_date", "must be 1 to %d days after arrival_date", maxNights)
	}
	if len(msg.GetNights()) != nights {
		return stay, time.Time{}, time.Time{}, badField("nights", "has %d entries for a stay of %d nights", len(msg.GetNights()), nights)
	}
	if stay.Channel, err = channel(msg.GetChannel()); err != nil {
		return stay, time.Time{}, time.Time{}, err
	}
	stay.BookedForOther = msg.GetBookedForOther()
	for i, n := range msg.GetNights() {
		charge := n.GetRoomCharge()
		field := fmt.Sprintf("nights[%d].room_charge", i)
		if charge == nil {
			return stay, time.Time{}, time.Time{}, badField(field, "is required")
		}
		if charge.GetCurrencyCode() != rules.Currency {
			return stay, time.Time{}, time.Time{}, badField(field+".currency_code", "must be %q, the programme's currency", rules.Currency)
		}
		stay.Currency = charge.GetCurrencyCode()
		if !moneyAmount.MatchString(charge.GetAmount()) {
			return stay, time.Time{}, time.Time{}, badField(field+".amount", "must be a decimal like \"388.00\", got %q", clip(charge.GetAmount()))
		}
		amount, err := decimal.NewFromString(charge.GetAmount())
		if err != nil {
			return stay, time.Time{}, time.Time{}, badField(field+".amount", "is not a decimal")
		}
		stay.Nights = append(stay.Nights, programme.Night{RoomCharge: amount, UnbookedExtension: n.GetUnbookedExtension()})
	}
	return stay, arrival, departure, nil
}

func (s bookingService) RecordNoShow(ctx context.Context, req *connect.Request[loyaltyv1.RecordNoShowRequest]) (*connect.Response[loyaltyv1.RecordNoShowResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := s.checkMissedStay(msg.GetMemberNumber(), msg.GetPropertyId(), msg.GetStayId(), msg.GetArrivalDate(), msg.GetNights()); err != nil {
		return nil, err
	}
	bookedAt, err := pastInstant("booked_at", msg.GetBookedAt(), s.now())
	if err != nil {
		return nil, err
	}
	v, property, member, err := s.bookingContext(ctx, msg.GetPropertyId(), msg.GetMemberNumber())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	arrival, _ := programme.ParseLocalDate(msg.GetArrivalDate())
	if booked := localToday(bookedAt, property.Location); booked.After(arrival) {
		return nil, badField("booked_at", "is on %s at the hotel, after the arrival date %s: a booking is made before its guest arrives",
			booked.Format(time.DateOnly), msg.GetArrivalDate())
	}
	exempt, err := v.Programme.SameDayLateBooking(bookedAt, msg.GetArrivalDate(), property.Location)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	txn, exempted, err := s.chargeMissedStay(ctx, msg.GetIdempotencyKey(), kindNoShow, v, property, member, msg.GetStayId(), msg.GetArrivalDate(), int(msg.GetNights()), exempt, time.Time{})
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RecordNoShowResponse{Transaction: txn, PenaltyExempt: exempted}), nil
}

func (s bookingService) RecordCancellation(ctx context.Context, req *connect.Request[loyaltyv1.RecordCancellationRequest]) (*connect.Response[loyaltyv1.RecordCancellationResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := s.checkMissedStay(msg.GetMemberNumber(), msg.GetPropertyId(), msg.GetStayId(), msg.GetArrivalDate(), msg.GetNights()); err != nil {
		return nil, err
	}
	if _, err := pastInstant("cancelled_at", msg.GetCancelledAt(), s.now()); err != nil {
		return nil, err
	}
	v, property, member, err := s.bookingContext(ctx, msg.GetPropertyId(), msg.GetMemberNumber())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	// The tier in force when the guest cancelled decides the deadline, not
	// the tier the member has reached since.
	tierThen, err := s.members.TierAt(ctx, member, msg.GetCancelledAt().AsTime())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	free, err := v.Programme.FreeCancellation(tierThen, msg.GetCancelledAt().AsTime(), msg.GetArrivalDate(), property.Location)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if free {
		// The booking's outcome first: a booking that already has one is
		// refused before its guarantee is touched.
		if _, err := s.bookings.Claim(ctx, s.outcomeClaim(ctx, msg.GetPropertyId(), msg.GetStayId(), bookings.CancelledFree,
			member.Number, msg.GetIdempotencyKey(), msg.GetCancelledAt().AsTime())); err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
		hold, err := s.ledger.HoldByReference(ctx, stayRef(msg.GetPropertyId(), msg.GetStayId()))
		if err == nil && hold.Account == member.Account() {
			_, err = s.ledger.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: caller(ctx).ID, IdempotencyKey: msg.GetIdempotencyKey(), HoldID: hold.ID, Fingerprint: requestFingerprint(ctx)})
			if errors.Is(err, ledger.ErrHoldNotActive) || errors.Is(err, ledger.ErrHoldExpired) {
				err = nil // nothing left to release
			}
		}
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return nil, s.toConnect(ctx, proc, err)
		}
		return connect.NewResponse(&loyaltyv1.RecordCancellationResponse{FreeCancellation: true}), nil
	}
	txn, _, err := s.chargeMissedStay(ctx, msg.GetIdempotencyKey(), kindCancellation, v, property, member, msg.GetStayId(), msg.GetArrivalDate(), int(msg.GetNights()), false, msg.GetCancelledAt().AsTime())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RecordCancellationResponse{Transaction: txn}), nil
}

func (s bookingService) checkMissedStay(member, property, stay, arrival string, nights int32) error {
	if err := checkMember(member); err != nil {
		return err
	}
	if err := checkID("property_id", property, true); err != nil {
		return err
	}
	if err := checkID("stay_id", stay, true); err != nil {
		return err
	}
	if _, err := localDate("arrival_date", arrival); err != nil {
		return err
	}
	if nights < 1 || nights > maxNights {
		return badField("nights", "must be between 1 and %d", maxNights)
	}
	return nil
}

// chargeMissedStay charges a no-show or a late cancellation (made at
// cancelledAt): it captures the stay's open guarantee, the charge the
// member agreed to in advance, or else posts the no-show penalty unless
// exempt. Either way it records the booking's outcome. It returns nil when
// nothing was posted, and whether the penalty was waived.
func (s *Server) chargeMissedStay(ctx context.Context, key, kind string, v programmes.Version, property programmes.Property, member members.Member, stayID, arrivalDate string, nights int, exempt bool, cancelledAt time.Time) (*loyaltyv1.Transaction, bool, error) {
	propertyID := property.ID
	m := meta{Kind: kind, Member: member.Number, PropertyID: propertyID, StayID: stayID, ProgrammeVersion: v.Number}
	arrival, _ := programme.ParseLocalDate(arrivalDate)
	noShowAt := atLocal(arrival, 18, property.Location)
	claim := s.outcomeClaim(ctx, propertyID, stayID, bookings.NoShow, member.Number, key, noShowAt)
	if kind == kindCancellation {
		claim.Outcome, claim.EffectiveAt = bookings.CancelledCharged, cancelledAt
	}
	hold, err := s.ledger.HoldByReference(ctx, stayRef(propertyID, stayID))
	if kind == kindNoShow {
		// A guest is a no-show only once the room is no longer held: after
		// the normal hold time, or the open guarantee's.
		heldUntil := atLocalClock(arrival, v.Programme.GuaranteeNormalHoldUntil, property.Location)
		if err == nil && hold.Status == ledger.HoldActive {
			var gm guaranteeMeta
			if json.Unmarshal(hold.Metadata, &gm) == nil {
				if c, perr := programme.ParseClock(gm.HoldUntil); perr == nil {
					heldUntil = atLocalClock(arrival, c, property.Location)
				}
			}
		}
		if s.now().Before(heldUntil) {
			e := connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
				"the room of %s is held until %s at the hotel: a no-show is recorded after that", stayID, heldUntil.Format("2006-01-02 15:04")))
			addInfo(e, "NO_SHOW_TOO_EARLY", map[string]string{"recordable_from": heldUntil.UTC().Format(time.RFC3339)})
			return nil, false, e
		}
	}
	switch {
	case err == nil && hold.Account == member.Account() && hold.Status != ledger.HoldReleased:
		// Active: capture it. Captured already: the ledger replays our own
		// capture, or says it was captured by another request.
		m.Description = fmt.Sprintf("Guarantee for %s at %s captured: %d points", stayID, propertyID, hold.Points)
		m.Breakdown = []metaLine{{Rule: "guarantee_capture", Description: m.Description, Points: 0, HeldPoints: -hold.Points}}
		txn, err := s.ledger.CaptureHold(ctx, ledger.CaptureRequest{
			CallerID: caller(ctx).ID, IdempotencyKey: key, HoldID: hold.ID, Points: hold.Points,
			Destination: programme.AccountPenaltyGuarantee, Kind: ledger.KindHoldCapture, Metadata: m.json(),
			Fingerprint: requestFingerprint(ctx), Effects: []ledger.Statement{bookings.ClaimWith(claim)},
		})
		if err != nil {
			return nil, false, err
		}
		return toProtoTransaction(txn), false, nil
	case err != nil && !errors.Is(err, ledger.ErrNotFound):
		return nil, false, err
	}
	points, lines := v.Programme.NoShowPenalty(nights, exempt)
	if points == 0 {
		_, err := s.bookings.Claim(ctx, claim)
		return nil, true, err
	}
	m.Description = fmt.Sprintf("No-show penalty for %s at %s, arrival %s", stayID, propertyID, arrivalDate)
	if kind == kindCancellation {
		m.Description = fmt.Sprintf("Late cancellation of %s at %s, arrival %s", stayID, propertyID, arrivalDate)
	}
	m.Breakdown = linesOf(lines)
	txn, err := s.post(ctx, key, ledger.KindPenalty, noShowAt, []ledger.Posting{
		{Account: member.Account(), Amount: points},
		{Account: programme.AccountPenaltyNoShow, Amount: -points},
	}, m, bookings.ClaimWith(claim))
	return txn, false, err
}

// guaranteeMeta is kept with a guarantee's hold.
type guaranteeMeta struct {
	Member      string `json:"member_number"`
	PropertyID  string `json:"property_id"`
	StayID      string `json:"stay_id"`
	ArrivalDate string `json:"arrival_date"`
	HoldUntil   string `json:"hold_until"`
	Hours       int    `json:"hours"`
	Reason      string `json:"release_reason,omitempty"`
}

func (s bookingService) PlaceGuarantee(ctx context.Context, req *connect.Request[loyaltyv1.PlaceGuaranteeRequest]) (*connect.Response[loyaltyv1.PlaceGuaranteeResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := s.checkMissedStay(msg.GetMemberNumber(), msg.GetPropertyId(), msg.GetStayId(), msg.GetArrivalDate(), 1); err != nil {
		return nil, err
	}
	until, err := programme.ParseClock(msg.GetHoldUntil())
	if err != nil {
		return nil, badField("hold_until", "must be a local time HH:MM, got %q", clip(msg.GetHoldUntil()))
	}
	v, property, member, err := s.bookingContext(ctx, msg.GetPropertyId(), msg.GetMemberNumber())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	hours, points, err := v.Programme.GuaranteeHold(until)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	arrival, _ := programme.ParseLocalDate(msg.GetArrivalDate())
	// Kept until noon the day after arrival, so that a no-show recorded the
	// next morning can still capture it.
	expiresAt := atLocal(arrival.AddDate(0, 0, 1), 12, property.Location)
	if !expiresAt.After(s.now()) {
		return nil, badField("arrival_date", "is in the past: a guarantee is for an arrival to come")
	}
	gm := guaranteeMeta{Member: member.Number, PropertyID: msg.GetPropertyId(), StayID: msg.GetStayId(),
		ArrivalDate: msg.GetArrivalDate(), HoldUntil: until.String(), Hours: hours}
	metadata, _ := json.Marshal(gm)
	hold, err := s.ledger.PlaceHold(ctx, ledger.HoldRequest{
		CallerID: caller(ctx).ID, IdempotencyKey: msg.GetIdempotencyKey(), Account: member.Account(), Points: points,
		ExpiresAt: expiresAt, Reference: stayRef(msg.GetPropertyId(), msg.GetStayId()), Metadata: metadata,
		Fingerprint: requestFingerprint(ctx),
	})
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	// The balance the hold left, as first answered: a replay returns it too.
	return connect.NewResponse(&loyaltyv1.PlaceGuaranteeResponse{Guarantee: protoGuarantee(hold), Balance: toProtoBalance(*hold.BalanceAfter)}), nil
}

func (s bookingService) ReleaseGuarantee(ctx context.Context, req *connect.Request[loyaltyv1.ReleaseGuaranteeRequest]) (*connect.Response[loyaltyv1.ReleaseGuaranteeResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkID("property_id", msg.GetPropertyId(), true); err != nil {
		return nil, err
	}
	if err := checkID("stay_id", msg.GetStayId(), true); err != nil {
		return nil, err
	}
	if msg.GetReason() == loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_UNSPECIFIED {
		return nil, badField("reason", "is required: ARRIVED or WITHDRAWN")
	}
	hold, err := s.ledger.HoldByReference(ctx, stayRef(msg.GetPropertyId(), msg.GetStayId()))
	if errors.Is(err, ledger.ErrNotFound) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no guarantee for this stay"))
	}
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	released, err := s.ledger.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: caller(ctx).ID, IdempotencyKey: msg.GetIdempotencyKey(), HoldID: hold.ID, Fingerprint: requestFingerprint(ctx)})
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.ReleaseGuaranteeResponse{Guarantee: protoGuarantee(released), Balance: toProtoBalance(*released.BalanceAfter)}), nil
}

func protoGuarantee(h ledger.Hold) *loyaltyv1.Guarantee {
	var gm guaranteeMeta
	_ = json.Unmarshal(h.Metadata, &gm)
	state := loyaltyv1.GuaranteeState_GUARANTEE_STATE_HELD
	switch h.Status {
	case ledger.HoldReleased:
		state = loyaltyv1.GuaranteeState_GUARANTEE_STATE_RELEASED
	case ledger.HoldCaptured:
		state = loyaltyv1.GuaranteeState_GUARANTEE_STATE_CAPTURED
	}
	return &loyaltyv1.Guarantee{
		MemberNumber: gm.Member, PropertyId: gm.PropertyID, StayId: gm.StayID, ArrivalDate: gm.ArrivalDate,
		HoldUntil: gm.HoldUntil, Hours: int32(gm.Hours), PointsHeld: h.Points, State: state, PlacedAt: timestamppb.New(h.CreatedAt),
	}
}

func (s bookingService) Redeem(ctx context.Context, req *connect.Request[loyaltyv1.RedeemRequest]) (*connect.Response[loyaltyv1.RedeemResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	reward, quantity, err := rewardOf(msg.GetReward(), msg.GetQuantity())
	if err != nil {
		return nil, err
	}
	if err := checkID("property_id", msg.GetPropertyId(), false); err != nil {
		return nil, err
	}
	if err := checkID("stay_id", msg.GetStayId(), false); err != nil {
		return nil, err
	}
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if msg.GetPropertyId() != "" {
		if _, err := s.property(ctx, msg.GetPropertyId()); err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
	}
	points, lines, err := v.Programme.RewardPrice(reward, quantity)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	price := -points // the points the member spends
	if msg.ExpectedPoints != nil && *msg.ExpectedPoints != price {
		e := connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("the price is %d points, not %d", price, *msg.ExpectedPoints))
		addInfo(e, "PRICE_CHANGED", map[string]string{"points": fmt.Sprint(price)})
		return nil, e
	}
	// Nothing of the member but its account is needed, and the ledger
	// knows whether that exists: no read of the member first.
	number := msg.GetMemberNumber()
	memberAccount := programme.MemberAccount(number).Code
	m := meta{Kind: kindRedemption, Member: number, PropertyID: msg.GetPropertyId(), StayID: msg.GetStayId(),
		Description: fmt.Sprintf("Redeemed %d x %s", quantity, reward), Breakdown: linesOf(lines), ProgrammeVersion: v.Number}
	txn, err := s.post(ctx, msg.GetIdempotencyKey(), ledger.KindRedeem, s.now(), []ledger.Posting{
		{Account: memberAccount, Amount: -price},
		{Account: programme.RedeemedAccount(reward), Amount: price},
	}, m)
	var unknown *ledger.UnknownAccountError
	if errors.As(err, &unknown) && unknown.Account == memberAccount {
		err = fmt.Errorf("member %s: %w", number, members.ErrNotFound)
	}
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RedeemResponse{Transaction: txn}), nil
}

func (s bookingService) RecordLateCheckout(ctx context.Context, req *connect.Request[loyaltyv1.RecordLateCheckoutRequest]) (*connect.Response[loyaltyv1.RecordLateCheckoutResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	if err := checkID("property_id", msg.GetPropertyId(), true); err != nil {
		return nil, err
	}
	if err := checkID("stay_id", msg.GetStayId(), true); err != nil {
		return nil, err
	}
	departure, err := localDate("departure_date", msg.GetDepartureDate())
	if err != nil {
		return nil, err
	}
	v, property, member, err := s.bookingContext(ctx, msg.GetPropertyId(), msg.GetMemberNumber())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if err := notAfterToday("departure_date", departure, s.now(), property.Location, "late check-out is charged at check-out"); err != nil {
		return nil, err
	}
	points, lines, err := v.Programme.LateCheckoutCharge(int(msg.GetHours()), member.Tier)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	m := meta{Kind: kindLateCheckout, Member: member.Number, PropertyID: msg.GetPropertyId(), StayID: msg.GetStayId(),
		Description: fmt.Sprintf("Late check-out of %d hour(s) at %s", msg.GetHours(), property.Name), Breakdown: linesOf(lines),
		ProgrammeVersion: v.Number}
	if points == 0 { // free for the member's tier: nothing to post
		return connect.NewResponse(&loyaltyv1.RecordLateCheckoutResponse{}), nil
	}
	// A charge for a service, like a redemption: it never overdraws. One
	// charge per stay: more hours are a correction of it.
	checkout := atLocal(departure, 12, property.Location)
	txn, err := s.post(ctx, msg.GetIdempotencyKey(), ledger.KindRedeem, checkout, []ledger.Posting{
		{Account: member.Account(), Amount: points},
		{Account: programme.AccountPenaltyLateCheckout, Amount: -points},
	}, m, bookings.ClaimWith(s.outcomeClaim(ctx, msg.GetPropertyId(), msg.GetStayId(), bookings.LateCheckout, member.Number, msg.GetIdempotencyKey(), checkout)))
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RecordLateCheckoutResponse{Transaction: txn}), nil
}

func (s bookingService) ReverseTransaction(ctx context.Context, req *connect.Request[loyaltyv1.ReverseTransactionRequest]) (*connect.Response[loyaltyv1.ReverseTransactionResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	id, err := uuid.Parse(msg.GetTransactionId())
	if err != nil {
		return nil, badField("transaction_id", "is not a transaction id")
	}
	if err := checkReason(msg.GetReason()); err != nil {
		return nil, err
	}
	original, err := s.ledger.Transaction(ctx, id)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	me := caller(ctx)
	if original.CallerID != me.ID && me.Role != apikeys.RoleAdmin {
		return nil, connect.NewError(connect.CodePermissionDenied, errors.New("a caller may reverse only its own transactions"))
	}
	om := decodeMeta(original.Metadata)
	if om.PartnerID != "" {
		// At a partner's hotel: the reversal must count in the partner's
		// settlement too, whoever reverses it.
		entry, err := s.partners.Transaction(ctx, om.PartnerID, id)
		if err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
		reversal, err := s.reversePartnerTransaction(ctx, msg.GetIdempotencyKey(), entry, msg.GetReason())
		if err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
		return connect.NewResponse(&loyaltyv1.ReverseTransactionResponse{Transaction: toProtoTransaction(reversal)}), nil
	}
	var posted int64
	for _, p := range original.Postings {
		if p.Account == programme.MemberAccount(om.Member).Code {
			posted += p.Amount
		}
	}
	m := meta{Kind: kindReversal, Member: om.Member, PropertyID: om.PropertyID, StayID: om.StayID, Reason: msg.GetReason(),
		Description: fmt.Sprintf("Reversal of %s %s: %s", om.Kind, original.ID, msg.GetReason()),
		Breakdown:   []metaLine{{Rule: "reversal", Description: "Reverses " + original.ID.String(), Points: -posted}}}
	var effects []ledger.Statement
	if om.StayID != "" {
		// The booking's outcome (or late check-out) goes with it.
		effects = append(effects, bookings.Release(id))
	}
	if om.Kind == kindStay {
		// A reversed stay no longer qualifies for tiers. (A tier it earned
		// stays until the review date, like any tier.)
		effects = append(effects, members.QualifyingStay(om.Member, stayRef(om.PropertyID, om.StayID), original.EffectiveAt, -om.Nights, -om.QualifyingPoints))
	}
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	reversal, err := s.ledger.Reverse(ctx, ledger.ReverseRequest{CallerID: me.ID, IdempotencyKey: msg.GetIdempotencyKey(),
		TransactionID: id, Metadata: m.json(), Fingerprint: requestFingerprint(ctx), Effects: effects,
		Lots: v.LotPolicy(s.now(), false)})
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.ReverseTransactionResponse{Transaction: toProtoTransaction(reversal)}), nil
}

// outcomeClaim is the claim of a booking's outcome by the calling request.
func (s *Server) outcomeClaim(ctx context.Context, propertyID, stayID string, outcome bookings.Outcome, memberNumber, key string, effectiveAt time.Time) bookings.Claim {
	return bookings.Claim{PropertyID: propertyID, StayID: stayID, Outcome: outcome, MemberNumber: memberNumber,
		CallerID: caller(ctx).ID, IdempotencyKey: key, EffectiveAt: effectiveAt}
}

// bookingContext is what most booking events need: the rules in force, the
// property and the member.
func (s *Server) bookingContext(ctx context.Context, propertyID, memberNumber string) (programmes.Version, programmes.Property, members.Member, error) {
	v, err := s.rules(ctx)
	if err != nil {
		return programmes.Version{}, programmes.Property{}, members.Member{}, err
	}
	property, err := s.property(ctx, propertyID)
	if err != nil {
		return programmes.Version{}, programmes.Property{}, members.Member{}, err
	}
	member, err := s.members.Get(ctx, memberNumber)
	if err != nil {
		return programmes.Version{}, programmes.Property{}, members.Member{}, err
	}
	return v, property, member, nil
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
