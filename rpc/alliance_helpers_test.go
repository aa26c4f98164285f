package rpc_test

import (
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// standardCard earns 1 point per CNY, gold x1.2, platinum x1.5.
func standardCard() *loyaltyv1.RateCard {
	return &loyaltyv1.RateCard{PointsPerCurrencyUnit: "1",
		TierMultiplier: map[string]string{"regular": "1", "silver": "1", "gold": "1.2", "platinum": "1.5"}}
}

// createPartner creates a partner settling in CNY with the standard rate
// card and the given rates, in force from effectiveAt (nil: now).
func (e *env) createPartner(t *testing.T, id, issueRate, reimbursementRate string, effectiveAt *timestamppb.Timestamp) *loyaltyv1.Partner {
	t.Helper()
	res, err := e.clients(e.adminKey).admin.CreatePartner(e.ctx, connect.NewRequest(&loyaltyv1.CreatePartnerRequest{
		IdempotencyKey: "partner-" + id, PartnerId: id, Name: "Partner " + id, SettlementCurrency: "CNY",
		Rates: &loyaltyv1.PartnerRates{IssueRate: issueRate, ReimbursementRate: reimbursementRate, RateCard: standardCard(), EffectiveAt: effectiveAt},
	}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetPartner()
}

// partnerKey creates a key bound to the partner and returns its secret
// and id.
func (e *env) partnerKey(t *testing.T, partnerID, name string) (string, string) {
	t.Helper()
	res, err := e.clients(e.adminKey).admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{
		IdempotencyKey: "key-" + name, Name: name, Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_PARTNER, PartnerId: partnerID}))
	if err != nil {
		t.Fatal(err)
	}
	return res.Msg.GetSecret(), res.Msg.GetApiKey().GetKeyId()
}

// putProperty registers a hotel; partnerID empty is the programme's own.
func (e *env) putProperty(t *testing.T, id, partnerID string) {
	t.Helper()
	_, err := e.clients(e.adminKey).admin.PutProperty(e.ctx, connect.NewRequest(&loyaltyv1.PutPropertyRequest{
		IdempotencyKey: "property-" + id, Property: &loyaltyv1.Property{PropertyId: id, Name: "Hotel " + id, PartnerId: partnerID}}))
	if err != nil {
		t.Fatal(err)
	}
}
