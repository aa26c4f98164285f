package rpc_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"

	"github.com/loyalty-ledger/loyalty/dbtest"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
	"github.com/loyalty-ledger/loyalty/rpc"
)

func str(s string) *string { return &s }

// adminKeyID is the id of the env's admin key.
func (e *env) adminKeyID(t *testing.T) string {
	t.Helper()
	var id string
	if err := e.db.Pool.QueryRow(e.ctx, `SELECT key_id FROM api_keys WHERE role = 'admin' ORDER BY created_at LIMIT 1`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

// memberHistory reads a member's whole history through the API, pageSize
// changes a page.
func memberHistory(t *testing.T, e *env, c clients, number string, pageSize int32) []*loyaltyv1.MemberChange {
	t.Helper()
	var out []*loyaltyv1.MemberChange
	token := ""
	for pages := 0; pages < 50; pages++ {
		res, err := c.members.GetMemberHistory(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberHistoryRequest{
			MemberNumber: number, PageSize: pageSize, PageToken: token}))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, res.Msg.GetChanges()...)
		if token = res.Msg.GetNextPageToken(); token == "" {
			return out
		}
	}
	t.Fatal("history does not end after 50 pages")
	return nil
}

// describe is a change as "KIND by key (reason): field before->after; ...".
func describe(c *loyaltyv1.MemberChange) string {
	var fields []string
	for _, f := range c.GetFields() {
		fields = append(fields, fmt.Sprintf("%s %q->%q", f.GetField(), f.GetBefore(), f.GetAfter()))
	}
	return fmt.Sprintf("%s by %s (%s): %s", c.GetKind(), c.GetChangedBy(), c.GetReason(), strings.Join(fields, "; "))
}

// GetMemberHistory answers the enrolment and every correction oldest
// first: the key that made it, when, why, and each field as JSON spells it
// with its value before and after; the same over the wire protocols and
// whatever the page size.
func TestMemberHistoryShowsEveryCorrectionWithBeforeAfterWhoAndWhy(t *testing.T) {
	e := newEnv(t)
	admin, booking := e.clients(e.adminKey), e.clients(e.bookingKey)
	adminID := e.adminKeyID(t)
	number := e.enroll(t, booking, "enrol")
	updates := []struct {
		c   clients
		req *loyaltyv1.UpdateMemberRequest
	}{
		{admin, &loyaltyv1.UpdateMemberRequest{FullName: str("Li Wei-Ming"), Reason: "member's request by phone"}},
		{booking, &loyaltyv1.UpdateMemberRequest{Email: str("wei.ming@example.com")}},
		{admin, &loyaltyv1.UpdateMemberRequest{Phone: str("+86 138 0000 0001"), Reason: "新号码 (new number)"}},
		{admin, &loyaltyv1.UpdateMemberRequest{Email: str(""), Reason: "member asked: no e-mails"}},
	}
	for i, u := range updates {
		u.req.IdempotencyKey, u.req.MemberNumber = fmt.Sprintf("update-%d", i), number
		if _, err := u.c.members.UpdateMember(e.ctx, connect.NewRequest(u.req)); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	want := []string{
		`ENROLLED by ` + e.bookingID + ` (): fullName ""->"Li Wei"; email ""->"li.wei@example.com"`,
		`UPDATED by ` + adminID + ` (member's request by phone): fullName "Li Wei"->"Li Wei-Ming"`,
		`UPDATED by ` + e.bookingID + ` (): email "li.wei@example.com"->"wei.ming@example.com"`,
		`UPDATED by ` + adminID + ` (新号码 (new number)): phone ""->"+86 138 0000 0001"`,
		`UPDATED by ` + adminID + ` (member asked: no e-mails): email "wei.ming@example.com"->""`,
	}
	for _, p := range protocols {
		for _, size := range []int32{0, 1, 2, 200} {
			t.Run(fmt.Sprintf("%s/page size %d", p.name, size), func(t *testing.T) {
				got := memberHistory(t, e, e.clients(e.adminKey, p.opts...), number, size)
				if len(got) != len(want) {
					t.Fatalf("%d changes, want %d", len(got), len(want))
				}
				for i, c := range got {
					if describe(c) != want[i] {
						t.Errorf("change %d:\n got %s\nwant %s", i, describe(c), want[i])
					}
					if i > 0 && !c.GetChangedAt().AsTime().After(got[i-1].GetChangedAt().AsTime()) {
						t.Errorf("change %d at %s, not after change %d at %s", i, c.GetChangedAt().AsTime(), i-1, got[i-1].GetChangedAt().AsTime())
					}
				}
			})
		}
	}
}

// GetMemberHistory is for admin keys; it names the field it refuses and
// does not find a member that does not exist.
func TestMemberHistoryRefusals(t *testing.T) {
	e := newEnv(t)
	number := e.enroll(t, e.clients(e.bookingKey), "enrol")
	cases := []struct {
		name  string
		key   string
		req   *loyaltyv1.GetMemberHistoryRequest
		code  connect.Code
		field string
	}{
		{"a booking key may not read it", e.bookingKey, &loyaltyv1.GetMemberHistoryRequest{MemberNumber: number}, connect.CodePermissionDenied, ""},
		{"unknown member", e.adminKey, &loyaltyv1.GetMemberHistoryRequest{MemberNumber: "1000000000"}, connect.CodeNotFound, ""},
		{"malformed member number", e.adminKey, &loyaltyv1.GetMemberHistoryRequest{MemberNumber: "42"}, connect.CodeInvalidArgument, "memberNumber"},
		{"no member number", e.adminKey, &loyaltyv1.GetMemberHistoryRequest{}, connect.CodeInvalidArgument, "memberNumber"},
		{"page token not issued", e.adminKey, &loyaltyv1.GetMemberHistoryRequest{MemberNumber: number, PageToken: "not-a-token"}, connect.CodeInvalidArgument, "pageToken"},
		{"page token too long", e.adminKey, &loyaltyv1.GetMemberHistoryRequest{MemberNumber: number, PageToken: strings.Repeat("A", 200)}, connect.CodeInvalidArgument, "pageToken"},
		{"page size over 200", e.adminKey, &loyaltyv1.GetMemberHistoryRequest{MemberNumber: number, PageSize: 201}, connect.CodeInvalidArgument, "pageSize"},
		{"negative page size", e.adminKey, &loyaltyv1.GetMemberHistoryRequest{MemberNumber: number, PageSize: -1}, connect.CodeInvalidArgument, "pageSize"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.clients(c.key).members.GetMemberHistory(e.ctx, connect.NewRequest(c.req))
			ce := wantCode(t, err, c.code)
			if c.field != "" {
				if got := badRequestField(t, ce); got != c.field {
					t.Errorf("field %q, want %q", got, c.field)
				}
			}
		})
	}
}

// UpdateMember's reason is optional, at most 500 characters, printable
// text on one line; a refused reason changes nothing.
func TestUpdateMemberReasonIsOptionalPrintableAndAtMost500Characters(t *testing.T) {
	e := newEnv(t)
	admin := e.clients(e.adminKey)
	number := e.enroll(t, admin, "enrol")
	cases := []struct {
		name, reason string
		ok           bool
	}{
		{"none", "", true},
		{"500 characters", strings.Repeat("改", 500), true},
		{"with spaces and punctuation", "member's request, by phone — 2026-12-07", true},
		{"501 characters", strings.Repeat("改", 501), false},
		{"a line break", "first\nsecond", false},
		{"a tab", "a\tb", false},
		{"a NUL", "a\x00b", false},
		{"a right-to-left override", "abc\u202edef", false},
		{"a line separator", "abc\u2028def", false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			name := fmt.Sprintf("Li Wei %c", 'A'+i)
			_, err := admin.members.UpdateMember(e.ctx, connect.NewRequest(&loyaltyv1.UpdateMemberRequest{
				IdempotencyKey: fmt.Sprintf("reason-%d", i), MemberNumber: number, FullName: str(name), Reason: c.reason}))
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				h := memberHistory(t, e, admin, number, 0)
				if last := h[len(h)-1]; last.GetReason() != c.reason || last.GetFields()[0].GetAfter() != name {
					t.Errorf("last change %s, want reason %q and name %q", describe(last), c.reason, name)
				}
				return
			}
			if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != "reason" {
				t.Errorf("field %q, want reason", got)
			}
			res, err := admin.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: number}))
			if err != nil {
				t.Fatal(err)
			}
			if res.Msg.GetMember().GetFullName() == name {
				t.Errorf("a refused update changed the name to %q", name)
			}
		})
	}
}

// A retry of an update without a reason (as every update sent before
// reasons existed) replays its first answer and writes no second change;
// the same key with a reason is another request.
func TestUpdateMemberWithoutReasonReplays(t *testing.T) {
	e := newEnv(t)
	admin := e.clients(e.adminKey)
	number := e.enroll(t, admin, "enrol")
	req := func(reason string) *connect.Request[loyaltyv1.UpdateMemberRequest] {
		return connect.NewRequest(&loyaltyv1.UpdateMemberRequest{IdempotencyKey: "fix-name", MemberNumber: number,
			FullName: str("Li Weiwei"), Reason: reason})
	}
	first, err := admin.members.UpdateMember(e.ctx, req(""))
	if err != nil {
		t.Fatal(err)
	}
	// Changed since: the replay still answers the first update.
	if _, err := admin.members.UpdateMember(e.ctx, connect.NewRequest(&loyaltyv1.UpdateMemberRequest{IdempotencyKey: "other",
		MemberNumber: number, FullName: str("Li Wei")})); err != nil {
		t.Fatal(err)
	}
	again, err := admin.members.UpdateMember(e.ctx, req(""))
	if err != nil {
		t.Fatal(err)
	}
	if again.Msg.GetMember().GetFullName() != "Li Weiwei" || first.Msg.GetMember().GetFullName() != "Li Weiwei" {
		t.Errorf("replay answered %q, first %q", again.Msg.GetMember().GetFullName(), first.Msg.GetMember().GetFullName())
	}
	if h := memberHistory(t, e, admin, number, 0); len(h) != 3 {
		t.Errorf("%d changes after enrolment, two updates and a replay, want 3", len(h))
	}
	_, err = admin.members.UpdateMember(e.ctx, req("typo"))
	wantCode(t, err, connect.CodeAlreadyExists)
}

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Every answer with a member's personal data is attributable: the server
// logs one line with the key's id, the procedure and the member number,
// and never the personal values; refused calls and answers without
// personal data log no such line.
func TestPersonalDataReadsAreLoggedWithKeyAndMemberButNoValues(t *testing.T) {
	var logs syncBuffer
	e := newEnvWith(t, dbtest.New(t), func(cfg *rpc.Config) {
		cfg.Logger = slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	admin, booking := e.clients(e.adminKey), e.clients(e.bookingKey)
	adminID := e.adminKeyID(t)
	e.createPartner(t, "PX", "0.05", "0.04", nil)
	partnerSecret, partnerID := e.partnerKey(t, "PX", "px-desk")

	secrets := []string{"Zhang Xiuying", "Zhang", "xiuying.zhang@example.com", "+86 139 1111 2222", "Xiuying Zhang", "xy@example.com"}
	res, err := booking.members.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{IdempotencyKey: "enrol",
		FullName: secrets[0], Email: secrets[2], Phone: secrets[3], Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
	if err != nil {
		t.Fatal(err)
	}
	number := res.Msg.GetMember().GetMemberNumber()
	type line struct{ keyID, procedure string }
	want := []line{{e.bookingID, loyaltyv1connect.MemberServiceEnrollMemberProcedure}}
	calls := []struct {
		name   string
		call   func() error
		logged *line
	}{
		{"GetMember", func() error {
			_, err := booking.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: number}))
			return err
		}, &line{e.bookingID, loyaltyv1connect.MemberServiceGetMemberProcedure}},
		{"UpdateMember", func() error {
			_, err := admin.members.UpdateMember(e.ctx, connect.NewRequest(&loyaltyv1.UpdateMemberRequest{IdempotencyKey: "u",
				MemberNumber: number, FullName: str(secrets[4]), Email: str(secrets[5])}))
			return err
		}, &line{adminID, loyaltyv1connect.MemberServiceUpdateMemberProcedure}},
		{"GetMemberHistory", func() error {
			_, err := admin.members.GetMemberHistory(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberHistoryRequest{MemberNumber: number}))
			return err
		}, &line{adminID, loyaltyv1connect.MemberServiceGetMemberHistoryProcedure}},
		{"GetMemberStatus with the family name", func() error {
			_, err := e.alliance(partnerSecret).GetMemberStatus(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{
				MemberNumber: number, FamilyName: secrets[1]}))
			return err
		}, &line{partnerID, loyaltyv1connect.AllianceServiceGetMemberStatusProcedure}},
		{"ListActivity (no personal data)", func() error {
			_, err := booking.members.ListActivity(e.ctx, connect.NewRequest(&loyaltyv1.ListActivityRequest{MemberNumber: number}))
			return err
		}, nil},
		{"GetMemberHistory refused to a booking key", func() error {
			_, err := booking.members.GetMemberHistory(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberHistoryRequest{MemberNumber: number}))
			if connect.CodeOf(err) == connect.CodePermissionDenied {
				return nil
			}
			return fmt.Errorf("got %v, want permission denied", err)
		}, nil},
		{"GetMemberStatus with a wrong family name", func() error {
			_, err := e.alliance(partnerSecret).GetMemberStatus(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberStatusRequest{
				MemberNumber: number, FamilyName: "Wang"}))
			if connect.CodeOf(err) == connect.CodeNotFound {
				return nil
			}
			return fmt.Errorf("got %v, want not found", err)
		}, nil},
	}
	for _, c := range calls {
		if err := c.call(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.logged != nil {
			want = append(want, *c.logged)
		}
	}

	var got []line
	text := logs.String()
	scan := bufio.NewScanner(strings.NewReader(text))
	for scan.Scan() {
		var entry map[string]any
		if err := json.Unmarshal(scan.Bytes(), &entry); err != nil {
			t.Fatalf("log line %q: %v", scan.Text(), err)
		}
		if entry["msg"] != "personal data read" {
			continue
		}
		if entry["member_number"] != number {
			t.Errorf("line %s: member_number %v, want %s", scan.Text(), entry["member_number"], number)
		}
		keyID, _ := entry["key_id"].(string)
		procedure, _ := entry["procedure"].(string)
		got = append(got, line{keyID, procedure})
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("personal-data lines (key, procedure):\n got %v\nwant %v", got, want)
	}
	for _, s := range secrets {
		if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
			t.Errorf("the log holds the personal value %q:\n%s", s, text)
		}
	}
}

// TestAnUpdateThatLeavesNoContactNamesTheFieldItClears: a member keeps an
// email or a phone number for statements; an update that clears the last
// one is INVALID_ARGUMENT on the field it clears, and changes nothing.
func TestAnUpdateThatLeavesNoContactNamesTheFieldItClears(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	for _, tc := range []struct {
		name, email, phone string
		update             *loyaltyv1.UpdateMemberRequest
		field              string
	}{
		{"the email of a member without a phone", "li.wei@example.com", "", &loyaltyv1.UpdateMemberRequest{Email: str("")}, "email"},
		{"the phone of a member without an email", "", "+86 21 5555 0100", &loyaltyv1.UpdateMemberRequest{Phone: str("")}, "phone"},
		{"both", "li.wei@example.com", "+86 21 5555 0100", &loyaltyv1.UpdateMemberRequest{Email: str(""), Phone: str("")}, "phone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.members.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{IdempotencyKey: "enrol-" + strings.ReplaceAll(tc.name, " ", "-"),
				FullName: "Li Wei", Email: tc.email, Phone: tc.phone, Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
			if err != nil {
				t.Fatal(err)
			}
			number := res.Msg.GetMember().GetMemberNumber()
			tc.update.IdempotencyKey, tc.update.MemberNumber = "clear-"+strings.ReplaceAll(tc.name, " ", "-"), number
			_, err = c.members.UpdateMember(e.ctx, connect.NewRequest(tc.update))
			if got := badRequestField(t, wantCode(t, err, connect.CodeInvalidArgument)); got != tc.field {
				t.Errorf("field %q, want %q", got, tc.field)
			}
			after, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: number}))
			if err != nil {
				t.Fatal(err)
			}
			if m := after.Msg.GetMember(); m.GetEmail() != tc.email || m.GetPhone() != tc.phone {
				t.Errorf("contact %q %q after a refused update, want %q %q", m.GetEmail(), m.GetPhone(), tc.email, tc.phone)
			}
		})
	}
}
