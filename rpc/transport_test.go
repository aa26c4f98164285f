package rpc_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"connectrpc.com/grpcreflect"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/rpc"
)

func TestReadOnlyCallsWorkOverHTTPGet(t *testing.T) {
	e := newEnv(t)
	member := e.enroll(t, e.clients(e.bookingKey), "enrol-1")

	// A generated client using GET for side-effect-free procedures.
	got, err := e.clients(e.bookingKey, connect.WithHTTPGet()).members.GetMember(e.ctx,
		connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil || got.Msg.GetMember().GetMemberNumber() != member {
		t.Fatalf("GET through the client: %v, %v", got, err)
	}

	// And by hand, as curl would.
	query := url.Values{"encoding": {"json"}, "message": {fmt.Sprintf(`{"memberNumber":%q}`, member)}}
	req, err := http.NewRequest(http.MethodGet, e.server.URL+"/loyalty.v1.MemberService/GetMember?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.bookingKey)
	res, err := e.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), `"memberNumber":"`+member+`"`) {
		t.Fatalf("GET by hand: %d %s", res.StatusCode, body)
	}
}

// postJSON POSTs body to procedure as a Connect JSON call by hand, with
// key, and returns the status and the body of the answer.
func (e *env) postJSON(t *testing.T, key, procedure, body string) (int, string) {
	t.Helper()
	return e.post(t, procedure, strings.NewReader(body), map[string]string{"Authorization": "Bearer " + key, "Content-Type": "application/json"})
}

// post POSTs body to procedure with these headers, as an HTTP client in
// another language would, and returns the status and the body answered.
func (e *env) post(t *testing.T, procedure string, body io.Reader, headers map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.server.URL+procedure, body)
	if err != nil {
		t.Fatal(err)
	}
	for name, value := range headers {
		req.Header.Set(name, value)
	}
	res, err := e.server.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(raw)
}

func TestHealthAndReflectionNeedNoKey(t *testing.T) {
	e := newEnv(t)
	health := grpchealth.NewClient(e.server.Client(), e.server.URL, connect.WithGRPC())
	for _, service := range append([]string{""}, rpc.Services...) {
		res, err := health.Check(e.ctx, &grpchealth.CheckRequest{Service: service})
		if err != nil || res.Status != grpchealth.StatusServing {
			t.Fatalf("health of %q: %v, %v", service, res, err)
		}
	}
	stream := grpcreflect.NewClient(e.server.Client(), e.server.URL).NewStream(e.ctx)
	defer stream.Close()
	names, err := stream.ListServices()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(slices.Clone(rpc.Services), grpchealth.HealthV1ServiceName) {
		if !slices.ContainsFunc(names, func(n protoreflect.FullName) bool { return string(n) == want }) {
			t.Fatalf("reflection lists %v, missing %s", names, want)
		}
	}
	// and describes it, as grpcurl asks.
	if files, err := stream.FileContainingSymbol(grpchealth.HealthV1ServiceName); err != nil || len(files) == 0 {
		t.Fatalf("reflection cannot describe %s: %v", grpchealth.HealthV1ServiceName, err)
	}
}

// TestWritesRefuseUnknownFields: a misspelt field in a write is refused
// with INVALID_ARGUMENT naming it, in JSON as the client spelt it and in
// binary by its number, and nothing is written; a read stays lenient.
func TestWritesRefuseUnknownFields(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	before := e.transactionCount(t)

	post := func(procedure, body string) (int, string) {
		t.Helper()
		return e.postJSON(t, e.bookingKey, procedure, body)
	}
	stay := `{"idempotencyKey":"stay-1","memberNumber":"` + member + `","propertyId":"SH-HQ-001","stayId":"B-1",` +
		`"arrivalDate":"2026-11-01","departureDate":"2026-11-02","nights":[{"roomCharge":{"currencyCode":"CNY","amount":"388.00"}}],` +
		`"channel":"BOOKING_CHANNEL_APP"`
	for _, tc := range []struct{ name, body, field string }{
		{"a misspelt field", stay + `,"bookedForSomeoneElse":true}`, "bookedForSomeoneElse"},
		{"a misspelt field in a nested message, named with its path", strings.Replace(stay, `"amount":"388.00"`, `"amount":"388.00","currency":"CNY"`, 1) + `}`,
			"nights[0].roomCharge.currency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post("/loyalty.v1.BookingService/RecordStay", tc.body)
			if status != http.StatusBadRequest || !strings.Contains(body, `"code":"invalid_argument"`) ||
				!strings.Contains(body, `unknown field \"`+tc.field+`\"`) {
				t.Fatalf("%d %s; want 400 invalid_argument naming %s", status, body, tc.field)
			}
		})
	}
	// Over gRPC, in binary: a field number the contract does not have.
	req := stayRequest("stay-2", member, "B-2", "388.00")
	req.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1))
	_, err := e.clients(e.bookingKey, connect.WithGRPC()).booking.RecordStay(e.ctx, connect.NewRequest(req))
	if ce := wantCode(t, err, connect.CodeInvalidArgument); !strings.Contains(ce.Message(), "unknown field number 99") {
		t.Fatalf("binary unknown field: %v", ce)
	}
	if n := e.transactionCount(t); n != before {
		t.Fatalf("%d transactions written by refused requests", n-before)
	}
	// The same stay spelt right is recorded.
	if status, body := post("/loyalty.v1.BookingService/RecordStay", stay+`,"bookedForOther":true}`); status != http.StatusOK {
		t.Fatalf("the stay spelt right: %d %s", status, body)
	}
	// An enum value by a name its enum does not have, named with its path
	// and the names it has.
	if status, body := post("/loyalty.v1.BookingService/RecordStay", strings.Replace(stay, "BOOKING_CHANNEL_APP", "BOOKING_CHANNEL_FOO", 1)+`}`); status != http.StatusBadRequest ||
		!strings.Contains(body, `channel: \"BOOKING_CHANNEL_FOO\" is not a value of BookingChannel (`) || !strings.Contains(body, "BOOKING_CHANNEL_APP") {
		t.Fatalf("a misspelt enum name: %d %s", status, body)
	}
	// A value of the wrong form, named with its path: a date where a
	// timestamp goes.
	if status, body := post("/loyalty.v1.BookingService/RecordNoShow", `{"idempotencyKey":"ns-1","memberNumber":"`+member+
		`","propertyId":"SH-HQ-001","stayId":"N-1","arrivalDate":"2026-11-20","nights":1,"bookedAt":"2026-11-01"}`); status != http.StatusBadRequest ||
		!strings.Contains(body, `bookedAt: invalid google.protobuf.Timestamp value \"2026-11-01\" (an RFC 3339 time with its zone`) {
		t.Fatalf("a date where a timestamp goes: %d %s", status, body)
	}
	// A read with a field it does not know answers.
	if status, body := post("/loyalty.v1.MemberService/GetMember", `{"memberNumber":"`+member+`","includeEverything":true}`); status != http.StatusOK {
		t.Fatalf("a lenient read: %d %s", status, body)
	}
}

// TestNoKeyIsRefusedBeforeTheBodyIsRead: without a valid key a request is
// UNAUTHENTICATED, however malformed or large its body: the key is checked
// from the headers before anything is decoded.
func TestNoKeyIsRefusedBeforeTheBodyIsRead(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ name, key, body string }{
		{"malformed JSON, no key", "", "{not json"},
		{"over 64 KiB, no key", "", `{"stayId":"` + strings.Repeat("x", 70<<10) + `"}`},
		{"malformed JSON, a wrong key", "lk_wrong", "{not json"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, e.server.URL+"/loyalty.v1.BookingService/RecordStay", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			res, err := e.server.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"code":"unauthenticated"`) {
				t.Fatalf("%d %s; want 401 unauthenticated", res.StatusCode, body)
			}
		})
	}
	// Over gRPC too, in the protocol's own way.
	_, err := e.clients("", connect.WithGRPC()).members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: "1000000001"}))
	wantCode(t, err, connect.CodeUnauthenticated)
}

// TestTheBearerSchemeIsCaseInsensitive: HTTP authentication schemes are
// case-insensitive (RFC 9110), and some client libraries send "bearer";
// any other scheme, or no key after it, is UNAUTHENTICATED.
func TestTheBearerSchemeIsCaseInsensitive(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, header string
		status       int
	}{
		{"Bearer", "Bearer " + e.bookingKey, http.StatusOK},
		{"bearer", "bearer " + e.bookingKey, http.StatusOK},
		{"BEARER", "BEARER " + e.bookingKey, http.StatusOK},
		{"Basic", "Basic " + e.bookingKey, http.StatusUnauthorized},
		{"the key alone", e.bookingKey, http.StatusUnauthorized},
		{"bearer and no key", "bearer  ", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.post(t, "/loyalty.v1.MemberService/GetMember", strings.NewReader(`{"memberNumber":"1000000001"}`),
				map[string]string{"Content-Type": "application/json", "Authorization": tc.header})
			// An authenticated call reaches the service: the member is not found.
			want := tc.status
			if want == http.StatusOK {
				want = http.StatusNotFound
			}
			if status != want {
				t.Fatalf("%d %s; want %d", status, body, want)
			}
		})
	}
}

// TestGzipRequestsAreTakenAndBombsRefused: a gzip-compressed request is
// decoded as any other (Content-Encoding, Connect's unary compression), and
// one that inflates past the request limit is RESOURCE_EXHAUSTED.
func TestGzipRequestsAreTakenAndBombsRefused(t *testing.T) {
	e := newEnv(t)
	post := func(body []byte) (int, string) {
		t.Helper()
		var zipped bytes.Buffer
		w := gzip.NewWriter(&zipped)
		if _, err := w.Write(body); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return e.post(t, "/loyalty.v1.BookingService/RecordStays", &zipped,
			map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip", "Authorization": "Bearer " + e.bookingKey})
	}
	// Decoded: the call itself refuses an empty batch, naming the field.
	if status, body := post([]byte(`{"stays":[]}`)); status != http.StatusBadRequest || !strings.Contains(body, "stays") {
		t.Errorf("a small gzip request: %d %s", status, body)
	}
	bomb := append([]byte(`{"stays":[{"stayId":"`), bytes.Repeat([]byte("x"), 64<<20)...)
	if status, body := post(bomb); !strings.Contains(body, `"code":"resource_exhausted"`) {
		t.Errorf("a gzip bomb of 64 MiB: %d %s", status, body)
	}
}
