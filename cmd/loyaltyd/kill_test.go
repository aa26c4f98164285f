package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"slices"
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

// redeliveryTimeout bounds how long after a restart the killed process's
// deliveries may take: its lease (webhooks.MinLease, 12 s, counted from
// the attempt it was killed in) and the sequencer's (10 s), then a
// member's deliveries one after the other.
const redeliveryTimeout = 30 * time.Second

// TestKillingLoyaltydMidDeliveryLosesNoEvent: loyaltyd killed with SIGKILL
// while a receiver holds a webhook attempt unanswered loses no event. A new
// loyaltyd on the same data sends that event again, with the same
// webhook-id, once the dead process's lease runs out, and delivers every
// event written before the kill, in each member's order.
func TestKillingLoyaltydMidDeliveryLosesNoEvent(t *testing.T) {
	bin := buildServer(t)
	dataDir := postgresDataDir(t)
	// The shortest lease loyaltyd takes, so that the test waits as little
	// as it can for the dead process's lease.
	lease := webhooks.MinLease.String()
	first := startServerWith(t, bin, dataDir, "-webhook-lease", lease)
	m := regexp.MustCompile(`(?m)^export LOYALTY_KEY=(lk_\S+)$`).FindStringSubmatch(first.stdout())
	if m == nil {
		t.Fatalf("the first start printed no admin key; stdout:\n%s", first.stdout())
	}
	key := m[1]
	rc := newKillReceiver(t)
	types := []string{events.TypeMemberEnrolled, events.TypePointsAdjusted}
	api := newAPI(first.url, key)
	created, err := api.webhooks.CreateWebhookEndpoint(t.Context(), request(api, &loyaltyv1.CreateWebhookEndpointRequest{
		IdempotencyKey: "kill-hook", Url: rc.srv.URL + "/hook", EventTypes: types, Description: "killed mid-delivery"}))
	if err != nil {
		t.Fatalf("CreateWebhookEndpoint: %v", err)
	}
	endpointID := created.Msg.GetEndpoint().GetEndpointId()

	// Member A's enrolment is the endpoint's first event: its first
	// attempt gets no answer.
	memberA := api.enrol(t, "a")
	var hung killCall
	select {
	case hung = <-rc.first:
	case <-time.After(redeliveryTimeout):
		t.Fatalf("the receiver got no request within %s; loyaltyd's log:\n%s", redeliveryTimeout, first.stderr())
	}
	// While that attempt hangs: A's next events, which wait for it, and
	// member B's, which do not.
	api.adjust(t, "a-1", memberA)
	api.adjust(t, "a-2", memberA)
	memberB := api.enrol(t, "b")
	api.adjust(t, "b-1", memberB)
	const written = 5

	first.stopped = true
	if err := first.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-first.done
	rc.killed.Store(true)
	if again := rc.callsOf(hung.ID); len(again) != 1 {
		t.Fatalf("before the kill the receiver got %s %d times, want once (the attempt it held): %+v", hung.ID, len(again), again)
	}

	second := startServerWith(t, bin, dataDir, "-webhook-lease", lease)
	restarted := time.Now()
	api = newAPI(second.url, key)
	deadline := time.After(redeliveryTimeout)
	var listed []*loyaltyv1.Event
	var undelivered []string
	for {
		listed, undelivered = api.undelivered(t, endpointID, types)
		if len(listed) == written && len(undelivered) == 0 {
			break
		}
		select {
		case <-deadline:
			t.Fatalf("%s after the restart: %d of the %d events written before the kill are listed, and these are not delivered: %v\nreceiver got %+v\nthe new loyaltyd's log:\n%s",
				redeliveryTimeout, len(listed), written, undelivered, rc.calls(), second.stderr())
		case <-time.After(200 * time.Millisecond):
		}
	}
	// The event held at the kill came again, from the new process, with
	// the same webhook-id, and was accepted.
	calls := rc.callsOf(hung.ID)
	if len(calls) != 2 || !calls[1].afterKill || !calls[1].answered {
		t.Fatalf("the receiver got %s as %+v; want it once more, after the kill, answered", hung.ID, calls)
	}
	t.Logf("the held event came again %s after its first attempt (lease %s); every event was delivered %s after the restart",
		(calls[1].at - calls[0].at).Round(time.Millisecond), lease, time.Since(restarted).Round(time.Millisecond))
	if hung.Subject != memberA || hung.Type != events.TypeMemberEnrolled || hung.EnvelopeID != hung.ID {
		t.Errorf("the held attempt was %+v, want member %s's enrolment under its own id", hung, memberA)
	}
	// Every event listed for the endpoint's types reached the receiver and
	// was accepted at least once.
	for _, e := range listed {
		if !slices.ContainsFunc(rc.callsOf(e.GetId()), func(c killCall) bool { return c.answered }) {
			t.Errorf("event %s (%s of %s) never reached the receiver", e.GetId(), e.GetType(), e.GetSubject())
		}
	}
	// The log shows the held delivery as delivered with HTTP 200. The
	// killed process never recorded its attempt: the log has the one
	// the restarted process made.
	d := api.delivery(t, endpointID, hung.ID)
	if d.GetStatus() != loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DELIVERED || d.GetAttempts() != 1 || d.GetLastStatusCode() != http.StatusOK {
		t.Errorf("the held delivery's log: %v; want delivered at the one attempt recorded, with HTTP 200", d)
	}
	// Member A's events came in their order, even across the kill.
	var order []int64
	for _, c := range rc.calls() {
		if c.Subject == memberA && c.answered {
			order = append(order, c.Sequence)
		}
	}
	if !slices.IsSorted(order) || len(order) != 3 {
		t.Errorf("member A's accepted events came in the order %v, want 3 in their sequence", order)
	}
}

// startServerWith starts bin on dataDir as startServer does, with more
// flags.
func startServerWith(t *testing.T, bin, dataDir string, flags ...string) *server {
	t.Helper()
	url := "http://" + freeAddr(t)
	s := &server{url: url, done: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"-data-dir", dataDir, "-listen", strings.TrimPrefix(url, "http://"), "-log-level", "info"}, flags...)...)
	s.cmd.Env = childEnv()
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.errs
	s.cmd.WaitDelay = 5 * time.Second
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if !s.stopped {
			s.kill(t)
		}
		if t.Failed() {
			t.Logf("loyaltyd %v stdout:\n%s\nstderr (log):\n%s", flags, s.stdout(), s.stderr())
		}
	})
	started := time.Now()
	for !hasLinePrefix(s.stdout(), "curl -s -X POST ") || !healthy(url) {
		select {
		case <-s.done:
			t.Fatalf("loyaltyd exited during start-up (%v); stderr:\n%s", s.waitErr, s.stderr())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Since(started) > startTimeout {
			t.Fatalf("loyaltyd did not become healthy within %s; stderr:\n%s", startTimeout, s.stderr())
		}
	}
	return s
}

// killCall is one request the receiver got.
type killCall struct {
	// ID is the webhook-id header; EnvelopeID, Type, Subject and
	// Sequence are the body's.
	ID, EnvelopeID, Type, Subject string
	Sequence                      int64
	// afterKill: the first loyaltyd was dead when it came.
	afterKill bool
	// answered: the receiver accepted it (200).
	answered bool
	// at is when it came, from the receiver's start.
	at time.Duration
}

// killReceiver is a webhook receiver that holds its first request
// unanswered until the sender goes away (or the test ends), and answers
// every other one 200.
type killReceiver struct {
	srv    *httptest.Server
	first  chan killCall
	ended  chan struct{}
	killed atomic.Bool
	begin  time.Time

	mu  sync.Mutex
	got []killCall
}

func newKillReceiver(t *testing.T) *killReceiver {
	begin := time.Now()
	rc := &killReceiver{first: make(chan killCall, 1), ended: make(chan struct{}), begin: begin}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	// Cleanups run last first: the held request ends before Close waits
	// for it.
	t.Cleanup(func() { close(rc.ended) })
	return rc
}

func (rc *killReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var envelope struct {
		ID, Type, Subject string
		Sequence          string
	}
	_ = json.Unmarshal(body, &envelope)
	c := killCall{ID: r.Header.Get("webhook-id"), EnvelopeID: envelope.ID, Type: envelope.Type, Subject: envelope.Subject,
		afterKill: rc.killed.Load(), at: time.Since(rc.begin)}
	c.Sequence, _ = strconv.ParseInt(envelope.Sequence, 10, 64)
	rc.mu.Lock()
	hold := len(rc.got) == 0
	c.answered = !hold
	rc.got = append(rc.got, c)
	rc.mu.Unlock()
	if hold {
		rc.first <- c
		// No answer: the connection closes when its sender dies.
		select {
		case <-r.Context().Done():
		case <-rc.ended:
		}
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *killReceiver) calls() []killCall {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.got)
}

// callsOf returns the requests with webhook-id id, in the order they came.
func (rc *killReceiver) callsOf(id string) []killCall {
	var of []killCall
	for _, c := range rc.calls() {
		if c.ID == id {
			of = append(of, c)
		}
	}
	return of
}

// api is the Connect clients of one loyaltyd, with the admin key.
type api struct {
	key      string
	members  loyaltyv1connect.MemberServiceClient
	admin    loyaltyv1connect.AdminServiceClient
	events   loyaltyv1connect.EventServiceClient
	webhooks loyaltyv1connect.WebhookServiceClient
}

func newAPI(url, key string) *api {
	return &api{key: key, members: loyaltyv1connect.NewMemberServiceClient(httpClient, url),
		admin: loyaltyv1connect.NewAdminServiceClient(httpClient, url), events: loyaltyv1connect.NewEventServiceClient(httpClient, url),
		webhooks: loyaltyv1connect.NewWebhookServiceClient(httpClient, url)}
}

func request[T any](a *api, msg *T) *connect.Request[T] {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+a.key)
	return req
}

// enrol enrols a member and returns the member number.
func (a *api) enrol(t *testing.T, name string) string {
	t.Helper()
	resp, err := a.members.EnrollMember(t.Context(), request(a, &loyaltyv1.EnrollMemberRequest{IdempotencyKey: "enrol-" + name,
		FullName: "Member " + strings.ToUpper(name), Email: name + "@example.com", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
	if err != nil {
		t.Fatalf("EnrollMember %s: %v", name, err)
	}
	return resp.Msg.GetMember().GetMemberNumber()
}

// adjust credits member 10 goodwill points.
func (a *api) adjust(t *testing.T, key, member string) {
	t.Helper()
	_, err := a.admin.AdjustPoints(t.Context(), request(a, &loyaltyv1.AdjustPointsRequest{IdempotencyKey: "adjust-" + key, MemberNumber: member,
		Points: 10, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "kill test " + key}))
	if err != nil {
		t.Fatalf("AdjustPoints %s: %v", key, err)
	}
}

// undelivered lists the events of types and returns them with the ids of
// those the endpoint's delivery log does not show as delivered.
func (a *api) undelivered(t *testing.T, endpointID string, types []string) ([]*loyaltyv1.Event, []string) {
	t.Helper()
	listed, err := a.events.ListEvents(t.Context(), request(a, &loyaltyv1.ListEventsRequest{EventTypes: types, PageSize: 1000}))
	if err != nil {
		t.Fatalf("ListEvents: %v", err)
	}
	delivered := map[string]bool{}
	for _, d := range a.deliveries(t, endpointID) {
		delivered[d.GetEventId()] = d.GetStatus() == loyaltyv1.WebhookDeliveryStatus_WEBHOOK_DELIVERY_STATUS_DELIVERED
	}
	var undelivered []string
	for _, e := range listed.Msg.GetEvents() {
		if !delivered[e.GetId()] {
			undelivered = append(undelivered, fmt.Sprintf("%s (%s of %s)", e.GetId(), e.GetType(), e.GetSubject()))
		}
	}
	return listed.Msg.GetEvents(), undelivered
}

// deliveries returns the endpoint's whole delivery log.
func (a *api) deliveries(t *testing.T, endpointID string) []*loyaltyv1.WebhookDelivery {
	t.Helper()
	var all []*loyaltyv1.WebhookDelivery
	token := ""
	for range 100 {
		resp, err := a.webhooks.ListWebhookDeliveries(t.Context(), request(a, &loyaltyv1.ListWebhookDeliveriesRequest{
			EndpointId: endpointID, PageSize: 100, PageToken: token}))
		if err != nil {
			t.Fatalf("ListWebhookDeliveries: %v", err)
		}
		all = append(all, resp.Msg.GetDeliveries()...)
		if token = resp.Msg.GetNextPageToken(); token == "" {
			return all
		}
	}
	t.Fatal("ListWebhookDeliveries never ran out of pages")
	return nil
}

func (a *api) delivery(t *testing.T, endpointID, eventID string) *loyaltyv1.WebhookDelivery {
	t.Helper()
	for _, d := range a.deliveries(t, endpointID) {
		if d.GetEventId() == eventID {
			return d
		}
	}
	t.Fatalf("no delivery of %s to %s", eventID, endpointID)
	return nil
}
