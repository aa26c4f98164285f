// Package partners keeps the alliance's partner hotel groups: their records
// and status (active or suspended, with who, when and why), their rates
// versioned by effective time (the issue rate a partner owes per point it
// awards, the reimbursement rate the programme owes per point redeemed at
// its hotels, and its earning rate card), the index of the ledger
// transactions at their hotels, and the settlement computed from it.
//
// Rates are append-only: a change is a new version from a time not in the
// past, so the version in force at a transaction's effective time, recorded
// with the transaction, never changes after the fact. Every partner has two
// ledger accounts, sharded like the programme's (see IssuedAccount and
// RedeemedAccount); the amounts of money are exact decimals, rounded to
// cents only at the end of a settlement.
package partners

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/trust"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

var (
	// ErrNotFound: no partner with that id, or (for a partner's own reads)
	// nothing of that partner's with that id.
	ErrNotFound = errors.New("partner not found")
	// ErrExists: a partner with that id exists already.
	ErrExists = errors.New("partner exists already")
	// ErrSuspended: the partner is suspended; its writes are refused.
	ErrSuspended = errors.New("partner is suspended")
	// ErrNoRates: no rate version of the partner is in force at that time.
	ErrNoRates = errors.New("no partner rates in force")
)

// Limits.
const (
	MaxNameLength   = 200
	MaxReasonLength = 500
	// maxRateDecimals is the most decimal places of a rate (money per
	// point is small: 0.00812345).
	maxRateDecimals = 8
	// RateLead is how far ahead of now a new rate version must start: a
	// rate change never reprices a transaction already recorded or in
	// flight, and every process has read the new version before it starts
	// (a process prices by what it read of the rates up to TrustFor ago;
	// SetRates answers after changeWait).
	RateLead = 2 * TrustFor
	// MaxRatesAheadYears bounds how far ahead a rate version may start:
	// each starts after the last, so one set for 9999 would be the last.
	MaxRatesAheadYears = 2
	// maxPartners bounds List.
	maxPartners = 1000
)

// OwnerProgramme is the properties' owner for the chain's own hotels; no
// partner may take its name.
const OwnerProgramme = "programme"

var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$`)

// Status says whether a partner's keys may write.
type Status string

const (
	StatusActive    Status = "active"
	StatusSuspended Status = "suspended"
)

// Partner is a partner hotel group of the alliance.
type Partner struct {
	ID              string    `json:"partner_id"`
	Name            string    `json:"name"`
	Currency        string    `json:"settlement_currency"`
	Status          Status    `json:"status"`
	StatusChangedAt time.Time `json:"status_changed_at"`
	StatusChangedBy string    `json:"status_changed_by"`
	StatusReason    string    `json:"status_reason"`
	CreatedAt       time.Time `json:"created_at"`
	CreatedBy       string    `json:"created_by"`
	// Rates are every version, oldest first (Get and Create only).
	Rates []Rates `json:"rates,omitempty"`
}

// Rates is one version of a partner's rates, in force from EffectiveAt
// until the next version's. Money is per point, in the partner's
// settlement currency.
type Rates struct {
	Version           int             `json:"version"`
	EffectiveAt       time.Time       `json:"effective_at"`
	IssueRate         decimal.Decimal `json:"issue_rate"`
	ReimbursementRate decimal.Decimal `json:"reimbursement_rate"`
	Card              RateCard        `json:"rate_card"`
	CreatedAt         time.Time       `json:"created_at"`
	CreatedBy         string          `json:"created_by"`
}

// IssuedAccount is "partner:<id>:issued", debit-normal: the points issued
// at the partner's hotels (the partner owes the programme the issue rate
// for each). Sharded like the programme accounts: a busy partner's
// accounts are touched by every transaction at its hotels.
func IssuedAccount(partnerID string) ledger.Account {
	return ledger.Account{Code: "partner:" + partnerID + ":issued", NormalSide: ledger.Debit, AllowNegative: true, Shards: programme.ProgrammeShards}
}

// RedeemedAccount is "partner:<id>:redeemed", credit-normal: the points
// redeemed at the partner's hotels (the programme owes the partner the
// reimbursement rate for each).
func RedeemedAccount(partnerID string) ledger.Account {
	return ledger.Account{Code: "partner:" + partnerID + ":redeemed", NormalSide: ledger.Credit, AllowNegative: true, Shards: programme.ProgrammeShards}
}

// Store reads and writes partners.
type Store struct {
	db      *database.DB
	ledger  *ledger.Ledger
	now     func() time.Time
	trusted *trust.Cache[string, trustedPartner]
}

// New returns a store; clock nil means time.Now.
func New(l *ledger.Ledger, clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{db: l.DB(), ledger: l, now: clock, trusted: trust.New[string, trustedPartner](TrustFor, maxTrusted)}
}

func fieldError(field, problem string) error {
	return &ledger.FieldError{Field: field, Problem: problem}
}

// ValidateID checks a partner id: it is part of ledger account codes.
func ValidateID(id string) error {
	if !idPattern.MatchString(id) || id == OwnerProgramme {
		return fieldError("partner_id", `must be 1-32 characters of A-Z, a-z, 0-9, ".", "_", "-", starting with a letter or digit, and not "programme"`)
	}
	return nil
}

// NewPartner is what creating a partner takes.
type NewPartner struct {
	ID       string `json:"partner_id"`
	Name     string `json:"name"`
	Currency string `json:"settlement_currency"`
	// Rates are the first version; EffectiveAt zero means now. It may be
	// in the past: no transaction at the partner's hotels exists yet.
	Rates Rates `json:"rates"`
}

func validateRates(r Rates) error {
	if err := checkRate("rates.issue_rate", r.IssueRate); err != nil {
		return err
	}
	if err := checkRate("rates.reimbursement_rate", r.ReimbursementRate); err != nil {
		return err
	}
	var fe *ledger.FieldError
	if err := r.Card.Validate(); errors.As(err, &fe) {
		return fieldError("rates."+fe.Field, fe.Problem)
	}
	return nil
}

// Create records a partner with its first rates and creates its ledger
// accounts, all in one transaction.
func (s *Store) Create(ctx context.Context, callerID, idempotencyKey string, p NewPartner) (Partner, error) {
	p.Name = strings.TrimSpace(p.Name)
	if err := ValidateID(p.ID); err != nil {
		return Partner{}, err
	}
	if p.Name == "" || len([]rune(p.Name)) > MaxNameLength {
		return Partner{}, fieldError("name", fmt.Sprintf("1 to %d characters", MaxNameLength))
	}
	if len(p.Currency) != 3 || strings.ContainsFunc(p.Currency, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return Partner{}, fieldError("settlement_currency", "an ISO 4217 code of 3 upper-case letters such as CNY")
	}
	if _, err := currency.ParseISO(p.Currency); err != nil {
		return Partner{}, fieldError("settlement_currency", fmt.Sprintf("%q is not an ISO 4217 currency code", p.Currency))
	}
	if err := validateRates(p.Rates); err != nil {
		return Partner{}, err
	}
	if !p.Rates.EffectiveAt.IsZero() {
		p.Rates.EffectiveAt = p.Rates.EffectiveAt.UTC().Truncate(time.Microsecond)
		if err := s.notTooFarAhead(p.Rates.EffectiveAt); err != nil {
			return Partner{}, err
		}
	}
	created, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "create_partner", p,
		func(ctx context.Context, tx pgx.Tx) (Partner, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			tag, err := tx.Exec(ctx, `INSERT INTO partners (partner_id, name, settlement_currency, status, status_changed_at,
					status_changed_by, status_reason, created_at, created_by)
				VALUES ($1, $2, $3, 'active', $4, $5, 'created', $4, $5) ON CONFLICT (partner_id) DO NOTHING`,
				p.ID, p.Name, p.Currency, now, callerID)
			if err != nil {
				return Partner{}, err
			}
			if tag.RowsAffected() == 0 {
				return Partner{}, fmt.Errorf("%w: %s", ErrExists, p.ID)
			}
			r := p.Rates
			r.Version, r.CreatedAt, r.CreatedBy = 1, now, callerID
			if r.EffectiveAt.IsZero() {
				r.EffectiveAt = now
			}
			if err := insertRates(ctx, tx, p.ID, r); err != nil {
				return Partner{}, err
			}
			if err := s.ledger.CreateAccountsTx(ctx, tx, []ledger.Account{IssuedAccount(p.ID), RedeemedAccount(p.ID)}); err != nil {
				return Partner{}, err
			}
			return Partner{ID: p.ID, Name: p.Name, Currency: p.Currency, Status: StatusActive, StatusChangedAt: now,
				StatusChangedBy: callerID, StatusReason: "created", CreatedAt: now, CreatedBy: callerID, Rates: []Rates{r}}, nil
		})
	if err != nil {
		return Partner{}, fmt.Errorf("create partner %s: %w", p.ID, err)
	}
	return created, nil
}

func insertRates(ctx context.Context, tx pgx.Tx, partnerID string, r Rates) error {
	card, err := json.Marshal(r.Card)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO partner_rates (partner_id, version, effective_at, issue_rate, reimbursement_rate,
			rate_card, created_at, created_by)
		VALUES ($1, $2, $3, $4::DECIMAL, $5::DECIMAL, $6, $7, $8)`,
		partnerID, r.Version, r.EffectiveAt, r.IssueRate.String(), r.ReimbursementRate.String(), string(card), r.CreatedAt, r.CreatedBy)
	return err
}

// SetStatus suspends or reinstates a partner, with a reason, and
// announces it (loyalty.partner.suspended.v1, .reinstated.v1) in the same
// transaction. Setting the status it has changes and announces nothing,
// and returns the partner.
//
// Once it has answered, every process applies the status (Writable,
// WritableAt): it waits out TrustFor after its commit, so it takes a
// little over a second. A replay, and a call that finds the status set
// already, wait too: the change they see may have committed a moment ago,
// and an earlier call may have been interrupted while it waited.
func (s *Store) SetStatus(ctx context.Context, callerID, idempotencyKey, partnerID string, status Status, reason string) (Partner, error) {
	reason = strings.TrimSpace(reason)
	if err := ValidateID(partnerID); err != nil {
		return Partner{}, err
	}
	if status != StatusActive && status != StatusSuspended {
		return Partner{}, fieldError("status", "active or suspended")
	}
	if reason == "" || len([]rune(reason)) > MaxReasonLength {
		return Partner{}, fieldError("reason", fmt.Sprintf("1 to %d characters", MaxReasonLength))
	}
	request := struct {
		ID     string `json:"partner_id"`
		Status Status `json:"status"`
		Reason string `json:"reason"`
	}{partnerID, status, reason}
	_, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "set_partner_status", request,
		func(ctx context.Context, tx pgx.Tx) (struct{}, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			tag, err := tx.Exec(ctx, `UPDATE partners SET status = $2, status_changed_at = $3, status_changed_by = $4, status_reason = $5
				WHERE partner_id = $1 AND status <> $2`, partnerID, string(status), now, callerID, reason)
			if err != nil {
				return struct{}{}, err
			}
			if tag.RowsAffected() == 0 {
				// The same status already, or no such partner.
				if _, err := scanPartner(tx.QueryRow(ctx, partnerSelect+` WHERE partner_id = $1`, partnerID)); err != nil {
					return struct{}{}, err
				}
				return struct{}{}, nil
			}
			event := events.Row(events.PartnerStatusChanged(events.PartnerStatusData{PartnerID: partnerID, Status: string(status), Reason: reason},
				now, callerID+"\x00"+idempotencyKey))
			if _, err := tx.Exec(ctx, event.Text(), event.Args...); err != nil {
				return struct{}{}, fmt.Errorf("announce the status: %w", err)
			}
			return struct{}{}, nil
		})
	// Even on an error: the commit's answer may have been lost.
	s.trusted.Forget(partnerID)
	if err != nil {
		return Partner{}, fmt.Errorf("set partner %s %s: %w", partnerID, status, err)
	}
	if err := waitOutTrust(ctx); err != nil {
		return Partner{}, fmt.Errorf("set partner %s %s: committed, but interrupted while every process takes it up (a retry with the same idempotency key waits again): %w", partnerID, status, err)
	}
	return s.Get(ctx, partnerID)
}

// notTooFarAhead refuses rates that start more than MaxRatesAheadYears
// from now.
func (s *Store) notTooFarAhead(effectiveAt time.Time) error {
	if latest := s.now().AddDate(MaxRatesAheadYears, 0, 0); effectiveAt.After(latest) {
		return fieldError("rates.effective_at", fmt.Sprintf("is after %s: rates start at most %d years ahead (each version starts after the last, so a far one would be the last)",
			latest.UTC().Format(time.RFC3339), MaxRatesAheadYears))
	}
	return nil
}

// SetRates adds a rate version from r.EffectiveAt, which must be at least
// RateLead from now and after the latest version's: a rate change never
// reprices a recorded transaction or a closed period. Like SetStatus, it
// answers once every process has the new version: TrustFor after its
// commit (a replay waits too).
func (s *Store) SetRates(ctx context.Context, callerID, idempotencyKey, partnerID string, r Rates) (Rates, error) {
	if err := ValidateID(partnerID); err != nil {
		return Rates{}, err
	}
	if err := validateRates(r); err != nil {
		return Rates{}, err
	}
	if r.EffectiveAt.IsZero() {
		return Rates{}, fieldError("rates.effective_at", "is required")
	}
	r.EffectiveAt = r.EffectiveAt.UTC().Truncate(time.Microsecond)
	if r.EffectiveAt.Before(s.now().Add(RateLead)) {
		return Rates{}, fieldError("rates.effective_at", fmt.Sprintf("must be at least %s from now: a rate change applies to transactions from then on, never to recorded ones", RateLead))
	}
	if err := s.notTooFarAhead(r.EffectiveAt); err != nil {
		return Rates{}, err
	}
	request := struct {
		ID    string `json:"partner_id"`
		Rates Rates  `json:"rates"`
	}{partnerID, Rates{EffectiveAt: r.EffectiveAt, IssueRate: r.IssueRate, ReimbursementRate: r.ReimbursementRate, Card: r.Card}}
	out, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "set_partner_rates", request,
		func(ctx context.Context, tx pgx.Tx) (Rates, error) {
			var latest int
			var latestAt time.Time
			err := tx.QueryRow(ctx, `SELECT version, effective_at FROM partner_rates WHERE partner_id = $1
				ORDER BY version DESC LIMIT 1`, partnerID).Scan(&latest, &latestAt)
			if errors.Is(err, pgx.ErrNoRows) {
				return Rates{}, fmt.Errorf("%w: %s", ErrNotFound, partnerID)
			}
			if err != nil {
				return Rates{}, err
			}
			if !r.EffectiveAt.After(latestAt) {
				return Rates{}, fieldError("rates.effective_at", fmt.Sprintf("must be after version %d's %s", latest, latestAt.UTC().Format(time.RFC3339)))
			}
			r.Version, r.CreatedAt, r.CreatedBy = latest+1, s.now().UTC().Truncate(time.Microsecond), callerID
			return r, insertRates(ctx, tx, partnerID, r)
		})
	// Even on an error: the commit's answer may have been lost.
	s.trusted.Forget(partnerID)
	if err != nil {
		return Rates{}, fmt.Errorf("set rates of partner %s: %w", partnerID, err)
	}
	if err := waitOutTrust(ctx); err != nil {
		return Rates{}, fmt.Errorf("set rates of partner %s: committed, but interrupted while every process takes them up (a retry with the same idempotency key waits again): %w", partnerID, err)
	}
	return out, nil
}

const partnerSelect = `SELECT partner_id, name, settlement_currency, status, status_changed_at, status_changed_by,
	status_reason, created_at, created_by FROM partners`

func scanPartner(row pgx.Row) (Partner, error) {
	var p Partner
	err := row.Scan(&p.ID, &p.Name, &p.Currency, &p.Status, &p.StatusChangedAt, &p.StatusChangedBy, &p.StatusReason, &p.CreatedAt, &p.CreatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return Partner{}, ErrNotFound
	}
	if err != nil {
		return Partner{}, fmt.Errorf("read partner: %w", err)
	}
	p.StatusChangedAt, p.CreatedAt = p.StatusChangedAt.UTC(), p.CreatedAt.UTC()
	return p, nil
}

// Get returns a partner with every rate version.
func (s *Store) Get(ctx context.Context, partnerID string) (Partner, error) {
	p, err := scanPartner(s.db.Pool.QueryRow(ctx, partnerSelect+` WHERE partner_id = $1`, partnerID))
	if err != nil {
		return Partner{}, err
	}
	rows, err := s.db.Pool.Query(ctx, ratesSelect+` WHERE partner_id = $1 ORDER BY version`, partnerID)
	if err != nil {
		return Partner{}, fmt.Errorf("read rates of %s: %w", partnerID, err)
	}
	if p.Rates, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rates, error) { return scanRates(r) }); err != nil {
		return Partner{}, fmt.Errorf("read rates of %s: %w", partnerID, err)
	}
	return p, nil
}

// List returns every partner (at most 1000) by id, without rates.
func (s *Store) List(ctx context.Context) ([]Partner, error) {
	rows, err := s.db.Pool.Query(ctx, partnerSelect+` ORDER BY partner_id LIMIT $1`, maxPartners)
	if err != nil {
		return nil, fmt.Errorf("list partners: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Partner, error) { return scanPartner(r) })
}

// Status returns a partner's status.
func (s *Store) Status(ctx context.Context, partnerID string) (Status, error) {
	var st Status
	err := s.db.Pool.QueryRow(ctx, `SELECT status FROM partners WHERE partner_id = $1`, partnerID).Scan(&st)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("read status of partner %s: %w", partnerID, err)
	}
	return st, nil
}

// Writable returns the partner if it may write now: ErrSuspended for a
// suspended partner, ErrNotFound for an unknown one. It is asked on every
// write at a partner's hotels, so what it reads is remembered for
// TrustFor (trust.go): a status change applies to every process by the
// time SetStatus answers, and at once in the process that made it.
func (s *Store) Writable(ctx context.Context, partnerID string) (Partner, error) {
	e, err := s.trustedRead(ctx, partnerID)
	if err != nil {
		return Partner{}, err
	}
	return writable(e.partner)
}

// writable passes on an active partner, and fails a suspended one with
// ErrSuspended.
func writable(p Partner) (Partner, error) {
	if p.Status != StatusActive {
		return Partner{}, fmt.Errorf("%w: %s", ErrSuspended, p.ID)
	}
	return p, nil
}

// WritableAt returns what a write at a partner's hotel needs: the
// partner, which must be active (ErrSuspended, ErrNotFound), and its rates
// in force at t. A partner without rates at t comes back with an error
// wrapping ErrNoRates, so that the caller may report the partner's other
// problems first.
//
// Like Writable, it answers from what was read in the last TrustFor,
// rates included, for any t from the oldest of the partner's newest
// maxTrustedRates versions on; only a write at an earlier time reads the
// rates again.
func (s *Store) WritableAt(ctx context.Context, partnerID string, t time.Time) (Partner, Rates, error) {
	e, err := s.trustedRead(ctx, partnerID)
	if err != nil {
		return Partner{}, Rates{}, err
	}
	p, err := writable(e.partner)
	if err != nil {
		return Partner{}, Rates{}, err
	}
	if r, ok := e.ratesAt(t); ok {
		return p, r, nil
	}
	r, err := s.RatesAt(ctx, partnerID, t)
	if err != nil && !errors.Is(err, ErrNoRates) {
		return Partner{}, Rates{}, err
	}
	return p, r, err
}

// trustedRead is the partner and its newest rate versions, as read less
// than TrustFor ago, or read now in one round trip. An unknown partner is
// not remembered: a partner created a moment ago writes at once.
func (s *Store) trustedRead(ctx context.Context, partnerID string) (trustedPartner, error) {
	if e, ok := s.trusted.Get(partnerID, time.Now()); ok {
		return e, nil
	}
	generation := s.trusted.Begin()
	// Stamped before the read is sent: a read that cannot see a change
	// began before the change committed, so it runs out before the change's
	// wait does.
	readAt := time.Now()
	b := &pgx.Batch{}
	b.Queue(partnerSelect+` WHERE partner_id = $1`, partnerID)
	b.Queue(ratesSelect+` WHERE partner_id = $1 ORDER BY effective_at DESC LIMIT $2`, partnerID, maxTrustedRates)
	br := s.db.Pool.SendBatch(ctx, b)
	defer br.Close()
	p, err := scanPartner(br.QueryRow())
	if err != nil {
		return trustedPartner{}, err
	}
	rows, err := br.Query()
	if err != nil {
		return trustedPartner{}, fmt.Errorf("read rates of %s: %w", partnerID, err)
	}
	rates, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Rates, error) { return scanRates(r) })
	if err != nil {
		return trustedPartner{}, fmt.Errorf("read rates of %s: %w", partnerID, err)
	}
	if err := br.Close(); err != nil {
		return trustedPartner{}, fmt.Errorf("read partner %s: %w", partnerID, err)
	}
	slices.Reverse(rates) // read newest first, for the LIMIT
	e := trustedPartner{partner: p, rates: rates}
	s.trusted.Put(partnerID, e, readAt, generation)
	return e, nil
}

const ratesSelect = `SELECT version, effective_at, issue_rate::TEXT, reimbursement_rate::TEXT, rate_card, created_at, created_by
	FROM partner_rates`

func scanRates(row pgx.Row) (Rates, error) {
	var r Rates
	var issue, reimburse string
	var card []byte
	if err := row.Scan(&r.Version, &r.EffectiveAt, &issue, &reimburse, &card, &r.CreatedAt, &r.CreatedBy); err != nil {
		return Rates{}, err
	}
	var err error
	if r.IssueRate, err = decimal.NewFromString(issue); err != nil {
		return Rates{}, fmt.Errorf("issue rate %q: %w", issue, err)
	}
	if r.ReimbursementRate, err = decimal.NewFromString(reimburse); err != nil {
		return Rates{}, fmt.Errorf("reimbursement rate %q: %w", reimburse, err)
	}
	if err := json.Unmarshal(card, &r.Card); err != nil {
		return Rates{}, fmt.Errorf("rate card: %w", err)
	}
	r.EffectiveAt, r.CreatedAt = r.EffectiveAt.UTC(), r.CreatedAt.UTC()
	return r, nil
}

// NoRatesError: no rate version of the partner is in force at At, which
// is before its first. It is ErrNoRates.
type NoRatesError struct {
	PartnerID string
	At        time.Time
}

func (e *NoRatesError) Error() string {
	return fmt.Sprintf("%v for %s at %s", ErrNoRates, e.PartnerID, e.At.Format(time.RFC3339))
}

func (e *NoRatesError) Is(target error) bool { return target == ErrNoRates }

// RatesAt returns the partner's rate version in force at t.
func (s *Store) RatesAt(ctx context.Context, partnerID string, t time.Time) (Rates, error) {
	return ratesAt(s.db.Pool.QueryRow(ctx, ratesAtSQL, partnerID, t.UTC()), partnerID, t)
}

// ratesAtSQL is partner $1's rate version in force at $2.
const ratesAtSQL = ratesSelect + ` WHERE partner_id = $1 AND effective_at <= $2 ORDER BY effective_at DESC LIMIT 1`

func ratesAt(row pgx.Row, partnerID string, t time.Time) (Rates, error) {
	r, err := scanRates(row)
	if errors.Is(err, pgx.ErrNoRows) {
		return Rates{}, &NoRatesError{PartnerID: partnerID, At: t.UTC()}
	}
	if err != nil {
		return Rates{}, fmt.Errorf("read rates of %s: %w", partnerID, err)
	}
	return r, nil
}

// RatesVersion returns one rate version.
func (s *Store) RatesVersion(ctx context.Context, partnerID string, version int) (Rates, error) {
	r, err := scanRates(s.db.Pool.QueryRow(ctx, ratesSelect+` WHERE partner_id = $1 AND version = $2`, partnerID, version))
	if errors.Is(err, pgx.ErrNoRows) {
		return Rates{}, fmt.Errorf("%w: %s version %d", ErrNoRates, partnerID, version)
	}
	if err != nil {
		return Rates{}, fmt.Errorf("read rates of %s: %w", partnerID, err)
	}
	return r, nil
}
