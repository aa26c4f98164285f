package ledger

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Operations an idempotency key can be used for.
const (
	opPost    = "post"
	opReverse = "reverse"
	opHold    = "hold"
	opCapture = "capture"
	opRelease = "release"
	opCorrect = "correct"
)

// errKeyTaken aborts an attempt whose idempotency key another committed
// transaction already holds; the caller then replays the first result.
var errKeyTaken = errors.New("idempotency key already used")

// keyClaim is the idempotency row a write inserts in its own transaction.
type keyClaim struct {
	callerID, key, op string
	hash              []byte
	transactionID     uuid.UUID
	holdID            uuid.UUID
	response          json.RawMessage
}

// requestHash fingerprints what a request asks for, so a reused key with a
// different request is told apart from a retry.
func requestHash(op string, request any) []byte {
	b, err := json.Marshal(struct {
		Op      string `json:"op"`
		Request any    `json:"request"`
	}{op, request})
	if err != nil {
		panic(fmt.Sprintf("ledger: hash %s request: %v", op, err)) // request types are plain data
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// fingerprinted returns the caller's fingerprint as the request hash when
// there is one.
func fingerprinted(op string, fingerprint, hash []byte) []byte {
	if len(fingerprint) == 0 {
		return hash
	}
	sum := sha256.Sum256(append([]byte(op+":"), fingerprint...))
	return sum[:]
}

func validateFingerprint(fingerprint []byte) error {
	if len(fingerprint) > 64 {
		return invalid("fingerprint", "at most 64 bytes, got %d", len(fingerprint))
	}
	return nil
}

const claimSQL = `INSERT INTO idempotency_keys
	(caller_id, idempotency_key, operation, request_hash, transaction_id, hold_id, response, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
	ON CONFLICT (caller_id, idempotency_key) DO NOTHING`

func (c keyClaim) args(now any) []any {
	var txID, holdID *uuid.UUID
	if c.transactionID != uuid.Nil {
		txID = &c.transactionID
	}
	if c.holdID != uuid.Nil {
		holdID = &c.holdID
	}
	var response any
	if c.response != nil {
		response = string(c.response)
	}
	return []any{c.callerID, c.key, c.op, c.hash, txID, holdID, response, now}
}

// claimed interprets the result of claimSQL.
func claimed(rowsAffected int64) error {
	if rowsAffected == 0 {
		return errKeyTaken
	}
	return nil
}

// storedClaim is what a replay finds.
type storedClaim struct {
	op            string
	hash          []byte
	transactionID uuid.UUID
	holdID        uuid.UUID
	response      json.RawMessage
}

// loadClaim reads the committed claim for a replay and checks that it was
// made by the same request.
func (l *Ledger) loadClaim(ctx context.Context, callerID, key, op string, hash []byte) (storedClaim, error) {
	var c storedClaim
	var txID, holdID *uuid.UUID
	var response []byte
	err := l.db.Pool.QueryRow(ctx, `SELECT operation, request_hash, transaction_id, hold_id, response
		FROM idempotency_keys WHERE caller_id = $1 AND idempotency_key = $2`, callerID, key).
		Scan(&c.op, &c.hash, &txID, &holdID, &response)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			// Only reachable if a claim could be removed; it never is.
			return c, fmt.Errorf("replay key %q: claim vanished", key)
		}
		return c, fmt.Errorf("replay key %q: %w", key, err)
	}
	if c.op != op || !bytes.Equal(c.hash, hash) {
		return c, &IdempotencyConflictError{CallerID: callerID, Key: key, Operation: c.op}
	}
	if txID != nil {
		c.transactionID = *txID
	}
	if holdID != nil {
		c.holdID = *holdID
	}
	if response != nil {
		c.response, err = canonicalMetadata(response)
		if err != nil {
			return c, fmt.Errorf("replay key %q: stored response: %w", key, err)
		}
	}
	return c, nil
}

// KeyUsed reports whether callerID's idempotency key was used by a
// committed write of the ledger's or the service's.
func (l *Ledger) KeyUsed(ctx context.Context, callerID, key string) (bool, error) {
	var used bool
	err := l.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM idempotency_keys WHERE caller_id = $1 AND idempotency_key = $2)`,
		callerID, key).Scan(&used)
	if err != nil {
		return false, fmt.Errorf("read idempotency key %q: %w", key, err)
	}
	return used, nil
}

// replayTransaction returns the transaction a committed claim points at.
func (l *Ledger) replayTransaction(ctx context.Context, callerID, key, op string, hash []byte) (Transaction, error) {
	c, err := l.loadClaim(ctx, callerID, key, op, hash)
	if err != nil {
		return Transaction{}, err
	}
	return l.Transaction(ctx, c.transactionID)
}

// replayHold returns the hold as the first response returned it.
func (l *Ledger) replayHold(ctx context.Context, callerID, key, op string, hash []byte) (Hold, error) {
	c, err := l.loadClaim(ctx, callerID, key, op, hash)
	if err != nil {
		return Hold{}, err
	}
	var h Hold
	if err := json.Unmarshal(c.response, &h); err != nil {
		return Hold{}, fmt.Errorf("replay key %q: decode hold: %w", key, err)
	}
	return h, nil
}

// KeyedWrite runs write in a serializable transaction guarded by the
// caller's idempotency key, for the service's writes that are not postings
// (enrolling a member, creating an API key). The response write returns is
// stored with the key in the same transaction; a retry with the same key
// and request returns it without running write again, and the same key
// with a different request is IdempotencyConflictError.
//
// write may run more than once (the transaction is retried on conflicts);
// it must do all its work through tx.
func (l *Ledger) KeyedWrite(ctx context.Context, callerID, key, operation string, request any,
	write func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error)) (json.RawMessage, error) {
	if err := validateCaller(callerID, key); err != nil {
		return nil, err
	}
	op := "service:" + operation
	hash := requestHash(op, request)
	var response json.RawMessage
	err := l.db.WriteTx(ctx, func(tx pgx.Tx) error {
		now := l.clock()
		// The key is claimed before write runs, never after: a retry must
		// not run write again, whose checks the first run may have changed
		// the answer to (a programme version must come after the last).
		claim := keyClaim{callerID: callerID, key: key, op: op, hash: hash}
		tag, err := tx.Exec(ctx, claimSQL, claim.args(now)...)
		if err != nil {
			return fmt.Errorf("claim idempotency key: %w", err)
		}
		if err := claimed(tag.RowsAffected()); err != nil {
			return err
		}
		if response, err = write(ctx, tx); err != nil {
			return err
		}
		if response, err = canonicalMetadata(response); err != nil {
			return fmt.Errorf("%s response: %w", operation, err)
		}
		_, err = tx.Exec(ctx, `UPDATE idempotency_keys SET response = $3 WHERE caller_id = $1 AND idempotency_key = $2`,
			callerID, key, string(response))
		return err
	})
	if errors.Is(err, errKeyTaken) {
		c, err := l.loadClaim(ctx, callerID, key, op, hash)
		if err != nil {
			return nil, err
		}
		return c.response, nil
	}
	if err != nil {
		return nil, err
	}
	return response, nil
}

// KeyedWriteOf is KeyedWrite for a response of type T, kept as JSON: write
// returns the response, and a replay decodes the first one. T must encode
// as a JSON object (a struct).
func KeyedWriteOf[T any](ctx context.Context, l *Ledger, callerID, key, operation string, request any,
	write func(ctx context.Context, tx pgx.Tx) (T, error)) (T, error) {
	var zero T
	raw, err := l.KeyedWrite(ctx, callerID, key, operation, request, func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error) {
		response, err := write(ctx, tx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(response)
	})
	if err != nil {
		return zero, err
	}
	var response T
	if err := json.Unmarshal(raw, &response); err != nil {
		return zero, fmt.Errorf("%s: decode the stored response: %w", operation, err)
	}
	return response, nil
}
