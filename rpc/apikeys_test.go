package rpc_test

import (
	"slices"
	"testing"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// TestAdminsListKeysAndFindALeakedSecret: an admin lists the API keys
// (those that work, or all, a page at a time) without any secret, and
// finds the key a leaked secret belongs to, to revoke it by its id; no
// other role may.
func TestAdminsListKeysAndFindALeakedSecret(t *testing.T) {
	e := newEnv(t)
	admin := e.clients(e.adminKey).admin
	create := func(key, name string) (string, string) {
		t.Helper()
		res, err := admin.CreateApiKey(e.ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: key, Name: name,
			Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL}))
		if err != nil {
			t.Fatal(err)
		}
		return res.Msg.GetApiKey().GetKeyId(), res.Msg.GetSecret()
	}
	web, _ := create("k-web", "web")
	leaked, leakedSecret := create("k-app", "app")
	if _, err := admin.RevokeApiKey(e.ctx, connect.NewRequest(&loyaltyv1.RevokeApiKeyRequest{IdempotencyKey: "revoke-app", KeyId: leaked,
		Reason: "secret found in a public repository"})); err != nil {
		t.Fatal(err)
	}
	ids := func(req *loyaltyv1.ListApiKeysRequest) []string {
		t.Helper()
		var out []string
		for page := 0; ; page++ {
			res, err := admin.ListApiKeys(e.ctx, connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range res.Msg.GetApiKeys() {
				out = append(out, k.GetKeyId())
			}
			if res.Msg.GetNextPageToken() == "" || page > 10 {
				return out
			}
			req.PageToken = res.Msg.GetNextPageToken()
		}
	}
	working := ids(&loyaltyv1.ListApiKeysRequest{})
	if !slices.Contains(working, web) || slices.Contains(working, leaked) || len(working) != 3 { // the admin's, the booking channel's, web
		t.Errorf("keys that work: %v; want 3 with %s, without the revoked %s", working, web, leaked)
	}
	all := ids(&loyaltyv1.ListApiKeysRequest{IncludeRevoked: true, PageSize: 1})
	if !slices.Contains(all, leaked) || len(all) != 4 || !slices.IsSorted(all) {
		t.Errorf("every key, a page of one at a time: %v; want 4 in key id order", all)
	}
	found, err := admin.ListApiKeys(e.ctx, connect.NewRequest(&loyaltyv1.ListApiKeysRequest{Secret: leakedSecret}))
	if err != nil || len(found.Msg.GetApiKeys()) != 1 || found.Msg.GetApiKeys()[0].GetKeyId() != leaked || found.Msg.GetApiKeys()[0].GetRevokedAt() == nil {
		t.Errorf("the key of a leaked secret: %v, %v; want %s, revoked", found, err, leaked)
	}
	none, err := admin.ListApiKeys(e.ctx, connect.NewRequest(&loyaltyv1.ListApiKeysRequest{Secret: "lk_nobody"}))
	if err != nil || len(none.Msg.GetApiKeys()) != 0 {
		t.Errorf("an unknown secret: %v, %v; want no key", none, err)
	}
	_, err = e.clients(e.bookingKey).admin.ListApiKeys(e.ctx, connect.NewRequest(&loyaltyv1.ListApiKeysRequest{}))
	wantCode(t, err, connect.CodePermissionDenied)
	_, err = admin.ListApiKeys(e.ctx, connect.NewRequest(&loyaltyv1.ListApiKeysRequest{PageSize: 501}))
	if field := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); field != "pageSize" {
		t.Errorf("page size 501 refused on %q", field)
	}
}
