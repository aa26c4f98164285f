package rpc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/statements"
)

// maxStatementDays bounds a statement's period.
const maxStatementDays = 366

// statementFont loads the PDF statements' font once it is there: a font
// installed after the server started is found at the next export, and a
// loaded one is not read again.
type statementFont struct {
	path string
	mu   sync.Mutex
	font statements.Font
}

func (f *statementFont) get() (statements.Font, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.font.Path != "" {
		return f.font, nil
	}
	font, err := statements.LoadFont(f.path)
	if err != nil {
		return statements.Font{}, err
	}
	f.font = font
	return font, nil
}

// ExportStatement renders a member's statement of a period as CSV or PDF.
func (s memberService) ExportStatement(ctx context.Context, req *connect.Request[loyaltyv1.ExportStatementRequest]) (*connect.Response[loyaltyv1.ExportStatementResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	format := msg.GetFormat()
	switch format {
	case loyaltyv1.StatementFormat_STATEMENT_FORMAT_UNSPECIFIED, loyaltyv1.StatementFormat_STATEMENT_FORMAT_CSV,
		loyaltyv1.StatementFormat_STATEMENT_FORMAT_PDF:
	default:
		return nil, badField("format", "must be STATEMENT_FORMAT_CSV or STATEMENT_FORMAT_PDF")
	}
	now := s.now()
	from, to, err := statementPeriod(msg.GetFrom(), msg.GetTo(), now)
	if err != nil {
		return nil, err
	}
	var font statements.Font
	if format == loyaltyv1.StatementFormat_STATEMENT_FORMAT_PDF {
		// Before any read: without the font there is nothing to answer.
		if font, err = s.statementFont.get(); err != nil {
			s.log.WarnContext(ctx, "PDF statement refused: no font", "procedure", proc, "error", err)
			return nil, connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
				"PDF statements are not available: the server's statement font (-statement-font or LOYALTY_STATEMENT_FONT, default %s) cannot be used; CSV statements are", statements.DefaultFontPath))
		}
	}
	v, err := s.rules(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	zone, err := time.LoadLocation(v.Programme.TimeZone)
	if err != nil {
		return nil, s.internal(ctx, proc, fmt.Errorf("programme time zone %q: %w", v.Programme.TimeZone, err))
	}
	st, err := statements.Gather(ctx, s.ledger, s.members, statements.Request{
		ProgrammeName: s.programmeName, MemberNumber: msg.GetMemberNumber(), From: from, To: to, Now: now, Zone: zone})
	var tooMany *statements.TooManyTransactionsError
	if errors.As(err, &tooMany) {
		e := connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"the period has more than %d transactions: export it in shorter periods", tooMany.Max))
		addInfo(e, "STATEMENT_TOO_LONG", map[string]string{"max_transactions": fmt.Sprint(tooMany.Max)})
		return nil, e
	}
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	// Who read the member's personal data is logged by logPersonalReads.

	var buf bytes.Buffer
	out := &loyaltyv1.ExportStatementResponse{Transactions: int32(len(st.Transactions))}
	name := fmt.Sprintf("statement-%s-%s--%s", st.MemberNumber, from.In(zone).Format(time.DateOnly), to.In(zone).Format(time.DateOnly))
	if format == loyaltyv1.StatementFormat_STATEMENT_FORMAT_PDF {
		err = statements.PDF(&buf, st, font)
		out.ContentType, out.FileName = statements.PDFContentType, name+".pdf"
	} else {
		err = statements.CSV(&buf, st)
		out.ContentType, out.FileName = statements.CSVContentType, name+".csv"
	}
	if err != nil {
		return nil, s.internal(ctx, proc, err)
	}
	out.Content = buf.Bytes()
	return connect.NewResponse(out), nil
}

// statementPeriod reads a statement's period (from, to]: to defaults to
// now and may not be later; from defaults to a year before to, is before
// to and at most maxStatementDays earlier.
func statementPeriod(fromTS, toTS *timestamppb.Timestamp, now time.Time) (time.Time, time.Time, error) {
	to := now
	if toTS != nil {
		t, err := pastInstant("to", toTS, now)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		// Within the clock skew pastInstant allows, "now" by the caller's
		// clock is now.
		if t.Before(now) {
			to = t
		}
	}
	from := to.AddDate(-1, 0, 0)
	if fromTS != nil {
		t, err := pastInstant("from", fromTS, now)
		if err != nil {
			return time.Time{}, time.Time{}, err
		}
		from = t
	}
	if !from.Before(to) {
		return time.Time{}, time.Time{}, badField("from", "is %s, not before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	if to.Sub(from) > maxStatementDays*24*time.Hour {
		return time.Time{}, time.Time{}, badField("from", "is %s, more than %d days before to (%s): export a longer time in several periods",
			from.Format(time.RFC3339), maxStatementDays, to.Format(time.RFC3339))
	}
	return from, to, nil
}
