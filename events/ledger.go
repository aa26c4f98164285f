package events

import (
	"encoding/json"
	"strings"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
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
	Points       int64        `json:"points"`
	BalanceAfter BalanceAfter `json:"balance_after"`
	Description  string       `json:"description,omitempty"`
	Reason       string       `json:"reason,omitempty"`
	PropertyID   string       `json:"property_id,omitempty"`
	StayID       string       `json:"stay_id,omitempty"`
	PartnerID    string       `json:"partner_id,omitempty"`
	// ReversesTransactionID is the transaction a reversal reverses;
	// CorrectsTransactionID the one a correction's replacement corrects.
	ReversesTransactionID string `json:"reverses_transaction_id,omitempty"`
	CorrectsTransactionID string `json:"corrects_transaction_id,omitempty"`
	EffectiveAt           string `json:"effective_at"`
}

// BalanceAfter is a member's balance right after the transaction.
type BalanceAfter struct {
	Posted    int64 `json:"posted"`
	Held      int64 `json:"held"`
	Available int64 `json:"available"`
}

const (
	memberAccountPrefix = "member:"
	memberAccountSuffix = ":points"
)

// memberOf returns the member number of a member's points account.
func memberOf(account string) (string, bool) {
	if !strings.HasPrefix(account, memberAccountPrefix) || !strings.HasSuffix(account, memberAccountSuffix) {
		return "", false
	}
	n := account[len(memberAccountPrefix) : len(account)-len(memberAccountSuffix)]
	return n, n != ""
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
	var meta txmeta.Metadata
	if len(txn.Metadata) > 0 {
		// Metadata the service did not write (a test's, a tool's) still
		// announces the movement, without the explanation.
		_ = json.Unmarshal(txn.Metadata, &meta)
	}
	kind := meta.Kind
	if kind == "" {
		kind = string(txn.Kind)
	}
	if txn.Kind == ledger.KindHoldCapture {
		kind = "guarantee_capture"
	}
	moved := map[string]int64{}
	var order []string
	for _, p := range txn.Postings {
		if _, ok := memberOf(p.Account); !ok {
			continue
		}
		if _, seen := moved[p.Account]; !seen {
			order = append(order, p.Account)
		}
		moved[p.Account] += p.Amount
	}
	var out []ledger.Statement
	for _, account := range order {
		member, _ := memberOf(account)
		typ := pointsType(txn.Kind)
		d := PointsData{TransactionID: txn.ID.String(), MemberNumber: member, Kind: kind, Points: moved[account],
			Description: meta.Description, Reason: meta.Reason, PropertyID: meta.PropertyID, StayID: meta.StayID,
			PartnerID: meta.PartnerID, CorrectsTransactionID: meta.Corrects, EffectiveAt: txn.EffectiveAt.UTC().Format(timeLayout)}
		if txn.ReversesID != uuid.Nil {
			d.ReversesTransactionID = txn.ReversesID.String()
		}
		for _, b := range txn.BalancesAfter {
			if b.Account == account {
				d.BalanceAfter = BalanceAfter{Posted: b.Posted, Held: b.Held, Available: b.Available}
			}
		}
		out = append(out, Row(Record{
			ID: NewID(typ, txn.ID.String(), member), Type: typ, Subject: member,
			OccurredAt: txn.EffectiveAt, RecordedAt: txn.RecordedAt,
			PartnerID: meta.PartnerID, PropertyID: meta.PropertyID, TransactionID: txn.ID, Data: d,
		}))
	}
	return out
}

// timeLayout is how times appear in event data: RFC 3339 in UTC, to the
// microsecond the database keeps.
const timeLayout = "2006-01-02T15:04:05.999999Z07:00"
