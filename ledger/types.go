// Package ledger is the double-entry points ledger: the system of record for
// every movement of loyalty points.
//
// A transaction is a set of postings whose amounts sum to zero. Amounts are
// signed whole points: a positive amount credits an account, a negative
// amount debits it. A member's points account is credit-normal (the
// programme owes the member), so earning credits it and redeeming debits it;
// the programme account a stay's points come from is debit-normal.
// Balances are reported on the account's normal side, so a member with 500
// points has a balance of 500 and the stay-points account that issued them
// shows 500 issued.
//
// Transactions and postings are append-only: a correction is a new
// transaction (a reversal or an adjustment). Every write carries the
// caller's id and an idempotency key and runs at SERIALIZABLE; a retried
// request returns the first result.
//
// Points on hold are not postings: a hold lowers an account's available
// balance (posted - held) until it is captured, released or expires.
package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
)

// Side is an account's normal side: the side its balance grows on.
type Side string

const (
	Debit  Side = "debit"
	Credit Side = "credit"
)

// Account is a ledger account. Accounts are created once and never change.
type Account struct {
	// Code names the account, e.g. "member:100000001:points" or
	// "programme:issued:stay". 1-128 characters of [A-Za-z0-9:._-].
	Code       string
	NormalSide Side
	// AllowNegative lets the balance go below zero through any posting.
	// Member accounts have it false: only kinds that may create debt
	// (penalties, hold captures, reversals) can take them below zero.
	AllowNegative bool
	// Shards spreads the stored balance over this many rows so that an
	// account touched by nearly every transaction is never one hot row.
	// 1 for accounts that may not go negative (the overdraft check needs a
	// single row to guard). At most MaxShards.
	Shards int
	// TracksLots keeps the account's positive balance as lots that expire
	// (see Lot). Only for single-row accounts: a member's points.
	TracksLots bool
}

// Kind says what a transaction is for.
type Kind string

const (
	KindEarn        Kind = "earn"
	KindRedeem      Kind = "redeem"
	KindPenalty     Kind = "penalty"
	KindHoldCapture Kind = "hold_capture"
	KindReversal    Kind = "reversal"
	KindAdjustment  Kind = "adjustment"
	KindExpiry      Kind = "expiry"
	KindTransfer    Kind = "transfer"
)

var kinds = map[Kind]bool{
	KindEarn: true, KindRedeem: true, KindPenalty: true, KindHoldCapture: true,
	KindReversal: true, KindAdjustment: true, KindExpiry: true, KindTransfer: true,
}

// MayCreateDebt reports whether transactions of this kind may take an
// account that does not allow negative balances below zero. The domain
// allows it for penalties (a no-show can leave a member in debt, repaid by
// later earning), for capturing points a hold had set aside, and for
// reversals (taking back points that were already spent). A redemption,
// an adjustment or an expiry never may.
func (k Kind) MayCreateDebt() bool {
	switch k {
	case KindPenalty, KindHoldCapture, KindReversal:
		return true
	}
	return false
}

// Posting is one leg of a transaction: a signed amount on one account.
// Positive credits the account, negative debits it.
type Posting struct {
	Account string `json:"account"`
	Amount  int64  `json:"amount"`
}

// PostRequest asks for one balanced transaction.
type PostRequest struct {
	CallerID       string
	IdempotencyKey string
	Kind           Kind
	// EffectiveAt is the business time the transaction refers to (the
	// check-out, the no-show night); RecordedAt is set by the ledger.
	EffectiveAt time.Time
	Postings    []Posting
	// Metadata is a JSON object kept with the transaction, such as the
	// calculation breakdown. Optional; at most MaxMetadataBytes.
	Metadata json.RawMessage
	// Announced, when set, is Metadata as its writer had it before
	// encoding it (the service's own type): the ledger neither reads nor
	// keeps it, and gives it to the Outbox option with the transaction
	// (Transaction.Announced), so that the announcement need not decode
	// what was just encoded. It must be what Metadata decodes to.
	Announced any
	// Effects are the service's own writes that must commit with this
	// transaction or not at all, such as a tier upgrade the transaction
	// earns. They run after the transaction is recorded, in the same
	// database transaction, and only if it is (not on a replay, not when
	// refused). At most MaxEffects. They are not part of the request's
	// identity: derive them from it.
	Effects []Statement
	// Fingerprint, when set, identifies the caller's own request for
	// idempotency instead of the fields above: a service that derives the
	// postings from state that may change (a member's tier) still answers a
	// retry of the same request with the first result. At most 64 bytes.
	Fingerprint []byte
	// Lots says how the lots this transaction opens expire; required when
	// it credits an account that tracks lots. Like Effects, it is derived
	// from the request, not part of its identity.
	Lots LotPolicy
	// CloseAccounts are single-row accounts this transaction leaves at
	// zero, with nothing on hold, and closes: from its commit they take no
	// posting or hold (AccountClosedError). Decided under the accounts'
	// locks: when the balance is not zero after the transaction (it moved
	// since the caller read it), nothing is written (NotSettledError).
	CloseAccounts []string
}

// Statement is one SQL statement with its arguments, or one row to insert.
type Statement struct {
	SQL  string
	Args []any
	// Into, when set instead of SQL, makes the statement an insert of one
	// row (Args) into a table and its columns, such as "qualifying_stays
	// (id, member_number)". A group commit writes the rows of all its
	// effects with the same Into in one statement, before its other
	// effects: such an effect must not depend on another.
	Into string
	// WithTransaction appends the transaction's id, effective time and
	// recorded time to Args, as the statement's last three parameters: an
	// effect that records the transaction need not read it back (a read
	// inside a serializable transaction takes predicate locks that make
	// concurrent inserts conflict).
	WithTransaction bool
	// Conflict, when set, is what a unique violation by this statement
	// means: the transaction fails with it and writes nothing. It lets an
	// effect claim something only if nobody has yet, and be refused by the
	// database itself, before COMMIT.
	Conflict error
}

// forTransaction is the statement with txn's parameters appended, when it
// asks for them.
func (s Statement) forTransaction(txn Transaction) Statement {
	if !s.WithTransaction {
		return s
	}
	s.Args = append(slices.Clip(s.Args), txn.ID, txn.EffectiveAt, txn.RecordedAt)
	s.WithTransaction = false
	return s
}

// Text is the statement's SQL, or the insert of its one row.
func (s Statement) Text() string {
	if s.Into == "" {
		return s.SQL
	}
	return insertRowsSQL(s.Into, 1, len(s.Args))
}

// insertRowsSQL inserts rows of columns values each into into.
func insertRowsSQL(into string, rows, columns int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + into + " VALUES ")
	for r := range rows {
		if r > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range columns {
			if c > 0 {
				sb.WriteString(", ")
			}
			sb.WriteByte('$')
			sb.WriteString(strconv.Itoa(r*columns + c + 1))
		}
		sb.WriteByte(')')
	}
	return sb.String()
}

// mergeRowInserts returns a group's effects with the row inserts of the
// same Into (and no Conflict of their own) merged into one statement each,
// first, and the other effects after, in order.
func mergeRowInserts(effects []Statement) []Statement {
	var merged, others []Statement
	var columns []int      // columns of each merged statement's rows
	at := map[string]int{} // Into -> index in merged
	for _, e := range effects {
		if e.Into == "" || e.Conflict != nil {
			others = append(others, e)
			continue
		}
		i, ok := at[e.Into]
		if !ok {
			i = len(merged)
			at[e.Into] = i
			merged = append(merged, Statement{Into: e.Into})
			columns = append(columns, 0)
		}
		merged[i].Args = append(merged[i].Args, e.Args...)
		columns[i] = len(e.Args)
	}
	for i := range merged {
		merged[i].SQL = insertRowsSQL(merged[i].Into, len(merged[i].Args)/columns[i], columns[i])
		merged[i].Into = "" // SQL says it all now
	}
	return append(merged, others...)
}

// failed names a statement's error: its Conflict for a unique violation.
func (s Statement) failed(err error) error {
	var pgErr *pgconn.PgError
	if s.Conflict != nil && errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return s.Conflict
	}
	return fmt.Errorf("effects of a transaction: %w", err)
}

// Transaction is a posted, immutable transaction.
type Transaction struct {
	ID             uuid.UUID
	Kind           Kind
	CallerID       string
	IdempotencyKey string
	EffectiveAt    time.Time
	RecordedAt     time.Time
	Postings       []Posting
	Metadata       json.RawMessage
	// ReversesID is the transaction this one reverses (uuid.Nil if none).
	ReversesID uuid.UUID
	// ReversedByID is the transaction that reversed this one, if any.
	// It is the only field that a later write can change, as seen by reads.
	ReversedByID uuid.UUID
	// BalancesAfter are the balances of the transaction's single-row
	// accounts (members) right after it, in account order. Sharded
	// accounts have none: no transaction reads their total.
	BalancesAfter []Balance
	// Lots are the moves the transaction made to the lots of accounts that
	// track them: the lots it opened, drew and gave back.
	Lots []LotMove
	// Announced is PostRequest.Announced on the transaction the Outbox
	// option is given, and nil on every other: a transaction returned or
	// read never carries it.
	Announced any
}

// Balance is an account's balance on its normal side.
type Balance struct {
	Account   string
	Posted    int64 // sum of postings
	Held      int64 // active, unexpired holds
	Available int64 // Posted - Held
	AsOf      time.Time
}

// HoldStatus is where a hold is in its life. Expiry is not a stored state:
// an active hold whose ExpiresAt has passed no longer counts.
type HoldStatus string

const (
	HoldActive   HoldStatus = "active"
	HoldCaptured HoldStatus = "captured"
	HoldReleased HoldStatus = "released"
)

// Hold is points set aside on an account.
type Hold struct {
	ID             uuid.UUID       `json:"id"`
	Account        string          `json:"account"`
	Points         int64           `json:"points"`
	CallerID       string          `json:"caller_id"`
	CreatedAt      time.Time       `json:"created_at"`
	ExpiresAt      time.Time       `json:"expires_at"`
	Status         HoldStatus      `json:"status"`
	ClosedAt       time.Time       `json:"closed_at,omitzero"`
	CaptureID      uuid.UUID       `json:"capture_transaction_id,omitzero"`
	CapturedPoints int64           `json:"captured_points,omitempty"`
	Reference      string          `json:"reference,omitempty"`
	Metadata       json.RawMessage `json:"metadata"`
	// BalanceAfter is the account's balance right after the operation that
	// returned the hold (placing or releasing it); nil on reads.
	BalanceAfter *Balance `json:"balance_after,omitempty"`
}

// Expired reports whether the hold stopped counting by time at now.
func (h Hold) Expired(now time.Time) bool {
	return h.Status == HoldActive && !now.Before(h.ExpiresAt)
}

// HoldRequest asks to set points aside on an account.
type HoldRequest struct {
	CallerID       string
	IdempotencyKey string
	Account        string
	Points         int64
	ExpiresAt      time.Time
	// Reference names what the hold is for in the caller's terms, such as
	// a stay ("stay:HOTEL1:B123"); optional, at most one active hold per
	// reference. HoldByReference finds it.
	Reference string
	Metadata  json.RawMessage
	// Effects are the service's own writes that must commit with the hold
	// or not at all, such as the event that announces it. They run in the
	// hold's database transaction once it is placed, and only then (not on
	// a replay, not when refused). At most MaxEffects; not part of the
	// request's identity. A statement that asks WithTransaction gets, as
	// its last five parameters, the hold's id, the time it was placed, and
	// the account's posted, held and available points right after (see
	// HoldEffectParameters).
	Effects []Statement
	// Fingerprint, when set, identifies the caller's own request for
	// idempotency instead of the fields above: a service that derives the
	// postings from state that may change (a member's tier) still answers a
	// retry of the same request with the first result. At most 64 bytes.
	Fingerprint []byte
}

// CaptureRequest turns all or part of an active hold into a transaction
// that moves the captured points from the held account to Destination.
// Whatever is not captured is released.
type CaptureRequest struct {
	CallerID       string
	IdempotencyKey string
	HoldID         uuid.UUID
	Points         int64 // 1..hold points
	Destination    string
	Kind           Kind // KindHoldCapture when empty
	EffectiveAt    time.Time
	Metadata       json.RawMessage
	// Effects commit with the capture or not at all (see PostRequest).
	Effects []Statement
	// Fingerprint, when set, identifies the caller's own request for
	// idempotency instead of the fields above: a service that derives the
	// postings from state that may change (a member's tier) still answers a
	// retry of the same request with the first result. At most 64 bytes.
	Fingerprint []byte
}

// ReleaseRequest gives held points back.
type ReleaseRequest struct {
	CallerID       string
	IdempotencyKey string
	HoldID         uuid.UUID
	// Effects commit with the release or not at all, as HoldRequest's do
	// with the hold: the parameters a WithTransaction statement gets are
	// the hold's id, the time it was released, and the account's balance
	// right after.
	Effects []Statement
	// Fingerprint, when set, identifies the caller's own request for
	// idempotency instead of the fields above: a service that derives the
	// postings from state that may change (a member's tier) still answers a
	// retry of the same request with the first result. At most 64 bytes.
	Fingerprint []byte
}

// ReverseRequest asks for the reversal of a posted transaction.
type ReverseRequest struct {
	CallerID       string
	IdempotencyKey string
	TransactionID  uuid.UUID
	EffectiveAt    time.Time // zero: now
	Metadata       json.RawMessage
	// Effects commit with the reversal or not at all (see PostRequest).
	Effects []Statement
	// Lots: see PostRequest. A reversal gives back the lots its original
	// drew; it opens a lot only for points beyond those.
	Lots LotPolicy
	// Fingerprint, when set, identifies the caller's own request for
	// idempotency instead of the fields above: a service that derives the
	// postings from state that may change (a member's tier) still answers a
	// retry of the same request with the first result. At most 64 bytes.
	Fingerprint []byte
}

// StatementEntry is one posting on an account, with its transaction.
type StatementEntry struct {
	TransactionID uuid.UUID
	Seq           int
	Kind          Kind
	// Amount is on the account's normal side: for a member, earning is
	// positive and redeeming negative.
	Amount      int64
	EffectiveAt time.Time
	RecordedAt  time.Time
	CallerID    string
	Metadata    json.RawMessage
	// After is the account's balance right after the transaction; nil for
	// sharded accounts.
	After *Balance
	// Lots are the transaction's moves on this account's lots.
	Lots []LotMove
}

// StatementPage is one page of a statement, newest first.
type StatementPage struct {
	Entries []StatementEntry
	// NextPageToken continues the statement; empty on the last page.
	NextPageToken string
}
