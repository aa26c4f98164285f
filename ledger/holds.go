package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-ledger/loyalty/database"
)

// PlaceHold sets points aside on an account until ExpiresAt. It fails with
// InsufficientPointsError when the account's available balance is short.
func (l *Ledger) PlaceHold(ctx context.Context, req HoldRequest) (Hold, error) {
	if err := validateHold(req, l.clock()); err != nil {
		return Hold{}, err
	}
	if len(req.Effects) > MaxEffects {
		return Hold{}, invalid("effects", "at most %d, got %d", MaxEffects, len(req.Effects))
	}
	metadata, err := canonicalMetadata(req.Metadata)
	if err != nil {
		return Hold{}, err
	}
	account, err := l.Account(ctx, req.Account)
	if err != nil {
		return Hold{}, err
	}
	if account.Shards != 1 {
		return Hold{}, invalid("account", "%s is spread over %d shards; holds are for single-row accounts such as a member's", account.Code, account.Shards)
	}
	expiresAt := dbTime(req.ExpiresAt)
	hash := requestHash(opHold, struct {
		Account   string    `json:"account"`
		Points    int64     `json:"points"`
		ExpiresAt time.Time `json:"expires_at"`
		Reference string    `json:"reference"`
		Metadata  any       `json:"metadata"`
	}{req.Account, req.Points, expiresAt, req.Reference, metadata})
	hash = fingerprinted(opHold, req.Fingerprint, hash)

	_, done := l.queue(map[string]Account{account.Code: account})
	defer done()
	var hold Hold
	// Two round trips: BEGIN, the claim, the locked balance, the holds and
	// the new hold; then the stored response and COMMIT.
	err = l.db.WriteBatches(ctx, func(tx *database.BatchTx) error {
		now := l.clock()
		hold = Hold{
			ID: uuid.New(), Account: account.Code, Points: req.Points, CallerID: req.CallerID,
			CreatedAt: now, ExpiresAt: expiresAt, Status: HoldActive, Reference: req.Reference, Metadata: metadata,
		}
		// The response, with the balance after, is stored once known.
		claim := keyClaim{callerID: req.CallerID, key: req.IdempotencyKey, op: opHold, hash: hash, holdID: hold.ID}
		b := &pgx.Batch{}
		b.Queue(claimSQL, claim.args(now)...)
		// FOR UPDATE queues this hold behind redemptions from the same
		// account, so both see each other's effect on the available balance.
		b.Queue(`SELECT b.balance, `+heldSQL("b", "$2")+`, b.closed FROM account_balances AS b
			WHERE b.account_code = $1 AND b.shard = 0 FOR UPDATE`, account.Code, now)
		b.Queue(`UPDATE account_balances SET held_points = held_points + $2,
			holds_expire_from = CASE WHEN holds_expire_from IS NULL OR holds_expire_from > $3 THEN $3 ELSE holds_expire_from END
			WHERE account_code = $1 AND shard = 0`, account.Code, req.Points, expiresAt)
		var reference *string
		if req.Reference != "" {
			reference = &req.Reference
		}
		b.Queue(`INSERT INTO holds (id, account_code, points, caller_id, created_at, expires_at, status, reference, metadata)
			VALUES ($1, $2, $3, $4, $5, $6, 'active', $7, $8)`,
			hold.ID, hold.Account, hold.Points, hold.CallerID, hold.CreatedAt, hold.ExpiresAt, reference, string(metadata))
		var raw, held int64
		var closed bool
		err := tx.Send(ctx, b, func(br pgx.BatchResults) error {
			if err := readClaim(br); err != nil {
				return err
			}
			if err := br.QueryRow().Scan(&raw, &held, &closed); err != nil {
				return fmt.Errorf("lock balance of %s: %w", account.Code, err)
			}
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("hold points of %s: %w", account.Code, err)
			}
			if _, err := br.Exec(); err != nil {
				var pgErr *pgconn.PgError
				if errors.As(err, &pgErr) && pgErr.Code == "23505" {
					return fmt.Errorf("%w: reference %q", ErrHoldExists, req.Reference)
				}
				return fmt.Errorf("insert hold: %w", err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if closed {
			return &AccountClosedError{Account: account.Code}
		}
		posted := account.normal(raw)
		if available := posted - held; available < req.Points {
			return &InsufficientPointsError{Account: account.Code, Posted: posted, Held: held,
				Available: available, Requested: req.Points, Shortfall: req.Points - available}
		}
		after := posted - held - req.Points
		hold.BalanceAfter = &Balance{Account: account.Code, Posted: posted, Held: held + req.Points, Available: after, AsOf: now}
		store, err := storeResponseStatement(req.CallerID, req.IdempotencyKey, hold)
		if err != nil {
			return err
		}
		b = &pgx.Batch{}
		effects := queueHoldEffects(b, req.Effects, hold)
		b.Queue(store.SQL, store.Args...)
		return tx.SendAndCommit(ctx, b, func(br pgx.BatchResults) error {
			if err := readHoldEffects(br, effects); err != nil {
				return err
			}
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("store response: %w", err)
			}
			return nil
		})
	})
	if errors.Is(err, errKeyTaken) {
		return l.replayHold(ctx, req.CallerID, req.IdempotencyKey, opHold, hash)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("place hold on %s: %w", req.Account, err)
	}
	l.holdAccounts.store(hold.ID, hold.Account)
	return hold, nil
}

// CaptureHold posts the captured points from the held account to
// req.Destination and closes the hold; points not captured are released.
// A hold can be captured once, and not after it was released or expired.
func (l *Ledger) CaptureHold(ctx context.Context, req CaptureRequest) (Transaction, error) {
	if err := validateCapture(req); err != nil {
		return Transaction{}, err
	}
	metadata, err := canonicalMetadata(req.Metadata)
	if err != nil {
		return Transaction{}, err
	}
	kind := req.Kind
	if kind == "" {
		kind = KindHoldCapture
	}
	hash := requestHash(opCapture, struct {
		HoldID      uuid.UUID `json:"hold_id"`
		Points      int64     `json:"points"`
		Destination string    `json:"destination"`
		Kind        Kind      `json:"kind"`
		EffectiveAt time.Time `json:"effective_at"`
		Metadata    any       `json:"metadata"`
	}{req.HoldID, req.Points, req.Destination, kind, dbTime(req.EffectiveAt), metadata})
	hash = fingerprinted(opCapture, req.Fingerprint, hash)

	// A hold's account never changes: look the accounts up before the
	// transaction, so it never waits for a second connection.
	current, err := l.GetHold(ctx, req.HoldID)
	if err != nil {
		return Transaction{}, fmt.Errorf("capture hold: %w", err)
	}
	accounts, err := l.accountsByCode(ctx, []string{current.Account, req.Destination})
	if err != nil {
		return Transaction{}, err
	}

	shards, done := l.queue(accounts)
	defer done()
	var capture Transaction
	err = l.db.WriteTx(ctx, func(tx pgx.Tx) error {
		now := l.clock()
		capture = Transaction{ID: uuid.New(), Kind: kind, CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey,
			EffectiveAt: now, RecordedAt: now, Metadata: metadata}
		if !req.EffectiveAt.IsZero() {
			capture.EffectiveAt = dbTime(req.EffectiveAt)
		}
		claim := keyClaim{callerID: req.CallerID, key: req.IdempotencyKey, op: opCapture, hash: hash,
			transactionID: capture.ID, holdID: req.HoldID}
		hold, err := claimAndLockHold(ctx, tx, claim, now, req.HoldID)
		if err != nil {
			return err
		}
		if err := holdUsable(hold, now, "capture"); err != nil {
			return err
		}
		if req.Points > hold.Points {
			return invalid("points", "capture of %d exceeds the %d points on hold", req.Points, hold.Points)
		}
		capture.Postings = []Posting{
			{Account: hold.Account, Amount: -accounts[hold.Account].normal(req.Points)},
			{Account: req.Destination, Amount: accounts[hold.Account].normal(req.Points)},
		}
		// Close the hold first, so that the balances after the capture no
		// longer count it.
		if _, err := tx.Exec(ctx, `UPDATE holds SET status = 'captured', closed_at = $2,
			capture_transaction_id = $3, captured_points = $4 WHERE id = $1`,
			hold.ID, now, capture.ID, req.Points); err != nil {
			return fmt.Errorf("close hold: %w", err)
		}
		if _, err := tx.Exec(ctx, releaseHeldSQL, hold.Account, hold.Points); err != nil {
			return fmt.Errorf("release held points: %w", err)
		}
		if err := writeTransaction(ctx, tx, &capture, accounts, shards, lotInput{}); err != nil {
			return err
		}
		return runEffects(ctx, tx, capture, l.announce(capture, req.Effects))
	})
	if errors.Is(err, errKeyTaken) {
		return l.replayTransaction(ctx, req.CallerID, req.IdempotencyKey, opCapture, hash)
	}
	if err != nil {
		return Transaction{}, fmt.Errorf("capture hold %s: %w", req.HoldID, err)
	}
	return capture, nil
}

// ReleaseHold gives the held points back. Releasing a captured, released
// or expired hold is an error.
func (l *Ledger) ReleaseHold(ctx context.Context, req ReleaseRequest) (Hold, error) {
	if err := validateCaller(req.CallerID, req.IdempotencyKey); err != nil {
		return Hold{}, err
	}
	if req.HoldID == uuid.Nil {
		return Hold{}, invalid("hold_id", "is required")
	}
	if err := validateFingerprint(req.Fingerprint); err != nil {
		return Hold{}, err
	}
	if len(req.Effects) > MaxEffects {
		return Hold{}, invalid("effects", "at most %d, got %d", MaxEffects, len(req.Effects))
	}
	hash := requestHash(opRelease, struct {
		HoldID uuid.UUID `json:"hold_id"`
	}{req.HoldID})
	hash = fingerprinted(opRelease, req.Fingerprint, hash)

	// Queue behind this process's other writers of the account, as
	// PlaceHold does: they write the same balance row. A hold's account
	// never changes; it is known here when this process placed or read
	// the hold.
	code, known := l.holdAccounts.load(req.HoldID)
	if !known {
		current, err := l.GetHold(ctx, req.HoldID)
		if err != nil {
			return Hold{}, fmt.Errorf("release hold: %w", err)
		}
		code = current.Account
	}
	account, err := l.Account(ctx, code)
	if err != nil {
		return Hold{}, fmt.Errorf("release hold %s: %w", req.HoldID, err)
	}
	_, done := l.queue(map[string]Account{account.Code: account})
	defer done()

	var released Hold
	// Two round trips: BEGIN, the claim, the locked hold with its account's
	// locked balance row; then the release, the held points, the stored
	// response and COMMIT.
	err = l.db.WriteBatches(ctx, func(tx *database.BatchTx) error {
		now := l.clock()
		claim := keyClaim{callerID: req.CallerID, key: req.IdempotencyKey, op: opRelease, hash: hash, holdID: req.HoldID}
		b := &pgx.Batch{}
		b.Queue(claimSQL, claim.args(now)...)
		b.Queue(`SELECT `+fmt.Sprintf(holdColumnsOf, "h")+`, b.balance, `+heldSQL("b", "$2")+`
			FROM holds AS h JOIN account_balances AS b ON b.account_code = h.account_code AND b.shard = 0
			WHERE h.id = $1 FOR UPDATE`, req.HoldID, now)
		var hold Hold
		var raw, held int64
		err := tx.Send(ctx, b, func(br pgx.BatchResults) error {
			if err := readClaim(br); err != nil {
				return err
			}
			var err error
			hold, err = scanHold(br.QueryRow(), &raw, &held)
			if isNoRows(err) {
				return fmt.Errorf("hold %s: %w", req.HoldID, ErrNotFound)
			}
			return err
		})
		if err != nil {
			return err
		}
		if err := holdUsable(hold, now, "release"); err != nil {
			return err
		}
		released = hold
		released.Status, released.ClosedAt = HoldReleased, now
		// The hold is active and unexpired, so it is among the held points
		// read; releasing it leaves the posted balance alone.
		posted := account.normal(raw)
		held -= hold.Points
		released.BalanceAfter = &Balance{Account: hold.Account, Posted: posted, Held: held, Available: posted - held, AsOf: now}
		store, err := storeResponseStatement(req.CallerID, req.IdempotencyKey, released)
		if err != nil {
			return err
		}
		b = &pgx.Batch{}
		b.Queue(`UPDATE holds SET status = 'released', closed_at = $2 WHERE id = $1`, hold.ID, now)
		b.Queue(releaseHeldSQL, hold.Account, hold.Points)
		effects := queueHoldEffects(b, req.Effects, released)
		b.Queue(store.SQL, store.Args...)
		return tx.SendAndCommit(ctx, b, func(br pgx.BatchResults) error {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("release: %w", err)
			}
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("release held points: %w", err)
			}
			if err := readHoldEffects(br, effects); err != nil {
				return err
			}
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("store response: %w", err)
			}
			return nil
		})
	})
	if errors.Is(err, errKeyTaken) {
		return l.replayHold(ctx, req.CallerID, req.IdempotencyKey, opRelease, hash)
	}
	if err != nil {
		return Hold{}, fmt.Errorf("release hold %s: %w", req.HoldID, err)
	}
	return released, nil
}

// HoldEffectParameters is how many parameters a hold's effect that asks
// WithTransaction gets appended: the hold's id, the time of the placing or
// releasing, and the account's posted, held and available points right
// after it.
const HoldEffectParameters = 5

// forHold is the statement with h's parameters appended, when it asks for
// them (WithTransaction). h carries the balance after the operation.
func (s Statement) forHold(h Hold) Statement {
	if !s.WithTransaction {
		return s
	}
	at := h.CreatedAt
	if h.Status == HoldReleased {
		at = h.ClosedAt
	}
	var after Balance
	if h.BalanceAfter != nil {
		after = *h.BalanceAfter
	}
	s.Args = append(slices.Clip(s.Args), h.ID, at, after.Posted, after.Held, after.Available)
	s.WithTransaction = false
	return s
}

// queueHoldEffects queues a hold operation's effects, with h's parameters,
// and returns them as queued, for readHoldEffects.
func queueHoldEffects(b *pgx.Batch, effects []Statement, h Hold) []Statement {
	queued := make([]Statement, len(effects))
	for i, e := range effects {
		queued[i] = e.forHold(h)
		b.Queue(queued[i].Text(), queued[i].Args...)
	}
	return queued
}

// readHoldEffects reads the results of queueHoldEffects' statements.
func readHoldEffects(br pgx.BatchResults, effects []Statement) error {
	for _, e := range effects {
		if _, err := br.Exec(); err != nil {
			return e.failed(err)
		}
	}
	return nil
}

// heldSQL is the points on hold, at the time in parameter now, of the
// balance row named by alias: its stored held_points, less any active
// holds that have expired by time. The holds table is read only once
// holds_expire_from has passed, which no write path has to wait for:
// reading it at SERIALIZABLE locks index pages that unrelated members'
// holds share (see migration 00016).
func heldSQL(alias, now string) string {
	return fmt.Sprintf(`(%[1]s.held_points - CASE WHEN %[1]s.holds_expire_from <= %[2]s THEN
		(SELECT COALESCE(SUM(x.points), 0) FROM holds AS x
		 WHERE x.account_code = %[1]s.account_code AND x.status = 'active' AND x.expires_at <= %[2]s)
		ELSE 0 END)::INT8`, alias, now)
}

// releaseHeldSQL takes a closed hold's points ($2) off the held points of
// its account ($1). The expiry bound stays (it is still not later than
// any remaining hold's expiry) until no hold is left.
const releaseHeldSQL = `UPDATE account_balances SET held_points = held_points - $2,
	holds_expire_from = CASE WHEN held_points = $2 THEN NULL ELSE holds_expire_from END
	WHERE account_code = $1 AND shard = 0`

// claimAndLockHold claims the idempotency key and locks the hold in one
// round trip.
func claimAndLockHold(ctx context.Context, tx pgx.Tx, claim keyClaim, now time.Time, holdID uuid.UUID) (Hold, error) {
	b := &pgx.Batch{}
	b.Queue(claimSQL, claim.args(now)...)
	b.Queue(holdSelect+` WHERE id = $1 FOR UPDATE`, holdID)
	br := tx.SendBatch(ctx, b)
	defer br.Close()
	if err := readClaim(br); err != nil {
		return Hold{}, err
	}
	hold, err := scanHold(br.QueryRow())
	if isNoRows(err) {
		return Hold{}, fmt.Errorf("hold %s: %w", holdID, ErrNotFound)
	}
	if err != nil {
		return Hold{}, err
	}
	return hold, br.Close()
}

// readClaim reads the result of claimSQL in a batch: errKeyTaken when the
// key is in use already.
func readClaim(br pgx.BatchResults) error {
	tag, err := br.Exec()
	if err != nil {
		return fmt.Errorf("claim idempotency key: %w", err)
	}
	return claimed(tag.RowsAffected())
}

func holdUsable(h Hold, now time.Time, op string) error {
	if h.Status != HoldActive {
		return &HoldStateError{HoldID: h.ID, Status: h.Status, Op: op}
	}
	if h.Expired(now) {
		return &HoldStateError{HoldID: h.ID, Status: h.Status, Expired: true, Op: op}
	}
	return nil
}

// holdColumnsOf lists a hold's columns of the holds table named alias, in
// the order scanHold reads them.
const holdColumnsOf = `%[1]s.id, %[1]s.account_code, %[1]s.points, %[1]s.caller_id, %[1]s.created_at,
	%[1]s.expires_at, %[1]s.status, %[1]s.closed_at, %[1]s.capture_transaction_id, %[1]s.captured_points,
	COALESCE(%[1]s.reference, ''), %[1]s.metadata`

var holdSelect = `SELECT ` + fmt.Sprintf(holdColumnsOf, "holds") + ` FROM holds`

// scanHold reads a hold's columns (holdColumnsOf), then any extra columns
// into extra.
func scanHold(row pgx.Row, extra ...any) (Hold, error) {
	var h Hold
	var status string
	var closedAt *time.Time
	var captureID *uuid.UUID
	var captured *int64
	var metadata []byte
	dest := append([]any{&h.ID, &h.Account, &h.Points, &h.CallerID, &h.CreatedAt, &h.ExpiresAt, &status,
		&closedAt, &captureID, &captured, &h.Reference, &metadata}, extra...)
	if err := row.Scan(dest...); err != nil {
		return Hold{}, err
	}
	h.Status = HoldStatus(status)
	h.CreatedAt, h.ExpiresAt = h.CreatedAt.UTC(), h.ExpiresAt.UTC()
	if closedAt != nil {
		h.ClosedAt = closedAt.UTC()
	}
	if captureID != nil {
		h.CaptureID = *captureID
	}
	if captured != nil {
		h.CapturedPoints = *captured
	}
	var err error
	h.Metadata, err = canonicalMetadata(metadata)
	return h, err
}

// GetHold returns a hold as it is now.
func (l *Ledger) GetHold(ctx context.Context, id uuid.UUID) (Hold, error) {
	h, err := scanHold(l.db.Pool.QueryRow(ctx, holdSelect+` WHERE id = $1`, id))
	if isNoRows(err) {
		return Hold{}, fmt.Errorf("hold %s: %w", id, ErrNotFound)
	}
	if err == nil {
		l.holdAccounts.store(h.ID, h.Account)
	}
	return h, err
}

// MaxHoldsByReference bounds HoldsByReference.
const MaxHoldsByReference = 100

// HoldsByReference returns the holds with this reference, oldest first, at
// most MaxHoldsByReference.
func (l *Ledger) HoldsByReference(ctx context.Context, reference string) ([]Hold, error) {
	rows, err := l.db.Pool.Query(ctx, holdSelect+` WHERE reference = $1 ORDER BY created_at, id LIMIT $2`, reference, MaxHoldsByReference)
	if err != nil {
		return nil, fmt.Errorf("holds %q: %w", reference, err)
	}
	defer rows.Close()
	var holds []Hold
	for rows.Next() {
		h, err := scanHold(rows)
		if err != nil {
			return nil, fmt.Errorf("holds %q: %w", reference, err)
		}
		holds = append(holds, h)
	}
	return holds, rows.Err()
}

// HoldByReference returns the latest hold with this reference, in
// whatever state it is, or ErrNotFound.
func (l *Ledger) HoldByReference(ctx context.Context, reference string) (Hold, error) {
	h, err := scanHold(l.db.Pool.QueryRow(ctx, holdSelect+` WHERE reference = $1 ORDER BY created_at DESC, id LIMIT 1`, reference))
	if isNoRows(err) {
		return Hold{}, fmt.Errorf("hold %q: %w", reference, ErrNotFound)
	}
	if err == nil {
		l.holdAccounts.store(h.ID, h.Account)
	}
	return h, err
}

// storeResponseStatement keeps a hold operation's first response with its
// idempotency key, for replays.
func storeResponseStatement(callerID, key string, h Hold) (Statement, error) {
	response, err := json.Marshal(h)
	if err != nil {
		return Statement{}, err
	}
	return Statement{SQL: `UPDATE idempotency_keys SET response = $3 WHERE caller_id = $1 AND idempotency_key = $2`,
		Args: []any{callerID, key, string(response)}}, nil
}

// CloseAccount closes a single-row account whose balance is zero with
// nothing on hold: from its commit it takes no posting or hold
// (AccountClosedError). A balance, or points on hold, is NotSettledError:
// settle it with a transaction whose CloseAccounts names the account.
// Closing a closed account does nothing.
func (l *Ledger) CloseAccount(ctx context.Context, code string) error {
	account, err := l.Account(ctx, code)
	if err != nil {
		return err
	}
	if account.Shards != 1 {
		return invalid("account", "%s is not a single-row account", code)
	}
	now := l.clock()
	err = l.db.WriteTx(ctx, func(tx pgx.Tx) error {
		var raw, held int64
		var closed bool
		if err := tx.QueryRow(ctx, `SELECT b.balance, `+heldSQL("b", "$2")+`, b.closed FROM account_balances AS b
			WHERE b.account_code = $1 AND b.shard = 0 FOR UPDATE`, code, now).Scan(&raw, &held, &closed); err != nil {
			return fmt.Errorf("lock balance of %s: %w", code, err)
		}
		switch {
		case closed:
			return nil
		case raw != 0 || held != 0:
			return &NotSettledError{Account: code, Posted: account.normal(raw), Held: held}
		}
		_, err := tx.Exec(ctx, `UPDATE account_balances SET closed = true WHERE account_code = $1 AND shard = 0`, code)
		return err
	})
	if err != nil {
		return fmt.Errorf("close account %s: %w", code, err)
	}
	return nil
}
