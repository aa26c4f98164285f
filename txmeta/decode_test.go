package txmeta

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// written is metadata as the services write it, every field set.
var written = Metadata{Kind: KindPartnerStay, Member: "M00012345", PropertyID: "P1-0007", StayID: "p-stay-77",
	Description: "Stay at 杭州西湖店, 1 night(s) from 2026-03-08 (× 1.5)",
	Breakdown: []Line{{Rule: "partner_rate", Description: "rate 4", Points: 268},
		{Rule: "guarantee_capture", Description: "held", HeldPoints: -500}},
	Reason: "a reason", Corrects: "c", CorrectedBy: "d", ProgrammeVersion: 3, Nights: 2, QualifyingPoints: 398, TierAfter: "gold",
	PartnerID: "P1", RateVersion: 4, PartnerPointsIssued: 268, PartnerPointsRedeemed: 12, TierPriced: "silver",
	Money: "2.68", Currency: "CNY"}

// sortedKeys is raw as the ledger keeps a request's metadata that has no
// fingerprint: decoded and encoded again, keys sorted.
func sortedKeys(t testing.TB, raw []byte) []byte {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func spaced(t testing.TB, raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, " ", "\t"); err != nil {
		t.Fatal(err)
	}
	return append(append([]byte("\r\n "), b.Bytes()...), '\n')
}

// TestDecodeReadsWhatEncodingJSONReads: Decode answers what
// json.Unmarshal into Metadata does for every input, and reads the forms
// the services write and the ledger keeps (as written, keys sorted,
// spaced, nulls, empty) without encoding/json.
func TestDecodeReadsWhatEncodingJSONReads(t *testing.T) {
	minimal := Metadata{Kind: KindStay, Member: "M1"}
	withEmpty := minimal
	withEmpty.Breakdown = []Line{}
	for _, c := range []struct {
		name string
		raw  string
		fast bool // read without encoding/json
	}{
		{"as written", string(written.JSON()), true},
		{"keys sorted", string(sortedKeys(t, written.JSON())), true},
		{"spaced", string(spaced(t, written.JSON())), true},
		{"no breakdown (null)", string(minimal.JSON()), true},
		{"empty breakdown", string(withEmpty.JSON()), true},
		{"null values", `{"kind":null,"nights":null,"qualifying_points":null,"breakdown":[null,{"rule":null,"points":null}]}`, true},
		{"empty object", `{}`, true},
		{"negative and zero numbers", `{"nights":-0,"qualifying_points":-9223372036854775808,"rate_version":0}`, true},
		{"unicode text", "{\"description\":\"上海 × – \u2028 ok\"}", true},
		{"empty", ``, false},
		{"not an object", `[]`, false},
		{"null", `null`, false},
		{"escaped text", string(Metadata{Description: `<a & "b">` + "\n"}.JSON()), false},
		{"escaped key", `{"kin\u0064":"stay"}`, false},
		{"invalid UTF-8", "{\"description\":\"a\xffb\"}", false},
		{"control character", "{\"description\":\"a\tb\"}", false},
		{"unknown key", `{"kind":"stay","other":1}`, false},
		{"unknown key null", `{"breakdown":[{"rule":"r"}],"Breakdown":null}`, false},
		{"key in another case", `{"KIND":"stay"}`, false},
		{"repeated key", `{"kind":"stay","kind":"expiry"}`, false},
		{"repeated breakdown", `{"breakdown":[{"rule":"a"}],"breakdown":[null]}`, false},
		{"fraction", `{"nights":1.0}`, false},
		{"exponent", `{"nights":1e2}`, false},
		{"leading zero", `{"nights":01}`, false},
		{"out of range", `{"qualifying_points":9223372036854775808}`, false},
		{"string for number", `{"nights":"2"}`, false},
		{"number for string", `{"kind":2,"member_number":"M1"}`, false},
		{"bool", `{"kind":true}`, false},
		{"trailing data", `{"kind":"stay"} x`, false},
		{"two objects", `{"kind":"stay"}{}`, false},
		{"unterminated", `{"kind":"stay"`, false},
		{"trailing comma", `{"kind":"stay",}`, false},
		{"breakdown not an array", `{"breakdown":{}}`, false},
		{"line with unknown key", `{"breakdown":[{"rule":"r","x":1}]}`, false},
		{"long breakdown", `{"breakdown":[` + strings.Repeat(`{"points":1},`, maxFastLines) + `{"points":1}]}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var want Metadata
			_ = json.Unmarshal([]byte(c.raw), &want)
			if got := Decode(json.RawMessage(c.raw)); !reflect.DeepEqual(got, want) {
				t.Errorf("Decode(%s)\n = %+v\nwant %+v", c.raw, got, want)
			}
			if _, fast := decodeFast([]byte(c.raw)); fast != c.fast {
				t.Errorf("read without encoding/json: %v, want %v", fast, c.fast)
			}
		})
	}
}

// FuzzDecode: whatever decodeFast reads, encoding/json reads the same,
// without error.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(written.JSON()))
	f.Add(sortedKeys(f, written.JSON()))
	f.Add(spaced(f, written.JSON()))
	f.Add([]byte(`{"kind":null,"nights":-0,"breakdown":[null,{"rule":null,"points":-1}],"Kind":"x"}`))
	f.Add([]byte(`{"breakdown":[],"qualifying_points":9223372036854775807}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, ok := decodeFast(raw)
		if !ok {
			return
		}
		var want Metadata
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatalf("decodeFast read %q, encoding/json refuses it: %v", raw, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeFast(%q)\n = %+v\nwant %+v", raw, got, want)
		}
	})
}
