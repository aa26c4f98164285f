// Package members keeps members' profiles: the member number, a name and a
// contact for statements, the tier, and who enrolled or changed them. A
// member's points live in the ledger, on the account enrolment opens.
package members

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// Limits on profile fields.
const (
	MaxNameLength  = 200 // characters, as the contract says
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
	// TierSince is when the current tier took effect (enrolment for the
	// first tier).
	TierSince time.Time `json:"tier_since"`
	// Manual is the tier an admin set, if any.
	Manual *tiers.Manual `json:"manual,omitempty"`
	// LastReview is when a tier review last found the member due and left
	// the tier as it was (zero: never); the next review date counts from
	// the anniversary after it. A review that changes the tier moves
	// TierSince instead.
	LastReview time.Time `json:"last_review,omitzero"`
	// ClosedAt is when the membership was closed (zero: open); a closed
	// member's personal fields are empty (closure.go).
	ClosedAt time.Time `json:"closed_at,omitzero"`
}

// ForTierRules is what the tier rules need to know of the member.
func (m Member) ForTierRules() tiers.Member {
	return tiers.Member{Tier: m.Tier, Since: m.TierSince, EverStayed: m.FirstStay != "", Manual: m.Manual, LastReview: m.LastReview}
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
	// Reason is why, kept in the history (at most MaxReasonLength
	// characters). Omitted from the request's JSON when empty, so that an
	// update sent before reasons existed hashes as it did and its retry
	// still replays.
	Reason string `json:",omitempty"`
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
	out, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "enroll_member", e,
		func(ctx context.Context, tx pgx.Tx) (Member, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			m := Member{FullName: e.FullName, Email: e.Email, Phone: e.Phone, Tier: programme.TierRegular,
				EnrolmentChannel: e.Channel, EnrolmentProperty: e.PropertyID, EnrolledAt: now, EnrolledBy: callerID}
			for attempt := 0; ; attempt++ {
				if attempt == 5 {
					return Member{}, errors.New("enroll member: no free member number after 5 draws")
				}
				m.Number = newMemberNumber()
				tag, err := tx.Exec(ctx, `INSERT INTO members (member_number, full_name, email, phone, tier,
						enrolment_channel, enrolment_property, enrolled_at, enrolled_by, updated_at, updated_by)
					VALUES ($1, $2, NULLIF($3, ''), NULLIF($4, ''), $5, $6, NULLIF($7, ''), $8, $9, $8, $9)
					ON CONFLICT (member_number) DO NOTHING`,
					m.Number, m.FullName, m.Email, m.Phone, string(m.Tier), string(m.EnrolmentChannel), m.EnrolmentProperty, now, callerID)
				if err != nil {
					return Member{}, fmt.Errorf("insert member: %w", err)
				}
				if tag.RowsAffected() == 1 {
					break
				}
			}
			if err := s.ledger.CreateAccountsTx(ctx, tx, []ledger.Account{programme.MemberAccount(m.Number)}); err != nil {
				return Member{}, err
			}
			if err := InsertChangeTx(ctx, tx, m.Number, now, callerID, enrolledChange(m)); err != nil {
				return Member{}, err
			}
			contact := []string{}
			if m.Email != "" {
				contact = append(contact, "email")
			}
			if m.Phone != "" {
				contact = append(contact, "phone")
			}
			event := events.Row(events.MemberEnrolled(events.MemberEnrolledData{MemberNumber: m.Number, Tier: string(m.Tier),
				EnrolmentChannel: string(m.EnrolmentChannel), EnrolmentPropertyID: m.EnrolmentProperty, ContactFields: contact}, now))
			if _, err := tx.Exec(ctx, event.Text(), event.Args...); err != nil {
				return Member{}, fmt.Errorf("announce the enrolment: %w", err)
			}
			return m, nil
		})
	if err != nil {
		return Member{}, fmt.Errorf("enroll member: %w", err)
	}
	s.ledger.Remember(programme.MemberAccount(out.Number))
	return out, nil
}

// Get returns the profile of a member whose membership is open, the
// lookup of every write for a member: a closed member is ErrClosed
// (closure.go), except in a retry (ForRetry). Profile reads closed members
// too.
func (s *Store) Get(ctx context.Context, number string) (Member, error) {
	m, err := s.Profile(ctx, number)
	if err != nil {
		return Member{}, err
	}
	return m, refuseClosedUnlessRetry(ctx, m)
}

// Profile returns a member's profile, open or closed.
func (s *Store) Profile(ctx context.Context, number string) (Member, error) {
	if err := ValidateNumber(number); err != nil {
		return Member{}, err
	}
	byNumber := memberSelect + ` WHERE member_number = $1`
	// A write for the member will need its account's settings: read them
	// with the member when this process does not know them.
	b := &pgx.Batch{}
	keepAccount := s.ledger.QueueAccount(b, programme.MemberAccount(number).Code)
	if b.Len() == 0 {
		return scanMember(s.db.Pool.QueryRow(ctx, byNumber, number), number)
	}
	b.Queue(byNumber, number)
	br := s.db.Pool.SendBatch(ctx, b)
	defer br.Close()
	if err := keepAccount(br); err != nil {
		return Member{}, err
	}
	m, err := scanMember(br.QueryRow(), number)
	if err != nil {
		return Member{}, err
	}
	if err := br.Close(); err != nil {
		return Member{}, fmt.Errorf("read member %s: %w", number, err)
	}
	return m, nil
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
	u = Update{FullName: trim(u.FullName), Email: trim(u.Email), Phone: trim(u.Phone), Reason: strings.TrimSpace(u.Reason)}
	if utf8.RuneCountInString(u.Reason) > MaxReasonLength {
		return Member{}, &ledger.FieldError{Field: "reason", Problem: fmt.Sprintf("at most %d characters", MaxReasonLength)}
	}
	request := struct {
		Number string `json:"number"`
		Update
	}{number, u}
	out, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "update_member", request,
		func(ctx context.Context, tx pgx.Tx) (Member, error) {
			m, err := scanMember(tx.QueryRow(ctx, memberSelect+` WHERE member_number = $1 FOR UPDATE`, number), number)
			if err == nil {
				err = refuseClosed(m)
			}
			if err != nil {
				return Member{}, err
			}
			// The values before come from the row read under its lock above,
			// in this transaction: what the update replaced, exactly.
			change := Change{Kind: ChangeUpdated, Reason: u.Reason, Fields: map[string]FieldChange{}}
			var changed []string // in the order of the profile's fields
			for _, f := range []struct {
				name    string
				current *string
				next    *string
			}{{FieldFullName, &m.FullName, u.FullName}, {FieldEmail, &m.Email, u.Email}, {FieldPhone, &m.Phone, u.Phone}} {
				if f.next != nil && *f.next != *f.current {
					change.Fields[f.name] = FieldChange{Before: *f.current, After: *f.next}
					*f.current = *f.next
					changed = append(changed, f.name)
				}
			}
			if err := validateProfile(m.FullName, m.Email, m.Phone); err != nil {
				var field *ledger.FieldError
				if errors.As(err, &field) && field.Field == "email" && m.Email == "" && m.Phone == "" && u.Phone != nil && *u.Phone == "" {
					// The phone cleared is what left no contact: name it.
					field.Field = "phone"
				}
				return Member{}, err
			}
			if len(changed) > 0 {
				now, err := ChangeTime(ctx, tx, number, s.now())
				if err != nil {
					return Member{}, err
				}
				b := &pgx.Batch{}
				b.Queue(`UPDATE members SET full_name = $2, email = NULLIF($3, ''), phone = NULLIF($4, ''),
					updated_at = $5, updated_by = $6 WHERE member_number = $1`,
					m.Number, m.FullName, m.Email, m.Phone, now, callerID)
				sql, args := insertChange(m.Number, now, callerID, change)
				b.Queue(sql, args...)
				event := events.Row(events.MemberUpdated(events.MemberUpdatedData{MemberNumber: m.Number, ChangedFields: changed,
					Tier: string(m.Tier)}, now, requestKey(callerID, idempotencyKey)))
				b.Queue(event.Text(), event.Args...)
				if err := tx.SendBatch(ctx, b).Close(); err != nil {
					return Member{}, fmt.Errorf("update member: %w", err)
				}
			}
			return m, nil
		})
	if err != nil {
		return Member{}, fmt.Errorf("update member %s: %w", number, err)
	}
	return out, nil
}

const memberSelect = `SELECT member_number, full_name, COALESCE(email, ''), COALESCE(phone, ''), tier,
	enrolment_channel, COALESCE(enrolment_property, ''), enrolled_at, enrolled_by, COALESCE(first_stay, ''),
	COALESCE(tier_since, enrolled_at), manual_tier, manual_until, COALESCE(manual_reason, ''), reviewed_at, closed_at FROM members`

func scanMember(row pgx.Row, number string) (Member, error) {
	var m Member
	var tier, channel, manualReason string
	var manualTier *string
	var manualUntil, reviewedAt, closedAt *time.Time
	err := row.Scan(&m.Number, &m.FullName, &m.Email, &m.Phone, &tier, &channel, &m.EnrolmentProperty, &m.EnrolledAt, &m.EnrolledBy,
		&m.FirstStay, &m.TierSince, &manualTier, &manualUntil, &manualReason, &reviewedAt, &closedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Member{}, fmt.Errorf("member %s: %w", number, ErrNotFound)
	}
	if err != nil {
		return Member{}, fmt.Errorf("read member %s: %w", number, err)
	}
	m.Tier, m.EnrolmentChannel, m.EnrolledAt, m.TierSince = programme.Tier(tier), programme.Channel(channel), m.EnrolledAt.UTC(), m.TierSince.UTC()
	if manualTier != nil {
		m.Manual = &tiers.Manual{Tier: programme.Tier(*manualTier), Reason: manualReason}
		if manualUntil != nil {
			m.Manual.Until = manualUntil.UTC()
		}
	}
	if reviewedAt != nil {
		m.LastReview = reviewedAt.UTC()
	}
	if closedAt != nil {
		m.ClosedAt = closedAt.UTC()
	}
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

// ErrFirstStayTaken: another stay became the member's first while this one
// was being recorded. Read the member again and recompute the stay.
var ErrFirstStayTaken = errors.New("another stay became the member's first stay meanwhile")

// ClaimFirstStay is the effect that remembers stay as the member's first
// completed stay (it earns the first-stay bonus). It commits with the
// stay's transaction, and fails it with ErrFirstStayTaken if another stay
// claimed first. Ask only when the member's record shows no first stay.
func ClaimFirstStay(number, stay string) ledger.Statement {
	return ledger.Statement{
		SQL: `WITH claim AS (
				INSERT INTO first_stay_claims (member_number, stay_ref) VALUES ($1, $2) RETURNING member_number, stay_ref)
			UPDATE members SET first_stay = claim.stay_ref FROM claim WHERE members.member_number = claim.member_number`,
		Args:     []any{number, stay},
		Conflict: fmt.Errorf("member %s: %w", number, ErrFirstStayTaken),
	}
}

// QualifyingActivity sums the member's qualifying stays completed in
// [from, to]: stays recorded, less stays reversed.
func (s *Store) QualifyingActivity(ctx context.Context, number string, from, to time.Time) (tiers.Activity, error) {
	a := tiers.Activity{WindowStart: from, WindowEnd: to}
	err := s.db.Pool.QueryRow(ctx, qualifyingActivitySQL, number, from, to).Scan(&a.Nights, &a.Points, &a.Stays)
	if err != nil {
		return a, fmt.Errorf("qualifying activity of %s: %w", number, err)
	}
	return a, nil
}

// qualifyingActivitySQL sums a member's qualifying stays in [$2, $3].
const qualifyingActivitySQL = `SELECT COALESCE(SUM(nights), 0)::INT8, COALESCE(SUM(points), 0)::INT8,
		COALESCE(SUM(CASE WHEN nights > 0 THEN 1 WHEN nights < 0 THEN -1 ELSE 0 END), 0)::INT8
	FROM qualifying_stays WHERE member_number = $1 AND completed_at >= $2 AND completed_at <= $3`

// StayQualifying is what a stay (stayRef) counts for a member's tier now:
// its qualifying rows summed (as recorded, less reversals) and the
// completion of the latest; ok is false when it counts nothing.
func (s *Store) StayQualifying(ctx context.Context, number, stayRef string) (nights int, points int64, completedAt time.Time, ok bool, err error) {
	var latest *time.Time
	err = s.db.Pool.QueryRow(ctx, `SELECT COALESCE(SUM(nights), 0)::INT8, COALESCE(SUM(points), 0)::INT8, max(completed_at)
		FROM qualifying_stays WHERE member_number = $1 AND stay_ref = $2`, number, stayRef).Scan(&nights, &points, &latest)
	if err != nil {
		return 0, 0, time.Time{}, false, fmt.Errorf("qualifying figures of %s's stay %s: %w", number, stayRef, err)
	}
	if latest == nil || (nights == 0 && points == 0) {
		return 0, 0, time.Time{}, false, nil
	}
	return nights, points, *latest, true, nil
}

// QualifyingStay is the effect that records a stay's qualifying figures
// with the stay's transaction; a reversal records them negated.
func QualifyingStay(number, stayRef string, completedAt time.Time, nights int, points int64) ledger.Statement {
	return ledger.Statement{
		Into: "qualifying_stays (id, member_number, stay_ref, completed_at, nights, points)",
		Args: []any{uuid.New(), number, stayRef, completedAt, nights, points},
	}
}

// TierChange is one entry of a member's tier history.
type TierChange struct {
	From, To    programme.Tier
	Reason      string
	EffectiveAt time.Time
	Nights      int
	Points      int64
	ChangedBy   string

	// The writer's account of the change, for its event
	// (loyalty.tier.changed.v1); not kept in the history. Cause is
	// events.TierCauseStay, TierCauseReview or TierCauseManual; EventKey
	// names the request or review run that made the change, so that the
	// same one names the same event (empty: the effective time does);
	// PropertyID and StayID are the stay that earned an upgrade;
	// ManualUntil is when a manual tier ends.
	Cause              string
	EventKey           string
	PropertyID, StayID string
	ManualUntil        time.Time
}

// requestKey names a caller's request in an event's id.
func requestKey(callerID, idempotencyKey string) string { return callerID + "\x00" + idempotencyKey }

// changeTierSQL moves a member ($1) from $2 to $3 and records it, only if
// the member is still at $2; its final INSERT ... SELECT, which follows,
// announces the change from the rows of changed, so that the event is
// written exactly when the change is.
const changeTierSQL = `WITH moved AS (
		UPDATE members SET tier = $3, tier_since = $5, updated_at = $5, updated_by = $8
		WHERE member_number = $1 AND tier = $2 RETURNING member_number),
	changed AS (
		INSERT INTO tier_changes (id, member_number, from_tier, to_tier, reason, effective_at, nights, points, changed_by)
		SELECT $9, member_number, $2, $3, $4, $5, $6, $7, $8 FROM moved RETURNING member_number)`

// changeTierArgs are changeTierSQL's arguments, $1 to $9.
func changeTierArgs(number string, c TierChange) []any {
	return []any{number, string(c.From), string(c.To), c.Reason, c.EffectiveAt, c.Nights, c.Points, c.ChangedBy, uuid.New()}
}

// tierEvent is the event of c.
func tierEvent(number string, c TierChange, recordedAt time.Time) events.Record {
	direction := "up"
	if ladder := tiers.Default().Ladder; slices.Index(ladder, c.To) < slices.Index(ladder, c.From) {
		direction = "down"
	}
	key := c.EventKey
	if key == "" {
		key = c.EffectiveAt.UTC().Format(time.RFC3339Nano)
	}
	return events.TierChanged(events.TierChangedData{MemberNumber: number, From: string(c.From), To: string(c.To),
		Direction: direction, Cause: c.Cause, Reason: c.Reason, Nights: c.Nights, Points: c.Points,
		ManualUntil: events.Time(c.ManualUntil), PropertyID: c.PropertyID, StayID: c.StayID}, c.EffectiveAt, recordedAt, key)
}

// ChangeTier is the statement that moves a member from c.From to c.To,
// records it in the history and announces it (loyalty.tier.changed.v1),
// only if the member is still at c.From: of two concurrent decisions, the
// second changes and announces nothing. recordedAt is when it is written.
func ChangeTier(number string, c TierChange, recordedAt time.Time) ledger.Statement {
	args := changeTierArgs(number, c)
	insert, eventArgs := events.InsertSelect(tierEvent(number, c, recordedAt), len(args)+1, events.Fill{}, "changed")
	return ledger.Statement{SQL: changeTierSQL + "\n" + insert, Args: append(args, eventArgs...)}
}

// ChangeTierWith is ChangeTier as an effect of a ledger transaction (the
// stay that earned an upgrade): the event names the transaction and is
// recorded with it.
func ChangeTierWith(number string, c TierChange) ledger.Statement {
	args := changeTierArgs(number, c)
	// The event's values but its recorded time and transaction (8) follow
	// the change's; the transaction's id, effective and recorded times
	// come last (WithTransaction).
	txn := len(args) + 8 + 1
	insert, eventArgs := events.InsertSelect(tierEvent(number, c, c.EffectiveAt), len(args)+1, events.Fill{
		RecordedAt: "txn.recorded_at", TransactionID: "txn.id",
		Data: "jsonb_build_object('transaction_id', txn.id::TEXT)"}, "changed, txn")
	if len(args)+len(eventArgs)+1 != txn {
		panic("members: the parameters of a tier change's event are miscounted")
	}
	sql := changeTierSQL + fmt.Sprintf(`,
	txn (id, effective_at, recorded_at) AS (VALUES ($%d::UUID, $%d::TIMESTAMPTZ, $%d::TIMESTAMPTZ))
`, txn, txn+1, txn+2) + insert
	return ledger.Statement{SQL: sql, Args: append(args, eventArgs...), WithTransaction: true}
}

// TierHistory returns a member's tier changes, newest first, at most limit.
func (s *Store) TierHistory(ctx context.Context, number string, limit int) ([]TierChange, error) {
	rows, err := s.db.Pool.Query(ctx, `SELECT from_tier, to_tier, reason, effective_at, nights, points, changed_by
		FROM tier_changes WHERE member_number = $1 ORDER BY effective_at DESC, id LIMIT $2`, number, limit)
	if err != nil {
		return nil, fmt.Errorf("tier history of %s: %w", number, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (TierChange, error) {
		var c TierChange
		var from, to string
		err := r.Scan(&from, &to, &c.Reason, &c.EffectiveAt, &c.Nights, &c.Points, &c.ChangedBy)
		c.From, c.To, c.EffectiveAt = programme.Tier(from), programme.Tier(to), c.EffectiveAt.UTC()
		return c, err
	})
}

// SetManualTier fixes a member's tier by hand from effectiveAt (zero: now)
// until until (zero: until changed again), with a reason, and records the
// change in the tier history. Automatic upgrades and downgrades respect it
// until it ends. A backdated tier is not in the future, not before the
// member enrolled, and not before the member's latest tier change: the
// history after it would no longer hold.
func (s *Store) SetManualTier(ctx context.Context, callerID, idempotencyKey, number string, tier programme.Tier, reason string, effectiveAt, until time.Time) (Member, error) {
	if err := ValidateNumber(number); err != nil {
		return Member{}, err
	}
	request := struct {
		Number string         `json:"number"`
		Tier   programme.Tier `json:"tier"`
		Reason string         `json:"reason"`
		Until  time.Time      `json:"until"`
		From   time.Time      `json:"effective_at"`
	}{number, tier, reason, until.UTC(), effectiveAt.UTC()}
	out, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "set_manual_tier", request,
		func(ctx context.Context, tx pgx.Tx) (Member, error) {
			m, err := scanMember(tx.QueryRow(ctx, memberSelect+` WHERE member_number = $1 FOR UPDATE`, number), number)
			if err == nil {
				err = refuseClosed(m)
			}
			if err != nil {
				return Member{}, err
			}
			now := s.now().UTC().Truncate(time.Microsecond)
			from := now
			if !effectiveAt.IsZero() {
				from = effectiveAt.UTC().Truncate(time.Microsecond)
				switch {
				case from.After(now):
					return Member{}, &ledger.FieldError{Field: "effective_at", Problem: "is in the future: a tier is set from now or backdated"}
				case from.Before(m.EnrolledAt):
					return Member{}, &ledger.FieldError{Field: "effective_at", Problem: fmt.Sprintf("is before the member enrolled (%s)", m.EnrolledAt.Format(time.RFC3339))}
				case from.Before(m.TierSince):
					return Member{}, &ledger.FieldError{Field: "effective_at", Problem: fmt.Sprintf("is before the member's latest tier change (%s)", m.TierSince.Format(time.RFC3339))}
				}
			}
			var untilArg *time.Time
			if !until.IsZero() {
				u := until.UTC().Truncate(time.Microsecond)
				untilArg = &u
			}
			if _, err := tx.Exec(ctx, `UPDATE members SET manual_tier = $2, manual_until = $3, manual_reason = $4,
				updated_at = $5, updated_by = $6 WHERE member_number = $1`,
				number, string(tier), untilArg, reason, now, callerID); err != nil {
				return Member{}, fmt.Errorf("set manual tier: %w", err)
			}
			if m.Tier != tier {
				c := ChangeTier(number, TierChange{From: m.Tier, To: tier, Reason: "set by hand: " + reason, EffectiveAt: from, ChangedBy: callerID,
					Cause: events.TierCauseManual, EventKey: requestKey(callerID, idempotencyKey), ManualUntil: until.UTC()}, now)
				if _, err := tx.Exec(ctx, c.SQL, c.Args...); err != nil {
					return Member{}, fmt.Errorf("set manual tier: %w", err)
				}
				m.Tier, m.TierSince = tier, from
			}
			m.Manual = &tiers.Manual{Tier: tier, Until: until.UTC(), Reason: reason}
			return m, nil
		})
	if err != nil {
		return Member{}, fmt.Errorf("set the tier of %s: %w", number, err)
	}
	return out, nil
}

// TierAt is the member's tier in force at t, from the tier history: the
// tier the last change before t moved to, or, with no change before t, the
// tier the first change after t moved from.
func (s *Store) TierAt(ctx context.Context, m Member, t time.Time) (programme.Tier, error) {
	if !m.TierSince.After(t) {
		return m.Tier, nil // no change since t
	}
	return tierFromRow(s.db.Pool.QueryRow(ctx, tierAtSQL, m.Number, t), m, t)
}

// tierAtSQL is the tier a member had at $2: the last change at or before
// it, else what the first change after it changed from.
const tierAtSQL = `SELECT tier FROM (
		(SELECT to_tier AS tier, 0 AS pref FROM tier_changes WHERE member_number = $1 AND effective_at <= $2
			ORDER BY effective_at DESC LIMIT 1)
		UNION ALL
		(SELECT from_tier, 1 FROM tier_changes WHERE member_number = $1 AND effective_at > $2
			ORDER BY effective_at ASC LIMIT 1)
	) AS candidates ORDER BY pref LIMIT 1`

func tierFromRow(row pgx.Row, m Member, t time.Time) (programme.Tier, error) {
	var tier string
	err := row.Scan(&tier)
	if errors.Is(err, pgx.ErrNoRows) {
		return m.Tier, nil
	}
	if err != nil {
		return "", fmt.Errorf("tier of %s at %s: %w", m.Number, t.Format(time.RFC3339), err)
	}
	return programme.Tier(tier), nil
}

// View is what a member's page shows: the profile, the points (posted,
// on hold, available) with their open lots, and the qualifying activity
// in the tier window.
type View struct {
	Member   Member
	Balance  ledger.Balance
	Lots     []ledger.Lot
	Activity tiers.Activity
}

// View reads a member's page in one round trip (two the first time this
// process sees the member's account). from and to bound the qualifying
// activity.
func (s *Store) View(ctx context.Context, number string, from, to time.Time) (View, error) {
	if err := ValidateNumber(number); err != nil {
		return View{}, err
	}
	account, err := s.ledger.Account(ctx, programme.MemberAccount(number).Code)
	var unknown *ledger.UnknownAccountError
	if errors.As(err, &unknown) {
		return View{}, fmt.Errorf("member %s: %w", number, ErrNotFound)
	}
	if err != nil {
		return View{}, fmt.Errorf("read member %s: %w", number, err)
	}
	b := &pgx.Batch{}
	b.Queue(memberSelect+` WHERE member_number = $1`, number)
	b.Queue(qualifyingActivitySQL, number, from, to)
	holdings := s.ledger.QueueHoldings(b, account)
	br := s.db.Pool.SendBatch(ctx, b)
	defer br.Close()
	v := View{Activity: tiers.Activity{WindowStart: from, WindowEnd: to}}
	if v.Member, err = scanMember(br.QueryRow(), number); err != nil {
		return View{}, err
	}
	if err := br.QueryRow().Scan(&v.Activity.Nights, &v.Activity.Points, &v.Activity.Stays); err != nil {
		return View{}, fmt.Errorf("qualifying activity of %s: %w", number, err)
	}
	if v.Balance, v.Lots, err = holdings(br); err != nil {
		return View{}, err
	}
	if err := br.Close(); err != nil {
		return View{}, fmt.Errorf("read member %s: %w", number, err)
	}
	return v, nil
}

// MemberAt returns a member and the tier in force at t, in one round trip.
func (s *Store) MemberAt(ctx context.Context, number string, t time.Time) (Member, programme.Tier, error) {
	if err := ValidateNumber(number); err != nil {
		return Member{}, "", err
	}
	b := &pgx.Batch{}
	queueMemberAt(b, number, t)
	keepAccount := s.ledger.QueueAccount(b, programme.MemberAccount(number).Code)
	br := s.db.Pool.SendBatch(ctx, b)
	defer br.Close()
	m, tier, err := readMemberAt(br, number, t)
	if err == nil {
		err = keepAccount(br)
	}
	if err != nil {
		return Member{}, "", err
	}
	if err := br.Close(); err != nil {
		return Member{}, "", fmt.Errorf("read member %s: %w", number, err)
	}
	return m, tier, nil
}

// queueMemberAt queues the reads readMemberAt reads back: the member, and
// the tier history around t (needed only if the tier changed after t, but
// cheaper than a second round trip).
func queueMemberAt(b *pgx.Batch, number string, t time.Time) {
	b.Queue(memberSelect+` WHERE member_number = $1`, number)
	b.Queue(tierAtSQL, number, t)
}

func readMemberAt(br pgx.BatchResults, number string, t time.Time) (Member, programme.Tier, error) {
	m, err := scanMember(br.QueryRow(), number)
	if err != nil {
		return Member{}, "", err
	}
	tier, err := tierFromRow(br.QueryRow(), m, t)
	if err != nil {
		return Member{}, "", err
	}
	if !m.TierSince.After(t) { // no change since t: the tier now is the tier then
		tier = m.Tier
	}
	return m, tier, nil
}

// StayView is what recording a stay needs to know of its member, read in
// one round trip instead of three: the member, the tier in force at
// arrival, and the qualifying activity in [from, to].
func (s *Store) StayView(ctx context.Context, number string, arrival, from, to time.Time) (Member, programme.Tier, tiers.Activity, error) {
	if err := ValidateNumber(number); err != nil {
		return Member{}, "", tiers.Activity{}, err
	}
	b := &pgx.Batch{}
	queueMemberAt(b, number, arrival)
	b.Queue(qualifyingActivitySQL, number, from, to)
	// The stay's posting needs the member's account: read with the rest.
	keepAccount := s.ledger.QueueAccount(b, programme.MemberAccount(number).Code)
	br := s.db.Pool.SendBatch(ctx, b)
	defer br.Close()
	m, tier, err := readMemberAt(br, number, arrival)
	if err == nil {
		err = refuseClosedUnlessRetry(ctx, m)
	}
	if err != nil {
		return Member{}, "", tiers.Activity{}, err
	}
	a := tiers.Activity{WindowStart: from, WindowEnd: to}
	if err := br.QueryRow().Scan(&a.Nights, &a.Points, &a.Stays); err != nil {
		return Member{}, "", tiers.Activity{}, fmt.Errorf("qualifying activity of %s: %w", number, err)
	}
	if err := keepAccount(br); err != nil {
		return Member{}, "", tiers.Activity{}, err
	}
	if err := br.Close(); err != nil {
		return Member{}, "", tiers.Activity{}, fmt.Errorf("read member %s: %w", number, err)
	}
	return m, tier, a, nil
}
