package members

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/internal/pagetoken"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// ChangeKind says what a row of a member's history records.
type ChangeKind string

// The kinds of change a member's history holds.
const (
	ChangeEnrolled ChangeKind = "enrolled"
	ChangeUpdated  ChangeKind = "updated"
	ChangeClosed   ChangeKind = "closed"
)

// The profile fields a change names, as member_changes.changes spells
// them, in the profile's order (ProfileFields).
const (
	FieldFullName = "full_name"
	FieldEmail    = "email"
	FieldPhone    = "phone"
)

// ProfileFields are the personal fields of a profile, in the order a
// history lists them.
var ProfileFields = []string{FieldFullName, FieldEmail, FieldPhone}

// MaxReasonLength is the longest reason a change may give, in characters.
const MaxReasonLength = 500

// FieldChange is one field's value before and after a change; "" is none
// (and, after a closure, erased).
type FieldChange struct {
	Before string `json:"before"`
	After  string `json:"after"`
}

// Change is what one row of member_changes holds in its changes column
// (JSONB): {"kind":"updated","reason":"...","fields":{"email":{"before":
// "...","after":"..."}}}. Fields holds the fields the change touched
// (enrolment: every field given, before ""). A closure erases personal
// data by rewriting every row of the member with Erased.
type Change struct {
	Kind   ChangeKind             `json:"kind"`
	Reason string                 `json:"reason,omitempty"`
	Fields map[string]FieldChange `json:"fields"`
}

// Erased is c with every before and after value blank: the form a closed
// member's history keeps (who, when, why and which fields, not the values).
func (c Change) Erased() Change {
	out := Change{Kind: c.Kind, Reason: c.Reason, Fields: make(map[string]FieldChange, len(c.Fields))}
	for name := range c.Fields {
		out.Fields[name] = FieldChange{}
	}
	return out
}

// FieldNames are the fields c names: the profile's in its order
// (ProfileFields), then any other in alphabetical order.
func (c Change) FieldNames() []string {
	var names, others []string
	for _, name := range ProfileFields {
		if _, ok := c.Fields[name]; ok {
			names = append(names, name)
		}
	}
	for name := range c.Fields {
		if !slices.Contains(ProfileFields, name) {
			others = append(others, name)
		}
	}
	sort.Strings(others)
	return append(names, others...)
}

// ParseChange reads a changes column. Rows written before changes described
// themselves (issue 23) hold only the new values, {"full_name":"..."}: they
// read as an update with those after values and blank befores (History
// fills the befores in from the rows before them; see History).
func ParseChange(raw []byte) (Change, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(raw, &probe); err != nil {
		return Change{}, fmt.Errorf("read a member change: %w", err)
	}
	if _, ok := probe["kind"]; ok {
		var c Change
		if err := json.Unmarshal(raw, &c); err != nil {
			return Change{}, fmt.Errorf("read a member change: %w", err)
		}
		if c.Fields == nil {
			c.Fields = map[string]FieldChange{}
		}
		return c, nil
	}
	c := Change{Kind: ChangeUpdated, Fields: map[string]FieldChange{}}
	for name, value := range probe {
		var after string
		if err := json.Unmarshal(value, &after); err != nil {
			return Change{}, fmt.Errorf("read a member change (old form), field %q: %w", name, err)
		}
		c.Fields[name] = FieldChange{After: after}
	}
	return c, nil
}

// enrolledChange is the history's first row of a member: every field given
// at enrolment, from nothing.
func enrolledChange(m Member) Change {
	c := Change{Kind: ChangeEnrolled, Fields: map[string]FieldChange{}}
	for name, value := range map[string]string{FieldFullName: m.FullName, FieldEmail: m.Email, FieldPhone: m.Phone} {
		if value != "" {
			c.Fields[name] = FieldChange{After: value}
		}
	}
	return c
}

// ChangeTime is when a change of the member made now is recorded: now, or
// a microsecond after the member's latest change if that is not earlier
// (two changes in one microsecond, or a server whose clock is behind).
// Changes are serialised by the member's row, so the history's order,
// (changed_at, id), is then the order they were made in, and each
// change's before values are the after values of the one before it.
func ChangeTime(ctx context.Context, tx pgx.Tx, number string, now time.Time) (time.Time, error) {
	now = now.UTC().Truncate(time.Microsecond)
	var latest *time.Time
	if err := tx.QueryRow(ctx, `SELECT max(changed_at) FROM member_changes WHERE member_number = $1`, number).Scan(&latest); err != nil {
		return time.Time{}, fmt.Errorf("latest change of member %s: %w", number, err)
	}
	if latest != nil && !now.After(*latest) {
		return latest.UTC().Add(time.Microsecond), nil
	}
	return now, nil
}

// InsertChangeTx writes one row of a member's history in tx. Enrolment,
// updates and closure each write exactly one; changedAt comes from
// ChangeTime, read in tx, except at enrolment (the first row).
func InsertChangeTx(ctx context.Context, tx pgx.Tx, number string, changedAt time.Time, changedBy string, c Change) error {
	sql, args := insertChange(number, changedAt, changedBy, c)
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("record the %s change of member %s: %w", c.Kind, number, err)
	}
	return nil
}

func insertChange(number string, changedAt time.Time, changedBy string, c Change) (string, []any) {
	if c.Fields == nil {
		c.Fields = map[string]FieldChange{}
	}
	values, err := json.Marshal(c)
	if err != nil { // a struct of strings always marshals
		panic(fmt.Sprintf("members: marshal a change: %v", err))
	}
	return `INSERT INTO member_changes (id, member_number, changed_at, changed_by, changes) VALUES ($1, $2, $3, $4, $5)`,
		[]any{uuid.New(), number, changedAt, changedBy, string(values)}
}

// Limits of a history page.
const (
	DefaultHistoryPageSize = 50
	MaxHistoryPageSize     = 200
)

// HistoryEntry is one change to a member's profile.
type HistoryEntry struct {
	ID        uuid.UUID
	ChangedAt time.Time
	// ChangedBy is the id of the API key that made the change.
	ChangedBy string
	Change    Change
}

// HistoryPage is one page of a member's history, oldest first.
type HistoryPage struct {
	Entries []HistoryEntry
	// NextPageToken continues the history; empty on the last page.
	NextPageToken string
}

// History returns a page of a member's profile changes, oldest first
// (by changed_at, then id). pageSize 0 means DefaultHistoryPageSize, at
// most MaxHistoryPageSize; pageToken is empty for the first page, then
// the previous page's NextPageToken. An unknown member is ErrNotFound.
//
// Rows written before changes described themselves hold only the new
// values of the fields changed (ParseChange). Such a row reads as an
// update whose after values are those, and whose before value of each
// field is the after value of the latest earlier row of the member that
// names the field, in either form; "" when no earlier row does (members
// enrolled before enrolment wrote a row have no record of their first
// values).
func (s *Store) History(ctx context.Context, number string, pageSize int, pageToken string) (HistoryPage, error) {
	if err := ValidateNumber(number); err != nil {
		return HistoryPage{}, err
	}
	if pageSize < 0 || pageSize > MaxHistoryPageSize {
		return HistoryPage{}, &ledger.FieldError{Field: "page_size", Problem: fmt.Sprintf("must be between 0 and %d, got %d", MaxHistoryPageSize, pageSize)}
	}
	if pageSize == 0 {
		pageSize = DefaultHistoryPageSize
	}
	after, err := decodeHistoryCursor(number, pageToken)
	if err != nil {
		return HistoryPage{}, err
	}
	var page HistoryPage
	err = s.db.ReadTx(ctx, func(tx pgx.Tx) error {
		page = HistoryPage{}
		var known bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM members WHERE member_number = $1)`, number).Scan(&known); err != nil {
			return fmt.Errorf("read member %s: %w", number, err)
		}
		if !known {
			return fmt.Errorf("member %s: %w", number, ErrNotFound)
		}
		query := `SELECT id, changed_at, changed_by, changes FROM member_changes WHERE member_number = $1`
		args := []any{number, pageSize + 1}
		if after != nil {
			query += ` AND (changed_at, id) > ($3, $4)`
			args = append(args, after.changedAt, after.id)
		}
		rows, err := tx.Query(ctx, query+` ORDER BY changed_at, id LIMIT $2`, args...)
		if err != nil {
			return fmt.Errorf("read the history of member %s: %w", number, err)
		}
		var old []bool // whether each entry was written in the old form
		entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (HistoryEntry, error) {
			var e HistoryEntry
			var raw []byte
			if err := r.Scan(&e.ID, &e.ChangedAt, &e.ChangedBy, &raw); err != nil {
				return e, err
			}
			e.ChangedAt = e.ChangedAt.UTC()
			var err error
			e.Change, err = ParseChange(raw)
			old = append(old, oldForm(raw))
			return e, err
		})
		if err != nil {
			return fmt.Errorf("read the history of member %s: %w", number, err)
		}
		if len(entries) > pageSize {
			entries, old = entries[:pageSize], old[:pageSize]
			last := entries[pageSize-1]
			page.NextPageToken = encodeHistoryCursor(number, historyCursor{changedAt: last.ChangedAt, id: last.ID})
		}
		// The latest after value of each field, as the rows are read in
		// order; a field not yet seen on this page is looked up before it.
		latest := map[string]string{}
		for i, e := range entries {
			if old[i] {
				for _, name := range e.Change.FieldNames() {
					before, seen := latest[name]
					if !seen && after != nil {
						if before, err = afterBefore(ctx, tx, number, e, name); err != nil {
							return err
						}
					}
					e.Change.Fields[name] = FieldChange{Before: before, After: e.Change.Fields[name].After}
				}
			}
			for name, f := range e.Change.Fields {
				latest[name] = f.After
			}
		}
		page.Entries = entries
		return nil
	})
	if err != nil {
		return HistoryPage{}, err
	}
	return page, nil
}

// oldForm tells a row written before changes described themselves: it has
// no "kind".
func oldForm(raw []byte) bool {
	var probe struct {
		Kind *string `json:"kind"`
	}
	return json.Unmarshal(raw, &probe) == nil && probe.Kind == nil
}

// afterBefore is the after value of field name in the latest row of the
// member's history before e that names it, in either form; "" if none.
func afterBefore(ctx context.Context, tx pgx.Tx, number string, e HistoryEntry, name string) (string, error) {
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT changes FROM member_changes
		WHERE member_number = $1 AND (changed_at, id) < ($2, $3)
			AND (changes -> $4::TEXT IS NOT NULL OR changes -> 'fields' -> $4::TEXT IS NOT NULL)
		ORDER BY changed_at DESC, id DESC LIMIT 1`, number, e.ChangedAt, e.ID, name).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the history of member %s before %s: %w", number, e.ID, err)
	}
	c, err := ParseChange(raw)
	if err != nil {
		return "", err
	}
	return c.Fields[name].After, nil
}

// historyCursor is the position of the last change of a history page.
type historyCursor struct {
	changedAt time.Time
	id        uuid.UUID
}

// historyCursorLen is an encoded cursor's length; the token seals it to
// its member (pagetoken).
const historyCursorLen = 8 + 16

func encodeHistoryCursor(number string, c historyCursor) string {
	buf := binary.BigEndian.AppendUint64(make([]byte, 0, historyCursorLen), uint64(c.changedAt.UnixMicro()))
	return pagetoken.Seal(append(buf, c.id[:]...), number)
}

// decodeHistoryCursor reads a token of number's history.
func decodeHistoryCursor(number, token string) (*historyCursor, error) {
	if token == "" {
		return nil, nil
	}
	buf, err := pagetoken.Open(token, number, historyCursorLen)
	if errors.Is(err, pagetoken.ErrOtherScope) {
		return nil, &ledger.FieldError{Field: "page_token", Problem: "is a token of another member's history: give the member_number of the request that returned it, or no token"}
	}
	if err != nil {
		return nil, &ledger.FieldError{Field: "page_token", Problem: "is not a token this service issued"}
	}
	c := &historyCursor{changedAt: time.UnixMicro(int64(binary.BigEndian.Uint64(buf[:8]))).UTC()}
	copy(c.id[:], buf[8:])
	return c, nil
}
