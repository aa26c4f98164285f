package rpc

import (
	"context"
	"log/slog"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// personalData are the procedures whose answer holds a member's personal
// data: the profile (name, e-mail, phone), the history of its values, the
// statement (which names the member), or the confirmation that a family
// name is the member's. Each answer is logged with the key that read it
// (logPersonalReads). Calls not here answer member numbers, points and
// stays but no personal field: ListActivity and GetTransaction (a
// transaction's description is the caller's text, not a profile field),
// the bookings, the events (no personal data by design).
var personalData = map[string]bool{
	loyaltyv1connect.MemberServiceEnrollMemberProcedure:      true,
	loyaltyv1connect.MemberServiceGetMemberProcedure:         true,
	loyaltyv1connect.MemberServiceUpdateMemberProcedure:      true,
	loyaltyv1connect.MemberServiceGetMemberHistoryProcedure:  true,
	loyaltyv1connect.MemberServiceExportStatementProcedure:   true,
	loyaltyv1connect.AllianceServiceGetMemberStatusProcedure: true,
}

// personalDataRead is the message of the log line of each such answer.
const personalDataRead = "personal data read"

// logPersonalReads logs one line for each answer of a personal-data
// procedure that succeeds (a refusal shows nothing): the API key's id and
// role, the procedure and the member number; never the values. It runs
// after authenticate, which put the caller in ctx. A replayed write
// answers the profile again and is logged again.
func (s *Server) logPersonalReads(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		res, err := next(ctx, req)
		procedure := req.Spec().Procedure
		if err != nil || !personalData[procedure] {
			return res, err
		}
		key := caller(ctx)
		s.log.LogAttrs(ctx, slog.LevelInfo, personalDataRead, slog.String("key_id", key.ID), slog.String("role", string(key.Role)),
			slog.String("procedure", procedure), slog.String("member_number", memberNumberOf(req.Any(), res.Any())))
		return res, err
	}
}

// memberNumberOf is the member a request names, or, for an enrolment, the
// member its answer returns.
func memberNumberOf(request, response any) string {
	if r, ok := request.(interface{ GetMemberNumber() string }); ok && r.GetMemberNumber() != "" {
		return r.GetMemberNumber()
	}
	if r, ok := response.(interface{ GetMember() *loyaltyv1.Member }); ok {
		return r.GetMember().GetMemberNumber()
	}
	return ""
}
