package rpc

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// meta is what the service keeps in a ledger transaction's metadata so that
// the transaction explains itself later: in statements, to auditors, after
// the rules have changed.
type meta struct {
	Kind        string     `json:"kind"`
	Member      string     `json:"member_number"`
	PropertyID  string     `json:"property_id,omitempty"`
	StayID      string     `json:"stay_id,omitempty"`
	Description string     `json:"description"`
	Breakdown   []metaLine `json:"breakdown"`
	Reason      string     `json:"reason,omitempty"`
	// ProgrammeVersion computed the transaction (0: no rule did).
	ProgrammeVersion int `json:"programme_version,omitempty"`
	// For a stay: what it counts for tiers, and the tier it left the
	// member at.
	Nights           int    `json:"nights,omitempty"`
	QualifyingPoints int64  `json:"qualifying_points,omitempty"`
	TierAfter        string `json:"tier_after,omitempty"`
	// At a partner's hotel: the partner, the rate version that priced the
	// transaction, the points it moved on the partner's accounts and the
	// money they are worth (points x rate, exact decimal string).
	PartnerID             string `json:"partner_id,omitempty"`
	RateVersion           int    `json:"rate_version,omitempty"`
	PartnerPointsIssued   int64  `json:"partner_points_issued,omitempty"`
	PartnerPointsRedeemed int64  `json:"partner_points_redeemed,omitempty"`
	Money                 string `json:"money_amount,omitempty"`
	Currency              string `json:"money_currency,omitempty"`
}

type metaLine struct {
	Rule        string `json:"rule"`
	Description string `json:"description"`
	Points      int64  `json:"points"`
	HeldPoints  int64  `json:"held_points,omitempty"`
}

// The kinds of meta, one per loyalty.v1.TransactionKind.
const (
	kindStay         = "stay"
	kindNoShow       = "no_show"
	kindCancellation = "cancellation"
	kindRedemption   = "redemption"
	kindLateCheckout = "late_checkout"
	kindAdjustment   = "adjustment"
	kindReversal     = "reversal"
	kindExpiry       = "expiry"
	// At a partner's hotel (AllianceService).
	kindPartnerStay       = "partner_stay"
	kindPartnerRedemption = "partner_redemption"
)

var protoKinds = map[string]loyaltyv1.TransactionKind{
	kindStay:         loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY,
	kindNoShow:       loyaltyv1.TransactionKind_TRANSACTION_KIND_NO_SHOW,
	kindCancellation: loyaltyv1.TransactionKind_TRANSACTION_KIND_CANCELLATION,
	kindRedemption:   loyaltyv1.TransactionKind_TRANSACTION_KIND_REDEMPTION,
	kindLateCheckout: loyaltyv1.TransactionKind_TRANSACTION_KIND_LATE_CHECKOUT,
	kindAdjustment:   loyaltyv1.TransactionKind_TRANSACTION_KIND_ADJUSTMENT,
	kindReversal:     loyaltyv1.TransactionKind_TRANSACTION_KIND_REVERSAL,
	kindExpiry:       loyaltyv1.TransactionKind_TRANSACTION_KIND_EXPIRY,
	// A member's statement shows a partner's award and redemption as a
	// stay and a redemption.
	kindPartnerStay:       loyaltyv1.TransactionKind_TRANSACTION_KIND_STAY,
	kindPartnerRedemption: loyaltyv1.TransactionKind_TRANSACTION_KIND_REDEMPTION,
}

func linesOf(lines []programme.Line) []metaLine {
	out := make([]metaLine, len(lines))
	for i, l := range lines {
		out[i] = metaLine{Rule: l.Rule, Description: l.Description, Points: l.Points}
	}
	return out
}

func (m meta) json() json.RawMessage {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("rpc: encode metadata: %v", err)) // plain data
	}
	return b
}

func decodeMeta(raw json.RawMessage) meta {
	var m meta
	_ = json.Unmarshal(raw, &m) // transactions posted outside the service may carry none
	return m
}

// post records a transaction for the caller and returns it as the API
// shows it.
func (s *Server) post(ctx context.Context, key string, kind ledger.Kind, effectiveAt time.Time, postings []ledger.Posting, m meta, effects ...ledger.Statement) (*loyaltyv1.Transaction, error) {
	v, err := s.rules(ctx)
	if err != nil {
		return nil, err
	}
	txn, err := s.ledger.Post(ctx, ledger.PostRequest{
		CallerID: caller(ctx).ID, IdempotencyKey: key, Kind: kind, EffectiveAt: effectiveAt,
		Postings: postings, Metadata: m.json(), Fingerprint: requestFingerprint(ctx),
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
	m := decodeMeta(txn.Metadata)
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
	m := decodeMeta(e.Metadata)
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

func baseTransaction(id uuid.UUID, m meta, posted int64, recordedAt time.Time, keyID string) *loyaltyv1.Transaction {
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
