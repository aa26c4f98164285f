package rpc_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/rpc"
)

// TestAPartnerThatNamesMembersWronglyIsStopped: a partner recognises a
// member by number and family name; each miss tells it a guess was wrong.
// Past rpc.DefaultRecognitionLimit's burst of misses, every recognition by
// that partner is refused, right or wrong (a refusal confirms nothing),
// until the bucket refills; other partners are not affected.
func TestAPartnerThatNamesMembersWronglyIsStopped(t *testing.T) {
	w := newAllianceWorld(t)
	alpha, beta := w.alliance(w.alphaKey), w.alliance(w.betaKey)
	status := func(member, family string) error {
		_, err := alpha.GetMemberStatus(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{MemberNumber: member, FamilyName: family}))
		return err
	}
	limit := rpc.DefaultRecognitionLimit
	for i := range limit.Burst {
		// Unknown numbers and wrong names count alike.
		member, family := w.m1, fmt.Sprintf("Guess%d", i)
		if i%2 == 1 {
			member, family = "9999999999", "Wei"
		}
		wantCode(t, status(member, family), connect.CodeNotFound)
	}
	ce := wantCode(t, status(w.m1, "Wei"), connect.CodeResourceExhausted)
	if !strings.Contains(ce.Message(), "until") || errorInfo(t, ce).GetMetadata()["retry_at"] == "" {
		t.Errorf("the refusal does not say when to try again: %v", ce)
	}
	// Another key of the same partner, and an award, are refused too.
	_, err := w.alliance(w.alpha2Key).AwardStay(w.ctx, award("stay-a", w.m1, "A-1", "A-STAY-1", "2026-11-10", "300.00"))
	wantCode(t, err, connect.CodeResourceExhausted)
	if _, err := beta.GetMemberStatus(w.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{MemberNumber: w.m1, FamilyName: "Wei"})); err != nil {
		t.Errorf("another partner is refused: %v", err)
	}

	// One miss more is allowed per Every.
	w.clock.Advance(limit.Every)
	if err := status(w.m1, "Wei"); err != nil {
		t.Fatalf("after %s: %v", limit.Every, err)
	}
	wantCode(t, status(w.m1, "Li Wei Zhang"), connect.CodeNotFound)
	wantCode(t, status(w.m1, "Wei"), connect.CodeResourceExhausted)
	w.clock.Advance(time.Duration(limit.Burst) * limit.Every)
	if _, err := alpha.AwardStay(w.ctx, award("stay-a", w.m1, "A-1", "A-STAY-1", "2026-11-10", "300.00")); err != nil {
		t.Fatalf("after the bucket refilled: %v", err)
	}
}
