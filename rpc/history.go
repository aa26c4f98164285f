package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// GetMemberHistory is not built yet (issue 23): it answers UNIMPLEMENTED.
func (s memberService) GetMemberHistory(context.Context, *connect.Request[loyaltyv1.GetMemberHistoryRequest]) (*connect.Response[loyaltyv1.GetMemberHistoryResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("GetMemberHistory is not available yet"))
}
