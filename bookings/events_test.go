package bookings_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/bookings"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

// announcing is the service on a fresh database whose ledger announces
// its transactions (events.OfTransaction), as loyaltyd's does: a chain
// hotel in Shanghai, a partner's hotel, the default programme; its clock
// stands at 17:00 on 22 November in Shanghai.
type announcing struct {
	ctx      context.Context
	db       *database.DB
	clock    *testclock.Clock
	ledger   *ledger.Ledger
	members  *members.Store
	service  *bookings.Service
	version  programmes.Version
	property programmes.Property
	// The partner's hotel and what AwardPartnerStay needs of the partner.
	partner      partners.Partner
	rates        partners.Rates
	partnerHotel programmes.Property
	// cursor is the position of the last event read.
	cursor int64
}

func newAnnouncing(t *testing.T, db *database.DB) *announcing {
	t.Helper()
	ctx := context.Background()
	clock := testclock.Ticking(time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), time.Millisecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now, Outbox: events.OfTransaction})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	w := &announcing{ctx: ctx, db: db, clock: clock, ledger: l, members: members.New(l, clock.Now)}
	ps := partners.New(l, clock.Now)
	one := decimal.NewFromInt(1)
	var err error
	w.partner, err = ps.Create(ctx, "test", "partner", partners.NewPartner{ID: "P1", Name: "Partner", Currency: "CNY", Rates: partners.Rates{
		IssueRate: decimal.RequireFromString("0.01"), ReimbursementRate: decimal.RequireFromString("0.008"),
		EffectiveAt: clock.Now().AddDate(0, -1, 0),
		Card: partners.RateCard{PointsPerCurrencyUnit: one, TierMultiplier: map[programme.Tier]decimal.Decimal{
			programme.TierRegular: one, programme.TierSilver: one, programme.TierGold: one, programme.TierPlatinum: one}}}})
	if err != nil {
		t.Fatal(err)
	}
	w.rates = w.partner.Rates[0]
	for _, p := range []programmes.Property{{ID: "SH-1", Name: "Shanghai", TimeZone: "Asia/Shanghai"},
		{ID: "PH-1", Name: "Partner hotel", TimeZone: "Asia/Shanghai", Owner: "P1"}} {
		if _, err := progs.PutProperty(ctx, "test", "hotel-"+p.ID, p); err != nil {
			t.Fatal(err)
		}
	}
	if w.property, err = progs.Property(ctx, "SH-1"); err != nil {
		t.Fatal(err)
	}
	if w.partnerHotel, err = progs.Property(ctx, "PH-1"); err != nil {
		t.Fatal(err)
	}
	if w.version, err = progs.At(ctx, clock.Now()); err != nil {
		t.Fatal(err)
	}
	w.service = bookings.NewService(l, w.members, ps, bookings.New(l, clock.Now), clock.Now)
	w.newEvents(t) // the partner's creation and such: not what the tests are about
	return w
}

func (w *announcing) enrol(t *testing.T, key string) members.Member {
	t.Helper()
	m, err := w.members.Enroll(w.ctx, "test", key, members.Enrollment{FullName: "Li Wei", Phone: "+86 1", Channel: programme.ChannelApp})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// newEvents sequences the outbox and returns the events after the last
// read, in position order.
func (w *announcing) newEvents(t *testing.T) []events.Event {
	t.Helper()
	s := events.NewSequencer(w.db, w.clock.Now, "test")
	for {
		n, err := s.Step(w.ctx, events.MaxSequenceBatch)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var out []events.Event
	for {
		page, err := events.NewStore(w.db).List(w.ctx, w.cursor, events.Filter{}, events.MaxListPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		w.cursor = page[len(page)-1].Position
	}
}

func req(key string) bookings.Request { return bookings.Request{CallerID: "desk", IdempotencyKey: key} }

func (w *announcing) stay(m, stayID, arrival, departure, key string) (bookings.StayResult, error) {
	rules := programme.Stay{PropertyID: w.property.ID, ArrivalDate: arrival, Channel: programme.ChannelFrontDesk, Currency: "CNY"}
	for range int(date(departure).Sub(date(arrival)).Hours() / 24) {
		rules.Nights = append(rules.Nights, programme.Night{RoomCharge: decimal.NewFromInt(400)})
	}
	return w.service.RecordStay(w.ctx, req(key), w.version, w.property,
		bookings.Stay{MemberNumber: m, StayID: stayID, Arrival: date(arrival), Departure: date(departure), Rules: rules})
}

func (w *announcing) noShow(m, stayID, arrival string, bookedAt time.Time, key string) (bookings.NoShowResult, error) {
	return w.service.RecordNoShow(w.ctx, req(key), w.version, w.property,
		bookings.MissedStay{MemberNumber: m, StayID: stayID, Arrival: date(arrival), Nights: 1}, bookedAt)
}

func (w *announcing) cancel(m, stayID, arrival string, at time.Time, key string) (bookings.CancellationResult, error) {
	return w.service.RecordCancellation(w.ctx, req(key), w.version, w.property,
		bookings.MissedStay{MemberNumber: m, StayID: stayID, Arrival: date(arrival), Nights: 1}, at, time.Time{})
}

func (w *announcing) guarantee(m, stayID, arrival, key string) (ledger.Hold, error) {
	return w.service.PlaceGuarantee(w.ctx, req(key), w.version, w.property, m, stayID, date(arrival), programme.Clock{Hour: 19})
}

// booked is when the tests' bookings were made: long before arrival.
var booked = time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)

func decode[T any](t *testing.T, e events.Event) T {
	t.Helper()
	var d T
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("data of %s: %v", e.Type, err)
	}
	return d
}

// byType indexes events by type; each type must appear at most once.
func byType(t *testing.T, es []events.Event) map[string]events.Event {
	t.Helper()
	out := map[string]events.Event{}
	for _, e := range es {
		if _, twice := out[e.Type]; twice {
			t.Fatalf("two %s events: %s", e.Type, types(es))
		}
		out[e.Type] = e
	}
	return out
}

func types(es []events.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	slices.Sort(out)
	return out
}

// TestEveryBookingFactWritesOneEvent: each of the booking service's facts,
// through its public API, writes exactly the events it is announced by
// (its own, and the points event of its transaction), with the member as
// subject, the partner's id only at a partner's hotel, and the data a
// consumer needs; a retry under the same key writes nothing more.
func TestEveryBookingFactWritesOneEvent(t *testing.T) {
	type setup func(t *testing.T, w *announcing, m string)
	noSetup := func(*testing.T, *announcing, string) {}
	earned := func(t *testing.T, w *announcing, m string) { // points enough to guarantee a room
		if _, err := w.stay(m, "EARN", "2026-11-10", "2026-11-11", "earn"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		setup setup
		fact  func(w *announcing, m, key string) error
		// want are the types the fact writes; check looks at them.
		want      []string
		partnerID string
		check     func(t *testing.T, w *announcing, m string, got map[string]events.Event)
	}{
		{name: "a first stay records its outcome, earns its points and the upgrade to silver", setup: noSetup,
			fact: func(w *announcing, m, key string) error {
				_, err := w.stay(m, "B1", "2026-11-20", "2026-11-21", key)
				return err
			},
			want: []string{events.TypeBookingRecorded, events.TypePointsEarned, events.TypeTierChanged},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				b := decode[events.BookingData](t, got[events.TypeBookingRecorded])
				p := decode[events.PointsData](t, got[events.TypePointsEarned])
				tc := decode[events.TierChangedData](t, got[events.TypeTierChanged])
				if b.Outcome != "stayed" || b.StayID != "B1" || b.PropertyID != "SH-1" || b.Points != p.Points || b.Points <= 0 ||
					b.TransactionID != p.TransactionID || got[events.TypeBookingRecorded].TransactionID.String() != p.TransactionID {
					t.Errorf("booking %+v, points %+v: the outcome, its points and its transaction", b, p)
				}
				if p.Source != "stay" || p.BalanceAfter.Posted != p.Points || p.Kind != "stay" {
					t.Errorf("points %+v: a stay's, from zero", p)
				}
				if tc.From != "regular" || tc.To != "silver" || tc.Direction != "up" || tc.Cause != events.TierCauseStay ||
					tc.TransactionID != p.TransactionID || tc.StayID != "B1" || tc.Nights != 1 {
					t.Errorf("tier change %+v: the upgrade of the first stay, by its transaction", tc)
				}
			}},
		{name: "a no-show is charged its penalty", setup: noSetup,
			fact: func(w *announcing, m, key string) error {
				_, err := w.noShow(m, "B1", "2026-11-21", booked, key)
				return err
			},
			want: []string{events.TypeBookingRecorded, events.TypePointsPenalised},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				b := decode[events.BookingData](t, got[events.TypeBookingRecorded])
				p := decode[events.PointsData](t, got[events.TypePointsPenalised])
				if b.Outcome != "no_show" || b.Points != p.Points || b.Points >= 0 || b.TransactionID != p.TransactionID {
					t.Errorf("booking %+v, points %+v", b, p)
				}
				if p.Source != "no_show" || p.BalanceAfter.Posted != p.Points {
					t.Errorf("points %+v: a no-show penalty into debt", p)
				}
			}},
		{name: "an exempt no-show is recorded without a transaction", setup: noSetup,
			fact: func(w *announcing, m, key string) error {
				_, err := w.noShow(m, "B1", "2026-11-21", time.Date(2026, 11, 21, 19, 0, 0, 0, shanghai), key)
				return err
			},
			want: []string{events.TypeBookingRecorded},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				e := got[events.TypeBookingRecorded]
				if b := decode[events.BookingData](t, e); b.Outcome != "no_show" || b.Points != 0 || b.TransactionID != "" || e.TransactionID != uuid.Nil {
					t.Errorf("booking %+v: nothing posted", b)
				}
			}},
		{name: "a late cancellation is charged", setup: noSetup,
			fact: func(w *announcing, m, key string) error {
				_, err := w.cancel(m, "B1", "2026-11-21", time.Date(2026, 11, 21, 20, 0, 0, 0, shanghai), key)
				return err
			},
			want: []string{events.TypeBookingRecorded, events.TypePointsPenalised},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				if b := decode[events.BookingData](t, got[events.TypeBookingRecorded]); b.Outcome != "cancelled_charged" || b.Points >= 0 {
					t.Errorf("booking %+v", b)
				}
			}},
		{name: "a late check-out is charged", setup: earned,
			fact: func(w *announcing, m, key string) error {
				_, err := w.service.RecordLateCheckout(w.ctx, req(key), w.version, w.property, m, "EARN", date("2026-11-11"), 1)
				return err
			},
			want: []string{events.TypeBookingRecorded, events.TypePointsRedeemed},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				b := decode[events.BookingData](t, got[events.TypeBookingRecorded])
				p := decode[events.PointsData](t, got[events.TypePointsRedeemed])
				if b.Outcome != "late_checkout" || b.Points != -500 || p.Source != "late_checkout" || b.TransactionID != p.TransactionID {
					t.Errorf("booking %+v, points %+v", b, p)
				}
			}},
		{name: "a guarantee is placed, with its hold and the balance after", setup: earned,
			fact: func(w *announcing, m, key string) error {
				_, err := w.guarantee(m, "B1", "2026-11-23", key)
				return err
			},
			want: []string{events.TypeGuaranteePlaced},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				g := decode[events.GuaranteeData](t, got[events.TypeGuaranteePlaced])
				hold, err := w.ledger.HoldByReference(w.ctx, "stay:SH-1:B1")
				if err != nil {
					t.Fatal(err)
				}
				if g.HoldID != hold.ID.String() || g.Points != 500 || g.Hours != 1 || g.HoldUntil != "19:00" || g.ArrivalDate != "2026-11-23" ||
					g.BalanceAfter.Held != 500 || g.BalanceAfter.Available != g.BalanceAfter.Posted-500 || g.BalanceAfter.Posted <= 0 {
					t.Errorf("guarantee %+v, hold %s", g, hold.ID)
				}
			}},
		{name: "a guarantee is released", setup: func(t *testing.T, w *announcing, m string) {
			earned(t, w, m)
			if _, err := w.guarantee(m, "B1", "2026-11-23", "guarantee"); err != nil {
				t.Fatal(err)
			}
		},
			fact: func(w *announcing, m, key string) error {
				_, err := w.service.ReleaseGuarantee(w.ctx, req(key), w.version, w.property, "B1", false)
				return err
			},
			want: []string{events.TypeGuaranteeReleased},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				g := decode[events.GuaranteeData](t, got[events.TypeGuaranteeReleased])
				if g.Reason != events.ReleaseAsked || g.Points != 500 || g.BalanceAfter.Held != 0 || g.BalanceAfter.Available != g.BalanceAfter.Posted {
					t.Errorf("release %+v", g)
				}
			}},
		{name: "a free cancellation is recorded and releases the guarantee", setup: func(t *testing.T, w *announcing, m string) {
			earned(t, w, m)
			if _, err := w.guarantee(m, "B1", "2026-11-23", "guarantee"); err != nil {
				t.Fatal(err)
			}
		},
			fact: func(w *announcing, m, key string) error {
				_, err := w.cancel(m, "B1", "2026-11-23", w.clock.Now(), key)
				return err
			},
			want: []string{events.TypeBookingRecorded, events.TypeGuaranteeReleased},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				if b := decode[events.BookingData](t, got[events.TypeBookingRecorded]); b.Outcome != "cancelled_free" || b.TransactionID != "" {
					t.Errorf("booking %+v", b)
				}
				if g := decode[events.GuaranteeData](t, got[events.TypeGuaranteeReleased]); g.Reason != events.ReleaseFreeCancellation {
					t.Errorf("release %+v", g)
				}
			}},
		{name: "a no-show captures the guarantee", setup: func(t *testing.T, w *announcing, m string) {
			earned(t, w, m)
			w.clock.Advance(-36 * time.Hour) // 05:00 on the 21st in Shanghai: the guarantee is for that evening
			if _, err := w.guarantee(m, "B1", "2026-11-21", "guarantee"); err != nil {
				t.Fatal(err)
			}
			w.clock.Advance(30 * time.Hour) // 11:00 on the 22nd: a no-show, before the hold ends at noon
		},
			fact: func(w *announcing, m, key string) error {
				_, err := w.noShow(m, "B1", "2026-11-21", booked, key)
				return err
			},
			want: []string{events.TypeBookingRecorded, events.TypePointsPenalised},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				b := decode[events.BookingData](t, got[events.TypeBookingRecorded])
				p := decode[events.PointsData](t, got[events.TypePointsPenalised])
				if b.Outcome != "no_show" || b.Points != -500 || p.Kind != "guarantee_capture" || p.Source != "guarantee_capture" ||
					p.Points != -500 || b.TransactionID != p.TransactionID {
					t.Errorf("booking %+v, points %+v", b, p)
				}
			}},
		{name: "a no-show corrected into a stay", setup: func(t *testing.T, w *announcing, m string) {
			if _, err := w.noShow(m, "B1", "2026-11-20", booked, "no-show"); err != nil {
				t.Fatal(err)
			}
		},
			fact: func(w *announcing, m, key string) error {
				rules := programme.Stay{PropertyID: "SH-1", ArrivalDate: "2026-11-20", Channel: programme.ChannelFrontDesk, Currency: "CNY",
					Nights: []programme.Night{{RoomCharge: decimal.NewFromInt(400)}}}
				_, err := w.service.CorrectStay(w.ctx, req(key), w.version, w.property,
					bookings.Stay{MemberNumber: m, StayID: "B1", Arrival: date("2026-11-20"), Departure: date("2026-11-21"), Rules: rules}, "the guest came")
				return err
			},
			want: []string{events.TypeBookingCorrected, events.TypePointsEarned, events.TypePointsReversed, events.TypeTierChanged},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				b := decode[events.BookingData](t, got[events.TypeBookingCorrected])
				earned := decode[events.PointsData](t, got[events.TypePointsEarned])
				reversal := decode[events.PointsData](t, got[events.TypePointsReversed])
				if b.Outcome != "stayed" || b.PreviousOutcome != "no_show" || b.PreviousTransactionID != reversal.ReversesTransactionID ||
					b.TransactionID != earned.TransactionID || b.Reason != "the guest came" {
					t.Errorf("correction %+v, stay %+v, reversal %+v", b, earned, reversal)
				}
				if reversal.Source != "no_show" || reversal.CorrectedByTransactionID != earned.TransactionID || earned.CorrectsTransactionID == "" {
					t.Errorf("reversal %+v, stay %+v: linked both ways", reversal, earned)
				}
			}},
		{name: "a stay's reversal takes the booking's outcome away", setup: func(t *testing.T, w *announcing, m string) {
			if _, err := w.stay(m, "B1", "2026-11-20", "2026-11-21", "stay"); err != nil {
				t.Fatal(err)
			}
		},
			fact: func(w *announcing, m, key string) error {
				current, err := w.service.Booking(w.ctx, "SH-1", "B1")
				if err != nil {
					return err
				}
				stay := current.Records[0].TransactionID // released by the first call, for its retry
				_, err = w.service.Reverse(w.ctx, req(key), w.version, w.mustTransaction(stay), "booked twice")
				return err
			},
			want: []string{events.TypeBookingCorrected, events.TypePointsReversed},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				b := decode[events.BookingData](t, got[events.TypeBookingCorrected])
				p := decode[events.PointsData](t, got[events.TypePointsReversed])
				if b.Outcome != "" || b.PreviousOutcome != "stayed" || b.PreviousTransactionID != p.ReversesTransactionID ||
					b.TransactionID != p.TransactionID || b.Points != p.Points || b.Reason != "booked twice" || p.Source != "stay" {
					t.Errorf("correction %+v, reversal %+v", b, p)
				}
			}},
		{name: "a partner's award is its partner's", setup: noSetup, partnerID: "P1",
			fact: func(w *announcing, m, key string) error {
				member, err := w.members.Get(w.ctx, m)
				if err != nil {
					return err
				}
				_, err = w.service.AwardPartnerStay(w.ctx, req(key), w.version, w.partner, w.rates, w.partnerHotel, bookings.PartnerStay{
					Member: member, Tier: member.Tier, StayID: "B1", Arrival: date("2026-11-20"), Departure: date("2026-11-21"),
					Nights: []programme.Night{{RoomCharge: decimal.NewFromInt(300)}}})
				return err
			},
			want: []string{events.TypeBookingRecorded, events.TypePointsEarned},
			check: func(t *testing.T, w *announcing, m string, got map[string]events.Event) {
				b := decode[events.BookingData](t, got[events.TypeBookingRecorded])
				p := decode[events.PointsData](t, got[events.TypePointsEarned])
				if b.PartnerID != "P1" || b.PropertyID != "PH-1" || p.Source != "partner_award" || p.PartnerID != "P1" || p.Money == "" {
					t.Errorf("booking %+v, points %+v", b, p)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newAnnouncing(t, dbtest.New(t))
			m := w.enrol(t, "enrol").Number
			tc.setup(t, w, m)
			w.newEvents(t)
			if err := tc.fact(w, m, "the-fact"); err != nil {
				t.Fatal(err)
			}
			got := w.newEvents(t)
			if want := slices.Sorted(slices.Values(tc.want)); !slices.Equal(types(got), want) {
				t.Fatalf("events %v, want %v", types(got), want)
			}
			for _, e := range got {
				if e.Subject != m {
					t.Errorf("%s has subject %q, want the member %s", e.Type, e.Subject, m)
				}
				if e.PartnerID != tc.partnerID {
					t.Errorf("%s has partner %q, want %q", e.Type, e.PartnerID, tc.partnerID)
				}
			}
			tc.check(t, w, m, byType(t, got))
			if err := tc.fact(w, m, "the-fact"); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			if again := w.newEvents(t); len(again) != 0 {
				t.Fatalf("the retry under the same key wrote %v", types(again))
			}
		})
	}
}

func (w *announcing) mustTransaction(id uuid.UUID) ledger.Transaction {
	txn, err := w.ledger.Transaction(w.ctx, id)
	if err != nil {
		panic(err)
	}
	return txn
}

// TestARefusedBookingFactWritesNoEvent: a fact the rules or the database
// refuse rolls its event back with it.
func TestARefusedBookingFactWritesNoEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, w *announcing, m string)
		fact  func(w *announcing, m string) error
	}{
		{"a second outcome of the same booking", func(t *testing.T, w *announcing, m string) {
			if _, err := w.stay(m, "B1", "2026-11-20", "2026-11-21", "stay"); err != nil {
				t.Fatal(err)
			}
		}, func(w *announcing, m string) error {
			_, err := w.noShow(m, "B1", "2026-11-20", booked, "no-show")
			return err
		}},
		{"a stay sent again under another key", func(t *testing.T, w *announcing, m string) {
			if _, err := w.stay(m, "B1", "2026-11-20", "2026-11-21", "stay"); err != nil {
				t.Fatal(err)
			}
		}, func(w *announcing, m string) error {
			_, err := w.stay(m, "B1", "2026-11-20", "2026-11-21", "stay-again")
			return err
		}},
		{"a cancellation after an exempt no-show", func(t *testing.T, w *announcing, m string) {
			if _, err := w.noShow(m, "B1", "2026-11-21", time.Date(2026, 11, 21, 19, 0, 0, 0, shanghai), "no-show"); err != nil {
				t.Fatal(err)
			}
		}, func(w *announcing, m string) error {
			_, err := w.cancel(m, "B1", "2026-11-21", time.Date(2026, 11, 20, 12, 0, 0, 0, shanghai), "cancel")
			return err
		}},
		{"a guarantee without the points", func(*testing.T, *announcing, string) {}, func(w *announcing, m string) error {
			_, err := w.guarantee(m, "B1", "2026-11-23", "guarantee")
			return err
		}},
		{"a second guarantee of the same booking", func(t *testing.T, w *announcing, m string) {
			if _, err := w.stay(m, "EARN", "2026-11-10", "2026-11-11", "earn"); err != nil {
				t.Fatal(err)
			}
			if _, err := w.stay(m, "EARN2", "2026-11-12", "2026-11-13", "earn-2"); err != nil {
				t.Fatal(err)
			}
			if _, err := w.guarantee(m, "B1", "2026-11-23", "guarantee"); err != nil {
				t.Fatal(err)
			}
		}, func(w *announcing, m string) error {
			_, err := w.guarantee(m, "B1", "2026-11-23", "guarantee-again")
			return err
		}},
		{"a release of a guarantee released already", func(t *testing.T, w *announcing, m string) {
			if _, err := w.stay(m, "EARN", "2026-11-10", "2026-11-11", "earn"); err != nil {
				t.Fatal(err)
			}
			if _, err := w.guarantee(m, "B1", "2026-11-23", "guarantee"); err != nil {
				t.Fatal(err)
			}
			if _, err := w.service.ReleaseGuarantee(w.ctx, req("release"), w.version, w.property, "B1", false); err != nil {
				t.Fatal(err)
			}
		}, func(w *announcing, m string) error {
			_, err := w.service.ReleaseGuarantee(w.ctx, req("release-again"), w.version, w.property, "B1", false)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newAnnouncing(t, dbtest.New(t))
			m := w.enrol(t, "enrol").Number
			tc.setup(t, w, m)
			w.newEvents(t)
			if err := tc.fact(w, m); err == nil {
				t.Fatal("the fact was not refused")
			}
			if got := w.newEvents(t); len(got) != 0 {
				t.Fatalf("a refused fact wrote %v", types(got))
			}
			var outbox int
			if err := w.db.Pool.QueryRow(w.ctx, `SELECT count(*) FROM event_outbox`).Scan(&outbox); err != nil || outbox != 0 {
				t.Fatalf("outbox: %d rows (%v)", outbox, err)
			}
		})
	}
}

// TestEveryCommittedBookingFactHasOneEvent: many requests at once on a
// few members (stays, no-shows, cancellations, guarantees placed and
// released, some on the same bookings so that the database refuses them),
// then every committed fact (an outcome, a hold, a release, a tier change,
// a transaction) has exactly one event, every event a committed fact, and
// every fact a request was told of committed. Two stays of a member at
// once may both find it gold: one change, one event.
func TestEveryCommittedBookingFactHasOneEvent(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		w := newAnnouncing(t, db)
		const memberCount, workers, perWorker = 3, 8, 12
		var numbers []string
		for i := range memberCount {
			m := w.enrol(t, fmt.Sprint("enrol-", i)).Number
			numbers = append(numbers, m)
			for s := range 3 { // points for guarantees
				if _, err := w.stay(m, fmt.Sprintf("SEED-%d-%d", i, s), "2026-11-01", "2026-11-02", fmt.Sprintf("seed-%d-%d", i, s)); err != nil {
					t.Fatal(err)
				}
			}
		}
		expected := func(err error) bool {
			var insufficient *ledger.InsufficientPointsError
			var hold *ledger.HoldStateError
			// The workers share bookings across members on purpose: a
			// booking is one member's, and closed once its outcome is in.
			return errors.Is(err, bookings.ErrRecorded) || errors.Is(err, ledger.ErrHoldExists) || errors.Is(err, bookings.ErrNoGuarantee) ||
				errors.As(err, &insufficient) || errors.As(err, &hold) || errors.Is(err, ledger.ErrHoldNotActive) ||
				errors.Is(err, bookings.ErrAnotherMembersBooking) || errors.Is(err, bookings.ErrBookingClosed)
		}
		// acknowledged are the facts whose requests succeeded, as the
		// index below names them: each must have committed.
		var mu sync.Mutex
		var acknowledged []string
		ack := func(fact string) {
			mu.Lock()
			defer mu.Unlock()
			acknowledged = append(acknowledged, fact)
		}
		var wg sync.WaitGroup
		for wk := range workers {
			wg.Go(func() {
				for i := range perWorker {
					m := numbers[(wk+i)%memberCount]
					// Bookings shared by two workers, so that some requests
					// collide on the same booking.
					stayID := fmt.Sprintf("B-%d-%d", (wk/2)%memberCount, i)
					key := fmt.Sprintf("w%d-%d", wk, i)
					var err error
					switch i % 6 {
					case 0: // three nights: a few of them make a member gold, some at once
						var r bookings.StayResult
						if r, err = w.stay(m, stayID, "2026-11-18", "2026-11-21", key); err == nil {
							ack("points:" + r.Transaction.ID.String() + "/" + m)
						}
					case 1:
						_, err = w.noShow(m, stayID, "2026-11-21", booked, key)
					case 2:
						_, err = w.cancel(m, stayID, "2026-11-21", time.Date(2026, 11, 21, 20, 0, 0, 0, shanghai), key)
					case 3:
						var h ledger.Hold
						if h, err = w.guarantee(m, stayID, "2026-11-24", key); err == nil {
							ack(events.TypeGuaranteePlaced + ":" + h.ID.String())
						}
					case 4:
						_, err = w.service.ReleaseGuarantee(w.ctx, req(key), w.version, w.property, fmt.Sprintf("B-%d-%d", (wk/2)%memberCount, i-1), false)
					case 5:
						_, err = w.cancel(m, fmt.Sprintf("B-%d-%d", (wk/2)%memberCount, i-2), "2026-11-24", w.clock.Now(), key)
					}
					if err != nil && !expected(err) {
						t.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		w.cursor = 0
		all := w.newEvents(t)
		seen := map[uuid.UUID]bool{}
		byID := map[string][]events.Event{} // the fact's id -> its events
		for _, e := range all {
			if seen[e.ID] {
				t.Fatalf("event %s twice", e.ID)
			}
			seen[e.ID] = true
			var key string
			switch e.Type {
			case events.TypeBookingRecorded, events.TypeBookingCorrected:
				d := decode[events.BookingData](t, e)
				key = "booking:" + d.PropertyID + "/" + d.StayID + "/" + d.Outcome + "/" + d.TransactionID
			case events.TypeGuaranteePlaced, events.TypeGuaranteeReleased:
				key = e.Type + ":" + decode[events.GuaranteeData](t, e).HoldID
			case events.TypeTierChanged:
				d := decode[events.TierChangedData](t, e)
				key = "tier:" + d.MemberNumber + "/" + d.To
			case events.TypeMemberEnrolled:
				key = "member:" + e.Subject
			default: // points
				key = "points:" + e.TransactionID.String() + "/" + e.Subject
			}
			byID[key] = append(byID[key], e)
		}
		facts := committedFacts(t, w)
		for _, f := range acknowledged {
			if !slices.Contains(facts, f) {
				t.Errorf("fact %s was acknowledged and did not commit", f)
			}
		}
		for _, f := range facts {
			if n := len(byID[f]); n != 1 {
				t.Errorf("fact %s has %d events", f, n)
			}
			delete(byID, f)
		}
		for f, es := range byID {
			t.Errorf("events %v announce %s, which did not commit", types(es), f)
		}
		kinds := map[string]int{}
		for _, f := range facts {
			kinds[f[:strings.IndexAny(f, ":")]]++
		}
		t.Logf("facts committed: %v", kinds)
		for _, kind := range []string{"booking", "loyalty.guarantee.placed.v1", "loyalty.guarantee.released.v1", "tier", "points"} {
			if kinds[kind] == 0 {
				t.Errorf("no %s fact committed: the test did not exercise it", kind)
			}
		}
	})
}

// committedFacts names every fact the database holds, as the test's event
// index names them.
func committedFacts(t *testing.T, w *announcing) []string {
	t.Helper()
	var facts []string
	collect := func(sql string) {
		rows, err := w.db.Pool.Query(w.ctx, sql)
		if err != nil {
			t.Fatal(err)
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		facts = append(facts, names...)
	}
	collect(`SELECT 'booking:' || property_id || '/' || stay_id || '/' || outcome || '/' || COALESCE(transaction_id::TEXT, '') FROM booking_outcomes`)
	collect(`SELECT 'loyalty.guarantee.placed.v1:' || id::TEXT FROM holds`)
	collect(`SELECT 'loyalty.guarantee.released.v1:' || id::TEXT FROM holds WHERE status = 'released'`)
	collect(`SELECT 'tier:' || member_number || '/' || to_tier FROM tier_changes`)
	collect(`SELECT 'member:' || member_number FROM members`)
	collect(`SELECT DISTINCT 'points:' || p.transaction_id::TEXT || '/' || split_part(p.account_code, ':', 2)
		FROM postings p WHERE p.account_code LIKE 'member:%'`)
	return facts
}
