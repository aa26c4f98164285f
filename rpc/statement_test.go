package rpc_test

import (
	"bytes"
	"encoding/csv"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/dbtest"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/rpc"
)

// statementMember enrols 李伟 and gives them two stays at 上海虹桥酒店, a
// redemption and a guarantee on hold; it returns the member number.
func statementMember(t *testing.T, e *env, c clients) string {
	t.Helper()
	if _, err := c.admin.PutProperty(e.ctx, connect.NewRequest(&loyaltyv1.PutPropertyRequest{IdempotencyKey: "property-hq-cn",
		Property: &loyaltyv1.Property{PropertyId: "SH-HQ-CN", Name: "上海虹桥酒店"}})); err != nil {
		t.Fatal(err)
	}
	res, err := c.members.EnrollMember(e.ctx, connect.NewRequest(&loyaltyv1.EnrollMemberRequest{
		IdempotencyKey: "enrol-li", FullName: "李伟", Email: "li.wei@example.com", Channel: loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP}))
	if err != nil {
		t.Fatal(err)
	}
	member := res.Msg.GetMember().GetMemberNumber()
	for i, charges := range [][]string{{"400.00", "400.00"}, {"350.00"}} {
		req := stayRequest("stay-"+strconv.Itoa(i), member, "S-"+strconv.Itoa(i), charges...)
		req.PropertyId = "SH-HQ-CN"
		if i == 1 {
			req.ArrivalDate, req.DepartureDate = "2026-11-10", "2026-11-11"
		}
		if _, err := c.booking.RecordStay(e.ctx, connect.NewRequest(req)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.booking.Redeem(e.ctx, connect.NewRequest(&loyaltyv1.RedeemRequest{IdempotencyKey: "milk", MemberNumber: member,
		Reward: loyaltyv1.Reward_REWARD_BEDTIME_MILK, PropertyId: "SH-HQ-CN"})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.booking.PlaceGuarantee(e.ctx, connect.NewRequest(&loyaltyv1.PlaceGuaranteeRequest{IdempotencyKey: "g-1", MemberNumber: member,
		PropertyId: "SH-HQ-CN", StayId: "G-1", ArrivalDate: "2026-11-25", HoldUntil: "20:00"})); err != nil {
		t.Fatal(err)
	}
	return member
}

// TestStatementCSVAddsUpToTheBalance: the CSV of a member with stays, a
// redemption and a hold lists every transaction with its breakdown
// between the opening and the closing balance; opening plus the movements
// is the closing, which is the member's balance; the hold and the next
// expiry are the ones GetMember shows; the file is named after the member
// and the period's days in the programme's zone.
func TestStatementCSVAddsUpToTheBalance(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.adminKey)
	member := statementMember(t, e, c)
	res, err := c.members.ExportStatement(e.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{
		MemberNumber: member, Format: loyaltyv1.StatementFormat_STATEMENT_FORMAT_CSV}))
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	wantName := "statement-" + member + "-" + now.AddDate(-1, 0, 0).In(shanghai).Format(time.DateOnly) + "--" + now.In(shanghai).Format(time.DateOnly) + ".csv"
	if got := res.Msg.GetFileName(); got != wantName {
		t.Errorf("file name %s, want %s", got, wantName)
	}
	if got := res.Msg.GetContentType(); got != "text/csv; charset=utf-8; header=present" {
		t.Errorf("content type %s", got)
	}
	records, err := csv.NewReader(bytes.NewReader(res.Msg.GetContent())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(records[0], ","); got != "line,member_number,transaction_id,recorded_at,effective_at,kind,rule,description,points,balance_after" {
		t.Errorf("header %s", got)
	}
	got, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	m := got.Msg.GetMember()
	var opening, closing, sum, onHold, expiring int64 = -1, -1, 0, -1, -1
	var kinds []string
	lines := map[string]int{}
	for _, r := range records[1:] {
		lines[r[0]]++
		n, _ := strconv.ParseInt(r[8], 10, 64)
		b, _ := strconv.ParseInt(r[9], 10, 64)
		switch r[0] {
		case "member":
			if r[7] != "李伟" || r[5] != "silver" {
				t.Errorf("member line %q", r)
			}
		case "opening":
			opening = b
		case "closing":
			closing = b
		case "transaction":
			sum += n
			kinds = append(kinds, r[5])
		case "on_hold":
			onHold = n
		case "next_expiry":
			expiring = n
			if at, err := time.Parse(time.RFC3339, r[4]); err != nil || !at.Equal(m.GetPointsExpiry().GetNextExpiryAt().AsTime()) {
				t.Errorf("next expiry at %s, GetMember says %s", r[4], m.GetPointsExpiry().GetNextExpiryAt().AsTime())
			}
		}
	}
	if want := "stay stay redemption"; strings.Join(kinds, " ") != want {
		t.Errorf("transactions %q, want %s", kinds, want)
	}
	if int(res.Msg.GetTransactions()) != len(kinds) || lines["breakdown"] < len(kinds) {
		t.Errorf("transactions %d, lines %v", res.Msg.GetTransactions(), lines)
	}
	if opening != 0 || opening+sum != closing || closing != m.GetBalance().GetPostedPoints() {
		t.Errorf("opening %d + movements %d = closing %d; the member has %d posted", opening, sum, closing, m.GetBalance().GetPostedPoints())
	}
	if onHold != m.GetBalance().GetHeldPoints() || onHold == 0 || expiring != m.GetPointsExpiry().GetNextExpiryPoints() || expiring == 0 {
		t.Errorf("on hold %d, next expiry %d; GetMember: %v", onHold, expiring, m)
	}

	// A period before the stays: the opening is the closing, no lines.
	res, err = c.members.ExportStatement(e.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{MemberNumber: member,
		From: timestamppb.New(now.AddDate(0, -3, 0)), To: timestamppb.New(now.AddDate(0, -2, 0))}))
	if err != nil || res.Msg.GetTransactions() != 0 || !strings.HasSuffix(res.Msg.GetFileName(), ".csv") {
		t.Fatalf("an empty period: %v, %v", res, err)
	}
}

// TestStatementPDFRendersChineseNames: the PDF statement of 李伟 with stays
// at 上海虹桥酒店 has both names and the balances in its text (pdftotext)
// and a page 1 with ink on it (pdftoppm).
func TestStatementPDFRendersChineseNames(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.bookingKey)
	member := statementMember(t, e, e.clients(e.adminKey))
	res, err := c.members.ExportStatement(e.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{
		MemberNumber: member, Format: loyaltyv1.StatementFormat_STATEMENT_FORMAT_PDF}))
	if err != nil {
		t.Fatal(err)
	}
	if res.Msg.GetContentType() != "application/pdf" || !strings.HasSuffix(res.Msg.GetFileName(), ".pdf") || res.Msg.GetTransactions() != 3 {
		t.Errorf("content type %s, file %s, %d transactions", res.Msg.GetContentType(), res.Msg.GetFileName(), res.Msg.GetTransactions())
	}
	got, err := c.members.GetMember(e.ctx, connect.NewRequest(&loyaltyv1.GetMemberRequest{MemberNumber: member}))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "statement.pdf")
	if err := os.WriteFile(path, res.Msg.GetContent(), 0o600); err != nil {
		t.Fatal(err)
	}
	text := popplerRun(t, "pdftotext", "-layout", path, "-")
	closing := strconv.FormatInt(got.Msg.GetMember().GetBalance().GetPostedPoints(), 10)
	if len(closing) > 3 {
		closing = closing[:len(closing)-3] + "," + closing[len(closing)-3:]
	}
	for _, want := range []string{"李伟", "上海虹桥酒店", member, "Opening balance", "Closing balance", closing, "Points on hold", "Silver"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text has no %q:\n%s", want, text)
		}
	}
	popplerRun(t, "pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", "-singlefile", path, filepath.Join(dir, "page"))
	if fi, err := os.Stat(filepath.Join(dir, "page.png")); err != nil || fi.Size() < 1000 {
		t.Fatalf("page 1 as PNG: %v, %v", fi, err)
	}
}

// popplerRun runs a poppler-utils command; missing, it fails the test
// (make test installs it: scripts/ensure-statement-tools.sh).
func popplerRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): install poppler-utils with scripts/ensure-statement-tools.sh (as root: apt-get install poppler-utils)", name, err)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
	return string(out)
}

// TestStatementRefusals: each bad field is INVALID_ARGUMENT naming it as
// JSON spells it, an unknown member NOT_FOUND, a partner's key
// PERMISSION_DENIED.
func TestStatementRefusals(t *testing.T) {
	e := newEnv(t)
	c := e.clients(e.adminKey)
	member := e.enroll(t, c, "enrol-1")
	now := e.clock.Now()
	ts := timestamppb.New
	for _, tc := range []struct {
		name  string
		req   *loyaltyv1.ExportStatementRequest
		code  connect.Code
		field string
	}{
		{"member number required", &loyaltyv1.ExportStatementRequest{}, connect.CodeInvalidArgument, "memberNumber"},
		{"member number malformed", &loyaltyv1.ExportStatementRequest{MemberNumber: "12x"}, connect.CodeInvalidArgument, "memberNumber"},
		{"format unknown", &loyaltyv1.ExportStatementRequest{MemberNumber: member, Format: 7}, connect.CodeInvalidArgument, "format"},
		{"to in the future", &loyaltyv1.ExportStatementRequest{MemberNumber: member, To: ts(now.Add(time.Hour))}, connect.CodeInvalidArgument, "to"},
		{"from in the future", &loyaltyv1.ExportStatementRequest{MemberNumber: member, From: ts(now.Add(time.Hour))}, connect.CodeInvalidArgument, "from"},
		{"from after to", &loyaltyv1.ExportStatementRequest{MemberNumber: member, From: ts(now.Add(-time.Hour)), To: ts(now.Add(-2 * time.Hour))}, connect.CodeInvalidArgument, "from"},
		{"from before 2000", &loyaltyv1.ExportStatementRequest{MemberNumber: member, From: ts(time.Date(1999, 12, 31, 0, 0, 0, 0, time.UTC))}, connect.CodeInvalidArgument, "from"},
		{"period over 366 days", &loyaltyv1.ExportStatementRequest{MemberNumber: member, From: ts(now.AddDate(0, 0, -367))}, connect.CodeInvalidArgument, "from"},
		{"unknown member", &loyaltyv1.ExportStatementRequest{MemberNumber: "9999999999"}, connect.CodeNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.members.ExportStatement(e.ctx, connect.NewRequest(tc.req))
			ce := wantCode(t, err, tc.code)
			if tc.field != "" {
				if got := badRequestField(t, ce); got != tc.field || !strings.HasPrefix(ce.Message(), tc.field+": ") {
					t.Errorf("names %s (%s), want %s", got, ce.Message(), tc.field)
				}
			}
		})
	}
	// 366 days exactly is allowed.
	if _, err := c.members.ExportStatement(e.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{
		MemberNumber: member, From: ts(now.AddDate(0, 0, -366)), To: ts(now)})); err != nil {
		t.Errorf("366 days: %v", err)
	}
	e.createPartner(t, "ALPHA", "0.0085", "0.0061", nil)
	partnerKey, _ := e.partnerKey(t, "ALPHA", "alpha-pms")
	_, err := e.clients(partnerKey).members.ExportStatement(e.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{MemberNumber: member}))
	wantCode(t, err, connect.CodePermissionDenied)
}

// TestStatementWithoutFontRefusesPDFOnly: a server whose statement font
// is missing answers FAILED_PRECONDITION naming the setting for a PDF,
// and still exports CSV.
func TestStatementWithoutFontRefusesPDFOnly(t *testing.T) {
	e := newEnvWith(t, dbtest.New(t), func(cfg *rpc.Config) { cfg.StatementFont = filepath.Join(t.TempDir(), "missing.ttf") })
	c := e.clients(e.adminKey)
	member := e.enroll(t, c, "enrol-1")
	_, err := c.members.ExportStatement(e.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{
		MemberNumber: member, Format: loyaltyv1.StatementFormat_STATEMENT_FORMAT_PDF}))
	if ce := wantCode(t, err, connect.CodeFailedPrecondition); !strings.Contains(ce.Message(), "LOYALTY_STATEMENT_FONT") {
		t.Errorf("message %q does not name the setting", ce.Message())
	}
	if _, err := c.members.ExportStatement(e.ctx, connect.NewRequest(&loyaltyv1.ExportStatementRequest{MemberNumber: member})); err != nil {
		t.Errorf("CSV without the font: %v", err)
	}
}
