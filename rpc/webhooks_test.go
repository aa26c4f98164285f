package rpc_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/loyalty-ledger/loyalty/events"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

func (e *env) webhooks(key string) loyaltyv1connect.WebhookServiceClient {
	return loyaltyv1connect.NewWebhookServiceClient(e.server.Client(), e.server.URL, connect.WithInterceptors(bearer(key)))
}

// verifySignature checks a delivery as a receiver would, from the
// Standard Webhooks specification alone: the HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>" keyed with the bytes of the
// secret's base64 after "whsec_", base64-encoded, is one of the
// space-separated "v1,<signature>" of webhook-signature; and the
// timestamp is within five minutes of now.
func verifySignature(secret string, header http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || !strings.HasPrefix(secret, "whsec_") {
		return fmt.Errorf("secret %q is not whsec_ and base64", secret)
	}
	id, ts := header.Get("webhook-id"), header.Get("webhook-timestamp")
	seconds, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" {
		return fmt.Errorf("webhook-id %q, webhook-timestamp %q", id, ts)
	}
	if d := now.Sub(time.Unix(seconds, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %s from now", ts, d)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	want := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, sig := range strings.Fields(header.Get("webhook-signature")) {
		if v, ok := strings.CutPrefix(sig, "v1,"); ok && hmac.Equal([]byte(v), []byte(want)) {
			return nil
		}
	}
	return errors.New("no v1 signature of webhook-signature matches")
}

// receiver is an HTTP endpoint that keeps what it is sent and answers
// with the status it is told.
type receiver struct {
	server *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []delivered
}

type delivered struct {
	header http.Header
	body   []byte
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.status.Store(http.StatusNoContent)
	r.server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, delivered{header: req.Header.Clone(), body: body})
		r.mu.Unlock()
		w.WriteHeader(int(r.status.Load()))
	}))
	t.Cleanup(r.server.Close)
	return r
}

func (r *receiver) received() []delivered {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivered(nil), r.got...)
}

// dispatch sequences the events written so far and runs the dispatcher
// until it has nothing due, as loyaltyd does in the background.
func (e *env) dispatch(t *testing.T, d *webhooks.Dispatcher) {
	t.Helper()
	e.sequence(t)
	for range 100 {
		n, err := d.Step(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the dispatcher never ran out of due deliveries")
}

func (e *env) deliveries(t *testing.T, endpoint string, status loyaltyv1.WebhookDeliveryStatus) []*loyaltyv1.WebhookDelivery {
	t.Helper()
	res, err := e.webhooks(e.adminKey).ListWebhookDeliveries(e.ctx, connect.NewRequest(&loyaltyv1.ListWebhookDeliveriesRequest{
		EndpointId: endpoint, Status: status}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetDeliveries()
}

// TestWebhooksEndToEnd: an endpoint created through the API receives the
// stays posted through the API, signed with its secret; after a rotation
// with overlap both secrets verify; a paused endpoint receives nothing
// until resumed; a receiver that fails for three days makes a dead
// letter, which RedeliverWebhookEvent delivers once the receiver is
// fixed; the delivery log shows all of it.
func TestWebhooksEndToEnd(t *testing.T) {
	e := newEnv(t)
	hooks := e.webhooks(e.adminKey)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	rcv := newReceiver(t)
	dispatcher := webhooks.NewDispatcher(e.db, webhooks.NewStore(e.ledger, e.clock.Now), webhooks.DispatcherOptions{Clock: e.clock.Now})

	create := &loyaltyv1.CreateWebhookEndpointRequest{IdempotencyKey: "hook-1", Url: rcv.server.URL + "/hooks",
		EventTypes: []string{events.TypePointsEarned}, Description: "CRM"}
	created, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(create))
	if err != nil {
		t.Fatal(err)
	}
	ep, secret := created.Msg.GetEndpoint(), created.Msg.GetSecret()
	if !strings.HasPrefix(secret, "whsec_") || ep.GetUrl() != create.Url || ep.GetCreatedByKeyId() == "" {
		t.Fatalf("created: %v, secret %q", ep, secret)
	}
	t.Run("the secret is shown once", func(t *testing.T) {
		replay, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(create))
		if err != nil || replay.Msg.GetSecret() != "" || replay.Msg.GetEndpoint().GetEndpointId() != ep.GetEndpointId() {
			t.Fatalf("replay: %v, %v", replay, err)
		}
		got, err := hooks.GetWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.GetWebhookEndpointRequest{EndpointId: ep.GetEndpointId()}))
		if err != nil || got.Msg.GetEndpoint().GetDescription() != "CRM" {
			t.Fatalf("get: %v, %v", got, err)
		}
		list, err := hooks.ListWebhookEndpoints(e.ctx, connect.NewRequest(&loyaltyv1.ListWebhookEndpointsRequest{}))
		if err != nil || len(list.Msg.GetEndpoints()) != 1 {
			t.Fatalf("list: %v, %v", list, err)
		}
	})

	stay := func(key, stayID string) {
		t.Helper()
		if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest(key, member, stayID, "388.00"))); err != nil {
			t.Fatal(err)
		}
	}
	// checkLast verifies the last delivery with each secret given.
	checkLast := func(t *testing.T, want int, secrets ...string) map[string]any {
		t.Helper()
		got := rcv.received()
		if len(got) != want {
			t.Fatalf("the receiver got %d deliveries, want %d", len(got), want)
		}
		last := got[len(got)-1]
		for _, s := range secrets {
			if err := verifySignature(s, last.header, last.body, e.clock.Now()); err != nil {
				t.Errorf("delivery %s: %v", last.header.Get("webhook-id"), err)
			}
		}
		var envelope map[string]any
		if err := json.Unmarshal(last.body, &envelope); err != nil {
			t.Fatal(err)
		}
		if envelope["id"] != last.header.Get("webhook-id") || envelope["type"] != events.TypePointsEarned || envelope["subject"] != member {
			t.Errorf("delivered %s with webhook-id %s", last.body, last.header.Get("webhook-id"))
		}
		return envelope
	}

	t.Run("a stay is delivered, signed", func(t *testing.T) {
		stay("stay-1", "B-1")
		e.dispatch(t, dispatcher)
		envelope := checkLast(t, 1, secret)
		data, _ := envelope["data"].(map[string]any)
		if points, _ := data["points"].(float64); data["member_number"] != member || data["kind"] != "stay" || points <= 0 {
			t.Errorf("data of the stay's event: %v", data)
		}
		done := e.deliveries(t, ep.GetEndpointId(), loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DELIVERED)
		if len(done) != 1 || done[0].GetAttempts() != 1 || done[0].GetLastStatusCode() != http.StatusNoContent ||
			done[0].GetDeliveredAt() == nil || done[0].GetEventId() != envelope["id"] {
			t.Errorf("the delivery log: %v", done)
		}
	})

	// The contract: cloud_event_json is the envelope exactly as webhooks
	// deliver it, and data_json byte for byte its "data", so that a
	// consumer may forward or hash either.
	t.Run("ListEvents shows the bytes the webhook delivered", func(t *testing.T) {
		delivered := rcv.received()[0].body
		list, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{
			MemberNumber: member, EventTypes: []string{events.TypePointsEarned}}))
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Msg.GetEvents()) != 1 {
			t.Fatalf("ListEvents: %v", list.Msg.GetEvents())
		}
		ev := list.Msg.GetEvents()[0]
		if ev.GetCloudEventJson() != string(delivered) {
			t.Errorf("cloud_event_json\n%s\nis not the delivered body\n%s", ev.GetCloudEventJson(), delivered)
		}
		if !strings.HasSuffix(ev.GetCloudEventJson(), `,"data":`+ev.GetDataJson()+"}") {
			t.Errorf("data_json %s is not the envelope's data: %s", ev.GetDataJson(), ev.GetCloudEventJson())
		}
	})

	var rotated string
	t.Run("rotation: both secrets verify during the overlap", func(t *testing.T) {
		res, err := hooks.RotateWebhookSecret(e.ctx, connect.NewRequest(&loyaltyv1.RotateWebhookSecretRequest{
			IdempotencyKey: "rotate-1", EndpointId: ep.GetEndpointId(), OverlapSeconds: 3600}))
		if err != nil {
			t.Fatal(err)
		}
		rotated = res.Msg.GetSecret()
		if rotated == "" || rotated == secret || res.Msg.GetEndpoint().GetSecretRotatedAt() == nil {
			t.Fatalf("rotated: %v", res.Msg)
		}
		stay("stay-2", "B-2")
		e.dispatch(t, dispatcher)
		checkLast(t, 2, rotated, secret)
		// After the overlap, only the new secret signs.
		e.clock.Advance(2 * time.Hour)
		stay("stay-3", "B-3")
		e.dispatch(t, dispatcher)
		checkLast(t, 3, rotated)
		if err := verifySignature(secret, rcv.received()[2].header, rcv.received()[2].body, e.clock.Now()); err == nil {
			t.Error("the old secret still verifies after the overlap")
		}
	})

	t.Run("a paused endpoint receives nothing until resumed", func(t *testing.T) {
		pause := func(key string, paused bool) {
			t.Helper()
			res, err := hooks.UpdateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.UpdateWebhookEndpointRequest{
				IdempotencyKey: key, EndpointId: ep.GetEndpointId(), Paused: &paused}))
			if err != nil || res.Msg.GetEndpoint().GetPaused() != paused || res.Msg.GetEndpoint().GetDescription() != "CRM" {
				t.Fatalf("paused %v: %v, %v", paused, res, err)
			}
		}
		pause("pause-1", true)
		stay("stay-4", "B-4")
		e.dispatch(t, dispatcher)
		if n := len(rcv.received()); n != 3 {
			t.Fatalf("a paused endpoint received a delivery (%d)", n)
		}
		// Its queue is the events after its cursor: nothing is written
		// for it while it is paused.
		if pending := e.deliveries(t, ep.GetEndpointId(), loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_PENDING); len(pending) != 0 {
			t.Fatalf("deliveries written while paused: %v", pending)
		}
		pause("resume-1", false)
		e.dispatch(t, dispatcher)
		checkLast(t, 4, rotated)
	})

	t.Run("a dead letter, redelivered", func(t *testing.T) {
		rcv.status.Store(http.StatusServiceUnavailable)
		stay("stay-5", "B-5")
		e.dispatch(t, dispatcher)
		pending := e.deliveries(t, ep.GetEndpointId(), loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_PENDING)
		if len(pending) != 1 || pending[0].GetLastStatusCode() != http.StatusServiceUnavailable || pending[0].GetLastError() == "" ||
			pending[0].GetNextAttemptAt() == nil || pending[0].GetLastAttemptAt() == nil {
			t.Fatalf("a failed delivery: %v", pending)
		}
		// Retries for three days, then dead.
		for range 200 {
			if len(e.deliveries(t, ep.GetEndpointId(), loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DEAD)) > 0 {
				break
			}
			e.clock.Advance(time.Hour)
			e.dispatch(t, dispatcher)
		}
		dead := e.deliveries(t, ep.GetEndpointId(), loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DEAD)
		if len(dead) != 1 || dead[0].GetAttempts() < 2 || dead[0].GetDeliveredAt() != nil {
			t.Fatalf("dead letters: %v", dead)
		}
		attempts := len(rcv.received())

		rcv.status.Store(http.StatusOK)
		res, err := hooks.RedeliverWebhookEvent(e.ctx, connect.NewRequest(&loyaltyv1.RedeliverWebhookEventRequest{
			IdempotencyKey: "redeliver-1", EndpointId: ep.GetEndpointId(), EventId: dead[0].GetEventId()}))
		if err != nil || res.Msg.GetDelivery().GetStatus() != loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_PENDING {
			t.Fatalf("redeliver: %v, %v", res, err)
		}
		e.dispatch(t, dispatcher)
		checkLast(t, attempts+1, rotated)
		if dead := e.deliveries(t, ep.GetEndpointId(), loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DEAD); len(dead) != 0 {
			t.Errorf("still dead after the redelivery: %v", dead)
		}
		all := e.deliveries(t, ep.GetEndpointId(), loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_UNSPECIFIED)
		if len(all) != 5 {
			t.Errorf("the delivery log has %d deliveries, want 5 (one per stay)", len(all))
		}
		for i, d := range all {
			if d.GetStatus() != loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DELIVERED || (i > 0 && d.GetPosition() >= all[i-1].GetPosition()) {
				t.Errorf("delivery %d: %v (want delivered, newest first)", i, d)
			}
		}
	})

	t.Run("a deleted endpoint is gone", func(t *testing.T) {
		if _, err := hooks.DeleteWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.DeleteWebhookEndpointRequest{
			IdempotencyKey: "delete-1", EndpointId: ep.GetEndpointId()})); err != nil {
			t.Fatal(err)
		}
		_, err := hooks.GetWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.GetWebhookEndpointRequest{EndpointId: ep.GetEndpointId()}))
		wantCode(t, err, connect.CodeNotFound)
		before := len(rcv.received())
		stay("stay-6", "B-6")
		e.dispatch(t, dispatcher)
		if n := len(rcv.received()); n != before {
			t.Errorf("a deleted endpoint received %d deliveries", n-before)
		}
	})
}

// TestAPartnersEndpointReceivesOnlyItsHotelsEvents: an endpoint created
// for a partner gets nothing of the chain's own hotels.
func TestAPartnersEndpointReceivesOnlyItsHotelsEvents(t *testing.T) {
	e := newEnv(t)
	e.createPartner(t, "ALPHA", "0.0085", "0.0061", nil)
	rcv := newReceiver(t)
	res, err := e.webhooks(e.adminKey).CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "hook-alpha", Url: rcv.server.URL, PartnerId: "ALPHA"}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetEndpoint().GetPartnerId() != "ALPHA" {
		t.Fatalf("endpoint: %v", res.Msg.GetEndpoint())
	}
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "388.00"))); err != nil {
		t.Fatal(err)
	}
	e.dispatch(t, webhooks.NewDispatcher(e.db, webhooks.NewStore(e.ledger, e.clock.Now), webhooks.DispatcherOptions{Clock: e.clock.Now}))
	if got := rcv.received(); len(got) != 0 {
		t.Errorf("ALPHA's endpoint received the chain's events: %s", got[0].body)
	}
}

// TestWebhookBatchSizeRoundTrips: an endpoint's batch_size is what it was
// created with (0: 1, one event per request) in every answer, until an
// update that sets it; an update that leaves it unset keeps it.
func TestWebhookBatchSizeRoundTrips(t *testing.T) {
	e := newEnv(t)
	hooks := e.webhooks(e.adminKey)
	check := func(t *testing.T, what string, ep *loyaltyv1.WebhookEndpoint, want int32) {
		t.Helper()
		if ep.GetBatchSize() != want {
			t.Fatalf("%s: batch size %d, want %d: %v", what, ep.GetBatchSize(), want, ep)
		}
		got, err := hooks.GetWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.GetWebhookEndpointRequest{EndpointId: ep.GetEndpointId()}))
		if err != nil || got.Msg.GetEndpoint().GetBatchSize() != want {
			t.Fatalf("Get after %s: %v, %v: want batch size %d", what, got, err, want)
		}
	}
	for _, tc := range []struct {
		name   string
		create int32
		want   int32
	}{
		{"0 is one event per request", 0, 1},
		{"1 is kept", 1, 1},
		{"500 is kept", 500, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
				IdempotencyKey: fmt.Sprintf("hook-%d", tc.create), Url: fmt.Sprintf("https://crm.example.com/%d", tc.create), BatchSize: tc.create}))
			if err != nil {
				t.Fatal(err)
			}
			check(t, "create", res.Msg.GetEndpoint(), tc.want)
		})
	}

	res, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "hook-batch", Url: "https://crm.example.com/batch", BatchSize: 25}))
	if err != nil {
		t.Fatal(err)
	}
	id := res.Msg.GetEndpoint().GetEndpointId()
	check(t, "create", res.Msg.GetEndpoint(), 25)
	updated, err := hooks.UpdateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.UpdateWebhookEndpointRequest{
		IdempotencyKey: "batch-7", EndpointId: id, BatchSize: new(int32(7))}))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "an update to 7", updated.Msg.GetEndpoint(), 7)
	untouched, err := hooks.UpdateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.UpdateWebhookEndpointRequest{
		IdempotencyKey: "describe", EndpointId: id, Description: new("CRM")}))
	if err != nil {
		t.Fatal(err)
	}
	check(t, "an update without batch_size", untouched.Msg.GetEndpoint(), 7)
	list, err := hooks.ListWebhookEndpoints(e.ctx, connect.NewRequest(&loyaltyv1.ListWebhookEndpointsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range list.Msg.GetEndpoints() {
		if ep.GetEndpointId() == id && ep.GetBatchSize() != 7 {
			t.Fatalf("List: %v, want batch size 7", ep)
		}
	}
}

// TestWebhookRequestsNameTheFieldTheyRefuse: malformed webhook requests
// are INVALID_ARGUMENT naming their field; an unknown endpoint is
// NOT_FOUND; only admin keys may call the service.
func TestWebhookRequestsNameTheFieldTheyRefuse(t *testing.T) {
	e := newEnv(t)
	hooks := e.webhooks(e.adminKey)
	ok, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "hook-ok", Url: "https://crm.example.com/hooks"}))
	if err != nil {
		t.Fatal(err)
	}
	id := ok.Msg.GetEndpoint().GetEndpointId()
	create := func(req *loyaltyv1.CreateWebhookEndpointRequest) error {
		req.IdempotencyKey = "create-" + req.Url + strings.Join(req.EventTypes, ",") + req.PartnerId
		_, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(req))
		return err
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		code  connect.Code
		field string
	}{
		{"no url", func() error { return create(&loyaltyv1.CreateWebhookEndpointRequest{}) }, connect.CodeInvalidArgument, "url"},
		{"not http", func() error { return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "ftp://example.com"}) }, connect.CodeInvalidArgument, "url"},
		{"credentials in the url", func() error {
			return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "https://user:pw@example.com"})
		}, connect.CodeInvalidArgument, "url"},
		{"an unknown type", func() error {
			return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "https://a.example.com", EventTypes: []string{events.TypePointsEarned, "nope"}})
		}, connect.CodeInvalidArgument, "eventTypes[1]"},
		{"port 0", func() error { return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "http://127.0.0.1:0/hooks"}) }, connect.CodeInvalidArgument, "url"},
		{"a port over 65535", func() error {
			return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "https://example.com:99999/hooks"})
		}, connect.CodeInvalidArgument, "url"},
		{"a nil event id", func() error {
			_, err := hooks.RedeliverWebhookEvent(e.ctx, connect.NewRequest(&loyaltyv1.RedeliverWebhookEventRequest{IdempotencyKey: "d-0", EndpointId: id,
				EventId: "00000000-0000-0000-0000-000000000000"}))
			return err
		}, connect.CodeInvalidArgument, "eventId"},
		{"a type twice", func() error {
			return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "https://a.example.com", EventTypes: []string{events.TypePointsEarned, events.TypePointsEarned}})
		}, connect.CodeInvalidArgument, "eventTypes[1]"},
		{"an unknown partner", func() error {
			return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "https://a.example.com", PartnerId: "NOPE"})
		}, connect.CodeInvalidArgument, "partnerId"},
		{"a batch size over 500", func() error {
			return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "https://batch.example.com", BatchSize: 501})
		}, connect.CodeInvalidArgument, "batchSize"},
		{"a negative batch size", func() error {
			return create(&loyaltyv1.CreateWebhookEndpointRequest{Url: "https://negative.example.com", BatchSize: -1})
		}, connect.CodeInvalidArgument, "batchSize"},
		{"an update to a batch size of 0", func() error {
			_, err := hooks.UpdateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.UpdateWebhookEndpointRequest{IdempotencyKey: "u-3", EndpointId: id,
				BatchSize: new(int32(0))}))
			return err
		}, connect.CodeInvalidArgument, "batchSize"},
		{"an unknown type in an update", func() error {
			_, err := hooks.UpdateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.UpdateWebhookEndpointRequest{IdempotencyKey: "u-1", EndpointId: id,
				EventTypes: &loyaltyv1.WebhookEventTypes{EventTypes: []string{"nope"}}}))
			return err
		}, connect.CodeInvalidArgument, "eventTypes.eventTypes[0]"},
		{"a bad url in an update", func() error {
			_, err := hooks.UpdateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.UpdateWebhookEndpointRequest{IdempotencyKey: "u-2", EndpointId: id,
				Url: new("nope")}))
			return err
		}, connect.CodeInvalidArgument, "url"},
		{"an endpoint id that is none", func() error {
			_, err := hooks.GetWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.GetWebhookEndpointRequest{EndpointId: "x"}))
			return err
		}, connect.CodeInvalidArgument, "endpointId"},
		{"an overlap over a week", func() error {
			_, err := hooks.RotateWebhookSecret(e.ctx, connect.NewRequest(&loyaltyv1.RotateWebhookSecretRequest{IdempotencyKey: "r-1", EndpointId: id,
				OverlapSeconds: 604801}))
			return err
		}, connect.CodeInvalidArgument, "overlapSeconds"},
		{"an event id that is no UUID", func() error {
			_, err := hooks.RedeliverWebhookEvent(e.ctx, connect.NewRequest(&loyaltyv1.RedeliverWebhookEventRequest{IdempotencyKey: "d-1", EndpointId: id,
				EventId: "nope"}))
			return err
		}, connect.CodeInvalidArgument, "eventId"},
		{"a page over 100", func() error {
			_, err := hooks.ListWebhookDeliveries(e.ctx, connect.NewRequest(&loyaltyv1.ListWebhookDeliveriesRequest{EndpointId: id, PageSize: 101}))
			return err
		}, connect.CodeInvalidArgument, "pageSize"},
		{"an endpoint that does not exist", func() error {
			_, err := hooks.GetWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.GetWebhookEndpointRequest{EndpointId: "wh_0000000000000000"}))
			return err
		}, connect.CodeNotFound, ""},
		{"a delivery that does not exist", func() error {
			_, err := hooks.RedeliverWebhookEvent(e.ctx, connect.NewRequest(&loyaltyv1.RedeliverWebhookEventRequest{IdempotencyKey: "d-2", EndpointId: id,
				EventId: "6f1c2a8e-3d0b-4c55-9a61-2f7f0c8b9e10"}))
			return err
		}, connect.CodeNotFound, ""},
		{"a booking-channel key", func() error {
			_, err := e.webhooks(e.bookingKey).ListWebhookEndpoints(e.ctx, connect.NewRequest(&loyaltyv1.ListWebhookEndpointsRequest{}))
			return err
		}, connect.CodePermissionDenied, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), tc.code)
			if tc.field != "" {
				if got := badRequestField(t, ce); got != tc.field {
					t.Errorf("refusal names %q, want %q: %v", got, tc.field, ce)
				}
			}
		})
	}
}

// TestNotFoundNamesTheFieldsAsJSONSpellsThem: a NOT_FOUND answer says
// which of the request's fields found nothing, spelled as the client
// spells them; a redelivery tells a missing endpoint from an event that
// was never for it.
func TestNotFoundNamesTheFieldsAsJSONSpellsThem(t *testing.T) {
	e := newEnv(t)
	hooks := e.webhooks(e.adminKey)
	created, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "hook-1", Url: "https://crm.example.com/hooks"}))
	if err != nil {
		t.Fatal(err)
	}
	live := created.Msg.GetEndpoint().GetEndpointId()
	for _, tc := range []struct {
		name          string
		call          func() error
		want, notWant string
	}{
		{"an unknown member", func() error {
			_, err := e.clients(e.bookingKey).members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: "1234567897"}))
			return err
		}, "memberNumber", "member_number"},
		{"an unknown endpoint", func() error {
			_, err := hooks.GetWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.GetWebhookEndpointRequest{EndpointId: "wh_0000000000000000"}))
			return err
		}, "endpointId", "delivery"},
		{"a redelivery to an unknown endpoint", func() error {
			_, err := hooks.RedeliverWebhookEvent(e.ctx, connect.NewRequest(&loyaltyv1.RedeliverWebhookEventRequest{
				IdempotencyKey: "rd-1", EndpointId: "wh_0000000000000000", EventId: "6f1c3c9e-8a52-4c38-9a39-0d5f4a1f2b11"}))
			return err
		}, "no webhook endpoint with this endpointId", "delivery"},
		{"a redelivery of an event never for the endpoint", func() error {
			_, err := hooks.RedeliverWebhookEvent(e.ctx, connect.NewRequest(&loyaltyv1.RedeliverWebhookEventRequest{
				IdempotencyKey: "rd-2", EndpointId: live, EventId: "6f1c3c9e-8a52-4c38-9a39-0d5f4a1f2b11"}))
			return err
		}, "has no delivery of the event with this eventId", "event_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), connect.CodeNotFound)
			if !strings.Contains(ce.Message(), tc.want) || strings.Contains(ce.Message(), tc.notWant) {
				t.Errorf("message %q: want %q in it, and not %q", ce.Message(), tc.want, tc.notWant)
			}
		})
	}
}

// TestTheHundredAndFirstEndpointIsResourceExhausted: at most
// webhooks.MaxEndpoints endpoints live at once; one more is refused
// (RESOURCE_EXHAUSTED: the request is fine, the room is not), nothing is
// written, and the same request succeeds once one is deleted.
func TestTheHundredAndFirstEndpointIsResourceExhausted(t *testing.T) {
	e := newEnv(t)
	hooks := e.webhooks(e.adminKey)
	var first string
	for i := range webhooks.MaxEndpoints {
		res, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
			IdempotencyKey: fmt.Sprint("hook-", i), Url: fmt.Sprintf("https://crm.example.com/hooks/%d", i)}))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			first = res.Msg.GetEndpoint().GetEndpointId()
		}
	}
	one := &loyaltyv1.CreateWebhookEndpointRequest{IdempotencyKey: "one-more", Url: "https://crm.example.com/one-more"}
	_, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(one))
	ce := wantCode(t, err, connect.CodeResourceExhausted)
	if len(ce.Details()) != 0 || !strings.Contains(ce.Message(), "delete one") {
		t.Errorf("the refusal: %v, details %v", ce, ce.Details())
	}
	if _, err := hooks.DeleteWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.DeleteWebhookEndpointRequest{IdempotencyKey: "delete-0", EndpointId: first})); err != nil {
		t.Fatal(err)
	}
	if _, err := hooks.CreateWebhookEndpoint(e.ctx, connect.NewRequest(one)); err != nil {
		t.Fatalf("after a delete, the refused request: %v", err)
	}
}

// TestARefusedEventTypeIsShownWhole: the type a client got wrong is
// echoed in full, so the client sees which (every type shares a prefix).
func TestARefusedEventTypeIsShownWhole(t *testing.T) {
	e := newEnv(t)
	bad := "loyalty.points.earnd.v1"
	_, err := e.webhooks(e.adminKey).CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "hook-1", Url: "https://crm.example.com/hooks", EventTypes: []string{bad}}))
	ce := wantCode(t, err, connect.CodeInvalidArgument)
	if !strings.Contains(ce.Message(), strconv.Quote(bad)) {
		t.Errorf("the refusal does not show %q: %v", bad, ce)
	}
}

// TestAReadRefusesAnEnumNameItDoesNotKnow: reads ignore fields they do not
// know, but not a value they do not know: a misspelt status filter would
// otherwise list every delivery as if it were the dead letters asked for.
func TestAReadRefusesAnEnumNameItDoesNotKnow(t *testing.T) {
	e := newEnv(t)
	created, err := e.webhooks(e.adminKey).CreateWebhookEndpoint(e.ctx, connect.NewRequest(&loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "hook-1", Url: "https://crm.example.com/hooks"}))
	if err != nil {
		t.Fatal(err)
	}
	list := func(body string) (int, string) {
		return e.postJSON(t, e.adminKey, "/loyalty.v1.WebhookService/ListWebhookDeliveries", body)
	}
	id := created.Msg.GetEndpoint().GetEndpointId()
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"a misspelt status", `{"endpointId":"` + id + `","status":"DEAD"}`, http.StatusBadRequest, `status: \"DEAD\" is not a value of WebhookDeliveryStatus (`},
		{"the status spelt right", `{"endpointId":"` + id + `","status":"WEBHOOK_DELIVERY_STATUS_DEAD"}`, http.StatusOK, `{`},
		{"a field it does not know, ignored", `{"endpointId":"` + id + `","newerFilter":true}`, http.StatusOK, `{`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if status, body := list(tc.body); status != tc.status || !strings.Contains(body, tc.want) {
				t.Errorf("%d %s; want %d with %s", status, body, tc.status, tc.want)
			}
		})
	}
}
