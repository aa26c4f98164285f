package ledger

import (
	"errors"
	"fmt"

	"github.com/google/uuid"
)

// Sentinel errors; check them with errors.Is. The typed errors below carry
// the details a caller needs to act (which field, which account, how short).
var (
	ErrInvalid             = errors.New("invalid request")
	ErrUnknownAccount      = errors.New("unknown account")
	ErrAccountExists       = errors.New("account exists with other settings")
	ErrInsufficientPoints  = errors.New("insufficient points")
	ErrIdempotencyConflict = errors.New("idempotency key reused with a different request")
	ErrNotFound            = errors.New("not found")
	ErrAlreadyReversed     = errors.New("transaction already reversed")
	ErrNotReversible       = errors.New("transaction cannot be reversed")
	ErrHoldNotActive       = errors.New("hold is not active")
	ErrHoldExpired         = errors.New("hold has expired")
	ErrHoldExists          = errors.New("an active hold with this reference exists")
)

// FieldError says which field of a request is wrong and why.
type FieldError struct {
	Field   string // e.g. "postings[1].amount"
	Problem string
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Problem) }
func (e *FieldError) Is(target error) bool {
	return target == ErrInvalid
}

func invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// UnknownAccountError names an account that does not exist.
type UnknownAccountError struct{ Account string }

func (e *UnknownAccountError) Error() string { return fmt.Sprintf("unknown account %q", e.Account) }
func (e *UnknownAccountError) Is(target error) bool {
	return target == ErrUnknownAccount
}

// InsufficientPointsError is an overdraft refused: the transaction would
// have left Account's available balance below zero.
type InsufficientPointsError struct {
	Account   string
	Posted    int64 // balance before the transaction
	Held      int64
	Available int64 // Posted - Held
	Requested int64 // points the transaction takes from the account
	Shortfall int64 // Requested - Available
}

func (e *InsufficientPointsError) Error() string {
	return fmt.Sprintf("insufficient points on %s: available %d (posted %d, held %d), requested %d, short by %d",
		e.Account, e.Available, e.Posted, e.Held, e.Requested, e.Shortfall)
}
func (e *InsufficientPointsError) Is(target error) bool {
	return target == ErrInsufficientPoints
}

// IdempotencyConflictError is a key reused for a different request.
type IdempotencyConflictError struct {
	CallerID, Key string
	// Operation is what the key was first used for.
	Operation string
}

func (e *IdempotencyConflictError) Error() string {
	return fmt.Sprintf("idempotency key %q of caller %q was already used for a different %s request", e.Key, e.CallerID, e.Operation)
}
func (e *IdempotencyConflictError) Is(target error) bool {
	return target == ErrIdempotencyConflict
}

// AlreadyReversedError says which transaction reversed the original.
type AlreadyReversedError struct {
	TransactionID, ReversedByID uuid.UUID
}

func (e *AlreadyReversedError) Error() string {
	return fmt.Sprintf("transaction %s was already reversed by %s", e.TransactionID, e.ReversedByID)
}
func (e *AlreadyReversedError) Is(target error) bool {
	return target == ErrAlreadyReversed
}

// HoldStateError is an operation on a hold that is no longer active or has
// expired.
type HoldStateError struct {
	HoldID uuid.UUID
	Status HoldStatus
	// Expired is set when the hold is active by state but past ExpiresAt.
	Expired bool
	Op      string // "capture" or "release"
}

func (e *HoldStateError) Error() string {
	if e.Expired {
		return fmt.Sprintf("cannot %s hold %s: it has expired", e.Op, e.HoldID)
	}
	return fmt.Sprintf("cannot %s hold %s: it is already %s", e.Op, e.HoldID, e.Status)
}
func (e *HoldStateError) Is(target error) bool {
	if e.Expired {
		return target == ErrHoldExpired
	}
	return target == ErrHoldNotActive
}

// ErrAccountClosed: the account is closed and takes no more postings or
// holds. AccountClosedError says which.
var ErrAccountClosed = errors.New("account closed")

// AccountClosedError is a write refused because an account it moves is
// closed; nothing was written.
type AccountClosedError struct{ Account string }

func (e *AccountClosedError) Error() string { return fmt.Sprintf("account %s is closed", e.Account) }

func (e *AccountClosedError) Is(target error) bool { return target == ErrAccountClosed }

// NotSettledError is a closure refused because the account's balance after
// it would not be zero, or points are on hold: the balance moved since the
// caller read it. Nothing was written; read the balance again and retry.
type NotSettledError struct {
	Account      string
	Posted, Held int64 // after the transaction
}

func (e *NotSettledError) Error() string {
	return fmt.Sprintf("account %s would close with %d points posted and %d held, not zero", e.Account, e.Posted, e.Held)
}
