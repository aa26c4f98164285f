// Package txmeta is what the service keeps in a ledger transaction's
// metadata so that the transaction explains itself later: in statements,
// to auditors, after the rules have changed. The application services
// write it; the API reads it back to show a transaction.
package txmeta

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/loyalty-ledger/loyalty/programme"
)

// Metadata is a transaction's explanation.
type Metadata struct {
	Kind        string `json:"kind"`
	Member      string `json:"member_number"`
	PropertyID  string `json:"property_id,omitempty"`
	StayID      string `json:"stay_id,omitempty"`
	Description string `json:"description"`
	Breakdown   []Line `json:"breakdown"`
	Reason      string `json:"reason,omitempty"`
	// A correction links both ways: the replacement names the transaction
	// it corrects, the reversal of that transaction names its replacement.
	Corrects    string `json:"corrects,omitempty"`
	CorrectedBy string `json:"corrected_by,omitempty"`
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
	// TierPriced is the member's tier that priced a partner's stay (the
	// tier at its arrival): a replay answers it, whatever the tier history
	// says by then.
	TierPriced string `json:"tier_priced,omitempty"`
	Money      string `json:"money_amount,omitempty"`
	Currency   string `json:"money_currency,omitempty"`
}

// Line is one line of a breakdown: a rule and the points it gave or took
// (HeldPoints: the points on hold it moved).
type Line struct {
	Rule        string `json:"rule"`
	Description string `json:"description"`
	Points      int64  `json:"points"`
	HeldPoints  int64  `json:"held_points,omitempty"`
}

// The kinds of Metadata, one per loyalty.v1.TransactionKind.
const (
	KindStay         = "stay"
	KindNoShow       = "no_show"
	KindCancellation = "cancellation"
	KindRedemption   = "redemption"
	KindLateCheckout = "late_checkout"
	KindAdjustment   = "adjustment"
	KindReversal     = "reversal"
	KindExpiry       = "expiry"
	// At a partner's hotel (AllianceService).
	KindPartnerStay       = "partner_stay"
	KindPartnerRedemption = "partner_redemption"
)

// LinesOf is a rule's breakdown as Metadata keeps it.
func LinesOf(lines []programme.Line) []Line {
	out := make([]Line, len(lines))
	for i, l := range lines {
		out[i] = Line{Rule: l.Rule, Description: l.Description, Points: l.Points}
	}
	return out
}

// JSON is the metadata as the ledger keeps it.
func (m Metadata) JSON() json.RawMessage {
	b, err := json.Marshal(m)
	if err != nil {
		panic(fmt.Sprintf("txmeta: encode metadata: %v", err)) // plain data
	}
	return b
}

// Decode reads a transaction's metadata; one posted outside the service
// may carry none, and reads as empty.
func Decode(raw json.RawMessage) Metadata {
	if m, ok := decodeFast(raw); ok {
		return m
	}
	var m Metadata
	_ = json.Unmarshal(raw, &m)
	return m
}

// erasedPrefix and erasedSuffix frame what is left of a string erased when
// a membership closed: the SHA-256 of the string, which the finance seals
// (encoding 2) commit to in place of the string.
const (
	erasedPrefix = "[erased sha256:"
	erasedSuffix = "]"
)

// Erased is what a string of a transaction's metadata that held personal
// data becomes when its member's membership closes.
func Erased(s string) string {
	if _, ok := ErasedHash(s); ok {
		return s // erased already
	}
	sum := sha256.Sum256([]byte(s))
	return erasedPrefix + hex.EncodeToString(sum[:]) + erasedSuffix
}

// ErasedHash is the hex SHA-256 an erased string (Erased) carries; false
// for any other string.
func ErasedHash(s string) (string, bool) {
	rest, ok := strings.CutPrefix(s, erasedPrefix)
	if !ok {
		return "", false
	}
	h, ok := strings.CutSuffix(rest, erasedSuffix)
	if !ok || len(h) != 2*sha256.Size || strings.Trim(h, "0123456789abcdef") != "" {
		return "", false
	}
	return h, true
}
