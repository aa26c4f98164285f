package rpc_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/finance"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// financeClient is a FinanceService client with a key of the given role,
// created through AdminService.
func (e *env) financeClient(t *testing.T, role loyaltyv1.ApiKeyRole, opts ...connect.ClientOption) loyaltyv1connect.FinanceServiceClient {
	t.Helper()
	key := e.bookingKey
	if role != loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL {
		res, err := e.clients(e.adminKey).admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{
			IdempotencyKey: "key-" + role.String(), Name: role.String(), Role: role}))
		if err != nil {
			t.Fatal(err)
		}
		key = res.Msg.GetSecret()
	}
	opts = append(opts, connect.WithInterceptors(bearer(key)))
	return loyaltyv1connect.NewFinanceServiceClient(e.server.Client(), e.server.URL, opts...)
}

// TestFinanceService: a finance key reads a trial balance that is zero and
// a roll-forward that balances after a stay and a redemption, sets a point
// value (a retry answers the same), and reconciles; a booking key is
// refused; bad input names its field.
func TestFinanceService(t *testing.T) {
	for _, p := range protocols {
		t.Run(p.name, func(t *testing.T) {
			e := newEnv(t)
			c := e.clients(e.bookingKey, p.opts...)
			member := e.enroll(t, c, "enrol-1")
			if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(stayRequest("stay-1", member, "B-1", "388.00"))); err != nil {
				t.Fatal(err)
			}
			from := e.clock.Now()
			if _, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "redeem-1",
				MemberNumber: member, Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, PropertyId: "SH-HQ-001"})); err != nil {
				t.Fatal(err)
			}
			to := e.clock.Now()
			fin := e.financeClient(t, loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE, p.opts...)

			tb, err := fin.GetTrialBalance(e.ctx, connect.NewRequest(&loyaltyv1.GetTrialBalanceRequest{IndividualMembers: true}))
			if err != nil {
				t.Fatal(err)
			}
			if tb.Msg.GetTotal() != 0 || tb.Msg.GetTotalDebit() == 0 || len(tb.Msg.GetMemberLines()) != 1 {
				t.Errorf("trial balance: total %d, debits %d, %d member lines", tb.Msg.GetTotal(), tb.Msg.GetTotalDebit(), len(tb.Msg.GetMemberLines()))
			}

			rf, err := fin.GetRollForward(e.ctx, connect.NewRequest(&loyaltyv1.GetRollForwardRequest{
				From: timestamppb.New(from), To: timestamppb.New(to), GroupBy: loyaltyv1.RollForwardGrouping_ROLL_FORWARD_GROUPING_PROPERTY}))
			if err != nil {
				t.Fatal(err)
			}
			m := rf.Msg
			if !m.GetBalanced() || len(m.GetLines()) != 1 || m.GetLines()[0].GetDimension() != "SH-HQ-001" ||
				m.GetLines()[0].GetCategory() != "redeemed" || m.GetOpeningPoints()+m.GetMovementPoints() != m.GetClosingPoints() ||
				m.GetCurrencyCode() != "CNY" || m.GetClosingMoney() == "" {
				t.Errorf("roll-forward %v", m)
			}

			// A book value is an admin's write: finance reads.
			set := &loyaltyv1.SetPointValueRequest{IdempotencyKey: "value-1", EffectiveOn: "2027-01-01", ValuePerPoint: "0.012", CurrencyCode: "CNY"}
			_, err = fin.SetPointValue(e.ctx, connect.NewRequest(set))
			wantCode(t, err, connect.CodePermissionDenied)
			fin = loyaltyv1connect.NewFinanceServiceClient(e.server.Client(), e.server.URL, append(p.opts, connect.WithInterceptors(bearer(e.adminKey)))...)
			first, err := fin.SetPointValue(e.ctx, connect.NewRequest(set))
			if err != nil {
				t.Fatal(err)
			}
			again, err := fin.SetPointValue(e.ctx, connect.NewRequest(set))
			if err != nil || again.Msg.GetPointValue().GetCreatedAt().AsTime() != first.Msg.GetPointValue().GetCreatedAt().AsTime() {
				t.Errorf("retry: %v, %v", again, err)
			}
			_, err = fin.SetPointValue(e.ctx, connect.NewRequest(&loyaltyv1.SetPointValueRequest{IdempotencyKey: "value-2",
				EffectiveOn: "2027-01-01", ValuePerPoint: "0.02", CurrencyCode: "CNY"}))
			wantCode(t, err, connect.CodeFailedPrecondition)
			values, err := fin.ListPointValues(e.ctx, connect.NewRequest(&loyaltyv1.ListPointValuesRequest{}))
			if err != nil || len(values.Msg.GetPointValues()) != 2 || values.Msg.GetPointValues()[1].GetValuePerPoint() != "0.012" {
				t.Errorf("point values %v, %v", values, err)
			}

			rec, err := fin.Reconcile(e.ctx, connect.NewRequest(&loyaltyv1.ReconcileRequest{}))
			if err != nil || !rec.Msg.GetOk() {
				t.Errorf("reconcile: %v, %v", rec, err)
			}
			if _, err := fin.ListSeals(e.ctx, connect.NewRequest(&loyaltyv1.ListSealsRequest{})); err != nil {
				t.Error(err)
			}

			for field, req := range map[string]*loyaltyv1.SetPointValueRequest{
				"effectiveOn":   {IdempotencyKey: "v3", EffectiveOn: "1 Jan", ValuePerPoint: "0.01", CurrencyCode: "CNY"},
				"valuePerPoint": {IdempotencyKey: "v4", EffectiveOn: "2027-02-01", ValuePerPoint: "1e-2", CurrencyCode: "CNY"},
				"currencyCode":  {IdempotencyKey: "v5", EffectiveOn: "2027-02-01", ValuePerPoint: "0.01", CurrencyCode: "USD"},
			} {
				_, err := fin.SetPointValue(e.ctx, connect.NewRequest(req))
				if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != field {
					t.Errorf("bad %s: field %q", field, got)
				}
			}
			// A value from a day already begun would reprice what is recorded.
			today := e.clock.Now().UTC().Format(time.DateOnly)
			_, err = fin.SetPointValue(e.ctx, connect.NewRequest(&loyaltyv1.SetPointValueRequest{IdempotencyKey: "v6",
				EffectiveOn: today, ValuePerPoint: "0.02", CurrencyCode: "CNY"}))
			if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != "effectiveOn" {
				t.Errorf("a value from today: field %q", got)
			}
			// A period still running ends now, and says so by its end; one
			// not begun is refused.
			running, err := fin.GetRollForward(e.ctx, connect.NewRequest(&loyaltyv1.GetRollForwardRequest{
				From: timestamppb.New(from), To: timestamppb.New(e.clock.Now().AddDate(0, 1, 0))}))
			if err != nil || running.Msg.GetTo().AsTime().After(e.clock.Now()) || !running.Msg.GetBalanced() {
				t.Errorf("a period still running: %v, %v; want it ended now", running, err)
			}
			_, err = fin.GetRollForward(e.ctx, connect.NewRequest(&loyaltyv1.GetRollForwardRequest{
				From: timestamppb.New(e.clock.Now().AddDate(0, 0, 1)), To: timestamppb.New(e.clock.Now().AddDate(0, 1, 0))}))
			if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != "from" {
				t.Errorf("a period not begun: field %q", got)
			}
			_, err = fin.GetRollForward(e.ctx, connect.NewRequest(&loyaltyv1.GetRollForwardRequest{From: timestamppb.New(to), To: timestamppb.New(from)}))
			if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != "to" {
				t.Errorf("period backwards: field %q", got)
			}

			booking := e.financeClient(t, loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL, p.opts...)
			_, err = booking.GetTrialBalance(e.ctx, connect.NewRequest(&loyaltyv1.GetTrialBalanceRequest{}))
			wantCode(t, err, connect.CodePermissionDenied)
		})
	}
}

// TestListSealsPagesThroughTheDays: seals are listed by day, a page at a
// time, the next page from the day after the last listed; a reversed
// range and a negative page size are refused, naming the field.
func TestListSealsPagesThroughTheDays(t *testing.T) {
	w := newAllianceWorld(t)
	if _, err := w.clients(w.bookingKey).booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("stay-1", w.m1, "S-1", "388.00"))); err != nil {
		t.Fatal(err)
	}
	w.advanceTo(time.Date(2026, 11, 27, 1, 0, 0, 0, time.UTC))
	if _, err := finance.New(w.ledger, finance.Options{Clock: w.clock.Now}).SealDays(w.ctx); err != nil {
		t.Fatal(err)
	}
	fin := w.financeClient(t, loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE)
	var days []string
	pages := 0
	for from := ""; ; {
		res, err := fin.ListSeals(w.ctx, connect.NewRequest(&loyaltyv1.ListSealsRequest{FromDay: from, PageSize: 2}))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, s := range res.Msg.GetSeals() {
			days = append(days, s.GetDay())
		}
		if from = res.Msg.GetNextFromDay(); from == "" {
			break
		}
	}
	all, err := fin.ListSeals(w.ctx, connect.NewRequest(&loyaltyv1.ListSealsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, s := range all.Msg.GetSeals() {
		want = append(want, s.GetDay())
	}
	if len(want) < 3 || !slices.Equal(days, want) || pages != (len(want)+1)/2 {
		t.Errorf("paged: %v in %d pages; all at once: %v", days, pages, want)
	}
	for field, req := range map[string]*loyaltyv1.ListSealsRequest{
		"toDay":    {FromDay: "2026-11-25", ToDay: "2026-11-24"},
		"pageSize": {PageSize: -5},
	} {
		_, err := fin.ListSeals(w.ctx, connect.NewRequest(req))
		if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != field {
			t.Errorf("field %q, want %s", got, field)
		}
	}
}

// TestAFinanceReportRefusesAFieldItDoesNotKnow: finance's report requests
// refuse unknown fields as writes do, since a misspelt period or grouping
// would report another one than asked for; other reads stay lenient.
func TestAFinanceReportRefusesAFieldItDoesNotKnow(t *testing.T) {
	e := newEnv(t)
	post := func(path, body string) (int, string) {
		t.Helper()
		return e.postJSON(t, e.adminKey, path, body)
	}
	for _, tc := range []struct{ path, body, field string }{
		{"/loyalty.v1.FinanceService/GetTrialBalance", `{"asof":"2026-11-01T00:00:00Z"}`, "asof"},
		{"/loyalty.v1.FinanceService/GetRollForward", `{"to":"2026-11-01T00:00:00Z","groupby":"ROLL_FORWARD_GROUPING_PARTNER"}`, "groupby"},
	} {
		if status, body := post(tc.path, tc.body); status != http.StatusBadRequest || !strings.Contains(body, `unknown field \"`+tc.field+`\"`) {
			t.Errorf("%s with %q: %d %s", tc.path, tc.field, status, body)
		}
	}
	if status, body := post("/loyalty.v1.FinanceService/GetTrialBalance", `{"asOf":"2026-11-01T00:00:00Z"}`); status != http.StatusOK {
		t.Errorf("spelt right: %d %s", status, body)
	}
	if status, body := post("/loyalty.v1.AdminService/ListPartners", `{"includeEverything":true}`); status != http.StatusOK {
		t.Errorf("another read with a field it does not know: %d %s", status, body)
	}
}
