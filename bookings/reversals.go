package bookings

import (
	"context"
	"errors"
	"fmt"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// reversalEffects are the effects that go with the reversal of a
// transaction the service recorded, as its metadata m describes it: the
// booking it recorded is freed (and, announce, the booking's event says
// so, with reason), and a stay no longer qualifies for tiers (a tier it
// earned stays until the review date, like any tier).
func reversalEffects(original ledger.Transaction, m txmeta.Metadata, announce bool, reason string) []ledger.Statement {
	var effects []ledger.Statement
	switch {
	case m.StayID != "" && announce:
		effects = append(effects, Release(original.ID, Released{MemberNumber: m.Member, PropertyID: m.PropertyID, StayID: m.StayID,
			PartnerID: m.PartnerID, Points: -memberPoints(original, m.Member), Reason: reason}))
	case m.StayID != "":
		effects = append(effects, releaseQuietly(original.ID))
	}
	if m.Kind == txmeta.KindStay {
		effects = append(effects, members.QualifyingStay(m.Member, stayRef(m.PropertyID, m.StayID), original.EffectiveAt, -m.Nights, -m.QualifyingPoints))
	}
	return effects
}

// memberPoints are the points txn moved on member's account.
func memberPoints(txn ledger.Transaction, member string) int64 {
	var posted int64
	for _, p := range txn.Postings {
		if p.Account == programme.MemberAccount(member).Code {
			posted += p.Amount
		}
	}
	return posted
}

// Reverse reverses a transaction the service recorded, with its effects
// (reversalEffects), for reason.
func (s *Service) Reverse(ctx context.Context, req Request, v programmes.Version, original ledger.Transaction, reason string) (ledger.Transaction, error) {
	return answerRetry(ctx, s, req, nil, func(ctx context.Context) (ledger.Transaction, error) {
		om := txmeta.Decode(original.Metadata)
		if err := s.refuseClosed(ctx, om.Member); err != nil {
			return ledger.Transaction{}, err
		}
		m := reversalMetadata(original, om, reason)
		m.Description = fmt.Sprintf("Reversal of %s %s: %s", om.Kind, original.ID, reason)
		return s.ledger.Reverse(ctx, ledger.ReverseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey,
			TransactionID: original.ID, Metadata: m.JSON(), Fingerprint: req.Fingerprint, Effects: reversalEffects(original, om, true, reason),
			Lots: v.LotPolicy(s.now(), false)})
	})
}

// reversalMetadata explains the reversal of original (whose metadata is
// om) from its member's side: the points it takes back, and why.
func reversalMetadata(original ledger.Transaction, om txmeta.Metadata, reason string) txmeta.Metadata {
	posted := memberPoints(original, om.Member)
	return txmeta.Metadata{Kind: txmeta.KindReversal, Member: om.Member, PropertyID: om.PropertyID, StayID: om.StayID, Reason: reason,
		Breakdown: []txmeta.Line{{Rule: "reversal", Description: "Reverses " + original.ID.String(), Points: -posted}}}
}

// refuseClosed is members.ErrClosed when number is a closed member: a
// reversal would move points of a membership whose balance was settled.
// The writes that read their member first are refused by that read.
func (s *Service) refuseClosed(ctx context.Context, number string) error {
	if number == "" {
		return nil
	}
	if _, err := s.members.Get(ctx, number); errors.Is(err, members.ErrClosed) {
		return err
	}
	return nil
}
