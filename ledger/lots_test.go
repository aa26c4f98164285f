package ledger

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

// The lot rules, one table row per rule of the domain brief's expiry
// section, played on a member account.
func TestLotRules(t *testing.T) {
	day := func(d int) time.Time { return time.Date(2028, 1, d, 16, 0, 0, 0, time.UTC) }
	id := func(n int) uuid.UUID { return uuid.UUID{byte(n)} }
	lot := func(n int, expires time.Time, open int64) Lot { return Lot{ID: id(n), ExpiresAt: expires, Open: open} }
	move := func(n int, points int64, expires time.Time) LotMove {
		return LotMove{Account: "member:1:points", Lot: id(n), Points: points, ExpiresAt: expires}
	}
	const txn = 9
	tests := []struct {
		name   string
		lots   []Lot
		before int64
		move   int64
		policy LotPolicy
		// effectiveAt is the transaction's (zero: before every lot's
		// expiry).
		effectiveAt time.Time
		reverses    []LotMove
		want        []Lot
		moves       []LotMove
	}{
		{
			name: "earning opens a lot with the policy's expiry",
			move: 500, policy: LotPolicy{ExpiresAt: day(20)},
			want:  []Lot{lot(txn, day(20), 500)},
			moves: []LotMove{move(txn, 500, day(20))},
		},
		{
			name: "lots are kept nearest expiry first whatever order they were earned in",
			lots: []Lot{lot(1, day(10), 100)}, before: 100, move: 50, policy: LotPolicy{ExpiresAt: day(5)},
			want:  []Lot{lot(txn, day(5), 50), lot(1, day(10), 100)},
			moves: []LotMove{move(txn, 50, day(5))},
		},
		{
			name:   "a redemption draws the lot nearest expiry first, across several lots",
			lots:   []Lot{lot(1, day(3), 100), lot(2, day(5), 200), lot(3, day(9), 300)},
			before: 600, move: -250,
			want:  []Lot{lot(2, day(5), 50), lot(3, day(9), 300)},
			moves: []LotMove{move(1, -100, day(3)), move(2, -150, day(5))},
		},
		{
			name:   "a partial draw leaves the rest of the lot open with its expiry",
			lots:   []Lot{lot(1, day(3), 100)},
			before: 100, move: -30,
			want:  []Lot{lot(1, day(3), 70)},
			moves: []LotMove{move(1, -30, day(3))},
		},
		{
			name:   "lots expiring on the same day are drawn in the order they were earned",
			lots:   []Lot{lot(1, day(3), 100), lot(2, day(3), 100)},
			before: 200, move: -150,
			want:  []Lot{lot(2, day(3), 50)},
			moves: []LotMove{move(1, -100, day(3)), move(2, -50, day(3))},
		},
		{
			name:   "a penalty beyond the lots leaves the member in debt with no open lot",
			lots:   []Lot{lot(1, day(3), 100)},
			before: 100, move: -300,
			want:  nil,
			moves: []LotMove{move(1, -100, day(3))},
		},
		{
			name:   "earning repays a debt before it forms a lot",
			before: -200, move: 500, policy: LotPolicy{ExpiresAt: day(20)},
			want:  []Lot{lot(txn, day(20), 300)},
			moves: []LotMove{move(txn, 300, day(20))},
		},
		{
			name:   "earning less than the debt forms no lot",
			before: -200, move: 150, policy: LotPolicy{ExpiresAt: day(20)},
			want: nil, moves: nil,
		},
		{
			name:   "reversing a redemption gives back the lots it drew, with their original expiry",
			lots:   []Lot{lot(3, day(9), 300)},
			before: 300, move: 250, policy: LotPolicy{ExpiresAt: day(28)},
			reverses: []LotMove{move(1, -100, day(3)), move(2, -150, day(5))},
			want:     []Lot{lot(1, day(3), 100), lot(2, day(5), 150), lot(3, day(9), 300)},
			moves:    []LotMove{move(2, 150, day(5)), move(1, 100, day(3))},
		},
		{
			name:   "reversing a redemption while in debt repays the debt, then gives back the latest-expiring lots",
			before: -100, move: 250, policy: LotPolicy{ExpiresAt: day(28)},
			reverses: []LotMove{move(1, -100, day(3)), move(2, -150, day(5))},
			want:     []Lot{lot(2, day(5), 150)},
			moves:    []LotMove{move(2, 150, day(5))},
		},
		{
			name:   "a restored lot that is still partly open is topped up, not duplicated",
			lots:   []Lot{lot(2, day(5), 50)},
			before: 50, move: 150, policy: LotPolicy{ExpiresAt: day(28)},
			reverses: []LotMove{move(2, -150, day(5))},
			want:     []Lot{lot(2, day(5), 200)},
			moves:    []LotMove{move(2, 150, day(5))},
		},
		{
			name:   "reversing a stay removes the lot it created",
			lots:   []Lot{lot(1, day(3), 100), lot(2, day(9), 400)},
			before: 500, move: -400,
			reverses: []LotMove{move(2, 400, day(9))},
			want:     []Lot{lot(1, day(3), 100)},
			moves:    []LotMove{move(2, -400, day(9))},
		},
		{
			name:   "reversing a stay whose points were partly spent takes the rest nearest expiry first",
			lots:   []Lot{lot(1, day(3), 100), lot(2, day(9), 150)},
			before: 250, move: -400,
			reverses: []LotMove{move(2, 400, day(9))},
			want:     nil,
			moves:    []LotMove{move(2, -150, day(9)), move(1, -100, day(3))},
		},
		{
			name:   "activity extends every open lot to the inactivity expiry",
			lots:   []Lot{lot(1, day(3), 100), lot(2, day(9), 100)},
			before: 200, move: -50, policy: LotPolicy{ExtendTo: day(20)},
			want:  []Lot{lot(1, day(20), 50), lot(2, day(20), 100)},
			moves: []LotMove{move(1, -50, day(3))},
		},
		{
			name:   "activity does not rescue a lot already due at its effective time",
			lots:   []Lot{lot(1, day(3), 100), lot(2, day(9), 100)},
			before: 200, move: -30, policy: LotPolicy{ExtendTo: day(20)}, effectiveAt: day(5),
			want:  []Lot{lot(1, day(3), 70), lot(2, day(20), 100)},
			moves: []LotMove{move(1, -30, day(3))},
		},
		{
			name:   "a lot due the instant of the activity is not rescued either",
			lots:   []Lot{lot(1, day(3), 100), lot(2, day(9), 100)},
			before: 200, move: -30, policy: LotPolicy{ExtendTo: day(20)}, effectiveAt: day(3),
			want:  []Lot{lot(1, day(3), 70), lot(2, day(20), 100)},
			moves: []LotMove{move(1, -30, day(3))},
		},
		{
			// Activity recorded late: a stay imported after a later one.
			name:   "an extension never shortens a lot, and a late activity's lot expires with the latest activity",
			lots:   []Lot{lot(1, day(25), 100)},
			before: 100, move: 10, policy: LotPolicy{ExpiresAt: day(20), ExtendTo: day(20)},
			want:  []Lot{lot(1, day(25), 100), lot(txn, day(25), 10)},
			moves: []LotMove{move(txn, 10, day(25))},
		},
		{
			name:   "a lot due at a late activity's time does not lend it its expiry",
			lots:   []Lot{lot(1, day(3), 100)},
			before: 100, move: 10, policy: LotPolicy{ExpiresAt: day(20), ExtendTo: day(20)}, effectiveAt: day(5),
			want:  []Lot{lot(1, day(3), 100), lot(txn, day(20), 10)},
			moves: []LotMove{move(txn, 10, day(20))},
		},
		{
			name:   "under the lot-age rule a lot keeps its own expiry",
			lots:   []Lot{lot(1, day(25), 100)},
			before: 100, move: 10, policy: LotPolicy{ExpiresAt: day(20)},
			want:  []Lot{lot(txn, day(20), 10), lot(1, day(25), 100)},
			moves: []LotMove{move(txn, 10, day(20))},
		},
		{
			name:   "lots that never expire are drawn last",
			lots:   []Lot{lot(1, time.Time{}, 100), lot(2, day(9), 100)},
			before: 200, move: -150,
			want:  []Lot{lot(1, time.Time{}, 50)},
			moves: []LotMove{move(2, -100, day(9)), move(1, -50, time.Time{})},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lotsBefore := slices.Clone(tc.lots)
			got, moves, err := playLots(tc.lots, lotPlay{account: "member:1:points", txnID: id(txn), effectiveAt: tc.effectiveAt,
				before: tc.before, move: tc.move, policy: tc.policy, reverses: tc.reverses})
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("lots:\n got %v\nwant %v", got, tc.want)
			}
			if fmt.Sprint(moves) != fmt.Sprint(tc.moves) {
				t.Errorf("moves:\n got %v\nwant %v", moves, tc.moves)
			}
			if !slices.Equal(tc.lots, lotsBefore) {
				t.Errorf("playLots changed its input lots")
			}
		})
	}
}

func TestLotBookRefusesToDisagreeWithTheBalance(t *testing.T) {
	lots := []Lot{{ID: uuid.New(), ExpiresAt: time.Date(2028, 1, 1, 16, 0, 0, 0, time.UTC), Open: 100}}
	if _, _, err := playLots(lots, lotPlay{account: "m", before: 150, move: -10}); err == nil {
		t.Fatal("lots of 100 against a balance of 150 were accepted")
	}
	if _, _, err := playLots(nil, lotPlay{account: "m", before: 0, move: 10}); err == nil {
		t.Fatal("a lot without an expiry was opened")
	}
}

func TestOpenLotsAreCapped(t *testing.T) {
	expires := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var lots []Lot
	var balance int64
	for i := range MaxOpenLots + 5 {
		var err error
		lots, _, err = playLots(lots, lotPlay{account: "m", txnID: uuid.New(), before: balance, move: 1,
			policy: LotPolicy{ExpiresAt: expires.AddDate(0, 0, i)}})
		if err != nil {
			t.Fatal(err)
		}
		balance++
	}
	if len(lots) != MaxOpenLots {
		t.Fatalf("%d open lots, want the cap %d", len(lots), MaxOpenLots)
	}
	last := lots[len(lots)-1]
	if last.Open != 6 || !last.ExpiresAt.Equal(expires.AddDate(0, 0, MaxOpenLots+4)) {
		t.Fatalf("last lot %+v: the points past the cap should join it, with the latest expiry", last)
	}
}

func TestDueLots(t *testing.T) {
	boundary := time.Date(2028, 3, 15, 16, 0, 0, 0, time.UTC)
	lots := []Lot{{ID: uuid.New(), ExpiresAt: boundary, Open: 100}, {ID: uuid.New(), ExpiresAt: boundary.Add(time.Second), Open: 50},
		{ID: uuid.New(), Open: 7}}
	for _, tc := range []struct {
		asOf time.Time
		want int64
	}{
		{boundary.Add(-time.Microsecond), 0},
		{boundary, 100},
		{boundary.Add(time.Second), 150},
		{boundary.AddDate(100, 0, 0), 150}, // never-expiring lots never fall due
	} {
		if got := dueLots(lots, tc.asOf); got != tc.want {
			t.Errorf("due at %s: %d, want %d", tc.asOf, got, tc.want)
		}
	}
}
