package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Point lots. An account created with TracksLots (a member's points) keeps
// its positive balance as lots: the points one transaction earned, which
// expire together. The lots live in the account's balance row, next to the
// balance they must agree with, and change in the same UPDATE: every writer
// of a member already holds that row's lock, so the lot book costs no extra
// lock, and no read of another table that writers elsewhere insert into
// (which, at SERIALIZABLE on PostgreSQL, would turn into predicate-lock
// conflicts between unrelated members).
//
// The rules, for one transaction's net move on one tracked account:
//   - a credit first repays debt (a balance below zero has no lots); the
//     rest opens a lot, whose id is the transaction's and whose expiry the
//     request's LotPolicy gives (under the inactivity rule, no earlier
//     than the open lots' latest: the last activity's);
//   - a reversal's credit gives back, before opening anything, the lots its
//     original drew, with the expiry they had (latest expiry first, when
//     debt leaves only part of them to give back);
//   - a debit draws lots nearest expiry first (FIFO among equal expiries);
//     what the lots cannot cover is debt. A reversal's debit draws from the
//     lot its original opened before any other;
//   - LotPolicy.ExtendTo pushes every open lot's expiry to at least that
//     time (the programme's inactivity rule: activity extends every lot),
//     except the lots already due at the transaction's effective time:
//     those expired then, in the member's view, whether or not the expiry
//     job has recorded it yet, and later activity does not rescue them.
//
// Each transaction keeps the moves it made (Transaction.Lots), and the
// sum of an account's open lots always equals its balance above zero: the
// ledger refuses to write anything else, and Verify checks it.

// MaxOpenLots bounds an account's open lots. Past it, new points join the
// open lot that expires last, whose expiry becomes the later of the two:
// the member never loses by it.
const MaxOpenLots = 1000

// Lot is points an account earned in one transaction, which expire
// together.
type Lot struct {
	// ID is the transaction that earned the points (for points a reversal
	// gave back beyond the lots it could restore: the reversal).
	ID uuid.UUID `json:"lot"`
	// ExpiresAt is the first instant the points no longer count; zero:
	// never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	// Open is the points of the lot not yet drawn; always > 0.
	Open int64 `json:"open"`
}

// Due reports whether the lot has expired at asOf.
func (l Lot) Due(asOf time.Time) bool { return !l.ExpiresAt.IsZero() && !asOf.Before(l.ExpiresAt) }

// LotMove is one change a transaction made to one lot.
type LotMove struct {
	Account string    `json:"account"`
	Lot     uuid.UUID `json:"lot"`
	// Points is positive when the transaction opened or gave back points
	// in the lot, negative when it drew them.
	Points int64 `json:"points"`
	// ExpiresAt is the lot's expiry at the time of the move; zero: never.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// LotPolicy says how the lots a transaction opens on lot-tracked accounts
// expire. The programme's expiry rule decides it; the ledger applies it.
type LotPolicy struct {
	// ExpiresAt is the expiry of a lot the transaction opens. Required
	// when the transaction credits a lot-tracked account; it must be in
	// the future of the transaction's effective time only by convention.
	ExpiresAt time.Time
	// ExtendTo, when set, is the least expiry of every open lot of the
	// lot-tracked accounts the transaction touches, after it, but for the
	// lots already due at the transaction's effective time.
	ExtendTo time.Time
}

// ErrLotBook: an account's lots no longer agree with its balance. The
// books are damaged; nothing is written.
var ErrLotBook = errors.New("lot book does not agree with the balance")

// lotPlay is one transaction's net move on one lot-tracked account.
type lotPlay struct {
	account string
	txnID   uuid.UUID
	// effectiveAt is the transaction's: lots due by then are not
	// extended.
	effectiveAt time.Time
	before      int64 // balance on the normal side, before
	move        int64 // on the normal side
	policy      LotPolicy
	// reverses are the original's moves on this account, when the
	// transaction is a reversal.
	reverses []LotMove
}

// playLots applies one move to an account's open lots and returns the new lots and the moves made. It never changes lots.
func playLots(lots []Lot, p lotPlay) ([]Lot, []LotMove, error) {
	if err := checkLots(p.account, lots, p.before); err != nil {
		return nil, nil, err
	}
	lots = slices.Clone(lots)
	sortLots(lots)
	var moves []LotMove
	record := func(id uuid.UUID, points int64, expiresAt time.Time) {
		moves = append(moves, LotMove{Account: p.account, Lot: id, Points: points, ExpiresAt: expiresAt})
	}
	switch {
	case p.move > 0:
		rest := p.move
		if p.before < 0 {
			rest -= min(rest, -p.before) // repays debt: no lot
		}
		drawn := drawnLots(p.reverses)
		for _, d := range drawn {
			if rest == 0 {
				break
			}
			n := min(rest, -d.Points)
			lots = addToLot(lots, d.Lot, d.ExpiresAt, n, record)
			rest -= n
		}
		if rest > 0 {
			if p.policy.ExpiresAt.IsZero() {
				return nil, nil, fmt.Errorf("points for %s open a lot, and the request gives it no expiry", p.account)
			}
			lots = addToLot(lots, p.txnID, p.newLotExpiry(lots), rest, record)
		}
	case p.move < 0:
		rest := -p.move
		// A reversal takes back the lot its original opened first.
		for _, opened := range p.reverses {
			if opened.Points <= 0 {
				continue
			}
			if i := slices.IndexFunc(lots, func(l Lot) bool { return l.ID == opened.Lot }); i >= 0 && rest > 0 {
				n := min(rest, lots[i].Open, opened.Points)
				lots[i].Open -= n
				rest -= n
				record(lots[i].ID, -n, lots[i].ExpiresAt)
			}
		}
		for i := range lots {
			if rest == 0 {
				break
			}
			n := min(rest, lots[i].Open)
			if n == 0 {
				continue
			}
			lots[i].Open -= n
			rest -= n
			record(lots[i].ID, -n, lots[i].ExpiresAt)
		}
		// What is left is debt.
	}
	lots = slices.DeleteFunc(lots, func(l Lot) bool { return l.Open == 0 })
	if t := p.policy.ExtendTo; !t.IsZero() {
		for i := range lots {
			if !lots[i].ExpiresAt.IsZero() && lots[i].ExpiresAt.Before(t) && !lots[i].Due(p.effectiveAt) {
				lots[i].ExpiresAt = t
			}
		}
	}
	sortLots(lots)
	if err := checkLots(p.account, lots, p.before+p.move); err != nil {
		return nil, nil, err
	}
	return lots, moves, nil
}

// newLotExpiry is the expiry of the lot a credit opens: the policy's; but
// under the inactivity rule (ExtendTo set) no earlier than the member's
// open lots that are not due, whose expiry the member's latest activity
// set: all the points expire together, after the last activity, and
// activity recorded late (a stay imported after later ones) does not
// bring its own points' expiry forward.
func (p lotPlay) newLotExpiry(lots []Lot) time.Time {
	expiresAt := p.policy.ExpiresAt
	if p.policy.ExtendTo.IsZero() {
		return expiresAt
	}
	for _, l := range lots {
		if !l.ExpiresAt.IsZero() && !l.Due(p.effectiveAt) && l.ExpiresAt.After(expiresAt) {
			expiresAt = l.ExpiresAt
		}
	}
	return expiresAt
}

// drawnLots are the lots an original transaction drew, latest expiry
// first (never-expiring first of all): what a reversal gives back.
func drawnLots(original []LotMove) []LotMove {
	var drawn []LotMove
	for _, m := range original {
		if m.Points < 0 {
			drawn = append(drawn, m)
		}
	}
	slices.SortStableFunc(drawn, func(a, b LotMove) int { return -compareExpiry(a.ExpiresAt, b.ExpiresAt) })
	return drawn
}

// addToLot puts points in the open lot id, or opens it; past MaxOpenLots
// they join the lot that expires last.
func addToLot(lots []Lot, id uuid.UUID, expiresAt time.Time, points int64, record func(uuid.UUID, int64, time.Time)) []Lot {
	if i := slices.IndexFunc(lots, func(l Lot) bool { return l.ID == id }); i >= 0 {
		lots[i].Open += points
		if compareExpiry(expiresAt, lots[i].ExpiresAt) > 0 {
			lots[i].ExpiresAt = expiresAt
		}
		record(id, points, lots[i].ExpiresAt)
		return lots
	}
	if len(lots) >= MaxOpenLots {
		sortLots(lots)
		last := &lots[len(lots)-1]
		last.Open += points
		if compareExpiry(expiresAt, last.ExpiresAt) > 0 {
			last.ExpiresAt = expiresAt
		}
		record(last.ID, points, last.ExpiresAt)
		return lots
	}
	record(id, points, expiresAt)
	return append(lots, Lot{ID: id, ExpiresAt: expiresAt, Open: points})
}

// sortLots orders lots nearest expiry first, never-expiring last; equal
// expiries keep their order (the earlier lot first).
func sortLots(lots []Lot) {
	slices.SortStableFunc(lots, func(a, b Lot) int { return compareExpiry(a.ExpiresAt, b.ExpiresAt) })
}

// compareExpiry orders expiries, zero (never) after every time.
func compareExpiry(a, b time.Time) int {
	switch {
	case a.Equal(b):
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}

// checkLots asserts the lot book's invariant: open lots sum to the balance
// above zero.
func checkLots(account string, lots []Lot, balance int64) error {
	var open int64
	for _, l := range lots {
		if l.Open <= 0 {
			return fmt.Errorf("%w: %s has a lot %s with %d open points", ErrLotBook, account, l.ID, l.Open)
		}
		open += l.Open
	}
	if open != max(balance, 0) {
		return fmt.Errorf("%w: %s has %d points in open lots and a balance of %d", ErrLotBook, account, open, balance)
	}
	return nil
}

// dueLots is the points of lots expired at asOf.
func dueLots(lots []Lot, asOf time.Time) int64 {
	var due int64
	for _, l := range lots {
		if l.Due(asOf) {
			due += l.Open
		}
	}
	return due
}

// nextExpiry is the earliest expiry of the open lots (nil: none), kept
// next to them so the expiry job finds due accounts without reading lots.
func nextExpiry(lots []Lot) *time.Time {
	for _, l := range lots { // sorted: the first that expires is the earliest
		if !l.ExpiresAt.IsZero() {
			t := l.ExpiresAt
			return &t
		}
	}
	return nil
}

func encodeLots(lots []Lot) []byte {
	if b, ok := appendLots(make([]byte, 0, 16+96*len(lots)), lots); ok {
		return b
	}
	// A time json.Marshal refuses too: panic with its words.
	_, err := json.Marshal(lots)
	panic(fmt.Sprintf("ledger: encode lots: %v", err))
}

func decodeLots(account string, raw []byte) ([]Lot, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	lots, ok := decodeLotsFast(raw)
	if !ok {
		if err := json.Unmarshal(raw, &lots); err != nil {
			return nil, fmt.Errorf("%w: %s: lots are not readable: %v", ErrLotBook, account, err)
		}
	}
	for i := range lots {
		lots[i].ExpiresAt = lots[i].ExpiresAt.UTC()
	}
	return lots, nil
}

func encodeLotMoves(moves []LotMove) any {
	if len(moves) == 0 {
		return nil
	}
	b, err := json.Marshal(moves)
	if err != nil {
		panic(fmt.Sprintf("ledger: encode lot moves: %v", err))
	}
	return string(b)
}

func decodeLotMoves(raw []byte) ([]LotMove, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var moves []LotMove
	if err := json.Unmarshal(raw, &moves); err != nil {
		return nil, fmt.Errorf("lot moves are not readable: %w", err)
	}
	for i := range moves {
		moves[i].ExpiresAt = moves[i].ExpiresAt.UTC()
	}
	return moves, nil
}

// lotInput is what a transaction written outside the group commit needs
// for its lots.
type lotInput struct {
	policy LotPolicy
	// reverses are the original's moves, when the transaction is a
	// reversal.
	reverses []LotMove
}

// playTransactionLots locks the lot-tracked accounts a transaction moves,
// plays its moves on their lots, records the moves on txn, and returns
// each account's lots after.
func playTransactionLots(ctx context.Context, tx pgx.Tx, txn *Transaction, moves []balanceMove, in lotInput) (map[string][]Lot, error) {
	accounts := map[string]Account{}
	var tracked []string
	for _, m := range moves {
		if m.account.TracksLots {
			tracked = append(tracked, m.account.Code)
			accounts[m.account.Code] = m.account
		}
	}
	if len(tracked) == 0 {
		return nil, nil
	}
	raw := map[string]int64{}
	current := map[string][]Lot{}
	rows, err := tx.Query(ctx, `SELECT account_code, balance, lots FROM account_balances
		WHERE account_code = ANY($1) AND shard = 0 ORDER BY account_code FOR UPDATE`, tracked)
	if err != nil {
		return nil, fmt.Errorf("lock lots: %w", err)
	}
	if err := scanBalances(rows, accounts, raw, nil, nil, current); err != nil {
		return nil, fmt.Errorf("lock lots: %w", err)
	}
	book := map[string][]Lot{}
	for _, m := range moves {
		code := m.account.Code
		if !m.account.TracksLots {
			continue
		}
		if _, ok := raw[code]; !ok {
			return nil, fmt.Errorf("account %s has no balance row", code)
		}
		var reverses []LotMove
		for _, lm := range in.reverses {
			if lm.Account == code {
				reverses = append(reverses, lm)
			}
		}
		lots, lotMoves, err := playLots(current[code], lotPlay{account: code, txnID: txn.ID, effectiveAt: txn.EffectiveAt,
			before: m.account.normal(raw[code]), move: m.account.normal(m.raw), policy: in.policy, reverses: reverses})
		if err != nil {
			return nil, err
		}
		book[code] = lots
		txn.Lots = append(txn.Lots, lotMoves...)
	}
	return book, nil
}

// checkLotPolicy: a transaction that credits an account that tracks lots
// must say when the lot it may open expires.
func checkLotPolicy(postings []Posting, accounts map[string]Account, policy LotPolicy) error {
	for _, field := range []struct {
		name string
		t    time.Time
	}{{"lots.expires_at", policy.ExpiresAt}, {"lots.extend_to", policy.ExtendTo}} {
		if !field.t.IsZero() {
			if err := validateTime(field.name, field.t); err != nil {
				return err
			}
		}
	}
	if !policy.ExpiresAt.IsZero() {
		return nil
	}
	net := map[string]int64{}
	for _, p := range postings {
		net[p.Account] += p.Amount
	}
	for code, raw := range net {
		if a := accounts[code]; a.TracksLots && a.normal(raw) > 0 {
			return invalid("lots.expires_at", "is required: the transaction credits %s, which tracks lots", code)
		}
	}
	return nil
}
