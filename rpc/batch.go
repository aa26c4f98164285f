package rpc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/ledger"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// Batches of stays (RecordStays, AwardStays): each row goes through its
// single call's own function (recordStay, awardStay), as that call with
// the row as its request, so that a row answers exactly what the call
// would; bookings.RunBatch decides which rows run when. The batch maps
// each row's answer to a result and never fails for one row.

// MaxBatchRequestBytes bounds a batch's request message: 1,000 stays of 30
// nights each, in JSON with ids and keys at their longest, are about
// 2.0 MiB (protojson varies its spacing a little).
const MaxBatchRequestBytes = 4 << 20

// batchProcedures are the procedures whose requests may be up to
// MaxBatchRequestBytes.
var batchProcedures = []string{
	loyaltyv1connect.BookingServiceRecordStaysProcedure,
	loyaltyv1connect.AllianceServiceAwardStaysProcedure,
}

// withBatchLimit is a service's handler whose batch procedures read up to
// MaxBatchRequestBytes, and the others as opts say: build makes the
// service's handler with the options given.
func withBatchLimit(opts []connect.HandlerOption, build func(...connect.HandlerOption) (string, http.Handler)) (string, http.Handler) {
	path, h := build(opts...)
	_, batch := build(append(slices.Clone(opts), connect.WithReadMaxBytes(MaxBatchRequestBytes))...)
	return path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slices.Contains(batchProcedures, r.URL.Path) {
			batch.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// rowResult is one row's answer.
type rowResult[T any] struct {
	status   loyaltyv1.StayRowStatus
	recorded T
	existing *loyaltyv1.RecordedOutcome
	err      *loyaltyv1.StayRowError
}

// stayBatch is a batch of one kind of stay: its rows, and how a row is
// ordered, fingerprinted and recorded.
type stayBatch[R proto.Message, T any] struct {
	// proc is the batch's procedure, single the procedure of one row as a
	// call of its own: a row's fingerprint is that call's, so that a row
	// and the same call with the same key are one request.
	proc, single string
	rows         []R
	order        func(R) bookings.BatchRow
	record       func(ctx context.Context, proc string, row R) (T, error)
	// done is the status of a row record answered: RECORDED, or
	// WOULD_RECORD for a dry run (validate_only).
	done loyaltyv1.StayRowStatus
}

// checkBatchSize refuses a batch of no rows or too many.
func checkBatchSize(n int) error {
	if n < 1 || n > bookings.MaxBatchRows {
		return badField("stays", "has %d entries: send 1 to %d stays per call", n, bookings.MaxBatchRows)
	}
	return nil
}

// run records every row and answers one result per row. It fails as a
// whole only when the database could not be reached before any row was
// recorded.
func (b stayBatch[R, T]) run(ctx context.Context, s *Server) ([]rowResult[T], error) {
	results := make([]rowResult[T], len(b.rows))
	order := make([]bookings.BatchRow, len(b.rows))
	for i, row := range b.rows {
		order[i] = b.order(row)
	}
	var desc protoreflect.MessageDescriptor
	if len(b.rows) > 0 {
		desc = b.rows[0].ProtoReflect().Descriptor()
	}
	skipped := bookings.RunBatch(ctx, order, bookings.BatchLanes, func(ctx context.Context, i int) bookings.RowState {
		row := b.rows[i]
		// The row's fingerprint, in place of the whole batch's.
		ctx = context.WithValue(ctx, fingerprintKey{}, fingerprint(b.single, row))
		out, err := b.record(ctx, b.proc, row)
		if err == nil {
			results[i] = rowResult[T]{status: b.done, recorded: out}
			return bookings.RowDone
		}
		var state bookings.RowState
		results[i], state = rowRefusal[T](ctx, s, b.proc, desc, i, err)
		return state
	})
	for _, sk := range skipped {
		results[sk.Row] = rowResult[T]{status: loyaltyv1.StayRowStatus_STAY_ROW_STATUS_REFUSED, err: notAttempted(results, sk)}
	}
	if len(skipped) > 0 && skipped[0].State == bookings.RowUnreachable && !slices.ContainsFunc(results, func(r rowResult[T]) bool {
		return r.status == b.done || r.status == loyaltyv1.StayRowStatus_STAY_ROW_STATUS_ALREADY_RECORDED
	}) {
		if err := ctx.Err(); err != nil {
			return nil, s.toConnect(ctx, b.proc, err)
		}
		return nil, connect.NewError(connect.CodeUnavailable, errors.New(
			"the database cannot be reached: no stay was recorded; send the call again as it was"))
	}
	return results, nil
}

// notAttempted says why a row was skipped.
func notAttempted[T any](results []rowResult[T], sk bookings.Skipped) *loyaltyv1.StayRowError {
	switch {
	case sk.Cause < 0:
		return &loyaltyv1.StayRowError{Code: connect.CodeCanceled.String(), Message: "not attempted: the call was cancelled; send this stay again with the same idempotency key"}
	case sk.State == bookings.RowUnreachable:
		return &loyaltyv1.StayRowError{Code: connect.CodeUnavailable.String(), Message: fmt.Sprintf(
			"not attempted: the database could not be reached (stays[%d]); send this stay again with the same idempotency key", sk.Cause)}
	}
	code := connect.CodeAborted.String()
	if e := results[sk.Cause].err; e != nil {
		code = e.GetCode()
	}
	return &loyaltyv1.StayRowError{Code: code, Message: fmt.Sprintf(
		"not attempted: stays[%d], of the same member, booking or idempotency key, was not recorded (%s); send both again in order with the same idempotency keys", sk.Cause, code)}
}

// rowRefusal is the result of row i, whose call answered err, and what it
// means for the rows after it. The code, field and message are the
// call's, the field spelt as JSON spells it from the batch's root
// ("stays[3].nights[0].roomCharge.amount", as jsonFieldNames spells the
// single call's).
func rowRefusal[T any](ctx context.Context, s *Server, proc string, row protoreflect.MessageDescriptor, i int, err error) (rowResult[T], bookings.RowState) {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		_ = errors.As(s.toConnect(ctx, proc, err), &ce)
	}
	var (
		field, reason string
		info          *errdetails.ErrorInfo
	)
	for _, d := range ce.Details() {
		switch v, _ := d.Value(); v := v.(type) {
		case *errdetails.BadRequest:
			if fv := v.GetFieldViolations(); len(fv) > 0 && field == "" {
				field = fmt.Sprintf("stays[%d].%s", i, jsonPath(row, fv[0].GetField()))
			}
		case *errdetails.ErrorInfo:
			info, reason = v, v.GetReason()
		}
	}
	if ce.Code() == connect.CodeAlreadyExists && reason == "BOOKING_OUTCOME_RECORDED" {
		md := info.GetMetadata()
		existing := &loyaltyv1.RecordedOutcome{Outcome: bookingOutcomes[bookings.Outcome(md["outcome"])], TransactionId: md["transaction_id"]}
		if at, err := time.Parse(time.RFC3339Nano, md["recorded_at"]); err == nil {
			existing.RecordedAt = timestamppb.New(at)
		}
		return rowResult[T]{status: loyaltyv1.StayRowStatus_STAY_ROW_STATUS_ALREADY_RECORDED, existing: existing}, bookings.RowDone
	}
	// As a single call's answer (jsonFieldNames).
	message := respellText(ce.Message(), fieldNamesOf(row))
	out := rowResult[T]{status: loyaltyv1.StayRowStatus_STAY_ROW_STATUS_REFUSED,
		err: &loyaltyv1.StayRowError{Code: ce.Code().String(), Field: field, Message: message, Reason: reason}}
	switch ce.Code() {
	case connect.CodeUnavailable:
		return out, bookings.RowUnreachable
	case connect.CodeAborted, connect.CodeDeadlineExceeded, connect.CodeCanceled, connect.CodeInternal, connect.CodeUnknown:
		return out, bookings.RowInDoubt
	}
	return out, bookings.RowDone
}

func (s bookingService) RecordStays(ctx context.Context, req *connect.Request[loyaltyv1.RecordStaysRequest]) (*connect.Response[loyaltyv1.RecordStaysResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkBatchSize(len(msg.GetStays())); err != nil {
		return nil, err
	}
	// What every row needs: a call without it fails as a whole.
	if _, err := s.rules(ctx); err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	record, done := s.recordStay, loyaltyv1.StayRowStatus_STAY_ROW_STATUS_RECORDED
	if msg.GetValidateOnly() {
		record, done = s.previewStay, loyaltyv1.StayRowStatus_STAY_ROW_STATUS_WOULD_RECORD
	}
	results, err := stayBatch[*loyaltyv1.RecordStayRequest, *loyaltyv1.RecordStayResponse]{
		proc: proc, single: loyaltyv1connect.BookingServiceRecordStayProcedure, rows: msg.GetStays(),
		order: func(r *loyaltyv1.RecordStayRequest) bookings.BatchRow {
			return bookings.BatchRow{MemberNumber: r.GetMemberNumber(), PropertyID: r.GetPropertyId(), StayID: r.GetStayId(), IdempotencyKey: r.GetIdempotencyKey()}
		},
		record: record, done: done,
	}.run(ctx, s.Server)
	if err != nil {
		return nil, err
	}
	out := &loyaltyv1.RecordStaysResponse{Results: make([]*loyaltyv1.StayRowResult, len(results))}
	for i, r := range results {
		out.Results[i] = &loyaltyv1.StayRowResult{Index: int32(i), Status: r.status, Recorded: r.recorded, Existing: r.existing, Error: r.err}
	}
	return connect.NewResponse(out), nil
}

func (s allianceService) AwardStays(ctx context.Context, req *connect.Request[loyaltyv1.AwardStaysRequest]) (*connect.Response[loyaltyv1.AwardStaysResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkBatchSize(len(msg.GetStays())); err != nil {
		return nil, err
	}
	// What every row needs: a call without it fails as a whole. A
	// suspended partner hears it once, not once per stay.
	if _, err := s.rules(ctx); err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if _, err := s.writableScope(ctx, proc); err != nil {
		return nil, err
	}
	record, done := s.awardStay, loyaltyv1.StayRowStatus_STAY_ROW_STATUS_RECORDED
	if msg.GetValidateOnly() {
		record, done = s.previewAward, loyaltyv1.StayRowStatus_STAY_ROW_STATUS_WOULD_RECORD
	}
	results, err := stayBatch[*loyaltyv1.AwardStayRequest, *loyaltyv1.AwardStayResponse]{
		proc: proc, single: loyaltyv1connect.AllianceServiceAwardStayProcedure, rows: msg.GetStays(),
		order: func(r *loyaltyv1.AwardStayRequest) bookings.BatchRow {
			return bookings.BatchRow{MemberNumber: r.GetMemberNumber(), PropertyID: r.GetPropertyId(), StayID: r.GetStayId(), IdempotencyKey: r.GetIdempotencyKey()}
		},
		record: record, done: done,
	}.run(ctx, s.Server)
	if err != nil {
		return nil, err
	}
	out := &loyaltyv1.AwardStaysResponse{Results: make([]*loyaltyv1.AwardStayRowResult, len(results))}
	for i, r := range results {
		out.Results[i] = &loyaltyv1.AwardStayRowResult{Index: int32(i), Status: r.status, Recorded: r.recorded, Existing: r.existing, Error: r.err}
	}
	return connect.NewResponse(out), nil
}

// Dry runs (validate_only): each row goes through its single call's
// checks (prepareStay, prepareAward: the same code, in the same order) and
// is computed by the plan the call would record (bookings.PreviewStay,
// PreviewPartnerStay); nothing is written.

// previewStay is recordStay without the write.
func (s bookingService) previewStay(ctx context.Context, proc string, msg *loyaltyv1.RecordStayRequest) (*loyaltyv1.RecordStayResponse, error) {
	c, err := s.prepareStay(ctx, proc, msg)
	if err != nil {
		return nil, err
	}
	if err := checkIdempotencyKey(msg.GetIdempotencyKey()); err != nil {
		return nil, err
	}
	res, err := s.service.PreviewStay(ctx, request(ctx, msg.GetIdempotencyKey()), c.version, c.property, c.stay)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.RecordStayResponse{Tier: tierOf(res.Tier)}
	if res.Transaction != nil {
		out.Transaction = toProtoTransaction(*res.Transaction)
		out.Transaction.TransactionId = "" // none was recorded
	}
	return out, nil
}

// previewAward is awardStay without the write.
func (s allianceService) previewAward(ctx context.Context, proc string, msg *loyaltyv1.AwardStayRequest) (*loyaltyv1.AwardStayResponse, error) {
	c, err := s.prepareAward(ctx, proc, msg)
	if err != nil {
		return nil, err
	}
	if err := checkIdempotencyKey(msg.GetIdempotencyKey()); err != nil {
		return nil, err
	}
	res, err := s.service.PreviewPartnerStay(ctx, request(ctx, msg.GetIdempotencyKey()), c.version, c.partner, c.rates, c.property, c.stay)
	if err != nil {
		return nil, s.partnerErr(ctx, proc, err)
	}
	out := &loyaltyv1.AwardStayResponse{Tier: tierOf(res.Tier)}
	if res.Transaction != nil {
		out.Transaction = partnerTransaction(*res.Transaction)
		out.Transaction.TransactionId = "" // none was recorded
	}
	return out, nil
}

// checkIdempotencyKey is the ledger's check of a write's key, which a dry
// run does not reach: required, at most ledger.MaxKeyLength bytes of
// printable ASCII.
func checkIdempotencyKey(key string) error {
	switch {
	case key == "":
		return badField("idempotency_key", "is required")
	case len(key) > ledger.MaxKeyLength:
		return badField("idempotency_key", "is %d bytes, at most %d", len(key), ledger.MaxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return badField("idempotency_key", "has a non-printable or non-ASCII byte at %d", i)
		}
	}
	return nil
}
