package events

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

// TestAnEventIDIsTheNameBasedUUIDOfItsFact: NewID is uuid.NewSHA1 of the
// event namespace and the type and parts joined by NUL, for short names
// and for names past its buffer: ids written before stay the ids of the
// same facts.
func TestAnEventIDIsTheNameBasedUUIDOfItsFact(t *testing.T) {
	for _, c := range []struct {
		typ   string
		parts []string
	}{
		{TypeMemberEnrolled, []string{"M00012345"}},
		{TypePointsEarned, []string{"0b7f3c1e-9a3d-4d6e-8f00-1c2d3e4f5a6b", "M1"}},
		{TypeTierChanged, nil},
		{TypeBookingRecorded, []string{"", "", ""}},
		{TypeMemberUpdated, []string{"M1", strings.Repeat("k", 300)}},
	} {
		name := c.typ
		for _, p := range c.parts {
			name += "\x00" + p
		}
		if got, want := NewID(c.typ, c.parts...), uuid.NewSHA1(eventNamespace, []byte(name)); got != want {
			t.Errorf("NewID(%q, %q) = %v, want %v", c.typ, c.parts, got, want)
		}
	}
}

// TestEventDataIsWhatJSONMarshalWrites: encodeData writes what
// json.Marshal does (HTML escaped, no newline), from a pooled buffer that
// data larger than the pool keeps is not put back into.
func TestEventDataIsWhatJSONMarshalWrites(t *testing.T) {
	for _, data := range []any{
		PointsData{TransactionID: "t", Description: "<a> & \u2028 \xff", Breakdown: []BreakdownLine{{Rule: "r", Points: -1}}},
		MemberClosedData{MemberNumber: "M1"},
		map[string]any{"b": 1, "a": []string{"x"}},
		BookingData{Reason: strings.Repeat("é", 3*MaxDataBytes)},
		MemberClosedData{MemberNumber: "M2"},
	} {
		want, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodeData(data)
		if err != nil || got != string(want) {
			t.Errorf("encodeData(%T) = %.200q, %v; want %.200q", data, got, err, want)
		}
	}
	if _, err := encodeData(map[string]any{"f": func() {}}); err == nil {
		t.Error("data JSON cannot hold is encoded")
	}
}
