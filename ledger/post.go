package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Post records one balanced transaction. A retry with the same caller and
// idempotency key returns the first transaction; the same key with a
// different request is IdempotencyConflictError.
func (l *Ledger) Post(ctx context.Context, req PostRequest) (Transaction, error) {
	if err := validatePost(req); err != nil {
		return Transaction{}, err
	}
	metadata, err := canonicalMetadata(req.Metadata)
	if err != nil {
		return Transaction{}, err
	}
	accounts, err := l.accountsByCode(ctx, postingAccounts(req.Postings))
	if err != nil {
		return Transaction{}, err
	}
	effectiveAt := dbTime(req.EffectiveAt)
	hash := requestHash(opPost, struct {
		Kind        Kind      `json:"kind"`
		EffectiveAt time.Time `json:"effective_at"`
		Postings    []Posting `json:"postings"`
		Metadata    any       `json:"metadata"`
	}{req.Kind, effectiveAt, req.Postings, metadata})

	shards, done := l.queue(accounts)
	defer done()
	var posted Transaction
	err = l.db.WriteTx(ctx, func(tx pgx.Tx) error {
		posted = Transaction{
			ID:             uuid.New(),
			Kind:           req.Kind,
			CallerID:       req.CallerID,
			IdempotencyKey: req.IdempotencyKey,
			EffectiveAt:    effectiveAt,
			RecordedAt:     l.clock(),
			Postings:       slices.Clone(req.Postings),
			Metadata:       metadata,
		}
		claim := &keyClaim{callerID: req.CallerID, key: req.IdempotencyKey, op: opPost, hash: hash, transactionID: posted.ID}
		return writeTransaction(ctx, tx, claim, posted, accounts, shards, nil)
	})
	if errors.Is(err, errKeyTaken) {
		return l.replayTransaction(ctx, req.CallerID, req.IdempotencyKey, opPost, hash)
	}
	if err != nil {
		return Transaction{}, fmt.Errorf("post %s transaction: %w", req.Kind, err)
	}
	return posted, nil
}

func postingAccounts(postings []Posting) []string {
	codes := make([]string, 0, len(postings))
	for _, p := range postings {
		codes = append(codes, p.Account)
	}
	return codes
}

// balanceMove is the net change a transaction makes to one account.
type balanceMove struct {
	account Account
	shard   int
	raw     int64 // credit-positive
}

// writeTransaction records txn in one round trip: it claims the idempotency
// key (when claim is not nil), inserts the transaction and its postings,
// moves each account's balance on one shard, and reads what the overdraft
// check needs; then it checks that no account went where it may not.
//
// Balance rows are updated in (account, shard) order, so transactions over
// the same accounts queue up instead of deadlocking. releasing is a hold
// whose points stop counting in this same transaction (a capture).
func writeTransaction(ctx context.Context, tx pgx.Tx, claim *keyClaim, txn Transaction, accounts map[string]Account, shards map[string]int, releasing *Hold) error {
	moves := netMoves(txn.Postings, accounts, shards)
	// Invariant: a transaction that reaches the database sums to zero.
	var sum int64
	for _, m := range moves {
		sum += m.raw
	}
	if sum != 0 {
		panic(fmt.Sprintf("ledger: transaction %s does not balance (sum %d)", txn.ID, sum))
	}

	b := &pgx.Batch{}
	if claim != nil {
		b.Queue(claimSQL, claim.args(txn.RecordedAt)...)
	}
	var reverses *uuid.UUID
	if txn.ReversesID != uuid.Nil {
		reverses = &txn.ReversesID
	}
	b.Queue(`INSERT INTO transactions
		(id, kind, caller_id, idempotency_key, effective_at, recorded_at, posting_count, reverses_id, metadata)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		txn.ID, string(txn.Kind), txn.CallerID, txn.IdempotencyKey, txn.EffectiveAt, txn.RecordedAt,
		len(txn.Postings), reverses, string(txn.Metadata))
	sqlText, args := insertPostingsSQL(txn)
	b.Queue(sqlText, args...)
	for _, m := range moves {
		b.Queue(`UPDATE account_balances SET balance = balance + $3
			WHERE account_code = $1 AND shard = $2 RETURNING balance`, m.account.Code, m.shard, m.raw)
	}
	guarded := guardedMoves(moves, txn.Kind)
	for _, m := range guarded {
		b.Queue(`SELECT COALESCE(SUM(points), 0)::INT8 FROM holds
			WHERE account_code = $1 AND status = 'active' AND expires_at > $2`, m.account.Code, txn.RecordedAt)
	}

	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if claim != nil {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		if err := claimed(tag.RowsAffected()); err != nil {
			return err
		}
	}
	if _, err := br.Exec(); err != nil {
		var pgErr *pgconn.PgError
		if txn.ReversesID != uuid.Nil && errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return errConcurrentReversal
		}
		return fmt.Errorf("insert transaction: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return fmt.Errorf("insert postings: %w", err)
	}
	newBalance := make(map[string]int64, len(moves))
	for _, m := range moves {
		var shardBalance int64
		if err := br.QueryRow().Scan(&shardBalance); err != nil {
			if isNoRows(err) {
				// Accounts are never deleted, so a cached account without a
				// balance row means the books are damaged: stop.
				return fmt.Errorf("account %s has no balance row for shard %d", m.account.Code, m.shard)
			}
			return fmt.Errorf("move balance of %s: %w", m.account.Code, err)
		}
		newBalance[m.account.Code] = shardBalance // guarded accounts have one shard: this is the balance
	}
	for _, m := range guarded {
		var held int64
		if err := br.QueryRow().Scan(&held); err != nil {
			return fmt.Errorf("read holds of %s: %w", m.account.Code, err)
		}
		if releasing != nil && releasing.Account == m.account.Code {
			held -= releasing.Points
		}
		after := m.account.normal(newBalance[m.account.Code])
		requested := -m.account.normal(m.raw)
		before := after + requested
		if after-held < 0 {
			return &InsufficientPointsError{
				Account: m.account.Code, Posted: before, Held: held, Available: before - held,
				Requested: requested, Shortfall: requested - (before - held),
			}
		}
	}
	return br.Close()
}

// errConcurrentReversal: another transaction reversed the same original
// between our check and our insert.
var errConcurrentReversal = errors.New("reversed concurrently")

// netMoves sums each account's postings, sorted by account code (the lock
// order), each on its leased shard.
func netMoves(postings []Posting, accounts map[string]Account, shards map[string]int) []balanceMove {
	byAccount := make(map[string]int64, len(postings))
	for _, p := range postings {
		byAccount[p.Account] += p.Amount
	}
	moves := make([]balanceMove, 0, len(byAccount))
	for code, raw := range byAccount {
		if raw == 0 {
			continue
		}
		moves = append(moves, balanceMove{account: accounts[code], shard: shards[code], raw: raw})
	}
	slices.SortFunc(moves, func(x, y balanceMove) int { return strings.Compare(x.account.Code, y.account.Code) })
	return moves
}

// guardedMoves are the moves the overdraft rule applies to: they take
// points from an account that may not go negative, in a kind that may not
// create debt.
func guardedMoves(moves []balanceMove, kind Kind) []balanceMove {
	if kind.MayCreateDebt() {
		return nil
	}
	var guarded []balanceMove
	for _, m := range moves {
		if !m.account.AllowNegative && m.account.normal(m.raw) < 0 {
			guarded = append(guarded, m)
		}
	}
	return guarded
}

// insertPostingsSQL is one multi-row INSERT for all of txn's postings.
func insertPostingsSQL(txn Transaction) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO postings (transaction_id, seq, account_code, amount, recorded_at) VALUES `)
	args := []any{txn.ID, txn.RecordedAt}
	for i, p := range txn.Postings {
		if i > 0 {
			sb.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&sb, "($1, %d, $%d, $%d, $2)", i, n+1, n+2)
		args = append(args, p.Account, p.Amount)
	}
	return sb.String(), args
}

// Reverse posts the opposite of a transaction, linked to it. A transaction
// is reversed at most once; a reversal is not itself reversible (post a new
// transaction instead).
func (l *Ledger) Reverse(ctx context.Context, req ReverseRequest) (Transaction, error) {
	if err := validateCaller(req.CallerID, req.IdempotencyKey); err != nil {
		return Transaction{}, err
	}
	if req.TransactionID == uuid.Nil {
		return Transaction{}, invalid("transaction_id", "is required")
	}
	if !req.EffectiveAt.IsZero() {
		if err := validateTime("effective_at", req.EffectiveAt); err != nil {
			return Transaction{}, err
		}
	}
	metadata, err := canonicalMetadata(req.Metadata)
	if err != nil {
		return Transaction{}, err
	}
	hash := requestHash(opReverse, struct {
		TransactionID uuid.UUID `json:"transaction_id"`
		EffectiveAt   time.Time `json:"effective_at"`
		Metadata      any       `json:"metadata"`
	}{req.TransactionID, dbTime(req.EffectiveAt), metadata})

	original, err := l.Transaction(ctx, req.TransactionID)
	if err != nil {
		return Transaction{}, fmt.Errorf("reverse %s: %w", req.TransactionID, err)
	}
	accounts, err := l.accountsByCode(ctx, postingAccounts(original.Postings))
	if err != nil {
		return Transaction{}, err
	}

	shards, done := l.queue(accounts)
	defer done()
	var reversal Transaction
	err = l.db.WriteTx(ctx, func(tx pgx.Tx) error {
		now := l.clock()
		reversal = Transaction{
			ID:             uuid.New(),
			Kind:           KindReversal,
			CallerID:       req.CallerID,
			IdempotencyKey: req.IdempotencyKey,
			EffectiveAt:    now,
			RecordedAt:     now,
			Postings:       make([]Posting, len(original.Postings)),
			Metadata:       metadata,
			ReversesID:     original.ID,
		}
		if !req.EffectiveAt.IsZero() {
			reversal.EffectiveAt = dbTime(req.EffectiveAt)
		}
		for i, p := range original.Postings {
			reversal.Postings[i] = Posting{Account: p.Account, Amount: -p.Amount}
		}
		claim := keyClaim{callerID: req.CallerID, key: req.IdempotencyKey, op: opReverse, hash: hash, transactionID: reversal.ID}
		tag, err := tx.Exec(ctx, claimSQL, claim.args(now)...)
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		if err := claimed(tag.RowsAffected()); err != nil {
			return err
		}
		if original.Kind == KindReversal {
			return fmt.Errorf("%w: %s is itself a reversal", ErrNotReversible, original.ID)
		}
		var reversedBy uuid.UUID
		err = tx.QueryRow(ctx, `SELECT id FROM transactions WHERE reverses_id = $1`, original.ID).Scan(&reversedBy)
		if err == nil {
			return &AlreadyReversedError{TransactionID: original.ID, ReversedByID: reversedBy}
		}
		if !isNoRows(err) {
			return fmt.Errorf("find reversal: %w", err)
		}
		return writeTransaction(ctx, tx, nil, reversal, accounts, shards, nil)
	})
	switch {
	case errors.Is(err, errKeyTaken):
		return l.replayTransaction(ctx, req.CallerID, req.IdempotencyKey, opReverse, hash)
	case errors.Is(err, errConcurrentReversal):
		t, rerr := l.Transaction(ctx, original.ID)
		if rerr != nil {
			return Transaction{}, rerr
		}
		return Transaction{}, &AlreadyReversedError{TransactionID: original.ID, ReversedByID: t.ReversedByID}
	case err != nil:
		return Transaction{}, fmt.Errorf("reverse %s: %w", req.TransactionID, err)
	}
	return reversal, nil
}
