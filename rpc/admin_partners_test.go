package rpc_test

import (
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// TestPartnerManagementRefusals: bad partner requests name their field and
// write nothing; ids of partners must exist where they are referred to.
func TestPartnerManagementRefusals(t *testing.T) {
	e := newEnv(t)
	e.createPartner(t, "ALPHA", "0.0085", "0.0061", nil)
	admin := e.clients(e.adminKey).admin
	rates := func(change func(*loyaltyv1.PartnerRates)) *loyaltyv1.PartnerRates {
		r := &loyaltyv1.PartnerRates{IssueRate: "0.01", ReimbursementRate: "0.01", RateCard: standardCard(),
			EffectiveAt: timestamppb.New(e.clock.Now().Add(time.Hour))}
		change(r)
		return r
	}
	create := func(id string, r *loyaltyv1.PartnerRates) error {
		_, err := admin.CreatePartner(e.ctx, connect.NewRequest(&loyaltyv1.CreatePartnerRequest{IdempotencyKey: "create-" + id + r.GetIssueRate(),
			PartnerId: id, Name: "P", SettlementCurrency: "CNY", Rates: r}))
		return err
	}
	setRates := func(r *loyaltyv1.PartnerRates) error {
		_, err := admin.SetPartnerRates(e.ctx, connect.NewRequest(&loyaltyv1.SetPartnerRatesRequest{IdempotencyKey: "rates-" + r.GetIssueRate(),
			PartnerId: "ALPHA", Rates: r}))
		return err
	}
	for _, tc := range []struct {
		name  string
		err   error
		code  connect.Code
		field string
	}{
		{"a partner id is part of account codes", create("bad id!", rates(func(*loyaltyv1.PartnerRates) {})), connect.CodeInvalidArgument, "partnerId"},
		{"no partner may be called programme", create("programme", rates(func(*loyaltyv1.PartnerRates) {})), connect.CodeInvalidArgument, "partnerId"},
		{"a partner id is taken once", create("ALPHA", rates(func(r *loyaltyv1.PartnerRates) { r.IssueRate = "0.02" })), connect.CodeAlreadyExists, ""},
		{"a settlement currency is an ISO 4217 code", func() error {
			_, err := admin.CreatePartner(e.ctx, connect.NewRequest(&loyaltyv1.CreatePartnerRequest{IdempotencyKey: "create-xyz",
				PartnerId: "XYZ", Name: "P", SettlementCurrency: "XYZ", Rates: rates(func(*loyaltyv1.PartnerRates) {})}))
			return err
		}(), connect.CodeInvalidArgument, "settlementCurrency"},
		{"a rate is not negative", create("BETA", rates(func(r *loyaltyv1.PartnerRates) { r.IssueRate = "-0.01" })), connect.CodeInvalidArgument, "rates.issueRate"},
		{"a rate is a decimal", create("BETA", rates(func(r *loyaltyv1.PartnerRates) { r.ReimbursementRate = "1e-3x" })), connect.CodeInvalidArgument, "rates.reimbursementRate"},
		{"the rate card prices every tier", create("BETA", rates(func(r *loyaltyv1.PartnerRates) { delete(r.RateCard.TierMultiplier, "gold") })), connect.CodeInvalidArgument, "rates.rateCard.tierMultiplier.gold"},
		{"new rates are not in the past", setRates(rates(func(r *loyaltyv1.PartnerRates) { r.EffectiveAt = timestamppb.New(e.clock.Now().Add(-time.Minute)) })), connect.CodeInvalidArgument, "rates.effectiveAt"},
		{"new rates have a start", setRates(rates(func(r *loyaltyv1.PartnerRates) { r.EffectiveAt = nil })), connect.CodeInvalidArgument, "rates.effectiveAt"},
		{"a property's partner exists", func() error {
			_, err := admin.PutProperty(e.ctx, connect.NewRequest(&loyaltyv1.PutPropertyRequest{IdempotencyKey: "p-x",
				Property: &loyaltyv1.Property{PropertyId: "X-1", Name: "X", PartnerId: "NOBODY"}}))
			return err
		}(), connect.CodeInvalidArgument, "property.partnerId"},
		{"a partner key's partner exists", func() error {
			_, err := admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: "k-x", Name: "x",
				Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_PARTNER, PartnerId: "NOBODY"}))
			return err
		}(), connect.CodeInvalidArgument, "partnerId"},
		{"an unknown partner is not found", func() error {
			_, err := admin.GetPartner(e.ctx, connect.NewRequest(&loyaltyv1.GetPartnerRequest{PartnerId: "NOBODY"}))
			return err
		}(), connect.CodeNotFound, ""},
		{"suspending needs a reason", func() error {
			_, err := admin.SuspendPartner(e.ctx, connect.NewRequest(&loyaltyv1.SuspendPartnerRequest{IdempotencyKey: "s-x", PartnerId: "ALPHA"}))
			return err
		}(), connect.CodeInvalidArgument, "reason"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ce := wantCode(t, tc.err, tc.code)
			if tc.field != "" {
				if got := badRequestField(t, ce); got != tc.field {
					t.Errorf("field %q, want %q", got, tc.field)
				}
			}
		})
	}
	list, err := admin.ListPartners(e.ctx, connect.NewRequest(&loyaltyv1.ListPartnersRequest{}))
	if err != nil || len(list.Msg.GetPartners()) != 1 {
		t.Fatalf("partners after the refusals: %v, %v", list, err)
	}
	got, err := admin.GetPartner(e.ctx, connect.NewRequest(&loyaltyv1.GetPartnerRequest{PartnerId: "ALPHA"}))
	if err != nil || len(got.Msg.GetPartner().GetRates()) != 1 {
		t.Fatalf("ALPHA after the refusals: %v, %v", got, err)
	}
}
