package rpc_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// TestIrreversibleMistakesAndHostileTextAreRefused: the requests an
// outside probe got in with, each otherwise well formed: text with a NUL,
// a manual tier until 9999, a programme version or partner rates starting
// in 9999 or more than two years ahead (every later version would have to
// start after it), a key expiring in year 1, a release for a reason the
// contract does not define. Each is INVALID_ARGUMENT naming the field, and
// nothing is written.
func TestIrreversibleMistakesAndHostileTextAreRefused(t *testing.T) {
	e := newEnv(t)
	admin := e.clients(e.adminKey).admin
	c := e.clients(e.bookingKey)
	member := e.enroll(t, c, "enrol-1")
	e.createPartner(t, "ALPHA", "0.0085", "0.0061", nil)
	current, err := admin.GetProgramme(e.ctx, connect.NewRequest(&loyaltyv1.GetProgrammeRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	threeYears := timestamppb.New(e.clock.Now().AddDate(3, 0, 0))
	year9999 := timestamppb.New(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
	rates := func(at *timestamppb.Timestamp) *loyaltyv1.PartnerRates {
		return &loyaltyv1.PartnerRates{IssueRate: "0.01", ReimbursementRate: "0.01", RateCard: standardCard(), EffectiveAt: at}
	}
	before := e.transactionCount(t)
	for _, tc := range []struct {
		name, field string
		call        func() error
	}{
		{"a NUL in an adjustment's reason", "reason", func() error {
			_, err := admin.AdjustPoints(e.ctx, connect.NewRequest(&loyaltyv1.AdjustPointsRequest{IdempotencyKey: "adj", MemberNumber: member,
				Points: 10, Category: loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL, Reason: "noisy\x00room"}))
			return err
		}},
		{"a NUL in a member's name", "fullName", func() error {
			_, err := c.members.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{IdempotencyKey: "enrol-nul",
				FullName: "Li\x00Wei", Email: "x@example.com", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
			return err
		}},
		{"a manual tier until 9999", "until", func() error {
			_, err := admin.SetTier(e.ctx, connect.NewRequest(&loyaltyv1.SetTierRequest{IdempotencyKey: "tier", MemberNumber: member,
				Tier: loyaltyv1.Tier_TIER_GOLD, Reason: "status match", Until: year9999}))
			return err
		}},
		{"a manual tier for ten years", "until", func() error {
			_, err := admin.SetTier(e.ctx, connect.NewRequest(&loyaltyv1.SetTierRequest{IdempotencyKey: "tier-10", MemberNumber: member,
				Tier: loyaltyv1.Tier_TIER_GOLD, Reason: "status match", Until: timestamppb.New(e.clock.Now().AddDate(10, 0, 0))}))
			return err
		}},
		{"a programme version in 9999", "effectiveAt", func() error {
			_, err := admin.PublishProgramme(e.ctx, connect.NewRequest(&loyaltyv1.PublishProgrammeRequest{IdempotencyKey: "v-9999",
				EffectiveAt: year9999, DefinitionJson: current.Msg.GetDefinitionJson()}))
			return err
		}},
		{"a programme version three years ahead", "effectiveAt", func() error {
			_, err := admin.PublishProgramme(e.ctx, connect.NewRequest(&loyaltyv1.PublishProgrammeRequest{IdempotencyKey: "v-3y",
				EffectiveAt: threeYears, DefinitionJson: current.Msg.GetDefinitionJson()}))
			return err
		}},
		{"partner rates three years ahead", "rates.effectiveAt", func() error {
			_, err := admin.SetPartnerRates(e.ctx, connect.NewRequest(&loyaltyv1.SetPartnerRatesRequest{IdempotencyKey: "rates-3y",
				PartnerId: "ALPHA", Rates: rates(threeYears)}))
			return err
		}},
		{"a new partner's first rates three years ahead", "rates.effectiveAt", func() error {
			_, err := admin.CreatePartner(e.ctx, connect.NewRequest(&loyaltyv1.CreatePartnerRequest{IdempotencyKey: "partner-beta",
				PartnerId: "BETA", Name: "Beta", SettlementCurrency: "CNY", Rates: rates(threeYears)}))
			return err
		}},
		{"a key that expired in year 1", "expiresAt", func() error {
			_, err := admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: "key-0001", Name: "old",
				Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL, ExpiresAt: timestamppb.New(time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))}))
			return err
		}},
		{"a key for twenty years", "expiresAt", func() error {
			_, err := admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: "key-20y", Name: "forever",
				Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL, ExpiresAt: timestamppb.New(e.clock.Now().AddDate(20, 0, 0))}))
			return err
		}},
		{"a guarantee released for no defined reason", "reason", func() error {
			_, err := c.booking.ReleaseGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.ReleaseGuaranteeRequest{IdempotencyKey: "release",
				PropertyId: "SH-HQ-001", StayId: "G-1", Reason: 99}))
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := badRequestField(t, wantCode(t, tc.call(), connect.CodeInvalidArgument)); got != tc.field {
				t.Errorf("field %q, want %q", got, tc.field)
			}
		})
	}
	if n := e.transactionCount(t); n != before {
		t.Fatalf("%d transactions written by refused requests", n-before)
	}
	if got, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member})); err != nil ||
		got.Msg.GetMember().GetTier() != loyaltyv1.Tier_TIER_REGULAR {
		t.Fatalf("the member after the refusals: %v, %v", got, err)
	}
}
