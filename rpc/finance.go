package rpc

import (
	"context"
	"encoding/hex"
	"errors"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/finance"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

type financeService struct{ *Server }

var _ loyaltyv1connect.FinanceServiceHandler = financeService{}

// maxDecimalLength bounds a decimal string of a request.
const maxDecimalLength = 32

var groupings = map[loyaltyv1.RollForwardGrouping]finance.GroupBy{
	loyaltyv1.RollForwardGrouping_ROLL_FORWARD_GROUPING_UNSPECIFIED: finance.GroupBySource,
	loyaltyv1.RollForwardGrouping_ROLL_FORWARD_GROUPING_SOURCE:      finance.GroupBySource,
	loyaltyv1.RollForwardGrouping_ROLL_FORWARD_GROUPING_PROPERTY:    finance.GroupByProperty,
	loyaltyv1.RollForwardGrouping_ROLL_FORWARD_GROUPING_PARTNER:     finance.GroupByPartner,
}

// optionalTime is a request's timestamp, zero when unset.
func optionalTime(field string, ts *timestamppb.Timestamp) (time.Time, error) {
	if ts == nil {
		return time.Time{}, nil
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, badField(field, "is not a valid timestamp")
	}
	t := ts.AsTime()
	if t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, badField(field, "year out of range 2000-2200")
	}
	return t, nil
}

func utcDate(field, s string) (time.Time, error) {
	d, err := time.Parse(time.DateOnly, s)
	if err != nil || len(s) != len(time.DateOnly) {
		return time.Time{}, badField(field, "must be a date YYYY-MM-DD, got %q", clip(s))
	}
	if d.Year() < 2000 || d.Year() > 2200 {
		return time.Time{}, badField(field, "year out of range 2000-2200")
	}
	return d, nil
}

func trialLines(in []finance.TrialLine) []*loyaltyv1.TrialBalanceLine {
	out := make([]*loyaltyv1.TrialBalanceLine, len(in))
	for i, l := range in {
		out[i] = &loyaltyv1.TrialBalanceLine{Account: l.Account, AccountClass: l.Class, NormalSide: l.NormalSide,
			Debit: l.Debit, Credit: l.Credit, Balance: l.Balance, Postings: l.Postings}
	}
	return out
}

func (s financeService) GetTrialBalance(ctx context.Context, req *connect.Request[loyaltyv1.GetTrialBalanceRequest]) (*connect.Response[loyaltyv1.GetTrialBalanceResponse], error) {
	msg := req.Msg
	asOf, err := optionalTime("as_of", msg.GetAsOf())
	if err != nil {
		return nil, err
	}
	tb, err := s.finance.TrialBalance(ctx, asOf, finance.TrialOptions{IndividualMembers: msg.GetIndividualMembers(),
		PageSize: int(msg.GetPageSize()), PageToken: msg.GetPageToken()})
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&loyaltyv1.GetTrialBalanceResponse{
		AsOf: timestamppb.New(tb.AsOf), Lines: trialLines(tb.Lines), TotalDebit: tb.TotalDebit, TotalCredit: tb.TotalCredit,
		Total: tb.Total, MemberLines: trialLines(tb.Members), NextPageToken: tb.NextPageToken, Basis: finance.Basis,
	}), nil
}

func (s financeService) GetRollForward(ctx context.Context, req *connect.Request[loyaltyv1.GetRollForwardRequest]) (*connect.Response[loyaltyv1.GetRollForwardResponse], error) {
	msg := req.Msg
	from, err := optionalTime("from", msg.GetFrom())
	if err != nil {
		return nil, err
	}
	if msg.GetTo() == nil {
		return nil, badField("to", "is required")
	}
	to, err := optionalTime("to", msg.GetTo())
	if err != nil {
		return nil, err
	}
	groupBy, ok := groupings[msg.GetGroupBy()]
	if !ok {
		return nil, badField("group_by", "unknown grouping %d", msg.GetGroupBy())
	}
	rf, err := s.finance.RollForward(ctx, from, to, groupBy)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.GetRollForwardResponse{
		To: timestamppb.New(rf.To), GroupBy: msg.GetGroupBy(), CurrencyCode: rf.Currency,
		OpeningPoints: rf.OpeningPoints, OpeningValuePerPoint: rf.OpeningValue.String(), OpeningMoney: rf.OpeningMoney.String(),
		MovementPoints: rf.MovementPoints, MovementMoney: rf.MovementMoney.String(), RevaluationMoney: rf.RevaluationMoney.String(),
		ClosingPoints: rf.ClosingPoints, ClosingValuePerPoint: rf.ClosingValue.String(), ClosingMoney: rf.ClosingMoney.String(),
		Balanced: rf.Balanced, Basis: rf.Basis,
	}
	if !rf.From.IsZero() {
		out.From = timestamppb.New(rf.From)
	}
	for _, l := range rf.Lines {
		out.Lines = append(out.Lines, &loyaltyv1.RollForwardLine{Category: l.Category, Detail: l.Detail, Dimension: l.Dimension,
			Points: l.Points, Money: l.Money.String(), Postings: l.Postings})
	}
	return connect.NewResponse(out), nil
}

func (s financeService) Reconcile(ctx context.Context, req *connect.Request[loyaltyv1.ReconcileRequest]) (*connect.Response[loyaltyv1.ReconcileResponse], error) {
	rec, err := s.finance.Reconcile(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ReconcileResponse{AsOf: timestamppb.New(rec.AsOf), Ok: rec.OK(), SealsChecked: int32(rec.SealsChecked)}
	for _, d := range rec.Discrepancies {
		out.Discrepancies = append(out.Discrepancies, toProtoDiscrepancy(d))
	}
	return connect.NewResponse(out), nil
}

func toProtoDiscrepancy(d finance.Discrepancy) *loyaltyv1.Discrepancy {
	pd := &loyaltyv1.Discrepancy{Check: d.Check, Account: d.Account, Expected: d.Expected, Actual: d.Actual, Detail: d.Detail}
	if !d.Day.IsZero() {
		pd.Day = d.Day.Format(time.DateOnly)
	}
	if d.TransactionID != uuid.Nil {
		pd.TransactionId = d.TransactionID.String()
	}
	return pd
}

// settlementPeriod reads a required period (from, to].
func settlementPeriod(fromTS, toTS *timestamppb.Timestamp) (time.Time, time.Time, error) {
	if fromTS == nil {
		return time.Time{}, time.Time{}, badField("from", "is required")
	}
	if toTS == nil {
		return time.Time{}, time.Time{}, badField("to", "is required")
	}
	from, err := optionalTime("from", fromTS)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	to, err := optionalTime("to", toTS)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return from, to, nil
}

func (s financeService) GetPartnerStatement(ctx context.Context, req *connect.Request[loyaltyv1.GetPartnerStatementRequest]) (*connect.Response[loyaltyv1.GetPartnerStatementResponse], error) {
	msg := req.Msg
	if err := checkID("partner_id", msg.GetPartnerId(), true); err != nil {
		return nil, err
	}
	from, to, err := settlementPeriod(msg.GetFrom(), msg.GetTo())
	if err != nil {
		return nil, err
	}
	st, err := s.finance.PartnerStatement(ctx, msg.GetPartnerId(), from, to)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&loyaltyv1.GetPartnerStatementResponse{Statement: protoSettlement(st)}), nil
}

func (s financeService) ListPartnerStatements(ctx context.Context, req *connect.Request[loyaltyv1.ListPartnerStatementsRequest]) (*connect.Response[loyaltyv1.ListPartnerStatementsResponse], error) {
	from, to, err := settlementPeriod(req.Msg.GetFrom(), req.Msg.GetTo())
	if err != nil {
		return nil, err
	}
	all, err := s.finance.PartnerStatements(ctx, from, to)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ListPartnerStatementsResponse{TiesToRollForward: all.Ties}
	for _, st := range all.Statements {
		out.Statements = append(out.Statements, protoSettlement(st))
	}
	for _, d := range all.Discrepancies {
		out.Discrepancies = append(out.Discrepancies, toProtoDiscrepancy(d))
	}
	return connect.NewResponse(out), nil
}

func toProtoPointValue(v finance.PointValue) *loyaltyv1.PointValue {
	out := &loyaltyv1.PointValue{ValuePerPoint: v.Value.String(), CurrencyCode: v.Currency, CreatedBy: v.CreatedBy}
	if !v.EffectiveOn.IsZero() {
		out.EffectiveOn = v.EffectiveOn.Format(time.DateOnly)
	}
	if !v.CreatedAt.IsZero() {
		out.CreatedAt = timestamppb.New(v.CreatedAt)
	}
	return out
}

func (s financeService) SetPointValue(ctx context.Context, req *connect.Request[loyaltyv1.SetPointValueRequest]) (*connect.Response[loyaltyv1.SetPointValueResponse], error) {
	msg := req.Msg
	on, err := utcDate("effective_on", msg.GetEffectiveOn())
	if err != nil {
		return nil, err
	}
	raw := msg.GetValuePerPoint()
	if raw == "" || len(raw) > maxDecimalLength {
		return nil, badField("value_per_point", "is required: a decimal of at most %d characters, e.g. \"0.01\"", maxDecimalLength)
	}
	value, err := decimal.NewFromString(raw)
	if err != nil || !plainDecimal(raw) {
		return nil, badField("value_per_point", "must be a plain decimal such as \"0.012\", got %q", clip(raw))
	}
	v, err := s.finance.SetPointValue(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), on, value, msg.GetCurrencyCode())
	if errors.Is(err, finance.ErrValueConflict) {
		return nil, connect.NewError(connect.CodeFailedPrecondition, errors.New("a different value is already set for this date: versions are never changed"))
	}
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&loyaltyv1.SetPointValueResponse{PointValue: toProtoPointValue(v)}), nil
}

// plainDecimal accepts digits with at most one '.', no sign, no exponent.
func plainDecimal(s string) bool {
	dot := false
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
		case r == '.' && !dot && i > 0 && i < len(s)-1:
			dot = true
		default:
			return false
		}
	}
	return s != ""
}

func (s financeService) ListPointValues(ctx context.Context, req *connect.Request[loyaltyv1.ListPointValuesRequest]) (*connect.Response[loyaltyv1.ListPointValuesResponse], error) {
	values, err := s.finance.PointValues(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ListPointValuesResponse{}
	for _, v := range values {
		out.PointValues = append(out.PointValues, toProtoPointValue(v))
	}
	return connect.NewResponse(out), nil
}

func (s financeService) ListSeals(ctx context.Context, req *connect.Request[loyaltyv1.ListSealsRequest]) (*connect.Response[loyaltyv1.ListSealsResponse], error) {
	msg := req.Msg
	var from, to time.Time
	var err error
	if msg.GetFromDay() != "" {
		if from, err = utcDate("from_day", msg.GetFromDay()); err != nil {
			return nil, err
		}
	}
	if msg.GetToDay() != "" {
		if to, err = utcDate("to_day", msg.GetToDay()); err != nil {
			return nil, err
		}
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		return nil, badField("to_day", "must be after from_day (%s), got %s", msg.GetFromDay(), msg.GetToDay())
	}
	size := int(msg.GetPageSize())
	if size < 0 || size > finance.MaxPageSize {
		return nil, badField("page_size", "must be 0 (the default, %d) to %d", finance.DefaultPageSize, finance.MaxPageSize)
	}
	if size == 0 {
		size = finance.DefaultPageSize
	}
	// One more than the page: whether another follows.
	seals, err := s.finance.Seals(ctx, from, to, size+1)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ListSealsResponse{}
	if len(seals) > size {
		seals = seals[:size]
		out.NextFromDay = seals[size-1].Day.AddDate(0, 0, 1).Format(time.DateOnly)
	}
	for _, sl := range seals {
		out.Seals = append(out.Seals, &loyaltyv1.Seal{Day: sl.Day.Format(time.DateOnly), Transactions: sl.Transactions,
			ContentHash: hex.EncodeToString(sl.ContentHash), Seal: hex.EncodeToString(sl.Seal), SealedAt: timestamppb.New(sl.SealedAt)})
	}
	return connect.NewResponse(out), nil
}
