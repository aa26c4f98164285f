package webhooks_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// Every bad request is refused before anything is written, naming the
// request's field as the API spells it.
func TestBadRequestsAreRefusedNamingTheirField(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 0)
	f.createPartner("P1")
	ep, _ := f.endpoint("https://example.com/hook", webhooks.CreateRequest{})
	create := func(req webhooks.CreateRequest) error {
		_, _, err := f.store.Create(f.ctx, "admin", uuid.NewString(), req)
		return err
	}
	update := func(id string, req webhooks.UpdateRequest) error {
		_, err := f.store.Update(f.ctx, "admin", uuid.NewString(), id, req)
		return err
	}
	ptr := func(s string) *string { return &s }
	size := func(n int) *int { return &n }
	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"no URL", "url", func() error { return create(webhooks.CreateRequest{}) }},
		{"an FTP URL", "url", func() error { return create(webhooks.CreateRequest{URL: "ftp://example.com/"}) }},
		{"a URL without a host", "url", func() error { return create(webhooks.CreateRequest{URL: "https:///hook"}) }},
		{"a URL with credentials", "url", func() error { return create(webhooks.CreateRequest{URL: "https://me:secret@example.com/"}) }},
		{"an http URL to another machine", "url", func() error { return create(webhooks.CreateRequest{URL: "http://hooks.example.com/loyalty"}) }},
		{"a URL too long", "url", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/" + strings.Repeat("a", webhooks.MaxURLBytes)})
		}},
		{"an unknown event type", "event_types", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/", EventTypes: []string{"loyalty.points.stolen.v1"}})
		}},
		{"an event type twice", "event_types", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/", EventTypes: []string{events.TypePointsEarned, events.TypePointsEarned}})
		}},
		{"a malformed partner id", "partner_id", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/", PartnerID: "no such!"})
		}},
		{"a partner that does not exist", "partner_id", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/", PartnerID: "P9"})
		}},
		{"a description too long", "description", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/", Description: strings.Repeat("é", webhooks.MaxDescription+1)})
		}},
		{"a negative batch size", "batch_size", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/", BatchSize: -1})
		}},
		{"a batch size over the most", "batch_size", func() error {
			return create(webhooks.CreateRequest{URL: "https://example.com/", BatchSize: webhooks.MaxBatchSize + 1})
		}},
		{"an update of a malformed id", "endpoint_id", func() error { return update("wh_nothex", webhooks.UpdateRequest{}) }},
		{"an update to a bad URL", "url", func() error { return update(ep.ID, webhooks.UpdateRequest{URL: ptr("mailto:me@example.com")}) }},
		{"an update to an unknown type", "event_types", func() error {
			return update(ep.ID, webhooks.UpdateRequest{EventTypes: &[]string{"nope"}})
		}},
		{"an update to a description too long", "description", func() error {
			return update(ep.ID, webhooks.UpdateRequest{Description: ptr(strings.Repeat("x", webhooks.MaxDescription+1))})
		}},
		{"an update to a batch size of 0", "batch_size", func() error { return update(ep.ID, webhooks.UpdateRequest{BatchSize: size(0)}) }},
		{"an update to a batch size over the most", "batch_size", func() error {
			return update(ep.ID, webhooks.UpdateRequest{BatchSize: size(webhooks.MaxBatchSize + 1)})
		}},
		{"a negative overlap", "overlap", func() error {
			_, _, err := f.store.RotateSecret(f.ctx, "admin", uuid.NewString(), ep.ID, -time.Second)
			return err
		}},
		{"an overlap over a week", "overlap", func() error {
			_, _, err := f.store.RotateSecret(f.ctx, "admin", uuid.NewString(), ep.ID, webhooks.MaxOverlap+time.Second)
			return err
		}},
		{"a page too large", "page_size", func() error { _, _, err := f.store.List(f.ctx, webhooks.MaxPageSize+1, ""); return err }},
		{"a forged page token", "page_token", func() error { _, _, err := f.store.List(f.ctx, 10, "not-a-token"); return err }},
		{"a delivery status that does not exist", "status", func() error {
			_, _, err := f.store.ListDeliveries(f.ctx, ep.ID, webhooks.DeliveryFilter{Status: "lost"}, 10, "")
			return err
		}},
		{"a forged delivery page token", "page_token", func() error {
			_, _, err := f.store.ListDeliveries(f.ctx, ep.ID, webhooks.DeliveryFilter{}, 10, "!!")
			return err
		}},
		{"a redelivery without an event", "event_id", func() error {
			_, err := f.store.Redeliver(f.ctx, "admin", uuid.NewString(), ep.ID, uuid.Nil)
			return err
		}},
		{"a deletion of a malformed id", "endpoint_id", func() error { return f.store.Delete(f.ctx, "admin", uuid.NewString(), "") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ledger.ErrInvalid) {
				t.Fatalf("got %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
	if list, _, err := f.store.List(f.ctx, 0, ""); err != nil || len(list) != 1 {
		t.Fatalf("endpoints after the refusals: %+v, %v: want the one created", list, err)
	}
}

// Endpoints list by id a page at a time; an update shows in Get; a
// replayed create returns the endpoint without its secret, and a key
// reused for another request is refused; a deleted endpoint is gone.
func TestEndpointsAreKeptListedAndReplayed(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 0)
	f.createPartner("P1")
	req := webhooks.CreateRequest{URL: "https://example.com/a", EventTypes: []string{events.TypePointsEarned}, PartnerID: "P1", Description: "P1's CRM"}
	first, secret, err := f.store.Create(f.ctx, "admin", "create-a", req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "whsec_") || len(secret) != len("whsec_")+44 || !strings.HasPrefix(first.ID, "wh_") ||
		first.PartnerID != "P1" || first.CreatedBy != "admin" || !first.CreatedAt.Equal(start) || !first.SecretRotatedAt.IsZero() {
		t.Fatalf("created %+v with secret %q", first, secret)
	}
	replayed, again, err := f.store.Create(f.ctx, "admin", "create-a", req)
	if err != nil || again != "" || replayed.ID != first.ID {
		t.Fatalf("replay: %+v, secret %q, %v: want the same endpoint and no secret", replayed, again, err)
	}
	req.URL = "https://example.com/other"
	var conflict *ledger.IdempotencyConflictError
	if _, _, err := f.store.Create(f.ctx, "admin", "create-a", req); !errors.As(err, &conflict) {
		t.Fatalf("a key reused for another endpoint: %v, want IdempotencyConflictError", err)
	}

	ids := []string{first.ID}
	for i := range 4 {
		ep, _ := f.endpoint(fmt.Sprintf("https://example.com/%d", i), webhooks.CreateRequest{})
		ids = append(ids, ep.ID)
	}
	var listed []string
	token := ""
	for pages := 0; ; pages++ {
		page, next, err := f.store.List(f.ctx, 2, token)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page {
			listed = append(listed, e.ID)
		}
		if next == "" {
			if pages != 2 {
				t.Errorf("%d pages of 2 for 5 endpoints", pages+1)
			}
			break
		}
		token = next
	}
	if len(listed) != len(ids) {
		t.Fatalf("listed %v, want %v", listed, ids)
	}
	for i := 1; i < len(listed); i++ {
		if listed[i] <= listed[i-1] {
			t.Fatalf("listed %v: not by id", listed)
		}
	}

	f.clock.Advance(time.Hour)
	url, types, description, paused := "https://example.com/b", []string{}, "", true
	updated, err := f.store.Update(f.ctx, "admin", "update-a", first.ID,
		webhooks.UpdateRequest{URL: &url, EventTypes: &types, Description: &description, Paused: &paused})
	if err != nil {
		t.Fatal(err)
	}
	got, err := f.store.Get(f.ctx, first.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := first
	want.URL, want.EventTypes, want.Description, want.Paused, want.UpdatedAt = url, nil, "", true, start.Add(time.Hour)
	if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", want) || fmt.Sprintf("%+v", updated) != fmt.Sprintf("%+v", want) {
		t.Fatalf("after the update: Get %+v, Update %+v, want %+v", got, updated, want)
	}
	// An update that changes nothing (nothing given, or the same values)
	// leaves updated_at as it was.
	f.clock.Advance(time.Hour)
	for i, req := range []webhooks.UpdateRequest{{}, {URL: &url, Paused: &paused}} {
		same, err := f.store.Update(f.ctx, "admin", fmt.Sprint("update-nothing-", i), first.ID, req)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", same) != fmt.Sprintf("%+v", want) {
			t.Fatalf("an update %d that changes nothing: %+v, want %+v", i, same, want)
		}
	}
	if err := f.store.Delete(f.ctx, "admin", "delete-a", first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Get(f.ctx, first.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	if err := f.store.Delete(f.ctx, "admin", "delete-again", first.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("a second Delete: %v, want ErrNotFound", err)
	}
	if _, err := f.store.Update(f.ctx, "admin", "update-deleted", first.ID, webhooks.UpdateRequest{Paused: &paused}); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("Update after Delete: %v, want ErrNotFound", err)
	}
	if list, _, _ := f.store.List(f.ctx, 0, ""); len(list) != 4 {
		t.Fatalf("%d endpoints listed after a deletion, want 4", len(list))
	}
	if _, err := f.store.Get(f.ctx, "wh_0123456789abcdef"); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("Get of an unknown endpoint: %v", err)
	}
}

// An endpoint's batch size is kept as created (0: one event per request)
// and as updated; an update that does not name it leaves it as it is.
func TestBatchSizeIsKeptAsCreatedAndUpdated(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 0)
	size := func(n int) *int { return &n }
	for _, tc := range []struct {
		name   string
		create int
		update *int
		want   int
	}{
		{"0 is one event per request", 0, nil, webhooks.DefaultBatchSize},
		{"1 is kept", 1, nil, 1},
		{"the most is kept", webhooks.MaxBatchSize, nil, webhooks.MaxBatchSize},
		{"an update to 7 is kept", 0, size(7), 7},
		{"an update to 1 is kept", webhooks.MaxBatchSize, size(1), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			created, _, err := f.store.Create(f.ctx, "admin", uuid.NewString(),
				webhooks.CreateRequest{URL: "https://example.com/" + strings.ReplaceAll(tc.name, " ", "-"), BatchSize: tc.create})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.want
			if tc.update != nil {
				if created.BatchSize == *tc.update {
					t.Fatalf("created with batch size %d already: the update proves nothing", created.BatchSize)
				}
				updated, err := f.store.Update(f.ctx, "admin", uuid.NewString(), created.ID, webhooks.UpdateRequest{BatchSize: tc.update})
				if err != nil || updated.BatchSize != want || updated.URL != created.URL {
					t.Fatalf("update: %+v, %v: want batch size %d and the rest as it was", updated, err, want)
				}
			} else if created.BatchSize != want {
				t.Fatalf("created with batch size %d, want %d", created.BatchSize, want)
			}
			// Another update leaves the batch size as it is.
			description := "touched"
			if _, err := f.store.Update(f.ctx, "admin", uuid.NewString(), created.ID, webhooks.UpdateRequest{Description: &description}); err != nil {
				t.Fatal(err)
			}
			got, err := f.store.Get(f.ctx, created.ID)
			if err != nil || got.BatchSize != want {
				t.Fatalf("Get: %+v, %v: want batch size %d", got, err, want)
			}
			listed, _, err := f.store.List(f.ctx, webhooks.MaxPageSize, "")
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range listed {
				if e.ID == created.ID && e.BatchSize != want {
					t.Fatalf("List: batch size %d, want %d", e.BatchSize, want)
				}
			}
		})
	}
}

// The delivery log lists an endpoint's deliveries newest first, a page at
// a time, by status.
func TestTheDeliveryLogListsByStatusNewestFirst(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 3)
	rc := newReceiver(t, func(c call, _ http.ResponseWriter, _ *http.Request) int {
		if c.Envelope.Subject == member(3) {
			return http.StatusInternalServerError
		}
		return 0
	})
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	var all []uuid.UUID
	for i := range 9 {
		all = append(all, f.earn(fmt.Sprintf("e%d", i), 1+i%3, 10))
	}
	f.sequence()
	f.drain(f.dispatcher("d", webhooks.DispatcherOptions{}))
	listed := f.deliveries(ep.ID, "")
	if len(listed) != len(all) {
		t.Fatalf("%d deliveries listed, want %d", len(listed), len(all))
	}
	for i, d := range listed {
		if d.EventID != all[len(all)-1-i] || d.EventType != events.TypePointsEarned || d.EndpointID != ep.ID {
			t.Fatalf("delivery %d is %+v: want newest first", i, d)
		}
	}
	for status, want := range map[string]int{webhooks.StatusDelivered: 6, webhooks.StatusPending: 3, webhooks.StatusDead: 0} {
		got := f.deliveries(ep.ID, status)
		if len(got) != want {
			t.Errorf("%d %s deliveries, want %d", len(got), status, want)
		}
		for _, d := range got {
			if d.Status != status {
				t.Errorf("listed %+v as %s", d, status)
			}
		}
	}
	if _, _, err := f.store.ListDeliveries(f.ctx, "wh_0123456789abcdef", webhooks.DeliveryFilter{}, 10, ""); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("deliveries of an unknown endpoint: %v", err)
	}
}

// BacklogAge is how long the oldest event not yet sent to an endpoint has
// waited since it was recorded: 0 once the dispatcher has caught up.
func TestBacklogAgeIsHowLongTheOldestEventNotYetSentWaits(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 3)
	release := make(chan struct{})
	var once sync.Once
	rc := newReceiver(t, func(_ call, _ http.ResponseWriter, r *http.Request) int {
		hold := false
		once.Do(func() { hold = true })
		if hold {
			return hang(r, release)
		}
		return 0
	})
	f.endpoint(rc.url(), webhooks.CreateRequest{})
	for m := 1; m <= 3; m++ {
		f.earn(fmt.Sprintf("e%d", m), m, 10)
	}
	f.sequence()
	f.clock.Advance(10 * time.Second)
	d := f.dispatcher("d", webhooks.DispatcherOptions{Workers: 1})
	stepped := make(chan error, 1)
	go func() {
		_, err := d.Step(f.ctx)
		stepped <- err
	}()
	<-rc.arrived
	age := d.Stats().BacklogAge
	close(release)
	if err := <-stepped; err != nil {
		t.Fatal(err)
	}
	if age != 10*time.Second {
		t.Fatalf("backlog age %s while the first event is in flight, want 10s: the events were recorded 10 s ago", age)
	}
	f.drain(d)
	if age := d.Stats().BacklogAge; age != 0 {
		t.Fatalf("backlog age %s after catching up, want 0", age)
	}
}
