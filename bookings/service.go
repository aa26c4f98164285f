package bookings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// Service turns a booking's events (a stay, a no-show, a cancellation, a
// guarantee, a late check-out) into one ledger transaction each with its
// effects: points by the programme's rules, tier qualification, the
// first-stay claim, the booking's outcome. Every entry point shares it:
// the RPC services today, file imports and jobs tomorrow. It decides; the
// callers authenticate, validate the shape of requests and map errors.
type Service struct {
	ledger   *ledger.Ledger
	members  *members.Store
	partners *partners.Store
	bookings *Store
	now      func() time.Time
}

// NewService returns the service; clock nil means time.Now.
func NewService(l *ledger.Ledger, m *members.Store, p *partners.Store, b *Store, clock func() time.Time) *Service {
	if clock == nil {
		clock = time.Now
	}
	return &Service{ledger: l, members: m, partners: p, bookings: b, now: clock}
}

// Request is who asks, and the identity of their request: a retry with the
// same caller and idempotency key (and fingerprint) is answered with the
// first result.
type Request struct {
	CallerID       string
	IdempotencyKey string
	// Fingerprint stands for the whole request in the ledger's idempotency
	// check (see ledger.PostRequest); optional.
	Fingerprint []byte
}

// key names the request in an event's id: the same request names the
// same event.
func (r Request) key() string { return r.CallerID + "\x00" + r.IdempotencyKey }

// FieldError is a request that the rules refuse for one of its fields.
type FieldError struct {
	Field, Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

func fieldError(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// TooEarlyError is an outcome asked for before it can have happened: a
// no-show while the room is still held.
type TooEarlyError struct {
	StayID string
	// From is when the outcome can be recorded.
	From time.Time
}

func (e *TooEarlyError) Error() string {
	return fmt.Sprintf("the room of %s is held until %s at the hotel: a no-show is recorded after that", e.StayID, e.From.Format("2006-01-02 15:04"))
}

// ErrNoGuarantee: the stay has no guarantee.
var ErrNoGuarantee = errors.New("no guarantee for this stay")

// stayRef names a stay for the holds that guarantee it and the qualifying
// stays it counts for.
func stayRef(propertyID, stayID string) string { return "stay:" + propertyID + ":" + stayID }

// atLocal is a local date's wall-clock time hour:00 at the hotel.
func atLocal(day time.Time, hour int, property programmes.Property) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), hour, 0, 0, 0, property.Location)
}

// atClock is a local date's wall-clock time c at the hotel.
func atClock(day time.Time, c programme.Clock, property programmes.Property) time.Time {
	return time.Date(day.Year(), day.Month(), day.Day(), c.Hour, c.Minute, 0, 0, property.Location)
}

// StayBegins is when a stay's rules are decided: the start of its arrival
// day at the hotel; the member's tier then is the stay's tier.
func StayBegins(arrival time.Time, property programmes.Property) time.Time {
	return atLocal(arrival, 0, property)
}

// CompletedAt is when a stay counts as completed: noon, check-out time,
// on its departure day at the hotel.
func CompletedAt(departure time.Time, property programmes.Property) time.Time {
	return atLocal(departure, 12, property)
}

// StayAsOf is the time a stay is computed as of: its completion
// (CompletedAt), or now if it has not come yet (a stay recorded on the
// morning of its departure). Its programme version is the one in force
// then, its tier window ends then and the upgrade it earns is dated then,
// so that a stay recorded long after it happened (a historical import, a
// backlog) counts as it would have at check-out; at check-out it is within
// hours of now.
func StayAsOf(departure time.Time, property programmes.Property, now time.Time) time.Time {
	if completedAt := CompletedAt(departure, property); completedAt.Before(now) {
		return completedAt
	}
	return now
}

// ChainHotel refuses a partner's hotel for the chain's own booking events:
// every movement of points at a partner's hotel is the partner's, booked to
// its accounts and in its settlement, so it goes through the partner's API
// (AwardStay, the alliance's Redeem), never the chain's.
func ChainHotel(property programmes.Property) error {
	if property.Owner != "" && property.Owner != programmes.OwnerProgramme {
		return fieldError("property_id", "%q is a hotel of partner %s: its stays and redemptions are the partner's, recorded through AllianceService so that they settle",
			property.ID, property.Owner)
	}
	return nil
}

// localToday is today's date at the hotel, as programme.ParseLocalDate
// gives dates.
func localToday(now time.Time, property programmes.Property) time.Time {
	y, m, d := now.In(property.Location).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// notAfterToday refuses a local date after today at the hotel.
func notAfterToday(field string, day, now time.Time, property programmes.Property, why string) error {
	if today := localToday(now, property); day.After(today) {
		return fieldError(field, "is %s, after today (%s) at the hotel: %s", day.Format(time.DateOnly), today.Format(time.DateOnly), why)
	}
	return nil
}

// claim is the claim of a booking's outcome by req.
func (s *Service) claim(req Request, propertyID, stayID string, outcome Outcome, memberNumber string, effectiveAt time.Time) Claim {
	return Claim{PropertyID: propertyID, StayID: stayID, Outcome: outcome, MemberNumber: memberNumber,
		CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, EffectiveAt: effectiveAt}
}

// refuseIfRecorded answers a request for an outcome of a booking that has
// one already (by another request), or that is another member's, before
// anything else is checked or computed, so that the client hears
// ALREADY_EXISTS (or FAILED_PRECONDITION) rather than a consequence of
// it. It only reads: the unique index stays the guard against two
// requests at the same moment. Stays, the bulk of writes, skip it and let
// the index answer.
func (s *Service) refuseIfRecorded(ctx context.Context, req Request, propertyID, stayID, memberNumber string, outcome Outcome) error {
	outcomes, err := s.bookings.Outcomes(ctx, propertyID, stayID)
	if err != nil {
		return err
	}
	for _, existing := range outcomes {
		if existing.CallerID == req.CallerID && existing.IdempotencyKey == req.IdempotencyKey {
			return nil // a retry: answered as the first time
		}
	}
	// Another member's booking first: its recorded outcome (and its
	// transaction) is not this caller's to see.
	for _, existing := range outcomes {
		if existing.MemberNumber != memberNumber {
			return fmt.Errorf("%s of booking %s/%s: %w", outcome, propertyID, stayID, ErrAnotherMembersBooking)
		}
	}
	for _, existing := range outcomes {
		if existing.Outcome.slot() == outcome.slot() || contradicts(outcome, existing.Outcome) {
			return &RecordedError{PropertyID: propertyID, StayID: stayID, Asked: outcome, Member: memberNumber, Existing: &existing}
		}
	}
	return nil
}

// contradicts reports whether outcomes a and b cannot both be true of one
// booking: a late check-out is charged to a guest who stayed, a no-show or
// a cancellation to one who never came. Without it a member could be
// charged both for the same booking.
func contradicts(a, b Outcome) bool {
	missed := func(o Outcome) bool { return o == NoShow || o == CancelledFree || o == CancelledCharged }
	return a == LateCheckout && missed(b) || b == LateCheckout && missed(a)
}

// refuseAnotherMembersGuarantee refuses a write for member on a booking
// whose open guarantee is another member's.
func (s *Service) refuseAnotherMembersGuarantee(ctx context.Context, propertyID, stayID string, member members.Member) error {
	hold, err := s.ledger.HoldByReference(ctx, stayRef(propertyID, stayID))
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		return nil
	case err != nil:
		return err
	case heldForAnother(hold, member):
		return fmt.Errorf("booking %s/%s: %w", propertyID, stayID, ErrAnotherMembersBooking)
	}
	return nil
}

// heldForAnother reports whether hold is an open guarantee of another
// member than member.
func heldForAnother(hold ledger.Hold, member members.Member) bool {
	return hold.Status == ledger.HoldActive && hold.Account != member.Account()
}

// answerRetry runs write, and answers the retry of a write made before the
// member's closure as the first time: when write finds the member closed
// and the request's idempotency key was used already (in the ledger, or
// for the booking's outcome in slot, when the write records one), write
// runs again as a retry (members.ForRetry), which reads the closed member
// and reaches the key's first answer. Anything new is still refused: the
// ledger refuses a closed account, and Claim a closed member's booking.
func answerRetry[T any](ctx context.Context, s *Service, req Request, slot *bookingSlot, write func(context.Context) (T, error)) (T, error) {
	out, err := write(ctx)
	if !errors.Is(err, members.ErrClosed) || members.Retrying(ctx) {
		return out, err
	}
	retry, rerr := s.usedBefore(ctx, req, slot)
	if rerr != nil {
		return out, rerr
	}
	if !retry {
		return out, err
	}
	return write(members.ForRetry(ctx))
}

// bookingSlot is the booking outcome a write records.
type bookingSlot struct {
	propertyID, stayID string
	outcome            Outcome
}

// usedBefore reports whether req's idempotency key was used by a committed
// write: in the ledger, or for slot's outcome.
func (s *Service) usedBefore(ctx context.Context, req Request, slot *bookingSlot) (bool, error) {
	used, err := s.ledger.KeyUsed(ctx, req.CallerID, req.IdempotencyKey)
	if err != nil || used || slot == nil {
		return used, err
	}
	existing, err := s.bookings.Current(ctx, slot.propertyID, slot.stayID, slot.outcome)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return existing.CallerID == req.CallerID && existing.IdempotencyKey == req.IdempotencyKey, nil
}

// post records a transaction of the service's with its effects.
func (s *Service) post(ctx context.Context, req Request, kind ledger.Kind, v programmes.Version, effectiveAt time.Time, postings []ledger.Posting, m txmeta.Metadata, effects ...ledger.Statement) (*ledger.Transaction, error) {
	txn, err := s.ledger.Post(ctx, ledger.PostRequest{
		CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Kind: kind, EffectiveAt: effectiveAt,
		Postings: postings, Metadata: m.JSON(), Announced: m, Fingerprint: req.Fingerprint,
		Lots: v.LotPolicy(effectiveAt, kind == ledger.KindEarn || kind == ledger.KindRedeem), Effects: effects,
	})
	if err != nil {
		return nil, err
	}
	return &txn, nil
}
