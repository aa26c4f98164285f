package rpc

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// ExportStatement is not built yet (issue 23): it answers UNIMPLEMENTED.
func (s memberService) ExportStatement(context.Context, *connect.Request[loyaltyv1.ExportStatementRequest]) (*connect.Response[loyaltyv1.ExportStatementResponse], error) {
	return nil, connect.NewError(connect.CodeUnimplemented, errors.New("ExportStatement is not available yet"))
}
