package statements

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"

	"codeberg.org/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/goregular"
)

// PDFContentType is the media type of PDF's files.
const PDFContentType = "application/pdf"

// DefaultFontPath is where Debian's fonts-droid-fallback package puts
// Droid Sans Fallback (Apache 2.0, which allows embedding): one TrueType
// file with Latin and CJK glyphs.
const DefaultFontPath = "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"

// MaxFontBytes bounds the font file read: CJK fonts are large (Droid
// Sans Fallback is 4 MB), but not that large.
const MaxFontBytes = 64 << 20

// ErrNoFont is wrapped by LoadFont's errors: the PDF cannot be made
// until the font setting names a usable font.
var ErrNoFont = errors.New("no usable font for PDF statements")

// Font is a TrueType font the PDF embeds (the glyphs it uses, as a
// subset).
type Font struct {
	Path string
	data []byte
}

// LoadFont reads a TrueType font (.ttf). A collection (.ttc) or a
// CFF-based OpenType font (.otf) is refused: the PDF writer embeds
// TrueType outlines only.
func LoadFont(path string) (Font, error) {
	f, err := os.Open(path)
	if err != nil {
		return Font{}, fmt.Errorf("%w: %w", ErrNoFont, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFontBytes+1))
	if err != nil {
		return Font{}, fmt.Errorf("%w: read %s: %w", ErrNoFont, path, err)
	}
	if len(data) > MaxFontBytes {
		return Font{}, fmt.Errorf("%w: %s is larger than %d bytes", ErrNoFont, path, MaxFontBytes)
	}
	if len(data) < 12 {
		return Font{}, fmt.Errorf("%w: %s is not a font", ErrNoFont, path)
	}
	switch string(data[:4]) {
	case "\x00\x01\x00\x00", "true":
	case "ttcf":
		return Font{}, fmt.Errorf("%w: %s is a TrueType collection (.ttc): name a single TrueType font (.ttf)", ErrNoFont, path)
	case "OTTO":
		return Font{}, fmt.Errorf("%w: %s has CFF outlines (.otf): name a TrueType font (.ttf)", ErrNoFont, path)
	default:
		return Font{}, fmt.Errorf("%w: %s is not a TrueType font", ErrNoFont, path)
	}
	return Font{Path: path, data: data}, nil
}

// The page: A4 portrait, millimetres.
const (
	pageMargin   = 15.0
	pageBottom   = 297.0 - 15.0 - 8.0 // above the footer
	lineHeight   = 4.6
	maxDescLines = 8 // a longer description is cut with an ellipsis
)

// column is a column of the transactions table.
type column struct {
	title string
	width float64
	align string
}

var columns = []column{
	{"Recorded", 29, "L"},
	{"Kind", 25, "L"},
	{"Description", 84, "L"},
	{"Points", 21, "R"},
	{"Balance", 21, "R"},
}

// PDF writes s as an A4 PDF in font: the programme's name as the title,
// the member, the period, the opening balance, the transactions with
// their breakdown lines indented (the table's header repeated on every
// page), the closing balance, the points on hold and the next expiry, and
// page numbers.
func PDF(w io.Writer, s Statement, font Font) error {
	if len(font.data) == 0 {
		return fmt.Errorf("%w: no font loaded", ErrNoFont)
	}
	zone := s.zone()
	doc := fpdf.New("P", "mm", "A4", "")
	doc.SetMargins(pageMargin, pageMargin, pageMargin)
	doc.SetAutoPageBreak(false, 0)
	doc.SetCreationDate(s.AsOf)
	doc.SetModificationDate(s.AsOf)
	doc.SetTitle("Statement "+s.MemberNumber, true)
	doc.SetCreator(s.ProgrammeName, true)
	// Go Regular (BSD licence, built in) sets Latin text; the CJK font
	// the rest: Droid Sans Fallback has no Latin glyphs.
	doc.AddUTF8FontFromBytes(latinFont, "", goregular.TTF)
	doc.AddUTF8FontFromBytes(cjkFont, "", font.data)
	if doc.Err() {
		return fmt.Errorf("%w: %s: %w", ErrNoFont, font.Path, doc.Error())
	}
	doc.AliasNbPages("{nb}")
	size := 10.0
	cell := func(w, h float64, text, align string) { writeCell(doc, size, w, h, text, align) }
	doc.SetFooterFunc(func() {
		doc.SetY(-15)
		size = 8
		doc.SetTextColor(110, 110, 110)
		cell(90, 5, "Member "+s.MemberNumber, "L")
		cell(90, 5, "Page "+strconv.Itoa(doc.PageNo())+" of {nb}", "R")
		doc.SetTextColor(0, 0, 0)
	})
	day := func(t time.Time) string { return t.In(zone).Format("2006-01-02 15:04") }

	doc.AddPage()
	size = 18
	cell(180, 10, s.ProgrammeName, "L")
	doc.Ln(10)
	size = 12
	cell(180, 7, "Points statement", "L")
	doc.Ln(9)
	size = 10
	name := s.FullName
	if name == "" {
		name = "-"
	}
	for _, kv := range [][2]string{
		{"Member number", s.MemberNumber},
		{"Name", name},
		{"Tier", tierName(string(s.Tier))},
		{"Period", fmt.Sprintf("%s to %s (%s)", day(s.From), day(s.To), zone)},
		{"Opening balance", points(s.Opening, false)},
	} {
		cell(40, 6, kv[0], "L")
		cell(140, 6, kv[1], "L")
		doc.Ln(6)
	}
	doc.Ln(3)

	header := func() {
		size = 9
		doc.SetFillColor(225, 230, 240)
		doc.Rect(pageMargin, doc.GetY(), 180, 6, "F")
		for _, c := range columns {
			cell(c.width, 6, c.title, c.align)
		}
		doc.Ln(6)
	}
	// room makes sure h more millimetres fit on the page, else starts a
	// new one with the table's header.
	room := func(h float64) {
		if doc.GetY()+h > pageBottom {
			doc.AddPage()
			header()
		}
	}
	row := func(cells [5]string, indent float64, fontSize float64, grey bool) {
		size = fontSize
		desc := wrap(doc, size, cells[2], columns[2].width-2-indent)
		h := float64(len(desc)) * lineHeight
		room(h)
		size = fontSize // a new page's footer and header set theirs
		if grey {
			doc.SetTextColor(90, 90, 90)
		}
		x, y := doc.GetX(), doc.GetY()
		for i, c := range columns {
			if i == 2 {
				for n, l := range desc {
					doc.SetXY(x+indent, y+float64(n)*lineHeight)
					cell(c.width-indent, lineHeight, l, "L")
				}
				doc.SetXY(x+c.width, y)
			} else {
				cell(c.width, lineHeight, cells[i], c.align)
			}
			x += c.width
		}
		doc.SetTextColor(0, 0, 0)
		doc.SetXY(pageMargin, y+h)
	}

	header()
	if len(s.Transactions) == 0 {
		row([5]string{"", "", "No transactions in this period.", "", ""}, 0, 9, true)
	}
	for _, t := range s.Transactions {
		// A transaction starts where its first breakdown line fits too.
		room(lineHeight * float64(min(len(t.Breakdown), 1)+1))
		row([5]string{day(t.RecordedAt), kindName(t.Kind), t.Description, points(t.Points, true), points(t.BalanceAfter, false)}, 0, 9, false)
		for _, b := range t.Breakdown {
			text := b.Description
			if text == "" {
				text = b.Rule
			}
			row([5]string{"", "", text, points(b.Points, true), ""}, 4, 8, true)
		}
		y := doc.GetY() + 0.6
		doc.SetDrawColor(220, 220, 220)
		doc.Line(pageMargin, y, 210-pageMargin, y)
		doc.SetY(y + 0.6)
	}

	room(4 * 7)
	doc.Ln(3)
	size = 10
	expiry := "none"
	if s.NextExpiry != nil {
		expiry = fmt.Sprintf("%s points on %s", points(s.NextExpiry.Points, false), s.NextExpiry.At.In(zone).Format(time.DateOnly))
	}
	for _, kv := range [][2]string{
		{"Closing balance", points(s.Closing, false)},
		{"Points on hold", fmt.Sprintf("%s (as of %s)", points(s.OnHold, false), day(s.AsOf))},
		{"Next expiry", expiry},
	} {
		cell(40, 6, kv[0], "L")
		cell(140, 6, kv[1], "L")
		doc.Ln(6)
	}

	var buf bytes.Buffer
	if err := doc.Output(&buf); err != nil {
		return fmt.Errorf("statement of %s: render PDF: %w", s.MemberNumber, err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("statement of %s: write PDF: %w", s.MemberNumber, err)
	}
	return nil
}

// wrap breaks text into lines that fit width in the current font, at a
// space where there is one (Chinese text breaks between any two
// characters), at most maxDescLines of them.
func wrap(doc *fpdf.Fpdf, size float64, text string, width float64) []string {
	text = strings.Join(strings.Fields(text), " ")
	var lines []string
	for text != "" && len(lines) < maxDescLines {
		runes := []rune(text)
		end, lastSpace, used := len(runes), -1, 0.0
		for i := range runes {
			if unicode.IsSpace(runes[i]) {
				lastSpace = i
			}
			if used += textWidth(doc, size, string(runes[i])); used > width {
				end = max(i, 1)
				if lastSpace > 0 {
					end = lastSpace
				}
				break
			}
		}
		lines = append(lines, strings.TrimSpace(string(runes[:end])))
		text = strings.TrimSpace(string(runes[end:]))
	}
	if text != "" {
		last := []rune(lines[len(lines)-1])
		for len(last) > 0 && textWidth(doc, size, string(last)+"…") > width {
			last = last[:len(last)-1]
		}
		lines[len(lines)-1] = string(last) + "…"
	}
	if len(lines) == 0 {
		lines = []string{""}
	}
	return lines
}

// The document's fonts.
const (
	latinFont = "latin"
	cjkFont   = "cjk"
)

// run is a stretch of text set in one font.
type run struct {
	font, text string
}

// runsOf splits text into runs of the Latin font (Latin, Greek, Cyrillic,
// punctuation: the Go fonts' repertoire) and of the CJK font (the rest).
func runsOf(text string) []run {
	var out []run
	for _, r := range text {
		font := cjkFont
		if r < 0x0530 || (r >= 0x2000 && r < 0x2070) || r == 0x20AC {
			font = latinFont
		}
		if n := len(out); n > 0 && out[n-1].font == font {
			out[n-1].text += string(r)
		} else {
			out = append(out, run{font, string(r)})
		}
	}
	return out
}

func textWidth(doc *fpdf.Fpdf, size float64, text string) float64 {
	w := 0.0
	for _, r := range runsOf(text) {
		doc.SetFont(r.font, "", size)
		w += doc.GetStringWidth(r.text)
	}
	return w
}

// writeCell writes text in a cell of w by h at the current position,
// aligned "L" or "R", each run in its font, and moves right of the cell.
func writeCell(doc *fpdf.Fpdf, size, w, h float64, text, align string) {
	x, y := doc.GetXY()
	const padding = 1.0
	start := x + padding
	if align == "R" {
		start = x + w - padding - textWidth(doc, size, text)
	}
	doc.SetXY(start, y)
	for _, r := range runsOf(text) {
		doc.SetFont(r.font, "", size)
		rw := doc.GetStringWidth(r.text)
		doc.SetCellMargin(0)
		doc.CellFormat(rw, h, r.text, "", 0, "L", false, 0, "")
	}
	doc.SetXY(x+w, y)
}

// points formats points with thousands separators, with a sign when
// signed ("+1,200", "-300").
func points(n int64, signed bool) string {
	digits := strconv.FormatInt(n, 10)
	sign := ""
	if n < 0 {
		sign, digits = "-", digits[1:]
	} else if signed && n > 0 {
		sign = "+"
	}
	var b strings.Builder
	for i, d := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	return sign + b.String()
}

// tierName and kindName say a tier or a kind as people read it.
func tierName(tier string) string { return kindName(tier) }

func kindName(kind string) string {
	kind = strings.ReplaceAll(kind, "_", " ")
	if kind == "" {
		return ""
	}
	r := []rune(kind)
	return string(unicode.ToUpper(r[0])) + string(r[1:])
}
