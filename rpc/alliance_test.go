package rpc_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/partners"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

func (e *env) alliance(key string) loyaltyv1connect.AllianceServiceClient {
	return loyaltyv1connect.NewAllianceServiceClient(e.server.Client(), e.server.URL, connect.WithInterceptors(bearer(key)))
}

// familyNames are the family names of the members enrollNamed enrolled,
// by member number (numbers are random, so tests never share one): the
// requests below recognise a member as a partner does, with both factors.
var familyNames sync.Map

func familyOf(number string) string {
	name, _ := familyNames.Load(number)
	s, _ := name.(string)
	return s
}

// award asks for a stay's points from arrival (YYYY-MM-DD), one night per
// room charge.
func award(key, member, property, stay, arrival string, charges ...string) *connect.Request[loyaltyv1.AwardStayRequest] {
	a, err := time.Parse(time.DateOnly, arrival)
	if err != nil {
		panic(err)
	}
	req := &loyaltyv1.AwardStayRequest{IdempotencyKey: key, MemberNumber: member, FamilyName: familyOf(member), PropertyId: property, StayId: stay,
		ArrivalDate: arrival, DepartureDate: a.AddDate(0, 0, len(charges)).Format(time.DateOnly)}
	for _, c := range charges {
		req.Nights = append(req.Nights, &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: c}})
	}
	return connect.NewRequest(req)
}

func redeem(key, member, property string, reward loyaltyv1.Reward) *connect.Request[loyaltyv1.AllianceServiceRedeemRequest] {
	return connect.NewRequest(&loyaltyv1.AllianceServiceRedeemRequest{IdempotencyKey: key, MemberNumber: member, FamilyName: familyOf(member), PropertyId: property, Reward: reward})
}

func (e *env) enrollNamed(t *testing.T, key, name string) string {
	t.Helper()
	res, err := e.clients(e.bookingKey).members.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{
		IdempotencyKey: key, FullName: name, Email: key + "@example.com", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
	if err != nil {
		t.Fatal(err)
	}
	number := res.Msg.GetMember().GetMemberNumber()
	familyNames.Store(number, name[strings.LastIndex(name, " ")+1:])
	return number
}

// alliance is two partners and the programme's own hotels: ALPHA (hotels
// two keys) and BETA (hotel B-1), rates in force since October.
type allianceWorld struct {
	*env
	alphaKey, alpha2Key, betaKey string
	m1, m2                       string
}

func newAllianceWorld(t *testing.T) *allianceWorld {
	e := newEnv(t)
	october := timestamppb.New(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC))
	e.createPartner(t, "ALPHA", "0.0085", "0.0061", october)
	e.createPartner(t, "BETA", "0.0093", "0.0057", october)
	e.putProperty(t, "A-1", "ALPHA")
	e.putProperty(t, "A-2", "ALPHA")
	e.putProperty(t, "B-1", "BETA")
	w := &allianceWorld{env: e}
	w.alphaKey, _ = e.partnerKey(t, "ALPHA", "alpha-pms")
	w.alpha2Key, _ = e.partnerKey(t, "ALPHA", "alpha-crs")
	w.betaKey, _ = e.partnerKey(t, "BETA", "beta-pms")
	w.m1 = e.enrollNamed(t, "enrol-m1", "Li Wei")
	w.m2 = e.enrollNamed(t, "enrol-m2", "Zhang Min")
	return w
}

var november = &loyaltyv1.GetSettlementPreviewRequest{
	From: timestamppb.New(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)),
	To:   timestamppb.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)),
}

func (w *allianceWorld) settlement(t *testing.T, key string) *loyaltyv1.Settlement {
	t.Helper()
	res, err := w.alliance(key).GetSettlementPreview(w.ctx, connect.NewRequest(november))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetSettlement()
}

func mustTxn[T any, PT interface {
	*T
	GetTransaction() *loyaltyv1.PartnerTransaction
}](t *testing.T, res *connect.Response[T], err error) *loyaltyv1.PartnerTransaction {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return PT(res.Msg).GetTransaction()
}

// TestAllianceEndToEnd: awards and redemptions at two partners' hotels and
// the programme's own, reversals, a suspended partner, a rate change in
// the middle of the period applied by effective time, and the settlement
// previews to the cent.
func TestAllianceEndToEnd(t *testing.T) {
	w := newAllianceWorld(t)
	alpha, alpha2, beta := w.alliance(w.alphaKey), w.alliance(w.alpha2Key), w.alliance(w.betaKey)
	booking := w.clients(w.bookingKey).booking

	// Two partners use the same idempotency key: keys are scoped per
	// caller, so both are recorded, as different transactions.
	a1, err := alpha.AwardStay(w.ctx, award("stay-1", w.m1, "A-1", "ALPHA-100", "2026-11-10", "388.00", "412.50"))
	aStay1 := mustTxn(t, a1, err)
	b1, err := beta.AwardStay(w.ctx, award("stay-1", w.m1, "B-1", "BETA-100", "2026-11-15", "1000.00"))
	bStay1 := mustTxn(t, b1, err)
	if aStay1.GetTransactionId() == bStay1.GetTransactionId() {
		t.Fatal("two partners' requests with the same idempotency key share a transaction")
	}
	if aStay1.GetPointsIssued() != 800 || aStay1.GetRateVersion() != 1 || aStay1.GetAmount().GetAmount() != "6.8" {
		t.Errorf("ALPHA's first award: %d points at rates v%d for %s, want 800 at v1 for 6.8",
			aStay1.GetPointsIssued(), aStay1.GetRateVersion(), aStay1.GetAmount().GetAmount())
	}
	if bStay1.GetPointsIssued() != 1000 || bStay1.GetAmount().GetAmount() != "9.3" {
		t.Errorf("BETA's award: %d points for %s, want 1000 for 9.3", bStay1.GetPointsIssued(), bStay1.GetAmount().GetAmount())
	}
	// A replay returns the first answer.
	again, err := alpha.AwardStay(w.ctx, award("stay-1", w.m1, "A-1", "ALPHA-100", "2026-11-10", "388.00", "412.50"))
	if mustTxn(t, again, err).GetTransactionId() != aStay1.GetTransactionId() {
		t.Error("a replay of ALPHA's award recorded a new transaction")
	}
	// A stay that checked out before the partner's first rates: the answer
	// says at what time nothing was in force.
	_, err = alpha.AwardStay(w.ctx, award("stay-too-early", w.m1, "A-1", "ALPHA-1999", "2001-01-01", "388.00"))
	if ce := wantCode(t, err, connect.CodeFailedPrecondition); !strings.Contains(ce.Message(), "in force at 2001-01-02T") {
		t.Errorf("a stay before the partner's first rates: %v", ce)
	}
	// The same booking in another member's name: refused, without the
	// guest's outcome or transaction.
	_, err = alpha.AwardStay(w.ctx, award("stay-1-other", w.m2, "A-1", "ALPHA-100", "2026-11-10", "388.00", "412.50"))
	if ce := wantCode(t, err, connect.CodeFailedPrecondition); errorInfo(t, ce).GetReason() != "BOOKING_OF_ANOTHER_MEMBER" ||
		strings.Contains(ce.Error(), aStay1.GetTransactionId()) {
		t.Errorf("another member's award of ALPHA-100: %v", ce)
	}

	a2, err := alpha.AwardStay(w.ctx, award("stay-2", w.m2, "A-2", "ALPHA-101", "2026-11-14", "299.99"))
	aStay2 := mustTxn(t, a2, err)

	// The programme's own hotel: recorded by a booking channel, in no
	// partner's settlement.
	if _, err := booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("own-stay", w.m1, "OWN-STAY-1", "100.00"))); err != nil {
		t.Fatal(err)
	}

	// m1 has 800 + 1000 + 227 (own hotel: 100 + first stay 50 + app 77).
	r1, err := alpha.Redeem(w.ctx, redeem("night-1", w.m1, "A-1", loyaltyv1.Reward_REWARD_FREE_NIGHT))
	if got := mustTxn(t, r1, err); got.GetPointsRedeemed() != 2000 || got.GetAmount().GetAmount() != "12.2" {
		t.Errorf("free night at A-1: %d points for %s, want 2000 for 12.2", got.GetPointsRedeemed(), got.GetAmount().GetAmount())
	}
	// Not enough points: refused without telling the partner the balance.
	_, err = beta.Redeem(w.ctx, redeem("kit-1", w.m2, "B-1", loyaltyv1.Reward_REWARD_TRAVEL_KIT))
	ce := wantCode(t, err, connect.CodeFailedPrecondition)
	if strings.ContainsAny(ce.Message(), "0123456789") || len(errorInfo(t, ce).GetMetadata()) != 0 {
		t.Errorf("a partner's refusal tells the member's points: %v", ce)
	}
	if _, err := beta.Redeem(w.ctx, redeem("milk-1", w.m2, "B-1", loyaltyv1.Reward_REWARD_BEDTIME_MILK)); err != nil {
		t.Fatal(err)
	}

	// ALPHA's rates change from a minute from now; a day later, a stay
	// that checked out before the change keeps the old rates, one after it
	// gets the new ones.
	_, err = w.clients(w.adminKey).admin.SetPartnerRates(w.ctx, connect.NewRequest(&loyaltyv1.SetPartnerRatesRequest{
		IdempotencyKey: "alpha-v2", PartnerId: "ALPHA", Rates: &loyaltyv1.PartnerRates{
			EffectiveAt: timestamppb.New(w.clock.Now().Add(time.Minute)), IssueRate: "0.0120", ReimbursementRate: "0.0075", RateCard: standardCard()}}))
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(26 * time.Hour) // 2026-11-23 11:00 UTC
	a3, err := alpha.AwardStay(w.ctx, award("stay-3", w.m2, "A-1", "ALPHA-102", "2026-11-22", "500.00"))
	if got := mustTxn(t, a3, err); got.GetRateVersion() != 2 || got.GetAmount().GetAmount() != "6" {
		t.Errorf("a stay after the change: rates v%d, %s; want v2, 6", got.GetRateVersion(), got.GetAmount().GetAmount())
	}
	a4, err := alpha2.AwardStay(w.ctx, award("stay-4", w.m1, "A-2", "ALPHA-103", "2026-11-20", "423.45"))
	if got := mustTxn(t, a4, err); got.GetRateVersion() != 1 || got.GetPointsIssued() != 423 {
		t.Errorf("a stay that checked out before the change: rates v%d, %d points; want v1, 423", got.GetRateVersion(), got.GetPointsIssued())
	}
	// Another key of the same partner reverses the first key's award.
	rev, err := alpha2.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{
		IdempotencyKey: "rev-1", TransactionId: aStay2.GetTransactionId(), Reason: "guest checked out early, stay re-sent"}))
	if got := mustTxn(t, rev, err); got.GetPointsIssued() != -299 || got.GetRateVersion() != 1 || got.GetReversesTransactionId() != aStay2.GetTransactionId() {
		t.Errorf("reversal: %d points at v%d reversing %s", got.GetPointsIssued(), got.GetRateVersion(), got.GetReversesTransactionId())
	}
	_, err = alpha.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{
		IdempotencyKey: "rev-2", TransactionId: aStay2.GetTransactionId(), Reason: "again"}))
	wantCode(t, err, connect.CodeFailedPrecondition)
	if _, err := alpha.Redeem(w.ctx, redeem("milk-2", w.m1, "A-2", loyaltyv1.Reward_REWARD_BEDTIME_MILK)); err != nil {
		t.Fatal(err)
	}
	if _, err := booking.Redeem(w.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "own-card", MemberNumber: w.m1,
		Reward: loyaltyv1.Reward_REWARD_MEMBER_CARD, PropertyId: "SH-HQ-001"})); err != nil {
		t.Fatal(err)
	}

	// A suspended partner: writes refused at once, reads continue.
	admin := w.clients(w.adminKey).admin
	if _, err := admin.SuspendPartner(w.ctx, connect.NewRequest(&loyaltyv1.SuspendPartnerRequest{IdempotencyKey: "suspend-beta",
		PartnerId: "BETA", Reason: "unpaid settlement"})); err != nil {
		t.Fatal(err)
	}
	_, err = beta.AwardStay(w.ctx, award("stay-b2", w.m2, "B-1", "BETA-101", "2026-11-20", "100.00"))
	if ce := wantCode(t, err, connect.CodePermissionDenied); !strings.Contains(ce.Message(), "suspended") {
		t.Errorf("the refusal does not say the partner is suspended: %v", ce)
	}
	_, err = beta.Redeem(w.ctx, redeem("milk-b2", w.m1, "B-1", loyaltyv1.Reward_REWARD_BEDTIME_MILK))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = beta.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{
		IdempotencyKey: "rev-b", TransactionId: bStay1.GetTransactionId(), Reason: "x"}))
	wantCode(t, err, connect.CodePermissionDenied)
	if _, err := beta.GetMemberStatus(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{MemberNumber: w.m1, FamilyName: "Wei"})); err != nil {
		t.Errorf("a suspended partner may still read: %v", err)
	}
	w.settlement(t, w.betaKey)
	if _, err := admin.ReinstatePartner(w.ctx, connect.NewRequest(&loyaltyv1.ReinstatePartnerRequest{IdempotencyKey: "reinstate-beta",
		PartnerId: "BETA", Reason: "paid"})); err != nil {
		t.Fatal(err)
	}
	if _, err := beta.AwardStay(w.ctx, award("stay-b2", w.m2, "B-1", "BETA-101", "2026-11-20", "100.00")); err != nil {
		t.Fatalf("a reinstated partner may write again: %v", err)
	}

	// ALPHA, November: v1 issued 800 + 299 + 423 - 299 = 1223 x 0.0085 =
	// 10.3955, redeemed 2000 x 0.0061 = 12.2; v2 issued 500 x 0.0120 = 6,
	// redeemed 200 x 0.0075 = 1.5. Owed to the programme 16.3955 -> 16.40,
	// to ALPHA 13.70, net 2.70.
	checkSettlement(t, w.settlement(t, w.alphaKey), "ALPHA", 1723, 2200, "16.40", "13.70", "2.70", []string{
		"v1 1223 2000 10.3955 12.2", "v2 500 200 6 1.5"})
	// BETA: issued 1000 + 100 = 1100 x 0.0093 = 10.23, redeemed 200 x
	// 0.0057 = 1.14, net 9.09.
	checkSettlement(t, w.settlement(t, w.betaKey), "BETA", 1100, 200, "10.23", "1.14", "9.09", []string{"v1 1100 200 10.23 1.14"})
	// finance's function is the same computation.
	st, err := partners.New(w.ledger, w.clock.Now).Settlement(w.ctx, "ALPHA", november.GetFrom().AsTime(), november.GetTo().AsTime())
	if err != nil || st.Net.StringFixed(2) != "2.70" {
		t.Errorf("partners.Store.Settlement: net %s, %v", st.Net.StringFixed(2), err)
	}
	// October has nothing.
	oct, err := alpha.GetSettlementPreview(w.ctx, connect.NewRequest(&loyaltyv1.GetSettlementPreviewRequest{
		From: timestamppb.New(time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)), To: november.GetFrom()}))
	if err != nil || oct.Msg.GetSettlement().GetNet().GetAmount() != "0.00" || len(oct.Msg.GetSettlement().GetLines()) != 0 {
		t.Errorf("October: %v, %v", oct, err)
	}

	// The ledger's partner accounts say the same points.
	for code, want := range map[string]int64{"partner:ALPHA:issued": 1723, "partner:ALPHA:redeemed": 2200,
		"partner:BETA:issued": 1100, "partner:BETA:redeemed": 200} {
		b, err := w.ledger.Balance(w.ctx, code)
		if err != nil || b.Posted != want {
			t.Errorf("%s: %d, %v; want %d", code, b.Posted, err, want)
		}
	}

	// ALPHA's activity at A-2, newest first, two per page.
	var seen []string
	token := ""
	for range 5 {
		res, err := alpha.ListPartnerActivity(w.ctx, connect.NewRequest(&loyaltyv1.ListPartnerActivityRequest{PropertyId: "A-2", PageSize: 2, PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		for _, tx := range res.Msg.GetTransactions() {
			seen = append(seen, tx.GetKind().String()+" "+tx.GetMemberNumber())
		}
		if token = res.Msg.GetNextPageToken(); token == "" {
			break
		}
	}
	want := []string{"TRANSACTION_KIND_REDEMPTION " + w.m1, "TRANSACTION_KIND_REVERSAL " + w.m2, "TRANSACTION_KIND_STAY " + w.m1, "TRANSACTION_KIND_STAY " + w.m2}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("ALPHA's activity at A-2:\n got %v\nwant %v", seen, want)
	}
	// By period: from 2026-11-23 00:00 UTC, the stay that checked out that
	// day, the reversal and the redemption recorded then.
	since, err := alpha.ListPartnerActivity(w.ctx, connect.NewRequest(&loyaltyv1.ListPartnerActivityRequest{
		From: timestamppb.New(time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)), To: november.GetTo()}))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, tx := range since.Msg.GetTransactions() {
		kinds = append(kinds, tx.GetKind().String()+"@"+tx.GetPropertyId())
	}
	if got, want := strings.Join(kinds, ","), "TRANSACTION_KIND_REDEMPTION@A-2,TRANSACTION_KIND_REVERSAL@A-2,TRANSACTION_KIND_STAY@A-1"; got != want {
		t.Errorf("ALPHA's activity since 23 November:\n got %s\nwant %s", got, want)
	}
	w.verify(t)

	// Finance closes November: the same statements as the partners'
	// previews, each tied to the roll-forward by partner.
	fin := w.financeClient(t, loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE)
	period := &loyaltyv1.ListPartnerStatementsRequest{From: november.GetFrom(), To: november.GetTo()}
	all, err := fin.ListPartnerStatements(w.ctx, connect.NewRequest(period))
	if err != nil {
		t.Fatal(err)
	}
	if !all.Msg.GetTiesToRollForward() || len(all.Msg.GetDiscrepancies()) != 0 || len(all.Msg.GetStatements()) != 2 {
		t.Fatalf("partner statements: %v", all.Msg)
	}
	for i, key := range []string{w.alphaKey, w.betaKey} {
		// November is still running: each ends its period when it reads.
		preview, statement := w.settlement(t, key), proto.Clone(all.Msg.GetStatements()[i]).(*loyaltyv1.Settlement)
		if !preview.GetTo().AsTime().Before(november.GetTo().AsTime()) || !statement.GetTo().AsTime().Before(november.GetTo().AsTime()) {
			t.Errorf("a period still running ends at %s and %s, not now", preview.GetTo().AsTime(), statement.GetTo().AsTime())
		}
		preview.To, statement.To = nil, nil
		if !proto.Equal(preview, statement) {
			t.Errorf("finance's statement differs from the partner's preview:\n%v\n%v", statement, preview)
		}
	}
	alphaStatement, err := fin.GetPartnerStatement(w.ctx, connect.NewRequest(&loyaltyv1.GetPartnerStatementRequest{
		PartnerId: "ALPHA", From: november.GetFrom(), To: november.GetTo()}))
	if err != nil {
		t.Fatal(err)
	}
	if s := alphaStatement.Msg.GetStatement(); s.GetDueTo() != "programme" || s.GetNet().GetAmount() != "2.70" ||
		s.GetReversedPointsIssued() != -299 || s.GetReversedPointsRedeemed() != 0 {
		t.Errorf("ALPHA's statement: due to %q, net %s, reversed %d issued and %d redeemed; want programme, 2.70, -299 and 0",
			s.GetDueTo(), s.GetNet().GetAmount(), s.GetReversedPointsIssued(), s.GetReversedPointsRedeemed())
	}
	if _, err := fin.GetPartnerStatement(w.ctx, connect.NewRequest(&loyaltyv1.GetPartnerStatementRequest{PartnerId: "ALPHA", From: november.GetFrom()})); err == nil {
		t.Error("a statement without the end of its period was given")
	}

	// A settlement row that no longer matches its ledger transaction
	// breaks the tie, and Reconcile names the partner's account.
	if _, err := w.db.Pool.Exec(w.ctx, `UPDATE partner_transactions SET points_issued = points_issued + 1
		WHERE transaction_id = (SELECT transaction_id FROM partner_transactions WHERE partner_id = 'ALPHA' AND kind = 'award' LIMIT 1)`); err != nil {
		t.Fatal(err)
	}
	all, err = fin.ListPartnerStatements(w.ctx, connect.NewRequest(period))
	if err != nil || all.Msg.GetTiesToRollForward() || len(all.Msg.GetDiscrepancies()) != 1 || all.Msg.GetDiscrepancies()[0].GetAccount() != "partner:ALPHA:issued" {
		t.Errorf("after tampering with a settlement row: %v, %v", all, err)
	}
	rec, err := fin.Reconcile(w.ctx, connect.NewRequest(&loyaltyv1.ReconcileRequest{}))
	if err != nil || rec.Msg.GetOk() || !strings.Contains(fmt.Sprint(rec.Msg.GetDiscrepancies()), "partner ALPHA") {
		t.Errorf("Reconcile after tampering with a settlement row: %v, %v", rec, err)
	}
}

func checkSettlement(t *testing.T, s *loyaltyv1.Settlement, partner string, issued, redeemed int64, toProgramme, toPartner, net string, lines []string) {
	t.Helper()
	if s.GetPartnerId() != partner || s.GetCurrencyCode() != "CNY" || s.GetPointsIssued() != issued || s.GetPointsRedeemed() != redeemed ||
		s.GetOwedToProgramme().GetAmount() != toProgramme || s.GetOwedToPartner().GetAmount() != toPartner || s.GetNet().GetAmount() != net {
		t.Errorf("%s settlement: %s %d issued, %d redeemed, owed to programme %s, to partner %s, net %s; want %d, %d, %s, %s, %s",
			partner, s.GetPartnerId(), s.GetPointsIssued(), s.GetPointsRedeemed(), s.GetOwedToProgramme().GetAmount(),
			s.GetOwedToPartner().GetAmount(), s.GetNet().GetAmount(), issued, redeemed, toProgramme, toPartner, net)
	}
	var got []string
	for _, l := range s.GetLines() {
		got = append(got, strings.Join([]string{"v" + itoa(int64(l.GetRateVersion())), itoa(l.GetPointsIssued()), itoa(l.GetPointsRedeemed()),
			l.GetOwedToProgramme(), l.GetOwedToPartner()}, " "))
	}
	if strings.Join(got, "|") != strings.Join(lines, "|") {
		t.Errorf("%s settlement lines:\n got %v\nwant %v", partner, got, lines)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A replayed award answers the tier that priced it, though the member's
// tier history has changed since: a chain stay recorded later, as of a
// check-out before the award's arrival, made the member silver by then.
func TestAnAwardReplayAnswersTheTierThatPricedIt(t *testing.T) {
	w := newAllianceWorld(t)
	alpha := w.alliance(w.alphaKey)
	first, err := alpha.AwardStay(w.ctx, award("priced-1", w.m1, "A-1", "ST-PRICED-1", "2026-11-10", "380.00"))
	if err != nil {
		t.Fatal(err)
	}
	if first.Msg.GetTier() != loyaltyv1.Tier_TIER_REGULAR {
		t.Fatalf("a new member's award priced at %s, want regular", first.Msg.GetTier())
	}
	// Checked out on 2 November, recorded now: silver from then.
	if _, err := w.clients(w.bookingKey).booking.RecordStay(w.ctx, connect.NewRequest(stayRequest("priced-chain", w.m1, "CH-PRICED", "388.00"))); err != nil {
		t.Fatal(err)
	}
	history, err := w.clients(w.bookingKey).members.GetTierHistory(w.ctx, connect.NewRequest(&loyaltyv1.GetTierHistoryRequest{MemberNumber: w.m1}))
	if err != nil || len(history.Msg.GetChanges()) == 0 || !history.Msg.GetChanges()[0].GetEffectiveAt().AsTime().Before(time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("tier history %v, %v: want silver from before the award's arrival", history.Msg.GetChanges(), err)
	}
	again, err := alpha.AwardStay(w.ctx, award("priced-1", w.m1, "A-1", "ST-PRICED-1", "2026-11-10", "380.00"))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(again.Msg, first.Msg) {
		t.Fatalf("the replay answered\n%v\nthe first answer was\n%v", again.Msg, first.Msg)
	}
}

// TestWhatAPartnersNightsEarn: a stay that earns nothing (under a point of
// charge) posts nothing and keeps no outcome, so the corrected stay is
// awarded after it; an extension night not booked in advance earns
// nothing, as at the chain's hotels; a night's charge is at most
// 1,000,000.00.
func TestWhatAPartnersNightsEarn(t *testing.T) {
	w := newAllianceWorld(t)
	alpha := w.alliance(w.alphaKey)
	zero, err := alpha.AwardStay(w.ctx, award("stay-zero", w.m1, "A-1", "ALPHA-ZERO", "2026-11-10", "0.99"))
	if err != nil || zero.Msg.GetTransaction() != nil {
		t.Fatalf("a stay of 0 points: %v, %v; want no transaction", zero, err)
	}
	corrected, err := alpha.AwardStay(w.ctx, award("stay-zero-corrected", w.m1, "A-1", "ALPHA-ZERO", "2026-11-10", "99.00"))
	if got := mustTxn(t, corrected, err); got.GetPointsIssued() != 99 {
		t.Errorf("the corrected stay after one of 0 points: %d points, want 99", got.GetPointsIssued())
	}
	// An extension night not booked in advance earns nothing.
	ext := award("stay-ext", w.m1, "A-1", "ALPHA-EXT", "2026-11-10", "100.00", "100.00")
	ext.Msg.Nights[1].UnbookedExtension = true
	extRes, err := alpha.AwardStay(w.ctx, ext)
	if got := mustTxn(t, extRes, err); got.GetPointsIssued() != 100 {
		t.Errorf("a stay with an unbooked extension night: %d points, want 100 (the booked night's)", got.GetPointsIssued())
	}
	// A night's charge is at most 1,000,000.00.
	_, err = alpha.AwardStay(w.ctx, award("stay-huge", w.m1, "A-1", "ALPHA-HUGE", "2026-11-10", "999999999999.99"))
	if f := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); f != "nights[0].roomCharge.amount" {
		t.Errorf("a night of 999999999999.99: field %q", f)
	}
}

// TestAPartnerListsWhatItsSettlementSums: a settlement counts by recording
// time, so a stay reported late is in today's settlement but not in
// today's activity by check-out; listed by recording time over the same
// period, the activity is exactly what the settlement sums. A page token
// belongs to its time basis.
func TestAPartnerListsWhatItsSettlementSums(t *testing.T) {
	w := newAllianceWorld(t)
	alpha := w.alliance(w.alphaKey)
	from := w.clock.Now()
	w.clock.Advance(time.Minute)
	for i, arrival := range []string{"2026-10-01", "2026-11-10"} { // one reported late
		if _, err := alpha.AwardStay(w.ctx, award(fmt.Sprintf("late-%d", i), w.m1, "A-1", fmt.Sprintf("ALPHA-LATE-%d", i), arrival, "100.00")); err != nil {
			t.Fatal(err)
		}
	}
	to := w.clock.Now()
	preview, err := alpha.GetSettlementPreview(w.ctx, connect.NewRequest(&loyaltyv1.GetSettlementPreviewRequest{From: timestamppb.New(from), To: timestamppb.New(to)}))
	if err != nil {
		t.Fatal(err)
	}
	list := func(byRecorded bool, pageSize int32, token string) *loyaltyv1.ListPartnerActivityResponse {
		t.Helper()
		res, err := alpha.ListPartnerActivity(w.ctx, connect.NewRequest(&loyaltyv1.ListPartnerActivityRequest{From: timestamppb.New(from), To: timestamppb.New(to),
			ByRecordedTime: byRecorded, PageSize: pageSize, PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg
	}
	var issued int64
	var pages int
	for token := ""; ; {
		page := list(true, 1, token)
		pages++
		for _, tx := range page.GetTransactions() {
			issued += tx.GetPointsIssued()
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	if want := preview.Msg.GetSettlement().GetPointsIssued(); issued != want || want != 200 || pages != 2 {
		t.Errorf("listed by recording time: %d points issued in %d pages; the settlement sums %d (want 200, two pages of one)", issued, pages, want)
	}
	if byCheckout := list(false, 0, ""); len(byCheckout.GetTransactions()) != 0 {
		t.Errorf("by check-out, the period has %d transactions, want none: the stays checked out before it", len(byCheckout.GetTransactions()))
	}
	_, err = alpha.ListPartnerActivity(w.ctx, connect.NewRequest(&loyaltyv1.ListPartnerActivityRequest{PageToken: list(true, 1, "").GetNextPageToken()}))
	if f := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); f != "pageToken" {
		t.Errorf("a token of the other time basis: field %q", f)
	}
}

// TestPartnerStatementsTieWhilePartnersWrite: finance's partner statements
// and the roll-forward they tie to are one snapshot, so awards and
// reversals committing while they are read never make them disagree.
func TestPartnerStatementsTieWhilePartnersWrite(t *testing.T) {
	w := newAllianceWorld(t)
	alpha := w.alliance(w.alphaKey)
	fin := w.financeClient(t, loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE)
	from := w.clock.Now().Add(-time.Hour)
	const writes = 40
	done := make(chan error, 1)
	go func() {
		for i := range writes {
			res, err := alpha.AwardStay(w.ctx, award(fmt.Sprintf("tie-%d", i), w.m1, "A-1", fmt.Sprintf("ALPHA-TIE-%d", i), "2026-11-10", "10.00"))
			if err == nil && i%2 == 0 {
				_, err = alpha.ReverseTransaction(w.ctx, connect.NewRequest(&loyaltyv1.AllianceServiceReverseTransactionRequest{
					IdempotencyKey: fmt.Sprintf("tie-rev-%d", i), TransactionId: res.Msg.GetTransaction().GetTransactionId(), Reason: "re-sent"}))
			}
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for reads := 0; ; reads++ {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if reads == 0 {
				t.Fatal("no statement was read while the partner wrote")
			}
			return
		default:
		}
		// A period that ends in the future reads the present: the writes
		// land in it as they commit.
		all, err := fin.ListPartnerStatements(w.ctx, connect.NewRequest(&loyaltyv1.ListPartnerStatementsRequest{
			From: timestamppb.New(from), To: timestamppb.New(w.clock.Now().Add(time.Hour))}))
		if err != nil {
			t.Fatal(err)
		}
		if !all.Msg.GetTiesToRollForward() {
			t.Fatalf("read %d: the statements do not tie to the roll-forward while the partner writes: %v", reads, all.Msg.GetDiscrepancies())
		}
	}
}

// TestAPastPeriodsStatementsDoNotGainLaterPartners: a partner created
// after a period had nothing in it; the period's statements, made again,
// list the partners they listed before.
func TestAPastPeriodsStatementsDoNotGainLaterPartners(t *testing.T) {
	w := newAllianceWorld(t)
	fin := w.financeClient(t, loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE)
	period := &loyaltyv1.ListPartnerStatementsRequest{From: timestamppb.New(w.clock.Now().Add(-time.Hour)), To: timestamppb.New(w.clock.Now())}
	w.clock.Advance(time.Minute)
	before, err := fin.ListPartnerStatements(w.ctx, connect.NewRequest(period))
	if err != nil {
		t.Fatal(err)
	}
	w.createPartner(t, "GAMMA", "0.0085", "0.0061", nil)
	after, err := fin.ListPartnerStatements(w.ctx, connect.NewRequest(period))
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(before.Msg, after.Msg) || len(after.Msg.GetStatements()) != 2 {
		t.Errorf("made again after GAMMA was created: %d statements, then %d", len(before.Msg.GetStatements()), len(after.Msg.GetStatements()))
	}
}
