package finance_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// TestSealsOfEncoding2SurviveTheErasureOfAStringAndNothingElse: a day
// sealed with encoding 2 still verifies after a string of a transaction's
// metadata is replaced by txmeta.Erased of itself (what closing a
// membership does), and breaks at that day when the string is changed
// otherwise or the marker carries another hash. A day sealed with
// encoding 1 (every seal written before issue 23) still verifies while
// untouched, and breaks at an erasure, saying so, unless the day was
// attested first (finance.AttestBeforeErasure, what a closure does): then
// it verifies after the erasure and breaks at any other change. A day that
// had changed before the attestation is not attested.
func TestSealsOfEncoding2SurviveTheErasureOfAStringAndNothingElse(t *testing.T) {
	const said = "goodwill: Wang Fang called twice"
	for _, tc := range []struct {
		name      string
		encoding1 bool
		rewrite   string // the description of the sealed transaction becomes this; "" leaves it
		// attest attests the day before the rewrite; attestAfter, after it.
		attest, attestAfter bool
		wantOK              bool
		wantAttested        int
	}{
		{name: "encoding 2, untouched", wantOK: true},
		{name: "encoding 2, the string erased", rewrite: txmeta.Erased(said), wantOK: true},
		{name: "encoding 2, the string changed", rewrite: "goodwill: someone called twice"},
		{name: "encoding 2, the string erased as another", rewrite: txmeta.Erased("goodwill: someone called twice")},
		{name: "encoding 2, the marker's hash in capitals", rewrite: strings.ToUpper(txmeta.Erased(said))},
		{name: "encoding 1, untouched", encoding1: true, wantOK: true},
		{name: "encoding 1, the string erased", encoding1: true, rewrite: txmeta.Erased(said)},
		{name: "encoding 1, attested, untouched", encoding1: true, attest: true, wantOK: true},
		{name: "encoding 1, attested, the string erased", encoding1: true, attest: true, rewrite: txmeta.Erased(said), wantOK: true, wantAttested: 1},
		{name: "encoding 1, attested, the string changed", encoding1: true, attest: true, rewrite: "goodwill: someone called twice", wantAttested: 1},
		{name: "encoding 1, attested, the string erased as another", encoding1: true, attest: true, rewrite: txmeta.Erased("goodwill: someone called twice"), wantAttested: 1},
		{name: "encoding 1, the string changed, then attested", encoding1: true, attestAfter: true, rewrite: "goodwill: someone called twice"},
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
			attest := func(want int) {
				t.Helper()
				var days []time.Time
				err := f.db.WriteTx(f.ctx, func(tx pgx.Tx) (err error) {
					days, err = finance.AttestBeforeErasure(f.ctx, tx, []uuid.UUID{named.ID}, f.clock.Now())
					return err
				})
				if err != nil || len(days) != want || want == 1 && !days[0].Equal(seals[0].Day) {
					t.Fatalf("attested %v, %v; want %d day(s), %s", days, err, want, seals[0].Day.Format(time.DateOnly))
				}
			}
			if tc.attest {
				attest(map[bool]int{false: 0, true: 1}[tc.encoding1])
			}
			if tc.rewrite != "" {
				if _, err := f.db.Pool.Exec(f.ctx, `UPDATE transactions SET metadata = jsonb_set(metadata, '{description}', to_jsonb($2::TEXT))
					WHERE id = $1`, named.ID, tc.rewrite); err != nil {
					t.Fatal(err)
				}
			}
			if tc.attestAfter {
				attest(0)
			}
			check, err := f.reports.VerifySeals(f.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if check.Checked == 0 || check.OK() != tc.wantOK || check.Attested != tc.wantAttested {
				t.Fatalf("verify: %+v, want OK %v", check, tc.wantOK)
			}
			if !tc.wantOK && !check.FirstBad.Equal(seals[0].Day) {
				t.Errorf("first bad day %s, want %s", check.FirstBad.Format(time.DateOnly), seals[0].Day.Format(time.DateOnly))
			}
			if want := map[bool]string{false: "encoding 1", true: "attested"}[tc.attest]; tc.encoding1 && !tc.wantOK && !strings.Contains(check.Problem, want) {
				t.Errorf("problem %q does not say %q", check.Problem, want)
			}
		})
	}
}

// TestAClosureAttestsTheDaysSealedWithEncoding1ThatItErases: a member's
// name in a goodwill reason, on a day sealed with encoding 1 (as every day
// sealed before issue 23 is). Closing the membership erases the name and
// attests the day first, so the seals still verify; the attestation then
// holds the day to what the erasure left.
func TestAClosureAttestsTheDaysSealedWithEncoding1ThatItErases(t *testing.T) {
	f := newFixture(t, dbtest.New(t))
	store := members.New(f.ledger, f.clock.Now)
	m, err := store.Enroll(f.ctx, "test", "enrol", members.Enrollment{FullName: "Wang Fang", Email: "wang.fang@example.cn", Channel: programme.ChannelWeb})
	if err != nil {
		t.Fatal(err)
	}
	named := f.post(ledger.KindAdjustment, goodwill, programme.MemberAccount(m.Number).Code, 100,
		map[string]string{"description": "goodwill: Wang Fang called twice"})
	f.clock.Advance(24 * time.Hour)
	f.earn(2, issuedStay, 50, "H2")
	f.clock.Advance(24 * time.Hour)
	if p, err := f.reports.SealDays(f.ctx); err != nil || p.Days < 2 {
		t.Fatalf("seal: %+v, %v", p, err)
	}
	if err := f.reports.ResealWithEncoding1(f.ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := store.Close(f.ctx, "test", "close", m.Number, "the member asked"); err != nil {
		t.Fatal(err)
	}
	var description string
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT metadata->>'description' FROM transactions WHERE id = $1`, named.ID).Scan(&description); err != nil {
		t.Fatal(err)
	}
	if description != txmeta.Erased("goodwill: Wang Fang called twice") {
		t.Fatalf("description after the closure %q: not erased", description)
	}
	check, err := f.reports.VerifySeals(f.ctx)
	if err != nil || !check.OK() || check.Attested != 1 {
		t.Fatalf("seals after the closure: %+v, %v; want OK with 1 day attested", check, err)
	}

	if _, err := f.db.Pool.Exec(f.ctx, `UPDATE transactions SET metadata = jsonb_set(metadata, '{description}', to_jsonb('goodwill'::TEXT))
		WHERE id = $1`, named.ID); err != nil {
		t.Fatal(err)
	}
	check, err = f.reports.VerifySeals(f.ctx)
	if err != nil || check.OK() || !strings.Contains(check.Problem, "attested") {
		t.Fatalf("seals after a change of the attested day: %+v, %v; want the day named as changed since attested", check, err)
	}
}
