package rpc

import (
	"context"
	"strings"
	"unicode"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/members"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// maxPageTokenLength bounds a page token before it is decoded: the tokens
// this service issues are far shorter.
const maxPageTokenLength = 128

// GetMemberHistory answers every change to a member's profile, oldest
// first, with each field's value before and after, the key that made it,
// when and why (admin keys only: roles).
func (s memberService) GetMemberHistory(ctx context.Context, req *connect.Request[loyaltyv1.GetMemberHistoryRequest]) (*connect.Response[loyaltyv1.GetMemberHistoryResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	if msg.GetPageSize() < 0 || msg.GetPageSize() > members.MaxHistoryPageSize {
		return nil, badField("page_size", "must be between 0 and %d", members.MaxHistoryPageSize)
	}
	if len(msg.GetPageToken()) > maxPageTokenLength {
		return nil, badField("page_token", "is not a token this service issued")
	}
	page, err := s.members.History(ctx, msg.GetMemberNumber(), int(msg.GetPageSize()), msg.GetPageToken())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.GetMemberHistoryResponse{NextPageToken: page.NextPageToken}
	for _, e := range page.Entries {
		c := &loyaltyv1.MemberChange{ChangedAt: timestamppb.New(e.ChangedAt), ChangedBy: e.ChangedBy,
			Kind: strings.ToUpper(string(e.Change.Kind)), Reason: e.Change.Reason}
		for _, name := range e.Change.FieldNames() {
			f := e.Change.Fields[name]
			c.Fields = append(c.Fields, &loyaltyv1.FieldChange{Field: jsonName(name), Before: f.Before, After: f.After})
		}
		out.Changes = append(out.Changes, c)
	}
	return connect.NewResponse(out), nil
}

// checkChangeReason checks the optional reason of a profile change: at
// most members.MaxReasonLength characters of printable text (no control
// characters, line breaks or tabs: it is shown on one line of a history).
func checkChangeReason(reason string) error {
	if utf8.RuneCountInString(reason) > members.MaxReasonLength {
		return badField("reason", "at most %d characters", members.MaxReasonLength)
	}
	for i, r := range reason {
		if !unicode.IsGraphic(r) {
			return badField("reason", "must be printable text: no control or format characters, tabs or line breaks (U+%04X at byte %d)", r, i)
		}
	}
	return nil
}

// jsonName spells a profile field as the contract's JSON does: full_name
// is fullName.
func jsonName(field string) string {
	parts := strings.Split(field, "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
