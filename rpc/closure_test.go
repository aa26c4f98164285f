package rpc_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/finance"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// A closed member's personal values, which no table may hold afterwards.
const (
	closedName     = "Wang Fang"
	closedEmail    = "wang.fang@example.com"
	closedNewEmail = "fang.w@example.org" // the e-mail after a correction
	closedPhone    = "+86 138 0013 8000"
)

// TestClosingAMembershipErasesThePersonAndKeepsTheBooks: a member with
// stays, a redemption, an adjustment whose reason names them, a
// corrected e-mail, partner activity, a hold and, after a no-show, a debt
// is closed, as is a member with points. Afterwards: the hold is released,
// the debt written off and the other's points forfeited, each on its own
// roll-forward line; no column of any table holds the name, e-mail (old
// or new) or phone, as text or as bytes; GetMember shows closed_at and
// blank fields; the statement still exports without them; the books
// reconcile and the seals of the day sealed before the closure (whose
// metadata the erasure rewrote) still verify; a replay of the closure, and
// a retry of each write made before it, answers the first answer and
// writes nothing; and every new write for the member is refused, even
// under a key used before (a partner, which recognises a member by name,
// finds none).
func TestClosingAMembershipErasesThePersonAndKeepsTheBooks(t *testing.T) {
	w := newAllianceWorld(t)
	c, admin := w.clients(w.bookingKey), w.clients(w.adminKey)
	start := w.clock.Now()
	res, err := c.members.EnrollMember(w.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{IdempotencyKey: "enrol-a",
		FullName: closedName, Email: closedEmail, Phone: closedPhone, Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
	if err != nil {
		t.Fatal(err)
	}
	a := res.Msg.GetMember().GetMemberNumber()
	familyNames.Store(a, "Fang")
	email := closedNewEmail
	if _, err := c.members.UpdateMember(w.ctx, connect.NewRequest(&loyaltyv1.UpdateMemberRequest{IdempotencyKey: "update-a", MemberNumber: a,
		Email: &email})); err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	stay, err := c.booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("stay-a", a, "S-A", "400.00", "420.00")))
	must("stay", err)
	milkRequest := &loyaltyv1.RedeemRequest{IdempotencyKey: "milk-a", MemberNumber: a, Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK}
	milk, err := c.booking.Redeem(w.ctx, connect.NewRequest(milkRequest))
	must("redemption", err)
	goodwill, err := admin.admin.AdjustPoints(w.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "gw-a", MemberNumber: a,
		Points: 100, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "noisy room, " + closedName + " called twice"}))
	must("goodwill naming the member", err)
	awarded, err := w.alliance(w.alphaKey).AwardStay(w.ctx, award("award-a", a, "A-1", "ST-A", "2026-11-10", "380.00"))
	must("partner award", err)
	guaranteeRequest := &loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-a", MemberNumber: a,
		PropertyId: "SH-HQ-001", StayId: "G-A", ArrivalDate: "2026-11-23", HoldUntil: "20:00"}
	guarantee, err := c.booking.PlaceGuarantee(w.ctx, connect.NewRequest(guaranteeRequest))
	must("guarantee", err)
	held := w.balance(t, a).GetHeldPoints()
	if held == 0 {
		t.Fatal("the guarantee holds nothing")
	}
	// Ten nights of no-show: more than the member has.
	ns := noShow("ns-a", a, "N-A", "2026-11-20")
	ns.Msg.Nights = 10
	noShowed, err := c.booking.RecordNoShow(w.ctx, ns)
	must("no-show", err)
	debt := w.balance(t, a).GetPostedPoints()
	if debt >= 0 {
		t.Fatalf("posted %d after the no-show, want a debt", debt)
	}
	_, err = c.booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("stay-m2", w.m2, "S-M2", "300.00")))
	must("the other member's stay", err)
	points := w.balance(t, w.m2).GetPostedPoints()

	// An admin's text about a partner names the member too.
	if _, err := admin.admin.SuspendPartner(w.ctx, connect.NewRequest(&loyaltyv1.SuspendPartnerRequest{IdempotencyKey: "suspend-beta",
		PartnerId: "BETA", Reason: "complaint of " + closedName + " about the breakfast"})); err != nil {
		t.Fatal(err)
	}

	// The search finds what is there: the name before the closure.
	if found := w.findEverywhere(t, closedName); len(found) < 3 {
		t.Fatalf("before the closure the name is in %v only", found)
	} else {
		t.Logf("before the closure the name is in %v", found)
	}

	// Seal the day of all that, then close both members the next day.
	reports := finance.New(w.ledger, finance.Options{Clock: w.clock.Now})
	w.advanceTo(time.Date(2026, 11, 23, 1, 0, 0, 0, time.UTC))
	if p, err := reports.SealDays(w.ctx); err != nil || p.Days == 0 {
		t.Fatalf("seal: %+v, %v", p, err)
	}
	closeA := &loyaltyv1.CloseMembershipRequest{IdempotencyKey: "close-a", MemberNumber: a, Reason: "member's request by e-mail of 2026-11-22"}
	closed, err := c.members.CloseMembership(w.ctx, connect.NewRequest(closeA))
	must("close", err)
	got := closed.Msg
	if got.GetMemberNumber() != a || got.GetReleasedPoints() != held || got.GetForfeitedPoints() != 0 ||
		got.GetWrittenOffPoints() != -debt || got.GetTransactionId() == "" || got.GetClosedAt() == nil {
		t.Errorf("closure of the member in debt = %v; want %d released, %d written off", got, held, -debt)
	}
	replay, err := c.members.CloseMembership(w.ctx, connect.NewRequest(closeA))
	must("replay", err)
	if fmt.Sprint(replay.Msg) != fmt.Sprint(got) {
		t.Errorf("replay = %v, want %v", replay.Msg, got)
	}
	closedM2, err := admin.members.CloseMembership(w.ctx, connect.NewRequest(&loyaltyv1.CloseMembershipRequest{IdempotencyKey: "close-m2",
		MemberNumber: w.m2, Reason: "no stay for years"}))
	must("close the member with points", err)
	if closedM2.Msg.GetForfeitedPoints() != points || closedM2.Msg.GetWrittenOffPoints() != 0 || points <= 0 {
		t.Errorf("closure of the member with %d points = %v", points, closedM2.Msg)
	}
	for _, m := range []string{a, w.m2} {
		if b := w.balance(t, m); b.GetPostedPoints() != 0 || b.GetHeldPoints() != 0 {
			t.Errorf("member %s after closure: %v", m, b)
		}
	}

	// Nothing of the person is left, anywhere.
	for _, v := range []string{closedName, closedEmail, closedNewEmail, closedPhone} {
		for _, where := range w.findEverywhere(t, v) {
			t.Errorf("%q is still in %s", v, where)
		}
	}
	// The member's page: closed, blank.
	page, err := c.members.GetMember(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: a}))
	must("get the closed member", err)
	if m := page.Msg.GetMember(); m.GetClosedAt() == nil || !m.GetClosedAt().AsTime().Equal(got.GetClosedAt().AsTime()) ||
		m.GetFullName() != "" || m.GetEmail() != "" || m.GetPhone() != "" {
		t.Errorf("closed member = %v", m)
	}
	// The adjustment's reason was erased, as the seals allow.
	txn, err := admin.members.GetTransaction(w.ctx, connect.NewRequest(&loyaltyv1.GetTransactionRequest{TransactionId: goodwill.Msg.GetTransaction().GetTransactionId()}))
	must("the goodwill transaction", err)
	if _, ok := txmeta.ErasedHash(txn.Msg.GetTransaction().GetDescription()); !ok {
		t.Errorf("the goodwill's description after closure = %q, want it erased", txn.Msg.GetTransaction().GetDescription())
	}

	// The statement still exports, with the transactions and without the person.
	export, err := c.members.ExportStatement(w.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{MemberNumber: a,
		From: timestamppb.New(start.Add(-time.Hour)), To: timestamppb.New(w.clock.Now()), Format: loyaltyv1.StatementFormat_STATEMENT_FORMAT_CSV}))
	must("export the closed member's statement", err)
	if export.Msg.GetTransactions() < 6 || bytes.Contains(bytes.ToLower(export.Msg.GetContent()), []byte(strings.ToLower(closedName))) {
		t.Errorf("statement of the closed member: %d transactions, content:\n%s", export.Msg.GetTransactions(), export.Msg.GetContent())
	}

	// The books: seal the closure's day too, then everything verifies.
	w.advanceTo(time.Date(2026, 11, 24, 1, 0, 0, 0, time.UTC))
	if _, err := reports.SealDays(w.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := reports.RollUp(w.ctx); err != nil {
		t.Fatal(err)
	}
	seals, err := reports.VerifySeals(w.ctx)
	if err != nil || !seals.OK() || seals.Checked < 2 {
		t.Errorf("seals after the erasure: %+v, %v", seals, err)
	}
	rec, err := reports.Reconcile(w.ctx)
	if err != nil || !rec.OK() {
		t.Errorf("reconcile after closures: %+v, %v", rec, err)
	}
	w.verify(t)
	rf, err := reports.RollForward(w.ctx, start.Add(-time.Hour), w.clock.Now(), finance.GroupBySource)
	must("roll-forward", err)
	lines := map[string]int64{}
	for _, l := range rf.Lines {
		lines[l.Category+"/"+l.Detail] += l.Points
	}
	if lines["forfeited/closure"] != -points || lines["written_off/closure"] != -debt || !rf.Balanced {
		t.Errorf("roll-forward lines %v (balanced %v): want forfeited/closure %d, written_off/closure %d", lines, rf.Balanced, -points, -debt)
	}
	tb, err := reports.TrialBalance(w.ctx, w.clock.Now(), finance.TrialOptions{})
	must("trial balance", err)
	accounts := map[string]int64{}
	for _, l := range tb.Lines {
		accounts[l.Account] = l.Balance
	}
	if _, ok := accounts["programme:forfeited"]; !ok || tb.Total != 0 {
		t.Errorf("trial balance: %v, total %d", accounts, tb.Total)
	}

	// A retry of a write made before the closure is answered as the first
	// time, and writes nothing.
	for _, retry := range []struct {
		name        string
		call        func() (string, error)
		firstAnswer string
	}{
		{"RecordStay", func() (string, error) {
			res, err := c.booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("stay-a", a, "S-A", "400.00", "420.00")))
			if err != nil {
				return "", err
			}
			return res.Msg.GetTransaction().GetTransactionId(), nil
		}, stay.Msg.GetTransaction().GetTransactionId()},
		{"Redeem", func() (string, error) {
			res, err := c.booking.Redeem(w.ctx, connect.NewRequest(milkRequest))
			if err != nil {
				return "", err
			}
			return res.Msg.GetTransaction().GetTransactionId(), nil
		}, milk.Msg.GetTransaction().GetTransactionId()},
		{"PlaceGuarantee", func() (string, error) {
			res, err := c.booking.PlaceGuarantee(w.ctx, connect.NewRequest(guaranteeRequest))
			if err != nil {
				return "", err
			}
			return guaranteeAnswer(res.Msg.GetGuarantee()), nil
		}, guaranteeAnswer(guarantee.Msg.GetGuarantee())},
		{"RecordNoShow", func() (string, error) {
			res, err := c.booking.RecordNoShow(w.ctx, ns)
			if err != nil {
				return "", err
			}
			return res.Msg.GetTransaction().GetTransactionId(), nil
		}, noShowed.Msg.GetTransaction().GetTransactionId()},
		{"AdjustPoints", func() (string, error) {
			res, err := admin.admin.AdjustPoints(w.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "gw-a", MemberNumber: a,
				Points: 100, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "noisy room, " + closedName + " called twice"}))
			if err != nil {
				return "", err
			}
			return res.Msg.GetTransaction().GetTransactionId(), nil
		}, goodwill.Msg.GetTransaction().GetTransactionId()},
	} {
		t.Run("a retry of "+retry.name, func(t *testing.T) {
			got, err := retry.call()
			if err != nil || got == "" || got != retry.firstAnswer {
				t.Errorf("retry after the closure: %q, %v; want the first answer %q", got, err, retry.firstAnswer)
			}
		})
	}
	if b := w.balance(t, a); b.GetPostedPoints() != 0 || b.GetHeldPoints() != 0 {
		t.Errorf("the closed member's balance after the retries: %v", b)
	}

	// Every write for the member is refused, naming the closure.
	alpha := w.alliance(w.alphaKey)
	name := "Someone Else"
	for _, write := range []struct {
		name string
		call func() error
	}{
		{"RecordStay", func() error {
			_, err := c.booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("after-stay", a, "S-A2", "300.00")))
			return err
		}},
		{"Redeem", func() error {
			_, err := c.booking.Redeem(w.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "after-milk", MemberNumber: a, Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK}))
			return err
		}},
		{"PlaceGuarantee", func() error {
			_, err := c.booking.PlaceGuarantee(w.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "after-g", MemberNumber: a,
				PropertyId: "SH-HQ-001", StayId: "G-A2", ArrivalDate: "2026-11-25", HoldUntil: "20:00"}))
			return err
		}},
		{"RecordNoShow", func() error {
			_, err := c.booking.RecordNoShow(w.ctx, noShow("after-ns", a, "N-A2", "2026-11-21"))
			return err
		}},
		{"RecordCancellation", func() error {
			_, err := c.booking.RecordCancellation(w.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "after-cancel", MemberNumber: a,
				PropertyId: "SH-HQ-001", StayId: "C-A2", ArrivalDate: "2026-11-23", Nights: 1, CancelledAt: timestamppb.New(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC))}))
			return err
		}},
		{"a free RecordCancellation under a key used before the closure", func() error {
			// The key lets the member's lookup through, as for a retry:
			// the booking's outcome is still refused.
			_, err := c.booking.RecordCancellation(w.ctx, connect.NewRequest(&loyaltyv1.RecordCancellationRequest{IdempotencyKey: "stay-a", MemberNumber: a,
				PropertyId: "SH-HQ-001", StayId: "C-A3", ArrivalDate: "2026-12-20", Nights: 1, CancelledAt: timestamppb.New(time.Date(2026, 11, 23, 11, 0, 0, 0, time.UTC))}))
			return err
		}},
		{"RecordLateCheckout", func() error {
			_, err := c.booking.RecordLateCheckout(w.ctx, connect.NewRequest(&loyaltyv1.RecordLateCheckoutRequest{IdempotencyKey: "after-late", MemberNumber: a,
				PropertyId: "SH-HQ-001", StayId: "S-A", DepartureDate: "2026-11-03", Hours: 1}))
			return err
		}},
		{"AwardSuggestion", func() error {
			_, err := c.members.AwardSuggestion(w.ctx, connect.NewRequest(&loyaltyv1.AwardSuggestionRequest{IdempotencyKey: "after-sugg", MemberNumber: a, Suggestion: "more pillows"}))
			return err
		}},
		{"UpdateMember", func() error {
			_, err := c.members.UpdateMember(w.ctx, connect.NewRequest(&loyaltyv1.UpdateMemberRequest{IdempotencyKey: "after-update", MemberNumber: a, FullName: &name}))
			return err
		}},
		{"AdjustPoints", func() error {
			_, err := admin.admin.AdjustPoints(w.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "after-gw", MemberNumber: a,
				Points: 100, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "sorry"}))
			return err
		}},
		{"SetTier", func() error {
			_, err := admin.admin.SetTier(w.ctx, connect.NewRequest(&loyaltyv1.SetTierRequest{IdempotencyKey: "after-tier", MemberNumber: a,
				Tier: loyaltyv1.Tier_TIER_GOLD, Reason: "courtesy"}))
			return err
		}},
		{"CloseMembership under another key", func() error {
			_, err := c.members.CloseMembership(w.ctx, connect.NewRequest(&loyaltyv1.CloseMembershipRequest{IdempotencyKey: "close-a-again", MemberNumber: a, Reason: "again"}))
			return err
		}},
		{"ReverseTransaction", func() error {
			_, err := c.booking.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.ReverseTransactionRequest{IdempotencyKey: "after-rev",
				TransactionId: stay.Msg.GetTransaction().GetTransactionId(), Reason: "stay disputed"}))
			return err
		}},
		{"alliance ReverseTransaction", func() error {
			_, err := alpha.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{IdempotencyKey: "after-p-rev",
				TransactionId: awarded.Msg.GetTransaction().GetTransactionId(), Reason: "stay disputed"}))
			return err
		}},
	} {
		t.Run(write.name, func(t *testing.T) {
			ce := wantCode(t, write.call(), connect.CodeFailedPrecondition)
			if info := errorInfo(t, ce); info.GetReason() != "MEMBERSHIP_CLOSED" {
				t.Errorf("reason %s, want MEMBERSHIP_CLOSED", info.GetReason())
			}
		})
	}
	// A partner recognises a member by number and family name: with the
	// name erased, a closed member is one it cannot name, answered as an
	// unknown one, which tells a partner holding the number nothing of the
	// closure.
	_, err = alpha.AwardStay(w.ctx, award("after-award", a, "A-1", "ST-A2", "2026-11-21", "300.00"))
	wantCode(t, err, connect.CodeNotFound)
	_, err = alpha.Redeem(w.ctx, redeem("after-p-redeem", a, "A-1", loyaltyv1.Reward_REWARD_MEMBER_CARD))
	wantCode(t, err, connect.CodeNotFound)
	_, err = alpha.GetMemberStatus(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{MemberNumber: a, FamilyName: familyOf(a)}))
	wantCode(t, err, connect.CodeNotFound)
	if b := w.balance(t, a); b.GetPostedPoints() != 0 || b.GetHeldPoints() != 0 {
		t.Errorf("the closed member's balance after the refused writes: %v", b)
	}
}

// guaranteeAnswer is what tells a guarantee's answers apart: the points
// it held and when it was placed.
func guaranteeAnswer(g *loyaltyv1.Guarantee) string {
	if g == nil {
		return ""
	}
	return fmt.Sprint(g.GetPointsHeld(), " held at ", g.GetPlacedAt().AsTime())
}

func (e *env) balance(t *testing.T, member string) *loyaltyv1.PointsBalance {
	t.Helper()
	res, err := e.clients(e.adminKey).members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetMember().GetBalance()
}

// findEverywhere searches every text, JSON, array and byte column of
// every table of the schema for value (letter case aside; bytes: the raw
// UTF-8 bytes, and the value as JSON would escape it), and names each
// table.column that holds it.
func (e *env) findEverywhere(t *testing.T, value string) []string {
	t.Helper()
	rows, err := e.db.Pool.Query(e.ctx, `SELECT table_name, column_name, data_type FROM information_schema.columns
		WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'bytea', 'ARRAY')
		ORDER BY table_name, column_name`)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ table, name, kind string }
	var columns []column
	for rows.Next() {
		var c column
		if err := rows.Scan(&c.table, &c.name, &c.kind); err != nil {
			t.Fatal(err)
		}
		columns = append(columns, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(columns) < 20 {
		t.Fatalf("only %d columns to search: %v", len(columns), columns)
	}
	escaped, _ := json.Marshal(value)
	var found []string
	for _, c := range columns {
		var n int
		ident := fmt.Sprintf(`%q.%q`, c.table, c.name)
		query := fmt.Sprintf(`SELECT count(*) FROM %q WHERE strpos(lower(%s::TEXT), lower($1)) > 0 OR strpos(lower(%s::TEXT), lower($2)) > 0`,
			c.table, ident, ident)
		args := []any{value, strings.Trim(string(escaped), `"`)}
		if c.kind == "bytea" {
			query = fmt.Sprintf(`SELECT count(*) FROM %q WHERE position($1::BYTEA IN %s) > 0`, c.table, ident)
			args = []any{[]byte(value)}
		}
		if err := e.db.Pool.QueryRow(e.ctx, query, args...).Scan(&n); err != nil {
			t.Fatalf("search %s: %v", ident, err)
		}
		if n > 0 {
			found = append(found, fmt.Sprintf("%s.%s (%d rows)", c.table, c.name, n))
		}
	}
	if bytes.Contains([]byte(value), []byte{0}) {
		t.Fatal("a value with a NUL byte cannot be searched")
	}
	return found
}
