package statements_test

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/statements"
)

// sample is a statement of a member with two stays (one at a hotel with a
// Chinese name), a redemption, an expiry and points on hold. Its dates are
// fixed: rendering reads no clock.
func sample(t *testing.T) statements.Statement {
	t.Helper()
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	at := func(month time.Month, day int) time.Time { return time.Date(2026, month, day, 3, 30, 0, 0, time.UTC) }
	return statements.Statement{
		ProgrammeName: "Huazhu Rewards", MemberNumber: "1000000001", FullName: "李伟", Tier: "gold",
		From: at(1, 1), To: at(12, 1), Zone: shanghai, Opening: 1200, Closing: 3090,
		AsOf: at(12, 2), OnHold: 500, NextExpiry: &statements.Expiry{At: at(12, 31), Points: 1234},
		Transactions: []statements.Transaction{
			{ID: "t1", RecordedAt: at(3, 2), EffectiveAt: at(3, 2), Kind: "stay", Description: "Stay at 上海虹桥酒店, 2 night(s) from 2026-03-01",
				Points: 1100, BalanceAfter: 2300, Breakdown: []statements.Line{
					{Rule: "base", Description: "Base points: 2 night(s), 800.00 CNY", Points: 800},
					{Rule: "tier_bonus", Description: "Gold tier bonus x1.2", Points: 160},
					{Rule: "direct_booking", Description: "Direct booking bonus", Points: 140}}},
			{ID: "t2", RecordedAt: at(5, 10), EffectiveAt: at(5, 10), Kind: "redemption", Description: "Redeemed 1 x travel_kit",
				Points: -400, BalanceAfter: 1900, Breakdown: []statements.Line{{Rule: "travel_kit", Description: "Travel kit", Points: -400}}},
			{ID: "t3", RecordedAt: at(6, 1), EffectiveAt: at(6, 1), Kind: "expiry", Description: "Points expired",
				Points: -10, BalanceAfter: 1890},
			{ID: "t4", RecordedAt: at(9, 5), EffectiveAt: at(9, 4), Kind: "stay", Description: "Stay at Beijing Sanlitun, 1 night(s) from 2026-09-03",
				Points: 1200, BalanceAfter: 3090, Breakdown: []statements.Line{{Rule: "base", Description: "Base points", Points: 1200}}},
		},
	}
}

// TestCSVListsEachTransactionAndBreakdownLineBetweenOpeningAndClosing: a
// header, the member, the opening, a line per transaction followed by one
// per breakdown line, the closing, the points on hold and the next expiry;
// opening plus the transactions' points is the closing; Chinese text is
// UTF-8; lines end in CRLF (RFC 4180).
func TestCSVListsEachTransactionAndBreakdownLineBetweenOpeningAndClosing(t *testing.T) {
	s := sample(t)
	var buf bytes.Buffer
	if err := statements.CSV(&buf, s); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(buf.String(), "\r\n") || strings.Count(buf.String(), "\r\n") != strings.Count(buf.String(), "\n") {
		t.Errorf("lines do not all end in CRLF:\n%q", buf.String())
	}
	records, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := "line,member_number,transaction_id,recorded_at,effective_at,kind,rule,description,points,balance_after"
	if got := strings.Join(records[0], ","); got != wantHeader {
		t.Errorf("header %s, want %s", got, wantHeader)
	}
	var kinds []string
	var opening, closing, sum int64
	for _, r := range records[1:] {
		kinds = append(kinds, r[0])
		if r[1] != s.MemberNumber {
			t.Errorf("line %v: member_number %q", r, r[1])
		}
		switch r[0] {
		case "opening":
			opening = atoi(t, r[9])
		case "closing":
			closing = atoi(t, r[9])
		case "transaction":
			sum += atoi(t, r[8])
		}
	}
	want := "member opening transaction breakdown breakdown breakdown transaction breakdown transaction transaction breakdown closing on_hold next_expiry"
	if got := strings.Join(kinds, " "); got != want {
		t.Errorf("lines:\n%s\nwant\n%s", got, want)
	}
	if opening != s.Opening || closing != s.Closing || opening+sum != closing {
		t.Errorf("opening %d + movements %d != closing %d (statement: %d, %d)", opening, sum, closing, s.Opening, s.Closing)
	}
	for _, want := range [][]string{
		{"member", "1000000001", "", "", "", "gold", "", "李伟", "", ""},
		{"opening", "1000000001", "", "2026-01-01T11:30:00+08:00", "", "", "", "Opening balance", "", "1200"},
		{"transaction", "1000000001", "t1", "2026-03-02T11:30:00+08:00", "2026-03-02T11:30:00+08:00", "stay", "", "Stay at 上海虹桥酒店, 2 night(s) from 2026-03-01", "1100", "2300"},
		{"breakdown", "1000000001", "t1", "2026-03-02T11:30:00+08:00", "", "", "tier_bonus", "Gold tier bonus x1.2", "160", ""},
		{"on_hold", "1000000001", "", "2026-12-02T11:30:00+08:00", "", "", "", "Points on hold", "500", ""},
		{"next_expiry", "1000000001", "", "2026-12-02T11:30:00+08:00", "2026-12-31T11:30:00+08:00", "", "", "Next expiry", "1234", ""},
	} {
		found := false
		for _, r := range records {
			found = found || fmt.Sprint(r) == fmt.Sprint(want)
		}
		if !found {
			t.Errorf("no line %q", want)
		}
	}
}

// TestCSVOfAClosedMemberHasABlankName: an erased name is an empty field,
// and a member without expiring points has no next_expiry line.
func TestCSVOfAClosedMemberHasABlankName(t *testing.T) {
	s := sample(t)
	s.FullName, s.NextExpiry = "", nil
	var buf bytes.Buffer
	if err := statements.CSV(&buf, s); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := records[1]; got[0] != "member" || got[7] != "" {
		t.Errorf("member line %q, want a blank name", got)
	}
	if last := records[len(records)-1]; last[0] != "on_hold" {
		t.Errorf("last line %q, want on_hold (no next expiry)", last)
	}
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q is not a number of points", s)
	}
	return n
}

// TestPDFShowsChineseNamesAndTheBalances: the PDF of 李伟, with a stay at
// 上海虹桥酒店, read back with pdftotext, has the names, the programme, the
// balances, the points on hold and the next expiry; its first page,
// rendered with pdftoppm, is an image with ink on it.
func TestPDFShowsChineseNamesAndTheBalances(t *testing.T) {
	font := loadFont(t)
	s := sample(t)
	pdf := render(t, s, font)
	text := pdfText(t, pdf)
	for _, want := range []string{"Huazhu Rewards", "李伟", "上海虹桥酒店", "1000000001", "Gold",
		"Opening balance", "1,200", "Closing balance", "3,090", "+1,100", "-400", "Gold tier bonus x1.2", "+160",
		"Points on hold", "500", "Next expiry", "1,234 points on 2026-12-31", "2026-01-01 11:30 to 2026-12-01 11:30 (Asia/Shanghai)",
		"Page 1 of 1"} {
		if !strings.Contains(text, want) {
			t.Errorf("the PDF's text has no %q:\n%s", want, text)
		}
	}
	inked(t, firstPage(t, pdf))
}

// TestPDFRepeatsTheTableHeaderOnEveryPage: a long statement breaks into
// pages, each with the table's header and its number of the total.
func TestPDFRepeatsTheTableHeaderOnEveryPage(t *testing.T) {
	font := loadFont(t)
	s := sample(t)
	one := s.Transactions[0]
	s.Transactions = nil
	for i := range 150 {
		one.ID = fmt.Sprint("t", i)
		s.Transactions = append(s.Transactions, one)
	}
	text := pdfText(t, render(t, s, font))
	pages := strings.Split(strings.TrimRight(text, "\f"), "\f")
	if len(pages) < 3 {
		t.Fatalf("%d pages for 150 transactions with 3 lines each; want several", len(pages))
	}
	for i, page := range pages {
		if !strings.Contains(page, "Recorded") || !strings.Contains(page, "Balance") {
			t.Errorf("page %d has no table header:\n%s", i+1, page)
		}
		if want := fmt.Sprintf("Page %d of %d", i+1, len(pages)); !strings.Contains(page, want) {
			t.Errorf("page %d does not say %q", i+1, want)
		}
	}
	if last := pages[len(pages)-1]; !strings.Contains(last, "Closing balance") {
		t.Errorf("the last page has no closing balance:\n%s", last)
	}
}

// TestLoadFontRefusesWhatItCannotEmbed: a missing file, a TrueType
// collection and a file that is no font are ErrNoFont, each saying why.
func TestLoadFontRefusesWhatItCannotEmbed(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	for _, tc := range []struct {
		name, path, says string
	}{
		{"missing", filepath.Join(dir, "none.ttf"), "no such file"},
		{"collection", write("c.ttc", []byte("ttcf\x00\x01\x00\x00\x00\x00\x00\x02")), "collection"},
		{"not a font", write("x.ttf", []byte("%PDF-1.4 not a font")), "not a TrueType font"},
		{"empty", write("e.ttf", nil), "not a font"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := statements.LoadFont(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.says) || !errors.Is(err, statements.ErrNoFont) {
				t.Errorf("LoadFont(%s): %v; want ErrNoFont saying %q", tc.path, err, tc.says)
			}
		})
	}
}

// loadFont is the font loyaltyd uses by default (LOYALTY_STATEMENT_FONT
// names another). Missing, it fails the test: make test installs it
// (scripts/ensure-statement-tools.sh).
func loadFont(t *testing.T) statements.Font {
	t.Helper()
	path := os.Getenv("LOYALTY_STATEMENT_FONT")
	if path == "" {
		path = statements.DefaultFontPath
	}
	font, err := statements.LoadFont(path)
	if err != nil {
		t.Fatalf("%v: install it with scripts/ensure-statement-tools.sh (as root: apt-get install fonts-droid-fallback), or set LOYALTY_STATEMENT_FONT to a TrueType font with CJK glyphs", err)
	}
	return font
}

func render(t *testing.T, s statements.Statement, font statements.Font) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := statements.PDF(&buf, s, font); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("%PDF-")) {
		t.Fatalf("not a PDF: %.40q", buf.Bytes())
	}
	return buf.Bytes()
}

// poppler is one of poppler-utils' commands. Missing, it fails the test:
// a PDF nobody read back is not tested.
func poppler(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): install poppler-utils with scripts/ensure-statement-tools.sh (as root: apt-get install poppler-utils)", name, err)
	}
	return bin
}

// pdfText is the PDF's text as pdftotext reads it, pages separated by
// form feeds.
func pdfText(t *testing.T, pdf []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "statement.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(poppler(t, "pdftotext"), "-layout", "-enc", "UTF-8", path, "-").CombinedOutput()
	if err != nil {
		t.Fatalf("pdftotext: %v\n%s", err, out)
	}
	return string(out)
}

// firstPage is page 1 of the PDF rendered by pdftoppm as a PNG.
func firstPage(t *testing.T, pdf []byte) image.Image {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "statement.pdf")
	if err := os.WriteFile(path, pdf, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(poppler(t, "pdftoppm"), "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", path, filepath.Join(dir, "page")).CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v\n%s", err, out)
	}
	f, err := os.Open(filepath.Join(dir, "page.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("page 1 is not a PNG: %v", err)
	}
	return img
}

// inked fails unless the image is an A4 page with some dark pixels: a page
// whose glyphs were all missing would still have the table's rules, so the
// text itself is checked with pdftotext.
func inked(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	if ratio := float64(b.Dy()) / float64(b.Dx()); ratio < 1.40 || ratio > 1.43 {
		t.Errorf("page 1 is %dx%d, not A4 portrait", b.Dx(), b.Dy())
	}
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r+g+bl < 3*0x8000 {
				dark++
			}
		}
	}
	if dark < 500 {
		t.Errorf("page 1 has %d dark pixels: blank", dark)
	}
}
