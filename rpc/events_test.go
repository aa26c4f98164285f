package rpc_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/rpc"
)

func (e *env) events(key string, opts ...connect.ClientOption) loyaltyv1connect.EventServiceClient {
	if key != "" {
		opts = append(opts, connect.WithInterceptors(bearer(key)))
	}
	return loyaltyv1connect.NewEventServiceClient(e.server.Client(), e.server.URL, opts...)
}

// sequence gives every event written so far its position, as loyaltyd's
// sequencer does in the background.
func (e *env) sequence(t *testing.T) {
	t.Helper()
	s := events.NewSequencer(e.db, e.clock.Now, "rpc-test")
	for {
		n, err := s.Step(e.ctx, events.MaxSequenceBatch)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

// adjust credits a member by hand: one loyalty.points.adjusted.v1 event.
func (e *env) adjust(t *testing.T, key, member string, points int64) {
	t.Helper()
	_, err := e.clients(e.adminKey).admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{
		IdempotencyKey: key, MemberNumber: member, Points: points, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "test"}))
	if err != nil {
		t.Fatal(err)
	}
}

// subscribeRefused opens a SubscribeEvents stream that should be refused
// before its first message, and returns how it ended.
func (e *env) subscribeRefused(req *loyaltyv1.SubscribeEventsRequest) error {
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	stream, err := e.events(e.adminKey).SubscribeEvents(ctx, connect.NewRequest(req))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		return errors.New("the stream sent a message")
	}
	return stream.Err()
}

// allEvents reads the whole log through ListEvents.
func (e *env) allEvents(t *testing.T, req *loyaltyv1.ListEventsRequest) []*loyaltyv1.Event {
	t.Helper()
	var out []*loyaltyv1.Event
	for range 1000 {
		res, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Msg.GetEvents()...)
		if len(res.Msg.GetEvents()) == 0 {
			return out
		}
		req.PageToken, req.AfterPosition = res.Msg.GetNextPageToken(), nil
	}
	t.Fatal("ListEvents never reached the end of the log")
	return nil
}

// TestListEventsPagesThroughTheLogInPositionOrder: pages of ListEvents
// put together are the log, in position order, without gap or duplicate;
// the filters keep exactly the events they name; each event's CloudEvents
// envelope says what its fields say; and the token of the last page,
// kept, continues with the events written after it.
func TestListEventsPagesThroughTheLogInPositionOrder(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	alice, bob := e.enroll(t, c, "enrol-a"), e.enroll(t, c, "enrol-b")
	for i := range 5 {
		e.adjust(t, fmt.Sprint("a-", i), alice, int64(10+i))
	}
	for i := range 3 {
		e.adjust(t, fmt.Sprint("b-", i), bob, int64(20+i))
	}
	if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", alice, "B-1", "388.00"))); err != nil {
		t.Fatal(err)
	}
	e.sequence(t)

	all := e.allEvents(t, &loyaltyv1.ListEventsRequest{PageSize: 3})
	for i, ev := range all {
		if ev.GetPosition() != int64(i+1) {
			t.Fatalf("event %d has position %d: the pages have a gap or a duplicate", i, ev.GetPosition())
		}
	}
	byType := map[string]int{}
	for _, ev := range all {
		byType[ev.GetType()]++
	}
	if byType[events.TypePointsAdjusted] != 8 || byType[events.TypePointsEarned] != 1 {
		t.Fatalf("events by type: %v; want 8 adjustments and 1 earning", byType)
	}

	t.Run("the envelope is the event", func(t *testing.T) {
		for _, ev := range all {
			var env map[string]any
			if err := json.Unmarshal([]byte(ev.GetCloudEventJson()), &env); err != nil {
				t.Fatalf("cloud_event_json of %d: %v", ev.GetPosition(), err)
			}
			data, _ := json.Marshal(env["data"])
			var want any
			if err := json.Unmarshal([]byte(ev.GetDataJson()), &want); err != nil {
				t.Fatalf("data_json of %d: %v", ev.GetPosition(), err)
			}
			wantData, _ := json.Marshal(want)
			if env["specversion"] != "1.0" || env["id"] != ev.GetId() || env["type"] != ev.GetType() || env["subject"] != ev.GetSubject() ||
				env["source"] != ev.GetSource() || env["sequence"] != strconv.FormatInt(ev.GetSequence(), 10) ||
				env["position"] != float64(ev.GetPosition()) || env["time"] != ev.GetTime().AsTime().Format("2006-01-02T15:04:05.999999Z07:00") ||
				string(data) != string(wantData) {
				t.Errorf("envelope %s does not match the event %v", ev.GetCloudEventJson(), ev)
			}
		}
	})

	t.Run("filters", func(t *testing.T) {
		mine := e.allEvents(t, &loyaltyv1.ListEventsRequest{MemberNumber: alice, PageSize: 2})
		for i, ev := range mine {
			// A member's events carry the member's sequence, from 1.
			if ev.GetSubject() != alice || ev.GetSequence() != int64(i+1) {
				t.Errorf("alice's event %d: subject %s, sequence %d", i, ev.GetSubject(), ev.GetSequence())
			}
		}
		adjusted := e.allEvents(t, &loyaltyv1.ListEventsRequest{EventTypes: []string{events.TypePointsAdjusted}, MemberNumber: bob})
		if len(adjusted) != 3 {
			t.Errorf("bob's adjustments: %d events, want 3", len(adjusted))
		}
		earned := e.allEvents(t, &loyaltyv1.ListEventsRequest{EventTypes: []string{events.TypePointsEarned, events.TypePointsRedeemed}})
		if len(earned) != 1 || earned[0].GetSubject() != alice || earned[0].GetPropertyId() != "SH-HQ-001" {
			t.Errorf("earned or redeemed: %v", earned)
		}
		after := e.allEvents(t, &loyaltyv1.ListEventsRequest{AfterPosition: new(int64(len(all) - 2))})
		if len(after) != 2 || after[0].GetPosition() != int64(len(all)-1) {
			t.Errorf("after position %d: %v", len(all)-2, after)
		}
	})

	t.Run("a kept token continues with new events", func(t *testing.T) {
		// A filter that matches nothing still moves the cursor to the end.
		res, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{EventTypes: []string{events.TypePointsExpired}}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Msg.GetEvents()) != 0 || res.Msg.GetLastPosition() != int64(len(all)) || res.Msg.GetNextPageToken() == "" {
			t.Fatalf("an empty filtered page: %v", res.Msg)
		}
		token := res.Msg.GetNextPageToken()
		e.adjust(t, "a-later", alice, 99)
		e.sequence(t)
		// Without the filter, the token of the filtered page starts after
		// the events that page passed over.
		next, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		if got := next.Msg.GetEvents(); len(got) != 1 || got[0].GetPosition() != int64(len(all)+1) || got[0].GetSubject() != alice {
			t.Fatalf("after the kept token: %v", got)
		}
	})
}

// TestEventRequestsNameTheFieldTheyRefuse: every malformed ListEvents and
// SubscribeEvents request is INVALID_ARGUMENT naming its field as JSON
// spells it.
func TestEventRequestsNameTheFieldTheyRefuse(t *testing.T) {
	e := newEnv(t)
	list := func(req *loyaltyv1.ListEventsRequest) error {
		_, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(req))
		return err
	}
	subscribe := e.subscribeRefused
	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"a negative page size", func() error { return list(&loyaltyv1.ListEventsRequest{PageSize: -1}) }, "pageSize"},
		{"a page over 1000", func() error { return list(&loyaltyv1.ListEventsRequest{PageSize: 1001}) }, "pageSize"},
		{"a token not ours", func() error { return list(&loyaltyv1.ListEventsRequest{PageToken: "garbage"}) }, "pageToken"},
		{"a token and a position", func() error {
			return list(&loyaltyv1.ListEventsRequest{PageToken: "AQAAAAAAAAAB", AfterPosition: new(int64(1))})
		}, "afterPosition"},
		{"a negative position", func() error { return list(&loyaltyv1.ListEventsRequest{AfterPosition: new(int64(-1))}) }, "afterPosition"},
		{"an unknown type", func() error {
			return list(&loyaltyv1.ListEventsRequest{EventTypes: []string{events.TypePointsEarned, "loyalty.nope.v1"}})
		}, "eventTypes[1]"},
		{"too many types", func() error { return list(&loyaltyv1.ListEventsRequest{EventTypes: make([]string, 51)}) }, "eventTypes"},
		{"a member number that is none", func() error { return list(&loyaltyv1.ListEventsRequest{MemberNumber: "12"}) }, "memberNumber"},
		{"a partner id that is none", func() error { return list(&loyaltyv1.ListEventsRequest{PartnerId: "no such!"}) }, "partnerId"},
		{"a control character", func() error { return list(&loyaltyv1.ListEventsRequest{MemberNumber: "1\x00"}) }, "memberNumber"},
		{"subscribe: a token not ours", func() error { return subscribe(&loyaltyv1.SubscribeEventsRequest{ResumeToken: "garbage"}) }, "resumeToken"},
		{"subscribe: a token and a position", func() error {
			return subscribe(&loyaltyv1.SubscribeEventsRequest{ResumeToken: "AQAAAAAAAAAB", AfterPosition: new(int64(0))})
		}, "afterPosition"},
		{"subscribe: a position and the beginning", func() error {
			return subscribe(&loyaltyv1.SubscribeEventsRequest{AfterPosition: new(int64(3)), FromBeginning: true})
		}, "fromBeginning"},
		{"subscribe: an unknown type", func() error {
			return subscribe(&loyaltyv1.SubscribeEventsRequest{EventTypes: []string{"loyalty.nope.v1"}})
		}, "eventTypes[0]"},
		{"subscribe: a member number that is none", func() error {
			return subscribe(&loyaltyv1.SubscribeEventsRequest{MemberNumber: "abc"})
		}, "memberNumber"},
		{"subscribe: a control character", func() error {
			return subscribe(&loyaltyv1.SubscribeEventsRequest{PartnerId: "a\u0007"})
		}, "partnerId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), connect.CodeInvalidArgument)
			if got := badRequestField(t, ce); got != tc.field {
				t.Errorf("refusal names %q, want %q: %v", got, tc.field, ce)
			}
		})
	}
}

// TestACursorPastTheNewestEventIsOutOfRange: a position or token beyond
// the newest event is not from this log (another environment's, a cursor
// kept across a restore): taken, it would skip in silence every event up
// to it. ListEvents and SubscribeEvents refuse it with OUT_OF_RANGE,
// naming the field; the newest position itself is a cursor like any other.
func TestACursorPastTheNewestEventIsOutOfRange(t *testing.T) {
	e := newEnv(t)
	member := e.enroll(t, e.clients(e.bookingKey), "enrol-1")
	e.adjust(t, "a-1", member, 10)
	e.sequence(t)
	first, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	last := first.Msg.GetLastPosition()
	if last < 2 {
		t.Fatalf("last position %d after an enrolment and an adjustment", last)
	}
	// A token of this service's shape for position 1000.
	farToken := base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint64([]byte{1}, 1000))
	subscribe := e.subscribeRefused
	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"ListEvents after the next position", "afterPosition", func() error {
			_, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{AfterPosition: new(last + 1)}))
			return err
		}},
		{"ListEvents with a token for position 1000", "pageToken", func() error {
			_, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{PageToken: farToken}))
			return err
		}},
		{"SubscribeEvents after position 1000", "afterPosition", func() error {
			return subscribe(&loyaltyv1.SubscribeEventsRequest{AfterPosition: new(int64(1000))})
		}},
		{"SubscribeEvents with a token for position 1000", "resumeToken", func() error {
			return subscribe(&loyaltyv1.SubscribeEventsRequest{ResumeToken: farToken})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.call(), connect.CodeOutOfRange)
			if !strings.HasPrefix(ce.Message(), tc.field+": ") || !strings.Contains(ce.Message(), fmt.Sprint(last)) {
				t.Errorf("the refusal does not name %s and the newest position %d: %v", tc.field, last, ce)
			}
		})
	}

	t.Run("the newest position is a cursor", func(t *testing.T) {
		res, err := e.events(e.adminKey).ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{AfterPosition: new(last)}))
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Msg.GetEvents()) != 0 || res.Msg.GetLastPosition() != last {
			t.Fatalf("after the newest position: %v", res.Msg)
		}
	})
}

// TestEventServiceIsForAdminKeysOnly: booking-channel, finance and
// partner keys are refused both procedures; no key is unauthenticated.
func TestEventServiceIsForAdminKeysOnly(t *testing.T) {
	e := newEnv(t)
	e.createPartner(t, "ALPHA", "0.0085", "0.0061", nil)
	partnerKey, _ := e.partnerKey(t, "ALPHA", "alpha-pms")
	finance, err := e.clients(e.adminKey).admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{
		IdempotencyKey: "finance-key", Name: "finance", Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE}))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		code      connect.Code
	}{
		{"booking channel", e.bookingKey, connect.CodePermissionDenied},
		{"finance", finance.Msg.GetSecret(), connect.CodePermissionDenied},
		{"partner", partnerKey, connect.CodePermissionDenied},
		{"no key", "", connect.CodeUnauthenticated},
	} {
		for _, p := range protocols {
			t.Run(tc.name+" over "+p.name, func(t *testing.T) {
				client := e.events(tc.key, p.opts...)
				_, err := client.ListEvents(e.ctx, connect.NewRequest(&loyaltyv1.ListEventsRequest{}))
				wantCode(t, err, tc.code)
				ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
				defer cancel()
				stream, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{FromBeginning: true}))
				if err == nil {
					for stream.Receive() {
						t.Fatal("a refused stream sent a message")
					}
					err = stream.Err()
					stream.Close()
				}
				wantCode(t, err, tc.code)
			})
		}
	}
}

// received is what a test stream received.
type received struct {
	events     []*loyaltyv1.Event
	heartbeats []*loyaltyv1.Heartbeat
}

// receiveUntil reads a stream until done says so; a stream that ends or
// fails first fails the test.
func receiveUntil(t *testing.T, stream *connect.ServerStreamForClient[loyaltyv1.SubscribeEventsResponse], got *received, done func(*received) bool) {
	t.Helper()
	for !done(got) {
		if !stream.Receive() {
			t.Fatalf("the stream ended: %v (received %d events, %d heartbeats)", stream.Err(), len(got.events), len(got.heartbeats))
		}
		switch m := stream.Msg(); {
		case m.GetEvent() != nil:
			got.events = append(got.events, m.GetEvent())
		case m.GetHeartbeat() != nil:
			got.heartbeats = append(got.heartbeats, m.GetHeartbeat())
		default:
			t.Fatalf("an empty message: %v", m)
		}
	}
}

func atLeast(n int) func(*received) bool {
	return func(r *received) bool { return len(r.events) >= n }
}

// streamEnv is an env whose streams poll and beat fast.
func streamEnv(t *testing.T, opts rpc.StreamOptions) *env {
	t.Helper()
	return newEnvWith(t, dbtest.New(t), func(c *rpc.Config) { c.Streams = opts })
}

// TestSubscribeResumesAfterADisconnectWithoutGapOrDuplicate: a stream is
// cut after some events; more are written; a stream resumed with the last
// event's token receives exactly the events after it, in position order,
// then the events written while it is open.
func TestSubscribeResumesAfterADisconnectWithoutGapOrDuplicate(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := streamEnv(t, rpc.StreamOptions{Poll: 10 * time.Millisecond, Heartbeat: time.Minute})
			member := e.enroll(t, e.clients(e.bookingKey), "enrol-1")
			for i := range 4 {
				e.adjust(t, fmt.Sprint("first-", i), member, int64(i+1))
			}
			e.sequence(t)
			client := e.events(e.adminKey, p.opts...)

			ctx, cut := context.WithTimeout(e.ctx, 20*time.Second)
			stream, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{FromBeginning: true}))
			if err != nil {
				t.Fatal(err)
			}
			var first received
			receiveUntil(t, stream, &first, atLeast(2))
			cut() // the connection drops mid-stream
			stream.Close()
			token := first.events[len(first.events)-1].GetResumeToken()

			for i := range 3 {
				e.adjust(t, fmt.Sprint("while-away-", i), member, int64(i+10))
			}
			e.sequence(t)
			log := e.allEvents(t, &loyaltyv1.ListEventsRequest{})

			ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
			defer cancel()
			resumed, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{ResumeToken: token}))
			if err != nil {
				t.Fatal(err)
			}
			defer resumed.Close()
			var second received
			receiveUntil(t, resumed, &second, atLeast(len(log)-len(first.events)))
			// Written while the stream is open: they arrive as sequenced.
			for i := range 2 {
				e.adjust(t, fmt.Sprint("live-", i), member, int64(i+20))
			}
			e.sequence(t)
			receiveUntil(t, resumed, &second, atLeast(len(log)-len(first.events)+2))

			got := append(first.events, second.events...)
			for i, ev := range got {
				if ev.GetPosition() != int64(i+1) {
					t.Fatalf("event %d received has position %d: a gap or a duplicate across the resume", i, ev.GetPosition())
				}
				if i < len(log) && ev.GetId() != log[i].GetId() {
					t.Fatalf("position %d: stream sent %s, the log has %s", i+1, ev.GetId(), log[i].GetId())
				}
			}
		})
	}
}

// TestSubscribeSendsHeartbeatsThatResume: an idle stream sends heartbeats
// with the position reached; a filtered stream's heartbeat moves past the
// events it skipped; a stream resumed from a heartbeat's token starts
// right after it.
func TestSubscribeSendsHeartbeatsThatResume(t *testing.T) {
	e := streamEnv(t, rpc.StreamOptions{Poll: 10 * time.Millisecond, Heartbeat: 100 * time.Millisecond})
	c := e.clients(e.bookingKey)
	alice, bob := e.enroll(t, c, "enrol-a"), e.enroll(t, c, "enrol-b")
	e.adjust(t, "a-0", alice, 5)
	e.sequence(t)
	client := e.events(e.adminKey)
	ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
	defer cancel()

	// From now: nothing to send, so a heartbeat at the newest position.
	idle, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	var got received
	receiveUntil(t, idle, &got, func(r *received) bool { return len(r.heartbeats) > 0 })
	last := int64(len(e.allEvents(t, &loyaltyv1.ListEventsRequest{})))
	if hb := got.heartbeats[0]; len(got.events) != 0 || hb.GetPosition() != last || hb.GetResumeToken() == "" || hb.GetSentAt() == nil {
		t.Fatalf("first message of an idle stream: %v, events %v; want a heartbeat at %d", hb, got.events, last)
	}

	// Bob's stream: alice's events are skipped, and its heartbeats say so.
	bobs, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{MemberNumber: bob}))
	if err != nil {
		t.Fatal(err)
	}
	defer bobs.Close()
	for i := range 3 {
		e.adjust(t, fmt.Sprint("a-", i+1), alice, 5)
	}
	e.sequence(t)
	last += 3
	var bobGot received
	receiveUntil(t, bobs, &bobGot, func(r *received) bool {
		return len(r.heartbeats) > 0 && r.heartbeats[len(r.heartbeats)-1].GetPosition() == last
	})
	if len(bobGot.events) != 0 {
		t.Fatalf("bob's stream sent alice's events: %v", bobGot.events)
	}
	token := bobGot.heartbeats[len(bobGot.heartbeats)-1].GetResumeToken()

	e.adjust(t, "b-1", bob, 7)
	e.sequence(t)
	resumed, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{ResumeToken: token, MemberNumber: bob}))
	if err != nil {
		t.Fatal(err)
	}
	defer resumed.Close()
	var after received
	receiveUntil(t, resumed, &after, atLeast(1))
	if ev := after.events[0]; ev.GetPosition() != last+1 || ev.GetSubject() != bob {
		t.Fatalf("resumed from the heartbeat: %v; want bob's event at %d", ev, last+1)
	}
}

// TestStreamsEndCleanly: a stream ends without error when its time is up
// and when the server stops streams (shutting down), which then refuses
// new ones as UNAVAILABLE; a server's streams are bounded.
func TestStreamsEndCleanly(t *testing.T) {
	t.Run("time is up", func(t *testing.T) {
		e := streamEnv(t, rpc.StreamOptions{Poll: 10 * time.Millisecond, MaxDuration: 300 * time.Millisecond})
		ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
		defer cancel()
		stream, err := e.events(e.adminKey).SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		for stream.Receive() {
		}
		if err := stream.Err(); err != nil || ctx.Err() != nil {
			t.Fatalf("a stream at its time: %v (context %v)", err, ctx.Err())
		}
	})
	t.Run("the server stops", func(t *testing.T) {
		e := streamEnv(t, rpc.StreamOptions{Poll: 10 * time.Millisecond, Heartbeat: 50 * time.Millisecond, MaxStreams: 1})
		ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
		defer cancel()
		client := e.events(e.adminKey)
		stream, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{}))
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		var got received
		receiveUntil(t, stream, &got, func(r *received) bool { return len(r.heartbeats) > 0 })

		second, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{}))
		if err == nil {
			second.Receive()
			err = second.Err()
			second.Close()
		}
		wantCode(t, err, connect.CodeResourceExhausted)

		e.rpc.StopStreams()
		for stream.Receive() {
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("a stream the server stopped: %v", err)
		}
		third, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{}))
		if err == nil {
			third.Receive()
			err = third.Err()
			third.Close()
		}
		wantCode(t, err, connect.CodeUnavailable)
	})
}

// TestAStreamOutlivesTheServersTimeouts: an http.Server's ReadTimeout and
// WriteTimeout (loyaltyd's are 30 s) would cut a stream; the stream lifts
// them for itself, over HTTP/1.1 and HTTP/2, and MaxDuration bounds it
// instead.
func TestAStreamOutlivesTheServersTimeouts(t *testing.T) {
	e := streamEnv(t, rpc.StreamOptions{Poll: 10 * time.Millisecond, Heartbeat: 100 * time.Millisecond})
	const timeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"HTTP/1.1", false}, {"HTTP/2", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ts := httptest.NewUnstartedServer(e.rpc.Handler())
			ts.Config.ReadTimeout, ts.Config.WriteTimeout = timeout, timeout
			if tc.tls {
				ts.EnableHTTP2 = true
				ts.StartTLS()
			} else {
				ts.Start()
			}
			defer ts.Close()
			client := loyaltyv1connect.NewEventServiceClient(ts.Client(), ts.URL, connect.WithInterceptors(bearer(e.adminKey)))
			ctx, cancel := context.WithTimeout(e.ctx, 20*time.Second)
			defer cancel()
			stream, err := client.SubscribeEvents(ctx, connect.NewRequest(&loyaltyv1.SubscribeEventsRequest{}))
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			// Ten heartbeats: over three times the server's timeouts.
			var got received
			receiveUntil(t, stream, &got, func(r *received) bool { return len(r.heartbeats) >= 10 })
		})
	}
}
