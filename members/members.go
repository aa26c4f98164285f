// Package members keeps members' profiles: the member number, a name and a
// contact for statements, the tier, and who enrolled or changed them. A
// member's points live in the ledger, on the account enrolment opens.
package members

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

// Limits on profile fields.
const (
	MaxNameLength  = 100 // characters
	MaxEmailLength = 254
	MaxPhoneLength = 32
	MaxPropertyID  = 64
	numberDigits   = 10
)

// ErrNotFound is an unknown member number.
var ErrNotFound = errors.New("member not found")

// Member is a member's profile.
type Member struct {
	Number            string            `json:"member_number"`
	FullName          string            `json:"full_name"`
	Email             string            `json:"email,omitempty"`
	Phone             string            `json:"phone,omitempty"`
	Tier              programme.Tier    `json:"tier"`
	EnrolmentChannel  programme.Channel `json:"enrolment_channel"`
	EnrolmentProperty string            `json:"enrolment_property,omitempty"`
	EnrolledAt        time.Time         `json:"enrolled_at"`
	EnrolledBy        string            `json:"enrolled_by"`
	// FirstStay names the stay that was the member's first completed one;
	// empty before it.
	FirstStay string `json:"first_stay,omitempty"`
}

// Account is the ledger account of the member's points.
func (m Member) Account() string { return programme.MemberAccount(m.Number).Code }

// Enrollment is what a new member gives.
type Enrollment struct {
	FullName   string
	Email      string
	Phone      string
	Channel    programme.Channel
	PropertyID string
}

// Update corrects a member's contact data. A nil field is left as it is;
// an empty email or phone removes it, but one of them must remain.
type Update struct {
	FullName *string
	Email    *string
	Phone    *string
}

// Store reads and writes members.
type Store struct {
	db     *database.DB
	ledger *ledger.Ledger
	now    func() time.Time
}

// New returns a store; clock nil means time.Now.
func New(l *ledger.Ledger, clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{db: l.DB(), ledger: l, now: clock}
}

// Enroll creates a member with a new member number and opens the member's
// points account, in one transaction. A retry with the same idempotency
// key returns the same member.
func (s *Store) Enroll(ctx context.Context, callerID, idempotencyKey string, e Enrollment) (Member, error) {
	e.FullName, e.Email, e.Phone = strings.TrimSpace(e.FullName), strings.TrimSpace(e.Email), strings.TrimSpace(e.Phone)
	if err := validateProfile(e.FullName, e.Email, e.Phone); err != nil {
		return Member{}, err
	}
	if e.Channel == "" {
		return Member{}, &ledger.FieldError{Field: "channel", Problem: "is required"}
	}
	if len(e.PropertyID) > MaxPropertyID {
		return Member{}, &ledger.FieldError{Field: "property_id", Problem: fmt.Sprintf("at most %d bytes", MaxPropertyID)}
	}
	raw, err := s.ledger.KeyedWrite(ctx, callerID, idempotencyKey, "enroll_member", e,
		func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			m := Member{FullName: e.FullName, Email: e.Email, Phone: e.Phone, Tier: programme.TierRegular,
				EnrolmentChannel: e.Channel, EnrolmentProperty: e.PropertyID, EnrolledAt: now, EnrolledBy: callerID}
			for attempt := 0; ; attempt++ {
				if attempt == 5 {
					return nil, errors.New("enroll member: no free member number after 5 draws")
				}
				m.Number = newMemberNumber()
				tag, err := tx.Exec(ctx, `INSERT INTO members (member_number, full_name, email, phone, tier,
						enrolment_channel, enrolment_property, enrolled_at, enrolled_by, updated_at, updated_by)
					VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), $5, $6, NULLIF($7, ''), $8, $9, $8, $9)
					ON CONFLICT (member_number) DO NOTHING`,
					m.Number, m.FullName, m.Email, m.Phone, string(m.Tier), string(m.EnrolmentChannel), m.EnrolmentProperty, now, callerID)
				if err != nil {
					return nil, fmt.Errorf("insert member: %w", err)
				}
				if tag.RowsAffected() == 1 {
					break
				}
			}
			if err := s.ledger.CreateAccountsTx(ctx, tx, []ledger.Account{programme.MemberAccount(m.Number)}); err != nil {
				return nil, err
			}
			return json.Marshal(m)
		})
	if err != nil {
		return Member{}, fmt.Errorf("enroll member: %w", err)
	}
	var m Member
	if err := json.Unmarshal(raw, &m); err != nil {
		return Member{}, fmt.Errorf("enroll member: decode: %w", err)
	}
	return m, nil
}

// Get returns a member's profile.
func (s *Store) Get(ctx context.Context, number string) (Member, error) {
	if err := ValidateNumber(number); err != nil {
		return Member{}, err
	}
	return scanMember(s.db.Pool.QueryRow(ctx, memberSelect+` WHERE member_number = $1`, number), number)
}

// Update applies a member's correction of their contact data and records
// who made it.
func (s *Store) Update(ctx context.Context, callerID, idempotencyKey, number string, u Update) (Member, error) {
	if err := ValidateNumber(number); err != nil {
		return Member{}, err
	}
	if u.FullName == nil && u.Email == nil && u.Phone == nil {
		return Member{}, &ledger.FieldError{Field: "full_name", Problem: "nothing to update: give full_name, email or phone"}
	}
	trim := func(p *string) *string {
		if p == nil {
			return nil
		}
		t := strings.TrimSpace(*p)
		return &t
	}
	u = Update{FullName: trim(u.FullName), Email: trim(u.Email), Phone: trim(u.Phone)}
	request := struct {
		Number string `json:"number"`
		Update
	}{number, u}
	raw, err := s.ledger.KeyedWrite(ctx, callerID, idempotencyKey, "update_member", request,
		func(ctx context.Context, tx pgx.Tx) (json.RawMessage, error) {
			m, err := scanMember(tx.QueryRow(ctx, memberSelect+` WHERE member_number = $1 FOR UPDATE`, number), number)
			if err != nil {
				return nil, err
			}
			changes := map[string]string{}
			if u.FullName != nil && *u.FullName != m.FullName {
				m.FullName, changes["full_name"] = *u.FullName, *u.FullName
			}
			if u.Email != nil && *u.Email != m.Email {
				m.Email, changes["email"] = *u.Email, *u.Email
			}
			if u.Phone != nil && *u.Phone != m.Phone {
				m.Phone, changes["phone"] = *u.Phone, *u.Phone
			}
			if err := validateProfile(m.FullName, m.Email, m.Phone); err != nil {
				return nil, err
			}
			if len(changes) > 0 {
				now := s.now().UTC().Truncate(time.Microsecond)
				b := &pgx.Batch{}
				b.Queue(`UPDATE members SET full_name = $2, email = NULLIF($3, ''), phone = NULLIF($4, ''),
					updated_at = $5, updated_by = $6 WHERE member_number = $1`,
					m.Number, m.FullName, m.Email, m.Phone, now, callerID)
				changed, _ := json.Marshal(changes)
				b.Queue(`INSERT INTO member_changes (id, member_number, changed_at, changed_by, changes)
					VALUES ($1, $2, $3, $4, $5)`, uuid.New(), m.Number, now, callerID, string(changed))
				if err := tx.SendBatch(ctx, b).Close(); err != nil {
					return nil, fmt.Errorf("update member: %w", err)
				}
			}
			return json.Marshal(m)
		})
	if err != nil {
		return Member{}, fmt.Errorf("update member %s: %w", number, err)
	}
	var m Member
	if err := json.Unmarshal(raw, &m); err != nil {
		return Member{}, fmt.Errorf("update member: decode: %w", err)
	}
	return m, nil
}

const memberSelect = `SELECT member_number, full_name, COALESCE(email, ''), COALESCE(phone, ''), tier,
	enrolment_channel, COALESCE(enrolment_property, ''), enrolled_at, enrolled_by, COALESCE(first_stay, '') FROM members`

func scanMember(row pgx.Row, number string) (Member, error) {
	var m Member
	var tier, channel string
	err := row.Scan(&m.Number, &m.FullName, &m.Email, &m.Phone, &tier, &channel, &m.EnrolmentProperty, &m.EnrolledAt, &m.EnrolledBy, &m.FirstStay)
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, fmt.Errorf("member %s: %w", number, ErrNotFound)
	}
	if err != nil {
		return Member{}, fmt.Errorf("read member %s: %w", number, err)
	}
	m.Tier, m.EnrolmentChannel, m.EnrolledAt = programme.Tier(tier), programme.Channel(channel), m.EnrolledAt.UTC()
	return m, nil
}

// ValidateNumber checks the form of a member number: 10 digits.
func ValidateNumber(number string) error {
	if len(number) != numberDigits || strings.Trim(number, "0123456789") != "" {
		return &ledger.FieldError{Field: "member_number", Problem: fmt.Sprintf("must be %d digits, got %q", numberDigits, clip(number))}
	}
	return nil
}

func validateProfile(name, email, phone string) error {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return &ledger.FieldError{Field: "full_name", Problem: "is required"}
	case n > MaxNameLength || !utf8.ValidString(name):
		return &ledger.FieldError{Field: "full_name", Problem: fmt.Sprintf("at most %d characters of valid UTF-8", MaxNameLength)}
	}
	if email == "" && phone == "" {
		return &ledger.FieldError{Field: "email", Problem: "give an email or a phone number for statements"}
	}
	if email != "" {
		if a, err := mail.ParseAddress(email); err != nil || a.Address != email || len(email) > MaxEmailLength {
			return &ledger.FieldError{Field: "email", Problem: "is not a plain email address (name@example.com)"}
		}
	}
	if phone != "" {
		if len(phone) > MaxPhoneLength || strings.Trim(phone, "+0123456789 -") != "" || strings.Count(phone, "+") > 1 {
			return &ledger.FieldError{Field: "phone", Problem: fmt.Sprintf("digits, spaces, '-' and a leading '+', at most %d characters", MaxPhoneLength)}
		}
	}
	return nil
}

// newMemberNumber draws 10 random digits, the first not zero. Random, not a
// sequence: sequences are contended on CockroachDB, and numbers in order
// would tell anyone how many members there are.
func newMemberNumber() string {
	n, err := rand.Int(rand.Reader, big.NewInt(9_000_000_000))
	if err != nil {
		panic(fmt.Sprintf("members: crypto/rand failed: %v", err))
	}
	return fmt.Sprintf("%d", n.Int64()+1_000_000_000)
}

func clip(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}

// RecordCompletedStay notes a completed stay on the member's record in one
// statement: the first stay ever is remembered as the member's first (it
// earns the first-stay bonus), and a regular member becomes silver, which
// the domain grants after the first completed stay. It reports whether stay
// is the member's first and the tier after it. Asking again for the same
// stay gives the same answers, so a retried request keeps its bonus; it
// only ever raises a regular member, so it never undoes a later change.
func (s *Store) RecordCompletedStay(ctx context.Context, number, stay, callerID string) (first bool, tier programme.Tier, err error) {
	var firstStay, t string
	err = s.db.Pool.QueryRow(ctx, `UPDATE members SET
			first_stay = COALESCE(first_stay, $2),
			tier = CASE WHEN tier = $3 THEN $4 ELSE tier END,
			updated_at = $5, updated_by = $6
		WHERE member_number = $1
		RETURNING first_stay, tier`,
		number, stay, string(programme.TierRegular), string(programme.TierSilver),
		s.now().UTC().Truncate(time.Microsecond), callerID).Scan(&firstStay, &t)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, "", fmt.Errorf("member %s: %w", number, ErrNotFound)
	}
	if err != nil {
		return false, "", fmt.Errorf("record completed stay of %s: %w", number, err)
	}
	return firstStay == stay, programme.Tier(t), nil
}
