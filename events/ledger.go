package events

import (
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// PointsData is the data of every loyalty.points.* event: one member's
// side of one ledger transaction.
type PointsData struct {
	TransactionID string `json:"transaction_id"`
	MemberNumber  string `json:"member_number"`
	// Kind is what the transaction was, as GetTransaction names it in
	// snake case: stay, partner_stay, redemption, no_show, ...
	Kind string `json:"kind"`
	// Points moved on the member's account: positive earned, negative
	// taken.
	Points int64 `json:"points"`
	// Source is where the points came from or went to, by the accounts on
	// the other side (see sourceOf): stay, suggestion, goodwill,
	// adjustment, partner_award, partner_redemption, reward, no_show,
	// guarantee_capture, late_checkout, expiry, transfer; empty when none
	// is known. A reversal has the source of what it reverses.
	Source string `json:"source,omitempty"`
	// Reward is what a redemption bought (free_night, ...).
	Reward       string       `json:"reward,omitempty"`
	BalanceAfter BalanceAfter `json:"balance_after"`
	// Description and Reason are at most MaxTextBytes each.
	Description string `json:"description,omitempty"`
	Reason      string `json:"reason,omitempty"`
	PropertyID  string `json:"property_id,omitempty"`
	StayID      string `json:"stay_id,omitempty"`
	PartnerID   string `json:"partner_id,omitempty"`
	// ReversesTransactionID is the transaction a reversal reverses;
	// CorrectsTransactionID the one a correction's replacement corrects;
	// CorrectedByTransactionID, on a correction's reversal, its
	// replacement.
	ReversesTransactionID    string `json:"reverses_transaction_id,omitempty"`
	CorrectsTransactionID    string `json:"corrects_transaction_id,omitempty"`
	CorrectedByTransactionID string `json:"corrected_by_transaction_id,omitempty"`
	// ProgrammeVersion is the version of the rules that computed the
	// points (0: no rule did).
	ProgrammeVersion int `json:"programme_version,omitempty"`
	// Breakdown is why: each rule and the points it gave or took, at most
	// MaxBreakdownLines (the transaction's statement has them all).
	Breakdown []BreakdownLine `json:"breakdown,omitempty"`
	// At a partner's hotel: the rate version that priced the transaction
	// and the money its points are worth in the partner's settlement
	// (exact decimal string, in Currency).
	RateVersion int    `json:"rate_version,omitempty"`
	Money       string `json:"money_amount,omitempty"`
	Currency    string `json:"money_currency,omitempty"`
	EffectiveAt string `json:"effective_at"`
}

// BreakdownLine is one rule of a transaction's breakdown.
type BreakdownLine struct {
	Rule       string `json:"rule"`
	Points     int64  `json:"points"`
	HeldPoints int64  `json:"held_points,omitempty"`
}

// MaxBreakdownLines bounds PointsData.Breakdown.
const MaxBreakdownLines = 20

// BalanceAfter is a member's balance right after the transaction.
type BalanceAfter struct {
	Posted    int64 `json:"posted"`
	Held      int64 `json:"held"`
	Available int64 `json:"available"`
}

// pointsType is the event type of a transaction of kind k.
func pointsType(k ledger.Kind) string {
	switch k {
	case ledger.KindEarn:
		return TypePointsEarned
	case ledger.KindRedeem:
		return TypePointsRedeemed
	case ledger.KindPenalty, ledger.KindHoldCapture:
		return TypePointsPenalised
	case ledger.KindReversal:
		return TypePointsReversed
	case ledger.KindExpiry:
		return TypePointsExpired
	default: // adjustments, transfers
		return TypePointsAdjusted
	}
}

// OfTransaction announces a ledger transaction: one loyalty.points.*
// event per member whose points it moved, with the member's balance
// after it. It is the ledger's Outbox option. A transaction that moves no
// member's points (between programme accounts) announces nothing.
func OfTransaction(txn ledger.Transaction) []ledger.Statement {
	// The writer's own metadata when it gave it (ledger.PostRequest's
	// Announced); otherwise, or when decoding its JSON could read it
	// otherwise, the JSON's. Metadata the service did not write (a
	// test's, a tool's) still announces the movement, without the
	// explanation.
	meta, ok := txn.Announced.(txmeta.Metadata)
	if !ok || !sameDecoded(meta) {
		meta = txmeta.Decode(txn.Metadata)
	}
	kind := meta.Kind
	if kind == "" {
		kind = string(txn.Kind)
	}
	if txn.Kind == ledger.KindHoldCapture {
		kind = "guarantee_capture"
	}
	var breakdown []BreakdownLine
	if n := min(len(meta.Breakdown), MaxBreakdownLines); n > 0 {
		breakdown = make([]BreakdownLine, n)
		for i, l := range meta.Breakdown[:n] {
			breakdown[i] = BreakdownLine{Rule: clipTo(l.Rule, maxNameBytes), Points: l.Points, HeldPoints: l.HeldPoints}
		}
	}
	// The members' accounts in the order the postings first name them,
	// and what each moved: a transaction has a few postings.
	type move struct {
		account, member string
		points          int64
	}
	var moved []move
postings:
	for _, p := range txn.Postings {
		for i := range moved {
			if moved[i].account == p.Account {
				moved[i].points += p.Amount
				continue postings
			}
		}
		if member, ok := programme.MemberOfAccount(p.Account); ok {
			moved = append(moved, move{account: p.Account, member: member, points: p.Amount})
		}
	}
	if len(moved) == 0 {
		return nil
	}
	out := make([]ledger.Statement, 0, len(moved))
	id, typ, effectiveAt := txn.ID.String(), pointsType(txn.Kind), txn.EffectiveAt.UTC().Format(timeLayout)
	for _, mv := range moved {
		source, reward := sourceOf(txn.Postings, mv.account)
		// Every text comes from the transaction's metadata, which any
		// writer of the ledger may fill (up to ledger.MaxMetadataBytes):
		// each is bounded, so that the data always fits in MaxDataBytes.
		d := PointsData{TransactionID: id, MemberNumber: mv.member, Kind: clipTo(kind, maxNameBytes), Points: mv.points,
			Source: source, Reward: clipTo(reward, maxNameBytes), Description: clip(meta.Description), Reason: clip(meta.Reason),
			PropertyID: clipTo(meta.PropertyID, maxNameBytes), StayID: clipTo(meta.StayID, maxNameBytes), PartnerID: clipTo(meta.PartnerID, maxNameBytes),
			CorrectsTransactionID: clipTo(meta.Corrects, maxNameBytes), CorrectedByTransactionID: clipTo(meta.CorrectedBy, maxNameBytes),
			ProgrammeVersion: meta.ProgrammeVersion, Breakdown: breakdown,
			RateVersion: meta.RateVersion, Money: clipTo(meta.Money, maxNameBytes), Currency: clipTo(meta.Currency, maxNameBytes),
			EffectiveAt: effectiveAt}
		if txn.ReversesID != uuid.Nil {
			d.ReversesTransactionID = txn.ReversesID.String()
		}
		for _, b := range txn.BalancesAfter {
			if b.Account == mv.account {
				d.BalanceAfter = BalanceAfter{Posted: b.Posted, Held: b.Held, Available: b.Available}
			}
		}
		out = append(out, Row(Record{
			ID: NewID(typ, id, mv.member), Type: typ, Subject: mv.member,
			OccurredAt: txn.EffectiveAt, RecordedAt: txn.RecordedAt,
			PartnerID: d.PartnerID, PropertyID: d.PropertyID, TransactionID: txn.ID, Data: d,
		}))
	}
	return out
}

// sameDecoded says whether the texts of m that an announcement copies
// read the same from m's JSON: they do unless one is not UTF-8, which
// encoding/json writes as U+FFFD.
func sameDecoded(m txmeta.Metadata) bool {
	for _, s := range [...]string{m.Kind, m.Description, m.Reason, m.PropertyID, m.StayID, m.PartnerID,
		m.Corrects, m.CorrectedBy, m.Money, m.Currency} {
		if !utf8.ValidString(s) {
			return false
		}
	}
	for _, l := range m.Breakdown[:min(len(m.Breakdown), MaxBreakdownLines)] {
		if !utf8.ValidString(l.Rule) {
			return false
		}
	}
	return true
}

// sources name the programme accounts on the other side of a member's
// points by where the points came from or went to.
var sources = map[string]string{
	programme.AccountIssuedStay:          "stay",
	programme.AccountIssuedBookingBonus:  "stay",
	programme.AccountIssuedPromotion:     "stay",
	programme.AccountIssuedSuggestion:    "suggestion",
	programme.AccountIssuedGoodwill:      "goodwill",
	programme.AccountAdjustmentDebit:     "adjustment",
	programme.AccountPenaltyNoShow:       "no_show",
	programme.AccountPenaltyGuarantee:    "guarantee_capture",
	programme.AccountPenaltyLateCheckout: "late_checkout",
	programme.AccountBreakage:            "expiry",
}

// sourceOf is where the points of member account moved by postings came
// from or went to: the source of the account on the other side that moved
// the most points (the first of equals), and the reward of a redemption.
func sourceOf(postings []ledger.Posting, account string) (source, reward string) {
	var most int64
	for _, p := range postings {
		if p.Account == account {
			continue
		}
		amount := p.Amount
		if amount < 0 {
			amount = -amount
		}
		if amount <= most {
			continue
		}
		s, r := sourceOfAccount(p.Account)
		if s == "" {
			continue
		}
		most, source, reward = amount, s, r
	}
	return source, reward
}

func sourceOfAccount(code string) (source, reward string) {
	if s, ok := sources[code]; ok {
		return s, ""
	}
	if r, ok := strings.CutPrefix(code, programme.RedeemedAccount("")); ok {
		return "reward", r
	}
	if _, ok := programme.MemberOfAccount(code); ok {
		return "transfer", ""
	}
	if rest, ok := strings.CutPrefix(code, "partner:"); ok {
		switch {
		case strings.HasSuffix(rest, ":issued"):
			return "partner_award", ""
		case strings.HasSuffix(rest, ":redeemed"):
			return "partner_redemption", ""
		}
	}
	return "", ""
}

// timeLayout is how times appear in event data: RFC 3339 in UTC, to the
// microsecond the database keeps.
const timeLayout = "2006-01-02T15:04:05.999999Z07:00"
