package ledger_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/ledger"
)

const breakage = "programme:breakage"

func (f *fixture) earnExpiring(t *testing.T, account string, points int64, expiresAt time.Time) ledger.Transaction {
	t.Helper()
	req := earnRequest(f.nextKey(), account, points)
	req.Lots = ledger.LotPolicy{ExpiresAt: expiresAt}
	txn, err := f.ledger.Post(f.ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return txn
}

func (f *fixture) lots(t *testing.T, account string) []ledger.Lot {
	t.Helper()
	lots, err := f.ledger.Lots(f.ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	return lots
}

func openPoints(lots []ledger.Lot) map[uuid.UUID]int64 {
	out := map[uuid.UUID]int64{}
	for _, l := range lots {
		out[l.ID] = l.Open
	}
	return out
}

func TestExpiryTakesExactlyTheLotsDue(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db, 2)
		if err := f.ledger.CreateAccount(f.ctx, ledger.Account{Code: breakage, NormalSide: ledger.Credit, AllowNegative: true, Shards: 16}); err != nil {
			t.Fatal(err)
		}
		boundary := time.Date(2028, 3, 14, 16, 0, 0, 0, time.UTC) // 00:00 on 15 March in Shanghai
		early := f.earnExpiring(t, member(1), 300, boundary)
		late := f.earnExpiring(t, member(1), 500, boundary.AddDate(0, 1, 0))
		// A redemption draws the lot nearest expiry first: 100 of the early lot.
		if _, err := f.ledger.Post(f.ctx, redeemRequest(f.nextKey(), member(1), 100)); err != nil {
			t.Fatal(err)
		}
		if got := openPoints(f.lots(t, member(1))); got[early.ID] != 200 || got[late.ID] != 500 {
			t.Fatalf("open lots after the redemption: %v", got)
		}

		due, err := f.ledger.DueAccounts(f.ctx, "", boundary, 100)
		if err != nil || len(due) != 1 || due[0] != member(1) {
			t.Fatalf("due accounts at the boundary: %v, %v; want only %s", due, err, member(1))
		}
		expire := func(key string, asOf time.Time) (ledger.Transaction, error) {
			return f.ledger.Expire(f.ctx, ledger.ExpireRequest{CallerID: "expiry-job", IdempotencyKey: key,
				Account: member(1), Destination: breakage, AsOf: asOf})
		}
		if _, err := expire("one-microsecond-early", boundary.Add(-time.Microsecond)); !errors.Is(err, ledger.ErrNothingDue) {
			t.Fatalf("a microsecond before the boundary: %v, want ErrNothingDue", err)
		}
		txn, err := expire("at-the-boundary", boundary)
		if err != nil {
			t.Fatal(err)
		}
		if txn.Kind != ledger.KindExpiry || len(txn.Lots) != 1 || txn.Lots[0].Lot != early.ID || txn.Lots[0].Points != -200 {
			t.Fatalf("expiry %+v: want the 200 open points of lot %s", txn, early.ID)
		}
		if b := f.balance(t, member(1)); b.Posted != 500 {
			t.Fatalf("balance after expiry %d, want 500", b.Posted)
		}
		if b := f.balance(t, breakage); b.Posted != 200 {
			t.Fatalf("breakage %d, want 200", b.Posted)
		}
		again, err := expire("at-the-boundary", boundary)
		if err != nil || again.ID != txn.ID {
			t.Fatalf("retry: %v %v, want the first expiry %s", again.ID, err, txn.ID)
		}
		read, err := f.ledger.Transaction(f.ctx, txn.ID)
		if err != nil || len(read.Lots) != 1 || read.Lots[0] != txn.Lots[0] {
			t.Fatalf("stored lot moves %+v, %v; want %+v", read.Lots, err, txn.Lots)
		}
		if _, err := expire("nothing-left", boundary.AddDate(0, 0, 1)); !errors.Is(err, ledger.ErrNothingDue) {
			t.Fatalf("expiring again: %v, want ErrNothingDue", err)
		}
		f.mustVerify(t)
	})
}

func TestReversalGivesBackTheLotsItsOriginalDrew(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db, 1)
		soon := f.earnExpiring(t, member(1), 100, start.AddDate(0, 6, 0))
		later := f.earnExpiring(t, member(1), 100, start.AddDate(1, 0, 0))
		redemption, err := f.ledger.Post(f.ctx, redeemRequest(f.nextKey(), member(1), 150))
		if err != nil {
			t.Fatal(err)
		}
		if got := openPoints(f.lots(t, member(1))); len(got) != 1 || got[later.ID] != 50 {
			t.Fatalf("open lots after redeeming 150: %v", got)
		}
		reversal, err := f.ledger.Reverse(f.ctx, ledger.ReverseRequest{CallerID: caller, IdempotencyKey: f.nextKey(),
			TransactionID: redemption.ID, Lots: ledger.LotPolicy{ExpiresAt: lotExpiry}})
		if err != nil {
			t.Fatal(err)
		}
		lots := f.lots(t, member(1))
		if got := openPoints(lots); len(got) != 2 || got[soon.ID] != 100 || got[later.ID] != 100 {
			t.Fatalf("open lots after the reversal: %v; want both lots whole again", got)
		}
		if !lots[0].ExpiresAt.Equal(start.AddDate(0, 6, 0)) {
			t.Fatalf("restored lot expires %s, want its original expiry", lots[0].ExpiresAt)
		}
		if len(reversal.Lots) != 2 {
			t.Fatalf("reversal lot moves %+v", reversal.Lots)
		}
		// Reversing a stay removes the lot it opened.
		stay := f.earnExpiring(t, member(1), 40, start.AddDate(0, 1, 0))
		if _, err := f.ledger.Reverse(f.ctx, ledger.ReverseRequest{CallerID: caller, IdempotencyKey: f.nextKey(),
			TransactionID: stay.ID}); err != nil {
			t.Fatal(err)
		}
		if got := openPoints(f.lots(t, member(1))); len(got) != 2 || got[stay.ID] != 0 {
			t.Fatalf("open lots after reversing the stay: %v", got)
		}
		f.mustVerify(t)
	})
}

func TestCreditToALotAccountNeedsAnExpiry(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	req := earnRequest(f.nextKey(), member(1), 10)
	req.Lots = ledger.LotPolicy{}
	var fe *ledger.FieldError
	if _, err := f.ledger.Post(f.ctx, req); !errors.As(err, &fe) || fe.Field != "lots.expires_at" {
		t.Fatalf("got %v, want a field error on lots.expires_at", err)
	}
	if n := f.transactionCount(t); n != 0 {
		t.Fatalf("%d transactions written", n)
	}
}

// An expiry bounded to a day of the books is recorded only while the
// ledger's clock is in that day, (RecordAfter, RecordBy]: finance counts a
// transaction at recorded_at, and this is how an expiry lands on the day
// its as-of names however long the job runs.
func TestAnExpiryIsRecordedOnlyInItsBookingDay(t *testing.T) {
	dbtest.ForEachEngine(t, func(t *testing.T, db *database.DB) {
		f := newFixture(t, db, 1)
		if err := f.ledger.CreateAccount(f.ctx, ledger.Account{Code: breakage, NormalSide: ledger.Credit, AllowNegative: true, Shards: 16}); err != nil {
			t.Fatal(err)
		}
		dayStart := start.Truncate(24*time.Hour).AddDate(0, 0, 30)
		dayEnd := dayStart.AddDate(0, 0, 1)
		f.earnExpiring(t, member(1), 300, dayStart)
		expire := func(key string) (ledger.Transaction, error) {
			return f.ledger.Expire(f.ctx, ledger.ExpireRequest{CallerID: "expiry-job", IdempotencyKey: key,
				Account: member(1), Destination: breakage, AsOf: dayStart, RecordAfter: dayStart, RecordBy: dayEnd})
		}
		for _, tc := range []struct {
			rule string
			now  time.Time
		}{
			{"not at the day's first instant, which closes the day before", dayStart},
			{"not a microsecond after the day's end", dayEnd.Add(time.Microsecond)},
			{"not days later", dayEnd.AddDate(0, 0, 3)},
		} {
			t.Run(tc.rule, func(t *testing.T) {
				f.clock.Set(tc.now)
				if _, err := expire("expiry-" + tc.now.Format(time.RFC3339Nano)); !errors.Is(err, ledger.ErrOutsideBookingDay) {
					t.Fatalf("expiry at %s: %v, want ErrOutsideBookingDay", tc.now, err)
				}
				if b := f.balance(t, breakage); b.Posted != 0 {
					t.Fatalf("breakage %d after a refused expiry, want 0", b.Posted)
				}
			})
		}
		f.clock.Set(dayEnd)
		txn, err := expire("at-the-day's-end")
		if err != nil {
			t.Fatalf("at the day's last instant: %v", err)
		}
		if !txn.RecordedAt.Equal(dayEnd) || !txn.EffectiveAt.Equal(dayStart) {
			t.Fatalf("recorded %s effective %s, want %s and %s", txn.RecordedAt, txn.EffectiveAt, dayEnd, dayStart)
		}
		f.mustVerify(t)
	})
}
