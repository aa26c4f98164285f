package rpc

import (
	"context"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// CloseMembership closes a membership (members.Store.Close): the holds
// released, the balance forfeited or the debt written off, the personal
// data erased. A replay with the same key answers the first answer; a
// closed member under another key is MEMBERSHIP_CLOSED.
func (s memberService) CloseMembership(ctx context.Context, req *connect.Request[loyaltyv1.CloseMembershipRequest]) (*connect.Response[loyaltyv1.CloseMembershipResponse], error) {
	msg := req.Msg
	if err := checkIdempotencyKey(msg.GetIdempotencyKey()); err != nil {
		return nil, err
	}
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	if err := checkReason(msg.GetReason()); err != nil {
		return nil, err
	}
	c, err := s.members.Close(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetMemberNumber(), msg.GetReason())
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.CloseMembershipResponse{MemberNumber: c.MemberNumber, ClosedAt: timestamppb.New(c.ClosedAt),
		ReleasedPoints: c.ReleasedPoints, ForfeitedPoints: c.ForfeitedPoints, WrittenOffPoints: c.WrittenOffPoints}
	if c.TransactionID != uuid.Nil {
		out.TransactionId = c.TransactionID.String()
	}
	return connect.NewResponse(out), nil
}
