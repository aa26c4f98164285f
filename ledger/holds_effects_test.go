package ledger_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// TestHoldEffectsCommitWithTheHoldOnly: a hold's and a release's effects
// run in their own transaction when the hold is placed or released, and
// only then: not on a replay, not when refused; an effect that asks for
// them gets the hold's id, the time and the balance after; an effect
// refused by the database refuses the hold.
func TestHoldEffectsCommitWithTheHoldOnly(t *testing.T) {
	f := newFixture(t, dbtest.New(t), 1)
	if _, err := f.db.Pool.Exec(f.ctx, `CREATE TABLE hold_effect_log (note TEXT PRIMARY KEY, hold_id UUID, at TIMESTAMPTZ,
		posted INT8, held INT8, available INT8)`); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ledger.Post(f.ctx, earnRequest("earn", member(1), 100)); err != nil {
		t.Fatal(err)
	}
	// note logs an effect; its hold id, time and balance come from the
	// ledger (WithTransaction).
	note := func(s string) []ledger.Statement {
		return []ledger.Statement{{SQL: `INSERT INTO hold_effect_log VALUES ($1, $2, $3, $4, $5, $6)`, Args: []any{s}, WithTransaction: true}}
	}
	type logged struct {
		holdID                  uuid.UUID
		at                      time.Time
		posted, held, available int64
	}
	read := func() map[string]logged {
		t.Helper()
		rows, err := f.db.Pool.Query(f.ctx, `SELECT note, hold_id, at, posted, held, available FROM hold_effect_log`)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]logged{}
		for rows.Next() {
			var n string
			var l logged
			if err := rows.Scan(&n, &l.holdID, &l.at, &l.posted, &l.held, &l.available); err != nil {
				t.Fatal(err)
			}
			out[n] = l
		}
		return out
	}
	hold := func(key string, points int64, effects []ledger.Statement) (ledger.Hold, error) {
		return f.ledger.PlaceHold(f.ctx, ledger.HoldRequest{CallerID: caller, IdempotencyKey: key, Account: member(1), Points: points,
			ExpiresAt: start.Add(24 * time.Hour), Reference: key, Effects: effects})
	}

	placed, err := hold("hold", 30, note("placed"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold("hold", 30, note("placed-again")); err != nil { // a replay: no effect
		t.Fatal(err)
	}
	var insufficient *ledger.InsufficientPointsError
	if _, err := hold("too-much", 500, note("refused")); !errors.As(err, &insufficient) {
		t.Fatalf("a hold beyond the balance: %v", err)
	}
	conflict := errors.New("the effect's claim is taken")
	taken := []ledger.Statement{{SQL: `INSERT INTO hold_effect_log (note) VALUES ('placed')`, Conflict: conflict}}
	if _, err := hold("conflict", 10, taken); !errors.Is(err, conflict) {
		t.Fatalf("a hold whose effect is refused: %v", err)
	}
	if _, err := f.ledger.HoldByReference(f.ctx, "conflict"); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("the hold whose effect was refused was placed: %v", err)
	}
	tooMany := make([]ledger.Statement, ledger.MaxEffects+1)
	var fe *ledger.FieldError
	if _, err := hold("too-many", 10, tooMany); !errors.As(err, &fe) {
		t.Fatalf("%d effects: %v", len(tooMany), err)
	}

	release := func(key string, effects []ledger.Statement) (ledger.Hold, error) {
		return f.ledger.ReleaseHold(f.ctx, ledger.ReleaseRequest{CallerID: caller, IdempotencyKey: key, HoldID: placed.ID, Effects: effects})
	}
	released, err := release("release", note("released"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := release("release", note("released-again")); err != nil { // a replay
		t.Fatal(err)
	}
	if _, err := release("release-twice", note("refused-release")); !errors.Is(err, ledger.ErrHoldNotActive) {
		t.Fatalf("a second release: %v", err)
	}

	got := read()
	want := map[string]logged{
		"placed":   {placed.ID, placed.CreatedAt, 100, 30, 70},
		"released": {placed.ID, released.ClosedAt, 100, 0, 100},
	}
	if len(got) != len(want) {
		t.Fatalf("effects committed: %v, want %v", got, want)
	}
	for n, w := range want {
		g := got[n]
		if g.holdID != w.holdID || !g.at.Equal(w.at) || g.posted != w.posted || g.held != w.held || g.available != w.available {
			t.Errorf("%s: %s, want %s", n, fmt.Sprint(g), fmt.Sprint(w))
		}
	}
	f.mustVerify(t)
}
