package members_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

func ptr(s string) *string { return &s }

// history reads a member's whole history page by page of size pageSize.
func (f storeFixture) history(t *testing.T, number string, pageSize int) []members.HistoryEntry {
	t.Helper()
	var out []members.HistoryEntry
	token := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("history does not end after 100 pages")
		}
		page, err := f.store.History(f.ctx, number, pageSize, token)
		if err != nil {
			t.Fatal(err)
		}
		if pageSize > 0 && len(page.Entries) > pageSize {
			t.Fatalf("page of %d entries, page size %d", len(page.Entries), pageSize)
		}
		out = append(out, page.Entries...)
		if page.NextPageToken == "" {
			return out
		}
		token = page.NextPageToken
	}
}

// wantChange is an entry of a history without its id.
type wantChange struct {
	by     string
	at     time.Time
	kind   members.ChangeKind
	reason string
	fields map[string]members.FieldChange
}

func checkHistory(t *testing.T, got []members.HistoryEntry, want []wantChange) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d changes, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.ChangedBy != w.by || !g.ChangedAt.Equal(w.at) || g.Change.Kind != w.kind || g.Change.Reason != w.reason ||
			!reflect.DeepEqual(g.Change.Fields, w.fields) {
			t.Errorf("change %d:\n got %s %s %s %q %v\nwant %s %s %s %q %v", i, g.ChangedBy, g.ChangedAt.Format(time.RFC3339), g.Change.Kind,
				g.Change.Reason, g.Change.Fields, w.by, w.at.Format(time.RFC3339), w.kind, w.reason, w.fields)
		}
	}
}

// Every enrolment and correction leaves one row, oldest first: which key,
// when, why, and each field changed with its value before (read in the
// update's own transaction) and after. A correction that changes nothing
// leaves none.
func TestHistoryKeepsEveryValueBeforeAndAfterWithWhoWhenAndWhy(t *testing.T) {
	f := newStoreFixture(t)
	m, err := f.store.Enroll(f.ctx, "desk-key", "enrol", members.Enrollment{FullName: "Wang Fang", Phone: "+86 138 0000 0001", Channel: programme.ChannelApp})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		by, reason string
		update     members.Update
	}{
		{"admin-1", "member's request by phone", members.Update{FullName: ptr("Wang Fang-Li")}},
		{"admin-2", "", members.Update{Email: ptr("fang@example.com")}},
		{"admin-1", "new number", members.Update{Phone: ptr("+86 138 0000 0002")}},
		{"admin-1", "nothing changes", members.Update{Phone: ptr("+86 138 0000 0002")}},
		{"admin-2", "no phone any more", members.Update{Phone: ptr(""), FullName: ptr("Wang Fang")}},
	}
	for i, s := range steps {
		f.clock.Advance(time.Hour)
		s.update.Reason = s.reason
		if _, err := f.store.Update(f.ctx, s.by, fmt.Sprintf("update-%d", i), m.Number, s.update); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	h := func(n int) time.Time { return enrolled.Add(time.Duration(n) * time.Hour) }
	want := []wantChange{
		{"desk-key", h(0), members.ChangeEnrolled, "", map[string]members.FieldChange{
			"full_name": {After: "Wang Fang"}, "phone": {After: "+86 138 0000 0001"}}},
		{"admin-1", h(1), members.ChangeUpdated, "member's request by phone", map[string]members.FieldChange{
			"full_name": {Before: "Wang Fang", After: "Wang Fang-Li"}}},
		{"admin-2", h(2), members.ChangeUpdated, "", map[string]members.FieldChange{
			"email": {Before: "", After: "fang@example.com"}}},
		{"admin-1", h(3), members.ChangeUpdated, "new number", map[string]members.FieldChange{
			"phone": {Before: "+86 138 0000 0001", After: "+86 138 0000 0002"}}},
		{"admin-2", h(5), members.ChangeUpdated, "no phone any more", map[string]members.FieldChange{
			"full_name": {Before: "Wang Fang-Li", After: "Wang Fang"}, "phone": {Before: "+86 138 0000 0002", After: ""}}},
	}
	checkHistory(t, f.history(t, m.Number, 0), want)
	// A replay of an update writes no second row.
	if _, err := f.store.Update(f.ctx, "admin-1", "update-0", m.Number, members.Update{FullName: ptr("Wang Fang-Li"), Reason: "member's request by phone"}); err != nil {
		t.Fatal(err)
	}
	checkHistory(t, f.history(t, m.Number, 0), want)
}

// Pages follow each other oldest first by (changed_at, id) without a gap
// or a repeat, also among rows of one instant (ordered by id); updates
// made at one instant of the clock are recorded a microsecond apart, in
// the order they were made, each before value the one the update before
// it left.
func TestHistoryPagesInOrderOfChangeThenID(t *testing.T) {
	f := newStoreFixture(t)
	m := f.enrol(t, "enrol")
	for i := range 4 { // at the enrolment's instant
		if _, err := f.store.Update(f.ctx, "admin", fmt.Sprintf("u%d", i), m.Number, members.Update{FullName: ptr(fmt.Sprintf("Name %d", i))}); err != nil {
			t.Fatal(err)
		}
	}
	byUpdates := f.history(t, m.Number, 0)
	for i, e := range byUpdates {
		if want := enrolled.Add(time.Duration(i) * time.Microsecond); !e.ChangedAt.Equal(want) {
			t.Errorf("change %d at %s, want %s", i, e.ChangedAt.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
		}
		if i == 0 {
			continue
		}
		if before, after := e.Change.Fields["full_name"].Before, byUpdates[i-1].Change.Fields["full_name"].After; before != after {
			t.Errorf("change %d: before %q, the change before left %q", i, before, after)
		}
	}
	// Rows of one instant (written by hand: the store never writes two).
	tie := enrolled.Add(time.Hour)
	for i := range 5 {
		c, _ := json.Marshal(members.Change{Kind: members.ChangeUpdated, Fields: map[string]members.FieldChange{"email": {After: fmt.Sprintf("e%d@example.com", i)}}})
		if _, err := f.db.Pool.Exec(f.ctx, `INSERT INTO member_changes (id, member_number, changed_at, changed_by, changes)
			VALUES ($1, $2, $3, 'admin', $4)`, uuid.New(), m.Number, tie, string(c)); err != nil {
			t.Fatal(err)
		}
	}
	all := f.history(t, m.Number, members.MaxHistoryPageSize)
	if len(all) != 10 {
		t.Fatalf("%d changes, want 10", len(all))
	}
	for i := 1; i < len(all); i++ {
		a, b := all[i-1], all[i]
		if b.ChangedAt.Before(a.ChangedAt) || (b.ChangedAt.Equal(a.ChangedAt) && bytes.Compare(b.ID[:], a.ID[:]) <= 0) {
			t.Errorf("change %d (%s %s) is not after change %d (%s %s)", i, b.ChangedAt, b.ID, i-1, a.ChangedAt, a.ID)
		}
	}
	for _, size := range []int{1, 2, 3, 7, 9, 10} {
		if got := f.history(t, m.Number, size); !reflect.DeepEqual(got, all) {
			t.Errorf("pages of %d: %+v\nwant %+v", size, got, all)
		}
	}
	if page, err := f.store.History(f.ctx, m.Number, 0, ""); err != nil || len(page.Entries) != 10 || page.NextPageToken != "" {
		t.Errorf("default page: %d changes, token %q, %v; want all 10 and no token", len(page.Entries), page.NextPageToken, err)
	}

	// A token of this member's history is no position in another's.
	other := f.enrol(t, "enrol-other")
	firstPage, err := f.store.History(f.ctx, m.Number, 1, "")
	if err != nil || firstPage.NextPageToken == "" {
		t.Fatalf("first page of 1: %+v, %v", firstPage, err)
	}
	refusals := []struct {
		name, number, token string
		size                int
		field               string
		notFound            bool
	}{
		{name: "another member's token", number: other.Number, token: firstPage.NextPageToken, field: "page_token"},
		{name: "page size over the maximum", number: m.Number, size: members.MaxHistoryPageSize + 1, field: "page_size"},
		{name: "negative page size", number: m.Number, size: -1, field: "page_size"},
		{name: "token not base64", number: m.Number, token: "!!!", field: "page_token"},
		{name: "token of the wrong length", number: m.Number, token: "AAAA", field: "page_token"},
		{name: "malformed member number", number: "12", field: "member_number"},
		{name: "unknown member", number: "1000000000", notFound: true},
	}
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			_, err := f.store.History(f.ctx, r.number, r.size, r.token)
			var fe *ledger.FieldError
			switch {
			case r.notFound && !errors.Is(err, members.ErrNotFound):
				t.Errorf("%v, want not found", err)
			case !r.notFound && (!errors.As(err, &fe) || fe.Field != r.field):
				t.Errorf("%v, want a field error on %s", err, r.field)
			}
		})
	}
}

// A row written before changes described themselves holds only the new
// values: it reads as an update with those after values, and each field's
// before is the after value of the latest earlier row naming the field
// (in either form), or "" when there is none; on any page.
func TestOldFormatRowsReadAsUpdatesWithBeforesFromEarlierRows(t *testing.T) {
	f := newStoreFixture(t)
	insertOld := func(t *testing.T, number string, at time.Time, by, changes string) {
		t.Helper()
		if _, err := f.db.Pool.Exec(f.ctx, `INSERT INTO member_changes (id, member_number, changed_at, changed_by, changes)
			VALUES ($1, $2, $3, $4, $5)`, uuid.New(), number, at, by, changes); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		// enrolmentRow false: the member was enrolled before enrolment
		// wrote a row (its row is removed).
		enrolmentRow bool
		want         []map[string]members.FieldChange
	}{
		{"enrolment row first", true, []map[string]members.FieldChange{
			{"full_name": {After: "M"}, "phone": {After: "+86 1"}},
			{"full_name": {Before: "M", After: "Old One"}},
			{"full_name": {Before: "Old One", After: "Old Two"}, "email": {Before: "", After: "old@example.com"}},
			{"email": {Before: "old@example.com", After: "new@example.com"}},
			{"email": {Before: "new@example.com", After: "old2@example.com"}, "phone": {Before: "+86 1", After: "+86 2"}},
		}},
		{"no enrolment row", false, []map[string]members.FieldChange{
			{"full_name": {Before: "", After: "Old One"}},
			{"full_name": {Before: "Old One", After: "Old Two"}, "email": {Before: "", After: "old@example.com"}},
			{"email": {Before: "old@example.com", After: "new@example.com"}},
			{"email": {Before: "new@example.com", After: "old2@example.com"}, "phone": {Before: "", After: "+86 2"}},
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := f.enrol(t, fmt.Sprintf("enrol-%d", i))
			if !c.enrolmentRow {
				if _, err := f.db.Pool.Exec(f.ctx, `DELETE FROM member_changes WHERE member_number = $1`, m.Number); err != nil {
					t.Fatal(err)
				}
			}
			at := f.clock.Now()
			// What the code before issue 23 did: update the member, and
			// record the new values.
			insertOld(t, m.Number, at.Add(time.Minute), "old-key", `{"full_name": "Old One"}`)
			insertOld(t, m.Number, at.Add(2*time.Minute), "old-key", `{"full_name": "Old Two", "email": "old@example.com"}`)
			if _, err := f.db.Pool.Exec(f.ctx, `UPDATE members SET full_name = 'Old Two', email = 'old@example.com' WHERE member_number = $1`, m.Number); err != nil {
				t.Fatal(err)
			}
			f.clock.Set(at.Add(3 * time.Minute))
			if _, err := f.store.Update(f.ctx, "new-key", fmt.Sprintf("new-%d", i), m.Number, members.Update{Email: ptr("new@example.com")}); err != nil {
				t.Fatal(err)
			}
			// An old row after a new one (the clock of another server).
			insertOld(t, m.Number, at.Add(4*time.Minute), "old-key", `{"email": "old2@example.com", "phone": "+86 2"}`)
			for _, size := range []int{0, 1, 2} {
				got := f.history(t, m.Number, size)
				if len(got) != len(c.want) {
					t.Fatalf("page size %d: %d changes, want %d", size, len(got), len(c.want))
				}
				for j, g := range got {
					if !reflect.DeepEqual(g.Change.Fields, c.want[j]) {
						t.Errorf("page size %d, change %d: %v, want %v", size, j, g.Change.Fields, c.want[j])
					}
					if wantKind := members.ChangeUpdated; (j > 0 || !c.enrolmentRow) && g.Change.Kind != wantKind {
						t.Errorf("change %d is %s, want %s", j, g.Change.Kind, wantKind)
					}
				}
			}
			f.clock.Advance(time.Hour)
		})
	}
}

// An update without a reason is fingerprinted as updates were before
// reasons existed, so a retry of an update sent before then replays; one
// with a reason is another request. A reason is at most 500 characters.
func TestUpdateWithoutReasonKeepsItsEarlierFingerprint(t *testing.T) {
	f := newStoreFixture(t)
	m := f.enrol(t, "enrol")
	if _, err := f.store.Update(f.ctx, "admin", "no-reason", m.Number, members.Update{FullName: ptr(" Li Na "), Email: ptr("li@example.com")}); err != nil {
		t.Fatal(err)
	}
	// The request as members.Update hashed it before it had a reason.
	earlier, err := json.Marshal(struct {
		Op      string `json:"op"`
		Request any    `json:"request"`
	}{"service:update_member", struct {
		Number   string `json:"number"`
		FullName *string
		Email    *string
		Phone    *string
	}{m.Number, ptr("Li Na"), ptr("li@example.com"), nil}})
	if err != nil {
		t.Fatal(err)
	}
	wantHash := sha256.Sum256(earlier)
	var stored []byte
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT request_hash FROM idempotency_keys WHERE caller_id = 'admin' AND idempotency_key = 'no-reason'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, wantHash[:]) {
		t.Fatalf("request hash %x, before reasons %x", stored, wantHash)
	}
	// The same key with a reason is a different request.
	_, err = f.store.Update(f.ctx, "admin", "no-reason", m.Number, members.Update{FullName: ptr("Li Na"), Email: ptr("li@example.com"), Reason: "typo"})
	var conflict *ledger.IdempotencyConflictError
	if !errors.As(err, &conflict) {
		t.Errorf("same key with a reason: %v, want an idempotency conflict", err)
	}
	_, err = f.store.Update(f.ctx, "admin", "long", m.Number, members.Update{FullName: ptr("Li"), Reason: strings.Repeat("é", members.MaxReasonLength+1)})
	var fe *ledger.FieldError
	if !errors.As(err, &fe) || fe.Field != "reason" {
		t.Errorf("a reason of 501 characters: %v, want a field error on reason", err)
	}
	if _, err := f.store.Update(f.ctx, "admin", "longest", m.Number, members.Update{FullName: ptr("Li"), Reason: strings.Repeat("é", members.MaxReasonLength)}); err != nil {
		t.Errorf("a reason of 500 characters: %v", err)
	}
}

// ParseChange reads both forms, and Erased keeps who, when, why and which
// fields but no value (what a closure leaves).
func TestChangeFormsAndErasure(t *testing.T) {
	for _, c := range []struct {
		name, raw string
		want      members.Change
	}{
		{"new form", `{"kind":"updated","reason":"r","fields":{"email":{"before":"a@b.c","after":"d@e.f"}}}`,
			members.Change{Kind: members.ChangeUpdated, Reason: "r", Fields: map[string]members.FieldChange{"email": {Before: "a@b.c", After: "d@e.f"}}}},
		{"old form", `{"full_name":"X","phone":"+1"}`,
			members.Change{Kind: members.ChangeUpdated, Fields: map[string]members.FieldChange{"full_name": {After: "X"}, "phone": {After: "+1"}}}},
		{"closed without fields", `{"kind":"closed","reason":"member asked"}`,
			members.Change{Kind: members.ChangeClosed, Reason: "member asked", Fields: map[string]members.FieldChange{}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := members.ParseChange([]byte(c.raw))
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Fatalf("%+v %v, want %+v", got, err, c.want)
			}
			erased := got.Erased()
			for name, v := range erased.Fields {
				if v != (members.FieldChange{}) {
					t.Errorf("erased %s: %+v", name, v)
				}
			}
			if erased.Kind != got.Kind || erased.Reason != got.Reason || !reflect.DeepEqual(erased.FieldNames(), got.FieldNames()) {
				t.Errorf("erased %+v from %+v", erased, got)
			}
		})
	}
	if _, err := members.ParseChange([]byte(`{"full_name": 3}`)); err == nil {
		t.Error("an old-form value that is not a string was read")
	}
}
