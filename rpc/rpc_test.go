package rpc_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/rpc"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// env is a real server (HTTP/2 over TLS, so gRPC works too) on a fresh
// database, with an admin key and a booking-channel key.
type env struct {
	ctx        context.Context
	db         *database.DB
	ledger     *ledger.Ledger
	server     *httptest.Server
	rpc        *rpc.Server
	adminKey   string
	bookingKey string
	bookingID  string
	clock      *testclock.Clock
}

func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvOn(t, dbtest.New(t))
}

// newEnvOn is newEnv on the database db.
func newEnvOn(t *testing.T, db *database.DB) *env {
	t.Helper()
	return newEnvWith(t, db, nil)
}

// newEnvWith is newEnvOn with the server's Config changed by configure
// (nil: as it is).
func newEnvWith(t *testing.T, db *database.DB, configure func(*rpc.Config)) *env {
	t.Helper()
	ctx := context.Background()
	clock := testclock.Ticking(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), time.Millisecond)
	// Every write announces itself, as in loyaltyd.
	l := ledger.New(db, ledger.Options{Clock: clock.Now, Outbox: events.OfTransaction})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	keys := apikeys.New(l, clock.Now)
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range []programmes.Property{
		{ID: "SH-HQ-001", Name: "Shanghai Hongqiao"},
		{ID: "P1", Name: "Beijing Sanlitun", TimeZone: "Asia/Shanghai"},
		{ID: "NYC-1", Name: "New York Midtown", TimeZone: "America/New_York"},
	} {
		if _, err := progs.PutProperty(ctx, "test", "property-"+p.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	cfg := rpc.Config{Ledger: l, Members: members.New(l, clock.Now), Keys: keys, Programmes: progs, Clock: clock.Now}
	if configure != nil {
		configure(&cfg)
	}
	srv, err := rpc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(srv.Handler())
	ts.EnableHTTP2 = true
	ts.StartTLS()
	t.Cleanup(ts.Close)
	_, adminSecret, err := keys.EnsureAdmin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	booking, bookingSecret, err := keys.Create(ctx, "test", "booking-key", apikeys.CreateRequest{Name: "web", Role: apikeys.RoleBookingChannel})
	if err != nil {
		t.Fatal(err)
	}
	return &env{ctx: ctx, db: db, ledger: l, server: ts, rpc: srv, adminKey: adminSecret, bookingKey: bookingSecret, bookingID: booking.ID, clock: clock}
}

// advanceTo moves the service's clock forward to at (never back).
func (e *env) advanceTo(at time.Time) {
	if d := at.Sub(e.clock.Now()); d > 0 {
		e.clock.Advance(d)
	}
}

type clients struct {
	members loyaltyv1connect.MemberServiceClient
	booking loyaltyv1connect.BookingServiceClient
	admin   loyaltyv1connect.AdminServiceClient
}

// protocols are the wire protocols every end-to-end test runs over.
var protocols = []struct {
	name string
	opts []connect.ClientOption
}{
	{"connect", nil},
	{"grpc", []connect.ClientOption{connect.WithGRPC()}},
}

func (e *env) clients(key string, opts ...connect.ClientOption) clients {
	if key != "" {
		opts = append(opts, connect.WithInterceptors(bearer(key)))
	}
	hc, url := e.server.Client(), e.server.URL
	return clients{
		members: loyaltyv1connect.NewMemberServiceClient(hc, url, opts...),
		booking: loyaltyv1connect.NewBookingServiceClient(hc, url, opts...),
		admin:   loyaltyv1connect.NewAdminServiceClient(hc, url, opts...),
	}
}

// bearer sends key with every call, unary or streaming.
func bearer(key string) connect.Interceptor { return bearerKey(key) }

type bearerKey string

func (k bearerKey) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(k))
		return next(ctx, req)
	}
}

func (k bearerKey) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(k))
		return conn
	}
}

func (bearerKey) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

func (e *env) transactionCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM transactions`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *env) verify(t *testing.T) {
	t.Helper()
	found, err := e.ledger.Verify(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range found {
		t.Errorf("discrepancy: %s", d)
	}
	partnerFound, err := partners.New(e.ledger, e.clock.Now).Verify(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range partnerFound {
		t.Errorf("partner discrepancy: %s", d)
	}
}

func (e *env) enroll(t *testing.T, c clients, key string) string {
	t.Helper()
	res, err := c.members.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{
		IdempotencyKey: key, FullName: "Li Wei", Email: "li.wei@example.com", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP,
	}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetMember().GetMemberNumber()
}

func stayRequest(key, member, stayID string, charges ...string) *loyaltyv1.RecordStayRequest {
	req := &loyaltyv1.RecordStayRequest{IdempotencyKey: key, MemberNumber: member, PropertyId: "SH-HQ-001", StayId: stayID,
		ArrivalDate: "2026-11-01", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}
	for _, c := range charges {
		req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: c}})
	}
	req.DepartureDate = time.Date(2026, 11, 1+len(charges), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
	return req
}

// wantCode asserts a Connect error code and returns the error.
func wantCode(t *testing.T, err error, code connect.Code) *connect.Error {
	t.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) || ce.Code() != code {
		t.Fatalf("got %v, want code %s", err, code)
	}
	return ce
}

// badRequestField is the field a BadRequest detail names.
func badRequestField(t *testing.T, ce *connect.Error) string {
	t.Helper()
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			t.Fatal(err)
		}
		if br, ok := v.(*errdetails.BadRequest); ok && len(br.GetFieldViolations()) > 0 {
			return br.GetFieldViolations()[0].GetField()
		}
	}
	t.Fatalf("no BadRequest detail in %v", ce)
	return ""
}

func errorInfo(t *testing.T, ce *connect.Error) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range ce.Details() {
		v, err := d.Value()
		if err != nil {
			t.Fatal(err)
		}
		if info, ok := v.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	t.Fatalf("no ErrorInfo detail in %v", ce)
	return nil
}
