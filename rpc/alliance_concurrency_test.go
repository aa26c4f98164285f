package rpc_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// TestPartnerAwardsConcurrently: many writers at one busy partner at once.
// Its accounts are sharded, so they do not queue on one row: every award
// commits (a client retries ABORTED with the same key, as documented), and
// the settlement and the ledger agree on the points.
func TestPartnerAwardsConcurrently(t *testing.T) {
	w := newAllianceWorld(t)
	const writers, each = 8, 10
	numbers := make([]string, writers)
	for i := range numbers {
		numbers[i] = w.enrollNamed(t, fmt.Sprintf("enrol-c%d", i), "Chen Jie")
	}
	alpha := w.alliance(w.alphaKey)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				key := fmt.Sprintf("c-%d-%d", i, j)
				for attempt := 0; ; attempt++ {
					_, err := alpha.AwardStay(w.ctx, award(key, numbers[i], "A-1", key, "2026-11-10", "100.00"))
					if connect.CodeOf(err) == connect.CodeAborted && attempt < 5 {
						continue
					}
					if err != nil {
						errs <- err
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d awards by %d concurrent writers at one partner in %s", writers*each, writers, time.Since(start))
	s := w.settlement(t, w.alphaKey)
	if want := int64(writers * each * 100); s.GetPointsIssued() != want || s.GetOwedToProgramme().GetAmount() != "68.00" {
		t.Errorf("settlement: %d points, %s; want %d, 68.00", s.GetPointsIssued(), s.GetOwedToProgramme().GetAmount(), want)
	}
	b, err := w.ledger.Balance(w.ctx, "partner:ALPHA:issued")
	if err != nil || b.Posted != writers*each*100 {
		t.Errorf("partner:ALPHA:issued = %d, %v", b.Posted, err)
	}
	w.verify(t)
}
