package webhooks_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// The published Standard Webhooks test vector: a receiver's library
// verifies what Sign produces.
func TestSignMatchesThePublishedStandardWebhooksVector(t *testing.T) {
	got := webhooks.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}

// Every event of a committed transaction reaches each endpoint that takes
// its type exactly once, while writers, the sequencer (RunSequencer) and a
// dispatcher (Run) all run at once; refused and rolled-back writes reach
// no one. Each delivery is signed (verified as the specification says, not
// with Sign), carries the CloudEvents envelope of its event, and one
// member's events arrive in their sequence.
func TestEveryCommittedEventReachesEachMatchingEndpointOnce(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		const members, writers, perWriter = 4, 6, 30
		f := newFixture(t, db, members)
		all, earnedOnly := newReceiver(t, nil), newReceiver(t, nil)
		_, allSecret := f.endpoint(all.url(), webhooks.CreateRequest{Description: "everything"})
		_, earnedSecret := f.endpoint(earnedOnly.url(), webhooks.CreateRequest{EventTypes: []string{events.TypePointsEarned}})

		ctx, cancel := context.WithCancel(f.ctx)
		var running sync.WaitGroup
		defer running.Wait()
		defer cancel() // on a failure too: nothing runs on into the next test
		running.Go(func() {
			if err := events.RunSequencer(ctx, f.seq, 5*time.Millisecond); err != nil {
				t.Error(err)
			}
		})
		d := f.dispatcher("d", webhooks.DispatcherOptions{Workers: 8, PollInterval: 10 * time.Millisecond})
		running.Go(func() {
			if err := d.Run(ctx); err != nil {
				t.Error(err)
			}
		})

		var mu sync.Mutex
		committed := map[string]string{} // event id: type
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					m := 1 + (w+i)%members
					points := int64(10 + i)
					if i%3 == 2 {
						points = -int64(25 + i) // some are refused: not enough points
					}
					txn, err := f.post(fmt.Sprintf("w%d-%d", w, i), m, points)
					var short *ledger.InsufficientPointsError
					if errors.As(err, &short) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					typ := events.TypePointsEarned
					if points < 0 {
						typ = events.TypePointsRedeemed
					}
					mu.Lock()
					committed[events.NewID(typ, txn.ID.String(), member(m)).String()] = typ
					mu.Unlock()
				}
			})
		}
		// A write that rolls back announces nothing.
		rolledBack := events.Record{ID: uuid.New(), Type: events.TypeMemberUpdated, Subject: member(1),
			OccurredAt: f.clock.Now(), RecordedAt: f.clock.Now(), Data: map[string]string{}}
		errRollBack := errors.New("roll back")
		err := db.WriteTx(f.ctx, func(tx pgx.Tx) error {
			st := events.Row(rolledBack)
			if _, err := tx.Exec(f.ctx, st.Text(), st.Args...); err != nil {
				return err
			}
			return errRollBack
		})
		if !errors.Is(err, errRollBack) {
			t.Fatal(err)
		}
		wg.Wait()
		earned := 0
		for _, typ := range committed {
			if typ == events.TypePointsEarned {
				earned++
			}
		}
		waitFor(t, time.Minute, "every event recorded delivered at both endpoints", func() bool {
			return d.Stats().Delivered >= uint64(len(committed)+earned)
		})
		cancel()
		running.Wait()
		if n := f.drain(d); n != 0 {
			t.Errorf("%d deliveries were left after every event had arrived", n)
		}

		for _, c := range []struct {
			name   string
			rc     *receiver
			secret string
			want   func(typ string) bool
		}{
			{"the programme's endpoint", all, allSecret, func(string) bool { return true }},
			{"the endpoint of earned points", earnedOnly, earnedSecret, func(typ string) bool { return typ == events.TypePointsEarned }},
		} {
			seen := map[string]bool{}
			lastSeq := map[string]int64{}
			for _, got := range c.rc.got() {
				typ, ok := committed[got.ID]
				if !ok || !c.want(typ) || seen[got.ID] {
					t.Fatalf("%s got event %s (%s): not committed, not its type, or twice", c.name, got.ID, typ)
				}
				seen[got.ID] = true
				if err := verify(c.secret, got, f.clock.Now()); err != nil {
					t.Fatalf("%s: event %s: %v", c.name, got.ID, err)
				}
				seq, _ := strconv.ParseInt(got.Envelope.Sequence, 10, 64)
				if got.ContentType != "application/json" || got.Envelope.ID != got.ID || got.Envelope.Type != typ || got.Envelope.SpecVersion != "1.0" {
					t.Fatalf("%s: event %s came as %s with envelope %+v", c.name, got.ID, got.ContentType, got.Envelope)
				}
				if seq <= lastSeq[got.Envelope.Subject] {
					t.Fatalf("%s: %s's event %d came after its event %d", c.name, got.Envelope.Subject, seq, lastSeq[got.Envelope.Subject])
				}
				lastSeq[got.Envelope.Subject] = seq
			}
			for id, typ := range committed {
				if c.want(typ) && !seen[id] {
					t.Errorf("%s never got event %s", c.name, id)
				}
			}
		}
		st := d.Stats()
		if want := uint64(len(committed) + earned); st.Delivered != want || st.Attempts != want || st.Failed != 0 || st.FannedOut != want {
			t.Errorf("stats %+v, want %d attempts, all delivered", st, want)
		}
	})
}

// A failed attempt (an error status, no answer in time, a closed
// connection, a redirect, which is not followed) is recorded with its
// status, error and latency, and the event comes again later with the same
// webhook-id (and a fresh timestamp and signature).
func TestAFailedAttemptComesAgainWithTheSameWebhookID(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fail     func(w http.ResponseWriter, r *http.Request) int
		wantCode int
	}{
		{"an error status", func(w http.ResponseWriter, _ *http.Request) int {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("down for maintenance")) // the start of the error text
			return -1
		}, http.StatusServiceUnavailable},
		{"a 500", func(http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError }, http.StatusInternalServerError},
		{"no answer in time", func(_ http.ResponseWriter, r *http.Request) int { return hang(r, nil) }, 0},
		{"a closed connection", func(w http.ResponseWriter, _ *http.Request) int { return closeConnection(w) }, 0},
		{"a redirect", func(w http.ResponseWriter, r *http.Request) int {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return -1
		}, http.StatusFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, dbtest.New(t), 1)
			rc := newReceiver(t, func(c call, w http.ResponseWriter, r *http.Request) int {
				if c.Nth == 1 {
					return tc.fail(w, r)
				}
				return 0
			})
			ep, secret := f.endpoint(rc.url(), webhooks.CreateRequest{})
			id := f.earn("earn", 1, 100)
			f.sequence()
			d := f.dispatcher("d", webhooks.DispatcherOptions{Client: &http.Client{Timeout: 300 * time.Millisecond,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}})

			if n := f.step(d); n != 1 {
				t.Fatalf("attempted %d, want 1", n)
			}
			first := f.delivery(ep.ID, id)
			if first.Status != webhooks.StatusPending || first.Attempts != 1 || first.LastStatusCode != tc.wantCode || first.LastError == "" ||
				!first.LastAttemptAt.Equal(start) || !first.NextAttemptAt.After(start) || first.NextAttemptAt.After(start.Add(6*time.Second)) {
				t.Fatalf("after a failed attempt: %+v", first)
			}
			if len(first.LastError) > webhooks.MaxErrorBytes {
				t.Fatalf("error text of %d bytes", len(first.LastError))
			}
			if n := f.step(d); n != 0 {
				t.Fatalf("attempted %d before the retry was due", n)
			}
			f.clock.Advance(10 * time.Second)
			if n := f.step(d); n != 1 {
				t.Fatalf("attempted %d once the retry was due, want 1", n)
			}
			done := f.delivery(ep.ID, id)
			if done.Status != webhooks.StatusDelivered || done.Attempts != 2 || done.LastStatusCode != http.StatusOK || done.LastError != "" ||
				!done.DeliveredAt.Equal(f.clock.Now()) || !done.NextAttemptAt.IsZero() {
				t.Fatalf("after a successful retry: %+v", done)
			}
			calls := rc.got()
			if len(calls) != 2 || calls[0].ID != id.String() || calls[1].ID != id.String() || calls[0].Timestamp == calls[1].Timestamp {
				t.Fatalf("receiver got %+v, want the event twice with its id", calls)
			}
			for _, c := range calls {
				if err := verify(secret, c, f.clock.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if st := d.Stats(); st.Attempts != 2 || st.Failed != 1 || st.Delivered != 1 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

// One member's events are delivered in order across retries: while the
// first of member A's fails and waits for its retry, A's second is not
// attempted, and member B's events flow.
func TestOrderPerMemberHoldsAcrossRetries(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db, 2)
		var failOnce sync.Once
		rc := newReceiver(t, func(c call, _ http.ResponseWriter, _ *http.Request) int {
			fail := false
			if c.Envelope.Subject == member(1) {
				failOnce.Do(func() { fail = true }) // A's first event, at its first attempt
			}
			if fail {
				return http.StatusBadGateway
			}
			return 0
		})
		ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
		a1, b1, a2, b2 := f.earn("a1", 1, 10), f.earn("b1", 2, 10), f.earn("a2", 1, 20), f.earn("b2", 2, 20)
		f.sequence()
		d := f.dispatcher("d", webhooks.DispatcherOptions{})

		ids := func() []string {
			var out []string
			for _, c := range rc.got() {
				out = append(out, fmt.Sprintf("%s#%d", c.ID, c.Nth))
			}
			return out
		}
		want := func(calls ...string) {
			t.Helper()
			if got := ids(); !slices.Equal(got, calls) {
				t.Fatalf("receiver got %v, want %v", got, calls)
			}
		}
		name := func(id uuid.UUID, nth int) string { return fmt.Sprintf("%s#%d", id, nth) }

		// One member's events go out one after another: a1 fails, and a2
		// waits for its retry; B's go on.
		if n := f.step(d); n != 3 {
			t.Fatalf("first round attempted %d, want 3 (a1, which fails, b1 and b2)", n)
		}
		calls := ids()
		var forA, forB []string
		for _, c := range calls {
			if strings.HasPrefix(c, a1.String()) || strings.HasPrefix(c, a2.String()) {
				forA = append(forA, c)
			} else {
				forB = append(forB, c)
			}
		}
		if !slices.Equal(forA, []string{name(a1, 1)}) || !slices.Equal(forB, []string{name(b1, 1), name(b2, 1)}) {
			t.Fatalf("first round sent %v for A and %v for B, want a1, then b1 and b2", forA, forB)
		}
		if n := f.step(d); n != 0 {
			t.Fatalf("attempted %d while a1 waits for its retry", n)
		}
		if dl := f.delivery(ep.ID, a2); dl.Status != webhooks.StatusPending || dl.Attempts != 0 {
			t.Fatalf("a2 %+v: attempted before a1 was delivered", dl)
		}
		// Operators see what the endpoint has not received: a1, failed,
		// and a2 behind it, since a1 was recorded.
		backlog, err := f.store.Backlog(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if backlog.Pending != 2 || !backlog.OldestRecordedAt.Equal(start) {
			t.Fatalf("backlog while a1 waits for its retry: %+v, want 2 pending since %s", backlog, start)
		}
		f.clock.Advance(time.Minute)
		if n := f.step(d); n != 1 { // a1 again
			t.Fatal("a1 was not retried")
		}
		if n := f.step(d); n != 1 { // then a2
			t.Fatal("a2 did not follow a1")
		}
		want(append(calls[:3:3], name(a1, 2), name(a2, 1))...)
		if backlog, err := f.store.Backlog(f.ctx); err != nil || backlog.Pending != 0 || !backlog.OldestRecordedAt.IsZero() {
			t.Fatalf("backlog once everything is delivered: %+v, %v", backlog, err)
		}
		for _, id := range []uuid.UUID{a1, a2, b1, b2} {
			if dl := f.delivery(ep.ID, id); dl.Status != webhooks.StatusDelivered {
				t.Errorf("%s: %+v", id, dl)
			}
		}
	})
}

// During a rotation's overlap every delivery carries two signatures, one
// by each secret (each verifies with its own secret only); after it, only
// the new secret signs. The secret is shown once: a replay of the rotation
// returns none.
func TestSecretRotationSignsWithBothSecretsDuringTheOverlap(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	rc := newReceiver(t, nil)
	ep, oldSecret := f.endpoint(rc.url(), webhooks.CreateRequest{})
	d := f.dispatcher("d", webhooks.DispatcherOptions{})
	f.earn("before", 1, 10)
	f.sequence()
	f.drain(d)

	f.clock.Advance(time.Minute)
	rotated, newSecret, err := f.store.RotateSecret(f.ctx, "admin", "rotate", ep.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if newSecret == "" || newSecret == oldSecret || !rotated.SecretRotatedAt.Equal(f.clock.Now()) {
		t.Fatalf("rotation gave %+v and secret %q", rotated, newSecret)
	}
	replayed, again, err := f.store.RotateSecret(f.ctx, "admin", "rotate", ep.ID, time.Hour)
	if err != nil || again != "" || !replayed.SecretRotatedAt.Equal(rotated.SecretRotatedAt) {
		t.Fatalf("replayed rotation: %+v, secret %q, %v: want the same endpoint and no secret", replayed, again, err)
	}
	f.earn("during", 1, 10)
	f.sequence()
	f.drain(d)
	f.clock.Advance(2 * time.Hour)
	f.earn("after", 1, 10)
	f.sequence()
	f.drain(d)

	calls := rc.got()
	if len(calls) != 3 {
		t.Fatalf("receiver got %d deliveries, want 3", len(calls))
	}
	only := func(c call, sig string) call { c.Signature = sig; return c }
	at := []time.Time{start, start.Add(time.Minute), start.Add(time.Minute + 2*time.Hour)}
	for i, c := range calls {
		sigs := strings.Fields(c.Signature)
		switch i {
		case 0, 2:
			secret := map[int]string{0: oldSecret, 2: newSecret}[i]
			other := map[int]string{0: newSecret, 2: oldSecret}[i]
			if len(sigs) != 1 || verify(secret, c, at[i]) != nil || verify(other, c, at[i]) == nil {
				t.Errorf("delivery %d: signatures %q: want one, by its secret only", i, c.Signature)
			}
		case 1:
			if len(sigs) != 2 || verify(newSecret, only(c, sigs[0]), at[i]) != nil || verify(oldSecret, only(c, sigs[1]), at[i]) != nil ||
				verify(oldSecret, only(c, sigs[0]), at[i]) == nil || verify(newSecret, only(c, sigs[1]), at[i]) == nil {
				t.Errorf("delivery during the overlap: signatures %q: want the new secret's, then the old one's", c.Signature)
			}
		}
	}
}

// A delivery that keeps failing is retried, with backoff, until three days
// after its first attempt, then it is dead: listed as a dead letter, no
// longer holding up its member's later events. Redeliver sends it again.
func TestAfterThreeDaysOfFailuresADeliveryIsDeadAndRedeliverSendsIt(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	var mu sync.Mutex
	fixed := false
	var first uuid.UUID
	rc := newReceiver(t, func(c call, _ http.ResponseWriter, _ *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if c.ID == first.String() && !fixed {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	mu.Lock()
	first = f.earn("first", 1, 10)
	mu.Unlock()
	second := f.earn("second", 1, 20)
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{})

	f.step(d)
	hours := 0
	for ; hours < 100 && f.delivery(ep.ID, first).Status == webhooks.StatusPending; hours++ {
		if dl := f.delivery(ep.ID, second); dl.Attempts != 0 {
			t.Fatalf("the second event was attempted while the first was pending: %+v", dl)
		}
		f.clock.Advance(time.Hour)
		f.step(d)
	}
	dead := f.delivery(ep.ID, first)
	if dead.Status != webhooks.StatusDead || !dead.LastAttemptAt.Equal(start.Add(webhooks.RetryFor)) ||
		dead.Attempts < 10 || dead.LastStatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after %d hours: %+v, want dead after its attempt at %s", hours, dead, start.Add(webhooks.RetryFor))
	}
	if letters := f.deliveries(ep.ID, webhooks.StatusDead); len(letters) != 1 || letters[0].EventID != first {
		t.Fatalf("dead letters %+v", letters)
	}
	if n := f.step(d); n != 1 || f.delivery(ep.ID, second).Status != webhooks.StatusDelivered {
		t.Fatal("the second event was not delivered once the first was dead")
	}

	mu.Lock()
	fixed = true
	mu.Unlock()
	again, err := f.store.Redeliver(f.ctx, "admin", "redeliver", ep.ID, first)
	if err != nil {
		t.Fatal(err)
	}
	if again.Status != webhooks.StatusPending || !again.NextAttemptAt.Equal(f.clock.Now()) {
		t.Fatalf("redelivered: %+v", again)
	}
	if n := f.step(d); n != 1 {
		t.Fatalf("attempted %d after Redeliver, want 1", n)
	}
	if dl := f.delivery(ep.ID, first); dl.Status != webhooks.StatusDelivered || dl.Attempts != dead.Attempts+1 {
		t.Fatalf("after Redeliver: %+v", dl)
	}
	calls := rc.got()
	if last := calls[len(calls)-1]; last.ID != first.String() || last.Nth != dead.Attempts+1 {
		t.Fatalf("last call %+v: want the first event again, with its id", last)
	}
	if st := d.Stats(); st.Dead != 1 {
		t.Errorf("stats %+v: want 1 dead", st)
	}
	if _, err := f.store.Redeliver(f.ctx, "admin", "unknown", ep.ID, uuid.New()); !errors.Is(err, webhooks.ErrNotFound) {
		t.Errorf("Redeliver of an event never delivered: %v, want ErrNotFound", err)
	}
}

// A partner's endpoint receives only the events of its partner's hotels
// (PartnerID), whatever else happens; the programme's endpoint receives
// them all.
func TestAPartnerEndpointReceivesOnlyItsPartnersEvents(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	f.createPartner("P1")
	f.createPartner("P2")
	programmeRC, p1RC, p2RC, p1SuspendedRC := newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil), newReceiver(t, nil)
	f.endpoint(programmeRC.url(), webhooks.CreateRequest{})
	f.endpoint(p1RC.url(), webhooks.CreateRequest{PartnerID: "P1"})
	f.endpoint(p2RC.url(), webhooks.CreateRequest{PartnerID: "P2"})
	f.endpoint(p1SuspendedRC.url(), webhooks.CreateRequest{PartnerID: "P1", EventTypes: []string{events.TypePartnerReinstated}})

	p1a, p2a, p1b := f.partnerFact("P1", "a"), f.partnerFact("P2", "a"), f.partnerFact("P1", "b")
	f.announce(p1a, p2a)
	stay := f.earn("programme-stay", 1, 100) // no partner
	f.announce(p1b)
	reinstated := f.partnerFact("P1", "c")
	reinstated.Type, reinstated.ID = events.TypePartnerReinstated, events.NewID(events.TypePartnerReinstated, "P1", "c")
	f.announce(reinstated)
	f.sequence()
	f.drain(f.dispatcher("d", webhooks.DispatcherOptions{}))

	for _, c := range []struct {
		name, partner string
		rc            *receiver
		want          []uuid.UUID
	}{
		{"programme", "", programmeRC, []uuid.UUID{p1a.ID, p2a.ID, stay, p1b.ID, reinstated.ID}},
		{"P1", "P1", p1RC, []uuid.UUID{p1a.ID, p1b.ID, reinstated.ID}},
		{"P2", "P2", p2RC, []uuid.UUID{p2a.ID}},
		{"P1's reinstatements", "P1", p1SuspendedRC, []uuid.UUID{reinstated.ID}},
	} {
		var got []uuid.UUID
		for _, call := range c.rc.got() {
			got = append(got, uuid.MustParse(call.ID))
			if c.partner != "" && call.Envelope.PartnerID != c.partner {
				t.Errorf("%s's endpoint got %s with partner %q", c.name, call.ID, call.Envelope.PartnerID)
			}
		}
		slices.SortFunc(got, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		slices.SortFunc(c.want, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		if !slices.Equal(got, c.want) {
			t.Errorf("%s's endpoint got %v, want %v", c.name, got, c.want)
		}
	}
}

// Two dispatchers on one database share the endpoints: together they
// deliver every event once, and never have one delivery in flight twice
// at once (the receiver counts requests per webhook-id in flight).
func TestTwoDispatchersNeverSendOneDeliveryTwiceAtOnce(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		const members, perMember = 12, 20
		f := newFixture(t, db, members)
		rc := newReceiver(t, func(call, http.ResponseWriter, *http.Request) int {
			time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // a receiver's work
			return 0
		})
		f.endpoint(rc.url(), webhooks.CreateRequest{})
		f.endpoint(rc.url()+"/second", webhooks.CreateRequest{})
		want := map[string]bool{}
		for i := range perMember {
			for m := 1; m <= members; m++ {
				want[f.earn(fmt.Sprintf("%d-%d", m, i), m, 10).String()] = true
			}
		}
		f.sequence()
		ctx, cancel := context.WithCancel(f.ctx)
		var running sync.WaitGroup
		defer running.Wait()
		defer cancel()
		dispatchers := []*webhooks.Dispatcher{
			f.dispatcher("a", webhooks.DispatcherOptions{Workers: 6, PollInterval: 5 * time.Millisecond}),
			f.dispatcher("b", webhooks.DispatcherOptions{Workers: 6, PollInterval: 5 * time.Millisecond}),
		}
		for _, d := range dispatchers {
			running.Go(func() {
				if err := d.Run(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		waitFor(t, 2*time.Minute, "every event recorded delivered at both endpoints", func() bool {
			return dispatchers[0].Stats().Delivered+dispatchers[1].Stats().Delivered >= uint64(2*len(want))
		})
		cancel()
		running.Wait()

		if o := rc.overlapping(); len(o) > 0 {
			t.Fatalf("deliveries in flight twice at once: %v", o)
		}
		perEndpoint := map[string]int{}
		for _, c := range rc.got() {
			if !want[c.ID] || c.Nth > 1 {
				t.Fatalf("got %s (its request %d)", c.ID, c.Nth)
			}
			perEndpoint[c.ID]++
		}
		if len(perEndpoint) != len(want) || len(rc.got()) != 2*len(want) {
			t.Fatalf("%d events arrived, %d requests: want %d events, each once at each endpoint", len(perEndpoint), len(rc.got()), len(want))
		}
		a, b := dispatchers[0].Stats(), dispatchers[1].Stats()
		t.Logf("dispatcher a: %+v; b: %+v", a, b)
		// Which dispatcher streams which endpoint is a race (each window
		// goes to whichever takes the endpoint's lease first): together
		// they record every delivery once.
		if a.Delivered+b.Delivered != uint64(2*len(want)) || a.FannedOut+b.FannedOut != uint64(2*len(want)) {
			t.Errorf("a delivered %d, b %d (fanned out %d and %d): want %d together", a.Delivered, b.Delivered, a.FannedOut, b.FannedOut, 2*len(want))
		}
	})
}

// A dispatcher stopped in the middle of an attempt (its context ends while
// the receiver has not answered) loses nothing: it records nothing of the
// attempt and gives the endpoint's stream back, and another dispatcher
// delivers the event, with the same webhook-id. (A process killed outright
// keeps the stream until its lease runs out: cmd/loyaltyd's kill test.)
func TestADispatcherStoppedMidDeliveryLosesNothing(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	rc := newReceiver(t, func(c call, _ http.ResponseWriter, r *http.Request) int {
		if c.Nth == 1 {
			return hang(r, nil)
		}
		return 0
	})
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	id := f.earn("earn", 1, 10)
	f.sequence()

	ctx, cancel := context.WithCancel(f.ctx)
	stopped := make(chan error)
	killed := f.dispatcher("killed", webhooks.DispatcherOptions{})
	go func() { stopped <- killed.Run(ctx) }()
	<-rc.arrived
	cancel()
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if got := f.deliveries(ep.ID, ""); len(got) != 0 {
		t.Fatalf("after the dispatcher stopped: %+v, want nothing recorded", got)
	}
	if holder, _ := f.stream(ep.ID); holder != "" {
		t.Fatalf("the stopped dispatcher still holds the stream (%q)", holder)
	}
	other := f.dispatcher("other", webhooks.DispatcherOptions{})
	if n := f.step(other); n != 1 {
		t.Fatalf("another dispatcher attempted %d, want 1", n)
	}
	if dl := f.delivery(ep.ID, id); dl.Status != webhooks.StatusDelivered || dl.Attempts != 1 {
		t.Fatalf("after the other dispatcher: %+v", dl)
	}
	if calls := rc.got(); len(calls) != 2 || calls[1].ID != id.String() {
		t.Fatalf("receiver got %+v", calls)
	}
}

// A paused endpoint's deliveries wait, not attempted; resumed, it gets
// them in order. Its queue is the events after its cursor: nothing is
// written for it while it is paused.
func TestAPausedEndpointQueuesItsDeliveriesAndResumesInOrder(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	rc := newReceiver(t, nil)
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	paused := true
	if _, err := f.store.Update(f.ctx, "admin", "pause", ep.ID, webhooks.UpdateRequest{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 5 {
		ids = append(ids, f.earn(fmt.Sprintf("e%d", i), 1, 10).String())
	}
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{})
	if n := f.drain(d); n != 0 {
		t.Fatalf("attempted %d deliveries to a paused endpoint", n)
	}
	if queued := f.deliveries(ep.ID, ""); len(queued) != 0 {
		t.Fatalf("%d deliveries written for a paused endpoint, want none", len(queued))
	}
	paused = false
	if _, err := f.store.Update(f.ctx, "admin", "resume", ep.ID, webhooks.UpdateRequest{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	f.drain(d)
	var got []string
	for _, c := range rc.got() {
		got = append(got, c.ID)
	}
	if !slices.Equal(got, ids) {
		t.Fatalf("resumed endpoint got %v, want %v", got, ids)
	}
}

// A deleted endpoint receives nothing more: neither its pending
// deliveries nor new events.
func TestADeletedEndpointReceivesNothingMore(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	rc := newReceiver(t, func(call, http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError })
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	f.earn("before", 1, 10)
	f.sequence()
	d := f.dispatcher("d", webhooks.DispatcherOptions{})
	f.step(d)
	if err := f.store.Delete(f.ctx, "admin", "delete", ep.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Delete(f.ctx, "admin", "delete", ep.ID); err != nil {
		t.Fatalf("replayed delete: %v", err)
	}
	f.earn("after", 1, 10)
	f.sequence()
	f.clock.Advance(time.Hour)
	if n := f.drain(d); n != 0 {
		t.Fatalf("attempted %d deliveries to a deleted endpoint", n)
	}
	if len(rc.got()) != 1 {
		t.Fatalf("receiver got %d requests, want the one before the deletion", len(rc.got()))
	}
	if _, err := f.store.Get(f.ctx, ep.ID); !errors.Is(err, webhooks.ErrNotFound) {
		t.Fatalf("Get of a deleted endpoint: %v", err)
	}
}

// While one dispatcher has an endpoint's window in flight, no other sends
// that endpoint's events (the stream is leased): the member's next event
// follows the first, in the next window.
func TestAnEventWrittenWhileItsMembersPreviousIsInFlightFollowsIt(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	release := make(chan struct{})
	rc := newReceiver(t, func(c call, _ http.ResponseWriter, r *http.Request) int {
		if c.Envelope.Sequence == "1" {
			hang(r, release)
		}
		return 0
	})
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	first := f.earn("first", 1, 10)
	f.sequence()
	slow, other := f.dispatcher("slow", webhooks.DispatcherOptions{}), f.dispatcher("other", webhooks.DispatcherOptions{})
	stepped := make(chan int)
	go func() { n, _ := slow.Step(f.ctx); stepped <- n }()
	<-rc.arrived

	second := f.earn("second", 1, 20)
	f.sequence()
	if n := f.step(other); n != 0 {
		t.Fatalf("the other dispatcher attempted %d while the first event was in flight", n)
	}
	if got := f.deliveries(ep.ID, ""); len(got) != 0 {
		t.Fatalf("deliveries recorded while the first is in flight: %+v", got)
	}
	close(release)
	if n := <-stepped; n != 1 {
		t.Fatalf("the slow dispatcher attempted %d, want its window's one event", n)
	}
	if n := f.step(other); n != 1 {
		t.Fatalf("the other dispatcher attempted %d once the first window was recorded, want the second event", n)
	}
	var got []string
	for _, c := range rc.got() {
		got = append(got, c.ID)
	}
	if !slices.Equal(got, []string{first.String(), second.String()}) {
		t.Fatalf("receiver got %v", got)
	}
}

// TestTheBacklogCountsEventsNoDispatcherHasSent: operators see the events
// sequenced after the cursor of the active endpoint furthest behind, and
// since when, while no dispatcher runs; a paused endpoint is not counted
// (its queue waits on purpose), and once dispatched nothing is unsent.
func TestTheBacklogCountsEventsNoDispatcherHasSent(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	rc := newReceiver(t, nil)
	ep, _ := f.endpoint(rc.url(), webhooks.CreateRequest{})
	first := f.clock.Now()
	for i := range 3 {
		f.earn(fmt.Sprintf("e%d", i), 1, 10)
		f.clock.Advance(time.Second)
	}
	f.sequence()
	backlog := func() webhooks.Backlog {
		t.Helper()
		b, err := f.store.Backlog(f.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if b := backlog(); b.Unsent != 3 || !b.OldestUnsentAt.Equal(first) || b.Pending != 0 {
		t.Fatalf("backlog with no dispatcher: %+v, want 3 unsent since %s and none pending", b, first)
	}
	paused := true
	if _, err := f.store.Update(f.ctx, "admin", "pause", ep.ID, webhooks.UpdateRequest{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	if b := backlog(); b.Unsent != 0 || !b.OldestUnsentAt.IsZero() {
		t.Fatalf("backlog of a paused endpoint: %+v, want nothing unsent", b)
	}
	paused = false
	if _, err := f.store.Update(f.ctx, "admin", "resume", ep.ID, webhooks.UpdateRequest{Paused: &paused}); err != nil {
		t.Fatal(err)
	}
	f.drain(f.dispatcher("d", webhooks.DispatcherOptions{}))
	if len(rc.got()) != 3 {
		t.Fatalf("the receiver got %d events, want 3", len(rc.got()))
	}
	if b := backlog(); b.Unsent != 0 || !b.OldestUnsentAt.IsZero() {
		t.Fatalf("backlog once dispatched: %+v, want nothing unsent", b)
	}
}

// TestAPartnerEndpointDoesNotSeeTheMembersBalance: the alliance API keeps
// a member's balance from partners, and so do their webhooks: an event at
// a partner's hotel reaches the partner's endpoint without balance_after,
// the rest of its data as it is; the programme's endpoint gets it whole.
func TestAPartnerEndpointDoesNotSeeTheMembersBalance(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	f.createPartner("P1")
	programmeRC, p1RC := newReceiver(t, nil), newReceiver(t, nil)
	f.endpoint(programmeRC.url(), webhooks.CreateRequest{})
	f.endpoint(p1RC.url(), webhooks.CreateRequest{PartnerID: "P1"})
	fact := f.partnerFact("P1", "award")
	fact.Data = map[string]any{"member_number": member(1), "points": 800,
		"balance_after": map[string]int64{"posted": 125000, "held": 0, "available": 125000}}
	f.announce(fact)
	f.sequence()
	f.drain(f.dispatcher("d", webhooks.DispatcherOptions{}))

	data := func(rc *receiver) map[string]any {
		t.Helper()
		calls := rc.got()
		if len(calls) != 1 {
			t.Fatalf("%d calls, want 1", len(calls))
		}
		var out map[string]any
		if err := json.Unmarshal(calls[0].Envelope.Data, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := data(programmeRC); got["balance_after"] == nil {
		t.Errorf("the programme's endpoint got %v, want the balance", got)
	}
	if got := data(p1RC); got["balance_after"] != nil || got["member_number"] != member(1) || got["points"] != float64(800) {
		t.Errorf("the partner's endpoint got %v, want the member and the points, not the balance", got)
	}
}
