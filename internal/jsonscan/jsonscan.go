// Package jsonscan reads the JSON the service writes itself (its
// transactions' metadata, its accounts' lots) without reflection: on hot
// paths, encoding/json's reflection cost several percent of the service's
// CPU. It reads a plain subset — strings without escapes, valid UTF-8,
// integers without fraction or exponent, no key twice in an object — and
// answers false for anything else, so that its callers then ask
// encoding/json, and the two agree on every input (each caller has a
// fuzz test that says so).
package jsonscan

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxKeys bounds the keys of one object Object reads (the most a caller
// reads has 20): a longer object is left to encoding/json.
const MaxKeys = 24

// New returns a scanner of raw, from its start. It copies raw once: every
// string it reads is a piece of that copy.
func New(raw []byte) Scanner { return Scanner{s: string(raw)} }

// Scanner reads JSON from s at i.
type Scanner struct {
	s string
	i int
}

func (d *Scanner) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// Next skips spaces and takes c if it comes next.
func (d *Scanner) Next(c byte) bool {
	d.space()
	if d.i < len(d.s) && d.s[d.i] == c {
		d.i++
		return true
	}
	return false
}

// End says whether only spaces are left.
func (d *Scanner) End() bool {
	d.space()
	return d.i == len(d.s)
}

// Null takes a JSON null, which encoding/json leaves a field alone for
// (a slice: sets it to nil, which it is, as no key comes twice).
func (d *Scanner) Null() bool {
	d.space()
	if len(d.s)-d.i >= 4 && d.s[d.i:d.i+4] == "null" {
		d.i += 4
		return true
	}
	return false
}

// Object reads an object, each value by field(key), which reads it and
// says whether it could: false for a key it does not know.
func (d *Scanner) Object(field func(key string) bool) bool {
	if !d.Next('{') {
		return false
	}
	if d.Next('}') {
		return true
	}
	var keys [MaxKeys]string
	for n := 0; ; n++ {
		var key string
		if n == len(keys) || !d.Text(&key) || !d.Next(':') {
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
		if d.Next('}') {
			return true
		}
		if !d.Next(',') {
			return false
		}
	}
}

// Str reads a string (text) or a null, which leaves into alone.
func (d *Scanner) Str(into *string) bool {
	return d.Null() || d.Text(into)
}

// Text reads a string without escapes or control characters, valid
// UTF-8: its value is its text.
func (d *Scanner) Text(into *string) bool {
	if !d.Next('"') {
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

// Number reads an integer as JSON writes one: no fraction, no exponent.
func (d *Scanner) Number(bits int) (int64, bool) {
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

func (d *Scanner) Int(into *int) bool {
	if d.Null() {
		return true
	}
	n, ok := d.Number(strconv.IntSize)
	*into = int(n)
	return ok
}

func (d *Scanner) Int64(into *int64) bool {
	if d.Null() {
		return true
	}
	n, ok := d.Number(64)
	*into = n
	return ok
}
