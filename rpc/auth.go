package rpc

import (
	"context"
	"crypto/sha256"
	"errors"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// roles says which key roles may call each procedure. A procedure missing
// here is refused to everyone: access is granted, never assumed.
var roles = map[string][]apikeys.Role{
	loyaltyv1connect.MemberServiceEnrollMemberProcedure:     {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceGetMemberProcedure:        {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceUpdateMemberProcedure:     {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceListActivityProcedure:     {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceGetTransactionProcedure:   {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceAwardSuggestionProcedure:  {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceGetTierHistoryProcedure:   {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceExportStatementProcedure:  {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceGetMemberHistoryProcedure: {apikeys.RoleAdmin},
	loyaltyv1connect.MemberServiceCloseMembershipProcedure:  {apikeys.RoleBookingChannel, apikeys.RoleAdmin},

	loyaltyv1connect.BookingServiceRecordStayProcedure:         {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceRecordStaysProcedure:        {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceRecordNoShowProcedure:       {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceRecordCancellationProcedure: {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServicePlaceGuaranteeProcedure:     {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceReleaseGuaranteeProcedure:   {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceRedeemProcedure:             {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceRecordLateCheckoutProcedure: {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceReverseTransactionProcedure: {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceGetBookingProcedure:         {apikeys.RoleBookingChannel, apikeys.RoleAdmin},
	loyaltyv1connect.BookingServiceCorrectStayProcedure:        {apikeys.RoleBookingChannel, apikeys.RoleAdmin},

	loyaltyv1connect.AdminServiceAdjustPointsProcedure:     {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceCreateApiKeyProcedure:     {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceRevokeApiKeyProcedure:     {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceListApiKeysProcedure:      {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServicePublishProgrammeProcedure: {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceGetProgrammeProcedure:     {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServicePutPropertyProcedure:      {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceSetTierProcedure:          {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceCreatePartnerProcedure:    {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceSuspendPartnerProcedure:   {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceReinstatePartnerProcedure: {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceSetPartnerRatesProcedure:  {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceGetPartnerProcedure:       {apikeys.RoleAdmin},
	loyaltyv1connect.AdminServiceListPartnersProcedure:     {apikeys.RoleAdmin},

	// Partner keys only, and nothing else is open to them: every call is
	// scoped to the key's partner (see alliance.go).
	loyaltyv1connect.AllianceServiceGetMemberStatusProcedure:      {apikeys.RolePartner},
	loyaltyv1connect.AllianceServiceAwardStayProcedure:            {apikeys.RolePartner},
	loyaltyv1connect.AllianceServiceAwardStaysProcedure:           {apikeys.RolePartner},
	loyaltyv1connect.AllianceServiceRedeemProcedure:               {apikeys.RolePartner},
	loyaltyv1connect.AllianceServiceReverseTransactionProcedure:   {apikeys.RolePartner},
	loyaltyv1connect.AllianceServiceListPartnerActivityProcedure:  {apikeys.RolePartner},
	loyaltyv1connect.AllianceServiceGetSettlementPreviewProcedure: {apikeys.RolePartner},

	loyaltyv1connect.FinanceServiceGetTrialBalanceProcedure:       {apikeys.RoleFinance, apikeys.RoleAdmin},
	loyaltyv1connect.FinanceServiceGetRollForwardProcedure:        {apikeys.RoleFinance, apikeys.RoleAdmin},
	loyaltyv1connect.FinanceServiceReconcileProcedure:             {apikeys.RoleFinance, apikeys.RoleAdmin},
	loyaltyv1connect.FinanceServiceSetPointValueProcedure:         {apikeys.RoleAdmin}, // finance reads; a book value is an admin's write
	loyaltyv1connect.FinanceServiceListPointValuesProcedure:       {apikeys.RoleFinance, apikeys.RoleAdmin},
	loyaltyv1connect.FinanceServiceListSealsProcedure:             {apikeys.RoleFinance, apikeys.RoleAdmin},
	loyaltyv1connect.FinanceServiceGetPartnerStatementProcedure:   {apikeys.RoleFinance, apikeys.RoleAdmin},
	loyaltyv1connect.FinanceServiceListPartnerStatementsProcedure: {apikeys.RoleFinance, apikeys.RoleAdmin},

	// Events name members and show every partner's activity: admins only.
	loyaltyv1connect.EventServiceListEventsProcedure:      {apikeys.RoleAdmin},
	loyaltyv1connect.EventServiceSubscribeEventsProcedure: {apikeys.RoleAdmin},

	loyaltyv1connect.WebhookServiceCreateWebhookEndpointProcedure: {apikeys.RoleAdmin},
	loyaltyv1connect.WebhookServiceListWebhookEndpointsProcedure:  {apikeys.RoleAdmin},
	loyaltyv1connect.WebhookServiceGetWebhookEndpointProcedure:    {apikeys.RoleAdmin},
	loyaltyv1connect.WebhookServiceUpdateWebhookEndpointProcedure: {apikeys.RoleAdmin},
	loyaltyv1connect.WebhookServiceDeleteWebhookEndpointProcedure: {apikeys.RoleAdmin},
	loyaltyv1connect.WebhookServiceRotateWebhookSecretProcedure:   {apikeys.RoleAdmin},
	loyaltyv1connect.WebhookServiceListWebhookDeliveriesProcedure: {apikeys.RoleAdmin},
	loyaltyv1connect.WebhookServiceRedeliverWebhookEventProcedure: {apikeys.RoleAdmin},
}

type callerKey struct{}

// caller is the authenticated key of the request.
func caller(ctx context.Context) apikeys.Key {
	k, ok := ctx.Value(callerKey{}).(apikeys.Key)
	if !ok {
		// Every handler runs behind authenticate; reaching here is a wiring bug.
		panic("rpc: handler called without an authenticated caller")
	}
	return k
}

// keyOf authenticates the bearer key of a request's Authorization header.
func (s *Server) keyOf(ctx context.Context, procedure, authorization string) (apikeys.Key, error) {
	// The scheme's name is case-insensitive (RFC 9110 11.1): some HTTP
	// libraries send "bearer".
	scheme, secret, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(secret) == "" {
		return apikeys.Key{}, connect.NewError(connect.CodeUnauthenticated, errors.New("send an API key as 'Authorization: Bearer <key>'"))
	}
	key, err := s.keys.Authenticate(ctx, strings.TrimSpace(secret))
	if errors.Is(err, apikeys.ErrUnauthenticated) {
		return apikeys.Key{}, connect.NewError(connect.CodeUnauthenticated, err)
	}
	if err != nil {
		return apikeys.Key{}, s.toConnect(ctx, procedure, err)
	}
	return key, nil
}

type authenticatedKey struct{}

// errDatabaseSilent is the cause of a context that a server-side bound
// ended: the database did not answer in time, not the client's deadline.
var errDatabaseSilent = errors.New("the database did not answer in time")

// noLimit is no bound at all.
const noLimit = time.Duration(math.MaxInt64)

// boundCall gives a unary call's request a context that ends after
// limit; an event stream (bounded by its own MaxDuration) is left as it
// is, and stream reports which it was.
func boundCall(r *http.Request, limit time.Duration) (_ *http.Request, cancel context.CancelFunc, stream bool) {
	if r.URL.Path == loyaltyv1connect.EventServiceSubscribeEventsProcedure {
		return r, func() {}, true
	}
	ctx, cancel := context.WithTimeoutCause(r.Context(), limit, errDatabaseSilent)
	return r.WithContext(ctx), cancel, false
}

// keyLookupContext bounds the key lookup by the client's deadline, when
// it is shorter than limit, else by limit (noLimit: only by what bounds
// the request already).
func keyLookupContext(r *http.Request, limit time.Duration) (context.Context, context.CancelFunc) {
	if d := clientTimeout(r.Header); d < limit {
		return context.WithTimeout(r.Context(), d)
	}
	if limit < noLimit {
		return context.WithTimeoutCause(r.Context(), limit, errDatabaseSilent)
	}
	return r.Context(), func() {}
}

// clientTimeout is the deadline the client sent in its headers, as
// Connect (Connect-Timeout-Ms) or gRPC and gRPC-Web (Grpc-Timeout) spell
// it; none, or one not understood, is noLimit (Connect itself refuses a
// malformed one).
func clientTimeout(h http.Header) time.Duration {
	if v := h.Get("Connect-Timeout-Ms"); v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 || len(v) > 10 {
			return noLimit
		}
		return time.Duration(ms) * time.Millisecond
	}
	v := h.Get("Grpc-Timeout")
	if len(v) < 2 || len(v) > 9 {
		return noLimit
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return noLimit
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return noLimit
	}
	if n > int64(noLimit/unit) {
		return noLimit
	}
	return time.Duration(n) * unit
}

// requireKey authenticates a request from its headers before its body is
// read: a caller without a valid key hears UNAUTHENTICATED, whatever it
// sent, and costs no decoding. It also bounds the call and the lookup
// (Limits): this runs before Connect applies the client's deadline, which
// it heeds for the lookup.
func (s *Server) requireKey(errs *connect.ErrorWriter, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r, cancel, stream := boundCall(r, s.limits.Call)
		defer cancel()
		// The client's deadline, when shorter, is DEADLINE_EXCEEDED; ours
		// is the database's silence, UNAVAILABLE. A unary call's lookup is
		// within the call's bound.
		lookupLimit := noLimit
		if stream {
			lookupLimit = s.limits.KeyLookup
		}
		lookup, cancelLookup := keyLookupContext(r, lookupLimit)
		key, err := s.keyOf(lookup, r.URL.Path, r.Header.Get("Authorization"))
		if err != nil && context.Cause(lookup) == errDatabaseSilent {
			err = unavailable()
		}
		cancelLookup()
		if err != nil {
			if s.refused != nil {
				s.refused(procedureLabel(r.URL.Path), connect.CodeOf(err))
			}
			_ = errs.Write(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), authenticatedKey{}, key)))
	})
}

// authenticate checks the caller's role for the procedure before any
// handler runs (the key itself was checked by requireKey).
func (s *Server) authenticate(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		procedure := req.Spec().Procedure
		key, err := s.permitted(ctx, procedure, req.Header())
		if err != nil {
			return nil, err
		}
		ctx = context.WithValue(ctx, callerKey{}, key)
		return next(context.WithValue(ctx, fingerprintKey{}, fingerprint(procedure, req.Any())), req)
	}
}

// permitted returns the caller's key if its role may call the procedure.
func (s *Server) permitted(ctx context.Context, procedure string, header http.Header) (apikeys.Key, error) {
	allowed, known := roles[procedure]
	if !known {
		return apikeys.Key{}, connect.NewError(connect.CodePermissionDenied, errors.New("this procedure is not open to any key"))
	}
	key, ok := ctx.Value(authenticatedKey{}).(apikeys.Key)
	if !ok {
		var err error
		if key, err = s.keyOf(ctx, procedure, header.Get("Authorization")); err != nil {
			return apikeys.Key{}, err
		}
	}
	if slices.Contains(allowed, key.Role) {
		return key, nil
	}
	return apikeys.Key{}, connect.NewError(connect.CodePermissionDenied,
		errors.New(withArticle(string(key.Role))+" key may not call "+procedure))
}

// streamRoles does for streams what authenticate does for unary calls,
// whose interceptors Connect does not run on streams. A stream's request
// is read by its handler, which checks it (saneMessage) itself.
type streamRoles struct{ s *Server }

func (streamRoles) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc { return next }

func (streamRoles) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (r streamRoles) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		key, err := r.s.permitted(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(context.WithValue(ctx, callerKey{}, key), conn)
	}
}

type fingerprintKey struct{}

// fingerprint identifies a request as the caller sent it. The ledger keys
// idempotency on it rather than on the postings the rules derive from it,
// which can change between a request and its retry (the member's tier may
// have moved in between).
func fingerprint(procedure string, msg any) []byte {
	m, ok := msg.(proto.Message)
	if !ok {
		return nil
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(append([]byte(procedure+"\x00"), b...))
	return sum[:]
}

func requestFingerprint(ctx context.Context) []byte {
	fp, _ := ctx.Value(fingerprintKey{}).([]byte)
	return fp
}

// unknownProcedure labels a refused call of a path that names no
// procedure.
const unknownProcedure = "unknown"

// procedureLabel is path as the metrics of refused calls name it: a
// procedure of ours, or unknownProcedure, so that callers without a key
// cannot add a series per path they make up.
func procedureLabel(path string) string {
	if _, ok := roles[path]; ok {
		return path
	}
	return unknownProcedure
}
