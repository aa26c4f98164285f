package events_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// benchStay is a stay's transaction as the ledger announces it.
func benchStay() ledger.Transaction {
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	m := txmeta.Metadata{Kind: txmeta.KindStay, Member: "M00012345", PropertyID: "SH-0042", StayID: "stay-20260310-00042",
		Description: "Stay at 上海人民广场店, 2 night(s) from 2026-03-08",
		Breakdown: []txmeta.Line{
			{Rule: "stay_points", Description: "2 room-nights at 1 point per CNY, 398 CNY in all, rounded down per night", Points: 398},
			{Rule: "tier_multiplier", Description: "gold member multiplier 1.2 on 398, rounded down per night", Points: 79},
			{Rule: "direct_booking_bonus", Description: "booked directly (app): gold members get the stay's base points again (× 1 of 398), not halved", Points: 398},
		},
		ProgrammeVersion: 3, Nights: 2, QualifyingPoints: 398, TierAfter: "gold"}
	account := programme.MemberAccount(m.Member).Code
	return ledger.Transaction{ID: uuid.New(), Kind: ledger.KindEarn, CallerID: "bench", IdempotencyKey: "k1", EffectiveAt: at, RecordedAt: at,
		Postings: []ledger.Posting{{Account: account, Amount: 875}, {Account: programme.AccountIssuedStay, Amount: -477},
			{Account: programme.AccountIssuedBookingBonus, Amount: -398}},
		Metadata:      m.JSON(),
		BalancesAfter: []ledger.Balance{{Account: account, Posted: 1875, Available: 1875, AsOf: at}}}
}

func BenchmarkOfTransaction(b *testing.B) {
	txn := benchStay()
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(events.OfTransaction(txn)) != 1 {
				b.Fatal("want one event")
			}
		}
	})
	txn.Announced = txmeta.Decode(txn.Metadata)
	b.Run("announced", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(events.OfTransaction(txn)) != 1 {
				b.Fatal("want one event")
			}
		}
	})
}

func BenchmarkInsertSelect(b *testing.B) {
	at := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	r := events.BookingRecorded(events.BookingData{MemberNumber: "M00012345", PropertyID: "SH-0042", StayID: "stay-20260310-00042",
		Outcome: "stayed", Points: 875}, at, at, uuid.New())
	b.ReportAllocs()
	for b.Loop() {
		_, args := events.InsertSelect(r, 9, events.Fill{RecordedAt: "$20::TIMESTAMPTZ", TransactionID: "$18::UUID",
			Data: "jsonb_build_object('transaction_id', $18::UUID::TEXT)"}, "claimed")
		if len(args) != 8 {
			b.Fatal(len(args))
		}
	}
}
