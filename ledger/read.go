package ledger

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/internal/pagetoken"
)

// Transaction returns a posted transaction with its postings.
func (l *Ledger) Transaction(ctx context.Context, id uuid.UUID) (Transaction, error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT t.kind, t.caller_id, t.idempotency_key, t.effective_at, t.recorded_at, t.reverses_id, t.metadata, t.lots,
			(SELECT r.id FROM transactions r WHERE r.reverses_id = t.id)
		FROM transactions t WHERE t.id = $1`, id)
	b.Queue(`SELECT account_code, amount, balance_after, held_after FROM postings WHERE transaction_id = $1 ORDER BY seq`, id)
	br := l.db.Pool.SendBatch(ctx, b)
	defer br.Close()

	t := Transaction{ID: id}
	var kind string
	var reverses, reversedBy *uuid.UUID
	var metadata, lots []byte
	err := br.QueryRow().Scan(&kind, &t.CallerID, &t.IdempotencyKey, &t.EffectiveAt, &t.RecordedAt, &reverses, &metadata, &lots, &reversedBy)
	if isNoRows(err) {
		return Transaction{}, fmt.Errorf("transaction %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Transaction{}, fmt.Errorf("read transaction %s: %w", id, err)
	}
	t.Kind = Kind(kind)
	t.EffectiveAt, t.RecordedAt = t.EffectiveAt.UTC(), t.RecordedAt.UTC()
	if reverses != nil {
		t.ReversesID = *reverses
	}
	if reversedBy != nil {
		t.ReversedByID = *reversedBy
	}
	if t.Metadata, err = canonicalMetadata(metadata); err != nil {
		return Transaction{}, fmt.Errorf("read transaction %s: %w", id, err)
	}
	if t.Lots, err = decodeLotMoves(lots); err != nil {
		return Transaction{}, fmt.Errorf("read transaction %s: %w", id, err)
	}
	rows, err := br.Query()
	if err != nil {
		return Transaction{}, fmt.Errorf("read postings of %s: %w", id, err)
	}
	after := map[string]Balance{}
	for rows.Next() {
		var p Posting
		var raw, held *int64
		if err := rows.Scan(&p.Account, &p.Amount, &raw, &held); err != nil {
			return Transaction{}, fmt.Errorf("read postings of %s: %w", id, err)
		}
		t.Postings = append(t.Postings, p)
		if raw != nil && held != nil {
			after[p.Account] = Balance{Account: p.Account, Posted: *raw, Held: *held}
		}
	}
	if err := rows.Err(); err != nil {
		return Transaction{}, fmt.Errorf("read postings of %s: %w", id, err)
	}
	// Give the connection back before looking accounts up, which may need
	// one: holding one while waiting for another can starve the pool.
	if err := br.Close(); err != nil {
		return Transaction{}, fmt.Errorf("read transaction %s: %w", id, err)
	}
	if len(after) > 0 {
		codes := make([]string, 0, len(after))
		for code := range after {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		accounts, err := l.accountsByCode(ctx, codes)
		if err != nil {
			return Transaction{}, err
		}
		for _, code := range codes {
			b := after[code]
			b.Posted = accounts[code].normal(b.Posted)
			b.Available, b.AsOf = b.Posted-b.Held, t.RecordedAt
			t.BalancesAfter = append(t.BalancesAfter, b)
		}
	}
	return t, nil
}

// Balance returns an account's balance now. Posted and held are read in
// one statement, so they belong to the same moment.
func (l *Ledger) Balance(ctx context.Context, code string) (Balance, error) {
	account, err := l.Account(ctx, code)
	if err != nil {
		return Balance{}, err
	}
	now := l.clock()
	var raw, held int64
	err = l.db.Pool.QueryRow(ctx, `SELECT
			(SELECT COALESCE(SUM(balance), 0)::INT8 FROM account_balances WHERE account_code = $1),
			COALESCE((SELECT `+heldSQL("b", "$2")+` FROM account_balances AS b
			 WHERE b.account_code = $1 AND b.shard = 0), 0)`,
		code, now).Scan(&raw, &held)
	if err != nil {
		return Balance{}, fmt.Errorf("read balance of %s: %w", code, err)
	}
	posted := account.normal(raw)
	return Balance{Account: code, Posted: posted, Held: held, Available: posted - held, AsOf: now}, nil
}

// QueueHoldings queues on b the read of a single-row account's balance
// (as Balance gives it) and open lots (as Lots gives them), and returns
// what reads the result once b is sent: one statement a caller can send
// with its own reads, such as a member's profile, in one round trip.
func (l *Ledger) QueueHoldings(b *pgx.Batch, account Account) func(pgx.BatchResults) (Balance, []Lot, error) {
	now := l.clock()
	b.Queue(`SELECT b.balance, `+heldSQL("b", "$2")+`, b.lots FROM account_balances AS b
		WHERE b.account_code = $1 AND b.shard = 0`, account.Code, now)
	return func(br pgx.BatchResults) (Balance, []Lot, error) {
		var raw, held int64
		var lots []byte
		err := br.QueryRow().Scan(&raw, &held, &lots)
		if isNoRows(err) {
			return Balance{}, nil, &UnknownAccountError{Account: account.Code}
		}
		if err != nil {
			return Balance{}, nil, fmt.Errorf("read holdings of %s: %w", account.Code, err)
		}
		if account.Shards != 1 {
			return Balance{}, nil, invalid("account", "%s is spread over %d shards; holdings are read for single-row accounts", account.Code, account.Shards)
		}
		open, err := decodeLots(account.Code, lots)
		if err != nil {
			return Balance{}, nil, err
		}
		posted := account.normal(raw)
		return Balance{Account: account.Code, Posted: posted, Held: held, Available: posted - held, AsOf: now}, open, nil
	}
}

// balanceAtSQL reads account $1's raw balance and points on hold as they
// stood at $2: the postings recorded by then and the holds counting then.
const balanceAtSQL = `SELECT
	(SELECT COALESCE(SUM(amount), 0)::INT8 FROM postings
		WHERE account_code = $1 AND recorded_at <= $2),
	(SELECT COALESCE(SUM(points), 0)::INT8 FROM holds
		WHERE account_code = $1 AND created_at <= $2 AND expires_at > $2
		AND (closed_at IS NULL OR closed_at > $2))`

// statementSQL selects an account's postings with their transactions, the
// columns scanEntry reads; the caller adds the conditions on $1, the
// account, and the order.
const statementSQL = `SELECT p.transaction_id, p.seq, p.amount, p.recorded_at, p.balance_after, p.held_after,
		t.kind, t.effective_at, t.caller_id, t.metadata, t.lots
	FROM postings p JOIN transactions t ON t.id = p.transaction_id
	WHERE p.account_code = $1`

// BalanceAt returns an account's balance as it stood at a past time: the
// postings recorded by then and the holds that were counting then.
func (l *Ledger) BalanceAt(ctx context.Context, code string, at time.Time) (Balance, error) {
	account, err := l.Account(ctx, code)
	if err != nil {
		return Balance{}, err
	}
	at = dbTime(at)
	var raw, held int64
	err = l.db.Pool.QueryRow(ctx, balanceAtSQL, code, at).Scan(&raw, &held)
	if err != nil {
		return Balance{}, fmt.Errorf("read balance of %s at %s: %w", code, at.Format(time.RFC3339), err)
	}
	posted := account.normal(raw)
	return Balance{Account: code, Posted: posted, Held: held, Available: posted - held, AsOf: at}, nil
}

// Statement returns one page of an account's postings, newest first.
// pageSize 0 means DefaultPageSize; more than MaxPageSize is an error.
// pageToken is empty for the first page, then the previous page's
// NextPageToken.
func (l *Ledger) Statement(ctx context.Context, code string, pageSize int, pageToken string) (StatementPage, error) {
	if pageSize < 0 || pageSize > MaxPageSize {
		return StatementPage{}, invalid("page_size", "must be between 0 and %d, got %d", MaxPageSize, pageSize)
	}
	if pageSize == 0 {
		pageSize = DefaultPageSize
	}
	after, err := decodeCursor(code, pageToken)
	if err != nil {
		return StatementPage{}, err
	}
	account, err := l.Account(ctx, code)
	if err != nil {
		return StatementPage{}, err
	}
	query := statementSQL
	args := []any{code, pageSize + 1}
	if after != nil {
		query += ` AND (p.recorded_at, p.transaction_id, p.seq) < ($3, $4, $5)`
		args = append(args, after.recordedAt, after.transactionID, after.seq)
	}
	query += ` ORDER BY p.recorded_at DESC, p.transaction_id DESC, p.seq DESC LIMIT $2`
	rows, err := l.db.Pool.Query(ctx, query, args...)
	if err != nil {
		return StatementPage{}, fmt.Errorf("read statement of %s: %w", code, err)
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatementEntry, error) { return scanEntry(r, account) })
	if err != nil {
		return StatementPage{}, fmt.Errorf("read statement of %s: %w", code, err)
	}
	page := StatementPage{Entries: entries}
	if len(entries) > pageSize {
		page.Entries = entries[:pageSize]
		last := page.Entries[pageSize-1]
		page.NextPageToken = encodeCursor(code, cursor{recordedAt: last.RecordedAt, transactionID: last.TransactionID, seq: last.Seq})
	}
	return page, nil
}

// cursor is the position of the last entry of a statement page, in the
// statement of one account.
type cursor struct {
	recordedAt    time.Time
	transactionID uuid.UUID
	seq           int
}

// cursorLen is an encoded cursor's length; the token seals it to its
// account (pagetoken).
const cursorLen = 8 + 16 + 4

func encodeCursor(code string, c cursor) string {
	buf := make([]byte, 0, cursorLen)
	buf = binary.BigEndian.AppendUint64(buf, uint64(c.recordedAt.UnixMicro()))
	buf = append(buf, c.transactionID[:]...)
	buf = binary.BigEndian.AppendUint32(buf, uint32(c.seq))
	return pagetoken.Seal(buf, code)
}

// decodeCursor reads a token of code's statement.
func decodeCursor(code, token string) (*cursor, error) {
	if token == "" {
		return nil, nil
	}
	buf, err := pagetoken.Open(token, code, cursorLen)
	if errors.Is(err, pagetoken.ErrOtherScope) {
		return nil, invalid("page_token", "is a token of another member's or account's statement: give the member_number of the request that returned it, or no token")
	}
	if err != nil {
		return nil, invalid("page_token", "is not a token this service issued")
	}
	c := &cursor{recordedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(buf[:8]))).UTC()}
	copy(c.transactionID[:], buf[8:24])
	c.seq = int(binary.BigEndian.Uint32(buf[24:]))
	return c, nil
}
