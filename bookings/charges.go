package bookings

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// LateCheckoutResult is a charged late check-out: its transaction, nil
// when the member's tier gets late check-out free.
type LateCheckoutResult struct {
	Transaction *ledger.Transaction
}

// RecordLateCheckout charges hours of late check-out of a booking departing
// on departure, at check-out: like a redemption it never overdraws; one
// charge per stay (more hours are a correction of it).
func (s *Service) RecordLateCheckout(ctx context.Context, req Request, v programmes.Version, property programmes.Property, memberNumber, stayID string, departure time.Time, hours int) (LateCheckoutResult, error) {
	return answerRetry(ctx, s, req, &bookingSlot{property.ID, stayID, LateCheckout}, func(ctx context.Context) (LateCheckoutResult, error) {
		if err := ChainHotel(property); err != nil {
			return LateCheckoutResult{}, err
		}
		if err := s.refuseIfRecorded(ctx, req, property.ID, stayID, memberNumber, LateCheckout); err != nil {
			return LateCheckoutResult{}, err
		}
		member, err := s.members.Get(ctx, memberNumber)
		if err != nil {
			return LateCheckoutResult{}, err
		}
		if err := s.refuseAnotherMembersGuarantee(ctx, property.ID, stayID, member); err != nil {
			return LateCheckoutResult{}, err
		}
		if err := notAfterToday("departure_date", departure, s.now(), property, "late check-out is charged at check-out"); err != nil {
			return LateCheckoutResult{}, err
		}
		points, lines, err := v.Programme.LateCheckoutCharge(hours, member.Tier)
		if err != nil {
			return LateCheckoutResult{}, err
		}
		if points == 0 { // free for the member's tier: nothing to post
			return LateCheckoutResult{}, nil
		}
		m := txmeta.Metadata{Kind: txmeta.KindLateCheckout, Member: member.Number, PropertyID: property.ID, StayID: stayID,
			Description: fmt.Sprintf("Late check-out of %d hour(s) at %s", hours, property.Name), Breakdown: txmeta.LinesOf(lines),
			ProgrammeVersion: v.Number}
		checkout := StayAsOf(departure, property, s.now()) // never in the future
		txn, err := s.post(ctx, req, ledger.KindRedeem, v, checkout, []ledger.Posting{
			{Account: member.Account(), Amount: points},
			{Account: programme.AccountPenaltyLateCheckout, Amount: -points},
		}, m, ClaimWith(s.claim(req, property.ID, stayID, LateCheckout, member.Number, checkout), ClaimEvent{Points: points}))
		return LateCheckoutResult{Transaction: txn}, err
	})
}

// Redemption is a reward a member spends points on, at a hotel and for a
// booking if given.
type Redemption struct {
	MemberNumber string
	Reward       programme.Reward
	Quantity     int
	// PropertyID and StayID are where and for which booking, if any.
	PropertyID, StayID string
	// ExpectedPoints, when set, is the price the member was shown: a
	// different catalogue price is a PriceChangedError.
	ExpectedPoints *int64
}

// PriceChangedError is a redemption whose price is not the one the member
// was shown.
type PriceChangedError struct{ Points int64 }

func (e *PriceChangedError) Error() string { return fmt.Sprintf("the price is %d points", e.Points) }

// Redeem spends a member's points on a reward of the catalogue: never
// below zero available points.
func (s *Service) Redeem(ctx context.Context, req Request, v programmes.Version, r Redemption) (ledger.Transaction, error) {
	points, lines, err := v.Programme.RewardPrice(r.Reward, r.Quantity)
	if err != nil {
		return ledger.Transaction{}, err
	}
	price := -points // the points the member spends
	if r.ExpectedPoints != nil && *r.ExpectedPoints != price {
		return ledger.Transaction{}, &PriceChangedError{Points: price}
	}
	// Nothing of the member but its account is needed, and the ledger
	// knows whether that exists: no read of the member first.
	memberAccount := programme.MemberAccount(r.MemberNumber).Code
	m := txmeta.Metadata{Kind: txmeta.KindRedemption, Member: r.MemberNumber, PropertyID: r.PropertyID, StayID: r.StayID,
		Description: fmt.Sprintf("Redeemed %d x %s", r.Quantity, r.Reward), Breakdown: txmeta.LinesOf(lines), ProgrammeVersion: v.Number}
	txn, err := s.post(ctx, req, ledger.KindRedeem, v, s.now(), []ledger.Posting{
		{Account: memberAccount, Amount: -price},
		{Account: programme.RedeemedAccount(r.Reward), Amount: price},
	}, m)
	var unknown *ledger.UnknownAccountError
	if errors.As(err, &unknown) && unknown.Account == memberAccount {
		return ledger.Transaction{}, fmt.Errorf("member %s: %w", r.MemberNumber, members.ErrNotFound)
	}
	// A closed member has no points: say why, rather than how many.
	var short *ledger.InsufficientPointsError
	if errors.As(err, &short) {
		if _, closed := s.members.Get(ctx, r.MemberNumber); errors.Is(closed, members.ErrClosed) {
			return ledger.Transaction{}, closed
		}
	}
	if err != nil {
		return ledger.Transaction{}, err
	}
	return *txn, nil
}
