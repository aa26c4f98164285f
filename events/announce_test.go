package events_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// pinnedStay is a stay whose points event's data is pinned below: texts
// that JSON escapes, one that is not UTF-8, every field of the data set.
func pinnedStay() (ledger.Transaction, txmeta.Metadata) {
	at := time.Date(2026, 3, 10, 12, 0, 0, 123456789, time.UTC)
	m := txmeta.Metadata{Kind: txmeta.KindStay, Member: "M1", PropertyID: "SH-0042", StayID: "stay-1",
		Description: "Stay at 上海 <b> & \"x\", 2 night(s)\u2028\n", Reason: "why\xff",
		Breakdown:        []txmeta.Line{{Rule: "stay_points", Description: "d", Points: 398}, {Rule: "bonus", Points: 79, HeldPoints: -5}},
		ProgrammeVersion: 3, Nights: 2, QualifyingPoints: 398, TierAfter: "gold", PartnerID: "P1", RateVersion: 4, Money: "2.68", Currency: "CNY",
		Corrects: "c1", CorrectedBy: "c2"}
	account := programme.MemberAccount("M1").Code
	return ledger.Transaction{ID: uuid.MustParse("0b7f3c1e-9a3d-4d6e-8f00-1c2d3e4f5a6b"), Kind: ledger.KindEarn, EffectiveAt: at, RecordedAt: at,
		Metadata: m.JSON(),
		Postings: []ledger.Posting{{Account: account, Amount: 477}, {Account: programme.AccountIssuedStay, Amount: -400},
			{Account: programme.AccountIssuedBookingBonus, Amount: -77}},
		BalancesAfter: []ledger.Balance{{Account: account, Posted: 1000, Held: 5, Available: 995}}}, m
}

// TestAPointsEventsDataIsTheContractsBytes: the data of a points event is,
// byte for byte, what it was before the write path stopped decoding and
// encoding through reflection (events/SCHEMA.md is the contract), whether
// the writer gave its metadata or the event decoded its JSON.
func TestAPointsEventsDataIsTheContractsBytes(t *testing.T) {
	const want = `{"transaction_id":"0b7f3c1e-9a3d-4d6e-8f00-1c2d3e4f5a6b","member_number":"M1","kind":"stay","points":477,"source":"stay",` +
		`"balance_after":{"posted":1000,"held":5,"available":995},"description":"Stay at 上海 \u003cb\u003e \u0026 \"x\", 2 night(s)\u2028\n",` +
		`"reason":"why` + "\uFFFD" + `","property_id":"SH-0042","stay_id":"stay-1","partner_id":"P1","corrects_transaction_id":"c1",` +
		`"corrected_by_transaction_id":"c2","programme_version":3,"breakdown":[{"rule":"stay_points","points":398},` +
		`{"rule":"bonus","points":79,"held_points":-5}],"rate_version":4,"money_amount":"2.68","money_currency":"CNY",` +
		`"effective_at":"2026-03-10T12:00:00.123456Z"}`
	txn, m := pinnedStay()
	for name, announced := range map[string]any{"decoded": nil, "announced": m} {
		txn.Announced = announced
		rows := events.OfTransaction(txn)
		if len(rows) != 1 {
			t.Fatalf("%s: %d rows, want 1", name, len(rows))
		}
		if got := rows[0].Args[9]; got != want {
			t.Errorf("%s: data\n %s\nwant\n %s", name, got, want)
		}
		if got, want := rows[0].Args[0], uuid.MustParse("4d77aca9-d4ec-55f1-906c-1acd1302ccbe"); got != want {
			t.Errorf("%s: event id %v, want %v", name, got, want)
		}
	}
}

// TestAnAnnouncementFromTheWritersMetadataIsTheOneFromItsJSON: the event
// of a transaction whose writer gave its metadata (PostRequest.Announced)
// is the event decoded from the metadata's JSON, whatever the texts hold;
// a writer's value of another type is not read.
func TestAnAnnouncementFromTheWritersMetadataIsTheOneFromItsJSON(t *testing.T) {
	txn, stay := pinnedStay()
	long := stay
	long.Description, long.Reason = strings.Repeat("é", events.MaxTextBytes), strings.Repeat("x", 2*events.MaxTextBytes)
	long.StayID, long.Money = strings.Repeat("s", 300), strings.Repeat("9", 300)
	for i := range events.MaxBreakdownLines + 5 {
		long.Breakdown = append(long.Breakdown, txmeta.Line{Rule: strings.Repeat("r", 190+i), Points: int64(i)})
	}
	badRule := stay
	// Decoded, a byte that is not UTF-8 is U+FFFD, 3 bytes: the rule is
	// then past its bound and cut.
	badRule.Breakdown = []txmeta.Line{{Rule: "\xff" + strings.Repeat("r", 199), Points: 1}}
	badKind := stay
	badKind.Kind = strings.Repeat("k", 199) + "\xe2"
	for _, c := range []struct {
		name      string
		meta      txmeta.Metadata
		announced func(txmeta.Metadata) any
	}{
		{"a stay", stay, func(m txmeta.Metadata) any { return m }},
		{"texts past their bounds", long, func(m txmeta.Metadata) any { return m }},
		{"a rule not UTF-8", badRule, func(m txmeta.Metadata) any { return m }},
		{"a kind not UTF-8", badKind, func(m txmeta.Metadata) any { return m }},
		{"no metadata", txmeta.Metadata{}, func(m txmeta.Metadata) any { return m }},
		{"a pointer, not read", stay, func(m txmeta.Metadata) any { return &txmeta.Metadata{Kind: "other"} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			txn := txn
			txn.Metadata = c.meta.JSON()
			want := events.OfTransaction(txn)
			txn.Announced = c.announced(c.meta)
			got := events.OfTransaction(txn)
			if len(got) != len(want) {
				t.Fatalf("%d rows, want %d", len(got), len(want))
			}
			for i := range got {
				// The ordinal (5) counts the rows this process builds.
				got[i].Args[5], want[i].Args[5] = nil, nil
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("row %d:\n %v\nwant\n %v", i, got[i].Args, want[i].Args)
				}
			}
		})
	}
}
