package rpc_test

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/loyalty-ledger/loyalty/bookings"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

var (
	recorded        = loyaltyv1.StayRowStatus_STAY_ROW_STATUS_RECORDED
	alreadyRecorded = loyaltyv1.StayRowStatus_STAY_ROW_STATUS_ALREADY_RECORDED
	refused         = loyaltyv1.StayRowStatus_STAY_ROW_STATUS_REFUSED
)

func recordStays(rows ...*loyaltyv1.RecordStayRequest) *connect.Request[loyaltyv1.RecordStaysRequest] {
	return connect.NewRequest(&loyaltyv1.RecordStaysRequest{Stays: rows})
}

// at is a stay like stayRequest's, from arrival (YYYY-MM-DD).
func at(req *loyaltyv1.RecordStayRequest, arrival string) *loyaltyv1.RecordStayRequest {
	a, err := time.Parse(time.DateOnly, arrival)
	if err != nil {
		panic(err)
	}
	req.ArrivalDate, req.DepartureDate = arrival, a.AddDate(0, 0, len(req.GetNights())).Format(time.DateOnly)
	return req
}

// TestABatchAnswersEveryStayOnItsOwn: a batch of good stays and stays
// refused for every reason a single RecordStay refuses one, a stay of a
// booking taken earlier in the batch and one taken by an earlier call:
// each row answers what its single call would (code, field from the
// batch's root, message), the good rows are recorded, and the refusals
// record nothing. A booking taken in another member's name is refused
// without its outcome.
func TestABatchAnswersEveryStayOnItsOwn(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.clients(e.bookingKey, p.opts...)
			m1, m2 := e.enroll(t, c, "enrol-1"), e.enroll(t, c, "enrol-2")
			earlier, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("single-1", m2, "B-EARLY", "300.00")))
			if err != nil {
				t.Fatal(err)
			}
			modify := func(req *loyaltyv1.RecordStayRequest, change func(*loyaltyv1.RecordStayRequest)) *loyaltyv1.RecordStayRequest {
				change(req)
				return req
			}
			rows := []struct {
				req    *loyaltyv1.RecordStayRequest
				status loyaltyv1.StayRowStatus
				code   connect.Code
				field  string
			}{
				{req: stayRequest("k-0", m1, "B-1", "388.00", "388.00"), status: recorded},
				{req: stayRequest("k-1", "12ab", "B-2", "388.00"), status: refused, code: connect.CodeInvalidArgument, field: "stays[1].memberNumber"},
				{req: stayRequest("k-2", strings.Repeat("0", len(m1)), "B-3", "388.00"), status: refused, code: connect.CodeNotFound},
				{req: modify(stayRequest("k-3", m1, "B-4", "388.00"), func(r *loyaltyv1.RecordStayRequest) { r.PropertyId = "NOWHERE" }),
					status: refused, code: connect.CodeNotFound, field: "stays[3].propertyId"},
				{req: modify(stayRequest("k-4", m1, "B-5", "388.00"), func(r *loyaltyv1.RecordStayRequest) { r.ArrivalDate = "2026-02-30" }),
					status: refused, code: connect.CodeInvalidArgument, field: "stays[4].arrivalDate"},
				{req: modify(stayRequest("k-5", m1, "B-6", "388.00"), func(r *loyaltyv1.RecordStayRequest) { r.DepartureDate = "2026-11-03" }),
					status: refused, code: connect.CodeInvalidArgument, field: "stays[5].nights"},
				{req: stayRequest("k-6", m1, "B-7", "388.00", "3,88"), status: refused, code: connect.CodeInvalidArgument, field: "stays[6].nights[1].roomCharge.amount"},
				{req: modify(stayRequest("k-7", m1, "B-8", "388.00"), func(r *loyaltyv1.RecordStayRequest) { r.Nights[0].RoomCharge.CurrencyCode = "USD" }),
					status: refused, code: connect.CodeInvalidArgument, field: "stays[7].nights[0].roomCharge.currencyCode"},
				{req: modify(stayRequest("k-8", m1, "B-9", "388.00"), func(r *loyaltyv1.RecordStayRequest) { r.Channel = 0 }),
					status: refused, code: connect.CodeInvalidArgument, field: "stays[8].channel"},
				{req: at(stayRequest("k-9", m1, "B-10", "388.00", "388.00"), "2026-11-21"), status: refused, code: connect.CodeInvalidArgument, field: "stays[9].departureDate"},
				{req: stayRequest("", m1, "B-11", "388.00"), status: refused, code: connect.CodeInvalidArgument, field: "stays[10].idempotencyKey"},
				{req: stayRequest("k-11", m1, "B-1", "388.00", "388.00"), status: alreadyRecorded}, // row 0's booking
				{req: stayRequest("k-12", m2, "B-EARLY", "300.00"), status: alreadyRecorded},       // the single call's
				{req: stayRequest("k-0", m2, "B-13", "388.00"), status: refused, code: connect.CodeAlreadyExists},
				{req: stayRequest("k-14", m2, "B-14", "250.00"), status: recorded},
				// The same two bookings in another member's name: not the
				// guest's outcome and transaction.
				{req: stayRequest("k-15", m2, "B-1", "388.00", "388.00"), status: refused, code: connect.CodeFailedPrecondition},
				{req: stayRequest("k-16", m1, "B-EARLY", "300.00"), status: refused, code: connect.CodeFailedPrecondition},
			}
			var reqs []*loyaltyv1.RecordStayRequest
			for _, r := range rows {
				reqs = append(reqs, r.req)
			}
			before := e.transactionCount(t)
			res, err := c.booking.RecordStays(e.ctx, recordStays(reqs...))
			if err != nil {
				t.Fatal(err)
			}
			results := res.Msg.GetResults()
			if len(results) != len(rows) {
				t.Fatalf("%d results for %d stays", len(results), len(rows))
			}
			for i, want := range rows {
				got := results[i]
				if got.GetIndex() != int32(i) || got.GetStatus() != want.status {
					t.Errorf("row %d: %d %s %v, want %s", i, got.GetIndex(), got.GetStatus(), got.GetError(), want.status)
					continue
				}
				if want.status != refused {
					continue
				}
				if got.GetError().GetCode() != want.code.String() || got.GetError().GetField() != want.field {
					t.Errorf("row %d: %s %q (%s), want %s %q", i, got.GetError().GetCode(), got.GetError().GetField(), got.GetError().GetMessage(), want.code, want.field)
				}
				// What the single call answers for the same stay, on its
				// own (a fresh key for the stays whose refusal is the key).
				single := proto.Clone(want.req).(*loyaltyv1.RecordStayRequest)
				if want.code == connect.CodeAlreadyExists {
					continue
				}
				_, err := c.booking.RecordStay(e.ctx, connect.NewRequest(single))
				ce := wantCode(t, err, want.code)
				if ce.Message() != got.GetError().GetMessage() {
					t.Errorf("row %d: message %q, the single call's %q", i, got.GetError().GetMessage(), ce.Message())
				}
				if want.field != "" {
					if f := badRequestField(t, ce); fmt.Sprintf("stays[%d].%s", i, f) != want.field {
						t.Errorf("row %d: the single call names %q", i, f)
					}
				}
			}
			if r := results[13].GetError(); r.GetReason() != "IDEMPOTENCY_KEY_REUSED" {
				t.Errorf("a reused key: reason %q", r.GetReason())
			}
			for _, i := range []int{15, 16} {
				if r := results[i]; r.GetError().GetReason() != "BOOKING_OF_ANOTHER_MEMBER" || r.GetExisting() != nil {
					t.Errorf("row %d, another member's booking: %v, want BOOKING_OF_ANOTHER_MEMBER and no existing outcome", i, r)
				}
			}
			first := results[0].GetRecorded().GetTransaction()
			if first.GetAvailablePointsDelta() <= 0 || results[0].GetRecorded().GetTier() != loyaltyv1.Tier_TIER_SILVER {
				t.Errorf("row 0 recorded %v", results[0].GetRecorded())
			}
			for i, want := range map[int]*loyaltyv1.Transaction{11: first, 12: earlier.Msg.GetTransaction()} {
				ex := results[i].GetExisting()
				if ex.GetTransactionId() != want.GetTransactionId() || ex.GetOutcome() != loyaltyv1.BookingOutcome_BOOKING_OUTCOME_STAYED || ex.GetRecordedAt() == nil {
					t.Errorf("row %d: existing %v, want the outcome of %s", i, ex, want.GetTransactionId())
				}
			}
			if n := e.transactionCount(t) - before; n != 2 {
				t.Errorf("%d transactions recorded, want 2 (rows 0 and 14)", n)
			}
			e.verify(t)
		})
	}
}

// TestABatchWithTooManyStaysOrNoneIsRefusedWhole: 1,001 stays, or none,
// is INVALID_ARGUMENT on "stays" and records nothing; 1,000 stays of 30
// nights, in JSON, are within the request size limit.
func TestABatchWithTooManyStaysOrNoneIsRefusedWhole(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey, connect.WithProtoJSON())
	member := e.enroll(t, c, "enrol-1")
	stays := func(n, nights int) []*loyaltyv1.RecordStayRequest {
		charges := make([]string, nights)
		for i := range charges {
			charges[i] = "388.00"
		}
		var out []*loyaltyv1.RecordStayRequest
		for i := range n {
			out = append(out, stayRequest(fmt.Sprint("k-", i), member, fmt.Sprint("B-", i), charges...))
		}
		return out
	}
	before := e.transactionCount(t)
	for _, n := range []int{0, bookings.MaxBatchRows + 1} {
		_, err := c.booking.RecordStays(e.ctx, recordStays(stays(n, 1)...))
		if f := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); f != "stays" {
			t.Errorf("%d stays: refused on %q", n, f)
		}
	}
	if n := e.transactionCount(t); n != before {
		t.Fatalf("%d transactions written by refused batches", n-before)
	}
	// The largest batch: every stay refused alone (the departure is in
	// the future), so that the call is quick.
	big := stays(bookings.MaxBatchRows, 30)
	for _, s := range big {
		s.StayId = strings.Repeat("S", 60) + s.StayId[2:]
		s.IdempotencyKey = strings.Repeat("k", 120) + s.IdempotencyKey[2:]
	}
	// About 2 MiB (protojson varies its spacing a little).
	if size := len(mustJSON(t, &loyaltyv1.RecordStaysRequest{Stays: big})); size < 19<<20/10 {
		t.Errorf("the largest batch is only %d bytes of JSON", size)
	}
	res, err := c.booking.RecordStays(e.ctx, recordStays(big...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res.Msg.GetResults() {
		if r.GetStatus() != refused || r.GetError().GetField() != fmt.Sprintf("stays[%d].departureDate", i) {
			t.Fatalf("row %d: %v", i, r)
		}
	}
}

// TestABatchEarnsExactlyWhatSingleCallsEarn: the same stays, of members
// with several stays each (the first-stay bonus, upgrades to gold and
// platinum mid-batch, direct-booking bonuses, stays booked for others),
// recorded one by one with RecordStay on one world and in one RecordStays
// on another: the same points, breakdowns and tiers, stay by stay. Sent
// again with the same keys, the batch answers the same and records
// nothing.
func TestABatchEarnsExactlyWhatSingleCallsEarn(t *testing.T) {
	const members = 12
	type stay struct {
		member, nights int
		arrival        string
		charge         string
		channel        loyaltyv1.BookingChannel
		forOther       bool
	}
	var stays []stay
	day := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	channels := []loyaltyv1.BookingChannel{loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP, loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK,
		loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB, loyaltyv1.BookingChannel_BOOKING_CHANNEL_TRAVEL_AGENCY}
	// Round by round, as a hotel's files come: each member stays 2 to 8
	// nights at a time from September to October.
	for round := range 7 {
		for m := range members {
			if (m+round)%5 == 4 {
				continue // not every member every round
			}
			nights := 2 + (m*3+round)%7
			stays = append(stays, stay{member: m, nights: nights, arrival: day.AddDate(0, 0, round*11+m%3).Format(time.DateOnly),
				charge: fmt.Sprintf("%d.%02d", 200+(m*37+round*53)%400, (m*7+round)%100), channel: channels[(m+round)%len(channels)], forOther: (m+round)%6 == 5})
		}
	}
	requests := func(numbers []string) []*loyaltyv1.RecordStayRequest {
		var out []*loyaltyv1.RecordStayRequest
		for i, s := range stays {
			charges := make([]string, s.nights)
			for n := range charges {
				charges[n] = s.charge
			}
			req := at(stayRequest(fmt.Sprint("stay-", i), numbers[s.member], fmt.Sprint("B-", i), charges...), s.arrival)
			req.Channel, req.BookedForOther = s.channel, s.forOther
			out = append(out, req)
		}
		return out
	}
	world := func() (*env, clients, []string) {
		e := newEnv(t)
		c := e.clients(e.bookingKey)
		var numbers []string
		for m := range members {
			numbers = append(numbers, e.enroll(t, c, fmt.Sprint("enrol-", m)))
		}
		return e, c, numbers
	}

	one, oneClients, oneNumbers := world()
	var singles []*loyaltyv1.RecordStayResponse
	for _, req := range requests(oneNumbers) {
		res, err := oneClients.booking.RecordStay(one.ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatal(err)
		}
		singles = append(singles, res.Msg)
	}

	batch, batchClients, batchNumbers := world()
	rows := requests(batchNumbers)
	res, err := batchClients.booking.RecordStays(batch.ctx, recordStays(rows...))
	if err != nil {
		t.Fatal(err)
	}
	tiers := map[loyaltyv1.Tier]int{}
	for i, r := range res.Msg.GetResults() {
		if r.GetStatus() != recorded {
			t.Fatalf("row %d: %s %v", i, r.GetStatus(), r.GetError())
		}
		got, want := r.GetRecorded(), singles[i]
		tiers[got.GetTier()]++
		if got.GetTier() != want.GetTier() || got.GetTransaction().GetAvailablePointsDelta() != want.GetTransaction().GetAvailablePointsDelta() ||
			!breakdownsEqual(got.GetTransaction().GetBreakdown(), want.GetTransaction().GetBreakdown()) ||
			got.GetTransaction().GetBalanceAfter().GetAvailablePoints() != want.GetTransaction().GetBalanceAfter().GetAvailablePoints() {
			t.Errorf("row %d (member %d): batch %s %d %v, single %s %d %v", i, stays[i].member,
				got.GetTier(), got.GetTransaction().GetAvailablePointsDelta(), got.GetTransaction().GetBreakdown(),
				want.GetTier(), want.GetTransaction().GetAvailablePointsDelta(), want.GetTransaction().GetBreakdown())
		}
	}
	// The stays must have moved members through every tier, or the test
	// proves less than it says.
	for _, tier := range []loyaltyv1.Tier{loyaltyv1.Tier_TIER_SILVER, loyaltyv1.Tier_TIER_GOLD, loyaltyv1.Tier_TIER_PLATINUM} {
		if tiers[tier] == 0 {
			t.Errorf("no stay left its member %s: %v", tier, tiers)
		}
	}

	// Again, as a client whose answer was lost sends it.
	count := batch.transactionCount(t)
	again, err := batchClients.booking.RecordStays(batch.ctx, recordStays(rows...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range again.Msg.GetResults() {
		if !proto.Equal(r, res.Msg.GetResults()[i]) {
			t.Errorf("row %d answered again %v, first %v", i, r, res.Msg.GetResults()[i])
		}
	}
	if n := batch.transactionCount(t); n != count {
		t.Errorf("the retry recorded %d transactions", n-count)
	}
	batch.verify(t)
}

func breakdownsEqual(a, b []*loyaltyv1.BreakdownLine) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestTwoBatchesOverTheSameBookingsRecordEachOnce: two RecordStays at once
// whose stays overlap (the same bookings under other keys): every booking
// is recorded once, each stay answers RECORDED or ALREADY_RECORDED with
// the transaction that took its booking, and the books balance.
func TestTwoBatchesOverTheSameBookingsRecordEachOnce(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	var numbers []string
	for m := range 8 {
		numbers = append(numbers, e.enroll(t, c, fmt.Sprint("enrol-", m)))
	}
	batch := func(prefix string, from, to int) []*loyaltyv1.RecordStayRequest {
		var out []*loyaltyv1.RecordStayRequest
		for b := from; b < to; b++ {
			out = append(out, at(stayRequest(fmt.Sprint(prefix, b), numbers[b%len(numbers)], fmt.Sprint("B-", b), "300.00", "300.00"),
				time.Date(2026, 10, 1+b/4, 0, 0, 0, 0, time.UTC).Format(time.DateOnly)))
		}
		return out
	}
	const bookingsInAll = 48
	calls := [][]*loyaltyv1.RecordStayRequest{batch("x-", 0, 36), batch("y-", 12, bookingsInAll)}
	answers := make([][]*loyaltyv1.StayRowResult, len(calls))
	var wg sync.WaitGroup
	for i, rows := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.booking.RecordStays(e.ctx, recordStays(rows...))
			if err != nil {
				t.Error(err)
				return
			}
			answers[i] = res.Msg.GetResults()
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	took := map[string]string{} // booking -> its transaction
	for i, results := range answers {
		for j, r := range results {
			if r.GetStatus() == recorded {
				booking := calls[i][j].GetStayId()
				if took[booking] != "" {
					t.Errorf("booking %s recorded twice", booking)
				}
				took[booking] = r.GetRecorded().GetTransaction().GetTransactionId()
			}
		}
	}
	for i, results := range answers {
		for j, r := range results {
			booking := calls[i][j].GetStayId()
			switch r.GetStatus() {
			case recorded:
			case alreadyRecorded:
				if r.GetExisting().GetTransactionId() != took[booking] {
					t.Errorf("call %d row %d: already recorded by %s, but %s took %s", i, j, r.GetExisting().GetTransactionId(), took[booking], booking)
				}
			default:
				t.Errorf("call %d row %d: %s %v", i, j, r.GetStatus(), r.GetError())
			}
		}
	}
	if len(took) != bookingsInAll {
		t.Errorf("%d bookings recorded, want %d", len(took), bookingsInAll)
	}
	var outcomes int
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT count(*) FROM booking_outcomes`).Scan(&outcomes); err != nil || outcomes != bookingsInAll {
		t.Errorf("%d booking outcomes (%v), want %d", outcomes, err, bookingsInAll)
	}
	e.verify(t)
}

// TestAPartnersBatchAwardsOnlyAtItsOwnHotels: a partner's AwardStays with
// stays at its own hotels, another partner's and the programme's own: the
// stays elsewhere are refused as AwardStay refuses them (NOT_FOUND), the
// others awarded, and the partner's settlement counts them.
func TestAPartnersBatchAwardsOnlyAtItsOwnHotels(t *testing.T) {
	w := newAllianceWorld(t)
	alpha := w.alliance(w.alphaKey)
	rows := []*loyaltyv1.AwardStayRequest{
		award("a-0", w.m1, "A-1", "ALPHA-1", "2026-11-10", "500.00").Msg,
		award("a-1", w.m1, "B-1", "BETA-1", "2026-11-10", "500.00").Msg,
		award("a-2", w.m2, "SH-HQ-001", "HQ-1", "2026-11-10", "500.00").Msg,
		award("a-3", w.m2, "A-2", "ALPHA-2", "2026-11-12", "300.00", "300.00").Msg,
		award("a-4", w.m1, "A-1", "ALPHA-1", "2026-11-10", "500.00").Msg, // row 0's booking again
	}
	res, err := alpha.AwardStays(w.ctx, connect.NewRequest(&loyaltyv1.AwardStaysRequest{Stays: rows}))
	if err != nil {
		t.Fatal(err)
	}
	results := res.Msg.GetResults()
	for i, want := range []loyaltyv1.StayRowStatus{recorded, refused, refused, recorded, alreadyRecorded} {
		if results[i].GetStatus() != want {
			t.Fatalf("row %d: %s %v, want %s", i, results[i].GetStatus(), results[i].GetError(), want)
		}
	}
	for _, i := range []int{1, 2} {
		_, err := alpha.AwardStay(w.ctx, connect.NewRequest(rows[i]))
		ce := wantCode(t, err, connect.CodeNotFound)
		if got := results[i].GetError(); got.GetCode() != "not_found" || got.GetMessage() != ce.Message() {
			t.Errorf("row %d: %v, the single call %v", i, got, ce)
		}
	}
	if got, want := results[4].GetExisting().GetTransactionId(), results[0].GetRecorded().GetTransaction().GetTransactionId(); got != want {
		t.Errorf("row 4 already recorded by %s, want %s", got, want)
	}
	if issued := w.settlement(t, w.alphaKey).GetPointsIssued(); issued != 1100 {
		t.Errorf("ALPHA issued %d points, want 1100", issued)
	}
	if issued := w.settlement(t, w.betaKey).GetPointsIssued(); issued != 0 {
		t.Errorf("BETA issued %d points, want 0", issued)
	}
	w.verify(t)
}

func mustJSON(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := protojson.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestADatabaseLostMidBatchReportsNoStayThatWasNotRecorded: the database
// goes down while a batch is being recorded. Every stay the answer calls
// RECORDED is in the database; every other one is REFUSED "unavailable"
// (or the whole call is UNAVAILABLE); once the database is back, the same
// batch sent again records the rest, answers the first transactions for
// the stays already recorded, and records nothing twice.
func TestADatabaseLostMidBatchReportsNoStayThatWasNotRecorded(t *testing.T) {
	direct, proxy, viaProxy := databaseBehindProxy(t)
	e := newEnvOn(t, viaProxy)
	c := e.clients(e.bookingKey)
	var numbers []string
	for m := range 40 {
		numbers = append(numbers, e.enroll(t, c, fmt.Sprint("enrol-", m)))
	}
	var rows []*loyaltyv1.RecordStayRequest
	for i := range 600 {
		rows = append(rows, at(stayRequest(fmt.Sprint("stay-", i), numbers[i%len(numbers)], fmt.Sprint("B-", i), "300.00"),
			time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/len(numbers)*2).Format(time.DateOnly)))
	}
	stays := func() int {
		var n int
		if err := direct.Pool.QueryRow(e.ctx, `SELECT count(*) FROM transactions WHERE metadata->>'stay_id' LIKE 'B-%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	type answer struct {
		res *connect.Response[loyaltyv1.RecordStaysResponse]
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := c.booking.RecordStays(e.ctx, recordStays(rows...))
		done <- answer{res, err}
	}()
	// Down once some stays are committed, well before all are.
	start := time.Now()
	for stays() < 30 {
		if time.Since(start) > 30*time.Second {
			t.Fatal("the batch recorded nothing in 30 s")
		}
		time.Sleep(2 * time.Millisecond) // between polls
	}
	proxy.down()
	first := <-done
	proxy.up(t)
	committed := map[string]bool{}
	idRows, err := direct.Pool.Query(e.ctx, `SELECT id::TEXT FROM transactions WHERE metadata->>'stay_id' LIKE 'B-%'`)
	if err != nil {
		t.Fatal(err)
	}
	for idRows.Next() {
		var id string
		if err := idRows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		committed[id] = true
	}
	if len(committed) == len(rows) {
		t.Fatal("every stay was recorded before the database went down: the test proves nothing")
	}
	recordedFirst := map[int]string{}
	if first.err != nil {
		wantCode(t, first.err, connect.CodeUnavailable)
	} else {
		for i, r := range first.res.Msg.GetResults() {
			switch {
			case r.GetStatus() == recorded:
				id := r.GetRecorded().GetTransaction().GetTransactionId()
				if !committed[id] {
					t.Errorf("row %d: RECORDED %s, which is not in the database", i, id)
				}
				recordedFirst[i] = id
			case r.GetStatus() != refused || r.GetError().GetCode() != "unavailable":
				t.Errorf("row %d: %s %v, want RECORDED or REFUSED unavailable", i, r.GetStatus(), r.GetError())
			}
		}
	}
	t.Logf("%d stays committed before the outage, %d answered RECORDED", len(committed), len(recordedFirst))

	// Sent again as a client does: while the call, or any of its stays,
	// answers unavailable (the pool's connections may still be the dead
	// ones), after a backoff.
	var again *connect.Response[loyaltyv1.RecordStaysResponse]
	for attempt := 1; ; attempt++ {
		again, err = c.booking.RecordStays(e.ctx, recordStays(rows...))
		if err == nil && !slices.ContainsFunc(again.Msg.GetResults(), func(r *loyaltyv1.StayRowResult) bool { return r.GetError().GetCode() == "unavailable" }) {
			break
		}
		if err != nil {
			wantCode(t, err, connect.CodeUnavailable)
		}
		if attempt == 10 {
			t.Fatalf("still unavailable after %d attempts", attempt)
		}
		time.Sleep(time.Duration(attempt) * 100 * time.Millisecond) // the client's backoff
	}
	for i, r := range again.Msg.GetResults() {
		if r.GetStatus() != recorded {
			t.Errorf("row %d after the outage: %s %v", i, r.GetStatus(), r.GetError())
			continue
		}
		if id, ok := recordedFirst[i]; ok && r.GetRecorded().GetTransaction().GetTransactionId() != id {
			t.Errorf("row %d: recorded again as %s, first %s", i, r.GetRecorded().GetTransaction().GetTransactionId(), id)
		}
	}
	if n := stays(); n != len(rows) {
		t.Errorf("%d stay transactions, want %d", n, len(rows))
	}
	e.verify(t)
}

// TestABatchRefusesFieldsItDoesNotKnow: a batch is decoded as strictly as
// each of its stays alone: a misspelt field in a stay refuses the call
// (nothing is recorded), as RecordStay refuses it.
func TestABatchRefusesFieldsItDoesNotKnow(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	before := e.transactionCount(t)
	stay := `{"idempotencyKey":"stay-1","memberNumber":"` + member + `","propertyId":"SH-HQ-001","stayId":"B-1",` +
		`"arrivalDate":"2026-11-01","departureDate":"2026-11-02","nights":[{"roomCharge":{"currencyCode":"CNY","amount":"388.00"}}],` +
		`"channel":"BOOKING_CHANNEL_APP","bookedForSomeoneElse":true}`
	status, raw := e.postJSON(t, e.bookingKey, "/loyalty.v1.BookingService/RecordStays", `{"stays":[`+stay+`]}`)
	if status != http.StatusBadRequest || !strings.Contains(raw, `unknown field \"stays[0].bookedForSomeoneElse\": RecordStayRequest has no such field`) {
		t.Fatalf("%d %s; want 400 naming bookedForSomeoneElse", status, raw)
	}
	if n := e.transactionCount(t); n != before {
		t.Fatalf("%d transactions written", n-before)
	}
}
