package bookings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

// GuaranteeMetadata is kept with a guarantee's hold.
type GuaranteeMetadata struct {
	Member      string `json:"member_number"`
	PropertyID  string `json:"property_id"`
	StayID      string `json:"stay_id"`
	ArrivalDate string `json:"arrival_date"`
	HoldUntil   string `json:"hold_until"`
	Hours       int    `json:"hours"`
	Reason      string `json:"release_reason,omitempty"`
}

// MaxGuaranteeDaysAhead bounds how far ahead a guarantee holds points.
const MaxGuaranteeDaysAhead = 366

// PlaceGuarantee puts points on hold to keep a booking's room past the
// normal hold time, until holdUntil on the arrival day. The hold lasts
// until noon the day after arrival, so that a no-show recorded the next
// morning can still capture it.
func (s *Service) PlaceGuarantee(ctx context.Context, req Request, v programmes.Version, property programmes.Property, memberNumber, stayID string, arrival time.Time, holdUntil programme.Clock) (ledger.Hold, error) {
	return answerRetry(ctx, s, req, nil, func(ctx context.Context) (ledger.Hold, error) {
		if err := ChainHotel(property); err != nil {
			return ledger.Hold{}, err
		}
		if err := s.bookingOpenFor(ctx, req, property.ID, stayID, memberNumber); err != nil {
			return ledger.Hold{}, err
		}
		member, err := s.members.Get(ctx, memberNumber)
		if err != nil {
			return ledger.Hold{}, err
		}
		hours, points, err := v.Programme.GuaranteeHold(holdUntil)
		if err != nil {
			return ledger.Hold{}, err
		}
		expiresAt := atLocal(arrival.AddDate(0, 0, 1), 12, property)
		if err := s.guaranteeToCome(ctx, req, property, arrival, holdUntil, expiresAt); err != nil {
			return ledger.Hold{}, err
		}
		if latest := localToday(s.now(), property).AddDate(0, 0, MaxGuaranteeDaysAhead); arrival.After(latest) {
			return ledger.Hold{}, fieldError("arrival_date", "is more than %d days ahead (after %s): points are held for arrivals to come, not for years",
				MaxGuaranteeDaysAhead, latest.Format(time.DateOnly))
		}
		gm := GuaranteeMetadata{Member: member.Number, PropertyID: property.ID, StayID: stayID,
			ArrivalDate: arrival.Format(time.DateOnly), HoldUntil: holdUntil.String(), Hours: hours}
		metadata, _ := json.Marshal(gm)
		placed := events.GuaranteePlaced(guaranteeData(gm, points, expiresAt), s.now(), req.key())
		return s.ledger.PlaceHold(ctx, ledger.HoldRequest{
			CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Account: member.Account(), Points: points,
			ExpiresAt: expiresAt, Reference: stayRef(property.ID, stayID), Metadata: metadata, Fingerprint: req.Fingerprint,
			Effects: []ledger.Statement{placed},
		})
	})
}

// bookingOpenFor refuses a guarantee for a booking whose final outcome is
// recorded (ErrBookingClosed), or whose outcomes are another member's
// (ErrAnotherMembersBooking); the retry of a guarantee placed before is
// answered as the first time by the ledger.
func (s *Service) bookingOpenFor(ctx context.Context, req Request, propertyID, stayID, memberNumber string) error {
	outcomes, err := s.bookings.Outcomes(ctx, propertyID, stayID)
	if err != nil {
		return err
	}
	for _, o := range outcomes {
		if o.MemberNumber != memberNumber {
			return fmt.Errorf("guarantee of booking %s/%s: %w", propertyID, stayID, ErrAnotherMembersBooking)
		}
		if o.Outcome.slot() != LateCheckout.slot() {
			if used, err := s.usedBefore(ctx, req, nil); err != nil || used {
				return err
			}
			return fmt.Errorf("guarantee of booking %s/%s (%s): %w", propertyID, stayID, o.Outcome, ErrBookingClosed)
		}
	}
	return nil
}

// guaranteeToCome refuses a guarantee whose time has passed at the hotel:
// its arrival (the hold would end, at expiresAt), or its hold time. Placed
// after its hold time, a guarantee would keep nothing: the room is given
// away or the guest arrived, and a no-show would capture it at once. The
// retry of a guarantee placed in time is answered as the first time.
func (s *Service) guaranteeToCome(ctx context.Context, req Request, property programmes.Property, arrival time.Time, holdUntil programme.Clock, expiresAt time.Time) error {
	var late error
	switch now := s.now(); {
	case !expiresAt.After(now):
		late = fieldError("arrival_date", "is in the past: a guarantee is for an arrival to come")
	case !atClock(arrival, holdUntil, property).After(now):
		late = fieldError("hold_until", "%s on %s has passed at the hotel: a guarantee keeps a room until a time to come",
			holdUntil, arrival.Format(time.DateOnly))
	default:
		return nil
	}
	used, err := s.usedBefore(ctx, req, nil)
	if err != nil {
		return err
	}
	if used {
		return nil // the ledger answers the first placement
	}
	return late
}

// guaranteeData is what a guarantee's events say of it.
func guaranteeData(gm GuaranteeMetadata, points int64, expiresAt time.Time) events.GuaranteeData {
	return events.GuaranteeData{MemberNumber: gm.Member, PropertyID: gm.PropertyID, StayID: gm.StayID, ArrivalDate: gm.ArrivalDate,
		HoldUntil: gm.HoldUntil, Hours: gm.Hours, Points: points, ExpiresAt: events.Time(expiresAt)}
}

// guaranteeReleased is the effect that announces the release of a
// guarantee's hold, for reason (events.ReleaseAsked, ...).
func guaranteeReleased(hold ledger.Hold, reason string, now time.Time) ledger.Statement {
	var gm GuaranteeMetadata
	_ = json.Unmarshal(hold.Metadata, &gm) // a hold placed by PlaceGuarantee; another says less
	if gm.Member == "" {
		gm.Member, _ = programme.MemberOfAccount(hold.Account)
	}
	d := guaranteeData(gm, hold.Points, hold.ExpiresAt)
	d.Reason = reason
	return events.GuaranteeReleased(d, hold.ID, now)
}

// WithdrawTooLateError is a guarantee withdrawn once the normal hold time
// of its arrival day has passed: from then on the guarantee is what keeps
// the room, and the member owes its points if the guest does not come.
type WithdrawTooLateError struct {
	StayID string
	// NormalHoldEnd is when the room would have been given away without
	// the guarantee.
	NormalHoldEnd time.Time
}

func (e *WithdrawTooLateError) Error() string {
	return fmt.Sprintf("the guarantee of %s keeps the room since the normal hold time (%s at the hotel): it is withdrawn only before then; "+
		"release it as ARRIVED when the guest arrives, or record the no-show", e.StayID, e.NormalHoldEnd.Format("2006-01-02 15:04"))
}

// ReleaseGuarantee gives a booking's guarantee hold back to the member: the
// guest arrived, or (withdrawn) the member withdrew the guarantee before
// the normal hold time of the arrival day (v's), at property.
func (s *Service) ReleaseGuarantee(ctx context.Context, req Request, v programmes.Version, property programmes.Property, stayID string, withdrawn bool) (ledger.Hold, error) {
	hold, err := s.ledger.HoldByReference(ctx, stayRef(property.ID, stayID))
	if errors.Is(err, ledger.ErrNotFound) {
		return ledger.Hold{}, ErrNoGuarantee
	}
	if err != nil {
		return ledger.Hold{}, err
	}
	if withdrawn && hold.Status == ledger.HoldActive {
		if err := s.withdrawable(ctx, req, v, property, stayID, hold); err != nil {
			return ledger.Hold{}, err
		}
	}
	return s.ledger.ReleaseHold(ctx, ledger.ReleaseRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, HoldID: hold.ID, Fingerprint: req.Fingerprint,
		Effects: []ledger.Statement{guaranteeReleased(hold, events.ReleaseAsked, s.now())}})
}

// withdrawable refuses to withdraw hold, a booking's open guarantee, once
// the normal hold time of its arrival day has passed at the hotel; the
// retry of a release made in time is answered as the first time.
func (s *Service) withdrawable(ctx context.Context, req Request, v programmes.Version, property programmes.Property, stayID string, hold ledger.Hold) error {
	var gm GuaranteeMetadata
	if json.Unmarshal(hold.Metadata, &gm) != nil {
		return nil // not a guarantee PlaceGuarantee placed: no arrival to judge by
	}
	arrival, err := time.Parse(time.DateOnly, gm.ArrivalDate)
	if err != nil {
		return nil
	}
	normalHoldEnd := atClock(arrival, v.Programme.GuaranteeNormalHoldUntil, property)
	if s.now().Before(normalHoldEnd) {
		return nil
	}
	used, err := s.usedBefore(ctx, req, nil)
	if err != nil || used {
		return err
	}
	return &WithdrawTooLateError{StayID: stayID, NormalHoldEnd: normalHoldEnd}
}
