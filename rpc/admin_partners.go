package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// ratesFromProto reads a PartnerRates message; problems name their field
// under "rates.".
func ratesFromProto(r *loyaltyv1.PartnerRates) (partners.Rates, error) {
	if r == nil {
		return partners.Rates{}, badField("rates", "is required")
	}
	dec := func(field, s string) (decimal.Decimal, error) {
		if len(s) > 40 {
			return decimal.Decimal{}, badField(field, "at most 40 characters")
		}
		d, err := decimal.NewFromString(s)
		if err != nil {
			return decimal.Decimal{}, badField(field, "must be a decimal string such as \"0.008\"")
		}
		return d, nil
	}
	var out partners.Rates
	var err error
	if out.IssueRate, err = dec("rates.issue_rate", r.GetIssueRate()); err != nil {
		return out, err
	}
	if out.ReimbursementRate, err = dec("rates.reimbursement_rate", r.GetReimbursementRate()); err != nil {
		return out, err
	}
	card := r.GetRateCard()
	if card == nil {
		return out, badField("rates.rate_card", "is required")
	}
	if out.Card.PointsPerCurrencyUnit, err = dec("rates.rate_card.points_per_currency_unit", card.GetPointsPerCurrencyUnit()); err != nil {
		return out, err
	}
	if len(card.GetTierMultiplier()) > 8 {
		return out, badField("rates.rate_card.tier_multiplier", "one entry per tier")
	}
	out.Card.TierMultiplier = map[programme.Tier]decimal.Decimal{}
	for tier, m := range card.GetTierMultiplier() {
		if len(tier) > 20 {
			return out, badField("rates.rate_card.tier_multiplier", "names a tier that does not exist (regular, silver, gold, platinum)")
		}
		if out.Card.TierMultiplier[programme.Tier(tier)], err = dec("rates.rate_card.tier_multiplier."+tier, m); err != nil {
			return out, err
		}
	}
	if r.GetEffectiveAt() != nil {
		out.EffectiveAt = r.GetEffectiveAt().AsTime()
	}
	return out, nil
}

func protoRates(r partners.Rates) *loyaltyv1.PartnerRates {
	card := &loyaltyv1.RateCard{PointsPerCurrencyUnit: r.Card.PointsPerCurrencyUnit.String(), TierMultiplier: map[string]string{}}
	for t, m := range r.Card.TierMultiplier {
		card.TierMultiplier[string(t)] = m.String()
	}
	return &loyaltyv1.PartnerRates{Version: int32(r.Version), EffectiveAt: timestamppb.New(r.EffectiveAt),
		IssueRate: r.IssueRate.String(), ReimbursementRate: r.ReimbursementRate.String(), RateCard: card,
		CreatedAt: timestamppb.New(r.CreatedAt), CreatedByKeyId: r.CreatedBy}
}

var partnerStatuses = map[partners.Status]loyaltyv1.PartnerStatus{
	partners.StatusActive:    loyaltyv1.PartnerStatus_PARTNER_STATUS_ACTIVE,
	partners.StatusSuspended: loyaltyv1.PartnerStatus_PARTNER_STATUS_SUSPENDED,
}

func protoPartner(p partners.Partner) *loyaltyv1.Partner {
	out := &loyaltyv1.Partner{PartnerId: p.ID, Name: p.Name, SettlementCurrency: p.Currency, Status: partnerStatuses[p.Status],
		StatusChangedAt: timestamppb.New(p.StatusChangedAt), StatusChangedByKeyId: p.StatusChangedBy, StatusReason: p.StatusReason,
		CreatedAt: timestamppb.New(p.CreatedAt)}
	for _, r := range p.Rates {
		out.Rates = append(out.Rates, protoRates(r))
	}
	return out
}

func (s adminService) CreatePartner(ctx context.Context, req *connect.Request[loyaltyv1.CreatePartnerRequest]) (*connect.Response[loyaltyv1.CreatePartnerResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	rates, err := ratesFromProto(msg.GetRates())
	if err != nil {
		return nil, err
	}
	p, err := s.partners.Create(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), partners.NewPartner{
		ID: msg.GetPartnerId(), Name: msg.GetName(), Currency: msg.GetSettlementCurrency(), Rates: rates})
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	s.log.InfoContext(ctx, "partner created", "partner_id", p.ID, "by", caller(ctx).ID)
	return connect.NewResponse(&loyaltyv1.CreatePartnerResponse{Partner: protoPartner(p)}), nil
}

func (s adminService) setPartnerStatus(ctx context.Context, proc, key, partnerID string, status partners.Status, reason string) (*loyaltyv1.Partner, error) {
	if err := checkReason(reason); err != nil {
		return nil, err
	}
	p, err := s.partners.SetStatus(ctx, caller(ctx).ID, key, partnerID, status, reason)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	s.log.InfoContext(ctx, "partner status set", "partner_id", p.ID, "status", p.Status, "by", caller(ctx).ID, "reason", reason)
	return protoPartner(p), nil
}

func (s adminService) SuspendPartner(ctx context.Context, req *connect.Request[loyaltyv1.SuspendPartnerRequest]) (*connect.Response[loyaltyv1.SuspendPartnerResponse], error) {
	p, err := s.setPartnerStatus(ctx, req.Spec().Procedure, req.Msg.GetIdempotencyKey(), req.Msg.GetPartnerId(), partners.StatusSuspended, req.Msg.GetReason())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&loyaltyv1.SuspendPartnerResponse{Partner: p}), nil
}

func (s adminService) ReinstatePartner(ctx context.Context, req *connect.Request[loyaltyv1.ReinstatePartnerRequest]) (*connect.Response[loyaltyv1.ReinstatePartnerResponse], error) {
	p, err := s.setPartnerStatus(ctx, req.Spec().Procedure, req.Msg.GetIdempotencyKey(), req.Msg.GetPartnerId(), partners.StatusActive, req.Msg.GetReason())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&loyaltyv1.ReinstatePartnerResponse{Partner: p}), nil
}

func (s adminService) SetPartnerRates(ctx context.Context, req *connect.Request[loyaltyv1.SetPartnerRatesRequest]) (*connect.Response[loyaltyv1.SetPartnerRatesResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	rates, err := ratesFromProto(msg.GetRates())
	if err != nil {
		return nil, err
	}
	r, err := s.partners.SetRates(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetPartnerId(), rates)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	s.log.InfoContext(ctx, "partner rates set", "partner_id", msg.GetPartnerId(), "version", r.Version, "effective_at", r.EffectiveAt, "by", caller(ctx).ID)
	return connect.NewResponse(&loyaltyv1.SetPartnerRatesResponse{Rates: protoRates(r)}), nil
}

func (s adminService) GetPartner(ctx context.Context, req *connect.Request[loyaltyv1.GetPartnerRequest]) (*connect.Response[loyaltyv1.GetPartnerResponse], error) {
	if err := partners.ValidateID(req.Msg.GetPartnerId()); err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	p, err := s.partners.Get(ctx, req.Msg.GetPartnerId())
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&loyaltyv1.GetPartnerResponse{Partner: protoPartner(p)}), nil
}

func (s adminService) ListPartners(ctx context.Context, req *connect.Request[loyaltyv1.ListPartnersRequest]) (*connect.Response[loyaltyv1.ListPartnersResponse], error) {
	list, err := s.partners.List(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ListPartnersResponse{}
	for _, p := range list {
		out.Partners = append(out.Partners, protoPartner(p))
	}
	return connect.NewResponse(out), nil
}

// knownPartner checks that a partner id a request names (a property's
// owner, a partner key's partner) is a partner the service knows.
func (s *Server) knownPartner(ctx context.Context, field, partnerID string) error {
	var fe *ledger.FieldError
	if err := partners.ValidateID(partnerID); errors.As(err, &fe) {
		return badField(field, "%s", fe.Problem)
	}
	_, err := s.partners.Status(ctx, partnerID)
	if errors.Is(err, partners.ErrNotFound) {
		return badField(field, "%q is not a partner (AdminService.CreatePartner adds one)", clip(partnerID))
	}
	return err
}
