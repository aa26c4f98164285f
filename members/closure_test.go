package members_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
)

// closureFixture is a member with 700 points, 200 of them on hold.
func closureFixture(t *testing.T) (storeFixture, members.Member) {
	t.Helper()
	f := newStoreFixture(t)
	if err := f.ledger.CreateAccounts(f.ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	m := f.enrol(t, "enrol")
	if _, err := f.ledger.Post(f.ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "earn", Kind: ledger.KindEarn,
		EffectiveAt: f.clock.Now(), Metadata: json.RawMessage(`{"description":"goodwill"}`),
		Postings: []ledger.Posting{{Account: m.Account(), Amount: 700}, {Account: programme.AccountIssuedGoodwill, Amount: -700}},
		Lots:     ledger.LotPolicy{ExpiresAt: f.clock.Now().AddDate(2, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.PlaceHold(f.ctx, ledger.HoldRequest{CallerID: "test", IdempotencyKey: "hold", Account: m.Account(), Points: 200,
		ExpiresAt: f.clock.Now().Add(24 * time.Hour), Metadata: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	return f, m
}

// TestAnInterruptedClosureResumesUnderItsKeyAndSettlesOnce: a closure that
// fails after the member was marked closed, the hold released and the
// balance forfeited (here: the erasure meets a history row it cannot
// read) leaves the member closed to every other key; the same key, once
// the cause is gone, finishes the erasure and answers what the first
// steps did, with one settlement transaction.
func TestAnInterruptedClosureResumesUnderItsKeyAndSettlesOnce(t *testing.T) {
	f, m := closureFixture(t)
	broken := uuid.New()
	if _, err := f.db.Pool.Exec(f.ctx, `INSERT INTO member_changes (id, member_number, changed_at, changed_by, changes)
		VALUES ($1, $2, $3, 'test', '[]')`, broken, m.Number, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Close(f.ctx, "admin", "close", m.Number, "member's request"); err == nil {
		t.Fatal("the closure erased a history it cannot read")
	}
	if _, err := f.store.Close(f.ctx, "admin", "close-2", m.Number, "member's request"); !errors.Is(err, members.ErrClosed) {
		t.Fatalf("another key for a member closed half-way: %v, want ErrClosed", err)
	}
	if _, err := f.store.Get(f.ctx, m.Number); !errors.Is(err, members.ErrClosed) {
		t.Fatalf("Get of a member closed half-way: %v, want ErrClosed", err)
	}
	if _, err := f.db.Pool.Exec(f.ctx, `DELETE FROM member_changes WHERE id = $1`, broken); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	c, err := f.store.Close(f.ctx, "admin", "close", m.Number, "member's request")
	if err != nil {
		t.Fatal(err)
	}
	if c.ReleasedPoints != 200 || c.ForfeitedPoints != 700 || c.WrittenOffPoints != 0 || c.TransactionID == uuid.Nil {
		t.Errorf("closure = %+v, want 200 released, 700 forfeited", c)
	}
	var settlements int
	if err := f.db.Pool.QueryRow(f.ctx, `SELECT count(*) FROM transactions WHERE idempotency_key LIKE 'closure:%'`).Scan(&settlements); err != nil {
		t.Fatal(err)
	}
	if settlements != 1 {
		t.Errorf("%d settlement transactions, want 1", settlements)
	}
	p, err := f.store.Profile(f.ctx, m.Number)
	if err != nil || p.FullName != "" || p.Phone != "" || p.ClosedAt.IsZero() {
		t.Errorf("profile after the closure = %+v, %v", p, err)
	}
	h := f.history(t, m.Number, 10)
	if last := h[len(h)-1]; last.Change.Kind != members.ChangeClosed || last.Change.Reason != "member's request" {
		t.Errorf("last history row = %+v, want the closure with its reason", last)
	}
	for _, e := range h {
		for name, v := range e.Change.Fields {
			if v.Before != "" || v.After != "" {
				t.Errorf("history keeps %s = %+v", name, v)
			}
		}
	}
}

// TestAClosureIsRefusedWithoutAReasonOrAMember: the closure's own checks,
// before anything is written.
func TestAClosureIsRefusedWithoutAReasonOrAMember(t *testing.T) {
	f, m := closureFixture(t)
	for _, tc := range []struct {
		name, number, reason string
		field                string // the FieldError's field, or
		want                 error  // the error
	}{
		{name: "no reason", number: m.Number, reason: "  ", field: "reason"},
		{name: "a reason too long", number: m.Number, reason: strings.Repeat("x", members.MaxReasonLength+1), field: "reason"},
		{name: "not a member number", number: "12", reason: "why", field: "member_number"},
		{name: "an unknown member", number: "1000000000", reason: "why", want: members.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.store.Close(f.ctx, "admin", "close-"+strings.ReplaceAll(tc.name, " ", "-"), tc.number, tc.reason)
			var fe *ledger.FieldError
			switch {
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
				t.Errorf("Close = %v, want a FieldError of %s", err, tc.field)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("Close = %v, want %v", err, tc.want)
			}
		})
	}
	if p, err := f.store.Get(f.ctx, m.Number); err != nil || !p.ClosedAt.IsZero() {
		t.Errorf("the member after refused closures: %+v, %v", p, err)
	}
}

// TestAWriteInFlightAtAClosureIsSettledWithItOrRefused: a write that passed
// its member check before the closure reaches the ledger either before the
// settlement, and is forfeited with the rest, or after it, and the ledger
// refuses it (the account is closed in the settlement's transaction);
// never does a closed member keep points.
func TestAWriteInFlightAtAClosureIsSettledWithItOrRefused(t *testing.T) {
	f, m := closureFixture(t)
	// Landed before the settlement: forfeited with the rest.
	if _, err := f.ledger.Post(f.ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "in-flight-1", Kind: ledger.KindEarn,
		EffectiveAt: f.clock.Now(), Metadata: json.RawMessage(`{}`),
		Postings: []ledger.Posting{{Account: m.Account(), Amount: 40}, {Account: programme.AccountIssuedGoodwill, Amount: -40}},
		Lots:     ledger.LotPolicy{ExpiresAt: f.clock.Now().AddDate(2, 0, 0)}}); err != nil {
		t.Fatal(err)
	}
	c, err := f.store.Close(f.ctx, "admin", "close", m.Number, "member's request")
	if err != nil || c.ForfeitedPoints != 740 {
		t.Fatalf("closure = %+v, %v; want 740 forfeited", c, err)
	}
	// Landing after it: refused by the ledger, whatever the caller checked.
	_, err = f.ledger.Post(f.ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "in-flight-2", Kind: ledger.KindEarn,
		EffectiveAt: f.clock.Now(), Metadata: json.RawMessage(`{}`),
		Postings: []ledger.Posting{{Account: m.Account(), Amount: 40}, {Account: programme.AccountIssuedGoodwill, Amount: -40}},
		Lots:     ledger.LotPolicy{ExpiresAt: f.clock.Now().AddDate(2, 0, 0)}})
	if !errors.Is(err, ledger.ErrAccountClosed) {
		t.Fatalf("an earning after the closure: %v, want ErrAccountClosed", err)
	}
	if _, err := f.ledger.PlaceHold(f.ctx, ledger.HoldRequest{CallerID: "test", IdempotencyKey: "in-flight-hold", Account: m.Account(), Points: 1,
		ExpiresAt: f.clock.Now().Add(time.Hour), Metadata: json.RawMessage(`{}`)}); !errors.Is(err, ledger.ErrAccountClosed) {
		t.Fatalf("a hold after the closure: %v, want ErrAccountClosed", err)
	}
	if b, err := f.ledger.Balance(f.ctx, m.Account()); err != nil || b.Posted != 0 || b.Held != 0 {
		t.Fatalf("the closed member's balance %+v, %v; want nothing", b, err)
	}
}
