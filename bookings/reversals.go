package bookings

import (
	"context"
	"fmt"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// ReversalEffects are the effects that go with the reversal of a
// transaction the service recorded, as its metadata m describes it: the
// booking it recorded is freed, and a stay no longer qualifies for tiers
// (a tier it earned stays until the review date, like any tier).
func ReversalEffects(original ledger.Transaction, m txmeta.Metadata) []ledger.Statement {
	var effects []ledger.Statement
	if m.StayID != "" {
		effects = append(effects, Release(original.ID))
	}
	if m.Kind == txmeta.KindStay {
		effects = append(effects, members.QualifyingStay(m.Member, StayRef(m.PropertyID, m.StayID), original.EffectiveAt, -m.Nights, -m.QualifyingPoints))
	}
	return effects
}

// Reverse reverses a transaction the service recorded, with its effects
// (ReversalEffects), for reason.
func (s *Service) Reverse(ctx context.Context, req Request, v programmes.Version, original ledger.Transaction, reason string) (ledger.Transaction, error) {
	om := txmeta.Decode(original.Metadata)
	var posted int64
	for _, p := range original.Postings {
		if p.Account == programme.MemberAccount(om.Member).Code {
			posted += p.Amount
		}
	}
	m := txmeta.Metadata{Kind: txmeta.KindReversal, Member: om.Member, PropertyID: om.PropertyID, StayID: om.StayID, Reason: reason,
		Description: fmt.Sprintf("Reversal of %s %s: %s", om.Kind, original.ID, reason),
		Breakdown:   []txmeta.Line{{Rule: "reversal", Description: "Reverses " + original.ID.String(), Points: -posted}}}
	return s.ledger.Reverse(ctx, ledger.ReverseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey,
		TransactionID: original.ID, Metadata: m.JSON(), Fingerprint: req.Fingerprint, Effects: ReversalEffects(original, om),
		Lots: v.LotPolicy(s.now(), false)})
}
