package bookings

import (
	"context"
	"errors"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// Dry runs (RecordStays and AwardStays with validate_only): a stay is
// checked and computed as recording it would, and nothing is written: no
// transaction, no booking outcome, no tier change, no event. It reads the
// member as they stand, so the stays of a dry run do not see each other.
//
// The transaction a dry run answers has no id, no balance after and no
// lots: those are the ledger's at commit.

// PreviewStay is RecordStay without the write: the same checks, the
// points and tier effects computed by the same plan (planStay), the
// transaction it would post (nil when the stay would earn nothing) and
// the tier it would leave the member at. A booking that has an outcome is
// refused with a RecordedError, whatever request recorded it (or
// ErrAnotherMembersBooking).
func (s *Service) PreviewStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, stay Stay) (StayResult, error) {
	if err := ChainHotel(property); err != nil {
		return StayResult{}, err
	}
	if err := notAfterToday("departure_date", stay.Departure, s.now(), property, "a stay is recorded at or after check-out"); err != nil {
		return StayResult{}, err
	}
	if err := s.previewBooked(ctx, property.ID, stay.StayID, stay.MemberNumber); err != nil {
		return StayResult{}, err
	}
	plan, err := s.planStay(ctx, req, v, property, stay, nil, ClaimEvent{})
	if err != nil {
		return StayResult{}, err
	}
	out := StayResult{Tier: plan.member.Tier}
	if plan.post.Postings == nil {
		out.Tier = plan.tierAfter
		return out, nil
	}
	txn := s.previewTransaction(plan.post)
	out.Transaction = &txn
	out.Tier = programme.Tier(txmeta.Decode(txn.Metadata).TierAfter)
	return out, nil
}

// PreviewPartnerStay is AwardPartnerStay without the write: the points by
// the partner's rates in force at check-out (rates), capped by the
// programme, and the award it would post (nil when none).
func (s *Service) PreviewPartnerStay(ctx context.Context, req Request, v programmes.Version, partner partners.Partner, rates partners.Rates,
	property programmes.Property, st PartnerStay) (StayResult, error) {
	if err := s.previewBooked(ctx, property.ID, st.StayID, st.Member.Number); err != nil {
		return StayResult{}, err
	}
	award, err := planPartnerStay(v, partner, rates, property, st)
	if err != nil {
		return StayResult{}, err
	}
	out := StayResult{Tier: st.Tier}
	if award.points == 0 {
		return out, nil
	}
	txn := s.previewTransaction(ledger.PostRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Kind: ledger.KindEarn,
		EffectiveAt: award.completedAt, Metadata: award.metadata.JSON(), Postings: award.postings})
	out.Transaction = &txn
	return out, nil
}

// previewBooked refuses a booking that has an outcome: a dry run answers
// ALREADY_RECORDED for it, even under the key that recorded it (a real
// call would replay that key's answer; a dry run has none to replay), or
// ErrAnotherMembersBooking when the outcome is another member's than
// memberNumber.
func (s *Service) previewBooked(ctx context.Context, propertyID, stayID, memberNumber string) error {
	existing, err := s.bookings.Current(ctx, propertyID, stayID, Stayed)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return refusedFor(Claim{PropertyID: propertyID, StayID: stayID, Outcome: Stayed, MemberNumber: memberNumber}, existing)
}

// previewTransaction is the transaction post would record, as far as it
// is known before the ledger records it.
func (s *Service) previewTransaction(post ledger.PostRequest) ledger.Transaction {
	return ledger.Transaction{Kind: post.Kind, CallerID: post.CallerID, IdempotencyKey: post.IdempotencyKey,
		EffectiveAt: post.EffectiveAt, RecordedAt: s.now(), Postings: post.Postings, Metadata: post.Metadata}
}
