package txmeta

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// decodeFast reads the metadata the way encoding/json would, for the
// metadata JSON writes and the forms the ledger keeps of it (the same
// keys, maybe sorted, maybe spaced). Every transaction written is
// decoded two or three times (its event, the service's answer, the API's
// view of it), and encoding/json's reflection was 5% of the service's CPU
// under load. It answers false for anything else — an unknown key, a key
// twice, an escaped or non-UTF-8 string, a number that is not a plain
// integer, malformed JSON — and Decode then asks encoding/json, so that
// the two agree on every input (FuzzDecode).
func decodeFast(raw []byte) (Metadata, bool) {
	// One copy of the text: every string of the metadata is a piece of it.
	d := scanner{s: string(raw)}
	var m Metadata
	ok := d.object(func(key string) bool {
		switch key {
		case "kind":
			return d.str(&m.Kind)
		case "member_number":
			return d.str(&m.Member)
		case "property_id":
			return d.str(&m.PropertyID)
		case "stay_id":
			return d.str(&m.StayID)
		case "description":
			return d.str(&m.Description)
		case "breakdown":
			return d.lines(&m.Breakdown)
		case "reason":
			return d.str(&m.Reason)
		case "corrects":
			return d.str(&m.Corrects)
		case "corrected_by":
			return d.str(&m.CorrectedBy)
		case "programme_version":
			return d.int(&m.ProgrammeVersion)
		case "nights":
			return d.int(&m.Nights)
		case "qualifying_points":
			return d.int64(&m.QualifyingPoints)
		case "tier_after":
			return d.str(&m.TierAfter)
		case "partner_id":
			return d.str(&m.PartnerID)
		case "rate_version":
			return d.int(&m.RateVersion)
		case "partner_points_issued":
			return d.int64(&m.PartnerPointsIssued)
		case "partner_points_redeemed":
			return d.int64(&m.PartnerPointsRedeemed)
		case "tier_priced":
			return d.str(&m.TierPriced)
		case "money_amount":
			return d.str(&m.Money)
		case "money_currency":
			return d.str(&m.Currency)
		}
		return false
	})
	if !ok || !d.end() {
		return Metadata{}, false
	}
	return m, true
}

// maxFastKeys bounds the keys of one object decodeFast reads: Metadata
// has 20, a Line 4, and a repeated key is not for the fast path.
const maxFastKeys = 24

// maxFastLines bounds a breakdown decodeFast reads; a longer one is left
// to encoding/json.
const maxFastLines = 64

// scanner reads JSON from s at i.
type scanner struct {
	s string
	i int
}

func (d *scanner) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips spaces and takes c if it comes next.
func (d *scanner) next(c byte) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// end says whether only spaces are left.
func (d *scanner) end() bool {
	d.space()
	return d.i == len(d.s)
}

// null takes a JSON null, which encoding/json leaves a field alone for
// (a slice: sets it to nil, which it is, as no key comes twice).
func (d *scanner) null() bool {
	d.space()
	if len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "null" {
		d.i += 4
		return true
	}
	return false
}

// object reads an object, each value by field(key), which reads it and
// says whether it could: false for a key it does not know.
func (d *scanner) object(field func(key string) bool) bool {
	if !d.next('{') {
		return false
	}
	if d.next('}') {
		return true
	}
	var keys [maxFastKeys]string
	for n := 0; ; n++ {
		var key string
		if n == len(keys) || !d.text(&key) || !d.next(':') {
			return false
		}
		for _, k := range keys[:n] {
			if k == key {
				return false // encoding/json merges repeats: its business
			}
		}
		keys[n] = key
		if !field(key) {
			return false
		}
		if d.next('}') {
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}

// str reads a string (text) or a null, which leaves into alone.
func (d *scanner) str(into *string) bool {
	return d.null() || d.text(into)
}

// text reads a string without escapes or control characters, valid
// UTF-8: its value is its text.
func (d *scanner) text(into *string) bool {
	if !d.next('"') {
		return false
	}
	n := strings.IndexByte(d.s[d.i:], '"')
	if n < 0 {
		return false
	}
	s := d.s[d.i : d.i+n]
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\\' || c < 0x20 {
			return false
		}
	}
	if !utf8.ValidString(s) {
		return false // encoding/json replaces what is not UTF-8
	}
	d.i += n + 1
	*into = s
	return true
}

// number reads an integer as JSON writes one: no fraction, no exponent.
func (d *scanner) number(bits int) (int64, bool) {
	d.space()
	start := d.i
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	digits := d.i
	for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
		d.i++
	}
	switch {
	case d.i == digits, d.s[digits] == '0' && d.i-digits > 1:
		return 0, false // no digits, or a leading zero: not JSON
	case d.i < len(d.s) && (d.s[d.i] == '.' || d.s[d.i] == 'e' || d.s[d.i] == 'E'):
		return 0, false
	}
	n, err := strconv.ParseInt(d.s[start:d.i], 10, bits)
	return n, err == nil
}

func (d *scanner) int(into *int) bool {
	if d.null() {
		return true
	}
	n, ok := d.number(strconv.IntSize)
	*into = int(n)
	return ok
}

func (d *scanner) int64(into *int64) bool {
	if d.null() {
		return true
	}
	n, ok := d.number(64)
	*into = n
	return ok
}

// lines reads a breakdown. encoding/json makes an empty array an empty
// slice, not nil, and a null element a zero Line.
func (d *scanner) lines(into *[]Line) bool {
	if d.null() {
		return true
	}
	if !d.next('[') {
		return false
	}
	out := make([]Line, 0, 4)
	if d.next(']') {
		*into = out
		return true
	}
	for {
		if len(out) == maxFastLines {
			return false
		}
		var l Line
		if !d.null() && !d.object(func(key string) bool {
			switch key {
			case "rule":
				return d.str(&l.Rule)
			case "description":
				return d.str(&l.Description)
			case "points":
				return d.int64(&l.Points)
			case "held_points":
				return d.int64(&l.HeldPoints)
			}
			return false
		}) {
			return false
		}
		out = append(out, l)
		if d.next(']') {
			*into = out
			return true
		}
		if !d.next(',') {
			return false
		}
	}
}
