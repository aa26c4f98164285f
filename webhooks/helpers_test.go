package webhooks_test

import (
	"context"
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
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

var start = time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC)

type fixture struct {
	t      testing.TB
	ctx    context.Context
	db     *database.DB
	clock  *testclock.Clock
	ledger *ledger.Ledger
	store  *webhooks.Store
	seq    *events.Sequencer
}

func newFixture(t testing.TB, db *database.DB, members int) *fixture {
	t.Helper()
	clock := testclock.New(start)
	l := ledger.New(db, ledger.Options{Clock: clock.Now, Outbox: events.OfTransaction})
	f := &fixture{t: t, ctx: context.Background(), db: db, clock: clock, ledger: l,
		store: webhooks.NewStore(l, clock.Now), seq: events.NewSequencer(db, clock.Now, "test")}
	accounts := programme.ChartOfAccounts()
	for m := 1; m <= members; m++ {
		accounts = append(accounts, programme.MemberAccount(member(m)))
	}
	if err := l.CreateAccounts(f.ctx, accounts); err != nil {
		t.Fatal(err)
	}
	return f
}

func member(m int) string { return fmt.Sprintf("%09d", 100000000+m) }

// post earns (points > 0) or redeems (points < 0) a member's points.
func (f *fixture) post(key string, m int, points int64) (ledger.Transaction, error) {
	kind, other := ledger.KindEarn, programme.AccountIssuedStay
	if points < 0 {
		kind, other = ledger.KindRedeem, programme.AccountIssuedGoodwill
	}
	return f.ledger.Post(f.ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: key, Kind: kind, EffectiveAt: f.clock.Now(),
		Postings: []ledger.Posting{{Account: other, Amount: -points}, {Account: programme.MemberAccount(member(m)).Code, Amount: points}},
		Lots:     ledger.LotPolicy{ExpiresAt: start.AddDate(2, 0, 0)}})
}

// earn posts and fails the test on an error, and returns the id of the
// transaction's event.
func (f *fixture) earn(key string, m int, points int64) uuid.UUID {
	f.t.Helper()
	txn, err := f.post(key, m, points)
	if err != nil {
		f.t.Fatal(err)
	}
	return events.NewID(events.TypePointsEarned, txn.ID.String(), member(m))
}

// announce writes events of the caller's own (partner facts) to the
// outbox in one transaction.
func (f *fixture) announce(records ...events.Record) {
	f.t.Helper()
	err := f.db.WriteTx(f.ctx, func(tx pgx.Tx) error {
		for _, r := range records {
			st := events.Row(r)
			if _, err := tx.Exec(f.ctx, st.Text(), st.Args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

// partnerFact is an event at a partner's hotel.
func (f *fixture) partnerFact(partnerID, name string) events.Record {
	return events.Record{ID: events.NewID(events.TypePartnerSuspended, partnerID, name), Type: events.TypePartnerSuspended,
		Subject: events.PartnerSubject(partnerID), OccurredAt: f.clock.Now(), RecordedAt: f.clock.Now(),
		PartnerID: partnerID, Data: map[string]string{"name": name}}
}

func (f *fixture) createPartner(id string) {
	f.t.Helper()
	one := decimal.NewFromInt(1)
	_, err := partners.New(f.ledger, f.clock.Now).Create(f.ctx, "test", "create-"+id, partners.NewPartner{ID: id, Name: id, Currency: "CNY",
		Rates: partners.Rates{IssueRate: decimal.RequireFromString("0.0085"), ReimbursementRate: decimal.RequireFromString("0.0061"),
			EffectiveAt: start.AddDate(0, -1, 0),
			Card: partners.RateCard{PointsPerCurrencyUnit: one, TierMultiplier: map[programme.Tier]decimal.Decimal{
				programme.TierRegular: one, programme.TierSilver: one, programme.TierGold: one, programme.TierPlatinum: one}}}})
	if err != nil {
		f.t.Fatal(err)
	}
}

// sequence runs the sequencer until the outbox is empty.
func (f *fixture) sequence() {
	f.t.Helper()
	for {
		n, err := f.seq.Step(f.ctx, 100)
		if err != nil {
			f.t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
}

func (f *fixture) endpoint(url string, req webhooks.CreateRequest) (webhooks.Endpoint, string) {
	f.t.Helper()
	req.URL = url
	ep, secret, err := f.store.Create(f.ctx, "admin", "create-"+uuid.NewString(), req)
	if err != nil {
		f.t.Fatal(err)
	}
	return ep, secret
}

func (f *fixture) dispatcher(holder string, opts webhooks.DispatcherOptions) *webhooks.Dispatcher {
	opts.Clock, opts.Holder = f.clock.Now, holder
	return webhooks.NewDispatcher(f.db, f.store, opts)
}

// stream reads who holds an endpoint's stream, and until when ("" and
// zero: nobody).
func (f *fixture) stream(endpointID string) (string, time.Time) {
	f.t.Helper()
	var holder *string
	var until *time.Time
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT stream_holder, stream_until FROM webhook_endpoints WHERE id = $1`, endpointID).
		Scan(&holder, &until); err != nil {
		f.t.Fatal(err)
	}
	if holder == nil || until == nil {
		return "", time.Time{}
	}
	return *holder, *until
}

// step runs one round and returns how many deliveries it attempted.
func (f *fixture) step(d *webhooks.Dispatcher) int {
	f.t.Helper()
	n, err := d.Step(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// drain runs rounds until one attempts nothing.
func (f *fixture) drain(d *webhooks.Dispatcher) int {
	f.t.Helper()
	total := 0
	for range 10000 {
		n := f.step(d)
		if n == 0 {
			return total
		}
		total += n
	}
	f.t.Fatal("the dispatcher never ran out of deliveries")
	return total
}

func (f *fixture) deliveries(endpointID, status string) []webhooks.Delivery {
	f.t.Helper()
	var all []webhooks.Delivery
	token := ""
	for {
		page, next, err := f.store.ListDeliveries(f.ctx, endpointID, webhooks.DeliveryFilter{Status: status}, 7, token)
		if err != nil {
			f.t.Fatal(err)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		token = next
	}
}

func (f *fixture) delivery(endpointID string, eventID uuid.UUID) webhooks.Delivery {
	f.t.Helper()
	for _, d := range f.deliveries(endpointID, "") {
		if d.EventID == eventID {
			return d
		}
	}
	f.t.Fatalf("no delivery of %s to %s", eventID, endpointID)
	return webhooks.Delivery{}
}

// call is one request a receiver got.
type call struct {
	ID, Timestamp, Signature, ContentType string
	Body                                  []byte
	// Envelope is a single event's; Envelopes a batch's (Content-Type
	// application/cloudevents-batch+json).
	Envelope  events.Envelope
	Envelopes []events.Envelope
	// Nth: this is the Nth request with this webhook-id at this path
	// (from 1).
	Nth int
}

// receiver is a webhook receiver: it records every request and answers as
// respond says (200 when respond is nil or returns 0). It counts the
// requests of one webhook-id in flight at once at each path.
type receiver struct {
	srv *httptest.Server
	// respond may write the answer itself and return -1.
	respond func(c call, w http.ResponseWriter, r *http.Request) int

	mu       sync.Mutex
	calls    []call
	nth      map[string]int
	inFlight map[string]int
	overlaps []string
	arrived  chan call
}

func newReceiver(t testing.TB, respond func(c call, w http.ResponseWriter, r *http.Request) int) *receiver {
	rc := &receiver{respond: respond, nth: map[string]int{}, inFlight: map[string]int{}, arrived: make(chan call, 1000)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := call{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"),
		Signature: r.Header.Get("webhook-signature"), ContentType: r.Header.Get("content-type"), Body: body}
	if c.ContentType == "application/cloudevents-batch+json" {
		_ = json.Unmarshal(body, &c.Envelopes)
	} else {
		_ = json.Unmarshal(body, &c.Envelope)
	}
	// Two endpoints may share a receiver (at two paths): they each get
	// the event, at the same time as the other.
	key := r.URL.Path + " " + c.ID
	rc.mu.Lock()
	rc.nth[key]++
	c.Nth = rc.nth[key]
	rc.inFlight[key]++
	if rc.inFlight[key] > 1 {
		rc.overlaps = append(rc.overlaps, key)
	}
	rc.calls = append(rc.calls, c)
	rc.mu.Unlock()
	select {
	case rc.arrived <- c:
	default: // nobody waits for so many
	}
	defer func() {
		rc.mu.Lock()
		rc.inFlight[key]--
		rc.mu.Unlock()
	}()
	status := 0
	if rc.respond != nil {
		status = rc.respond(c, w, r)
	}
	if status == 0 {
		status = http.StatusOK
	}
	if status > 0 {
		w.WriteHeader(status)
	}
}

func (rc *receiver) url() string { return rc.srv.URL + "/hook" }

func (rc *receiver) got() []call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]call(nil), rc.calls...)
}

func (rc *receiver) overlapping() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.overlaps...)
}

// closeConnection answers a request by closing its connection.
func closeConnection(w http.ResponseWriter) int {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		_ = conn.Close()
	}
	return -1
}

// hang answers nothing until the request is given up or release closes.
func hang(r *http.Request, release <-chan struct{}) int {
	select {
	case <-r.Context().Done():
	case <-release:
	}
	return -1
}

// verify checks a delivery's signatures as the Standard Webhooks
// specification tells a receiver to, written from the specification: the
// signed content is "<webhook-id>.<webhook-timestamp>.<body>", the key is
// the base64 after "whsec_", the signature the base64 of its HMAC-SHA256,
// and the header lists space-separated "v1,<signature>"; one must match.
// The timestamp must be within five minutes of now.
func verify(secret string, c call, now time.Time) error {
	ts, err := strconv.ParseInt(c.Timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("webhook-timestamp %q: %w", c.Timestamp, err)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return fmt.Errorf("webhook-timestamp %s is %s from now", c.Timestamp, d)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(c.ID + "." + c.Timestamp + "." + string(c.Body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(c.Signature) {
		version, sig, ok := strings.Cut(s, ",")
		if !ok || version != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no v1 signature matches")
}

// waitFor polls cond until it holds, failing the test after limit.
func waitFor(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	begin := time.Now()
	for !cond() {
		if time.Since(begin) > limit {
			t.Fatalf("waited %s for %s", limit, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
