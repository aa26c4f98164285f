package rpc

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
)

// TestACompressedRequestStopsInflatingPastTheLargestRequest: a gzip body
// that inflates to 64 MiB is read no further than one byte past the
// largest request taken, and says why it stopped; a body within it inflates
// whole, and a reset reader starts counting again.
func TestACompressedRequestStopsInflatingPastTheLargestRequest(t *testing.T) {
	zipped := func(n int) []byte {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(make([]byte, n)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	g := &boundedGzip{}
	for _, tc := range []struct {
		name   string
		body   []byte
		read   int64
		tooBig bool
	}{
		{"a bomb of 64 MiB", zipped(64 << 20), maxInflatedBytes, true},
		{"the largest request", zipped(MaxBatchRequestBytes), MaxBatchRequestBytes, false},
		{"a small one after a bomb", zipped(1000), 1000, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := g.Reset(bytes.NewReader(tc.body)); err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, g)
			if n != tc.read || errors.Is(err, errInflatedTooLarge) != tc.tooBig || (!tc.tooBig && err != nil) {
				t.Fatalf("read %d bytes, %v; want %d, too big %v", n, err, tc.read, tc.tooBig)
			}
		})
	}
}
