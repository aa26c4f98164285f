package members

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
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

// InsertChangeTx writes one row of a member's history in tx. Enrolment,
// updates and closure each write exactly one.
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
