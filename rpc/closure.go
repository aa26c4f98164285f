package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// CloseMembership is not built yet (issue 23): it answers UNIMPLEMENTED.
func (s memberService) CloseMembership(context.Context, *connect.Request[loyaltyv1.CloseMembershipRequest]) (*connect.Response[loyaltyv1.CloseMembershipResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("CloseMembership is not available yet"))
}
