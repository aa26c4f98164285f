package bookings_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/bookings"
)

// attempts records the rows attempted, in the order each started.
type attempts struct {
	mu      sync.Mutex
	started []int
}

func (a *attempts) add(i int) {
	a.mu.Lock()
	a.started = append(a.started, i)
	a.mu.Unlock()
}

// TestABatchRunsEachMembersAndEachBookingsRowsInOrderAndOthersSideBySide:
// rows of one member, and rows of one booking (even of two members), are
// attempted one after another in the batch's order; rows of unlinked
// members are attempted at once, up to the lanes and never more.
func TestABatchRunsEachMembersAndEachBookingsRowsInOrderAndOthersSideBySide(t *testing.T) {
	var rows []bookings.BatchRow
	for i := range 200 {
		// 100 members, two rows each, 100 rows apart; rows 0 and 1 share a
		// booking, which links members M0 and M1 into one chain.
		rows = append(rows, bookings.BatchRow{MemberNumber: fmt.Sprintf("M%d", i%100), PropertyID: "P", StayID: fmt.Sprintf("S%d", i), IdempotencyKey: fmt.Sprint("k-", i)})
	}
	rows[1].StayID = rows[0].StayID
	const lanes = 8
	var (
		mu               sync.Mutex
		inFlight, most   int
		running          = map[string]bool{} // member -> a row of it is in flight
		overlap          []string
		full             = make(chan struct{})
		fullOnce         sync.Once
		order            attempts
		linkedInParallel bool
	)
	skipped := bookings.RunBatch(context.Background(), rows, lanes, func(_ context.Context, i int) bookings.RowState {
		order.add(i)
		m := rows[i].MemberNumber
		mu.Lock()
		if running[m] {
			overlap = append(overlap, m)
		}
		if (m == "M0" && running["M1"]) || (m == "M1" && running["M0"]) {
			linkedInParallel = true
		}
		running[m] = true
		inFlight++
		most = max(most, inFlight)
		if inFlight == lanes {
			fullOnce.Do(func() { close(full) })
		}
		mu.Unlock()
		// Every row waits until every lane has been busy at once: the
		// batch must get there by itself.
		select {
		case <-full:
		case <-time.After(10 * time.Second):
			t.Errorf("row %d: the lanes never all ran at once", i)
		}
		mu.Lock()
		running[m] = false
		inFlight--
		mu.Unlock()
		return bookings.RowDone
	})
	if len(skipped) != 0 {
		t.Fatalf("skipped %v", skipped)
	}
	if len(overlap) != 0 || linkedInParallel {
		t.Fatalf("rows of one chain ran at once: members %v, M0 with M1 %v", overlap, linkedInParallel)
	}
	if most != lanes {
		t.Fatalf("at most %d rows in flight, want %d", most, lanes)
	}
	if len(order.started) != len(rows) {
		t.Fatalf("%d attempts for %d rows", len(order.started), len(rows))
	}
	seen := map[int]int{} // row -> position of its attempt
	for pos, i := range order.started {
		seen[i] = pos
	}
	for i := range 100 {
		if seen[i] > seen[i+100] {
			t.Errorf("member M%d: row %d attempted after row %d", i, i, i+100)
		}
	}
	if seen[0] > seen[1] || seen[1] > seen[100] || seen[1] > seen[101] {
		t.Errorf("the chain of M0 and M1 (rows 0, 1, 100, 101) out of order: %v %v %v %v", seen[0], seen[1], seen[100], seen[101])
	}
}

// TestARowInDoubtStopsItsChainAndAnUnreachableDatabaseTheBatch: after a row
// that was not recorded for now, the later rows of its member, booking and
// idempotency key are not attempted (a retry keeps their order) while other members' rows
// go on; after a row that found the database unreachable, no row is
// started any more.
func TestARowInDoubtStopsItsChainAndAnUnreachableDatabaseTheBatch(t *testing.T) {
	row := func(member, stay string) bookings.BatchRow {
		return bookings.BatchRow{MemberNumber: member, PropertyID: "P", StayID: stay, IdempotencyKey: member + stay}
	}
	for _, tc := range []struct {
		name    string
		rows    []bookings.BatchRow
		lanes   int
		failing map[int]bookings.RowState
		want    []int // rows attempted
		skipped []bookings.Skipped
	}{
		{
			name: "a row in doubt stops its member's and its booking's later rows",
			// A: 0, 2, 4; B: 1, 3; C: 5 shares row 4's booking.
			rows:    []bookings.BatchRow{row("A", "1"), row("B", "2"), row("A", "3"), row("B", "4"), row("A", "5"), row("C", "5")},
			failing: map[int]bookings.RowState{2: bookings.RowInDoubt},
			want:    []int{0, 1, 2, 3},
			skipped: []bookings.Skipped{{Row: 4, Cause: 2, State: bookings.RowInDoubt}, {Row: 5, Cause: 2, State: bookings.RowInDoubt}},
		},
		{
			name:    "one idempotency key links rows of different members and bookings",
			rows:    []bookings.BatchRow{{MemberNumber: "A", StayID: "1", IdempotencyKey: "k"}, {MemberNumber: "B", StayID: "2", IdempotencyKey: "k"}},
			failing: map[int]bookings.RowState{0: bookings.RowInDoubt},
			want:    []int{0},
			skipped: []bookings.Skipped{{Row: 1, Cause: 0, State: bookings.RowInDoubt}},
		},
		{
			name:    "empty names link nothing",
			rows:    []bookings.BatchRow{{MemberNumber: "A"}, {MemberNumber: "B"}},
			failing: map[int]bookings.RowState{0: bookings.RowInDoubt},
			want:    []int{0, 1},
		},
		{
			name: "an unreachable database stops every row not started",
			// One lane: a chain at a time, in the order of their first
			// rows: 0 and 3 (A), 1 (B), then C and D, not started.
			rows:    []bookings.BatchRow{row("A", "1"), row("B", "2"), row("C", "3"), row("A", "4"), row("D", "5")},
			lanes:   1,
			failing: map[int]bookings.RowState{1: bookings.RowUnreachable},
			want:    []int{0, 1, 3},
			skipped: []bookings.Skipped{{Row: 2, Cause: 1, State: bookings.RowUnreachable}, {Row: 4, Cause: 1, State: bookings.RowUnreachable}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got attempts
			skipped := bookings.RunBatch(context.Background(), tc.rows, tc.lanes, func(_ context.Context, i int) bookings.RowState {
				got.add(i)
				return tc.failing[i]
			})
			slices.Sort(got.started)
			if !slices.Equal(got.started, tc.want) {
				t.Errorf("attempted %v, want %v", got.started, tc.want)
			}
			if !slices.Equal(skipped, tc.skipped) {
				t.Errorf("skipped %+v, want %+v", skipped, tc.skipped)
			}
		})
	}
}

// TestACancelledBatchStartsNoMoreRows: rows not started when the call is
// cancelled are not attempted, and say so (Cause -1).
func TestACancelledBatchStartsNoMoreRows(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rows := []bookings.BatchRow{{MemberNumber: "A", StayID: "1"}, {MemberNumber: "A", StayID: "2"}}
	skipped := bookings.RunBatch(ctx, rows, 0, func(context.Context, int) bookings.RowState {
		cancel()
		return bookings.RowDone
	})
	if want := []bookings.Skipped{{Row: 1, Cause: -1, State: bookings.RowUnreachable}}; !slices.Equal(skipped, want) {
		t.Fatalf("skipped %+v, want %+v", skipped, want)
	}
}
