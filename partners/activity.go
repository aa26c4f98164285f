package partners

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/ledger"
)

// Kind is what a transaction at a partner's hotel is.
type Kind string

const (
	KindAward      Kind = "award"
	KindRedemption Kind = "redemption"
	KindReversal   Kind = "reversal"
)

// Entry is a ledger transaction at a partner's hotel as the partner's
// settlement counts it.
type Entry struct {
	TransactionID uuid.UUID
	PartnerID     string
	PropertyID    string
	Kind          Kind
	MemberNumber  string
	StayID        string
	// RateVersion priced it; a reversal keeps its original's.
	RateVersion int
	// Signed: a reversal's are the opposite of its original's.
	PointsIssued   int64
	PointsRedeemed int64
	// Amount is points x rate, exact, in the settlement currency.
	Amount      decimal.Decimal
	ReversesID  uuid.UUID
	EffectiveAt time.Time
	RecordedAt  time.Time
}

// Amount is the money a transaction moves at rates r: issued points x the
// issue rate (owed to the programme) plus redeemed points x the
// reimbursement rate (owed to the partner); a transaction has one or the
// other. Exact.
func Amount(r Rates, pointsIssued, pointsRedeemed int64) decimal.Decimal {
	return r.IssueRate.Mul(decimal.NewFromInt(pointsIssued)).Add(r.ReimbursementRate.Mul(decimal.NewFromInt(pointsRedeemed)))
}

// Record is the ledger effect that indexes a transaction at a partner's
// hotel: it commits with the transaction or not at all (ledger
// PostRequest.Effects). The ledger gives the row its transaction's own id
// and times (Statement.WithTransaction); TransactionID, EffectiveAt and
// RecordedAt of e are ignored.
func Record(e Entry) ledger.Statement {
	var reverses *uuid.UUID
	if e.ReversesID != uuid.Nil {
		reverses = &e.ReversesID
	}
	return ledger.Statement{
		Into: `partner_transactions (partner_id, property_id, kind, member_number, stay_id, rate_version,
			points_issued, points_redeemed, amount, reverses_id, transaction_id, effective_at, recorded_at)`,
		Args: []any{e.PartnerID, e.PropertyID, string(e.Kind), e.MemberNumber, e.StayID,
			e.RateVersion, e.PointsIssued, e.PointsRedeemed, e.Amount.String(), reverses},
		WithTransaction: true,
	}
}

const entrySelect = `SELECT transaction_id, partner_id, property_id, kind, member_number, stay_id, rate_version,
	points_issued, points_redeemed, amount::TEXT, reverses_id, effective_at, recorded_at FROM partner_transactions`

func scanEntry(row pgx.Row) (Entry, error) {
	var e Entry
	var amount string
	var reverses *uuid.UUID
	err := row.Scan(&e.TransactionID, &e.PartnerID, &e.PropertyID, &e.Kind, &e.MemberNumber, &e.StayID, &e.RateVersion,
		&e.PointsIssued, &e.PointsRedeemed, &amount, &reverses, &e.EffectiveAt, &e.RecordedAt)
	if err != nil {
		return Entry{}, err
	}
	if e.Amount, err = decimal.NewFromString(amount); err != nil {
		return Entry{}, fmt.Errorf("amount %q: %w", amount, err)
	}
	if reverses != nil {
		e.ReversesID = *reverses
	}
	e.EffectiveAt, e.RecordedAt = e.EffectiveAt.UTC(), e.RecordedAt.UTC()
	return e, nil
}

// Transaction returns one of the partner's transactions. Another
// partner's transaction, a transaction at the programme's own hotels and
// no transaction at all are the same ErrNotFound.
func (s *Store) Transaction(ctx context.Context, partnerID string, id uuid.UUID) (Entry, error) {
	e, err := scanEntry(s.db.Pool.QueryRow(ctx, entrySelect+` WHERE transaction_id = $1 AND partner_id = $2`, id, partnerID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("read partner transaction %s: %w", id, err)
	}
	return e, nil
}

// Activity limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// ActivityQuery selects a partner's transactions.
type ActivityQuery struct {
	// From (inclusive) and To (exclusive) bound the effective time; zero:
	// unbounded.
	From, To time.Time
	// ByRecorded: From and To bound the recording time instead, (From, To]
	// as Settlement counts it, and the newest recorded come first.
	ByRecorded bool
	// PropertyID, when set, keeps one property's transactions.
	PropertyID string
	PageSize   int
	PageToken  string
}

type activityCursor struct {
	// EffectiveAt is the last row's time: its recording time when Recorded.
	EffectiveAt time.Time `json:"t"`
	ID          uuid.UUID `json:"id"`
	Recorded    bool      `json:"r,omitempty"`
}

// Activity returns a page of the partner's transactions, newest effective
// (or, ByRecorded, recording) time first, and the token of the next page
// (empty on the last).
func (s *Store) Activity(ctx context.Context, partnerID string, q ActivityQuery) ([]Entry, string, error) {
	if q.PageSize == 0 {
		q.PageSize = DefaultPageSize
	}
	if q.PageSize < 1 || q.PageSize > MaxPageSize {
		return nil, "", fieldError("page_size", fmt.Sprintf("must be 1 to %d", MaxPageSize))
	}
	var sb strings.Builder
	sb.WriteString(entrySelect + ` WHERE partner_id = $1`)
	args := []any{partnerID}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	column, after, upTo := "effective_at", " >= ", " < "
	if q.ByRecorded {
		column, after, upTo = "recorded_at", " > ", " <= "
	}
	if !q.From.IsZero() {
		sb.WriteString(` AND ` + column + after + arg(q.From.UTC()))
	}
	if !q.To.IsZero() {
		sb.WriteString(` AND ` + column + upTo + arg(q.To.UTC()))
	}
	if q.PropertyID != "" {
		sb.WriteString(` AND property_id = ` + arg(q.PropertyID))
	}
	if q.PageToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.PageToken)
		var c activityCursor
		if err != nil || len(raw) > 200 || json.Unmarshal(raw, &c) != nil || c.ID == uuid.Nil {
			return nil, "", fieldError("page_token", "is not a token this service returned")
		}
		if c.Recorded != q.ByRecorded {
			return nil, "", fieldError("page_token", "is a page of the other time basis: send by_recorded_time as the first page did")
		}
		t, id := arg(c.EffectiveAt), arg(c.ID)
		sb.WriteString(` AND (` + column + ` < ` + t + ` OR (` + column + ` = ` + t + ` AND transaction_id < ` + id + `))`)
	}
	sb.WriteString(` ORDER BY ` + column + ` DESC, transaction_id DESC LIMIT ` + arg(q.PageSize+1))
	rows, err := s.db.Pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, "", fmt.Errorf("partner activity: %w", err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) { return scanEntry(r) })
	if err != nil {
		return nil, "", fmt.Errorf("partner activity: %w", err)
	}
	next := ""
	if len(entries) > q.PageSize {
		entries = entries[:q.PageSize]
		last := entries[len(entries)-1]
		at := last.EffectiveAt
		if q.ByRecorded {
			at = last.RecordedAt
		}
		raw, _ := json.Marshal(activityCursor{EffectiveAt: at, ID: last.TransactionID, Recorded: q.ByRecorded})
		next = base64.RawURLEncoding.EncodeToString(raw)
	}
	return entries, next, nil
}
