package rpc_test

import (
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
	for _, want := range rpc.Services {
		if !slices.ContainsFunc(names, func(n protoreflect.FullName) bool { return string(n) == want }) {
			t.Fatalf("reflection lists %v, missing %s", names, want)
		}
	}
}
