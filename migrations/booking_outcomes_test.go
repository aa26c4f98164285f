package migrations_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// TestBookingOutcomesAreFilledFromTheLedger runs migrations 18 and 19 over
// books written before bookings had an identity: each booking's oldest
// unreversed outcome and late check-out take it; a double recording keeps
// the first; a reversed outcome leaves its booking free.
func TestBookingOutcomesAreFilledFromTheLedger(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		ctx := context.Background()
		clock := testclock.Ticking(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), time.Second)
		l := ledger.New(db, ledger.Options{Clock: clock.Now})
		const source, member = "programme:stays", "member:1000000001:points"
		if err := l.CreateAccounts(ctx, []ledger.Account{
			{Code: source, NormalSide: ledger.Debit, AllowNegative: true, Shards: 1},
			{Code: member, NormalSide: ledger.Credit, AllowNegative: true, Shards: 1},
		}); err != nil {
			t.Fatal(err)
		}
		post := func(key, kind, stayID string, points int64) ledger.Transaction {
			t.Helper()
			metadata, _ := json.Marshal(map[string]string{"kind": kind, "member_number": "1000000001", "property_id": "H1", "stay_id": stayID})
			txn, err := l.Post(ctx, ledger.PostRequest{CallerID: "desk", IdempotencyKey: key, Kind: ledger.KindEarn, EffectiveAt: clock.Now(),
				Postings: []ledger.Posting{{Account: source, Amount: -points}, {Account: member, Amount: points}}, Metadata: metadata})
			if err != nil {
				t.Fatal(err)
			}
			return txn
		}
		stay := post("stay", "stay", "S1", 500)
		post("stay-resent", "stay", "S1", 500) // the double recording
		late := post("late", "late_checkout", "S1", -500)
		noShow := post("no-show", "no_show", "S2", -300)
		if _, err := l.Reverse(ctx, ledger.ReverseRequest{CallerID: "desk", IdempotencyKey: "reverse", TransactionID: noShow.ID}); err != nil {
			t.Fatal(err)
		}
		award := post("award", "partner_stay", "S3", 200)
		post("redeem", "redemption", "S4", -100) // not an outcome

		migrateDownAndUp(t, db, 17, 19)

		got := map[string]string{}
		rows, err := db.Pool.Query(ctx, `SELECT stay_id || '/' || slot || '/' || outcome, transaction_id::TEXT FROM booking_outcomes`)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			got[k] = v
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"S1/outcome/stayed":              stay.ID.String(),
			"S1/late_checkout/late_checkout": late.ID.String(),
			"S3/outcome/stayed":              award.ID.String(),
		}
		if len(got) != len(want) {
			t.Errorf("booking outcomes %v, want %v", got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: transaction %q, want %s", k, got[k], v)
			}
		}
		// Run again (a re-applied migration): nothing doubles.
		migrateDownAndUp(t, db, 18, 19)
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM booking_outcomes`).Scan(&n); err != nil || n != len(want) {
			t.Errorf("after the backfill ran again: %d outcomes (%v), want %d", n, err, len(want))
		}
	})
}
