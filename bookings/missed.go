package bookings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// MissedStay is a booking whose guest did not come: a no-show, or a
// cancellation.
type MissedStay struct {
	MemberNumber, StayID string
	// Arrival is the booked arrival date, as programme.ParseLocalDate
	// gives it.
	Arrival time.Time
	Nights  int
}

// NoShowResult is a recorded no-show: its transaction (nil when nothing
// was posted) and whether the penalty was waived.
type NoShowResult struct {
	Transaction *ledger.Transaction
	Exempt      bool
}

// RecordNoShow records that the guest of a booking made at bookedAt did
// not arrive: the booking's open guarantee is captured, or else the
// no-show penalty is charged unless the booking was a late same-day one.
// It is refused while the room is still held.
func (s *Service) RecordNoShow(ctx context.Context, req Request, v programmes.Version, property programmes.Property, ms MissedStay, bookedAt time.Time) (NoShowResult, error) {
	return answerRetry(ctx, s, req, &bookingSlot{property.ID, ms.StayID, NoShow}, func(ctx context.Context) (NoShowResult, error) {
		if err := ChainHotel(property); err != nil {
			return NoShowResult{}, err
		}
		if booked := localToday(bookedAt, property); booked.After(ms.Arrival) {
			return NoShowResult{}, fieldError("booked_at", "is on %s at the hotel, after the arrival date %s: a booking is made before its guest arrives",
				booked.Format(time.DateOnly), ms.Arrival.Format(time.DateOnly))
		}
		if err := s.refuseIfRecorded(ctx, req, property.ID, ms.StayID, ms.MemberNumber, NoShow); err != nil {
			return NoShowResult{}, err
		}
		member, err := s.members.Get(ctx, ms.MemberNumber)
		if err != nil {
			return NoShowResult{}, err
		}
		exempt, err := v.Programme.SameDayLateBooking(bookedAt, ms.Arrival.Format(time.DateOnly), property.Location)
		if err != nil {
			return NoShowResult{}, err
		}
		txn, exempted, err := s.chargeMissedStay(ctx, req, txmeta.KindNoShow, v, property, member, ms, exempt, time.Time{})
		return NoShowResult{Transaction: txn, Exempt: exempted}, err
	})
}

// CancellationResult is a recorded cancellation: free (nothing posted, an
// open guarantee released), or charged by its transaction.
type CancellationResult struct {
	Transaction *ledger.Transaction
	Free        bool
}

// RecordCancellation records a cancellation made at cancelledAt: free
// before the deadline of the member's tier in force then (an open
// guarantee is released), or of a same-day booking made after 18:00
// (bookedAt, when known: zero when not), whose deadline had passed when it
// was made; otherwise charged like a no-show.
func (s *Service) RecordCancellation(ctx context.Context, req Request, v programmes.Version, property programmes.Property, ms MissedStay, cancelledAt, bookedAt time.Time) (CancellationResult, error) {
	return answerRetry(ctx, s, req, &bookingSlot{property.ID, ms.StayID, CancelledCharged}, func(ctx context.Context) (CancellationResult, error) {
		if err := ChainHotel(property); err != nil {
			return CancellationResult{}, err
		}
		// As far ahead as a guarantee may hold points: a booking for an
		// arrival years away is a typo, not a booking.
		if latest := localToday(s.now(), property).AddDate(0, 0, MaxGuaranteeDaysAhead); ms.Arrival.After(latest) {
			return CancellationResult{}, fieldError("arrival_date", "is more than %d days ahead (after %s): a cancellation is of a booking for an arrival within a year",
				MaxGuaranteeDaysAhead, latest.Format(time.DateOnly))
		}
		if err := s.refuseIfRecorded(ctx, req, property.ID, ms.StayID, ms.MemberNumber, CancelledCharged); err != nil {
			return CancellationResult{}, err
		}
		// The deadline is the arrival's: a wrong date would make a late
		// cancellation free, or a free one late.
		if hold, err := s.ledger.HoldByReference(ctx, stayRef(property.ID, ms.StayID)); err == nil && stillHolds(hold, s.now()) {
			if err := sameArrival(hold, ms); err != nil {
				return CancellationResult{}, err
			}
		} else if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return CancellationResult{}, err
		}
		member, err := s.members.Get(ctx, ms.MemberNumber)
		if err != nil {
			return CancellationResult{}, err
		}
		// The tier in force when the guest cancelled decides the deadline, not
		// the tier the member has reached since.
		tierThen, err := s.members.TierAt(ctx, member, cancelledAt)
		if err != nil {
			return CancellationResult{}, err
		}
		free, err := v.Programme.FreeCancellation(tierThen, cancelledAt, ms.Arrival.Format(time.DateOnly), property.Location)
		if err != nil {
			return CancellationResult{}, err
		}
		if !free && !bookedAt.IsZero() {
			if booked := localToday(bookedAt, property); booked.After(ms.Arrival) {
				return CancellationResult{}, fieldError("booked_at", "is on %s at the hotel, after the arrival date %s: a booking is made before its guest arrives",
					booked.Format(time.DateOnly), ms.Arrival.Format(time.DateOnly))
			}
			if free, err = v.Programme.SameDayLateBooking(bookedAt, ms.Arrival.Format(time.DateOnly), property.Location); err != nil {
				return CancellationResult{}, err
			}
		}
		if !free {
			txn, _, err := s.chargeMissedStay(ctx, req, txmeta.KindCancellation, v, property, member, ms, false, cancelledAt)
			return CancellationResult{Transaction: txn}, err
		}
		hold, err := s.ledger.HoldByReference(ctx, stayRef(property.ID, ms.StayID))
		if err == nil && heldForAnother(hold, member) {
			return CancellationResult{}, fmt.Errorf("cancellation of booking %s/%s: %w", property.ID, ms.StayID, ErrAnotherMembersBooking)
		}
		// The booking's outcome first: a booking that already has one is
		// refused before its guarantee is touched.
		if _, err := s.bookings.Claim(ctx, s.claim(req, property.ID, ms.StayID, CancelledFree, member.Number, cancelledAt), ClaimEvent{}); err != nil {
			return CancellationResult{}, err
		}
		if err == nil && hold.Account == member.Account() {
			_, err = s.ledger.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, HoldID: hold.ID, Fingerprint: req.Fingerprint,
				Effects: []ledger.Statement{guaranteeReleased(hold, events.ReleaseFreeCancellation, s.now())}})
			if errors.Is(err, ledger.ErrHoldNotActive) || errors.Is(err, ledger.ErrHoldExpired) {
				err = nil // nothing left to release
			}
		}
		if err != nil && !errors.Is(err, ledger.ErrNotFound) {
			return CancellationResult{}, err
		}
		return CancellationResult{Free: true}, nil
	})
}

// chargeMissedStay charges a no-show or a late cancellation (made at
// cancelledAt): it captures the stay's open guarantee, the charge the
// member agreed to in advance, or else posts the no-show penalty unless
// exempt. Either way it records the booking's outcome. It returns nil when
// nothing was posted, and whether the penalty was waived.
func (s *Service) chargeMissedStay(ctx context.Context, req Request, kind string, v programmes.Version, property programmes.Property, member members.Member, ms MissedStay, exempt bool, cancelledAt time.Time) (*ledger.Transaction, bool, error) {
	m := txmeta.Metadata{Kind: kind, Member: member.Number, PropertyID: property.ID, StayID: ms.StayID, ProgrammeVersion: v.Number}
	noShowAt := atLocal(ms.Arrival, 18, property)
	claim := s.claim(req, property.ID, ms.StayID, NoShow, member.Number, noShowAt)
	if kind == txmeta.KindCancellation {
		claim.Outcome, claim.EffectiveAt = CancelledCharged, cancelledAt
	}
	hold, err := s.ledger.HoldByReference(ctx, stayRef(property.ID, ms.StayID))
	if err == nil && heldForAnother(hold, member) {
		return nil, false, fmt.Errorf("%s of booking %s/%s: %w", kind, property.ID, ms.StayID, ErrAnotherMembersBooking)
	}
	if err == nil && stillHolds(hold, s.now()) {
		if err := sameArrival(hold, ms); err != nil {
			return nil, false, err
		}
	}
	if kind == txmeta.KindNoShow {
		// A guest is a no-show only once the room is no longer held: after
		// the normal hold time, or the open guarantee's.
		heldUntil := atClock(ms.Arrival, v.Programme.GuaranteeNormalHoldUntil, property)
		if err == nil && hold.Status == ledger.HoldActive {
			var gm GuaranteeMetadata
			if json.Unmarshal(hold.Metadata, &gm) == nil {
				if c, perr := programme.ParseClock(gm.HoldUntil); perr == nil {
					heldUntil = atClock(ms.Arrival, c, property)
				}
			}
		}
		if s.now().Before(heldUntil) {
			return nil, false, &TooEarlyError{StayID: ms.StayID, From: heldUntil}
		}
	}
	switch {
	case err == nil && hold.Account == member.Account() && hold.Status != ledger.HoldReleased && !hold.Expired(s.now()):
		// Active: capture it. Captured already: the ledger replays our own
		// capture, or says it was captured by another request. Lapsed (its
		// points count again since noon the day after arrival): no longer
		// a guarantee, the penalty applies.
		m.Description = fmt.Sprintf("Guarantee for %s at %s captured: %d points", ms.StayID, property.ID, hold.Points)
		m.Breakdown = []txmeta.Line{{Rule: "guarantee_capture", Description: m.Description, Points: 0, HeldPoints: -hold.Points}}
		txn, err := s.ledger.CaptureHold(ctx, ledger.CaptureRequest{
			CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, HoldID: hold.ID, Points: hold.Points,
			Destination: programme.AccountPenaltyGuarantee, Kind: ledger.KindHoldCapture, Metadata: m.JSON(),
			Fingerprint: req.Fingerprint, Effects: []ledger.Statement{ClaimWith(claim, ClaimEvent{Points: -hold.Points})},
		})
		if err != nil {
			return nil, false, err
		}
		return &txn, false, nil
	case err != nil && !errors.Is(err, ledger.ErrNotFound):
		return nil, false, err
	}
	points, lines := v.Programme.NoShowPenalty(ms.Nights, exempt)
	if points == 0 {
		_, err := s.bookings.Claim(ctx, claim, ClaimEvent{})
		return nil, true, err
	}
	arrival := ms.Arrival.Format(time.DateOnly)
	m.Description = fmt.Sprintf("No-show penalty for %s at %s, arrival %s", ms.StayID, property.ID, arrival)
	if kind == txmeta.KindCancellation {
		m.Description = fmt.Sprintf("Late cancellation of %s at %s, arrival %s", ms.StayID, property.ID, arrival)
	}
	m.Breakdown = txmeta.LinesOf(lines)
	txn, err := s.post(ctx, req, ledger.KindPenalty, v, noShowAt, []ledger.Posting{
		{Account: member.Account(), Amount: points},
		{Account: programme.AccountPenaltyNoShow, Amount: -points},
	}, m, ClaimWith(claim, ClaimEvent{Points: points}))
	return txn, false, err
}

// stillHolds reports whether a booking's guarantee hold holds at now:
// neither released nor captured, nor lapsed.
func stillHolds(hold ledger.Hold, now time.Time) bool {
	return hold.Status == ledger.HoldActive && !hold.Expired(now)
}

// sameArrival refuses a no-show or a cancellation of a booking whose open
// guarantee is for another arrival date: one of the two dates is wrong,
// and the guarantee would be captured by the hold time of a day it does
// not hold.
func sameArrival(hold ledger.Hold, ms MissedStay) error {
	var gm GuaranteeMetadata
	if json.Unmarshal(hold.Metadata, &gm) != nil || gm.ArrivalDate == "" {
		return nil // not a guarantee PlaceGuarantee placed
	}
	if arrival := ms.Arrival.Format(time.DateOnly); arrival != gm.ArrivalDate {
		return fieldError("arrival_date", "is %s, but the booking's open guarantee is for an arrival on %s: send the booking's arrival date",
			arrival, gm.ArrivalDate)
	}
	return nil
}
