package rpc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

type adminService struct{ *Server }

var _ loyaltyv1connect.AdminServiceHandler = adminService{}

// maxAdjustmentPoints bounds one manual adjustment.
const maxAdjustmentPoints = 1_000_000

func (s adminService) AdjustPoints(ctx context.Context, req *connect.Request[loyaltyv1.AdjustPointsRequest]) (*connect.Response[loyaltyv1.AdjustPointsResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	if err := checkReason(msg.GetReason()); err != nil {
		return nil, err
	}
	points := msg.GetPoints()
	var source, rule string
	switch msg.GetCategory() {
	case loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_GOODWILL:
		source, rule = programme.AccountIssuedGoodwill, "goodwill"
		if points == 0 {
			return nil, badField("points", "must not be zero")
		}
	case loyaltyv1.AdjustmentCategory_ADJUSTMENT_CATEGORY_ADOPTED_SUGGESTION:
		source, rule = programme.AccountIssuedSuggestion, programme.RuleAdoptedSuggestion
		if points == 0 {
			v, err := s.rules(ctx)
			if err != nil {
				return nil, s.toConnect(ctx, proc, err)
			}
			points, _ = v.Programme.AdoptedSuggestion()
		}
		if points < 0 {
			return nil, badField("points", "an adopted suggestion is an award: points must be positive")
		}
	default:
		return nil, badField("category", "is required: GOODWILL or ADOPTED_SUGGESTION")
	}
	if points > maxAdjustmentPoints || points < -maxAdjustmentPoints {
		return nil, badField("points", "magnitude at most %d", maxAdjustmentPoints)
	}
	member, err := s.members.GetForWrite(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetMemberNumber())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	postings := []ledger.Posting{{Account: member.Account(), Amount: points}, {Account: source, Amount: -points}}
	if points < 0 {
		// Taking points back is not un-issuing them: the debit is kept apart.
		postings[1] = ledger.Posting{Account: programme.AccountAdjustmentDebit, Amount: -points}
	}
	m := txmeta.Metadata{Kind: txmeta.KindAdjustment, Member: member.Number, Reason: msg.GetReason(),
		Description: fmt.Sprintf("%s adjustment: %s", rule, msg.GetReason()),
		Breakdown:   []txmeta.Line{{Rule: rule, Description: msg.GetReason(), Points: points}}}
	txn, err := s.post(ctx, msg.GetIdempotencyKey(), ledger.KindAdjustment, s.now(), postings, m)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	return connect.NewResponse(&loyaltyv1.AdjustPointsResponse{Transaction: txn}), nil
}

var keyRoles = map[loyaltyv1.ApiKeyRole]apikeys.Role{
	loyaltyv1.ApiKeyRole_API_KEY_ROLE_BOOKING_CHANNEL: apikeys.RoleBookingChannel,
	loyaltyv1.ApiKeyRole_API_KEY_ROLE_PARTNER:         apikeys.RolePartner,
	loyaltyv1.ApiKeyRole_API_KEY_ROLE_FINANCE:         apikeys.RoleFinance,
	loyaltyv1.ApiKeyRole_API_KEY_ROLE_ADMIN:           apikeys.RoleAdmin,
}

var protoRoles = invert(keyRoles)

func (s adminService) CreateApiKey(ctx context.Context, req *connect.Request[loyaltyv1.CreateApiKeyRequest]) (*connect.Response[loyaltyv1.CreateApiKeyResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	role, ok := keyRoles[msg.GetRole()]
	if !ok {
		return nil, badField("role", "is required: BOOKING_CHANNEL, PARTNER, FINANCE or ADMIN")
	}
	if role == apikeys.RolePartner {
		if err := s.knownPartner(ctx, "partner_id", msg.GetPartnerId()); err != nil {
			return nil, s.toConnect(ctx, proc, err)
		}
	}
	create := apikeys.CreateRequest{Name: msg.GetName(), Role: role, PartnerID: msg.GetPartnerId()}
	if msg.GetExpiresAt() != nil {
		create.ExpiresAt = msg.GetExpiresAt().AsTime()
	}
	key, secret, err := s.keys.Create(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), create)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if secret != "" { // not a replay, which shows no secret
		s.log.InfoContext(ctx, "API key created", "key_id", key.ID, "role", string(key.Role), "partner_id", key.PartnerID, "by", caller(ctx).ID)
	}
	return connect.NewResponse(&loyaltyv1.CreateApiKeyResponse{ApiKey: protoKey(key), Secret: secret}), nil
}

func (s adminService) RevokeApiKey(ctx context.Context, req *connect.Request[loyaltyv1.RevokeApiKeyRequest]) (*connect.Response[loyaltyv1.RevokeApiKeyResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkReason(msg.GetReason()); err != nil {
		return nil, err
	}
	key, err := s.keys.Revoke(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetKeyId())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	s.log.InfoContext(ctx, "API key revoked", "key_id", key.ID, "by", caller(ctx).ID, "reason", msg.GetReason())
	return connect.NewResponse(&loyaltyv1.RevokeApiKeyResponse{ApiKey: protoKey(key)}), nil
}

func (s adminService) ListApiKeys(ctx context.Context, req *connect.Request[loyaltyv1.ListApiKeysRequest]) (*connect.Response[loyaltyv1.ListApiKeysResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if msg.GetSecret() != "" {
		if len(msg.GetSecret()) > apikeys.MaxSecretLength {
			return nil, badField("secret", "is longer than any secret (%d bytes at most)", apikeys.MaxSecretLength)
		}
		out := &loyaltyv1.ListApiKeysResponse{}
		key, err := s.keys.Find(ctx, msg.GetSecret())
		switch {
		case err == nil:
			out.ApiKeys = []*loyaltyv1.ApiKey{protoKey(key)}
		case !errors.Is(err, apikeys.ErrNotFound):
			return nil, s.toConnect(ctx, proc, err)
		}
		return connect.NewResponse(out), nil
	}
	size := int(msg.GetPageSize())
	if size == 0 {
		size = 100
	}
	if size < 1 || size > apikeys.MaxListPage {
		return nil, badField("page_size", "must be 0 (100) to %d", apikeys.MaxListPage)
	}
	if len(msg.GetPageToken()) > 64 {
		return nil, badField("page_token", "is not a token this service gave")
	}
	keys, err := s.keys.List(ctx, msg.GetPageToken(), size, msg.GetIncludeRevoked())
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.ListApiKeysResponse{}
	for _, k := range keys {
		out.ApiKeys = append(out.ApiKeys, protoKey(k))
	}
	if len(keys) == size {
		out.NextPageToken = keys[len(keys)-1].ID
	}
	return connect.NewResponse(out), nil
}

func protoKey(k apikeys.Key) *loyaltyv1.ApiKey {
	out := &loyaltyv1.ApiKey{KeyId: k.ID, Name: k.Name, Role: protoRoles[k.Role], PartnerId: k.PartnerID,
		CreatedAt: timestamppb.New(k.CreatedAt), CreatedByKeyId: k.CreatedBy}
	if !k.ExpiresAt.IsZero() {
		out.ExpiresAt = timestamppb.New(k.ExpiresAt)
	}
	if !k.RevokedAt.IsZero() {
		out.RevokedAt = timestamppb.New(k.RevokedAt)
	}
	return out
}

func (s adminService) PublishProgramme(ctx context.Context, req *connect.Request[loyaltyv1.PublishProgrammeRequest]) (*connect.Response[loyaltyv1.PublishProgrammeResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if msg.GetEffectiveAt() == nil {
		return nil, badField("effective_at", "is required")
	}
	if len(msg.GetDefinitionJson()) > 32<<10 {
		return nil, badField("definition_json", "at most 32 KiB")
	}
	p, err := programme.ParseProgramme([]byte(msg.GetDefinitionJson()))
	var fe *programme.FieldError
	if errors.As(err, &fe) {
		return nil, badField("definition_json."+fe.Field, "%s", fe.Problem)
	}
	if err != nil {
		return nil, badField("definition_json", "is not a programme definition: %v", err)
	}
	v, err := s.programmes.Publish(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetEffectiveAt().AsTime(), p)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	s.log.InfoContext(ctx, "programme version published", "version", v.Number, "effective_at", v.EffectiveAt, "by", caller(ctx).ID)
	return connect.NewResponse(&loyaltyv1.PublishProgrammeResponse{Version: int32(v.Number), EffectiveAt: timestamppb.New(v.EffectiveAt)}), nil
}

func (s adminService) GetProgramme(ctx context.Context, req *connect.Request[loyaltyv1.GetProgrammeRequest]) (*connect.Response[loyaltyv1.GetProgrammeResponse], error) {
	var v programmes.Version
	var err error
	if n := req.Msg.GetVersion(); n < 0 {
		return nil, badField("version", "must be 0 (in force now) or a version number")
	} else if n == 0 {
		v, err = s.rules(ctx)
	} else {
		v, err = s.programmes.Get(ctx, int(n))
	}
	if errors.Is(err, programmes.ErrNoVersion) {
		return nil, connect.NewError(connect.CodeNotFound, errors.New("no such programme version"))
	}
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	definition, err := json.MarshalIndent(v.Programme, "", "  ")
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	return connect.NewResponse(&loyaltyv1.GetProgrammeResponse{Version: int32(v.Number), EffectiveAt: timestamppb.New(v.EffectiveAt),
		DefinitionJson: string(definition)}), nil
}

func (s adminService) PutProperty(ctx context.Context, req *connect.Request[loyaltyv1.PutPropertyRequest]) (*connect.Response[loyaltyv1.PutPropertyResponse], error) {
	p := req.Msg.GetProperty()
	if p == nil {
		return nil, badField("property", "is required")
	}
	owner := programmes.OwnerProgramme
	if p.GetPartnerId() != "" {
		// A partner's hotel belongs to a partner that exists: its keys
		// are scoped by it.
		if err := s.knownPartner(ctx, "property.partner_id", p.GetPartnerId()); err != nil {
			return nil, s.toConnect(ctx, req.Spec().Procedure, err)
		}
		owner = p.GetPartnerId()
	}
	put, err := s.programmes.PutProperty(ctx, caller(ctx).ID, req.Msg.GetIdempotencyKey(), programmes.Property{
		ID: p.GetPropertyId(), Name: p.GetName(), TimeZone: p.GetTimeZone(), Owner: owner})
	var fe *ledger.FieldError
	if errors.As(err, &fe) && fe.Field != "idempotency_key" {
		return nil, badField("property."+fe.Field, "%s", fe.Problem)
	}
	if err != nil {
		return nil, s.toConnect(ctx, req.Spec().Procedure, err)
	}
	out := &loyaltyv1.Property{PropertyId: put.ID, Name: put.Name, TimeZone: put.TimeZone}
	if put.Owner != programmes.OwnerProgramme {
		out.PartnerId = put.Owner
	}
	return connect.NewResponse(&loyaltyv1.PutPropertyResponse{Property: out}), nil
}

var tierOfProto = invert(tiers)

func (s adminService) SetTier(ctx context.Context, req *connect.Request[loyaltyv1.SetTierRequest]) (*connect.Response[loyaltyv1.SetTierResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	if err := checkMember(msg.GetMemberNumber()); err != nil {
		return nil, err
	}
	tier, ok := tierOfProto[msg.GetTier()]
	if !ok {
		return nil, badField("tier", "is required: REGULAR, SILVER, GOLD or PLATINUM")
	}
	if err := checkReason(msg.GetReason()); err != nil {
		return nil, err
	}
	var until time.Time
	if msg.GetUntil() != nil {
		if until = msg.GetUntil().AsTime(); !until.After(s.now()) {
			return nil, badField("until", "must be in the future")
		}
		if latest := s.now().AddDate(maxManualTierYears, 0, 0); until.After(latest) {
			return nil, badField("until", "is after %s: a manual tier ends within %d years (omit until for one that lasts until changed)",
				latest.UTC().Format(time.RFC3339), maxManualTierYears)
		}
	}
	var effectiveAt time.Time // zero: now
	if msg.GetEffectiveAt() != nil {
		at, err := pastInstant("effective_at", msg.GetEffectiveAt(), s.now())
		if err != nil {
			return nil, err
		}
		effectiveAt = at
	}
	m, err := s.members.SetManualTier(ctx, caller(ctx).ID, msg.GetIdempotencyKey(), msg.GetMemberNumber(), tier, msg.GetReason(), effectiveAt, until)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.SetTierResponse{MemberNumber: m.Number, Tier: tiers[m.Tier]}
	if !until.IsZero() {
		out.Until = timestamppb.New(until)
	}
	return connect.NewResponse(out), nil
}
