package events

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Running the sequencer in a process.
const (
	// DefaultSequencerIdle is RunSequencer's wait when nothing moved and
	// it was given none.
	DefaultSequencerIdle = 200 * time.Millisecond
	// runBatch is the outbox rows one step of RunSequencer moves.
	runBatch = 1000
	// maxRunBackoff bounds RunSequencer's wait after failed steps.
	maxRunBackoff = 30 * time.Second
)

// RunSequencer steps s until ctx ends, then returns nil. It steps again at
// once while steps move full batches, and otherwise waits idle (0:
// DefaultSequencerIdle): the outbox is empty or nearly (a step per write
// would cost a commit per write), or another process holds the sequencer
// (idle should stay well under SequencerLease, so that the holder keeps
// it). A failed step is logged and tried again after a
// backoff that doubles from 100 ms to 30 s, with jitter.
func RunSequencer(ctx context.Context, s *Sequencer, idle time.Duration) error {
	if idle <= 0 {
		idle = DefaultSequencerIdle
	}
	failures := 0
	for {
		moved, err := s.Step(ctx, runBatch)
		if ctx.Err() != nil {
			return nil
		}
		var wait time.Duration
		switch {
		case err != nil:
			failures++
			ceiling := min(100*time.Millisecond<<min(failures-1, 9), maxRunBackoff)
			wait = ceiling/2 + rand.N(ceiling/2+1)
			slog.Warn("events: sequencing failed", "error", err, "failures", failures, "retry_in", wait.String())
		case moved < runBatch:
			failures = 0
			wait = idle
		default:
			failures = 0
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}
