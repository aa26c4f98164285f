package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
)

// Ledger posts and reads transactions in one database.
type Ledger struct {
	db  *database.DB
	now func() time.Time
	// accounts caches account settings by code, and holdAccounts the
	// account of each hold by the hold's id: neither changes once
	// committed, and a write that knows them early queues behind the
	// right rows without a round trip.
	accounts     immutableCache[string, Account]
	holdAccounts immutableCache[uuid.UUID, string]
	shards       shardLeases
	rows         *rowQueues
	group        *groupCommitter
	outbox       func(Transaction) []Statement
}

// Options configure a Ledger.
type Options struct {
	// Clock gives the time transactions are recorded at and holds expire
	// against. Nil means time.Now.
	Clock func() time.Time
	// Outbox, when set, gives the statements that announce a transaction
	// (events.OfTransaction): they run in the transaction's own database
	// transaction, after its effects, so that the announcement commits
	// with the transaction or not at all. Nil announces nothing.
	Outbox func(Transaction) []Statement
}

// New returns a ledger over db, whose schema must be migrated.
func New(db *database.DB, opts Options) *Ledger {
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Ledger{db: db, now: clock, rows: newRowQueues(), group: newGroupCommitter(),
		accounts:     immutableCache[string, Account]{limit: maxCachedAccounts},
		holdAccounts: immutableCache[uuid.UUID, string]{limit: maxCachedHolds}, outbox: opts.Outbox}
}

// announce is what the ledger writes with txn besides it: its effects,
// then its announcements (Options.Outbox).
func (l *Ledger) announce(txn Transaction, effects []Statement) []Statement {
	if l.outbox == nil {
		return effects
	}
	return append(slices.Clip(effects), l.outbox(txn)...)
}

// queue waits until this process has no other transaction in flight on
// the same rows, leases shards of the sharded accounts, and returns the
// shards and the func that ends the wait.
func (l *Ledger) queue(accounts map[string]Account) (map[string]int, func()) {
	unlock := l.rows.lock(accounts)
	shards, release := l.shards.lease(accounts)
	return shards, func() {
		release()
		unlock()
	}
}

// DB returns the database the ledger writes to.
func (l *Ledger) DB() *database.DB { return l.db }

// clock is the ledger's current time at the database's precision, so that a
// value written and read back compares equal.
func (l *Ledger) clock() time.Time { return dbTime(l.now()) }

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// CreateAccount creates an account, or does nothing when an identical one
// exists. An account with the same code and other settings is
// ErrAccountExists: account settings never change.
func (l *Ledger) CreateAccount(ctx context.Context, a Account) error {
	return l.CreateAccounts(ctx, []Account{a})
}

// maxCachedAccounts bounds the account cache (about 200 bytes an entry),
// maxCachedHolds the cache of holds' accounts (about 100).
const (
	maxCachedAccounts = 100_000
	maxCachedHolds    = 100_000
)

// maxAccountsPerInsert keeps one INSERT's parameters well under the
// protocol's 65,535.
const maxAccountsPerInsert = 1000

// CreateAccounts creates many accounts, as CreateAccount does for one, in
// chunks of a thousand per transaction.
func (l *Ledger) CreateAccounts(ctx context.Context, accounts []Account) error {
	for i, a := range accounts {
		if err := validateAccount(a); err != nil {
			return fmt.Errorf("account %d: %w", i, err)
		}
	}
	for start := 0; start < len(accounts); start += maxAccountsPerInsert {
		chunk := accounts[start:min(start+maxAccountsPerInsert, len(accounts))]
		if err := l.createAccountChunk(ctx, chunk); err != nil {
			return err
		}
	}
	return nil
}

func (l *Ledger) createAccountChunk(ctx context.Context, chunk []Account) error {
	err := l.db.WriteTx(ctx, func(tx pgx.Tx) error { return l.writeAccounts(ctx, tx, chunk) })
	if err != nil {
		return fmt.Errorf("create accounts: %w", err)
	}
	return nil
}

// CreateAccountsTx creates accounts inside a transaction the caller runs,
// so that an account and what it belongs to (a member) commit together.
// At most 1,000 accounts. An account that exists with other settings fails
// the call (ErrAccountExists), and the caller's transaction must not commit.
func (l *Ledger) CreateAccountsTx(ctx context.Context, tx pgx.Tx, accounts []Account) error {
	if len(accounts) > maxAccountsPerInsert {
		return invalid("accounts", "at most %d per transaction, got %d", maxAccountsPerInsert, len(accounts))
	}
	for i, a := range accounts {
		if err := validateAccount(a); err != nil {
			return fmt.Errorf("account %d: %w", i, err)
		}
	}
	return l.writeAccounts(ctx, tx, accounts)
}

// writeAccounts inserts the accounts that do not exist yet, then checks
// the settings of those that did, through tx (a second connection would
// wait for one of the pool's, all of which may be held by transactions
// like this one). A mismatch fails the transaction, so nothing is written.
//
// Inserting first, and reading only what existed, is what lets enrolments
// run side by side on PostgreSQL: at SERIALIZABLE, reading the new codes
// first locked the index page they go into, and each of two enrolments
// then inserted into the page the other had read: one of them failed to
// serialize, a third of them in the load generator's enrolment.
func (l *Ledger) writeAccounts(ctx context.Context, tx pgx.Tx, accounts []Account) error {
	created, err := l.insertAccounts(ctx, tx, accounts)
	if err != nil {
		return fmt.Errorf("insert accounts: %w", err)
	}
	var existed []Account
	for _, a := range accounts {
		if !created[a.Code] {
			existed = append(existed, a)
		}
	}
	if len(existed) == 0 {
		return nil
	}
	return l.checkAccountSettings(ctx, tx, existed)
}

// insertAccounts inserts the accounts whose codes are not taken, with
// their balance rows, and returns the codes it inserted.
func (l *Ledger) insertAccounts(ctx context.Context, tx pgx.Tx, chunk []Account) (map[string]bool, error) {
	now := l.clock()
	var accountRows, shardRows strings.Builder
	accountArgs := make([]any, 0, len(chunk)*6)
	shardArgs := make([]any, 0, len(chunk)*2)
	for i, a := range chunk {
		if i > 0 {
			accountRows.WriteString(", ")
			shardRows.WriteString(", ")
		}
		n := len(accountArgs)
		fmt.Fprintf(&accountRows, "($%d, $%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5, n+6)
		accountArgs = append(accountArgs, a.Code, string(a.NormalSide), a.AllowNegative, a.Shards, a.TracksLots, now)
		m := len(shardArgs)
		fmt.Fprintf(&shardRows, "($%d::TEXT, $%d::INT8)", m+1, m+2)
		shardArgs = append(shardArgs, a.Code, a.Shards)
	}
	rows, err := tx.Query(ctx, `INSERT INTO accounts (code, normal_side, allow_negative, shards, tracks_lots, created_at)
		VALUES `+accountRows.String()+` ON CONFLICT (code) DO NOTHING RETURNING code`, accountArgs...)
	if err != nil {
		return nil, err
	}
	created := make(map[string]bool, len(chunk))
	var code string
	if _, err := pgx.ForEachRow(rows, []any{&code}, func() error { created[code] = true; return nil }); err != nil {
		return nil, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO account_balances (account_code, shard, balance)
		SELECT a.code, s.shard, 0
		FROM (VALUES `+shardRows.String()+`) AS a (code, shards),
		     generate_series(0, 255) AS s (shard)
		WHERE s.shard < a.shards
		ON CONFLICT (account_code, shard) DO NOTHING`, shardArgs...)
	return created, err
}

// checkAccountSettings fails when an account that already exists has
// other settings than asked for.
func (l *Ledger) checkAccountSettings(ctx context.Context, q querier, accounts []Account) error {
	codes := make([]string, len(accounts))
	for i, a := range accounts {
		codes[i] = a.Code
	}
	stored, err := l.loadAccountsWith(ctx, q, codes)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if got, ok := stored[a.Code]; ok && got != a {
			return fmt.Errorf("%w: %s is %+v, asked for %+v", ErrAccountExists, a.Code, got, a)
		}
	}
	return nil
}

// Account returns an account's settings.
func (l *Ledger) Account(ctx context.Context, code string) (Account, error) {
	accounts, err := l.accountsByCode(ctx, []string{code})
	if err != nil {
		return Account{}, err
	}
	return accounts[code], nil
}

// accountsByCode returns the settings of every named account, from the
// cache where it can; a code that is not an account is UnknownAccountError.
func (l *Ledger) accountsByCode(ctx context.Context, codes []string) (map[string]Account, error) {
	out := make(map[string]Account, len(codes))
	var missing []string
	for _, c := range codes {
		if a, ok := l.accounts.load(c); ok {
			out[c] = a
		} else if _, seen := out[c]; !seen {
			missing = append(missing, c)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	loaded, err := l.loadAccounts(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, c := range missing {
		a, ok := loaded[c]
		if !ok {
			return nil, &UnknownAccountError{Account: c}
		}
		out[c] = a
	}
	return out, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func (l *Ledger) loadAccounts(ctx context.Context, codes []string) (map[string]Account, error) {
	return l.loadAccountsWith(ctx, l.db.Pool, codes)
}

func (l *Ledger) loadAccountsWith(ctx context.Context, q querier, codes []string) (map[string]Account, error) {
	// One code, the usual miss (a member's account), by equality: PostgreSQL
	// plans a statement with an array parameter anew at every call (it
	// cannot know the array's length): about 60 µs of planning a read in
	// loyaltybench's statements, against 23 µs of execution.
	var rows pgx.Rows
	var err error
	if len(codes) == 1 {
		rows, err = q.Query(ctx, accountSelect+`WHERE code = $1`, codes[0])
	} else {
		rows, err = q.Query(ctx, accountSelect+`WHERE code = ANY($1)`, codes)
	}
	if err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	out := make(map[string]Account, len(codes))
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("load accounts: %w", err)
		}
		out[a.Code] = a
		l.cache(a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load accounts: %w", err)
	}
	return out, nil
}

const accountSelect = `SELECT code, normal_side, allow_negative, shards, tracks_lots FROM accounts `

// scanAccount reads a row of accountSelect.
func scanAccount(row pgx.Row) (Account, error) {
	var a Account
	var side string
	err := row.Scan(&a.Code, &side, &a.AllowNegative, &a.Shards, &a.TracksLots)
	a.NormalSide = Side(side)
	return a, err
}

// QueueAccount queues on b the read of an account's settings, unless this
// process knows them, and returns what keeps them once b is sent: a
// caller that reads a member in one round trip (the member's view before
// a stay) saves the round trip that the posting would take to read them.
// An account that does not exist is left for the posting to refuse.
func (l *Ledger) QueueAccount(b *pgx.Batch, code string) func(pgx.BatchResults) error {
	if _, ok := l.accounts.load(code); ok {
		return func(pgx.BatchResults) error { return nil }
	}
	b.Queue(accountSelect+`WHERE code = $1`, code)
	return func(br pgx.BatchResults) error {
		a, err := scanAccount(br.QueryRow())
		if isNoRows(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load account %s: %w", code, err)
		}
		l.cache(a)
		return nil
	}
}

// Remember caches accounts whose creation the caller has seen commit (a
// member enrolled in this process), so that their first posting need not
// read them.
func (l *Ledger) Remember(accounts ...Account) {
	for _, a := range accounts {
		l.cache(a)
	}
}

// cache keeps a committed account's settings, which never change.
func (l *Ledger) cache(a Account) { l.accounts.store(a.Code, a) }

// normal converts a raw (credit-positive) amount to the account's normal side.
func (a Account) normal(raw int64) int64 {
	if a.NormalSide == Debit {
		return -raw
	}
	return raw
}

var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
