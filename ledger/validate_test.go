package ledger

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestDoubleEntryRule(t *testing.T) {
	cases := []struct {
		name     string
		postings []Posting
		field    string // "" means valid
	}{
		{"two postings summing to zero", []Posting{{"a", -5}, {"b", 5}}, ""},
		{"three postings summing to zero", []Posting{{"a", -5}, {"b", 3}, {"c", 2}}, ""},
		{"the same account twice", []Posting{{"a", -5}, {"a", 5}}, ""},
		{"no postings", nil, "postings"},
		{"one posting", []Posting{{"a", 0}}, "postings"},
		{"not summing to zero", []Posting{{"a", -5}, {"b", 4}}, "postings"},
		{"a zero amount", []Posting{{"a", -5}, {"b", 5}, {"c", 0}}, "postings[2].amount"},
		{"an amount beyond the limit", []Posting{{"a", -MaxPostingPoints - 1}, {"b", MaxPostingPoints + 1}}, "postings[0].amount"},
		{"an empty account", []Posting{{"", -5}, {"b", 5}}, "postings[0].account"},
		{"a code with a space", []Posting{{"a", -5}, {"b c", 5}}, "postings[1].account"},
		{"a code too long", []Posting{{"a", -5}, {strings.Repeat("x", MaxAccountCodeLen+1), 5}}, "postings[1].account"},
		{"too many postings", make([]Posting, MaxPostings+1), "postings"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validatePostings(tc.postings)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("valid postings refused: %v", err)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}

func TestWhichKindsMayCreateDebt(t *testing.T) {
	cases := map[Kind]bool{
		KindPenalty: true, KindHoldCapture: true, KindReversal: true,
		KindRedeem: false, KindAdjustment: false, KindExpiry: false, KindEarn: false, KindTransfer: false,
	}
	for kind, want := range cases {
		if got := kind.MayCreateDebt(); got != want {
			t.Errorf("%s.MayCreateDebt() = %v, want %v", kind, got, want)
		}
	}
}

func TestOverdraftGuardAppliesToDebitsOfNoOverdraftAccounts(t *testing.T) {
	memberAcct := Account{Code: "member:1", NormalSide: Credit, Shards: 1}
	programme := Account{Code: "programme:issued:stay", NormalSide: Debit, AllowNegative: true, Shards: 8}
	accounts := map[string]Account{memberAcct.Code: memberAcct, programme.Code: programme}
	shards := map[string]int{memberAcct.Code: 0, programme.Code: 3}
	cases := []struct {
		name    string
		kind    Kind
		member  int64
		guarded bool
	}{
		{"earning credits the member: nothing to guard", KindEarn, 100, false},
		{"redeeming debits the member: guarded", KindRedeem, -100, true},
		{"a penalty may create debt: not guarded", KindPenalty, -100, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			moves := netMoves([]Posting{{memberAcct.Code, tc.member}, {programme.Code, -tc.member}}, accounts, shards)
			if moves[0].account.Code != memberAcct.Code || moves[1].shard != 3 {
				t.Fatalf("moves not in lock order or on the leased shard: %+v", moves)
			}
			guarded := guardedMoves(moves, tc.kind)
			if got := len(guarded) == 1 && guarded[0].account.Code == memberAcct.Code; got != tc.guarded {
				t.Fatalf("guarded %+v, want guarded=%v", guarded, tc.guarded)
			}
		})
	}
}

func TestMetadataIsCanonicalJSONObject(t *testing.T) {
	cases := []struct {
		name, in, want string
		bad            bool
	}{
		{"empty is an empty object", "", "{}", false},
		{"keys are sorted and spaces dropped", `{"b": 1, "a": {"d": 2, "c": 3}}`, `{"a":{"c":3,"d":2},"b":1}`, false},
		{"big integers keep every digit", `{"n": 12345678901234567890}`, `{"n":12345678901234567890}`, false},
		{"an array is refused", `[1]`, "", true},
		{"trailing data is refused", `{} {}`, "", true},
		{"broken JSON is refused", `{"a":`, "", true},
		{"too large is refused", `{"a":"` + strings.Repeat("x", MaxMetadataBytes) + `"}`, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := canonicalMetadata(json.RawMessage(tc.in))
			// A fingerprinted request's metadata is checked the same way,
			// and kept as given.
			kept, keptErr := checkMetadata(json.RawMessage(tc.in))
			if tc.bad {
				if !errors.Is(err, ErrInvalid) || !errors.Is(keptErr, ErrInvalid) {
					t.Fatalf("got %s, %v and %s, %v; want refused", got, err, kept, keptErr)
				}
				return
			}
			if keptErr != nil || (tc.in != "" && string(kept) != tc.in) {
				t.Fatalf("checkMetadata: got %s, %v; want %s kept", kept, keptErr, tc.in)
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestIdempotencyKeyRules(t *testing.T) {
	cases := []struct {
		name, caller, key, field string
	}{
		{"a plain key", "web", "stay-123:night-1", ""},
		{"the longest key", "web", strings.Repeat("k", MaxKeyLength), ""},
		{"a key too long", "web", strings.Repeat("k", MaxKeyLength+1), "idempotency_key"},
		{"a key with a space", "web", "a b", "idempotency_key"},
		{"a key with non-ASCII", "web", "stay-é", "idempotency_key"},
		{"no key", "web", "", "idempotency_key"},
		{"no caller", "", "k", "caller_id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateCaller(tc.caller, tc.key)
			var fe *FieldError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.field != "" && (!errors.As(err, &fe) || fe.Field != tc.field):
				t.Fatalf("got %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}

func TestStatementCursorRoundTrips(t *testing.T) {
	c := cursor{recordedAt: time.Date(2026, 11, 22, 8, 30, 0, 123456000, time.UTC), transactionID: uuid.New(), seq: 3}
	const mine, theirs = "member:1000000001:points", "member:1000000002:points"
	got, err := decodeCursor(mine, encodeCursor(mine, c))
	if err != nil || *got != c {
		t.Fatalf("got %+v, %v; want %+v", got, err, c)
	}
	// A token of one account's statement is no position in another's.
	for _, bad := range []string{"!!", "AAAA", encodeCursor(mine, c) + "A", encodeCursor(theirs, c)} {
		if _, err := decodeCursor(mine, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("token %q: got %v, want refused", bad, err)
		}
	}
}

// Row inserts of a group's effects into the same table become one
// statement, ahead of the other effects, which keep their order.
func TestGroupEffectsMergeRowInserts(t *testing.T) {
	taken := errors.New("taken")
	effects := []Statement{
		{Into: "a (x, y)", Args: []any{1, 2}},
		{SQL: "UPDATE b SET z = $1", Args: []any{9}},
		{Into: "c (x)", Args: []any{5}},
		{Into: "a (x, y)", Args: []any{3, 4}},
		{Into: "a (x, y)", Args: []any{7, 8}, Conflict: taken},
	}
	got := mergeRowInserts(effects)
	want := []Statement{
		{SQL: "INSERT INTO a (x, y) VALUES ($1, $2), ($3, $4)", Args: []any{1, 2, 3, 4}},
		{SQL: "INSERT INTO c (x) VALUES ($1)", Args: []any{5}},
		{SQL: "UPDATE b SET z = $1", Args: []any{9}},
		{Into: "a (x, y)", Args: []any{7, 8}, Conflict: taken},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d statements, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Text() != want[i].Text() || fmt.Sprint(got[i].Args) != fmt.Sprint(want[i].Args) || got[i].Conflict != want[i].Conflict {
			t.Errorf("statement %d: %q %v, want %q %v", i, got[i].Text(), got[i].Args, want[i].Text(), want[i].Args)
		}
	}
}

// An effect that records its transaction gets the transaction's id and
// times as its last parameters, and the request's own statement is left as
// it was (a group may be tried again).
func TestEffectWithTransactionGetsItsParameters(t *testing.T) {
	txn := Transaction{ID: uuid.New(), EffectiveAt: time.Unix(100, 0).UTC(), RecordedAt: time.Unix(200, 0).UTC()}
	args := make([]any, 1, 8) // room to append in place, which must not happen
	args[0] = "P"
	e := Statement{Into: "t (partner, id, effective_at, recorded_at)", Args: args, WithTransaction: true}
	got := e.forTransaction(txn)
	want := fmt.Sprint([]any{"P", txn.ID, txn.EffectiveAt, txn.RecordedAt})
	if fmt.Sprint(got.Args) != want || got.WithTransaction || got.Text() != "INSERT INTO t (partner, id, effective_at, recorded_at) VALUES ($1, $2, $3, $4)" {
		t.Fatalf("got %q %v", got.Text(), got.Args)
	}
	if len(e.Args) != 1 || !e.WithTransaction || fmt.Sprint(args[:cap(args)][1]) != "<nil>" {
		t.Fatalf("the request's statement changed: %+v", e)
	}
	plain := Statement{SQL: "UPDATE x SET y = $1", Args: []any{1}}
	if got := plain.forTransaction(txn); len(got.Args) != 1 {
		t.Fatalf("a statement that did not ask got %v", got.Args)
	}
}
