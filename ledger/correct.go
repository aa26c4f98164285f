package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CorrectRequest replaces a posted transaction: its reversal and its
// replacement commit together or not at all, so that a correction is never
// half done (the original reversed and nothing in its place).
type CorrectRequest struct {
	CallerID       string
	IdempotencyKey string
	// TransactionID is the transaction replaced.
	TransactionID uuid.UUID
	// ReversalMetadata and ReversalEffects go with the reversal (see
	// ReverseRequest); ReversalLots is its lot policy.
	ReversalMetadata json.RawMessage
	ReversalEffects  []Statement
	ReversalLots     LotPolicy
	// ReplacementID is the replacement's id, chosen by the caller so that
	// the reversal's metadata can name it: the link is kept both ways.
	ReplacementID uuid.UUID
	// Replacement is the transaction posted in place of the original: its
	// kind, effective time, postings, metadata, effects and lots. Its
	// caller, key and fingerprint are the correction's.
	Replacement PostRequest
	// Fingerprint, when set, identifies the caller's own request for
	// idempotency (see PostRequest).
	Fingerprint []byte
}

// Correction is a correction as committed.
type Correction struct {
	Reversal, Replacement Transaction
}

// Correct reverses req.TransactionID and posts req.Replacement in one
// database transaction. A retry with the same caller and key returns the
// first correction. The original must not be a reversal nor reversed.
func (l *Ledger) Correct(ctx context.Context, req CorrectRequest) (Correction, error) {
	repl := req.Replacement
	repl.CallerID, repl.IdempotencyKey, repl.Fingerprint = req.CallerID, req.IdempotencyKey, req.Fingerprint
	if err := validatePost(repl); err != nil {
		return Correction{}, err
	}
	if req.TransactionID == uuid.Nil {
		return Correction{}, invalid("transaction_id", "is required")
	}
	if req.ReplacementID == uuid.Nil {
		return Correction{}, invalid("replacement_id", "is required")
	}
	if len(req.ReversalEffects) > MaxEffects {
		return Correction{}, invalid("effects", "at most %d, got %d", MaxEffects, len(req.ReversalEffects))
	}
	reversalMetadata, err := canonicalMetadata(req.ReversalMetadata)
	if err != nil {
		return Correction{}, err
	}
	replacementMetadata, err := postMetadata(repl)
	if err != nil {
		return Correction{}, err
	}
	hash := fingerprinted(opCorrect, req.Fingerprint, requestHash(opCorrect, struct {
		TransactionID uuid.UUID `json:"transaction_id"`
		Kind          Kind      `json:"kind"`
		EffectiveAt   time.Time `json:"effective_at"`
		Postings      []Posting `json:"postings"`
		Metadata      any       `json:"metadata"`
	}{req.TransactionID, repl.Kind, dbTime(repl.EffectiveAt), repl.Postings, replacementMetadata}))

	original, err := l.Transaction(ctx, req.TransactionID)
	if err != nil {
		return Correction{}, fmt.Errorf("correct %s: %w", req.TransactionID, err)
	}
	reversed := make([]Posting, len(original.Postings))
	for i, p := range original.Postings {
		reversed[i] = Posting{Account: p.Account, Amount: -p.Amount}
	}
	accounts, err := l.accountsByCode(ctx, postingAccounts(append(append([]Posting(nil), reversed...), repl.Postings...)))
	if err != nil {
		return Correction{}, err
	}
	if err := checkLotPolicy(reversed, accounts, req.ReversalLots); err != nil {
		return Correction{}, err
	}
	if err := checkLotPolicy(repl.Postings, accounts, repl.Lots); err != nil {
		return Correction{}, err
	}

	shards, done := l.queue(accounts)
	defer done()
	var c Correction
	err = l.db.WriteTx(ctx, func(tx pgx.Tx) error {
		now := l.clock()
		c.Reversal = Transaction{ID: uuid.New(), Kind: KindReversal, CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey,
			EffectiveAt: now, RecordedAt: now, Postings: append([]Posting(nil), reversed...), Metadata: reversalMetadata, ReversesID: original.ID}
		c.Replacement = Transaction{ID: req.ReplacementID, Kind: repl.Kind, CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey,
			EffectiveAt: dbTime(repl.EffectiveAt), RecordedAt: now, Postings: append([]Posting(nil), repl.Postings...), Metadata: replacementMetadata}
		claim := keyClaim{callerID: req.CallerID, key: req.IdempotencyKey, op: opCorrect, hash: hash, transactionID: c.Replacement.ID}
		if err := claimReversal(ctx, tx, claim, now, original); err != nil {
			return err
		}
		if err := writeTransaction(ctx, tx, &c.Reversal, accounts, shards, lotInput{policy: req.ReversalLots, reverses: original.Lots}); err != nil {
			return err
		}
		if err := runEffects(ctx, tx, c.Reversal, l.announce(c.Reversal, req.ReversalEffects)); err != nil {
			return err
		}
		if err := writeTransaction(ctx, tx, &c.Replacement, accounts, shards, lotInput{policy: repl.Lots}); err != nil {
			return err
		}
		return runEffects(ctx, tx, c.Replacement, l.announce(c.Replacement, repl.Effects))
	})
	switch {
	case errors.Is(err, errKeyTaken):
		return l.replayCorrection(ctx, req.CallerID, req.IdempotencyKey, hash, original.ID)
	case errors.Is(err, errConcurrentReversal):
		t, rerr := l.Transaction(ctx, original.ID)
		if rerr != nil {
			return Correction{}, rerr
		}
		return Correction{}, &AlreadyReversedError{TransactionID: original.ID, ReversedByID: t.ReversedByID}
	case err != nil:
		return Correction{}, fmt.Errorf("correct %s: %w", req.TransactionID, err)
	}
	return c, nil
}

// replayCorrection returns a correction as first committed.
func (l *Ledger) replayCorrection(ctx context.Context, callerID, key string, hash []byte, original uuid.UUID) (Correction, error) {
	replacement, err := l.replayTransaction(ctx, callerID, key, opCorrect, hash)
	if err != nil {
		return Correction{}, err
	}
	o, err := l.Transaction(ctx, original)
	if err != nil {
		return Correction{}, err
	}
	reversal, err := l.Transaction(ctx, o.ReversedByID)
	if err != nil {
		return Correction{}, err
	}
	return Correction{Reversal: reversal, Replacement: replacement}, nil
}
