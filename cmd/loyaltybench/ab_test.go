package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// An A/B comparison reports the median of its pairs' ratios: the middle
// one, or the mean of the middle two.
func TestTheMedianOfPairsIsTheMiddleRatio(t *testing.T) {
	for _, tc := range []struct {
		ratios []float64
		want   float64
	}{
		{[]float64{0.9}, 0.9},
		{[]float64{1.1, 0.8, 0.95}, 0.95},
		{[]float64{1.2, 0.8, 1.0, 0.9}, 0.95},
	} {
		if got := medianOf(tc.ratios); got != tc.want {
			t.Errorf("medianOf(%v) = %v, want %v", tc.ratios, got, tc.want)
		}
	}
}

// binaries-ab refuses, before it starts anything, a comparison it cannot
// run: no binary on one side, pairs or modes out of range.
func TestBinariesABRefusesAnIncompleteComparison(t *testing.T) {
	for _, args := range [][]string{
		{"-b", "bin/loyaltyd"},
		{"-a", "bin/loyaltyd"},
		{"-a", "x", "-b", "y", "-pairs", "0"},
		{"-a", "x", "-b", "y", "-pairs", "11"},
		{"-a", "x", "-b", "y", "-modes", "sideways"},
		{"-a", "x", "-b", "y", "-webhook-batch", "501"},
	} {
		var stdout, stderr bytes.Buffer
		if code := binariesABCommand(context.Background(), args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "binaries-ab") {
			t.Errorf("binaries-ab %q: exit %d, stderr %q; want 2 and the flags' rule", args, code, stderr.String())
		}
	}
}
