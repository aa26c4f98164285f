package bookings_test

import (
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/bookings"
)

func BenchmarkClaimWith(b *testing.B) {
	c := bookings.Claim{PropertyID: "SH-0042", StayID: "stay-20260310-00042", Outcome: bookings.Stayed, MemberNumber: "M00012345",
		CallerID: "bench", IdempotencyKey: "k1", EffectiveAt: time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		if s := bookings.ClaimWith(c, bookings.ClaimEvent{Points: 875}); s.SQL == "" {
			b.Fatal("no SQL")
		}
	}
}
