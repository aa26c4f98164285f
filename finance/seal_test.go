package finance_test

import (
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// TestSealsOfEncoding2SurviveTheErasureOfAStringAndNothingElse: a day
// sealed with encoding 2 still verifies after a string of a transaction's
// metadata is replaced by txmeta.Erased of itself (what closing a
// membership does), and breaks at that day when the string is changed
// otherwise or the marker carries another hash. A day sealed with
// encoding 1 (every seal written before issue 23) still verifies while
// untouched, and breaks at an erasure, saying so.
func TestSealsOfEncoding2SurviveTheErasureOfAStringAndNothingElse(t *testing.T) {
	const said = "goodwill: Wang Fang called twice"
	for _, tc := range []struct {
		name      string
		encoding1 bool
		rewrite   string // the description of the sealed transaction becomes this; "" leaves it
		wantOK    bool
	}{
		{name: "encoding 2, untouched", wantOK: true},
		{name: "encoding 2, the string erased", rewrite: txmeta.Erased(said), wantOK: true},
		{name: "encoding 2, the string changed", rewrite: "goodwill: someone called twice"},
		{name: "encoding 2, the string erased as another", rewrite: txmeta.Erased("goodwill: someone called twice")},
		{name: "encoding 2, the marker's hash in capitals", rewrite: strings.ToUpper(txmeta.Erased(said))},
		{name: "encoding 1, untouched", encoding1: true, wantOK: true},
		{name: "encoding 1, the string erased", encoding1: true, rewrite: txmeta.Erased(said)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, dbtest.New(t))
			named := f.post(ledger.KindEarn, goodwill, member(1), 100, map[string]string{"description": said, "property_id": "H1"})
			f.clock.Advance(24 * time.Hour)
			f.earn(2, issuedStay, 50, "H2")
			f.clock.Advance(24 * time.Hour)
			if p, err := f.reports.SealDays(f.ctx); err != nil || p.Days != 2 {
				t.Fatalf("seal: %+v, %v", p, err)
			}
			if tc.encoding1 {
				if err := f.reports.ResealWithEncoding1(f.ctx); err != nil {
					t.Fatal(err)
				}
			}
			seals, err := f.reports.Seals(f.ctx, time.Time{}, time.Time{}, 10)
			if err != nil || len(seals) != 2 {
				t.Fatalf("seals %+v, %v", seals, err)
			}
			if want := map[bool]int{false: 2, true: 1}[tc.encoding1]; seals[0].Encoding != want || seals[1].Encoding != want {
				t.Fatalf("seal encodings %d, %d; want %d", seals[0].Encoding, seals[1].Encoding, want)
			}
			if tc.rewrite != "" {
				if _, err := f.db.Pool.Exec(f.ctx, `UPDATE transactions SET metadata = jsonb_set(metadata, '{description}', to_jsonb($2::TEXT))
					WHERE id = $1`, named.ID, tc.rewrite); err != nil {
					t.Fatal(err)
				}
			}
			check, err := f.reports.VerifySeals(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if check.Checked == 0 || check.OK() != tc.wantOK {
				t.Fatalf("verify: %+v, want OK %v", check, tc.wantOK)
			}
			if !tc.wantOK && !check.FirstBad.Equal(seals[0].Day) {
				t.Errorf("first bad day %s, want %s", check.FirstBad.Format(time.DateOnly), seals[0].Day.Format(time.DateOnly))
			}
			if tc.encoding1 && !tc.wantOK && !strings.Contains(check.Problem, "encoding 1") {
				t.Errorf("problem %q does not name encoding 1", check.Problem)
			}
		})
	}
}
