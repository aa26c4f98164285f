package ledger

import (
	"encoding/hex"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/internal/jsonscan"
)

// A lot book's JSON, without reflection. Every write to a member's points
// reads the account's open lots and writes them back, and encoding/json
// spent 4.2% of loyaltyd's CPU doing so under make bench's load (decode
// 2.5%, encode 1.7%). appendLots writes what json.Marshal writes;
// decodeLotsFast reads what json.Unmarshal reads, or answers false and
// leaves the input to it (TestLotJSONAgreesWithEncodingJSON,
// FuzzDecodeLots).

// appendLots appends lots as json.Marshal writes them, and reports false
// for what json.Marshal refuses (a year outside 0 to 9999).
func appendLots(buf []byte, lots []Lot) ([]byte, bool) {
	buf = append(buf, '[')
	for i, l := range lots {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, `{"lot":"`...)
		buf = appendUUID(buf, l.ID)
		buf = append(buf, '"')
		if !l.ExpiresAt.IsZero() {
			if y := l.ExpiresAt.Year(); y < 0 || y > 9999 {
				return buf, false
			}
			if _, offset := l.ExpiresAt.Zone(); offset <= -24*60*60 || offset >= 24*60*60 {
				return buf, false
			}
			buf = append(buf, `,"expires_at":"`...)
			buf = l.ExpiresAt.AppendFormat(buf, time.RFC3339Nano)
			buf = append(buf, '"')
		}
		buf = append(buf, `,"open":`...)
		buf = strconv.AppendInt(buf, l.Open, 10)
		buf = append(buf, '}')
	}
	return append(buf, ']'), true
}

// appendUUID appends u's canonical text, as uuid.UUID.MarshalText writes it.
func appendUUID(buf []byte, u uuid.UUID) []byte {
	var text [36]byte
	hex.Encode(text[0:8], u[0:4])
	text[8] = '-'
	hex.Encode(text[9:13], u[4:6])
	text[13] = '-'
	hex.Encode(text[14:18], u[6:8])
	text[18] = '-'
	hex.Encode(text[19:23], u[8:10])
	text[23] = '-'
	hex.Encode(text[24:], u[10:])
	return append(buf, text[:]...)
}

// maxTimeText bounds the text of an expiry decodeLotsFast reads.
const maxTimeText = 64

// decodeLotsFast reads a lot book as json.Unmarshal would into []Lot, for
// the JSON appendLots writes and PostgreSQL gives back of it (keys
// sorted, spaced). It answers false for anything else: a null lot, a key
// it does not know or finds twice, a string with escapes, a number that
// is not a plain integer, a lot id or expiry that does not parse.
func decodeLotsFast(raw []byte) ([]Lot, bool) {
	d := jsonscan.New(raw)
	if d.Null() {
		return nil, d.End()
	}
	if !d.Next('[') {
		return nil, false
	}
	lots := make([]Lot, 0, 4)
	if d.Next(']') {
		return lots, d.End()
	}
	for {
		var l Lot
		ok := d.Object(func(key string) bool {
			var text string
			switch key {
			case "lot":
				if !d.Text(&text) { // a null id: encoding/json's call
					return false
				}
				id, err := uuid.Parse(text)
				l.ID = id
				return err == nil
			case "expires_at":
				if d.Null() {
					return true
				}
				if !d.Text(&text) || len(text) > maxTimeText {
					return false
				}
				// As encoding/json: time.Time's own reading of the text.
				var b [maxTimeText]byte
				return l.ExpiresAt.UnmarshalText(b[:copy(b[:], text)]) == nil
			case "open":
				return d.Int64(&l.Open)
			}
			return false
		})
		if !ok {
			return nil, false
		}
		lots = append(lots, l)
		if d.Next(']') {
			return lots, d.End()
		}
		if !d.Next(',') {
			return nil, false
		}
	}
}
