package bookings

import (
	"context"
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// PartnerStayOver refuses to award a stay at a partner's hotel before its
// check-out time (noon on the departure day at the hotel).
func PartnerStayOver(departure time.Time, property programmes.Property, now time.Time) error {
	if CompletedAt(departure, property).After(now) {
		return fieldError("departure_date", "check-out (noon on %s at the hotel) is still to come: award a stay once it is completed, its rates in force then",
			departure.Format(time.DateOnly))
	}
	return nil
}

// PartnerStay is a completed stay at a partner's hotel, for the member the
// partner recognised, whose tier when the stay began is Tier.
type PartnerStay struct {
	Member             members.Member
	Tier               programme.Tier
	StayID             string
	Arrival, Departure time.Time
	// Nights are the nights' room charges, one per night, and which are
	// unbooked extensions.
	Nights []programme.Night
}

// AwardPartnerStay awards a stay at a partner's hotel by the partner's rate
// card in force at check-out (rates), capped by the programme: the points,
// the partner's settlement entry and the booking's outcome in one
// transaction; a stay that earns nothing records nothing. A stay at a
// partner's hotel does not count for tiers.
func (s *Service) AwardPartnerStay(ctx context.Context, req Request, v programmes.Version, partner partners.Partner, rates partners.Rates,
	property programmes.Property, st PartnerStay) (StayResult, error) {
	award, err := planPartnerStay(v, partner, rates, property, st)
	if err != nil {
		return StayResult{}, err
	}
	out := StayResult{Tier: st.Tier}
	claim := s.claim(req, property.ID, st.StayID, Stayed, st.Member.Number, award.completedAt)
	if award.points == 0 {
		// Nothing is posted or settled, and the booking keeps no outcome:
		// the partner has nothing to reverse, and awards the corrected
		// stay later. An outcome recorded already is answered as for any
		// award.
		return out, s.refuseIfRecorded(ctx, req, property.ID, st.StayID, st.Member.Number, Stayed)
	}
	txn, err := s.post(ctx, req, ledger.KindEarn, v, award.completedAt, award.postings, award.metadata, partners.Record(award.entry),
		ClaimWith(claim, ClaimEvent{Points: award.points, PartnerID: partner.ID}))
	out.Transaction = txn
	if txn != nil {
		// A replay answers the first transaction, and the tier that priced
		// it then: the history may have changed since (a stay recorded
		// later, as of an earlier check-out).
		if priced := txmeta.Decode(txn.Metadata).TierPriced; priced != "" {
			out.Tier = programme.Tier(priced)
		}
	}
	return out, err
}

// partnerAward is a partner's stay computed: what awarding it posts.
type partnerAward struct {
	points      int64
	completedAt time.Time
	postings    []ledger.Posting
	metadata    txmeta.Metadata
	entry       partners.Entry
}

// planPartnerStay computes a partner's stay: its points by the partner's
// rate card capped by the programme, the postings, the metadata that
// explains them and the partner's settlement entry. No points, no
// postings.
func planPartnerStay(v programmes.Version, partner partners.Partner, rates partners.Rates, property programmes.Property, st PartnerStay) (partnerAward, error) {
	points, lines, err := partners.StayPoints(rates.Card, st.Tier, st.Nights, v.Programme.PartnerMaxPointsPerUnit)
	if err != nil {
		return partnerAward{}, err
	}
	a := partnerAward{points: points, completedAt: CompletedAt(st.Departure, property)}
	if points == 0 {
		return a, nil
	}
	amount := partners.Amount(rates, points, 0)
	a.metadata = txmeta.Metadata{Kind: txmeta.KindPartnerStay, Member: st.Member.Number, PropertyID: property.ID, StayID: st.StayID,
		Description: fmt.Sprintf("Stay at %s, %d night(s) from %s", property.Name, len(st.Nights), st.Arrival.Format(time.DateOnly)),
		Breakdown:   txmeta.LinesOf(lines), ProgrammeVersion: v.Number,
		PartnerID: partner.ID, RateVersion: rates.Version, PartnerPointsIssued: points, Money: amount.String(), Currency: partner.Currency,
		TierPriced: string(st.Tier)}
	a.postings = []ledger.Posting{
		{Account: st.Member.Account(), Amount: points},
		{Account: partners.IssuedAccount(partner.ID).Code, Amount: -points},
	}
	a.entry = partners.Entry{PartnerID: partner.ID, PropertyID: property.ID, Kind: partners.KindAward, MemberNumber: st.Member.Number,
		StayID: st.StayID, RateVersion: rates.Version, PointsIssued: points, Amount: amount}
	return a, nil
}

// PartnerRedemption is a reward a member the partner recognised spends
// points on at one of the partner's hotels.
type PartnerRedemption struct {
	Member   members.Member
	Reward   programme.Reward
	Quantity int
	StayID   string
}

// RedeemAtPartner spends a member's points on a reward at a partner's
// hotel, owed to the partner at its reimbursement rate in force now
// (rates).
func (s *Service) RedeemAtPartner(ctx context.Context, req Request, v programmes.Version, partner partners.Partner, rates partners.Rates,
	property programmes.Property, r PartnerRedemption) (ledger.Transaction, error) {
	points, lines, err := v.Programme.RewardPrice(r.Reward, r.Quantity)
	if err != nil {
		return ledger.Transaction{}, err
	}
	price := -points
	amount := partners.Amount(rates, 0, price)
	m := txmeta.Metadata{Kind: txmeta.KindPartnerRedemption, Member: r.Member.Number, PropertyID: property.ID, StayID: r.StayID,
		Description: fmt.Sprintf("Redeemed %d x %s at %s", r.Quantity, r.Reward, property.Name), Breakdown: txmeta.LinesOf(lines),
		ProgrammeVersion: v.Number, PartnerID: partner.ID, RateVersion: rates.Version, PartnerPointsRedeemed: price,
		Money: amount.String(), Currency: partner.Currency}
	txn, err := s.post(ctx, req, ledger.KindRedeem, v, s.now(), []ledger.Posting{
		{Account: r.Member.Account(), Amount: -price},
		{Account: partners.RedeemedAccount(partner.ID).Code, Amount: price},
	}, m, partners.Record(partners.Entry{
		PartnerID: partner.ID, PropertyID: property.ID, Kind: partners.KindRedemption, MemberNumber: r.Member.Number,
		StayID: r.StayID, RateVersion: rates.Version, PointsRedeemed: price, Amount: amount}))
	if err != nil {
		return ledger.Transaction{}, err
	}
	return *txn, nil
}

// ReverseAtPartner reverses a transaction at a partner's hotel and indexes
// the reversal for the partner's settlement: it counts in the period it is
// recorded in (a closed period is never rewritten), negative, at the rate
// version of the transaction it reverses, so that the money reversed is
// exactly the money first counted. A reversed award frees its booking.
func (s *Service) ReverseAtPartner(ctx context.Context, req Request, v programmes.Version, e partners.Entry, reason string) (ledger.Transaction, error) {
	if e.Kind == partners.KindReversal {
		return ledger.Transaction{}, ledger.ErrNotReversible
	}
	if err := s.refuseClosed(ctx, e.MemberNumber); err != nil {
		return ledger.Transaction{}, err
	}
	currency := ""
	if p, err := s.partners.Get(ctx, e.PartnerID); err == nil {
		currency = p.Currency
	}
	amount := e.Amount.Neg()
	m := txmeta.Metadata{Kind: txmeta.KindReversal, Member: e.MemberNumber, PropertyID: e.PropertyID, StayID: e.StayID, Reason: reason,
		Description: fmt.Sprintf("Reversal of %s %s: %s", e.Kind, e.TransactionID, reason),
		Breakdown:   []txmeta.Line{{Rule: "reversal", Description: "Reverses " + e.TransactionID.String(), Points: e.PointsRedeemed - e.PointsIssued}},
		PartnerID:   e.PartnerID, RateVersion: e.RateVersion, PartnerPointsIssued: -e.PointsIssued, PartnerPointsRedeemed: -e.PointsRedeemed,
		Money: amount.String(), Currency: currency}
	return s.ledger.Reverse(ctx, ledger.ReverseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, TransactionID: e.TransactionID,
		Metadata: m.JSON(), Fingerprint: req.Fingerprint, Lots: v.LotPolicy(s.now(), false),
		Effects: []ledger.Statement{partners.Record(partners.Entry{
			PartnerID: e.PartnerID, PropertyID: e.PropertyID, Kind: partners.KindReversal, MemberNumber: e.MemberNumber,
			StayID: e.StayID, RateVersion: e.RateVersion, PointsIssued: -e.PointsIssued, PointsRedeemed: -e.PointsRedeemed,
			Amount: amount, ReversesID: e.TransactionID}),
			Release(e.TransactionID, Released{MemberNumber: e.MemberNumber, PropertyID: e.PropertyID, StayID: e.StayID,
				PartnerID: e.PartnerID, Points: e.PointsRedeemed - e.PointsIssued, Reason: reason})},
	})
}
