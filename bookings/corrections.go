package bookings

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// ErrNothingToCorrect: the booking has no outcome; record it instead.
var ErrNothingToCorrect = errors.New("the booking has no outcome to correct: record it")

// ErrPartnersOutcome: the outcome was a partner's award, which the partner
// corrects (reverse it, award again) so that its settlement follows.
var ErrPartnersOutcome = errors.New("the booking's stay was awarded by the partner: the partner reverses its award and awards the stay again")

// CorrectionResult is a booking's outcome corrected into a stay: the
// reversal of the outcome replaced (nil when that outcome posted nothing)
// and the stay recorded in its place.
type CorrectionResult struct {
	Reversal *ledger.Transaction
	Stay     StayResult
}

// CorrectStay records the stay a booking had, in place of the outcome
// recorded for it: a stay whose folio changed (charges, nights, channel),
// or a no-show or charged cancellation of a guest who did arrive. The old
// outcome's transaction is reversed and the stay posted in one commit,
// each naming the other, with the caller's reason: balances, tier
// qualification and the first-stay claim end as if only the stay had
// happened. A retry under the same key returns the first correction.
func (s *Service) CorrectStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, st Stay, reason string) (CorrectionResult, error) {
	return answerRetry(ctx, s, req, nil, func(ctx context.Context) (CorrectionResult, error) {
		if ChainHotel(property) != nil {
			// A stay at a partner's hotel is the partner's award, whoever
			// asks: the contract's FAILED_PRECONDITION, not a bad field.
			return CorrectionResult{}, fmt.Errorf("booking %s/%s: %w", property.ID, st.StayID, ErrPartnersOutcome)
		}
		if err := notAfterToday("departure_date", st.Departure, s.now(), property, "a stay is recorded at or after check-out"); err != nil {
			return CorrectionResult{}, err
		}
		current, err := s.bookings.Current(ctx, property.ID, st.StayID, Stayed)
		if errors.Is(err, ErrNotFound) {
			return CorrectionResult{}, fmt.Errorf("booking %s/%s: %w", property.ID, st.StayID, ErrNothingToCorrect)
		}
		if err != nil {
			return CorrectionResult{}, err
		}
		if current.CallerID == req.CallerID && current.IdempotencyKey == req.IdempotencyKey && current.TransactionID != uuid.Nil {
			// This request's own correction, committed: answer it again. (A
			// key first used for another request is refused by the ledger.)
			if stay, err := s.ledger.Transaction(ctx, current.TransactionID); err == nil && txmeta.Decode(stay.Metadata).Reason != "" {
				return s.replayCorrection(ctx, stay)
			}
		}
		var original *ledger.Transaction
		if current.TransactionID != uuid.Nil {
			txn, err := s.ledger.Transaction(ctx, current.TransactionID)
			if err != nil {
				return CorrectionResult{}, err
			}
			if txmeta.Decode(txn.Metadata).PartnerID != "" {
				return CorrectionResult{}, ErrPartnersOutcome
			}
			original = &txn
		}
		for attempt := 1; ; attempt++ {
			out, err := s.correctStay(ctx, req, v, property, st, reason, current, original)
			if errors.Is(err, members.ErrFirstStayTaken) && attempt < maxStayAttempts {
				continue
			}
			return out, err
		}
	})
}

func (s *Service) correctStay(ctx context.Context, req Request, v programmes.Version, property programmes.Property, st Stay, reason string,
	current Record, original *ledger.Transaction) (CorrectionResult, error) {
	// What the outcome replaced counted for tiers: a stay's figures, from
	// its transaction, or, for a stay that posted nothing (free nights),
	// from its qualifying rows, which the correction then takes back.
	var replaced *qualifyingStay
	var takeBack []ledger.Statement
	ref := stayRef(property.ID, st.StayID)
	switch {
	case original != nil:
		if old := txmeta.Decode(original.Metadata); old.Kind == txmeta.KindStay {
			replaced = &qualifyingStay{ref: ref, completedAt: original.EffectiveAt, nights: old.Nights, points: old.QualifyingPoints}
		}
	case current.Outcome == Stayed:
		nights, points, completedAt, ok, err := s.members.StayQualifying(ctx, current.MemberNumber, ref)
		if err != nil {
			return CorrectionResult{}, err
		}
		if ok {
			replaced = &qualifyingStay{ref: ref, completedAt: completedAt, nights: nights, points: points}
			takeBack = append(takeBack, members.QualifyingStay(current.MemberNumber, ref, completedAt, -nights, -points))
		}
	}
	plan, err := s.planStay(ctx, req, v, property, st, replaced, ClaimEvent{Replaces: &current, Reason: reason})
	if err != nil {
		return CorrectionResult{}, err
	}
	if plan.post.Postings == nil {
		return CorrectionResult{}, fieldError("nights", "the corrected stay earns no points: reverse the outcome's transaction instead")
	}
	m := txmeta.Decode(plan.post.Metadata)
	m.Reason = reason
	out := CorrectionResult{Stay: StayResult{Tier: plan.member.Tier}}
	if original == nil {
		// The outcome posted nothing (a free cancellation, an exempt
		// no-show): nothing to reverse, its record is released by the stay.
		m.Description += fmt.Sprintf(", in place of the %s recorded: %s", current.Outcome, reason)
		plan.post.Metadata = m.JSON()
		plan.post.Effects = slices.Concat([]ledger.Statement{releaseRecord(current.ID)}, takeBack, plan.post.Effects)
		txn, err := s.ledger.Post(ctx, plan.post)
		if err != nil {
			return CorrectionResult{}, err
		}
		out.Stay.Transaction, out.Stay.Tier = &txn, programme.Tier(txmeta.Decode(txn.Metadata).TierAfter)
		return out, nil
	}
	om := txmeta.Decode(original.Metadata)
	replacementID := uuid.New()
	m.Corrects = original.ID.String()
	m.Description += fmt.Sprintf(", correcting %s %s: %s", om.Kind, original.ID, reason)
	rm := reversalMetadata(*original, om, reason)
	rm.CorrectedBy = replacementID.String()
	rm.Description = fmt.Sprintf("Reversal of %s %s, corrected by %s: %s", om.Kind, original.ID, replacementID, reason)
	c, err := s.ledger.Correct(ctx, ledger.CorrectRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Fingerprint: req.Fingerprint,
		TransactionID: original.ID, ReversalMetadata: rm.JSON(), ReversalEffects: reversalEffects(*original, om, false, reason),
		ReversalLots: v.LotPolicy(s.now(), false), ReplacementID: replacementID, Replacement: ledger.PostRequest{
			Kind: plan.post.Kind, EffectiveAt: plan.post.EffectiveAt, Postings: plan.post.Postings, Metadata: m.JSON(),
			Effects: plan.post.Effects, Lots: plan.post.Lots}})
	if err != nil {
		return CorrectionResult{}, err
	}
	out.Reversal, out.Stay.Transaction = &c.Reversal, &c.Replacement
	out.Stay.Tier = programme.Tier(txmeta.Decode(c.Replacement.Metadata).TierAfter)
	return out, nil
}

// replayCorrection answers the retry of a correction that committed: the
// stay that holds the booking, and the reversal it made.
func (s *Service) replayCorrection(ctx context.Context, stay ledger.Transaction) (CorrectionResult, error) {
	out := CorrectionResult{Stay: StayResult{Transaction: &stay, Tier: programme.Tier(txmeta.Decode(stay.Metadata).TierAfter)}}
	if corrects, err := uuid.Parse(txmeta.Decode(stay.Metadata).Corrects); err == nil {
		original, err := s.ledger.Transaction(ctx, corrects)
		if err != nil {
			return CorrectionResult{}, err
		}
		reversal, err := s.ledger.Transaction(ctx, original.ReversedByID)
		if err != nil {
			return CorrectionResult{}, err
		}
		out.Reversal = &reversal
	}
	return out, nil
}
