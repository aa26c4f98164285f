package members_test

import (
	"sync"
	"testing"

	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

// Enrolment is idempotent under concurrency: requests racing with one key
// enrol one member, and every one of them answers with that member.
func TestEnrolmentsRacingWithOneKeyEnrolOneMember(t *testing.T) {
	f := newStoreFixture(t)
	ctx, db, store := f.ctx, f.db, f.store
	const racers = 8
	numbers := make([]string, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			m, err := store.Enroll(ctx, "test", "enrol-once", members.Enrollment{FullName: "M", Phone: "+86 1", Channel: programme.ChannelApp})
			if err != nil {
				t.Error(err)
				return
			}
			numbers[i] = m.Number
		})
	}
	wg.Wait()
	for i, n := range numbers {
		if n != numbers[0] {
			t.Fatalf("racer %d enrolled %s, racer 0 %s", i, n, numbers[0])
		}
	}
	var memberRows, accountRows int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM members), (SELECT count(*) FROM accounts WHERE code LIKE 'member:%')`).
		Scan(&memberRows, &accountRows); err != nil {
		t.Fatal(err)
	}
	if memberRows != 1 || accountRows != 1 {
		t.Fatalf("%d members and %d member accounts stored, want 1 and 1", memberRows, accountRows)
	}
	if _, err := store.Get(ctx, numbers[0]); err != nil {
		t.Fatal(err)
	}
	if found, err := f.ledger.Verify(ctx); err != nil || len(found) > 0 {
		t.Fatalf("verify: %v %v", found, err)
	}
}
