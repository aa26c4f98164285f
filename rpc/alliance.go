package rpc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// allianceService serves partner keys. Its one rule: the partner scope of a
// call is the key's partner, never a field of the request, and anything
// outside it answers exactly like something that does not exist.
type allianceService struct{ *Server }

var _ loyaltyv1connect.AllianceServiceHandler = allianceService{}

// maxFamilyName bounds GetMemberStatus's second factor.
const maxFamilyName = 100

// scope is the partner the calling key is bound to.
func scope(ctx context.Context) (string, error) {
	id := caller(ctx).PartnerID
	if id == "" {
		// apikeys guarantees a partner key has one; be safe anyway.
		return "", connect.NewError(connect.CodePermissionDenied, errors.New("the key is bound to no partner"))
	}
	return id, nil
}

// writableScope is the caller's partner, checked to be active: read at
// most once a second per partner and process (partners.TrustFor), so a
// suspension applies everywhere once SuspendPartner has answered.
func (s allianceService) writableScope(ctx context.Context, proc string) (partners.Partner, error) {
	partnerID, err := scope(ctx)
	if err != nil {
		return partners.Partner{}, err
	}
	p, err := s.partners.Writable(ctx, partnerID)
	return p, s.scopeError(ctx, proc, partnerID, err)
}

// writableAt is writableScope with the partner's rates in force at t, read
// in the same round trip. Without rates at t, the partner comes back with
// an error wrapping partners.ErrNoRates, for the caller to report once the
// request's other checks have passed.
func (s allianceService) writableAt(ctx context.Context, proc string, t time.Time) (partners.Partner, partners.Rates, error) {
	partnerID, err := scope(ctx)
	if err != nil {
		return partners.Partner{}, partners.Rates{}, err
	}
	p, rates, err := s.partners.WritableAt(ctx, partnerID, t)
	if errors.Is(err, partners.ErrNoRates) {
		return p, rates, err
	}
	return p, rates, s.scopeError(ctx, proc, partnerID, err)
}

// scopeError is how a partner that may not write is answered.
func (s allianceService) scopeError(ctx context.Context, proc, partnerID string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, partners.ErrSuspended):
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("partner %s is suspended: its writes are refused", partnerID))
	case errors.Is(err, partners.ErrNotFound):
		return connect.NewError(connect.CodePermissionDenied, fmt.Errorf("partner %s does not exist", partnerID))
	}
	return s.toConnect(ctx, proc, err)
}

// errNoSuchProperty answers an unknown property and another owner's alike.
func errNoSuchProperty(id string) error {
	return connect.NewError(connect.CodeNotFound, fmt.Errorf("no property %q among this partner's hotels", clip(id)))
}

// ownProperty returns one of the partner's own properties.
func (s allianceService) ownProperty(ctx context.Context, proc, partnerID, propertyID string) (programmes.Property, error) {
	if err := checkID("property_id", propertyID, true); err != nil {
		return programmes.Property{}, err
	}
	p, err := s.programmes.Property(ctx, propertyID)
	if errors.Is(err, programmes.ErrUnknownProperty) || (err == nil && p.Owner != partnerID) {
		return programmes.Property{}, errNoSuchProperty(propertyID)
	}
	if err != nil {
		return programmes.Property{}, s.toConnect(ctx, proc, err)
	}
	return p, nil
}

// partnerErr maps errors of a partner's writes: like toConnect, but a
// refusal for want of points says nothing of the member's balance.
func (s allianceService) partnerErr(ctx context.Context, proc string, err error) error {
	var short *ledger.InsufficientPointsError
	if errors.As(err, &short) {
		e := connect.NewError(connect.CodeFailedPrecondition, errors.New("the member does not have enough points for this redemption"))
		addInfo(e, "INSUFFICIENT_POINTS", nil)
		return e
	}
	return s.toConnect(ctx, proc, err)
}

func (s allianceService) GetMemberStatus(ctx context.Context, req *connect.Request[loyaltyv1.GetMemberStatusRequest]) (*connect.Response[loyaltyv1.GetMemberStatusResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	if err := checkFamilyName(msg.GetFamilyName()); err != nil {
		return nil, err
	}
	partnerID, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	member, err := s.recognise(ctx, proc, msg.GetMemberNumber(), msg.GetFamilyName())
	if err != nil {
		return nil, err
	}
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	p := v.Programme
	benefits := &loyaltyv1.TierBenefits{
		StayPointsMultiplier:  p.TierMultiplier[member.Tier].String(),
		FreeLateCheckout:      slices.Contains(p.FreeLateCheckoutTiers, member.Tier),
		FreeCancellationUntil: p.FreeCancellationUntil[member.Tier].String(),
	}
	if rates, err := s.partners.RatesAt(ctx, partnerID, s.now()); err == nil {
		benefits.PartnerRateCardMultiplier = rates.Card.TierMultiplier[member.Tier].String()
	} else if !errors.Is(err, partners.ErrNoRates) {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.GetMemberStatusResponse{MemberNumber: member.Number, Tier: tierOf(member.Tier), Benefits: benefits}), nil
}

func checkFamilyName(name string) error {
	if n := len([]rune(strings.TrimSpace(name))); n == 0 || n > maxFamilyName {
		return badField("family_name", "1 to %d characters", maxFamilyName)
	}
	return nil
}

// recognise finds a member by number and family name. An unknown member
// and a wrong name are one answer: a partner learns nothing of a member
// without both factors.
func (s allianceService) recognise(ctx context.Context, proc, number, family string) (members.Member, error) {
	if err := s.recognitions.check(caller(ctx).PartnerID, s.now()); err != nil {
		return members.Member{}, err
	}
	member, err := s.members.Get(ctx, number)
	if err := s.recogniseError(ctx, proc, member, family, err); err != nil {
		return members.Member{}, err // nothing of a member the caller did not name right
	}
	return member, nil
}

// recogniseAt is recognise with the member's tier in force at t, read in
// the same round trip.
func (s allianceService) recogniseAt(ctx context.Context, proc, number, family string, t time.Time) (members.Member, programme.Tier, error) {
	if err := s.recognitions.check(caller(ctx).PartnerID, s.now()); err != nil {
		return members.Member{}, "", err
	}
	member, tier, err := s.members.MemberAt(ctx, number, t)
	if err := s.recogniseError(ctx, proc, member, family, err); err != nil {
		return members.Member{}, "", err
	}
	return member, tier, nil
}

// recogniseError is the answer to a recognition: nil, NOT_FOUND for an
// unknown member and a wrong name alike (counted against the partner), or
// the read's error.
func (s allianceService) recogniseError(ctx context.Context, proc string, member members.Member, family string, err error) error {
	// A closed member is one a partner cannot name any more (the name is
	// erased): the same answer as an unknown one, which tells a partner
	// holding only a number nothing of the closure.
	if errors.Is(err, members.ErrNotFound) || errors.Is(err, members.ErrClosed) {
		return s.unrecognised(ctx)
	}
	if err != nil {
		return s.toConnect(ctx, proc, err)
	}
	if !isFamilyName(member.FullName, strings.TrimSpace(family)) {
		return s.unrecognised(ctx)
	}
	return nil
}

// unrecognised answers a recognition that did not match, and counts it
// against the partner.
func (s allianceService) unrecognised(ctx context.Context) error {
	s.recognitions.failed(caller(ctx).PartnerID, s.now())
	return connect.NewError(connect.CodeNotFound, errors.New("no member with this member_number and family_name"))
}

// isFamilyName reports whether family, without regard to case, is the
// family name of a registered full name: its last word or its first (a
// Chinese name in Latin letters is written either way round: "Li Wei",
// "Wei Li"), or, for a name in Chinese characters written without spaces
// ("李伟", "欧阳娜娜"), its first character or two (the family names of
// one and of two characters).
func isFamilyName(fullName, family string) bool {
	words := strings.Fields(fullName)
	if len(words) == 0 || family == "" {
		return false
	}
	candidates := []string{words[len(words)-1], words[0]}
	if name := []rune(words[0]); len(words) == 1 && len(name) >= 2 && unicode.Is(unicode.Han, name[0]) {
		candidates = append(candidates, string(name[:1]))
		if len(name) >= 3 {
			candidates = append(candidates, string(name[:2]))
		}
	}
	for _, c := range candidates {
		if strings.EqualFold(c, family) {
			return true
		}
	}
	return false
}

func (s allianceService) AwardStay(ctx context.Context, req *connect.Request[loyaltyv1.AwardStayRequest]) (*connect.Response[loyaltyv1.AwardStayResponse], error) {
	out, err := s.awardStay(ctx, req.Spec().Procedure, req.Msg)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(out), nil
}

// awardStay is AwardStay, for one call or one row of AwardStays: its
// error is the Connect error the call answers.
func (s allianceService) awardStay(ctx context.Context, proc string, msg *loyaltyv1.AwardStayRequest) (*loyaltyv1.AwardStayResponse, error) {
	c, err := s.prepareAward(ctx, proc, msg)
	if err != nil {
		return nil, err
	}
	res, err := s.service.AwardPartnerStay(ctx, request(ctx, msg.GetIdempotencyKey()), c.version, c.partner, c.rates, c.property, c.stay)
	if err != nil {
		return nil, s.partnerErr(ctx, proc, err)
	}
	out := &loyaltyv1.AwardStayResponse{Tier: tierOf(res.Tier)}
	if res.Transaction != nil {
		out.Transaction = partnerTransaction(*res.Transaction)
	}
	return out, nil
}

// awardCall is a partner's stay request checked and resolved: what
// awarding it, or computing it in a dry run, needs.
type awardCall struct {
	version  programmes.Version
	partner  partners.Partner
	rates    partners.Rates
	property programmes.Property
	stay     bookings.PartnerStay
}

// prepareAward makes the checks of a partner's stay request, in the order
// the call answers them.
func (s allianceService) prepareAward(ctx context.Context, proc string, msg *loyaltyv1.AwardStayRequest) (awardCall, error) {
	arrival, departure, nights, err := partnerStay(msg)
	if err != nil {
		return awardCall{}, err
	}
	// Two round trips: the partner with its rates, then the member with
	// the tier. The property comes from memory.
	partnerID, err := scope(ctx)
	if err != nil {
		return awardCall{}, err
	}
	property, err := s.ownProperty(ctx, proc, partnerID, msg.GetPropertyId())
	if err != nil {
		// A partner that may not write hears that first.
		if _, scopeErr := s.writableScope(ctx, proc); scopeErr != nil {
			return awardCall{}, scopeErr
		}
		return awardCall{}, err
	}
	// The programme version of the stay's day: its cap and its currency.
	v, err := s.stayRules(ctx, departure, property)
	if err != nil {
		return awardCall{}, s.toConnect(ctx, proc, err)
	}
	if err := chargedIn(v.Programme, msg.GetNights()); err != nil {
		return awardCall{}, err
	}
	completedAt := bookings.CompletedAt(departure, property)
	partner, rates, err := s.writableAt(ctx, proc, completedAt)
	noRates := err
	if err != nil && !errors.Is(err, partners.ErrNoRates) {
		return awardCall{}, err
	}
	if err := bookings.PartnerStayOver(departure, property, s.now()); err != nil {
		return awardCall{}, s.toConnect(ctx, proc, err)
	}
	// The tier in force when the stay began, as for the chain's own stays.
	member, tier, err := s.recogniseAt(ctx, proc, msg.GetMemberNumber(), msg.GetFamilyName(), bookings.StayBegins(arrival, property))
	if err != nil {
		return awardCall{}, err
	}
	if noRates != nil {
		return awardCall{}, s.toConnect(ctx, proc, noRates)
	}
	return awardCall{version: v, partner: partner, rates: rates, property: property, stay: bookings.PartnerStay{
		Member: member, Tier: tier, StayID: msg.GetStayId(), Arrival: arrival, Departure: departure, Nights: nights}}, nil
}

// currency is the partner's settlement currency.
func (s allianceService) currency(ctx context.Context, partnerID string) (string, error) {
	p, err := s.partners.Get(ctx, partnerID)
	return p.Currency, err
}

// partnerStay validates an award's stay: dates, one room charge per night
// (whose currency, the programme's of the stay's day, chargedIn checks).
func partnerStay(msg *loyaltyv1.AwardStayRequest) (time.Time, time.Time, []programme.Night, error) {
	fail := func(err error) (time.Time, time.Time, []programme.Night, error) {
		return time.Time{}, time.Time{}, nil, err
	}
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return fail(err)
	}
	if err := checkFamilyName(msg.GetFamilyName()); err != nil {
		return fail(err)
	}
	if err := checkID("property_id", msg.GetPropertyId(), true); err != nil {
		return fail(err)
	}
	if err := checkID("stay_id", msg.GetStayId(), true); err != nil {
		return fail(err)
	}
	arrival, err := localDate("arrival_date", msg.GetArrivalDate())
	if err != nil {
		return fail(err)
	}
	departure, err := localDate("departure_date", msg.GetDepartureDate())
	if err != nil {
		return fail(err)
	}
	nights := int(departure.Sub(arrival).Hours()/24 + 0.5)
	if nights < 1 || nights > maxNights {
		return fail(badField("departure_date", "must be 1 to %d days after arrival_date", maxNights))
	}
	if len(msg.GetNights()) != nights {
		return fail(badField("nights", "has %d entries for a stay of %d nights", len(msg.GetNights()), nights))
	}
	stayNights := make([]programme.Night, 0, nights)
	for i, n := range msg.GetNights() {
		field := fmt.Sprintf("nights[%d].room_charge", i)
		c := n.GetRoomCharge()
		if c == nil {
			return fail(badField(field, "is required"))
		}
		amount, err := roomCharge(field+".amount", c.GetAmount())
		if err != nil {
			return fail(err)
		}
		if !amount.IsPositive() {
			return fail(badField(field+".amount", "must be a positive decimal"))
		}
		stayNights = append(stayNights, programme.Night{RoomCharge: amount, UnbookedExtension: n.GetUnbookedExtension()})
	}
	return arrival, departure, stayNights, nil
}

func (s allianceService) Redeem(ctx context.Context, req *connect.Request[loyaltyv1.AllianceServiceRedeemRequest]) (*connect.Response[loyaltyv1.AllianceServiceRedeemResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	if err := checkFamilyName(msg.GetFamilyName()); err != nil {
		return nil, err
	}
	if err := checkID("property_id", msg.GetPropertyId(), true); err != nil {
		return nil, err
	}
	reward, quantity, err := rewardOf(msg.GetReward(), msg.GetQuantity())
	if err != nil {
		return nil, err
	}
	if err := checkID("stay_id", msg.GetStayId(), false); err != nil {
		return nil, err
	}
	now := s.now()
	partner, rates, err := s.writableAt(ctx, proc, now)
	noRates := err
	if err != nil && !errors.Is(err, partners.ErrNoRates) {
		return nil, err
	}
	partnerID := partner.ID
	property, err := s.ownProperty(ctx, proc, partnerID, msg.GetPropertyId())
	if err != nil {
		return nil, err
	}
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if _, _, err := v.Programme.RewardPrice(reward, quantity); err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	member, err := s.recognise(ctx, proc, msg.GetMemberNumber(), msg.GetFamilyName())
	if err != nil {
		return nil, err
	}
	if noRates != nil {
		return nil, s.toConnect(ctx, proc, noRates)
	}
	txn, err := s.service.RedeemAtPartner(ctx, request(ctx, msg.GetIdempotencyKey()), v, partner, rates, property, bookings.PartnerRedemption{
		Member: member, Reward: reward, Quantity: quantity, StayID: msg.GetStayId()})
	if err != nil {
		return nil, s.partnerErr(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.AllianceServiceRedeemResponse{Transaction: partnerTransaction(txn)}), nil
}

func (s allianceService) ReverseTransaction(ctx context.Context, req *connect.Request[loyaltyv1.AllianceServiceReverseTransactionRequest]) (*connect.Response[loyaltyv1.AllianceServiceReverseTransactionResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	id, err := uuid.Parse(msg.GetTransactionId())
	if err != nil {
		return nil, badField("transaction_id", "is not a transaction id")
	}
	if err := checkReason(msg.GetReason()); err != nil {
		return nil, err
	}
	partner, err := s.writableScope(ctx, proc)
	if err != nil {
		return nil, err
	}
	entry, err := s.partners.Transaction(ctx, partner.ID, id)
	if errors.Is(err, partners.ErrNotFound) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no transaction of this partner with this transaction_id"))
	}
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	reversal, err := s.reversePartnerTransaction(ctx, msg.GetIdempotencyKey(), entry, msg.GetReason())
	if err != nil {
		return nil, s.partnerErr(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.AllianceServiceReverseTransactionResponse{Transaction: partnerTransaction(reversal)}), nil
}

// reversePartnerTransaction reverses a transaction at a partner's hotel
// (see bookings.Service.ReverseAtPartner), for the calling request.
func (s *Server) reversePartnerTransaction(ctx context.Context, key string, e partners.Entry, reason string) (ledger.Transaction, error) {
	v, err := s.rules(ctx)
	if err != nil {
		return ledger.Transaction{}, err
	}
	return s.service.ReverseAtPartner(ctx, request(ctx, key), v, e, reason)
}

func (s allianceService) ListPartnerActivity(ctx context.Context, req *connect.Request[loyaltyv1.ListPartnerActivityRequest]) (*connect.Response[loyaltyv1.ListPartnerActivityResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	partnerID, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkID("property_id", msg.GetPropertyId(), false); err != nil {
		return nil, err
	}
	if msg.GetPageSize() < 0 || msg.GetPageSize() > partners.MaxPageSize {
		return nil, badField("page_size", "must be 0 (the default, %d) to %d", partners.DefaultPageSize, partners.MaxPageSize)
	}
	if len(msg.GetPageToken()) > 300 {
		return nil, badField("page_token", "is not a token this service returned")
	}
	q := partners.ActivityQuery{PropertyID: msg.GetPropertyId(), PageSize: int(msg.GetPageSize()), PageToken: msg.GetPageToken(),
		ByRecorded: msg.GetByRecordedTime()}
	if msg.GetFrom() != nil {
		q.From = msg.GetFrom().AsTime()
	}
	if msg.GetTo() != nil {
		q.To = msg.GetTo().AsTime()
	}
	if !q.From.IsZero() && !q.To.IsZero() && !q.From.Before(q.To) {
		return nil, badField("to", "must be after from")
	}
	entries, next, err := s.partners.Activity(ctx, partnerID, q)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	currency, err := s.currency(ctx, partnerID)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.ListPartnerActivityResponse{NextPageToken: next}
	for _, e := range entries {
		out.Transactions = append(out.Transactions, entryTransaction(e, currency))
	}
	return connect.NewResponse(out), nil
}

func (s allianceService) GetSettlementPreview(ctx context.Context, req *connect.Request[loyaltyv1.GetSettlementPreviewRequest]) (*connect.Response[loyaltyv1.GetSettlementPreviewResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	partnerID, err := scope(ctx)
	if err != nil {
		return nil, err
	}
	if msg.GetFrom() == nil {
		return nil, badField("from", "is required")
	}
	if msg.GetTo() == nil {
		return nil, badField("to", "is required")
	}
	st, err := s.partners.Settlement(ctx, partnerID, msg.GetFrom().AsTime(), msg.GetTo().AsTime())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.GetSettlementPreviewResponse{Settlement: protoSettlement(st)}), nil
}

func protoSettlement(st partners.Settlement) *loyaltyv1.Settlement {
	money := func(d decimal.Decimal) *loyaltyv1.Money {
		return &loyaltyv1.Money{CurrencyCode: st.Currency, Amount: d.StringFixed(partners.SettlementPlaces(st.Currency))}
	}
	out := &loyaltyv1.Settlement{PartnerId: st.PartnerID, From: timestamppb.New(st.From), To: timestamppb.New(st.To),
		CurrencyCode: st.Currency, PointsIssued: st.PointsIssued, PointsRedeemed: st.PointsRedeemed,
		ReversedPointsIssued: st.ReversedPointsIssued, ReversedPointsRedeemed: st.ReversedPointsRedeemed,
		OwedToProgramme: money(st.OwedToProgramme), OwedToPartner: money(st.OwedToPartner), Net: money(st.Net)}
	out.DueTo = st.DueTo
	for _, l := range st.Lines {
		out.Lines = append(out.Lines, &loyaltyv1.SettlementLine{RateVersion: int32(l.RateVersion),
			IssueRate: l.IssueRate.String(), ReimbursementRate: l.ReimbursementRate.String(),
			PointsIssued: l.PointsIssued, PointsRedeemed: l.PointsRedeemed,
			ReversedPointsIssued: l.ReversedPointsIssued, ReversedPointsRedeemed: l.ReversedPointsRedeemed,
			OwedToProgramme: l.OwedToProgramme.String(), OwedToPartner: l.OwedToPartner.String()})
	}
	return out
}

// partnerTransaction shows a ledger transaction at a partner's hotel as
// the partner sees it: no balance, no other accounts.
func partnerTransaction(txn ledger.Transaction) *loyaltyv1.PartnerTransaction {
	m := txmeta.Decode(txn.Metadata)
	out := &loyaltyv1.PartnerTransaction{
		TransactionId: txn.ID.String(), Kind: protoKinds[m.Kind], MemberNumber: m.Member, PropertyId: m.PropertyID,
		StayId: m.StayID, PointsIssued: m.PartnerPointsIssued, PointsRedeemed: m.PartnerPointsRedeemed,
		RateVersion: int32(m.RateVersion), Amount: &loyaltyv1.Money{CurrencyCode: m.Currency, Amount: m.Money},
		EffectiveAt: timestamppb.New(txn.EffectiveAt), RecordedAt: timestamppb.New(txn.RecordedAt), Description: m.Description,
	}
	for _, l := range m.Breakdown {
		out.Breakdown = append(out.Breakdown, &loyaltyv1.BreakdownLine{Rule: l.Rule, Description: l.Description, Points: l.Points})
	}
	if txn.ReversesID != uuid.Nil {
		out.ReversesTransactionId = txn.ReversesID.String()
	}
	return out
}

var entryKinds = map[partners.Kind]loyaltyv1.TransactionKind{
	partners.KindAward:      loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY,
	partners.KindRedemption: loyaltyv1.TransactionKind_TRANSACTION_KIND_REDEMPTION,
	partners.KindReversal:   loyaltyv1.TransactionKind_TRANSACTION_KIND_REVERSAL,
}

func entryTransaction(e partners.Entry, currency string) *loyaltyv1.PartnerTransaction {
	out := &loyaltyv1.PartnerTransaction{
		TransactionId: e.TransactionID.String(), Kind: entryKinds[e.Kind], MemberNumber: e.MemberNumber, PropertyId: e.PropertyID,
		StayId: e.StayID, PointsIssued: e.PointsIssued, PointsRedeemed: e.PointsRedeemed, RateVersion: int32(e.RateVersion),
		Amount:      &loyaltyv1.Money{CurrencyCode: currency, Amount: e.Amount.String()},
		EffectiveAt: timestamppb.New(e.EffectiveAt), RecordedAt: timestamppb.New(e.RecordedAt),
	}
	if e.ReversesID != uuid.Nil {
		out.ReversesTransactionId = e.ReversesID.String()
	}
	return out
}
