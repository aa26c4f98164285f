package ledger

import (
	"context"
	"encoding/json"
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
	metadata, err := postMetadata(req)
	if err != nil {
		return Transaction{}, err
	}
	accounts, err := l.accountsByCode(ctx, postingAccounts(req.Postings))
	if err != nil {
		return Transaction{}, err
	}
	if err := checkLotPolicy(req.Postings, accounts, req.Lots); err != nil {
		return Transaction{}, err
	}
	for _, code := range req.CloseAccounts {
		// Only an account the transaction moves is locked, and only a
		// single-row one has one balance to find at zero.
		if a, ok := accounts[code]; !ok || a.Shards != 1 {
			return Transaction{}, invalid("close_accounts", "%s is not a single-row account this transaction posts to", code)
		}
	}
	effectiveAt := dbTime(req.EffectiveAt)
	// A caller's fingerprint stands for the whole request: hashing the
	// postings too would be work thrown away.
	hash := fingerprinted(opPost, req.Fingerprint, nil)
	if len(req.Fingerprint) == 0 {
		hash = requestHash(opPost, struct {
			Kind        Kind      `json:"kind"`
			EffectiveAt time.Time `json:"effective_at"`
			Postings    []Posting `json:"postings"`
			Metadata    any       `json:"metadata"`
		}{req.Kind, effectiveAt, req.Postings, metadata})
	}

	job := &postJob{req: req, metadata: metadata, hash: hash, effectiveAt: effectiveAt, accounts: accounts,
		done: make(chan postResult, 1)}
	l.submit(job)
	var r postResult
	select {
	case r = <-job.done:
	case <-ctx.Done():
		// The group may still commit: a retry with the same key will tell.
		return Transaction{}, fmt.Errorf("post %s transaction: outcome unknown, retry with the same idempotency key: %w", req.Kind, ctx.Err())
	}
	if r.replay {
		return l.replayTransaction(ctx, req.CallerID, req.IdempotencyKey, opPost, hash)
	}
	if r.err != nil {
		return Transaction{}, fmt.Errorf("post %s transaction: %w", req.Kind, r.err)
	}
	return r.txn, nil
}

// postMetadata checks a request's metadata. Its canonical form (keys
// sorted) is only needed to hash the request; a request whose caller's
// fingerprint stands for it keeps the caller's bytes, once checked.
func postMetadata(req PostRequest) (json.RawMessage, error) {
	if len(req.Fingerprint) == 0 {
		return canonicalMetadata(req.Metadata)
	}
	return checkMetadata(req.Metadata)
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

// writeTransaction records one transaction of a caller that has claimed
// its key already (a reversal, a capture), in one round trip: it moves each
// account's balance on one shard, inserts the transaction and its postings,
// and reads back each single-row account's balance and held points after
// the move; then it checks that no account went where it may not. It
// returns the balances after. Post writes through the group committer.
//
// Balance rows are updated in (account, shard) order, so transactions over
// the same accounts queue up instead of deadlocking.
func writeTransaction(ctx context.Context, tx pgx.Tx, txn *Transaction, accounts map[string]Account, shards map[string]int, lots lotInput) error {
	moves := netMoves(txn.Postings, accounts, shards)
	// Invariant: a transaction that reaches the database sums to zero.
	if err := checkBalanced(*txn, moves); err != nil {
		panic(err.Error())
	}
	book, err := playTransactionLots(ctx, tx, txn, moves, lots)
	if err != nil {
		return err
	}

	b := &pgx.Batch{}
	for _, m := range moves {
		if lots, ok := book[m.account.Code]; ok {
			b.Queue(`UPDATE account_balances SET balance = balance + $3, lots = $4, next_lot_expiry = $5
				WHERE account_code = $1 AND shard = $2`,
				m.account.Code, m.shard, m.raw, string(encodeLots(lots)), nextExpiry(lots))
			continue
		}
		b.Queue(`UPDATE account_balances SET balance = balance + $3 WHERE account_code = $1 AND shard = $2`,
			m.account.Code, m.shard, m.raw)
	}
	var reverses *uuid.UUID
	if txn.ReversesID != uuid.Nil {
		reverses = &txn.ReversesID
	}
	b.Queue(`INSERT INTO transactions
		(id, kind, caller_id, idempotency_key, effective_at, recorded_at, posting_count, reverses_id, metadata, lots)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		txn.ID, string(txn.Kind), txn.CallerID, txn.IdempotencyKey, txn.EffectiveAt, txn.RecordedAt,
		len(txn.Postings), reverses, string(txn.Metadata), encodeLotMoves(txn.Lots))
	sqlText, args := insertPostingsSQL(*txn, accounts)
	b.Queue(sqlText, args...)

	br := tx.SendBatch(ctx, b)
	defer br.Close()
	for _, m := range moves {
		tag, err := br.Exec()
		if err != nil {
			return fmt.Errorf("move balance of %s: %w", m.account.Code, err)
		}
		if tag.RowsAffected() != 1 {
			// Accounts are never deleted, so a known account without its
			// balance row means the books are damaged: stop.
			return fmt.Errorf("account %s has no balance row for shard %d", m.account.Code, m.shard)
		}
	}
	if _, err := br.Exec(); err != nil {
		var pgErr *pgconn.PgError
		if txn.ReversesID != uuid.Nil && errors.As(err, &pgErr) && pgErr.Code == "23505" {
			return errConcurrentReversal
		}
		return fmt.Errorf("insert transaction: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return fmt.Errorf("insert postings: %w", err)
	}
	after := map[string]Balance{}
	for rows.Next() {
		var code string
		var raw, held *int64
		if err := rows.Scan(&code, &raw, &held); err != nil {
			return fmt.Errorf("insert postings: %w", err)
		}
		if raw != nil && held != nil {
			posted := accounts[code].normal(*raw)
			after[code] = Balance{Account: code, Posted: posted, Held: *held, Available: posted - *held, AsOf: txn.RecordedAt}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("insert postings: %w", err)
	}
	for _, m := range guardedMoves(moves, txn.Kind) {
		bal := after[m.account.Code]
		if bal.Available < 0 {
			requested := -m.account.normal(m.raw)
			before := bal.Posted + requested
			return &InsufficientPointsError{
				Account: m.account.Code, Posted: before, Held: bal.Held, Available: before - bal.Held,
				Requested: requested, Shortfall: requested - (before - bal.Held),
			}
		}
	}
	txn.BalancesAfter = make([]Balance, 0, len(after))
	for _, m := range moves { // in account order
		if bal, ok := after[m.account.Code]; ok {
			txn.BalancesAfter = append(txn.BalancesAfter, bal)
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

// insertPostingsSQL is one multi-row INSERT for all of txn's postings. For
// a single-row account it reads the balance and held points after the move
// (this transaction's own update is visible to it) and keeps them with the
// posting.
func insertPostingsSQL(txn Transaction, accounts map[string]Account) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO postings (transaction_id, seq, account_code, amount, recorded_at, balance_after, held_after) VALUES `)
	args := []any{txn.ID, txn.RecordedAt}
	for i, p := range txn.Postings {
		if i > 0 {
			sb.WriteString(", ")
		}
		n := len(args)
		if accounts[p.Account].Shards == 1 {
			fmt.Fprintf(&sb, `($1, %d, $%d, $%d, $2,
				(SELECT balance FROM account_balances WHERE account_code = $%[2]d AND shard = 0),
				(SELECT %[4]s FROM account_balances AS b WHERE b.account_code = $%[2]d AND b.shard = 0))`,
				i, n+1, n+2, heldSQL("b", "$2"))
		} else {
			fmt.Fprintf(&sb, "($1, %d, $%d, $%d, $2, NULL, NULL)", i, n+1, n+2)
		}
		args = append(args, p.Account, p.Amount)
	}
	sb.WriteString(` RETURNING account_code, balance_after, held_after`)
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
	if err := validateFingerprint(req.Fingerprint); err != nil {
		return Transaction{}, err
	}
	if len(req.Effects) > MaxEffects {
		return Transaction{}, invalid("effects", "at most %d, got %d", MaxEffects, len(req.Effects))
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
	hash = fingerprinted(opReverse, req.Fingerprint, hash)

	original, err := l.Transaction(ctx, req.TransactionID)
	if err != nil {
		return Transaction{}, fmt.Errorf("reverse %s: %w", req.TransactionID, err)
	}
	accounts, err := l.accountsByCode(ctx, postingAccounts(original.Postings))
	if err != nil {
		return Transaction{}, err
	}
	reversed := make([]Posting, len(original.Postings))
	for i, p := range original.Postings {
		reversed[i] = Posting{Account: p.Account, Amount: -p.Amount}
	}
	if original.Kind != KindReversal { // which is refused below
		if err := checkLotPolicy(reversed, accounts, req.Lots); err != nil {
			return Transaction{}, err
		}
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
		if err := claimReversal(ctx, tx, claim, now, original); err != nil {
			return err
		}
		if err := writeTransaction(ctx, tx, &reversal, accounts, shards, lotInput{policy: req.Lots, reverses: original.Lots}); err != nil {
			return err
		}
		return runEffects(ctx, tx, reversal, l.announce(reversal, req.Effects))
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

// claimReversal claims the idempotency key of a request that reverses
// original, and checks that original may be reversed: not a reversal, not
// reversed yet (the unique reverses_id is the guard against a concurrent
// one; this names the reversal that got there first).
func claimReversal(ctx context.Context, tx pgx.Tx, claim keyClaim, now time.Time, original Transaction) error {
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
	return nil
}

// runEffects runs a transaction's effects in its database transaction.
func runEffects(ctx context.Context, tx pgx.Tx, txn Transaction, effects []Statement) error {
	if len(effects) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for i, e := range effects {
		effects[i] = e.forTransaction(txn)
		b.Queue(effects[i].Text(), effects[i].Args...)
	}
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	for _, e := range effects {
		if _, err := br.Exec(); err != nil {
			return e.failed(err)
		}
	}
	return br.Close()
}
