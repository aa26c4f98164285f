package bookings

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
)

// Booking is everything the service knows of a booking.
type Booking struct {
	PropertyID, StayID string
	// MemberNumber is the member of its outcomes, or of its guarantees.
	MemberNumber string
	// Outcome and LateCheckout are those in force; nil if none.
	Outcome, LateCheckout *Record
	// Records are every outcome and late check-out recorded, released
	// ones too, oldest first.
	Records    []Record
	Guarantees []ledger.Hold
	// Transactions are every transaction that touched the booking, oldest
	// first: outcomes, late check-outs, their reversals, captures.
	Transactions []ledger.Transaction
}

// Booking reads a booking; ErrNotFound when nothing was ever recorded of it.
func (s *Service) Booking(ctx context.Context, propertyID, stayID string) (Booking, error) {
	b := Booking{PropertyID: propertyID, StayID: stayID}
	records, err := s.bookings.History(ctx, propertyID, stayID)
	if err != nil {
		return Booking{}, err
	}
	holds, err := s.ledger.HoldsByReference(ctx, stayRef(propertyID, stayID))
	if err != nil {
		return Booking{}, err
	}
	if len(records) == 0 && len(holds) == 0 {
		return Booking{}, fmt.Errorf("booking %s/%s: %w", propertyID, stayID, ErrNotFound)
	}
	b.Records, b.Guarantees = records, holds
	seen := map[uuid.UUID]bool{}
	var ids []uuid.UUID
	add := func(id uuid.UUID) {
		if id != uuid.Nil && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	for _, h := range holds {
		add(h.CaptureID)
	}
	for i, r := range records {
		b.MemberNumber = r.MemberNumber
		add(r.TransactionID)
		add(r.ReleasedBy)
		if r.ReleasedBy == uuid.Nil {
			if r.Outcome == LateCheckout {
				b.LateCheckout = &records[i]
			} else {
				b.Outcome = &records[i]
			}
		}
	}
	if b.MemberNumber == "" && len(holds) > 0 {
		var gm GuaranteeMetadata
		if json.Unmarshal(holds[0].Metadata, &gm) == nil {
			b.MemberNumber = gm.Member
		}
	}
	for _, id := range ids {
		txn, err := s.ledger.Transaction(ctx, id)
		if err != nil {
			return Booking{}, fmt.Errorf("booking %s/%s: %w", propertyID, stayID, err)
		}
		b.Transactions = append(b.Transactions, txn)
	}
	slices.SortStableFunc(b.Transactions, func(x, y ledger.Transaction) int { return x.RecordedAt.Compare(y.RecordedAt) })
	return b, nil
}
