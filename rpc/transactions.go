package rpc

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

var protoKinds = map[string]loyaltyv1.TransactionKind{
	txmeta.KindStay:         loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY,
	txmeta.KindNoShow:       loyaltyv1.TransactionKind_TRANSACTION_KIND_NO_SHOW,
	txmeta.KindCancellation: loyaltyv1.TransactionKind_TRANSACTION_KIND_CANCELLATION,
	txmeta.KindRedemption:   loyaltyv1.TransactionKind_TRANSACTION_KIND_REDEMPTION,
	txmeta.KindLateCheckout: loyaltyv1.TransactionKind_TRANSACTION_KIND_LATE_CHECKOUT,
	txmeta.KindAdjustment:   loyaltyv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT,
	txmeta.KindReversal:     loyaltyv1.TransactionKind_TRANSACTION_KIND_REVERSAL,
	txmeta.KindExpiry:       loyaltyv1.TransactionKind_TRANSACTION_KIND_EXPIRY,
	// A member's statement shows a partner's award and redemption as a
	// stay and a redemption.
	txmeta.KindPartnerStay:       loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY,
	txmeta.KindPartnerRedemption: loyaltyv1.TransactionKind_TRANSACTION_KIND_REDEMPTION,
}

// post records a transaction for the caller and returns it as the API
// shows it.
func (s *Server) post(ctx context.Context, key string, kind ledger.Kind, effectiveAt time.Time, postings []ledger.Posting, m txmeta.Metadata, effects ...ledger.Statement) (*loyaltyv1.Transaction, error) {
	v, err := s.rules(ctx)
	if err != nil {
		return nil, err
	}
	txn, err := s.ledger.Post(ctx, ledger.PostRequest{
		CallerID: caller(ctx).ID, IdempotencyKey: key, Kind: kind, EffectiveAt: effectiveAt,
		Postings: postings, Metadata: m.JSON(), Fingerprint: requestFingerprint(ctx),
		Lots: v.LotPolicy(effectiveAt, isActivity(kind)), Effects: effects,
	})
	if err != nil {
		return nil, err
	}
	return toProtoTransaction(txn), nil
}

// isActivity says whether a transaction of this kind is the member's own
// earning or redeeming, which under the inactivity rule keeps every lot
// alive. Penalties, expiries, reversals and admin adjustments are not.
func isActivity(kind ledger.Kind) bool { return kind == ledger.KindEarn || kind == ledger.KindRedeem }

// toProtoTransaction shows a ledger transaction from its member's side.
func toProtoTransaction(txn ledger.Transaction) *loyaltyv1.Transaction {
	m := txmeta.Decode(txn.Metadata)
	account := programme.MemberAccount(m.Member).Code
	var posted int64
	for _, p := range txn.Postings {
		if p.Account == account {
			posted += p.Amount // member accounts are credit-normal: raw is their side
		}
	}
	out := baseTransaction(txn.ID, m, posted, txn.RecordedAt, txn.CallerID)
	addLots(out, account, txn.Lots)
	for _, b := range txn.BalancesAfter {
		if b.Account == account {
			out.BalanceAfter = toProtoBalance(b)
		}
	}
	for _, p := range txn.Postings {
		out.Postings = append(out.Postings, &loyaltyv1.Posting{Account: p.Account, Amount: p.Amount})
	}
	if txn.ReversesID != uuid.Nil {
		out.ReversesTransactionId = txn.ReversesID.String()
	}
	return out
}

// statementTransaction shows one entry of a member's statement.
func statementTransaction(e ledger.StatementEntry) *loyaltyv1.Transaction {
	m := txmeta.Decode(e.Metadata)
	out := baseTransaction(e.TransactionID, m, e.Amount, e.RecordedAt, e.CallerID)
	addLots(out, programme.MemberAccount(m.Member).Code, e.Lots)
	if e.After != nil {
		out.BalanceAfter = toProtoBalance(*e.After)
	}
	if e.Kind == ledger.KindReversal && out.Kind == loyaltyv1.TransactionKind_TRANSACTION_KIND_UNSPECIFIED {
		out.Kind = loyaltyv1.TransactionKind_TRANSACTION_KIND_REVERSAL
	}
	return out
}

func baseTransaction(id uuid.UUID, m txmeta.Metadata, posted int64, recordedAt time.Time, keyID string) *loyaltyv1.Transaction {
	var held int64
	out := &loyaltyv1.Transaction{
		TransactionId:    id.String(),
		Kind:             protoKinds[m.Kind],
		MemberNumber:     m.Member,
		RecordedAt:       timestamppb.New(recordedAt),
		Description:      m.Description,
		PropertyId:       m.PropertyID,
		StayId:           m.StayID,
		RecordedByKeyId:  keyID,
		ProgrammeVersion: int32(m.ProgrammeVersion),

		CorrectsTransactionId:    m.Corrects,
		CorrectedByTransactionId: m.CorrectedBy,
	}
	for _, l := range m.Breakdown {
		out.Breakdown = append(out.Breakdown, &loyaltyv1.BreakdownLine{
			Rule: l.Rule, Description: l.Description, Points: l.Points, HeldPoints: l.HeldPoints})
		held += l.HeldPoints
	}
	// Posted points move by posted; of that, held points released by a
	// capture were not available before, so available moves by the rest.
	out.HeldPointsDelta = held
	out.AvailablePointsDelta = posted - held
	return out
}

// addLots shows the member's lot moves; an expiry, which no rule computed
// ahead, is explained by the lots it expired.
func addLots(out *loyaltyv1.Transaction, account string, moves []ledger.LotMove) {
	for _, lm := range moves {
		if lm.Account != account {
			continue
		}
		move := &loyaltyv1.LotMove{LotId: lm.Lot.String(), Points: lm.Points}
		if !lm.ExpiresAt.IsZero() {
			move.ExpiresAt = timestamppb.New(lm.ExpiresAt)
		}
		out.Lots = append(out.Lots, move)
		if out.Kind == loyaltyv1.TransactionKind_TRANSACTION_KIND_EXPIRY && lm.Points < 0 {
			out.Breakdown = append(out.Breakdown, &loyaltyv1.BreakdownLine{Rule: "expiry",
				Description: fmt.Sprintf("%d points of lot %s expired on %s", -lm.Points, lm.Lot, lm.ExpiresAt.Format(time.RFC3339)),
				Points:      lm.Points})
		}
	}
}

func toProtoBalance(b ledger.Balance) *loyaltyv1.PointsBalance {
	return &loyaltyv1.PointsBalance{PostedPoints: b.Posted, HeldPoints: b.Held, AvailablePoints: b.Available}
}
