package members

// Closing a membership (issue 23). The ledger is append-only and the
// finance reports must still reconcile, so a closure settles the member's
// points through the ledger and erases only what is personal:
//
//  1. Close: the members row is marked closed and a member_closures row
//     written, in one serializable transaction under the caller's
//     idempotency key. From then on every write for the member is refused
//     (ErrClosed): Get and StayView, the lookups writes resolve a member
//     with, and Update and SetManualTier under the row's lock. The retry
//     of a write made before (its key used already: ForRetry,
//     GetForWrite) is let through to its key, which answers it as the
//     first time; the ledger refuses anything new for the closed account.
//  2. Release: every active hold of the member's account is released
//     through the ledger, each under a key derived from the hold.
//  3. Settle: a positive balance is forfeited to programme:forfeited, a
//     negative one (a debt) written off from programme:debt_written_off, in
//     one ledger transaction that draws the lots.
//  4. Erase: the member's personal values (the profile's and every earlier
//     one the history holds) are erased from every table that can hold
//     them, in one serializable transaction.
//
// Steps 2-4 are separate transactions because the ledger writes its own;
// each records its result in member_closures in the same transaction as
// its work (released_points with each release, the settlement with its
// ledger transaction, erased_at with the erasure), so a closure
// interrupted after step 1 resumes where it stopped when the caller
// retries with the same idempotency key, and the answer is always read
// back from member_closures.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// ErrClosed is a write for a member whose membership is closed.
var ErrClosed = errors.New("the membership is closed")

// Limits of a closure.
const (
	// maxHoldsReleased bounds the holds one closure releases; a member
	// cannot have more active holds than guarantees in flight.
	maxHoldsReleased = 1000
	// maxErasedRows bounds the rows of one table the erasure reads for a
	// member; a closure of a member with more fails before it writes.
	maxErasedRows = 100_000
	// minErasedRunes: a personal value shorter than this is not searched
	// for inside longer text (it would match too much); the profile's
	// fields are blanked whatever their length.
	minErasedRunes = 2
)

// refuseClosed is ErrClosed for a closed member.
func refuseClosed(m Member) error {
	if m.ClosedAt.IsZero() {
		return nil
	}
	return fmt.Errorf("member %s, closed at %s: %w", m.Number, m.ClosedAt.Format(time.RFC3339), ErrClosed)
}

// refuseClosedUnlessRetry is refuseClosed, except for the retry of a write
// made before the closure (ForRetry).
func refuseClosedUnlessRetry(ctx context.Context, m Member) error {
	if Retrying(ctx) {
		return nil
	}
	return refuseClosed(m)
}

type retryKey struct{}

// ForRetry marks ctx as the retry of a write whose idempotency key was used
// before the member's closure: Get and StayView then answer a closed member
// too, so that the write goes on to its idempotency key and is answered as
// the first time. The caller must have checked that the key was used; the
// ledger still refuses anything new for the closed account, and
// Retrying tells the writes outside the ledger to refuse too.
func ForRetry(ctx context.Context) context.Context { return context.WithValue(ctx, retryKey{}, true) }

// GetForWrite is Get for a write under callerID's idempotency key that
// moves only the member's points: a closed member is ErrClosed, unless the
// key was used already (the retry of a write made before the closure,
// which the ledger answers as the first time; anything new under that key
// is refused there, as a closed account's or a reused key's).
func (s *Store) GetForWrite(ctx context.Context, callerID, idempotencyKey, number string) (Member, error) {
	m, err := s.Get(ctx, number)
	if !errors.Is(err, ErrClosed) {
		return m, err
	}
	used, uerr := s.ledger.KeyUsed(ctx, callerID, idempotencyKey)
	if uerr != nil {
		return Member{}, uerr
	}
	if !used {
		return Member{}, err
	}
	return m, nil
}

// Retrying reports whether ctx is a retry marked by ForRetry.
func Retrying(ctx context.Context) bool { return ctx.Value(retryKey{}) != nil }

// Closure is what closing a membership did.
type Closure struct {
	MemberNumber     string    `json:"member_number"`
	ClosedAt         time.Time `json:"closed_at"`
	ReleasedPoints   int64     `json:"released_points"`
	ForfeitedPoints  int64     `json:"forfeited_points"`
	WrittenOffPoints int64     `json:"written_off_points"`
	// TransactionID is the settlement's (uuid.Nil: the balance was zero).
	TransactionID uuid.UUID `json:"transaction_id"`
}

// Close closes a membership: see the top of this file. A retry with the
// same key resumes an interrupted closure and answers the same; another
// key for a closed member is ErrClosed.
func (s *Store) Close(ctx context.Context, callerID, idempotencyKey, number, reason string) (Closure, error) {
	if err := ValidateNumber(number); err != nil {
		return Closure{}, err
	}
	reason = strings.TrimSpace(reason)
	if n := utf8.RuneCountInString(reason); n == 0 || n > MaxReasonLength || !utf8.ValidString(reason) {
		return Closure{}, &ledger.FieldError{Field: "reason", Problem: fmt.Sprintf("1 to %d characters of valid UTF-8", MaxReasonLength)}
	}
	request := struct {
		Number string `json:"number"`
		Reason string `json:"reason"`
	}{number, reason}
	_, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "close_membership", request,
		func(ctx context.Context, tx pgx.Tx) (Closure, error) {
			m, err := scanMember(tx.QueryRow(ctx, memberSelect+` WHERE member_number = $1 FOR UPDATE`, number), number)
			if err == nil {
				err = refuseClosed(m)
			}
			if err != nil {
				return Closure{}, err
			}
			now := s.now().UTC().Truncate(time.Microsecond)
			b := &pgx.Batch{}
			b.Queue(`UPDATE members SET closed_at = $2, updated_at = $2, updated_by = $3 WHERE member_number = $1`, number, now, callerID)
			b.Queue(`INSERT INTO member_closures (member_number, closed_at, closed_by, reason) VALUES ($1, $2, $3, $4)`,
				number, now, callerID, reason)
			event := events.Row(events.MemberClosed(number, now))
			b.Queue(event.Text(), event.Args...)
			if err := tx.SendBatch(ctx, b).Close(); err != nil {
				return Closure{}, fmt.Errorf("mark member %s closed: %w", number, err)
			}
			// The stored answer names no one: the rest is read back below.
			return Closure{MemberNumber: number, ClosedAt: now}, nil
		})
	if err != nil {
		return Closure{}, fmt.Errorf("close membership %s: %w", number, err)
	}
	if err := s.releaseHolds(ctx, callerID, number); err != nil {
		return Closure{}, fmt.Errorf("close membership %s: %w", number, err)
	}
	if err := s.settle(ctx, callerID, number); err != nil {
		return Closure{}, fmt.Errorf("close membership %s: %w", number, err)
	}
	if err := s.erase(ctx, callerID, number); err != nil {
		return Closure{}, fmt.Errorf("close membership %s: %w", number, err)
	}
	return s.closure(ctx, number)
}

// closure reads back what a closure did.
func (s *Store) closure(ctx context.Context, number string) (Closure, error) {
	c := Closure{MemberNumber: number}
	var txn *uuid.UUID
	err := s.db.Pool.QueryRow(ctx, `SELECT closed_at, released_points, forfeited_points, written_off_points, transaction_id
		FROM member_closures WHERE member_number = $1`, number).
		Scan(&c.ClosedAt, &c.ReleasedPoints, &c.ForfeitedPoints, &c.WrittenOffPoints, &txn)
	if err != nil {
		return Closure{}, fmt.Errorf("read the closure of %s: %w", number, err)
	}
	c.ClosedAt = c.ClosedAt.UTC()
	if txn != nil {
		c.TransactionID = *txn
	}
	return c, nil
}

// closureKey is the idempotency key of one step of a member's closure,
// under the closing caller.
func closureKey(number, step string) string { return "closure:" + number + ":" + step }

// releaseHolds releases the member's active holds, each adding its points
// to the closure's released_points in the release's own transaction.
func (s *Store) releaseHolds(ctx context.Context, callerID, number string) error {
	account := programme.MemberAccount(number).Code
	rows, err := s.db.Pool.Query(ctx, `SELECT id, points FROM holds
		WHERE account_code = $1 AND status = 'active' AND expires_at > $2 ORDER BY id LIMIT $3`,
		account, s.now(), maxHoldsReleased)
	if err != nil {
		return fmt.Errorf("read the holds of %s: %w", number, err)
	}
	type hold struct {
		id     uuid.UUID
		points int64
	}
	holds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (hold, error) {
		var h hold
		return h, r.Scan(&h.id, &h.points)
	})
	if err != nil {
		return fmt.Errorf("read the holds of %s: %w", number, err)
	}
	for _, h := range holds {
		_, err := s.ledger.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: callerID, IdempotencyKey: closureKey(number, "release:"+h.id.String()),
			HoldID: h.id, Effects: []ledger.Statement{{
				SQL:  `UPDATE member_closures SET released_points = released_points + $2 WHERE member_number = $1`,
				Args: []any{number, h.points}}}})
		// A hold captured, released or expired meanwhile holds nothing now.
		if err != nil && !errors.Is(err, ledger.ErrHoldNotActive) && !errors.Is(err, ledger.ErrHoldExpired) {
			return fmt.Errorf("release hold %s: %w", h.id, err)
		}
	}
	return nil
}

// settleAttempts bounds the settlement's tries when the balance moves
// between reading it and settling it: a write that was in flight when the
// member was closed.
const settleAttempts = 5

// settle forfeits the member's balance or writes off their debt, once, and
// closes the member's account in the same transaction, under its lock
// (ledger CloseAccounts): a write in flight when the member was closed has
// either landed by then and is settled with the rest, or is refused by the
// ledger after it. When the balance moved since it was read (or a hold was
// placed meanwhile), nothing is written and the settlement starts again.
func (s *Store) settle(ctx context.Context, callerID, number string) error {
	for attempt := 1; ; attempt++ {
		err := s.settleOnce(ctx, callerID, number)
		var moved *ledger.NotSettledError
		if !errors.As(err, &moved) || attempt == settleAttempts {
			return err
		}
		if moved.Held != 0 {
			if err := s.releaseHolds(ctx, callerID, number); err != nil {
				return err
			}
		}
	}
}

// settleOnce is one try of settle.
func (s *Store) settleOnce(ctx context.Context, callerID, number string) error {
	var settled *time.Time
	if err := s.db.Pool.QueryRow(ctx, `SELECT settled_at FROM member_closures WHERE member_number = $1`, number).Scan(&settled); err != nil {
		return fmt.Errorf("read the closure of %s: %w", number, err)
	}
	if settled != nil {
		return nil
	}
	account := programme.MemberAccount(number).Code
	balance, err := s.ledger.Balance(ctx, account)
	if err != nil {
		return err
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	points := balance.Posted
	if points == 0 {
		if err := s.ledger.CloseAccount(ctx, account); err != nil {
			return err
		}
		_, err := s.db.Pool.Exec(ctx, `UPDATE member_closures SET settled_at = $2 WHERE member_number = $1 AND settled_at IS NULL`, number, now)
		if err != nil {
			return fmt.Errorf("settle the closure of %s: %w", number, err)
		}
		return nil
	}
	counter, rule, description := programme.AccountForfeited, "closure_forfeit", fmt.Sprintf("Membership closed: %d points forfeited", points)
	forfeited, writtenOff := points, int64(0)
	if points < 0 {
		counter, rule, description = programme.AccountDebtWrittenOff, "closure_write_off", fmt.Sprintf("Membership closed: a debt of %d points written off", -points)
		forfeited, writtenOff = 0, -points
	}
	meta, err := json.Marshal(txmeta.Metadata{Kind: txmeta.KindAdjustment, Member: number, Description: description,
		Breakdown: []txmeta.Line{{Rule: rule, Description: description, Points: -points}}})
	if err != nil {
		return err
	}
	// The fingerprint stands for the request: a retry after the balance
	// moved (to zero, by this very transaction) still replays it. A try
	// refused because the balance moved wrote nothing, its key included.
	_, err = s.ledger.Post(ctx, ledger.PostRequest{CallerID: callerID, IdempotencyKey: closureKey(number, "settle"),
		Kind: ledger.KindAdjustment, EffectiveAt: now, Metadata: meta,
		Fingerprint: []byte(closureKey(number, "settle")),
		Postings:    []ledger.Posting{{Account: account, Amount: -points}, {Account: counter, Amount: points}},
		// A write-off credits the member's account: it repays the debt and
		// opens no lot, but the ledger asks every credit for an expiry.
		Lots:          ledger.LotPolicy{ExpiresAt: now},
		CloseAccounts: []string{account},
		Effects: []ledger.Statement{{
			SQL: `WITH txn (id, effective_at, recorded_at) AS (VALUES ($4::UUID, $5::TIMESTAMPTZ, $6::TIMESTAMPTZ))
				UPDATE member_closures SET forfeited_points = $2, written_off_points = $3,
					transaction_id = txn.id, settled_at = txn.recorded_at FROM txn WHERE member_number = $1`,
			Args: []any{number, forfeited, writtenOff}, WithTransaction: true}},
	})
	if err != nil {
		return fmt.Errorf("settle the balance of %s: %w", number, err)
	}
	return nil
}

// erase removes the member's personal data everywhere, once. The profile's
// fields are blanked and the history keeps which fields changed, not their
// values; any other text that contains one of the member's values (a
// transaction's description, an admin's reason, a stored response) is
// replaced by txmeta.Erased of itself, which the finance seals commit to
// as they did to the text (finance/seal.go).
func (s *Store) erase(ctx context.Context, callerID, number string) error {
	var erased *time.Time
	if err := s.db.Pool.QueryRow(ctx, `SELECT erased_at FROM member_closures WHERE member_number = $1`, number).Scan(&erased); err != nil {
		return fmt.Errorf("read the closure of %s: %w", number, err)
	}
	if erased != nil {
		return nil
	}
	// Stored responses carry the member's number inside JSON, unindexed:
	// find them outside the serializable transaction (a scan there would
	// conflict with every concurrent write of a key). No new one can
	// appear: the member's writes are refused from step 1 on.
	keys, err := s.storedResponses(ctx, number)
	if err != nil {
		return err
	}
	account := programme.MemberAccount(number).Code
	return s.db.WriteTx(ctx, func(tx pgx.Tx) error {
		values, err := personalValues(ctx, tx, number)
		if err != nil {
			return err
		}
		now := s.now().UTC().Truncate(time.Microsecond)
		b := &pgx.Batch{}
		b.Queue(`UPDATE members SET full_name = '', email = NULL, phone = NULL WHERE member_number = $1`, number)

		// The history: every value blanked, reasons scrubbed.
		if _, err := rewriteRows(ctx, tx, b, `SELECT id::TEXT, changes::TEXT FROM member_changes WHERE member_number = $1 LIMIT $2`,
			[]any{number, maxErasedRows}, `UPDATE member_changes SET changes = $2 WHERE id = $1::UUID`,
			func(text string) (string, error) {
				c, err := ParseChange([]byte(text))
				if err != nil {
					return "", err
				}
				c = c.Erased()
				c.Reason = scrub(c.Reason, values)
				out, err := json.Marshal(c)
				return string(out), err
			}); err != nil {
			return err
		}
		rewritten, err := rewriteRows(ctx, tx, b, `SELECT t.id::TEXT, t.metadata::TEXT FROM transactions t
				WHERE t.id IN (SELECT transaction_id FROM postings WHERE account_code = $1) LIMIT $2`,
			[]any{account, maxErasedRows}, `UPDATE transactions SET metadata = $2 WHERE id = $1::UUID`, scrubJSON(values, nil))
		if err != nil {
			return err
		}
		if err := attestSealedDays(ctx, tx, rewritten, now); err != nil {
			return fmt.Errorf("erase the personal data of %s: %w", number, err)
		}
		if _, err := rewriteRows(ctx, tx, b, `SELECT id::TEXT, metadata::TEXT FROM holds WHERE account_code = $1 LIMIT $2`,
			[]any{account, maxErasedRows}, `UPDATE holds SET metadata = $2 WHERE id = $1::UUID`, scrubJSON(values, nil)); err != nil {
			return err
		}
		// Events: the member's, and the partners' and the programme's,
		// which hold an admin's text too (a suspension's reason): few,
		// read by subject.
		others, err := otherSubjects(ctx, tx)
		if err != nil {
			return err
		}
		subjects := append([]string{number}, others...)
		for _, r := range []struct{ read, write string }{
			{`SELECT id::TEXT, data::TEXT FROM events WHERE subject = ANY($1) LIMIT $2`, `UPDATE events SET data = $2 WHERE id = $1::UUID`},
			{`SELECT id::TEXT, data::TEXT FROM event_outbox WHERE subject = ANY($1) LIMIT $2`, `UPDATE event_outbox SET data = $2 WHERE id = $1::UUID`},
		} {
			if _, err := rewriteRows(ctx, tx, b, r.read, []any{subjects, maxErasedRows}, r.write, scrubJSON(values, nil)); err != nil {
				return err
			}
		}
		if _, err := rewriteRows(ctx, tx, b, `SELECT partner_id, status_reason FROM partners WHERE status_reason IS NOT NULL LIMIT $1`,
			[]any{maxErasedRows}, `UPDATE partners SET status_reason = $2 WHERE partner_id = $1`,
			func(s string) (string, error) { return scrub(s, values), nil }); err != nil {
			return err
		}
		// A manual tier's reason is an admin's text.
		if _, err := rewriteRows(ctx, tx, b, `SELECT id::TEXT, reason FROM tier_changes WHERE member_number = $1 LIMIT $2`,
			[]any{number, maxErasedRows}, `UPDATE tier_changes SET reason = $2 WHERE id = $1::UUID`,
			func(s string) (string, error) { return scrub(s, values), nil }); err != nil {
			return err
		}
		b.Queue(`UPDATE members SET manual_reason = NULL WHERE member_number = $1 AND manual_reason IS NOT NULL`, number)
		for _, k := range keys {
			text, err := scrubJSON(values, profileKeys)(k.response)
			if err != nil {
				return fmt.Errorf("erase a stored response of %s: %w", number, err)
			}
			b.Queue(`UPDATE idempotency_keys SET response = $3 WHERE caller_id = $1 AND idempotency_key = $2`, k.caller, k.key, text)
		}
		var reason string
		if err := tx.QueryRow(ctx, `SELECT reason FROM member_closures WHERE member_number = $1`, number).Scan(&reason); err != nil {
			return fmt.Errorf("read the closure of %s: %w", number, err)
		}
		reason = scrub(reason, values)
		b.Queue(`UPDATE member_closures SET reason = $2, erased_at = $3 WHERE member_number = $1`, number, reason, now)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("erase the personal data of %s: %w", number, err)
		}
		at, err := ChangeTime(ctx, tx, number, now)
		if err != nil {
			return err
		}
		return InsertChangeTx(ctx, tx, number, at, callerID, Change{Kind: ChangeClosed, Reason: reason})
	})
}

// otherSubjects are the event subjects that are not members: every
// partner's and the programme.
func otherSubjects(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT partner_id FROM partners LIMIT $1`, maxErasedRows)
	if err != nil {
		return nil, fmt.Errorf("read the partners: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("read the partners: %w", err)
	}
	subjects := []string{events.SubjectProgramme}
	for _, id := range ids {
		subjects = append(subjects, events.PartnerSubject(id))
	}
	return subjects, nil
}

// attestSealedDays attests the days sealed with encoding 1 that hold the
// transactions about to be rewritten (finance.AttestBeforeErasure), so
// their seals still verify after the erasure.
func attestSealedDays(ctx context.Context, tx pgx.Tx, transactionIDs []string, now time.Time) error {
	ids := make([]uuid.UUID, len(transactionIDs))
	for i, id := range transactionIDs {
		var err error
		if ids[i], err = uuid.Parse(id); err != nil {
			return fmt.Errorf("transaction id %q: %w", id, err)
		}
	}
	_, err := finance.AttestBeforeErasure(ctx, tx, ids, now)
	return err
}

// profileKeys are the keys of a stored Member (a response of enrolment or
// update) blanked whatever their value.
var profileKeys = map[string]bool{FieldFullName: true, FieldEmail: true, FieldPhone: true}

type storedResponse struct{ caller, key, response string }

// storedResponses are the idempotency responses that describe the member.
func (s *Store) storedResponses(ctx context.Context, number string) ([]storedResponse, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT caller_id, idempotency_key, response::TEXT FROM idempotency_keys
		WHERE response IS NOT NULL AND response->>'member_number' = $1 LIMIT $2`, number, maxErasedRows)
	if err != nil {
		return nil, fmt.Errorf("find the stored responses of %s: %w", number, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storedResponse, error) {
		var k storedResponse
		return k, r.Scan(&k.caller, &k.key, &k.response)
	})
	if err != nil {
		return nil, fmt.Errorf("find the stored responses of %s: %w", number, err)
	}
	return out, nil
}

// personalValues are every value of the member's personal fields, now and
// in the history, in tx.
func personalValues(ctx context.Context, tx pgx.Tx, number string) ([]string, error) {
	var name, email, phone string
	err := tx.QueryRow(ctx, `SELECT full_name, COALESCE(email, ''), COALESCE(phone, '') FROM members WHERE member_number = $1`, number).
		Scan(&name, &email, &phone)
	if err != nil {
		return nil, fmt.Errorf("read member %s: %w", number, err)
	}
	values := []string{name, email, phone}
	rows, err := tx.Query(ctx, `SELECT changes::TEXT FROM member_changes WHERE member_number = $1 LIMIT $2`, number, maxErasedRows)
	if err != nil {
		return nil, fmt.Errorf("read the history of %s: %w", number, err)
	}
	var text string
	_, err = pgx.ForEachRow(rows, []any{&text}, func() error {
		c, err := ParseChange([]byte(text))
		if err != nil {
			return err
		}
		for _, f := range c.Fields {
			values = append(values, f.Before, f.After)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the history of %s: %w", number, err)
	}
	out := values[:0]
	seen := map[string]bool{}
	for _, v := range values {
		v = strings.TrimSpace(v)
		if utf8.RuneCountInString(v) >= minErasedRunes && !seen[strings.ToLower(v)] {
			seen[strings.ToLower(v)] = true
			out = append(out, v)
		}
	}
	return out, nil
}

// rewriteRows reads (id, text) rows with read (which reads at most
// maxErasedRows) and queues write (id, new text) on b for each row that
// rewrite changes; it returns their ids. Reaching the limit is an error,
// before anything is written.
func rewriteRows(ctx context.Context, tx pgx.Tx, b *pgx.Batch, read string, args []any, write string, rewrite func(string) (string, error)) ([]string, error) {
	rows, err := tx.Query(ctx, read, args...)
	if err != nil {
		return nil, fmt.Errorf("read for erasure: %w", err)
	}
	var rewritten []string
	var id, text string
	count := 0
	_, err = pgx.ForEachRow(rows, []any{&id, &text}, func() error {
		// The reads stop at maxErasedRows: reaching it may leave rows
		// unread, and an erasure must not stop half-way.
		if count++; count >= maxErasedRows {
			return fmt.Errorf("%d rows or more to erase in one table: more than a closure erases", maxErasedRows)
		}
		out, err := rewrite(text)
		if err != nil {
			return fmt.Errorf("row %s: %w", id, err)
		}
		if out != text {
			b.Queue(write, id, out)
			rewritten = append(rewritten, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("erase: %w", err)
	}
	return rewritten, nil
}

// scrubJSON rewrites a JSON text: the values of blank keys become "", and
// every other string that contains one of values becomes txmeta.Erased of
// itself. A text with nothing to erase comes back as it was.
func scrubJSON(values []string, blank map[string]bool) func(string) (string, error) {
	return func(text string) (string, error) {
		d := json.NewDecoder(strings.NewReader(text))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return "", err
		}
		changed := false
		var walk func(any) any
		walk = func(v any) any {
			switch x := v.(type) {
			case string:
				if y := scrub(x, values); y != x {
					changed = true
					return y
				}
			case map[string]any:
				for k, e := range x {
					if s, ok := e.(string); ok && blank[k] {
						if s != "" {
							x[k], changed = "", true
						}
						continue
					}
					x[k] = walk(e)
				}
			case []any:
				for i, e := range x {
					x[i] = walk(e)
				}
			}
			return v
		}
		v = walk(v)
		if !changed {
			return text, nil
		}
		out, err := json.Marshal(v)
		return string(out), err
	}
}

// scrub is s, or txmeta.Erased(s) when s contains one of values (letter
// case aside).
func scrub(s string, values []string) string {
	lower := strings.ToLower(s)
	for _, v := range values {
		if strings.Contains(lower, strings.ToLower(v)) {
			return txmeta.Erased(s)
		}
	}
	return s
}
