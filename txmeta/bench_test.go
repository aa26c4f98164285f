package txmeta_test

import (
	"testing"

	"github.com/loyalty-ledger/loyalty/txmeta"
)

// stayMetadata is the metadata of a stay as bookings writes it.
var stayMetadata = txmeta.Metadata{Kind: txmeta.KindStay, Member: "M00012345", PropertyID: "SH-0042", StayID: "stay-20260310-00042",
	Description: "Stay at 上海人民广场店, 2 night(s) from 2026-03-08",
	Breakdown: []txmeta.Line{
		{Rule: "stay_points", Description: "2 room-nights at 1 point per CNY, 398 CNY in all, rounded down per night", Points: 398},
		{Rule: "tier_multiplier", Description: "gold member multiplier 1.2 on 398, rounded down per night", Points: 79},
		{Rule: "direct_booking_bonus", Description: "booked directly (app): gold members get the stay's base points again (× 1 of 398), not halved", Points: 398},
	},
	ProgrammeVersion: 3, Nights: 2, QualifyingPoints: 398, TierAfter: "gold"}

// partnerStayMetadata is the metadata of a stay at a partner's hotel.
var partnerStayMetadata = txmeta.Metadata{Kind: txmeta.KindPartnerStay, Member: "M00012345", PropertyID: "P1-0007", StayID: "p-stay-77",
	Description:      "Stay at Partner Inn Hangzhou, 1 night(s) from 2026-03-08",
	Breakdown:        []txmeta.Line{{Rule: "partner_rate", Description: "partner P1 rate version 4: 1 point per CNY, capped at 500", Points: 268}},
	ProgrammeVersion: 3, PartnerID: "P1", RateVersion: 4, PartnerPointsIssued: 268, Money: "2.68", Currency: "CNY", TierPriced: "silver"}

func BenchmarkDecode(b *testing.B) {
	for _, c := range []struct {
		name string
		m    txmeta.Metadata
	}{{"stay", stayMetadata}, {"partner_stay", partnerStayMetadata}} {
		raw := c.m.JSON()
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if txmeta.Decode(raw).Kind != c.m.Kind {
					b.Fatal("wrong kind")
				}
			}
		})
	}
}

func BenchmarkJSON(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = stayMetadata.JSON()
	}
}
