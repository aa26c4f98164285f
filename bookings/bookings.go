// Package bookings is the booking lifecycle, and the application service
// that turns a booking's events into the ledger's transactions.
//
// A booking, identified by its property and stay id across every API, has
// at most one final outcome (stayed, no-show, cancelled) and at most one
// late check-out charge, whatever idempotency keys its requests carry. The
// database enforces it: an outcome is claimed by a row that commits with
// the outcome's ledger transaction (ClaimWith, an effect), or on its own
// when nothing is posted (Store.Claim), and a second claim of the same
// booking fails on a unique index. Reversing the outcome's transaction
// releases the booking (Release, an effect of the reversal).
//
// Service decides what each event is worth and writes it: a stay's points
// and tier qualification (stays.go), no-shows and cancellations
// (missed.go), guarantees, late check-outs and redemptions, partners'
// awards and redemptions (partners.go), reversals, and the booking as a
// whole (view.go). Every entry point shares it; the RPC layer
// authenticates, validates shapes and maps errors.
package bookings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
)

// Outcome is what became of a booking, or the late check-out charged on it.
type Outcome string

const (
	Stayed           Outcome = "stayed"
	NoShow           Outcome = "no_show"
	CancelledFree    Outcome = "cancelled_free"
	CancelledCharged Outcome = "cancelled_charged"
	LateCheckout     Outcome = "late_checkout"
)

// slot is what an outcome takes: the booking's one final outcome, or its
// one late check-out charge.
func (o Outcome) slot() string {
	if o == LateCheckout {
		return "late_checkout"
	}
	return "outcome"
}

// Claim is an outcome of a booking, asked for by a caller's request.
type Claim struct {
	PropertyID, StayID string
	Outcome            Outcome
	MemberNumber       string
	// CallerID and IdempotencyKey identify the request, so that its retry
	// finds its own claim (Store.Claim) rather than a conflict.
	CallerID, IdempotencyKey string
	// EffectiveAt is the outcome's business time, for an outcome that
	// posts nothing (Store.Claim); ClaimWith takes its transaction's.
	EffectiveAt time.Time
}

// Record is a claimed outcome.
type Record struct {
	Claim
	ID uuid.UUID
	// TransactionID is the outcome's ledger transaction; uuid.Nil when
	// nothing was posted.
	TransactionID uuid.UUID
	RecordedAt    time.Time
	// ReleasedBy is the reversal that freed the booking from this outcome
	// (uuid.Nil while it holds).
	ReleasedBy uuid.UUID
	ReleasedAt time.Time
}

// ErrRecorded is what a second outcome of a booking is.
var ErrRecorded = errors.New("the booking already has this kind of outcome")

// RecordedError is a claim refused because the booking has an outcome
// already. Existing is that outcome when it could be read (Store.Explain).
type RecordedError struct {
	PropertyID, StayID string
	Asked              Outcome
	// Member is the member the refused outcome was asked for.
	Member   string
	Existing *Record
}

// refusedFor is the answer to a claim of a booking slot that existing
// holds: a RecordedError for the same member, ErrAnotherMembersBooking for
// another (who must not learn the outcome, nor its transaction).
func refusedFor(c Claim, existing Record) error {
	if existing.MemberNumber != c.MemberNumber {
		return fmt.Errorf("%s of booking %s/%s: %w", c.Outcome, c.PropertyID, c.StayID, ErrAnotherMembersBooking)
	}
	return &RecordedError{PropertyID: c.PropertyID, StayID: c.StayID, Asked: c.Outcome, Member: c.MemberNumber, Existing: &existing}
}

func (e *RecordedError) Error() string {
	if e.Existing != nil {
		return fmt.Sprintf("booking %s/%s: %s refused: %s already recorded (transaction %s)",
			e.PropertyID, e.StayID, e.Asked, e.Existing.Outcome, e.Existing.TransactionID)
	}
	return fmt.Sprintf("booking %s/%s: %s refused: an outcome is already recorded", e.PropertyID, e.StayID, e.Asked)
}

func (e *RecordedError) Is(target error) bool { return target == ErrRecorded }

// ErrAnotherMembersBooking: a booking is one member's, the member of its
// recorded outcomes and of its guarantee; an outcome, a charge or a
// guarantee for it in another member's name is refused.
var ErrAnotherMembersBooking = errors.New("the booking is another member's: its recorded outcome or guarantee names another member number")

// ErrBookingClosed: a guarantee for a booking whose final outcome (a
// stay, a no-show, a cancellation) is recorded would hold points for a
// room nobody is coming to.
var ErrBookingClosed = errors.New("the booking's outcome is recorded: a guarantee is for an arrival to come")

const insertColumns = `booking_outcomes (id, property_id, stay_id, slot, outcome, member_number, caller_id, idempotency_key,
	transaction_id, effective_at, recorded_at)`

// ClaimEvent is what the event of a claim (loyalty.booking.recorded.v1,
// or loyalty.booking.corrected.v1 for a claim that replaces an outcome)
// says besides the claim.
type ClaimEvent struct {
	// Points the claim's transaction moves on the member's account.
	Points int64
	// PartnerID is the partner whose hotel it is, if any.
	PartnerID string
	// Replaces is the outcome the claim takes the place of, with the
	// reason: the event is then a correction.
	Replaces *Record
	Reason   string
}

// record is the event of claim c, stored as row id.
func (e ClaimEvent) record(c Claim, id uuid.UUID, recordedAt time.Time) events.Record {
	d := events.BookingData{MemberNumber: c.MemberNumber, PropertyID: c.PropertyID, StayID: c.StayID, Outcome: string(c.Outcome),
		Points: e.Points, PartnerID: e.PartnerID}
	if e.Replaces == nil {
		return events.BookingRecorded(d, c.EffectiveAt, recordedAt, id)
	}
	d.PreviousOutcome, d.Reason = string(e.Replaces.Outcome), e.Reason
	if e.Replaces.TransactionID != uuid.Nil {
		d.PreviousTransactionID = e.Replaces.TransactionID.String()
	}
	return events.BookingCorrected(d, c.EffectiveAt, recordedAt, id)
}

// ClaimWith is the effect that records c with its ledger transaction, and
// announces it (e): the transaction fails with a RecordedError, and writes
// nothing, when the booking has such an outcome already.
func ClaimWith(c Claim, e ClaimEvent) ledger.Statement {
	id := uuid.New()
	args := make([]any, 0, claimParameters+claimEventParameters)
	args = append(args, id, c.PropertyID, c.StayID, c.Outcome.slot(), string(c.Outcome), c.MemberNumber, c.CallerID, c.IdempotencyKey)
	recorded := c.EffectiveAt // the transaction's, in SQL: r needs a value
	insert, eventArgs := events.InsertSelect(e.record(c, id, recorded), claimParameters+1, claimFill, "claimed")
	if len(eventArgs) != claimEventParameters {
		panic("bookings: the parameters of a claim's event are miscounted")
	}
	return ledger.Statement{
		SQL:             claimWithHead + insert,
		Args:            append(args, eventArgs...),
		WithTransaction: true,
		Conflict:        &RecordedError{PropertyID: c.PropertyID, StayID: c.StayID, Asked: c.Outcome, Member: c.MemberNumber},
	}
}

// The parameters of ClaimWith's statement: the claim's 8, then its
// event's values but its recorded time and transaction (8), then the
// transaction's id, effective and recorded times (WithTransaction), from
// claimTransaction. The event occurs at the claim's business time. All
// are the same for every claim: its SQL is put together once.
const (
	claimParameters      = 8
	claimEventParameters = 8
	claimTransaction     = claimParameters + claimEventParameters + 1
)

var (
	claimFill = events.Fill{
		RecordedAt:    fmt.Sprintf("$%d::TIMESTAMPTZ", claimTransaction+2),
		TransactionID: fmt.Sprintf("$%d::UUID", claimTransaction),
		Data:          fmt.Sprintf("jsonb_build_object('transaction_id', $%d::UUID::TEXT)", claimTransaction),
	}
	claimWithHead = fmt.Sprintf(`WITH claimed AS (
				INSERT INTO `+insertColumns+` VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $%d, $%d, $%d) RETURNING id)
			`, claimTransaction, claimTransaction+1, claimTransaction+2)
)

// Released is what the event of a booking freed by a reversal says:
// whose booking, where, the points the reversal moves, and why.
type Released struct {
	MemberNumber, PropertyID, StayID, PartnerID string
	Points                                      int64
	Reason                                      string
}

// Release is the effect of a reversal that frees the booking whose outcome
// the reversed transaction recorded, if it recorded one, so that the
// booking can be recorded again; the booking then has no outcome, and its
// event (loyalty.booking.corrected.v1, r) says so.
func Release(reversed uuid.UUID, r Released) ledger.Statement {
	d := events.BookingData{MemberNumber: r.MemberNumber, PropertyID: r.PropertyID, StayID: r.StayID, Points: r.Points,
		PartnerID: r.PartnerID, PreviousTransactionID: reversed.String(), Reason: r.Reason}
	record := events.BookingCorrected(d, time.Unix(0, 0), time.Unix(0, 0), reversed) // times: the reversal's, in SQL
	args := []any{reversed}
	insert, eventArgs := events.InsertSelect(record, len(args)+1, events.Fill{
		OccurredAt: "releasing.effective_at", RecordedAt: "releasing.recorded_at", TransactionID: "releasing.id",
		Data: "jsonb_build_object('previous_outcome', released.outcome, 'transaction_id', releasing.id::TEXT)",
	}, "released, releasing")
	args = append(args, eventArgs...)
	n := len(args)
	return ledger.Statement{
		// $n+1..$n+3: the reversal's id, effective and recorded times.
		SQL: fmt.Sprintf(`WITH releasing (id, effective_at, recorded_at) AS (VALUES ($%d::UUID, $%d::TIMESTAMPTZ, $%d::TIMESTAMPTZ)),
			released AS (
				UPDATE booking_outcomes SET released_by = releasing.id, released_at = releasing.recorded_at
				FROM releasing WHERE booking_outcomes.transaction_id = $1 AND booking_outcomes.released_by IS NULL
				RETURNING booking_outcomes.outcome)
			`, n+1, n+2, n+3) + insert,
		Args:            args,
		WithTransaction: true,
	}
}

// releaseQuietly is Release without an event: for a correction, whose
// new outcome's claim announces the change.
func releaseQuietly(reversed uuid.UUID) ledger.Statement {
	return release("booking_outcomes.transaction_id = $1", reversed)
}

// releaseRecord is the effect of a transaction that takes the place of an
// outcome which posted nothing (record id); the new outcome announces it.
func releaseRecord(id uuid.UUID) ledger.Statement {
	return release("booking_outcomes.id = $1", id)
}

// release frees the booking rows that match where (on arg, $1): the
// transaction the statement commits with releases them.
func release(where string, arg any) ledger.Statement {
	return ledger.Statement{
		// $2..$4: the releasing transaction's id, effective and recorded times.
		SQL: `WITH releasing (id, effective_at, recorded_at) AS (VALUES ($2::UUID, $3::TIMESTAMPTZ, $4::TIMESTAMPTZ))
			UPDATE booking_outcomes SET released_by = releasing.id, released_at = releasing.recorded_at
			FROM releasing WHERE ` + where + ` AND booking_outcomes.released_by IS NULL`,
		Args:            []any{arg},
		WithTransaction: true,
	}
}

// Store reads booking outcomes, and claims those that post nothing.
type Store struct {
	db  *database.DB
	now func() time.Time
}

// New returns a store; clock nil means time.Now.
func New(l *ledger.Ledger, clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{db: l.DB(), now: clock}
}

// Claim records an outcome that posts no transaction (a free
// cancellation, an exempt no-show, a stay that earns nothing), and
// announces it (e); effects are written with it (a stay's qualifying
// figures), none of them an effect of a ledger transaction. The retry of
// the same request (same caller and idempotency key, same outcome) returns
// the first record; any other claim of the booking's slot is a
// RecordedError.
func (s *Store) Claim(ctx context.Context, c Claim, e ClaimEvent, effects ...ledger.Statement) (Record, error) {
	if c.EffectiveAt.IsZero() {
		return Record{}, fmt.Errorf("claim %s of booking %s/%s: no effective time", c.Outcome, c.PropertyID, c.StayID)
	}
	for _, x := range effects {
		// A claim's own unique violation is its refusal: an effect may not
		// have one of its own.
		if x.WithTransaction || x.Conflict != nil {
			return Record{}, fmt.Errorf("claim %s of booking %s/%s: an effect of a ledger transaction, or with a conflict of its own, cannot go with a claim",
				c.Outcome, c.PropertyID, c.StayID)
		}
	}
	if members.Retrying(ctx) {
		// The retry of a write made before the member's closure: it gets
		// its own outcome back, and records nothing new for the member.
		existing, err := s.Current(ctx, c.PropertyID, c.StayID, c.Outcome)
		if err == nil && existing.CallerID == c.CallerID && existing.IdempotencyKey == c.IdempotencyKey && existing.Outcome == c.Outcome {
			return existing, nil
		}
		if err != nil && !errors.Is(err, ErrNotFound) {
			return Record{}, err
		}
		return Record{}, fmt.Errorf("claim %s of booking %s/%s: member %s: %w", c.Outcome, c.PropertyID, c.StayID, c.MemberNumber, members.ErrClosed)
	}
	r := Record{Claim: c, ID: uuid.New(), RecordedAt: s.now().UTC().Truncate(time.Microsecond)}
	event := events.Row(e.record(c, r.ID, r.RecordedAt))
	err := s.db.WriteTx(ctx, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO `+insertColumns+` VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10)`,
			r.ID, c.PropertyID, c.StayID, c.Outcome.slot(), string(c.Outcome), c.MemberNumber, c.CallerID, c.IdempotencyKey,
			c.EffectiveAt, r.RecordedAt)
		b.Queue(event.Text(), event.Args...)
		for _, x := range effects {
			b.Queue(x.Text(), x.Args...)
		}
		return tx.SendBatch(ctx, b).Close()
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		existing, err := s.Current(ctx, c.PropertyID, c.StayID, c.Outcome)
		if err != nil {
			return Record{}, err
		}
		if existing.CallerID == c.CallerID && existing.IdempotencyKey == c.IdempotencyKey && existing.Outcome == c.Outcome {
			return existing, nil
		}
		return Record{}, refusedFor(c, existing)
	}
	if err != nil {
		return Record{}, fmt.Errorf("claim %s of booking %s/%s: %w", c.Outcome, c.PropertyID, c.StayID, err)
	}
	return r, nil
}

// ErrNotFound: the booking has no such outcome.
var ErrNotFound = errors.New("no such booking outcome")

// MaxHistory bounds a booking's history: outcomes recorded and reversed
// again and again are a mistake to investigate, not to page through.
const MaxHistory = 100

// History is every outcome and late check-out recorded for a booking,
// released ones too, oldest first.
func (s *Store) History(ctx context.Context, propertyID, stayID string) ([]Record, error) {
	rows, err := s.db.Pool.Query(ctx, recordSelect+` WHERE property_id = $1 AND stay_id = $2 ORDER BY recorded_at, id LIMIT $3`,
		propertyID, stayID, MaxHistory)
	if err != nil {
		return nil, fmt.Errorf("read booking %s/%s: %w", propertyID, stayID, err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("read booking %s/%s: %w", propertyID, stayID, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const recordSelect = `SELECT id, property_id, stay_id, outcome, member_number, caller_id, idempotency_key,
	transaction_id, effective_at, recorded_at, released_by, released_at FROM booking_outcomes`

func scanRecord(row pgx.Row) (Record, error) {
	var r Record
	var txn, releasedBy *uuid.UUID
	var releasedAt *time.Time
	if err := row.Scan(&r.ID, &r.PropertyID, &r.StayID, &r.Outcome, &r.MemberNumber, &r.CallerID, &r.IdempotencyKey,
		&txn, &r.EffectiveAt, &r.RecordedAt, &releasedBy, &releasedAt); err != nil {
		return Record{}, err
	}
	if txn != nil {
		r.TransactionID = *txn
	}
	if releasedBy != nil {
		r.ReleasedBy, r.ReleasedAt = *releasedBy, *releasedAt
	}
	return r, nil
}

// Current is the booking's outcome in the slot of outcome (its final
// outcome, or its late check-out), not released; ErrNotFound if none.
func (s *Store) Current(ctx context.Context, propertyID, stayID string, outcome Outcome) (Record, error) {
	r, err := scanRecord(s.db.Pool.QueryRow(ctx, recordSelect+` WHERE property_id = $1 AND stay_id = $2 AND slot = $3 AND released_by IS NULL`,
		propertyID, stayID, outcome.slot()))
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, fmt.Errorf("booking %s/%s: %w", propertyID, stayID, ErrNotFound)
	}
	if err != nil {
		return Record{}, fmt.Errorf("read booking %s/%s: %w", propertyID, stayID, err)
	}
	return r, nil
}

// Outcomes are the booking's outcomes not released: its final outcome and
// its late check-out, at most one each.
func (s *Store) Outcomes(ctx context.Context, propertyID, stayID string) ([]Record, error) {
	rows, err := s.db.Pool.Query(ctx, recordSelect+` WHERE property_id = $1 AND stay_id = $2 AND released_by IS NULL LIMIT 2`, propertyID, stayID)
	if err != nil {
		return nil, fmt.Errorf("read booking %s/%s: %w", propertyID, stayID, err)
	}
	records, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Record, error) { return scanRecord(row) })
	if err != nil {
		return nil, fmt.Errorf("read booking %s/%s: %w", propertyID, stayID, err)
	}
	return records, nil
}

// Explain fills a RecordedError in err with the outcome that took the
// booking, for the client that lost its answer, or makes it
// ErrAnotherMembersBooking when that outcome is another member's; err is
// returned as it is otherwise, or when the outcome cannot be read (it was
// released since).
func (s *Store) Explain(ctx context.Context, err error) error {
	var recorded *RecordedError
	if !errors.As(err, &recorded) || recorded.Existing != nil {
		return err
	}
	existing, rerr := s.Current(ctx, recorded.PropertyID, recorded.StayID, recorded.Asked)
	if rerr != nil {
		return err
	}
	return refusedFor(Claim{PropertyID: recorded.PropertyID, StayID: recorded.StayID, Outcome: recorded.Asked, MemberNumber: recorded.Member}, existing)
}
