package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

type bookingService struct{ *Server }

var _ loyaltyv1connect.BookingServiceHandler = bookingService{}

// moneyAmount is the decimal form the contract allows: no exponent, no
// grouping, at most two decimals.
var moneyAmount = regexp.MustCompile(`^-?[0-9]{1,12}(\.[0-9]{1,2})?$`)

// maxRoomCharge bounds a night's room charge, whatever the hotel: above
// any suite's price, far below what would overflow a transaction's points.
var maxRoomCharge = decimal.NewFromInt(1_000_000)

// roomCharge parses a night's room charge (Money.amount) at field.
func roomCharge(field, amount string) (decimal.Decimal, error) {
	if !moneyAmount.MatchString(amount) {
		return decimal.Decimal{}, badField(field, "must be a decimal like \"388.00\", got %q", clip(amount))
	}
	d, err := decimal.NewFromString(amount)
	if err != nil {
		return decimal.Decimal{}, badField(field, "is not a decimal")
	}
	if d.IsNegative() {
		return decimal.Decimal{}, badField(field, "is %s: a room charge is not negative (\"0\" for a night paid with a free-night reward)", clip(amount))
	}
	if d.GreaterThan(maxRoomCharge) {
		return decimal.Decimal{}, badField(field, "is %s: a night's room charge is at most %s", clip(amount), maxRoomCharge.StringFixed(2))
	}
	return d, nil
}

func (s bookingService) RecordStay(ctx context.Context, req *connect.Request[loyaltyv1.RecordStayRequest]) (*connect.Response[loyaltyv1.RecordStayResponse], error) {
	out, err := s.recordStay(ctx, req.Spec().Procedure, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

// recordStay is RecordStay, for one call or one row of RecordStays: its
// error is the Connect error the call answers.
func (s bookingService) recordStay(ctx context.Context, proc string, msg *loyaltyv1.RecordStayRequest) (*loyaltyv1.RecordStayResponse, error) {
	c, err := s.prepareStay(ctx, proc, msg)
	if err != nil {
		return nil, err
	}
	res, err := s.service.RecordStay(ctx, request(ctx, msg.GetIdempotencyKey()), c.version, c.property, c.stay)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.RecordStayResponse{Tier: tierOf(res.Tier)}
	if res.Transaction != nil {
		out.Transaction = toProtoTransaction(*res.Transaction)
	}
	return out, nil
}

// stayCall is a stay request checked and resolved: what recording it, or
// computing it in a dry run, needs.
type stayCall struct {
	version  programmes.Version
	property programmes.Property
	stay     bookings.Stay
}

// prepareStay makes the checks of a stay request, in the order the call
// answers them: the request's fields, the hotel, the programme version of
// the stay's day and the charges' currency.
func (s bookingService) prepareStay(ctx context.Context, proc string, msg *loyaltyv1.RecordStayRequest) (stayCall, error) {
	rules, arrival, departure, err := s.stayFromRequest(msg)
	if err != nil {
		return stayCall{}, err
	}
	property, err := s.property(ctx, msg.GetPropertyId())
	if err != nil {
		return stayCall{}, s.toConnect(ctx, proc, err)
	}
	v, err := s.stayRules(ctx, departure, property)
	if err != nil {
		return stayCall{}, s.toConnect(ctx, proc, err)
	}
	if err := chargedIn(v.Programme, msg.GetNights()); err != nil {
		return stayCall{}, err
	}
	return stayCall{version: v, property: property, stay: bookings.Stay{
		MemberNumber: msg.GetMemberNumber(), StayID: msg.GetStayId(), Arrival: arrival, Departure: departure, Rules: rules}}, nil
}

// request is the calling request as the application services take it.
func request(ctx context.Context, idempotencyKey string) bookings.Request {
	return bookings.Request{CallerID: caller(ctx).ID, IdempotencyKey: idempotencyKey, Fingerprint: requestFingerprint(ctx)}
}

func tierOf(t programme.Tier) loyaltyv1.Tier { return tiers[t] }

// stayRules is the programme version a stay is computed under: the one in
// force at its completion, or now if that has not come
// (bookings.StayAsOf), so that a stay recorded long after it happened
// earns by the rules of its day.
func (s *Server) stayRules(ctx context.Context, departure time.Time, property programmes.Property) (programmes.Version, error) {
	return s.programmes.At(ctx, bookings.StayAsOf(departure, property, s.now()))
}

// chargedIn refuses a night charged in another currency than the
// programme's (rules: the version the stay is computed under).
func chargedIn(rules programme.Programme, nights []*loyaltyv1.StayNight) error {
	for i, n := range nights {
		if n.GetRoomCharge().GetCurrencyCode() != rules.Currency {
			return badField(fmt.Sprintf("nights[%d].room_charge.currency_code", i), "must be %q, the programme's currency", rules.Currency)
		}
	}
	return nil
}

// stayFromRequest validates a stay's fields but the currency of its
// charges, which is the programme version's of the stay's day (chargedIn,
// once the property says where that day is).
func (s bookingService) stayFromRequest(msg *loyaltyv1.RecordStayRequest) (programme.Stay, time.Time, time.Time, error) {
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
		stay.Currency = charge.GetCurrencyCode()
		amount, err := roomCharge(field+".amount", charge.GetAmount())
		if err != nil {
			return stay, time.Time{}, time.Time{}, err
		}
		stay.Nights = append(stay.Nights, programme.Night{RoomCharge: amount, UnbookedExtension: n.GetUnbookedExtension()})
	}
	return stay, arrival, departure, nil
}

func (s bookingService) RecordNoShow(ctx context.Context, req *connect.Request[loyaltyv1.RecordNoShowRequest]) (*connect.Response[loyaltyv1.RecordNoShowResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	missed, err := s.checkMissedStay(msg.GetMemberNumber(), msg.GetPropertyId(), msg.GetStayId(), msg.GetArrivalDate(), msg.GetNights())
	if err != nil {
		return nil, err
	}
	bookedAt, err := pastInstant("booked_at", msg.GetBookedAt(), s.now())
	if err != nil {
		return nil, err
	}
	v, property, err := s.rulesAndProperty(ctx, msg.GetPropertyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	res, err := s.service.RecordNoShow(ctx, request(ctx, msg.GetIdempotencyKey()), v, property, missed, bookedAt)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RecordNoShowResponse{Transaction: protoTransactionOrNil(res.Transaction), PenaltyExempt: res.Exempt}), nil
}

func (s bookingService) RecordCancellation(ctx context.Context, req *connect.Request[loyaltyv1.RecordCancellationRequest]) (*connect.Response[loyaltyv1.RecordCancellationResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	missed, err := s.checkMissedStay(msg.GetMemberNumber(), msg.GetPropertyId(), msg.GetStayId(), msg.GetArrivalDate(), msg.GetNights())
	if err != nil {
		return nil, err
	}
	cancelledAt, err := pastInstant("cancelled_at", msg.GetCancelledAt(), s.now())
	if err != nil {
		return nil, err
	}
	var bookedAt time.Time // optional
	if msg.GetBookedAt() != nil {
		if bookedAt, err = pastInstant("booked_at", msg.GetBookedAt(), s.now()); err != nil {
			return nil, err
		}
		if bookedAt.After(cancelledAt) {
			return nil, badField("booked_at", "is after cancelled_at: a booking is cancelled after it is made")
		}
	}
	v, property, err := s.rulesAndProperty(ctx, msg.GetPropertyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	res, err := s.service.RecordCancellation(ctx, request(ctx, msg.GetIdempotencyKey()), v, property, missed, cancelledAt, bookedAt)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RecordCancellationResponse{Transaction: protoTransactionOrNil(res.Transaction), FreeCancellation: res.Free}), nil
}

// protoTransactionOrNil shows a transaction, or nothing when none was posted.
func protoTransactionOrNil(txn *ledger.Transaction) *loyaltyv1.Transaction {
	if txn == nil {
		return nil
	}
	return toProtoTransaction(*txn)
}

func (s bookingService) checkMissedStay(member, property, stay, arrival string, nights int32) (bookings.MissedStay, error) {
	if err := checkMember(member); err != nil {
		return bookings.MissedStay{}, err
	}
	if err := checkID("property_id", property, true); err != nil {
		return bookings.MissedStay{}, err
	}
	if err := checkID("stay_id", stay, true); err != nil {
		return bookings.MissedStay{}, err
	}
	day, err := localDate("arrival_date", arrival)
	if err != nil {
		return bookings.MissedStay{}, err
	}
	if nights < 1 || nights > maxNights {
		return bookings.MissedStay{}, badField("nights", "must be between 1 and %d", maxNights)
	}
	return bookings.MissedStay{MemberNumber: member, StayID: stay, Arrival: day, Nights: int(nights)}, nil
}

func (s bookingService) PlaceGuarantee(ctx context.Context, req *connect.Request[loyaltyv1.PlaceGuaranteeRequest]) (*connect.Response[loyaltyv1.PlaceGuaranteeResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	missed, err := s.checkMissedStay(msg.GetMemberNumber(), msg.GetPropertyId(), msg.GetStayId(), msg.GetArrivalDate(), 1)
	if err != nil {
		return nil, err
	}
	until, err := programme.ParseClock(msg.GetHoldUntil())
	if err != nil {
		return nil, badField("hold_until", "must be a local time HH:MM, got %q", clip(msg.GetHoldUntil()))
	}
	v, property, err := s.rulesAndProperty(ctx, msg.GetPropertyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	hold, err := s.service.PlaceGuarantee(ctx, request(ctx, msg.GetIdempotencyKey()), v, property, missed.MemberNumber, missed.StayID, missed.Arrival, until)
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
	if _, ok := loyaltyv1.GuaranteeReleaseReason_name[int32(msg.GetReason())]; !ok ||
		msg.GetReason() == loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_UNSPECIFIED {
		return nil, badField("reason", "is required: ARRIVED or WITHDRAWN")
	}
	v, property, err := s.rulesAndProperty(ctx, msg.GetPropertyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	withdrawn := msg.GetReason() == loyaltyv1.GuaranteeReleaseReason_GUARANTEE_RELEASE_REASON_WITHDRAWN
	released, err := s.service.ReleaseGuarantee(ctx, request(ctx, msg.GetIdempotencyKey()), v, property, msg.GetStayId(), withdrawn)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.ReleaseGuaranteeResponse{Guarantee: protoGuarantee(released), Balance: toProtoBalance(*released.BalanceAfter)}), nil
}

func protoGuarantee(h ledger.Hold) *loyaltyv1.Guarantee {
	var gm bookings.GuaranteeMetadata
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
	if msg.ExpectedPoints != nil && msg.GetExpectedPoints() <= 0 {
		// A price shown is points to spend: a sign the client got wrong,
		// not a price the catalogue changed.
		return nil, badField("expected_points", "is %d: the points the member was shown to spend, more than 0", msg.GetExpectedPoints())
	}
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if msg.GetPropertyId() != "" {
		property, err := s.property(ctx, msg.GetPropertyId())
		if err == nil {
			err = bookings.ChainHotel(property)
		}
		if err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
	}
	txn, err := s.service.Redeem(ctx, request(ctx, msg.GetIdempotencyKey()), v, bookings.Redemption{MemberNumber: msg.GetMemberNumber(),
		Reward: reward, Quantity: quantity, PropertyID: msg.GetPropertyId(), StayID: msg.GetStayId(), ExpectedPoints: msg.ExpectedPoints})
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RedeemResponse{Transaction: toProtoTransaction(txn)}), nil
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
	v, property, err := s.rulesAndProperty(ctx, msg.GetPropertyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	res, err := s.service.RecordLateCheckout(ctx, request(ctx, msg.GetIdempotencyKey()), v, property, msg.GetMemberNumber(), msg.GetStayId(), departure, int(msg.GetHours()))
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.RecordLateCheckoutResponse{Transaction: protoTransactionOrNil(res.Transaction)}), nil
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
	if om := txmeta.Decode(original.Metadata); om.PartnerID != "" {
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
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	reversal, err := s.service.Reverse(ctx, request(ctx, msg.GetIdempotencyKey()), v, original, msg.GetReason())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.ReverseTransactionResponse{Transaction: toProtoTransaction(reversal)}), nil
}

// rulesAndProperty is what most booking events need: the rules in force
// and the property.
func (s *Server) rulesAndProperty(ctx context.Context, propertyID string) (programmes.Version, programmes.Property, error) {
	v, err := s.rules(ctx)
	if err != nil {
		return programmes.Version{}, programmes.Property{}, err
	}
	property, err := s.property(ctx, propertyID)
	return v, property, err
}

var bookingOutcomes = map[bookings.Outcome]loyaltyv1.BookingOutcome{
	bookings.Stayed:           loyaltyv1.BookingOutcome_BOOKING_OUTCOME_STAYED,
	bookings.NoShow:           loyaltyv1.BookingOutcome_BOOKING_OUTCOME_NO_SHOW,
	bookings.CancelledFree:    loyaltyv1.BookingOutcome_BOOKING_OUTCOME_CANCELLED_FREE,
	bookings.CancelledCharged: loyaltyv1.BookingOutcome_BOOKING_OUTCOME_CANCELLED_CHARGED,
}

func (s bookingService) GetBooking(ctx context.Context, req *connect.Request[loyaltyv1.GetBookingRequest]) (*connect.Response[loyaltyv1.GetBookingResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	// An unknown property is named as such, not as a booking not found.
	if _, err := s.property(ctx, msg.GetPropertyId()); err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if err := checkID("stay_id", msg.GetStayId(), true); err != nil {
		return nil, err
	}
	b, err := s.service.Booking(ctx, msg.GetPropertyId(), msg.GetStayId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.Booking{PropertyId: b.PropertyID, StayId: b.StayID, MemberNumber: b.MemberNumber}
	if o := b.Outcome; o != nil {
		out.Outcome, out.OutcomeRecordedAt = bookingOutcomes[o.Outcome], timestamppb.New(o.RecordedAt)
		if o.TransactionID != uuid.Nil {
			out.OutcomeTransactionId = o.TransactionID.String()
		}
	}
	if l := b.LateCheckout; l != nil && l.TransactionID != uuid.Nil {
		out.LateCheckoutTransactionId = l.TransactionID.String()
	}
	for _, h := range b.Guarantees {
		out.Guarantees = append(out.Guarantees, protoGuarantee(h))
	}
	for _, txn := range b.Transactions {
		out.Transactions = append(out.Transactions, toProtoTransaction(txn))
	}
	return connect.NewResponse(&loyaltyv1.GetBookingResponse{Booking: out}), nil
}

func (s bookingService) CorrectStay(ctx context.Context, req *connect.Request[loyaltyv1.CorrectStayRequest]) (*connect.Response[loyaltyv1.CorrectStayResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkReason(msg.GetReason()); err != nil {
		return nil, err
	}
	// The stay's fields are RecordStay's, validated alike, and it is
	// computed alike, under the version of its own day.
	stay, arrival, departure, err := s.stayFromRequest(&loyaltyv1.RecordStayRequest{
		MemberNumber: msg.GetMemberNumber(), PropertyId: msg.GetPropertyId(), StayId: msg.GetStayId(),
		ArrivalDate: msg.GetArrivalDate(), DepartureDate: msg.GetDepartureDate(), Nights: msg.GetNights(),
		Channel: msg.GetChannel(), BookedForOther: msg.GetBookedForOther()})
	if err != nil {
		return nil, err
	}
	property, err := s.property(ctx, msg.GetPropertyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	v, err := s.stayRules(ctx, departure, property)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if err := chargedIn(v.Programme, msg.GetNights()); err != nil {
		return nil, err
	}
	res, err := s.service.CorrectStay(ctx, request(ctx, msg.GetIdempotencyKey()), v, property, bookings.Stay{
		MemberNumber: msg.GetMemberNumber(), StayID: msg.GetStayId(), Arrival: arrival, Departure: departure, Rules: stay}, msg.GetReason())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.CorrectStayResponse{Transaction: protoTransactionOrNil(res.Stay.Transaction),
		Reversal: protoTransactionOrNil(res.Reversal), Tier: tierOf(res.Stay.Tier)}
	return connect.NewResponse(out), nil
}
