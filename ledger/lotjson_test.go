package ledger

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

// lotBooks are lot books as the ledger writes them: none, one without an
// expiry, expiries in UTC and in other zones, to the nanosecond.
func lotBooks() map[string][]Lot {
	shanghai := time.FixedZone("CST", 8*60*60)
	lot := func(id string, expiresAt time.Time, open int64) Lot {
		return Lot{ID: uuid.MustParse(id), ExpiresAt: expiresAt, Open: open}
	}
	many := make([]Lot, 300)
	for i := range many {
		many[i] = Lot{ID: uuid.NewSHA1(uuid.NameSpaceOID, []byte{byte(i), byte(i >> 8)}),
			ExpiresAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i), Open: int64(1 + i*37)}
	}
	return map[string][]Lot{
		"nil":                nil,
		"empty":              {},
		"never expires":      {lot("6f1c2d3e-0000-4abc-8def-0123456789ab", time.Time{}, 1200)},
		"utc":                {lot("00000000-0000-0000-0000-000000000001", time.Date(2028, 12, 31, 16, 0, 0, 0, time.UTC), 1)},
		"another zone":       {lot("ffffffff-ffff-4fff-bfff-ffffffffffff", time.Date(2028, 1, 1, 0, 0, 0, 0, shanghai), 9_000_000_000)},
		"nanoseconds":        {lot("6f1c2d3e-0000-4abc-8def-0123456789ab", time.Date(2027, 6, 30, 23, 59, 59, 123456789, time.UTC), 5)},
		"year 0 and 9999":    {lot("6f1c2d3e-0000-4abc-8def-000000000001", time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC), 1), lot("6f1c2d3e-0000-4abc-8def-000000000002", time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), 2)},
		"three hundred lots": many,
	}
}

func TestLotJSONAgreesWithEncodingJSON(t *testing.T) {
	for name, lots := range lotBooks() {
		t.Run(name, func(t *testing.T) {
			want := lots
			if want == nil {
				want = []Lot{}
			}
			wantJSON, err := json.Marshal(want)
			if err != nil {
				t.Fatal(err)
			}
			got, ok := appendLots(nil, lots)
			if !ok || string(got) != string(wantJSON) {
				t.Fatalf("appendLots = %s, %v\njson.Marshal = %s", got, ok, wantJSON)
			}
			// What the ledger reads back: its own text, and PostgreSQL's
			// of it (keys by length, a space after ':' and ',').
			spaced := strings.NewReplacer(`":`, `": `, `,"`, `, "`).Replace(string(wantJSON))
			for _, text := range []string{string(wantJSON), spaced, sortedLotKeys(t, wantJSON)} {
				var fromJSON []Lot
				if err := json.Unmarshal([]byte(text), &fromJSON); err != nil {
					t.Fatal(err)
				}
				fast, ok := decodeLotsFast([]byte(text))
				if !ok || !reflect.DeepEqual(fast, fromJSON) {
					t.Fatalf("decodeLotsFast(%s) = %v, %v\njson.Unmarshal = %v", text, fast, ok, fromJSON)
				}
			}
		})
	}
}

// sortedLotKeys is the JSON with each lot's keys in PostgreSQL's JSONB
// order: "lot", "open", "expires_at".
func sortedLotKeys(t *testing.T, raw []byte) string {
	t.Helper()
	var lots []map[string]any
	if err := json.Unmarshal(raw, &lots); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteByte('[')
	for i, l := range lots {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(`{"lot": "` + l["lot"].(string) + `", "open": ` + string(mustJSON(t, l["open"])))
		if e, ok := l["expires_at"]; ok {
			sb.WriteString(`, "expires_at": "` + e.(string) + `"`)
		}
		sb.WriteByte('}')
	}
	sb.WriteByte(']')
	return sb.String()
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLotJSONLeavesToEncodingJSONWhatItDoesNotRead(t *testing.T) {
	const id = `"6f1c2d3e-0000-4abc-8def-0123456789ab"`
	for _, tc := range []struct{ name, text string }{
		{"a null lot", `[null]`},
		{"a null id", `[{"lot":null,"open":1}]`},
		{"a key in capitals", `[{"LOT":` + id + `,"open":1}]`},
		{"an unknown key", `[{"lot":` + id + `,"open":1,"note":"x"}]`},
		{"a key twice", `[{"lot":` + id + `,"open":1,"open":2}]`},
		{"an escaped id", `[{"lot":"6f1c2d3e-0000-4abc-8def-0123456789a\u0062","open":1}]`},
		{"an id that is not one", `[{"lot":"6f1c2d3e","open":1}]`},
		{"an expiry that is not a time", `[{"lot":` + id + `,"expires_at":"soon","open":1}]`},
		{"a fraction", `[{"lot":` + id + `,"open":1.5}]`},
		{"an exponent", `[{"lot":` + id + `,"open":1e3}]`},
		{"points past int64", `[{"lot":` + id + `,"open":9223372036854775808}]`},
		{"no closing bracket", `[{"lot":` + id + `,"open":1}`},
		{"something after", `[] []`},
		{"an object, not an array", `{"lot":` + id + `}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if lots, ok := decodeLotsFast([]byte(tc.text)); ok {
				t.Fatalf("decodeLotsFast(%s) = %v, true: want false", tc.text, lots)
			}
		})
	}
	// A year json.Marshal refuses is refused here too.
	if _, ok := appendLots(nil, []Lot{{ExpiresAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Open: 1}}); ok {
		t.Fatal("appendLots wrote a year past 9999")
	}
}

func FuzzDecodeLots(f *testing.F) {
	for _, lots := range lotBooks() {
		b, _ := appendLots(nil, lots)
		f.Add(b)
	}
	f.Add([]byte(`[{"lot": "6f1c2d3e-0000-4abc-8def-0123456789ab", "open": 3, "expires_at": "2027-01-01T00:00:00+00:00"}]`))
	f.Add([]byte(`[{"open":null,"expires_at":null,"lot":"6f1c2d3e-0000-4abc-8def-0123456789ab"}]`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		fast, ok := decodeLotsFast(raw)
		if !ok {
			return
		}
		var fromJSON []Lot
		if err := json.Unmarshal(raw, &fromJSON); err != nil {
			t.Fatalf("decodeLotsFast read %q, which encoding/json refuses: %v", raw, err)
		}
		if !reflect.DeepEqual(fast, fromJSON) {
			t.Fatalf("decodeLotsFast(%q) = %v, json.Unmarshal = %v", raw, fast, fromJSON)
		}
	})
}

// BenchmarkLotJSON compares the lot book's codec with encoding/json on a
// member's book of 5 lots: go test -run XXX -bench LotJSON ./ledger
func BenchmarkLotJSON(b *testing.B) {
	lots := lotBooks()["three hundred lots"][:5]
	raw, _ := appendLots(nil, lots)
	b.Run("decode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			var out []Lot
			if err := json.Unmarshal(raw, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode/fast", func(b *testing.B) {
		for b.Loop() {
			if _, ok := decodeLotsFast(raw); !ok {
				b.Fatal("not read")
			}
		}
	})
	b.Run("encode/encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(lots); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encode/fast", func(b *testing.B) {
		for b.Loop() {
			encodeLots(lots)
		}
	})
}
