// Package rpc serves the loyalty.v1 Connect services (gRPC, gRPC-Web and
// Connect on one handler): it authenticates callers, checks their role,
// validates requests, calls the programme rules and the ledger, and maps
// every error to a Connect code a client can act on.
package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/statements"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// MaxRequestBytes bounds every request message but a batch's
// (MaxBatchRequestBytes).
const MaxRequestBytes = 64 << 10

// Config is what the server needs.
type Config struct {
	Ledger     *ledger.Ledger
	Members    *members.Store
	Keys       *apikeys.Store
	Programmes *programmes.Store
	// Partners nil means a store on Ledger.
	Partners *partners.Store
	// Bookings nil means a store on Ledger.
	Bookings *bookings.Store
	// Events nil means a store on Ledger's database.
	Events *events.Store
	// Webhooks nil means a store on Ledger.
	Webhooks *webhooks.Store
	// Streams tunes SubscribeEvents.
	Streams StreamOptions
	// Clock is the time the rules are evaluated at; nil means time.Now.
	Clock  func() time.Time
	Logger *slog.Logger
	// StatementFont is the TrueType font (.ttf, with CJK glyphs) PDF
	// statements embed; empty means statements.DefaultFontPath. It is read
	// at the first PDF export; while it cannot be, PDF exports answer
	// FAILED_PRECONDITION and CSV ones work.
	StatementFont string
	// ProgrammeName titles statements; empty means
	// statements.DefaultProgrammeName.
	ProgrammeName string
	// Refused, when set, hears of every call refused for its key before
	// its body was read (the interceptors never see those), for metrics.
	Refused func(procedure string, code connect.Code)
	// Limits bound a call on the server's side; zero fields mean the
	// defaults (DefaultLimits).
	Limits Limits
}

// Limits bound a call whatever deadline its client gave, so that a
// database that stops answering holds no request for ever: past them the
// answer is UNAVAILABLE (retry with the same idempotency key).
type Limits struct {
	// Call bounds a unary call (event streams have StreamOptions).
	Call time.Duration
	// KeyLookup bounds reading the caller's API key for an event stream
	// (a unary call's is within Call).
	KeyLookup time.Duration
	// Recognitions bounds each partner's failed member recognitions
	// (DefaultRecognitionLimit when zero).
	Recognitions RecognitionLimit
}

// DefaultLimits: a unary call ends within 25 s, under the HTTP server's
// 30 s write timeout, so that the client hears the answer rather than a
// reset stream; the key lookup, one indexed read, within 10 s.
var DefaultLimits = Limits{Call: 25 * time.Second, KeyLookup: 10 * time.Second}

func (l Limits) withDefaults() Limits {
	if l.Call <= 0 {
		l.Call = DefaultLimits.Call
	}
	if l.KeyLookup <= 0 {
		l.KeyLookup = DefaultLimits.KeyLookup
	}
	return l
}

// Server implements the loyalty.v1 services.
type Server struct {
	ledger     *ledger.Ledger
	members    *members.Store
	keys       *apikeys.Store
	programmes *programmes.Store
	partners   *partners.Store
	bookings   *bookings.Store
	service    *bookings.Service
	finance    *finance.Reports
	events     *events.Store
	webhooks   *webhooks.Store
	streamOpts StreamOptions
	streams    *streams
	tail       *tail
	refused    func(procedure string, code connect.Code)
	limits     Limits
	// recognitions counts each partner's failed member recognitions.
	recognitions *recognitionGuard
	now          func() time.Time
	log          *slog.Logger

	statementFont *statementFont
	programmeName string
}

// New returns a server.
func New(cfg Config) (*Server, error) {
	if cfg.Ledger == nil || cfg.Members == nil || cfg.Keys == nil || cfg.Programmes == nil {
		return nil, errors.New("rpc: Config needs Ledger, Members, Keys and Programmes")
	}
	s := &Server{ledger: cfg.Ledger, members: cfg.Members, keys: cfg.Keys, programmes: cfg.Programmes,
		partners: cfg.Partners, bookings: cfg.Bookings, events: cfg.Events, webhooks: cfg.Webhooks, streamOpts: cfg.Streams.withDefaults(),
		refused: cfg.Refused, limits: cfg.Limits.withDefaults(), now: cfg.Clock, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	s.statementFont, s.programmeName = &statementFont{path: cfg.StatementFont}, cfg.ProgrammeName
	if s.statementFont.path == "" {
		s.statementFont.path = statements.DefaultFontPath
	}
	if s.partners == nil {
		s.partners = partners.New(cfg.Ledger, cfg.Clock)
	}
	if s.bookings == nil {
		s.bookings = bookings.New(cfg.Ledger, cfg.Clock)
	}
	s.service = bookings.NewService(cfg.Ledger, cfg.Members, s.partners, s.bookings, s.now)
	if s.log == nil {
		s.log = slog.Default()
	}
	s.finance = finance.New(cfg.Ledger, finance.Options{Clock: s.now})
	if s.events == nil {
		s.events = events.NewStore(cfg.Ledger.DB())
	}
	if s.webhooks == nil {
		s.webhooks = webhooks.NewStore(cfg.Ledger, cfg.Clock)
	}
	s.recognitions = newRecognitionGuard(s.limits.Recognitions)
	s.streams = newStreams(s.streamOpts.MaxStreams)
	s.tail = newTail(s.events, s.streamOpts.Poll, s.log)
	return s, nil
}

// Services are the fully qualified names of the services served.
var Services = []string{
	loyaltyv1connect.MemberServiceName,
	loyaltyv1connect.BookingServiceName,
	loyaltyv1connect.AdminServiceName,
	loyaltyv1connect.AllianceServiceName,
	loyaltyv1connect.FinanceServiceName,
	loyaltyv1connect.EventServiceName,
	loyaltyv1connect.WebhookServiceName,
}

// Handler routes the services, gRPC health checking and server reflection.
// Health and reflection need no credentials; every service call does.
func (s *Server) Handler(interceptors ...connect.Interceptor) http.Handler {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(append(interceptors, connect.UnaryInterceptorFunc(jsonFieldNames), connect.UnaryInterceptorFunc(s.authenticate),
			connect.UnaryInterceptorFunc(saneRequest), connect.UnaryInterceptorFunc(s.logPersonalReads), streamRoles{s})...),
		connect.WithReadMaxBytes(MaxRequestBytes),
		// Answers are small: compressing them costs more CPU than it saves.
		connect.WithCompressMinBytes(4 << 10),
		gzipCompression(),
	}
	opts = append(opts, codecs()...)
	mux := http.NewServeMux()
	errs := connect.NewErrorWriter(opts...)
	for _, service := range []func() (string, http.Handler){
		func() (string, http.Handler) {
			return loyaltyv1connect.NewMemberServiceHandler(memberService{s}, opts...)
		},
		func() (string, http.Handler) {
			return withBatchLimit(opts, func(opts ...connect.HandlerOption) (string, http.Handler) {
				return loyaltyv1connect.NewBookingServiceHandler(bookingService{s}, opts...)
			})
		},
		func() (string, http.Handler) {
			return loyaltyv1connect.NewAdminServiceHandler(adminService{s}, opts...)
		},
		func() (string, http.Handler) {
			return withBatchLimit(opts, func(opts ...connect.HandlerOption) (string, http.Handler) {
				return loyaltyv1connect.NewAllianceServiceHandler(allianceService{s}, opts...)
			})
		},
		func() (string, http.Handler) {
			return loyaltyv1connect.NewFinanceServiceHandler(financeService{s}, opts...)
		},
		func() (string, http.Handler) {
			path, h := loyaltyv1connect.NewEventServiceHandler(eventService{s}, opts...)
			return path, noDeadlines(loyaltyv1connect.EventServiceSubscribeEventsProcedure, h)
		},
		func() (string, http.Handler) {
			return loyaltyv1connect.NewWebhookServiceHandler(webhookService{s}, opts...)
		},
	} {
		path, h := service()
		mux.Handle(path, s.requireKey(errs, h))
	}
	health := &databaseHealth{db: s.ledger.DB(), services: grpchealth.NewStaticChecker(Services...)}
	mux.Handle(grpchealth.NewHandler(health))
	// The same answer for probes that speak plain HTTP (a load balancer's,
	// Kubernetes' httpGet).
	mux.HandleFunc("GET /readyz", health.ready)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { plainText(w, http.StatusOK, "ok") })
	// The health service too: grpcurl and buf curl find it by reflection.
	reflector := grpcreflect.NewStaticReflector(slices.Concat(Services, []string{grpchealth.HealthV1ServiceName})...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return mux
}

// rules returns the programme version in force now.
func (s *Server) rules(ctx context.Context) (programmes.Version, error) {
	return s.programmes.At(ctx, s.now())
}

// property returns a property the service knows; an unknown one is a bad
// field of the request.
func (s *Server) property(ctx context.Context, id string) (programmes.Property, error) {
	if err := checkID("property_id", id, true); err != nil {
		return programmes.Property{}, err
	}
	p, err := s.programmes.Property(ctx, id)
	if errors.Is(err, programmes.ErrUnknownProperty) {
		// The contract's NOT_FOUND for an unknown property, naming the
		// field (a batch's row says which) as a refusal of a field does.
		bad := badField("property_id", "%q is not a property known to the service (AdminService.PutProperty adds one)", clip(id))
		e := connect.NewError(connect.CodeNotFound, fmt.Errorf("no property with this property_id, %q (AdminService.PutProperty adds one)", clip(id)))
		for _, d := range bad.Details() {
			e.AddDetail(d)
		}
		return programmes.Property{}, e
	}
	return p, err
}
