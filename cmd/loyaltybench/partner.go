package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// benchPartner is the alliance partner of hot mode: half the stays and
// redemptions of hot mode are at its one hotel, through AllianceService
// with its own key, so that every transaction touches either the
// programme's accounts or this partner's.
type benchPartner struct {
	id, property, key string
}

// setUpPartner creates the run's partner, with rates in force from a day
// before firstStay, its hotel and a key bound to it.
func setUpPartner(ctx context.Context, a api, prefix string, firstStay time.Time) (benchPartner, error) {
	suffix := strings.Trim(strings.TrimPrefix(prefix, "lb-"), "-")
	p := benchPartner{id: "BENCH-P-" + suffix, property: "BENCH-P-" + suffix + "-1"}
	one := "1"
	if _, err := a.admin.CreatePartner(ctx, connect.NewRequest(&loyaltyv1.CreatePartnerRequest{
		IdempotencyKey: prefix + "partner", PartnerId: p.id, Name: "Bench Partner", SettlementCurrency: "CNY",
		Rates: &loyaltyv1.PartnerRates{IssueRate: "0.0085", ReimbursementRate: "0.0061",
			EffectiveAt: timestamppb.New(firstStay.AddDate(0, 0, -1)),
			RateCard: &loyaltyv1.RateCard{PointsPerCurrencyUnit: one,
				TierMultiplier: map[string]string{"regular": one, "silver": one, "gold": "1.2", "platinum": "1.5"}}},
	})); err != nil {
		return p, fmt.Errorf("create partner %s: %w", p.id, err)
	}
	if _, err := a.admin.PutProperty(ctx, connect.NewRequest(&loyaltyv1.PutPropertyRequest{IdempotencyKey: prefix + "partner-property",
		Property: &loyaltyv1.Property{PropertyId: p.property, Name: "Bench Partner Hotel", TimeZone: "Asia/Shanghai", PartnerId: p.id}})); err != nil {
		return p, fmt.Errorf("put property %s: %w", p.property, err)
	}
	key, err := a.admin.CreateApiKey(ctx, connect.NewRequest(&loyaltyv1.CreateApiKeyRequest{IdempotencyKey: prefix + "partner-key",
		Name: "bench partner", Role: loyaltyv1.ApiKeyRole_API_KEY_ROLE_PARTNER, PartnerId: p.id}))
	if err != nil {
		return p, fmt.Errorf("create a key for partner %s: %w", p.id, err)
	}
	p.key = key.Msg.GetSecret()
	return p, nil
}

// allianceClient is the partner's AllianceService client over hc.
func (p benchPartner) allianceClient(hc *http.Client, url string) loyaltyv1connect.AllianceServiceClient {
	return loyaltyv1connect.NewAllianceServiceClient(hc, url, bearerAuth(p.key))
}

// partnerStay awards a stay at the partner's hotel.
func (w *worker) partnerStay(ctx context.Context) {
	nights := 1 + w.rng.IntN(3)
	arrival := w.stays.first.AddDate(0, 0, w.rng.IntN(w.stays.days))
	number, family := w.memberAndFamily()
	req := &loyaltyv1.AwardStayRequest{
		IdempotencyKey: w.nextKey("award"),
		MemberNumber:   number,
		FamilyName:     family,
		PropertyId:     w.partner.property,
		StayId:         fmt.Sprintf("P%s%d-%d", w.prefix[3:], w.id, w.seq),
		ArrivalDate:    arrival.Format(time.DateOnly),
		DepartureDate:  arrival.AddDate(0, 0, nights).Format(time.DateOnly),
	}
	for range nights {
		cents := 15000 + w.rng.IntN(65001)
		req.Nights = append(req.Nights, &loyaltyv1.StayNight{
			RoomCharge: &loyaltyv1.Money{CurrencyCode: "CNY", Amount: fmt.Sprintf("%d.%02d", cents/100, cents%100)}})
	}
	w.write(ctx, kindStay, req.IdempotencyKey, func(ctx context.Context) (proto.Message, string, error) {
		res, err := w.alliance.AwardStay(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, "", err
		}
		return res.Msg, res.Msg.GetTransaction().GetTransactionId(), nil
	})
}

// partnerRedeem redeems a bedtime milk at the partner's hotel.
func (w *worker) partnerRedeem(ctx context.Context) {
	number, family := w.memberAndFamily()
	req := &loyaltyv1.AllianceServiceRedeemRequest{IdempotencyKey: w.nextKey("predeem"), MemberNumber: number, FamilyName: family,
		PropertyId: w.partner.property, Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, Quantity: 1}
	w.write(ctx, kindRedeem, req.IdempotencyKey, func(ctx context.Context) (proto.Message, string, error) {
		res, err := w.alliance.Redeem(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, "", err
		}
		return res.Msg, res.Msg.GetTransaction().GetTransactionId(), nil
	})
}
