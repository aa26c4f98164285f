package events_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/events"
)

func TestAnEventsJSONIsTheEnvelopeEncodingJSONWrites(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*60*60)
	base := events.Event{Position: 42, ID: uuid.MustParse("6f1c2d3e-0000-5abc-8def-0123456789ab"), Type: "loyalty.points.earned.v1",
		Subject: "M000012345", Seq: 7, OccurredAt: time.Date(2026, 3, 10, 9, 0, 0, 123456000, time.UTC),
		Data: json.RawMessage(`{"points":1200,"source":"stay"}`)}
	for _, tc := range []struct {
		name string
		edit func(e *events.Event)
	}{
		{"a member's event", func(*events.Event) {}},
		{"at a partner's hotel", func(e *events.Event) { e.PartnerID, e.PropertyID = "P-1", "BENCH-1" }},
		{"texts that JSON escapes", func(e *events.Event) {
			e.PartnerID, e.PropertyID, e.Subject = `P "1" \ <&>`, "H\u2028tel\x01", "partner:Ünïcode"
		}},
		{"a time in another zone, whole seconds", func(e *events.Event) { e.OccurredAt = time.Date(2026, 3, 10, 17, 0, 0, 0, shanghai) }},
		{"no data", func(e *events.Event) { e.Data = nil }},
		{"data as PostgreSQL writes it", func(e *events.Event) {
			e.Data = json.RawMessage(`{"points": 1200, "breakdown": [{"rule": "base", "points": 1000}]}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := base
			tc.edit(&e)
			want, err := json.Marshal(e.Envelope())
			if err != nil {
				t.Fatal(err)
			}
			got := e.AppendJSON(nil)
			var gotValue, wantValue map[string]any
			if err := json.Unmarshal(got, &gotValue); err != nil {
				t.Fatalf("AppendJSON wrote %s: %v", got, err)
			}
			if err := json.Unmarshal(want, &wantValue); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotValue, wantValue) {
				t.Fatalf("AppendJSON = %s\njson.Marshal = %s", got, want)
			}
			// With compact data (or none), byte for byte encoding/json's.
			if compact := len(e.Data) == 0 || string(compacted(t, e.Data)) == string(e.Data); compact && string(got) != string(want) {
				t.Fatalf("AppendJSON = %s\njson.Marshal = %s", got, want)
			}
		})
	}
}

func compacted(t *testing.T, raw []byte) []byte {
	t.Helper()
	b, err := json.Marshal(json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// BenchmarkEnvelopeJSON compares AppendJSON with json.Marshal of the
// envelope, for an event with PostgreSQL's text of a stay's data:
// go test -run XXX -bench EnvelopeJSON ./events
func BenchmarkEnvelopeJSON(b *testing.B) {
	e := events.Event{Position: 123456, ID: uuid.MustParse("6f1c2d3e-0000-5abc-8def-0123456789ab"), Type: "loyalty.points.earned.v1",
		Subject: "M000012345", Seq: 12, OccurredAt: time.Date(2026, 3, 10, 9, 0, 0, 0, time.UTC), PartnerID: "P-1", PropertyID: "BENCH-1",
		Data: json.RawMessage(`{"kind": "stay", "points": 1200, "source": "stay", "stay_id": "S-1234", "breakdown": [{"rule": "base", "points": 1000}, ` +
			`{"rule": "tier bonus", "points": 200}], "property_id": "BENCH-1", "effective_at": "2026-03-10T09:00:00Z", "balance_after": ` +
			`{"held": 0, "posted": 5400, "available": 5400}, "member_number": "M000012345", "transaction_id": "6f1c2d3e-0000-4abc-8def-0123456789ab"}`)}
	b.Run("encoding-json", func(b *testing.B) {
		for b.Loop() {
			if _, err := json.Marshal(e.Envelope()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		for b.Loop() {
			buf = e.AppendJSON(buf[:0])
		}
	})
}
