package rpc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// errorDomain names this service in ErrorInfo details.
const errorDomain = "loyalty.v1"

// badField is an InvalidArgument error with a BadRequest detail naming the
// field, the shape every validation failure takes.
func badField(field, format string, args ...any) *connect.Error {
	problem := fmt.Sprintf(format, args...)
	err := connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("%s: %s", field, problem))
	if detail, derr := connect.NewErrorDetail(&errdetails.BadRequest{
		FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: problem}},
	}); derr == nil {
		err.AddDetail(detail)
	}
	return err
}

// unavailable is the answer when the database cannot be reached, or did
// not answer in time: the outcome of a write is unknown.
func unavailable() *connect.Error {
	return connect.NewError(connect.CodeUnavailable, errors.New(
		"the database cannot be reached or the outcome is unknown: retry with the same idempotency key"))
}

// toConnect maps an error from the layers below to the Connect code a
// client can act on. Unknown errors are logged and become an Internal
// error that says nothing of SQL or Go.
func (s *Server) toConnect(ctx context.Context, procedure string, err error) error {
	if err == nil {
		return nil
	}
	var (
		connectErr  *connect.Error
		field       *ledger.FieldError
		progField   *programme.FieldError
		short       *ledger.InsufficientPointsError
		conflict    *ledger.IdempotencyConflictError
		reversed    *ledger.AlreadyReversedError
		holdState   *ledger.HoldStateError
		unknownAcct *ledger.UnknownAccountError
		recorded    *bookings.RecordedError
		bookField   *bookings.FieldError
		tooEarly    *bookings.TooEarlyError
		withdrawn   *bookings.WithdrawTooLateError
		price       *bookings.PriceChangedError
		noRates     *partners.NoRatesError
	)
	switch {
	case errors.As(err, &connectErr):
		return connectErr
	case errors.Is(err, members.ErrClosed), errors.Is(err, ledger.ErrAccountClosed):
		// Only a member's closure closes an account: a write that passed
		// the member's check before the closure meets the ledger's.
		e := connect.NewError(connect.CodeFailedPrecondition, errors.New("the membership is closed: no write is accepted for this member"))
		addInfo(e, "MEMBERSHIP_CLOSED", nil)
		return e
	case errors.As(err, &field):
		return badField(field.Field, "%s", field.Problem)
	case errors.As(err, &progField):
		return badField(progField.Field, "%s", progField.Problem)
	case errors.As(err, &short):
		e := connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"not enough points: %d available (%d posted, %d held), %d needed, short by %d",
			short.Available, short.Posted, short.Held, short.Requested, short.Shortfall))
		addInfo(e, "INSUFFICIENT_POINTS", map[string]string{
			"available_points": strconv.FormatInt(short.Available, 10),
			"posted_points":    strconv.FormatInt(short.Posted, 10),
			"held_points":      strconv.FormatInt(short.Held, 10),
			"requested_points": strconv.FormatInt(short.Requested, 10),
			"shortfall_points": strconv.FormatInt(short.Shortfall, 10),
		})
		return e
	case errors.As(err, &conflict):
		e := connect.NewError(connect.CodeAlreadyExists, fmt.Errorf(
			"idempotency key %q was already used for a different request", conflict.Key))
		addInfo(e, "IDEMPOTENCY_KEY_REUSED", map[string]string{"idempotency_key": conflict.Key})
		return e
	case errors.As(err, &recorded):
		explained := s.bookings.Explain(ctx, err)
		if errors.Is(explained, bookings.ErrAnotherMembersBooking) {
			return s.toConnect(ctx, procedure, explained)
		}
		return s.outcomeRecorded(explained)
	case errors.As(err, &bookField):
		return badField(bookField.Field, "%s", bookField.Problem)
	case errors.As(err, &tooEarly):
		e := connect.NewError(connect.CodeFailedPrecondition, errors.New(tooEarly.Error()))
		addInfo(e, "NO_SHOW_TOO_EARLY", map[string]string{"recordable_from": tooEarly.From.UTC().Format(time.RFC3339)})
		return e
	case errors.As(err, &withdrawn):
		e := connect.NewError(connect.CodeFailedPrecondition, errors.New(withdrawn.Error()))
		addInfo(e, "GUARANTEE_IN_FORCE", map[string]string{"normal_hold_end": withdrawn.NormalHoldEnd.UTC().Format(time.RFC3339)})
		return e
	case errors.As(err, &price):
		e := connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf("the price is %d points, not the one shown", price.Points))
		addInfo(e, "PRICE_CHANGED", map[string]string{"points": fmt.Sprint(price.Points)})
		return e
	case errors.Is(err, bookings.ErrAnotherMembersBooking):
		e := connect.NewError(connect.CodeFailedPrecondition, errors.New(
			"the booking with this property_id and stay_id is another member's (its recorded outcome or guarantee): check member_number and stay_id"))
		addInfo(e, "BOOKING_OF_ANOTHER_MEMBER", nil)
		return e
	case errors.Is(err, bookings.ErrBookingClosed):
		e := connect.NewError(connect.CodeFailedPrecondition, errors.New(bookings.ErrBookingClosed.Error()))
		addInfo(e, "BOOKING_CLOSED", nil)
		return e
	case errors.Is(err, bookings.ErrNothingToCorrect):
		return connect.NewError(connect.CodeNotFound, errors.New("the booking has no outcome to correct: record the stay with RecordStay"))
	case errors.Is(err, bookings.ErrPartnersOutcome):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(bookings.ErrPartnersOutcome.Error()))
	case errors.Is(err, bookings.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("nothing is recorded of a booking with this property_id and stay_id"))
	case errors.Is(err, bookings.ErrNoGuarantee):
		return connect.NewError(connect.CodeNotFound, errors.New("no guarantee for this stay"))
	case errors.As(err, &reversed):
		e := connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"transaction %s was already reversed by %s", reversed.TransactionID, reversed.ReversedByID))
		addInfo(e, "ALREADY_REVERSED", map[string]string{"reversed_by_transaction_id": reversed.ReversedByID.String()})
		return e
	case errors.As(err, &holdState):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New(holdState.Error()))
	case errors.Is(err, ledger.ErrNotReversible):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("a reversal cannot be reversed"))
	case errors.Is(err, ledger.ErrHoldExists):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("this stay already has an open guarantee: release it first"))
	case errors.Is(err, programmes.ErrNoVersion):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("no programme version is in force: publish one"))
	case errors.Is(err, members.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("no member with this member_number"))
	case errors.Is(err, apikeys.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("no API key with this key_id"))
	case errors.Is(err, partners.ErrSuspended):
		return connect.NewError(connect.CodePermissionDenied, errors.New("the partner is suspended: its writes are refused"))
	case errors.Is(err, partners.ErrExists):
		return connect.NewError(connect.CodeAlreadyExists, errors.New("a partner with this partner_id exists already"))
	case errors.Is(err, webhooks.ErrTooManyEndpoints):
		return connect.NewError(connect.CodeResourceExhausted, errors.New(webhooks.ErrTooManyEndpoints.Error()))
	case errors.Is(err, webhooks.ErrNoDelivery):
		return connect.NewError(connect.CodeNotFound, errors.New("the endpoint with this endpoint_id has no delivery of the event with this event_id: it was not for the endpoint (its types or partner), or it was pruned"))
	case errors.Is(err, webhooks.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("no webhook endpoint with this endpoint_id (or it was deleted)"))
	case errors.Is(err, partners.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("no partner with this partner_id"))
	case errors.As(err, &noRates):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"no partner rates are in force at %s (a stay's check-out, or the time a redemption is recorded): the partner's first rate version starts later, and nothing before it can be priced",
			noRates.At.Format(time.RFC3339)))
	case errors.Is(err, partners.ErrNoRates):
		return connect.NewError(connect.CodeFailedPrecondition, errors.New("no partner rates are in force at that time"))
	case errors.As(err, &unknownAcct):
		return connect.NewError(connect.CodeNotFound, errors.New("no such account"))
	case errors.Is(err, ledger.ErrNotFound):
		return connect.NewError(connect.CodeNotFound, errors.New("not found"))
	case database.Unavailable(err) || context.Cause(ctx) == errDatabaseSilent:
		// The second: the server's own bound on the call ran out
		// (Limits.Call), not the client's deadline.
		s.log.WarnContext(ctx, "database unavailable: answered UNAVAILABLE", "procedure", procedure, "error", err.Error())
		return unavailable()
	case errors.Is(err, database.ErrContention):
		return connect.NewError(connect.CodeAborted, errors.New("too much contention on these accounts; retry with the same idempotency key"))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, errors.New("deadline exceeded; retry with the same idempotency key"))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, errors.New("request canceled"))
	}
	return s.internal(ctx, procedure, err)
}

// outcomeRecorded answers a second outcome of a booking, explained
// (bookings.Store.Explain): ALREADY_EXISTS, with the outcome that took the
// booking and its transaction, so that a client that lost its first
// answer can find it.
func (s *Server) outcomeRecorded(err error) error {
	var recorded *bookings.RecordedError
	errors.As(err, &recorded)
	info := map[string]string{"property_id": recorded.PropertyID, "stay_id": recorded.StayID}
	msg := fmt.Sprintf("booking %s at %s already has an outcome", recorded.StayID, recorded.PropertyID)
	if recorded.Asked == bookings.LateCheckout {
		msg = fmt.Sprintf("a late check-out of booking %s at %s was already charged", recorded.StayID, recorded.PropertyID)
	}
	if existing := recorded.Existing; existing != nil {
		info["outcome"] = string(existing.Outcome)
		info["recorded_at"] = existing.RecordedAt.UTC().Format(time.RFC3339Nano)
		msg += fmt.Sprintf(": %s, recorded %s", existing.Outcome, existing.RecordedAt.UTC().Format(time.RFC3339))
		if existing.TransactionID != uuid.Nil {
			info["transaction_id"] = existing.TransactionID.String()
			msg += ", transaction " + existing.TransactionID.String() + " (to correct it, reverse that transaction first)"
		}
	}
	e := connect.NewError(connect.CodeAlreadyExists, errors.New(msg))
	addInfo(e, "BOOKING_OUTCOME_RECORDED", info)
	return e
}

// internal logs an unexpected error under a reference the client sees.
func (s *Server) internal(ctx context.Context, procedure string, err error) error {
	ref := uuid.NewString()
	s.log.ErrorContext(ctx, "internal error", "procedure", procedure, "reference", ref, "error", err)
	return connect.NewError(connect.CodeInternal, fmt.Errorf("internal error (reference %s)", ref))
}

func addInfo(e *connect.Error, reason string, metadata map[string]string) {
	if detail, err := connect.NewErrorDetail(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: metadata}); err == nil {
		e.AddDetail(detail)
	}
}
