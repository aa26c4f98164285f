package rpc

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	tierrules "github.com/loyalty-ledger/loyalty/tiers"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

type memberService struct{ *Server }

var _ loyaltyv1connect.MemberServiceHandler = memberService{}

func (s memberService) EnrollMember(ctx context.Context, req *connect.Request[loyaltyv1.EnrollMemberRequest]) (*connect.Response[loyaltyv1.EnrollMemberResponse], error) {
	msg := req.Msg
	ch, err := channel(msg.GetChannel())
	if err == nil {
		err = checkID("property_id", msg.GetPropertyId(), false)
	}
	if err != nil {
		return nil, err
	}
	if msg.GetPropertyId() != "" {
		// Where the member enrolled is a hotel the service knows.
		if _, err := s.property(ctx, msg.GetPropertyId()); err != nil {
			return nil, s.toConnect(ctx, req.Spec().Procedure, err)
		}
	}
	m, err := s.members.Enroll(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), members.Enrollment{
		FullName: msg.GetFullName(), Email: msg.GetEmail(), Phone: msg.GetPhone(), Channel: ch, PropertyID: msg.GetPropertyId(),
	})
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	// The member as enrolled, with the empty balance of a new account: a
	// replay returns exactly this, whatever happened to the member since.
	member := profile(m)
	member.Balance = &loyaltyv1.PointsBalance{}
	return connect.NewResponse(&loyaltyv1.EnrollMemberResponse{Member: member}), nil
}

func (s memberService) GetMember(ctx context.Context, req *connect.Request[loyaltyv1.GetMemberRequest]) (*connect.Response[loyaltyv1.GetMemberResponse], error) {
	proc := req.Spec().Procedure
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	rules, now := tierrules.FromProgramme(v.Programme), s.now()
	view, err := s.members.View(ctx, req.Msg.GetMemberNumber(), rules.WindowStart(now), now)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	member := profile(view.Member)
	member.Balance = toProtoBalance(view.Balance)
	member.TierStatus = tierStatus(view.Member, view.Activity, rules)
	member.PointsExpiry = pointsExpiry(view.Lots, v.Programme.Expiry, now)
	return connect.NewResponse(&loyaltyv1.GetMemberResponse{Member: member}), nil
}

// pointsExpiry sums the member's open lots by when they expire.
func pointsExpiry(lots []ledger.Lot, rules programme.ExpiryRules, now time.Time) *loyaltyv1.PointsExpiry {
	out := &loyaltyv1.PointsExpiry{Rule: rules.Rule, Months: int32(rules.Months)}
	for _, l := range lots { // nearest expiry first
		if l.ExpiresAt.IsZero() {
			continue
		}
		if out.NextExpiryAt == nil {
			out.NextExpiryAt = timestamppb.New(l.ExpiresAt)
		}
		if l.ExpiresAt.Equal(out.NextExpiryAt.AsTime()) {
			out.NextExpiryPoints += l.Open
		}
		within := l.ExpiresAt.Sub(now)
		if within <= 90*24*time.Hour {
			out.ExpiringWithin_90Days += l.Open
		}
		if within <= 60*24*time.Hour {
			out.ExpiringWithin_60Days += l.Open
		}
		if within <= 30*24*time.Hour {
			out.ExpiringWithin_30Days += l.Open
		}
	}
	return out
}

func (s memberService) UpdateMember(ctx context.Context, req *connect.Request[loyaltyv1.UpdateMemberRequest]) (*connect.Response[loyaltyv1.UpdateMemberResponse], error) {
	msg := req.Msg
	if err := checkChangeReason(msg.GetReason()); err != nil {
		return nil, err
	}
	m, err := s.members.Update(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetMemberNumber(), members.Update{
		FullName: msg.FullName, Email: msg.Email, Phone: msg.Phone, Reason: msg.GetReason(),
	})
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	// The profile as updated, without a balance: a replay returns exactly
	// this; GetMember gives the points.
	return connect.NewResponse(&loyaltyv1.UpdateMemberResponse{Member: profile(m)}), nil
}

func (s memberService) ListActivity(ctx context.Context, req *connect.Request[loyaltyv1.ListActivityRequest]) (*connect.Response[loyaltyv1.ListActivityResponse], error) {
	msg := req.Msg
	if msg.GetPageSize() < 0 || msg.GetPageSize() > ledger.MaxPageSize {
		return nil, badField("page_size", "must be between 0 and %d", ledger.MaxPageSize)
	}
	if _, err := s.members.Profile(ctx, msg.GetMemberNumber()); err != nil { // closed members too
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	page, err := s.ledger.Statement(ctx, programme.MemberAccount(msg.GetMemberNumber()).Code, int(msg.GetPageSize()), msg.GetPageToken())
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.ListActivityResponse{NextPageToken: page.NextPageToken}
	for _, e := range page.Entries {
		out.Transactions = append(out.Transactions, statementTransaction(e))
	}
	return connect.NewResponse(out), nil
}

// profile is a member's profile, without the points on their account.
func profile(m members.Member) *loyaltyv1.Member {
	return &loyaltyv1.Member{
		MemberNumber: m.Number,
		FullName:     m.FullName,
		Email:        m.Email,
		Phone:        m.Phone,
		Tier:         tiers[m.Tier],
		EnrolledAt:   timestamppb.New(m.EnrolledAt),
		ClosedAt:     timeOrUnset(m.ClosedAt),
	}
}

// timeOrUnset is t, or unset when t is zero.
func timeOrUnset(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func (s memberService) GetTransaction(ctx context.Context, req *connect.Request[loyaltyv1.GetTransactionRequest]) (*connect.Response[loyaltyv1.GetTransactionResponse], error) {
	id, err := uuid.Parse(req.Msg.GetTransactionId())
	if err != nil {
		return nil, badField("transaction_id", "is not a transaction id")
	}
	txn, err := s.ledger.Transaction(ctx, id)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&loyaltyv1.GetTransactionResponse{Transaction: toProtoTransaction(txn)}), nil
}

func (s memberService) AwardSuggestion(ctx context.Context, req *connect.Request[loyaltyv1.AwardSuggestionRequest]) (*connect.Response[loyaltyv1.AwardSuggestionResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	suggestion := strings.TrimSpace(msg.GetSuggestion())
	if suggestion == "" || utf8.RuneCountInString(suggestion) > maxReasonLength {
		return nil, badField("suggestion", "1 to %d characters", maxReasonLength)
	}
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	member, err := s.members.GetForWrite(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetMemberNumber())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	points, lines := v.Programme.AdoptedSuggestion()
	m := txmeta.Metadata{Kind: txmeta.KindAdjustment, Member: member.Number, Reason: suggestion, ProgrammeVersion: v.Number,
		Description: "Adopted suggestion: " + suggestion, Breakdown: txmeta.LinesOf(lines)}
	txn, err := s.post(ctx, msg.GetIdempotencyKey(), ledger.KindEarn, s.now(), []ledger.Posting{
		{Account: member.Account(), Amount: points},
		{Account: programme.AccountIssuedSuggestion, Amount: -points},
	}, m)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.AwardSuggestionResponse{Transaction: txn}), nil
}

func (s memberService) GetTierHistory(ctx context.Context, req *connect.Request[loyaltyv1.GetTierHistoryRequest]) (*connect.Response[loyaltyv1.GetTierHistoryResponse], error) {
	msg := req.Msg
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	size := int(msg.GetPageSize())
	if size < 0 || size > ledger.MaxPageSize {
		return nil, badField("page_size", "must be between 0 and %d", ledger.MaxPageSize)
	}
	if size == 0 {
		size = ledger.DefaultPageSize
	}
	if _, err := s.members.Profile(ctx, msg.GetMemberNumber()); err != nil { // closed members too
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	changes, err := s.members.TierHistory(ctx, msg.GetMemberNumber(), size)
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.GetTierHistoryResponse{}
	for _, c := range changes {
		out.Changes = append(out.Changes, &loyaltyv1.TierChange{FromTier: tiers[c.From], ToTier: tiers[c.To], Reason: c.Reason,
			EffectiveAt: timestamppb.New(c.EffectiveAt), QualifyingNights: int32(c.Nights), QualifyingPoints: c.Points,
			ChangedByKeyId: c.ChangedBy})
	}
	return connect.NewResponse(out), nil
}

// tierStatus is where the member stands with the tier rules, given the
// qualifying activity in the window up to now.
func tierStatus(m members.Member, activity tierrules.Activity, rules tierrules.Settings) *loyaltyv1.TierStatus {
	out := &loyaltyv1.TierStatus{
		QualifyingNights: int32(activity.Nights), QualifyingPoints: activity.Points,
		WindowStart: timestamppb.New(activity.WindowStart), WindowEnd: timestamppb.New(activity.WindowEnd),
		NextReviewAt: timestamppb.New(rules.ReviewDate(m.ForTierRules())),
	}
	if next, nights, points, ok := rules.Needed(m.Tier, activity); ok {
		out.NextTier, out.NightsToNextTier, out.PointsToNextTier = tiers[next], int32(nights), points
	}
	if m.Manual != nil {
		out.Manual = true
		if !m.Manual.Until.IsZero() {
			out.ManualUntil = timestamppb.New(m.Manual.Until)
		}
	}
	return out
}
