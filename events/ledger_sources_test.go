package events_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// TestEveryKindOfTransactionSaysWhereItsPointsWent: the points event of
// each kind of transaction the service writes has its type, its kind (as
// the transaction's metadata names it), its source (the accounts on the
// other side), the reward of a redemption, the partner at a partner's
// hotel (in the data and the record, for the partner's endpoints), the
// breakdown, and free text cut to MaxTextBytes.
func TestEveryKindOfTransactionSaysWhereItsPointsWent(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	if err := f.ledger.CreateAccounts(f.ctx, []ledger.Account{partners.IssuedAccount("P1"), partners.RedeemedAccount("P1")}); err != nil {
		t.Fatal(err)
	}
	account := programme.MemberAccount(member(1)).Code
	lots := ledger.LotPolicy{ExpiresAt: start.AddDate(2, 0, 0)}
	post := func(key string, kind ledger.Kind, m txmeta.Metadata, points int64, others ...ledger.Posting) (ledger.Transaction, error) {
		m.Member = member(1)
		postings := append([]ledger.Posting{{Account: account, Amount: points}}, others...)
		return f.ledger.Post(f.ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: key, Kind: kind, EffectiveAt: f.clock.Now(),
			Postings: postings, Metadata: m.JSON(), Lots: lots})
	}
	long := strings.Repeat("長", events.MaxTextBytes) // 3 bytes each
	var stayID string
	for _, tc := range []struct {
		name                      string
		do                        func() (ledger.Transaction, error)
		typ, kind, source, reward string
		partnerID                 string
		points                    int64
		check                     func(t *testing.T, d events.PointsData)
	}{
		{name: "a stay", typ: events.TypePointsEarned, kind: "stay", source: "stay", points: 477,
			do: func() (ledger.Transaction, error) {
				txn, err := post("stay", ledger.KindEarn, txmeta.Metadata{Kind: txmeta.KindStay, StayID: "B1", PropertyID: "SH-1", ProgrammeVersion: 3,
					Description: long, Breakdown: []txmeta.Line{{Rule: "stay_points", Points: 400}, {Rule: "direct_booking_bonus", Points: 77}}},
					477, ledger.Posting{Account: programme.AccountIssuedStay, Amount: -400}, ledger.Posting{Account: programme.AccountIssuedBookingBonus, Amount: -77})
				stayID = txn.ID.String()
				return txn, err
			},
			check: func(t *testing.T, d events.PointsData) {
				if d.ProgrammeVersion != 3 || len(d.Breakdown) != 2 || d.Breakdown[1].Rule != "direct_booking_bonus" || d.Breakdown[1].Points != 77 ||
					d.StayID != "B1" || d.PropertyID != "SH-1" || len(d.Description) > events.MaxTextBytes || !strings.HasPrefix(long, d.Description) {
					t.Errorf("%+v", d)
				}
			}},
		{name: "a transaction whose metadata is as large as the ledger takes", typ: events.TypePointsEarned, kind: "stay", source: "stay", points: 1,
			do: func() (ledger.Transaction, error) {
				big := strings.Repeat("x", 3600) // with the rule, near ledger.MaxMetadataBytes
				return post("big", ledger.KindEarn, txmeta.Metadata{Kind: txmeta.KindStay, StayID: big, PropertyID: big, Description: big,
					Reason: big, Breakdown: []txmeta.Line{{Rule: big[:1400], Points: 1}}}, 1, ledger.Posting{Account: programme.AccountIssuedStay, Amount: -1})
			},
			check: func(t *testing.T, d events.PointsData) {
				if b, _ := json.Marshal(d); len(b) > events.MaxDataBytes || len(d.StayID) > 200 || len(d.Breakdown[0].Rule) > 200 {
					t.Errorf("data of %d bytes", len(b))
				}
			}},
		{name: "an adopted suggestion", typ: events.TypePointsEarned, kind: "adjustment", source: "suggestion", points: 50,
			do: func() (ledger.Transaction, error) {
				return post("suggestion", ledger.KindEarn, txmeta.Metadata{Kind: txmeta.KindAdjustment, Reason: "more towels"}, 50,
					ledger.Posting{Account: programme.AccountIssuedSuggestion, Amount: -50})
			}},
		{name: "goodwill", typ: events.TypePointsAdjusted, kind: "adjustment", source: "goodwill", points: 30,
			do: func() (ledger.Transaction, error) {
				return post("goodwill", ledger.KindAdjustment, txmeta.Metadata{Kind: txmeta.KindAdjustment, Reason: long}, 30,
					ledger.Posting{Account: programme.AccountIssuedGoodwill, Amount: -30})
			},
			check: func(t *testing.T, d events.PointsData) {
				if len(d.Reason) > events.MaxTextBytes || d.Reason == "" {
					t.Errorf("reason of %d bytes", len(d.Reason))
				}
			}},
		{name: "points taken back by an admin", typ: events.TypePointsAdjusted, kind: "adjustment", source: "adjustment", points: -10,
			do: func() (ledger.Transaction, error) {
				return post("take-back", ledger.KindAdjustment, txmeta.Metadata{Kind: txmeta.KindAdjustment}, -10,
					ledger.Posting{Account: programme.AccountAdjustmentDebit, Amount: 10})
			}},
		{name: "a redemption", typ: events.TypePointsRedeemed, kind: "redemption", source: "reward", reward: "bedtime_milk", points: -200,
			do: func() (ledger.Transaction, error) {
				return post("milk", ledger.KindRedeem, txmeta.Metadata{Kind: txmeta.KindRedemption}, -200,
					ledger.Posting{Account: programme.RedeemedAccount("bedtime_milk"), Amount: 200})
			}},
		{name: "a late check-out", typ: events.TypePointsRedeemed, kind: "late_checkout", source: "late_checkout", points: -100,
			do: func() (ledger.Transaction, error) {
				return post("late", ledger.KindRedeem, txmeta.Metadata{Kind: txmeta.KindLateCheckout}, -100,
					ledger.Posting{Account: programme.AccountPenaltyLateCheckout, Amount: 100})
			}},
		{name: "a no-show", typ: events.TypePointsPenalised, kind: "no_show", source: "no_show", points: -300,
			do: func() (ledger.Transaction, error) {
				return post("no-show", ledger.KindPenalty, txmeta.Metadata{Kind: txmeta.KindNoShow}, -300,
					ledger.Posting{Account: programme.AccountPenaltyNoShow, Amount: 300})
			}},
		{name: "a partner's award", typ: events.TypePointsEarned, kind: "partner_stay", source: "partner_award", partnerID: "P1", points: 300,
			do: func() (ledger.Transaction, error) {
				return post("award", ledger.KindEarn, txmeta.Metadata{Kind: txmeta.KindPartnerStay, PartnerID: "P1", PropertyID: "PH-1",
					RateVersion: 2, Money: "3.00", Currency: "CNY"}, 300, ledger.Posting{Account: partners.IssuedAccount("P1").Code, Amount: -300})
			},
			check: func(t *testing.T, d events.PointsData) {
				if d.PartnerID != "P1" || d.RateVersion != 2 || d.Money != "3.00" || d.Currency != "CNY" {
					t.Errorf("%+v", d)
				}
			}},
		{name: "a redemption at a partner's hotel", typ: events.TypePointsRedeemed, kind: "partner_redemption", source: "partner_redemption", partnerID: "P1", points: -200,
			do: func() (ledger.Transaction, error) {
				return post("partner-milk", ledger.KindRedeem, txmeta.Metadata{Kind: txmeta.KindPartnerRedemption, PartnerID: "P1"}, -200,
					ledger.Posting{Account: partners.RedeemedAccount("P1").Code, Amount: 200})
			}},
		{name: "a reversal of a stay", typ: events.TypePointsReversed, kind: "reversal", source: "stay", points: -477,
			do: func() (ledger.Transaction, error) {
				m := txmeta.Metadata{Kind: txmeta.KindReversal, Member: member(1)}
				txn, err := f.ledger.Transaction(f.ctx, uuid.MustParse(stayID))
				if err != nil {
					return ledger.Transaction{}, err
				}
				return f.ledger.Reverse(f.ctx, ledger.ReverseRequest{CallerID: "test", IdempotencyKey: "reverse", TransactionID: txn.ID, Metadata: m.JSON(), Lots: lots})
			},
			check: func(t *testing.T, d events.PointsData) {
				if d.ReversesTransactionID != stayID {
					t.Errorf("reverses %q, want %s", d.ReversesTransactionID, stayID)
				}
			}},
		{name: "a captured guarantee", typ: events.TypePointsPenalised, kind: "guarantee_capture", source: "guarantee_capture", points: -50,
			do: func() (ledger.Transaction, error) {
				if _, err := post("for-the-guarantee", ledger.KindEarn, txmeta.Metadata{Kind: txmeta.KindStay}, 1000,
					ledger.Posting{Account: programme.AccountIssuedStay, Amount: -1000}); err != nil {
					return ledger.Transaction{}, err
				}
				h, err := f.ledger.PlaceHold(f.ctx, ledger.HoldRequest{CallerID: "test", IdempotencyKey: "hold", Account: account, Points: 50,
					ExpiresAt: f.clock.Now().Add(time.Hour)})
				if err != nil {
					return ledger.Transaction{}, err
				}
				m := txmeta.Metadata{Kind: txmeta.KindNoShow, Member: member(1)}
				return f.ledger.CaptureHold(f.ctx, ledger.CaptureRequest{CallerID: "test", IdempotencyKey: "capture", HoldID: h.ID, Points: 50,
					Destination: programme.AccountPenaltyGuarantee, Metadata: m.JSON()})
			}},
		{name: "an expiry", typ: events.TypePointsExpired, kind: "expiry", source: "expiry",
			do: func() (ledger.Transaction, error) {
				f.clock.Advance(3 * 365 * 24 * time.Hour)
				m := txmeta.Metadata{Kind: txmeta.KindExpiry, Member: member(1)}
				return f.ledger.Expire(f.ctx, ledger.ExpireRequest{CallerID: "test", IdempotencyKey: "expire", Account: account,
					Destination: programme.AccountBreakage, AsOf: f.clock.Now(), Metadata: m.JSON()})
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			after, err := events.NewStore(f.db).LastPosition(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			txn, err := tc.do()
			if err != nil {
				t.Fatal(err)
			}
			sequenceAll(t, f)
			got, err := events.NewStore(f.db).List(f.ctx, after, events.Filter{}, events.MaxListPage)
			if err != nil {
				t.Fatal(err)
			}
			e := got[len(got)-1] // a case's set-up comes first
			var d events.PointsData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if e.Type != tc.typ || d.Kind != tc.kind || d.Source != tc.source || d.Reward != tc.reward || e.PartnerID != tc.partnerID ||
				e.TransactionID != txn.ID || d.TransactionID != txn.ID.String() || (tc.points != 0 && d.Points != tc.points) || e.Subject != member(1) {
				t.Errorf("%s of %s: %+v (partner %q)", e.Type, e.Subject, d, e.PartnerID)
			}
			if tc.check != nil {
				tc.check(t, d)
			}
		})
	}
}
