package main

import (
	"encoding/json"
	"testing"
)

func TestTheReceiverCountsABatchAsEncodingJSONWould(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"empty", `[]`, true},
		{"spaced empty", " [ ]\n", true},
		{"one event", `[{"specversion":"1.0","data":{"a":[1,2,{"b":"]}"}]}}]`, true},
		{"three events", `[{"id":"1"},{"id":"2,3"}, {"id":"4\"]"}]`, true},
		{"nested arrays and plain values", `[[1,[2]],"x",3,null]`, true},
		{"an object, not an array", `{"id":"1"}`, false},
		{"not closed", `[{"id":"1"}`, false},
		{"a string not closed", `[{"id":"1}]`, false},
		{"something after", `[{"id":"1"}] [1]`, false},
		{"nothing", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := countBatch([]byte(tc.body))
			if ok != tc.ok {
				t.Fatalf("countBatch(%s) ok = %v, want %v", tc.body, ok, tc.ok)
			}
			if !ok {
				return
			}
			var batch []json.RawMessage
			if err := json.Unmarshal([]byte(tc.body), &batch); err != nil {
				t.Fatal(err)
			}
			if got != len(batch) {
				t.Fatalf("countBatch(%s) = %d, encoding/json reads %d", tc.body, got, len(batch))
			}
		})
	}
}
