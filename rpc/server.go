// Package rpc serves the loyalty.v1 Connect services (gRPC, gRPC-Web and
// Connect on one handler): it authenticates callers, checks their role,
// validates requests, calls the programme rules and the ledger, and maps
// every error to a Connect code a client can act on.
package rpc

import (
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// MaxRequestBytes bounds every request message.
const MaxRequestBytes = 64 << 10

// Config is what the server needs.
type Config struct {
	Ledger    *ledger.Ledger
	Members   *members.Store
	Keys      *apikeys.Store
	Programme programme.Programme
	// Clock is the time the rules are evaluated at; nil means time.Now.
	Clock  func() time.Time
	Logger *slog.Logger
}

// Server implements the loyalty.v1 services.
type Server struct {
	ledger    *ledger.Ledger
	members   *members.Store
	keys      *apikeys.Store
	programme programme.Programme
	location  *time.Location
	now       func() time.Time
	log       *slog.Logger
}

// New returns a server. It fails when the programme's time zone is unknown.
func New(cfg Config) (*Server, error) {
	loc, err := time.LoadLocation(cfg.Programme.TimeZone)
	if err != nil {
		return nil, err
	}
	s := &Server{ledger: cfg.Ledger, members: cfg.Members, keys: cfg.Keys, programme: cfg.Programme,
		location: loc, now: cfg.Clock, log: cfg.Logger}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// Services are the fully qualified names of the services served.
var Services = []string{
	loyaltyv1connect.MemberServiceName,
	loyaltyv1connect.BookingServiceName,
	loyaltyv1connect.AdminServiceName,
}

// Handler routes the services, gRPC health checking and server reflection.
// Health and reflection need no credentials; every service call does.
func (s *Server) Handler(interceptors ...connect.Interceptor) http.Handler {
	opts := []connect.HandlerOption{
		connect.WithInterceptors(append(interceptors, connect.UnaryInterceptorFunc(s.authenticate))...),
		connect.WithReadMaxBytes(MaxRequestBytes),
	}
	mux := http.NewServeMux()
	mux.Handle(loyaltyv1connect.NewMemberServiceHandler(memberService{s}, opts...))
	mux.Handle(loyaltyv1connect.NewBookingServiceHandler(bookingService{s}, opts...))
	mux.Handle(loyaltyv1connect.NewAdminServiceHandler(adminService{s}, opts...))
	mux.Handle(grpchealth.NewHandler(grpchealth.NewStaticChecker(Services...)))
	reflector := grpcreflect.NewStaticReflector(Services...)
	mux.Handle(grpcreflect.NewHandlerV1(reflector))
	mux.Handle(grpcreflect.NewHandlerV1Alpha(reflector))
	return mux
}
