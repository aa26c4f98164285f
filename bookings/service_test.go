package bookings_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

// world is the service on a fresh database: one hotel in Shanghai, one
// member, the default programme; its clock stands at 17:00 on 22 November
// in Shanghai.
type world struct {
	ctx      context.Context
	clock    *testclock.Clock
	ledger   *ledger.Ledger
	service  *bookings.Service
	version  programmes.Version
	property programmes.Property
	member   string
}

func newWorld(t *testing.T) world {
	t.Helper()
	ctx := context.Background()
	clock := testclock.Ticking(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), time.Millisecond)
	l := ledger.New(dbtest.New(t), ledger.Options{Clock: clock.Now})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	property, err := progs.PutProperty(ctx, "test", "hotel", programmes.Property{ID: "SH-1", Name: "Shanghai", TimeZone: "Asia/Shanghai"})
	if err != nil {
		t.Fatal(err)
	}
	if property, err = progs.Property(ctx, "SH-1"); err != nil {
		t.Fatal(err)
	}
	v, err := progs.At(ctx, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	store := members.New(l, clock.Now)
	m, err := store.Enroll(ctx, "test", "enrol", members.Enrollment{FullName: "Li Wei", Phone: "+86 1", Channel: programme.ChannelApp})
	if err != nil {
		t.Fatal(err)
	}
	return world{ctx: ctx, clock: clock, ledger: l, version: v, property: property, member: m.Number,
		service: bookings.NewService(l, store, partners.New(l, clock.Now), bookings.New(l, clock.Now), clock.Now)}
}

func date(s string) time.Time {
	d, err := programme.ParseLocalDate(s)
	if err != nil {
		panic(err)
	}
	return d
}

// event is one request to the service; key is its idempotency key.
type event func(w world, key string) error

func stay(stayID, arrival, departure string) event {
	return func(w world, key string) error {
		nights := int(date(departure).Sub(date(arrival)).Hours() / 24)
		rules := programme.Stay{PropertyID: w.property.ID, ArrivalDate: arrival, Channel: programme.ChannelFrontDesk, Currency: "CNY"}
		for range nights {
			rules.Nights = append(rules.Nights, programme.Night{RoomCharge: decimal.NewFromInt(400)})
		}
		_, err := w.service.RecordStay(w.ctx, bookings.Request{CallerID: "desk", IdempotencyKey: key}, w.version, w.property,
			bookings.Stay{MemberNumber: w.member, StayID: stayID, Arrival: date(arrival), Departure: date(departure), Rules: rules})
		return err
	}
}

func noShow(stayID, arrival string) event {
	return func(w world, key string) error {
		_, err := w.service.RecordNoShow(w.ctx, bookings.Request{CallerID: "desk", IdempotencyKey: key}, w.version, w.property,
			bookings.MissedStay{MemberNumber: w.member, StayID: stayID, Arrival: date(arrival), Nights: 1},
			time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC))
		return err
	}
}

func cancellation(stayID, arrival string, cancelledAt time.Time) event {
	return func(w world, key string) error {
		_, err := w.service.RecordCancellation(w.ctx, bookings.Request{CallerID: "desk", IdempotencyKey: key}, w.version, w.property,
			bookings.MissedStay{MemberNumber: w.member, StayID: stayID, Arrival: date(arrival), Nights: 1}, cancelledAt, time.Time{})
		return err
	}
}

func lateCheckout(stayID, departure string) event {
	return func(w world, key string) error {
		_, err := w.service.RecordLateCheckout(w.ctx, bookings.Request{CallerID: "desk", IdempotencyKey: key}, w.version, w.property,
			w.member, stayID, date(departure), 1)
		return err
	}
}

var shanghai = time.FixedZone("CST", 8*3600)

// TestTheBookingLifecycle: the rules of one booking, one outcome, and of
// the hotel's clock, through the service's own API. Each case records its
// events in order, each under a key of its own; the last is the one the
// case is about.
func TestTheBookingLifecycle(t *testing.T) {
	refusedAsRecorded := func(err error) bool { return errors.Is(err, bookings.ErrRecorded) }
	field := func(name string) func(error) bool {
		return func(err error) bool {
			var fe *bookings.FieldError
			return errors.As(err, &fe) && fe.Field == name
		}
	}
	tooEarly := func(err error) bool {
		var te *bookings.TooEarlyError
		return errors.As(err, &te)
	}
	for _, tc := range []struct {
		name   string
		events []event
		want   func(error) bool // nil: recorded
	}{
		{"a stay is recorded on its departure day", []event{stay("B1", "2026-11-21", "2026-11-22")}, nil},
		{"a stay re-sent under another key is refused", []event{stay("B1", "2026-11-20", "2026-11-21"), stay("B1", "2026-11-20", "2026-11-21")}, refusedAsRecorded},
		{"a no-show after a stay is refused", []event{stay("B1", "2026-11-20", "2026-11-21"), noShow("B1", "2026-11-20")}, refusedAsRecorded},
		{"a second no-show is refused", []event{noShow("B1", "2026-11-20"), noShow("B1", "2026-11-20")}, refusedAsRecorded},
		{"a late cancellation after a no-show is refused", []event{noShow("B1", "2026-11-20"),
			cancellation("B1", "2026-11-20", time.Date(2026, 11, 20, 18, 30, 0, 0, shanghai))}, refusedAsRecorded},
		{"a free cancellation after a no-show is refused", []event{noShow("B1", "2026-11-20"),
			cancellation("B1", "2026-11-20", time.Date(2026, 11, 19, 12, 0, 0, 0, shanghai))}, refusedAsRecorded},
		{"a stay after a free cancellation is refused", []event{cancellation("B1", "2026-11-20", time.Date(2026, 11, 19, 12, 0, 0, 0, shanghai)),
			stay("B1", "2026-11-20", "2026-11-21")}, refusedAsRecorded},
		{"a late check-out goes with its stay", []event{stay("B1", "2026-11-20", "2026-11-21"), lateCheckout("B1", "2026-11-21")}, nil},
		{"a second late check-out is refused", []event{stay("B1", "2026-11-20", "2026-11-21"), lateCheckout("B1", "2026-11-21"), lateCheckout("B1", "2026-11-21")}, refusedAsRecorded},
		{"a stay departing tomorrow is refused", []event{stay("B1", "2026-11-22", "2026-11-23")}, field("departure_date")},
		{"a late check-out departing tomorrow is refused", []event{lateCheckout("B1", "2026-11-23")}, field("departure_date")},
		{"a no-show before 18:00 on the arrival day is refused", []event{noShow("B1", "2026-11-22")}, tooEarly},
		{"a no-show for an arrival to come is refused", []event{noShow("B1", "2026-11-29")}, tooEarly},
		{"a no-show the day after arrival is recorded", []event{noShow("B1", "2026-11-21")}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			var err error
			for i, e := range tc.events {
				if err = e(w, fmt.Sprint("key-", i)); err != nil && i < len(tc.events)-1 {
					t.Fatalf("event %d: %v", i, err)
				}
			}
			switch {
			case tc.want == nil && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != nil && !tc.want(err):
				t.Fatalf("got %v, want the refusal the case names", err)
			}
			if found, err := w.ledger.Verify(w.ctx); err != nil || len(found) != 0 {
				t.Fatalf("verify: %v %v", found, err)
			}
		})
	}
}

// TestARetryUnderTheSameKeyGetsTheFirstAnswer: whatever the outcome, the
// same request under the same key is answered as the first time.
func TestARetryUnderTheSameKeyGetsTheFirstAnswer(t *testing.T) {
	for _, e := range []struct {
		name string
		e    event
	}{
		{"stay", stay("B1", "2026-11-20", "2026-11-21")},
		{"penalised no-show", noShow("B1", "2026-11-20")},
		{"free cancellation", cancellation("B1", "2026-11-20", time.Date(2026, 11, 19, 12, 0, 0, 0, shanghai))},
		{"late check-out", lateCheckout("B1", "2026-11-21")},
	} {
		t.Run(e.name, func(t *testing.T) {
			w := newWorld(t)
			if e.name == "late check-out" {
				if err := stay("B1", "2026-11-20", "2026-11-21")(w, "stay"); err != nil {
					t.Fatal(err)
				}
			}
			for attempt := range 2 {
				if err := e.e(w, "the-key"); err != nil {
					t.Fatalf("attempt %d: %v", attempt, err)
				}
			}
		})
	}
}
