package ledger

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
)

// Group commit: concurrent Post calls of one process are written together,
// in one database transaction with one commit, instead of one commit each.
// Each request still gets its own result: a request that would overdraw is
// left out of the group (it fails alone), and a request whose idempotency
// key is already used is answered from the first result. A request is
// acknowledged only after the group's COMMIT succeeded.
//
// How a group is written, in two round trips (BEGIN travels with the first,
// COMMIT with the second: database.BatchTx):
//  1. claim the group's idempotency keys (an INSERT that skips keys in use:
//     those requests replay), then lock the single-row balances the group
//     touches (members), in account order, and read them with their active
//     holds;
//  2. in Go, play the requests in arrival order over those balances: a
//     request that would take a guarded account below zero is refused, and
//     its claim taken back; every other one gets its balances after;
//  3. move each balance row once by the group's net amount (sharded
//     accounts on leased shards), insert the transactions and their
//     postings.
//
// A group that keeps conflicting with other processes is split in two.
// Locks are taken in (phase, account, shard) order, single-row accounts
// first: groups in different processes cannot deadlock.

const (
	// maxGroup bounds a group: its statements and parameters stay small.
	maxGroup = 64
	// groupFlushers is how many groups may be in flight at once. One: the
	// requests that arrive while a group is written wait for it and go
	// together in the next, and no two groups of a process overlap in the
	// database. Against two, in alternated 15 s runs of loyaltybench on
	// PostgreSQL: 1,134 committed writes/s against 936 (spread, mean of
	// five pairs, each pair won by one), 1,004 against 814 (hot), and a
	// lower p99 at 600 operations/s (30-42 ms against 42-47), with less of
	// PostgreSQL's CPU per write: overlapping serializable transactions
	// cost it conflict tracking, and failed each other's checks.
	groupFlushers = 1
	// groupAttempts is how often a group of several requests is tried
	// before it is split in two.
	groupAttempts = 3
	// groupTimeout bounds one group's database work, retries included.
	groupTimeout = 30 * time.Second
)

// postJob is one validated Post request waiting for its group.
type postJob struct {
	req         PostRequest
	metadata    []byte
	hash        []byte
	effectiveAt time.Time
	accounts    map[string]Account
	// expire, when set, makes the job an expiry whose postings are the
	// lots due, known only once the account is locked.
	expire *expireSpec
	done   chan postResult
}

type postResult struct {
	txn Transaction
	err error
	// replay: the key was used already; answer from the first result.
	replay bool
}

// groupCommitter collects pending jobs and flushes them in groups.
type groupCommitter struct {
	mu      sync.Mutex
	pending []*postJob
	slots   chan struct{}
	// groups and requests count the groups flushed and the requests in
	// them: their ratio is the mean group size.
	groups, requests atomic.Uint64
}

// GroupStats counts what the group commit did since the ledger was made.
type GroupStats struct {
	Groups   uint64 // groups flushed (a group split in two counts once)
	Requests uint64 // Post requests and expiries in them
}

// GroupStats returns the group commit's counters.
func (l *Ledger) GroupStats() GroupStats {
	return GroupStats{Groups: l.group.groups.Load(), Requests: l.group.requests.Load()}
}

func newGroupCommitter() *groupCommitter {
	return &groupCommitter{slots: make(chan struct{}, groupFlushers)}
}

// submit queues a job and makes sure a flusher will take it. Flushers are
// goroutines of their own, started when needed and gone when idle, so a
// caller never writes other callers' groups on its own time.
func (l *Ledger) submit(job *postJob) {
	g := l.group
	g.mu.Lock()
	g.pending = append(g.pending, job)
	g.mu.Unlock()
	select {
	case g.slots <- struct{}{}:
		go l.flushLoop()
	default:
		// Every flusher is busy; each looks at pending before it stops.
	}
}

func (l *Ledger) flushLoop() {
	g := l.group
	for {
		for {
			g.mu.Lock()
			n := min(len(g.pending), maxGroup)
			group := slices.Clone(g.pending[:n])
			g.pending = g.pending[n:]
			g.mu.Unlock()
			if n == 0 {
				break
			}
			l.flush(group)
		}
		<-g.slots
		// A job queued between our last look and the release may have found
		// no free slot: look once more, and carry on if we get a slot.
		g.mu.Lock()
		more := len(g.pending) > 0
		g.mu.Unlock()
		if !more {
			return
		}
		select {
		case g.slots <- struct{}{}:
		default:
			return // another flusher has it
		}
	}
}

// flush writes one group and answers each of its jobs.
func (l *Ledger) flush(jobs []*postJob) {
	l.group.groups.Add(1)
	l.group.requests.Add(uint64(len(jobs)))
	ctx, cancel := context.WithTimeout(context.Background(), groupTimeout)
	defer cancel()
	results := l.writeGroup(ctx, jobs)
	for i, job := range jobs {
		job.done <- results[i]
	}
}

func (l *Ledger) writeGroup(ctx context.Context, jobs []*postJob) []postResult {
	accounts := map[string]Account{}
	for _, job := range jobs {
		maps.Copy(accounts, job.accounts)
	}
	shards, done := l.queue(accounts)
	results := make([]postResult, len(jobs))
	attempts := 100 // WriteTx's own bound
	if len(jobs) > 1 {
		attempts = groupAttempts
	}
	err := l.db.WriteBatchesAttempts(ctx, attempts, func(tx *database.BatchTx) error {
		clear(results)
		return l.writeGroupTx(ctx, tx, jobs, accounts, shards, results)
	})
	done()
	if err != nil && len(jobs) > 1 && ctx.Err() == nil {
		// A group that keeps meeting other processes' writers on the same
		// rows meets fewer of them when smaller; and a request whose write
		// fails (an effect's statement, say) must fail alone, not with its
		// neighbours. Halving finds it in a few steps.
		half := len(jobs) / 2
		return append(l.writeGroup(ctx, jobs[:half]), l.writeGroup(ctx, jobs[half:])...)
	}
	if err != nil {
		for i := range results {
			if results[i].err == nil && !results[i].replay {
				results[i] = postResult{err: err}
			}
		}
	}
	return results
}

// groupJob is a job as the group plays it.
type groupJob struct {
	*postJob
	txn Transaction
}

func (l *Ledger) writeGroupTx(ctx context.Context, tx *database.BatchTx, jobs []*postJob, accounts map[string]Account, shards map[string]int, results []postResult) error {
	now := l.clock()
	// Each job's transaction, and which jobs claim a key: a second job
	// with the same key in this group replays the first.
	txns := make([]Transaction, len(jobs))
	var claiming []groupJob
	seen := map[[2]string]bool{}
	for i, job := range jobs {
		txns[i] = Transaction{
			ID: uuid.New(), Kind: job.req.Kind, CallerID: job.req.CallerID, IdempotencyKey: job.req.IdempotencyKey,
			EffectiveAt: job.effectiveAt, RecordedAt: now, Postings: slices.Clone(job.req.Postings), Metadata: job.metadata,
		}
		if job.expire != nil {
			if err := job.expire.outsideBookingDay(now); err != nil {
				results[i] = postResult{err: err}
				continue
			}
		}
		key := [2]string{job.req.CallerID, job.req.IdempotencyKey}
		if seen[key] {
			results[i] = postResult{replay: true}
			continue
		}
		seen[key] = true
		claiming = append(claiming, groupJob{postJob: job, txn: txns[i]})
	}

	// Round trip 1: claim the keys (an INSERT that skips keys in use takes
	// no read locks, unlike a SELECT at SERIALIZABLE), then lock and read
	// the single-row balances with their active holds.
	var singles []string
	for code, a := range accounts {
		if a.Shards == 1 {
			singles = append(singles, code)
		}
	}
	slices.Sort(singles)
	b := &pgx.Batch{}
	claimText, claimArgs := claimsSQL(claiming, now)
	b.Queue(claimText+` RETURNING caller_id, idempotency_key`, claimArgs...)
	b.Queue(`SELECT b.account_code, b.balance, b.lots, `+heldSQL("b", "$2")+`, b.closed
		FROM account_balances AS b
		WHERE b.account_code = ANY($1) AND b.shard = 0 ORDER BY b.account_code FOR UPDATE`, singles, now)
	// COMMIT travels with round trip 2, before its results are read: every
	// row it moves is known to exist by then. Single-row balances are
	// locked above; the shard rows this process leased to the group are
	// counted here (a read that can meet only another process writing the
	// same shard, which the group's own update would meet anyway).
	var shardCodes []string
	var shardIndexes []int64
	for code, a := range accounts {
		if a.Shards > 1 {
			shardCodes, shardIndexes = append(shardCodes, code), append(shardIndexes, int64(shards[code]))
		}
	}
	if len(shardCodes) > 0 {
		b.Queue(`SELECT COUNT(*) FROM account_balances WHERE (account_code, shard) IN
			(SELECT * FROM unnest($1::TEXT[], $2::INT8[]))`, shardCodes, shardIndexes)
	}
	raw := map[string]int64{}
	held := map[string]int64{}
	closed := map[string]bool{} // single-row accounts closed, by now or by a job of this group
	book := map[string][]Lot{}  // open lots of the accounts that track them
	claimed := map[[2]string]bool{}
	err := tx.Send(ctx, b, func(br pgx.BatchResults) error {
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("claim idempotency keys: %w", err)
		}
		for rows.Next() {
			var c, k string
			if err := rows.Scan(&c, &k); err != nil {
				return err
			}
			claimed[[2]string{c, k}] = true
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("claim idempotency keys: %w", err)
		}
		rows, err = br.Query()
		if err != nil {
			return fmt.Errorf("lock balances: %w", err)
		}
		if err := scanBalances(rows, accounts, raw, held, closed, book); err != nil {
			return fmt.Errorf("lock balances: %w", err)
		}
		if len(shardCodes) > 0 {
			var found int
			if err := br.QueryRow().Scan(&found); err != nil {
				return fmt.Errorf("count shard rows: %w", err)
			}
			if found != len(shardCodes) {
				// Accounts are never deleted: the books are damaged. Stop.
				return fmt.Errorf("%d of %d leased shard rows exist", found, len(shardCodes))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, code := range singles {
		if _, ok := raw[code]; !ok {
			// Accounts are never deleted: a known account without its
			// balance row means the books are damaged. Stop.
			return fmt.Errorf("account %s has no balance row", code)
		}
	}

	// Play the requests in order.
	lotsMoved := map[string]bool{}
	var written []groupJob
	var unclaim []groupJob
	var closing []string // accounts the written jobs close
	for i, job := range jobs {
		if results[i].replay || results[i].err != nil {
			continue
		}
		if !claimed[[2]string{job.req.CallerID, job.req.IdempotencyKey}] {
			results[i] = postResult{replay: true} // the key was in use already
			continue
		}
		txn := txns[i]
		if job.expire != nil {
			if txn.Postings = expiryPostings(*job.expire, accounts, book, raw, held); txn.Postings == nil {
				results[i] = postResult{err: ErrNothingDue}
				unclaim = append(unclaim, groupJob{postJob: job, txn: txn})
				continue
			}
		}
		moves := netMoves(txn.Postings, accounts, shards)
		if err := checkBalanced(txn, moves); err != nil {
			panic(err.Error())
		}
		if err := closedOrNotSettled(job.req.CloseAccounts, moves, raw, held, closed); err != nil {
			// Nothing is written for it, its key included.
			results[i] = postResult{err: err}
			unclaim = append(unclaim, groupJob{postJob: job, txn: txn})
			continue
		}
		refused := false
		for _, m := range guardedMoves(moves, txn.Kind) {
			before := m.account.normal(raw[m.account.Code])
			requested := -m.account.normal(m.raw)
			if available := before - held[m.account.Code]; available < requested {
				results[i] = postResult{err: &InsufficientPointsError{Account: m.account.Code, Posted: before,
					Held: held[m.account.Code], Available: available, Requested: requested, Shortfall: requested - available}}
				refused = true
				break
			}
		}
		if refused {
			// Nothing is written for it, its key included: a retry may
			// succeed once the member has the points.
			unclaim = append(unclaim, groupJob{postJob: job, txn: txn})
			continue
		}
		for _, m := range moves {
			if !m.account.TracksLots {
				continue
			}
			lots, lotMoves, err := playLots(book[m.account.Code], lotPlay{account: m.account.Code, txnID: txn.ID, effectiveAt: txn.EffectiveAt,
				before: m.account.normal(raw[m.account.Code]), move: m.account.normal(m.raw), policy: job.req.Lots})
			if err != nil {
				return err
			}
			book[m.account.Code] = lots
			lotsMoved[m.account.Code] = true
			txn.Lots = append(txn.Lots, lotMoves...)
		}
		for _, m := range moves {
			if m.account.Shards == 1 {
				raw[m.account.Code] += m.raw
				posted := m.account.normal(raw[m.account.Code])
				h := held[m.account.Code]
				txn.BalancesAfter = append(txn.BalancesAfter, Balance{Account: m.account.Code, Posted: posted, Held: h, Available: posted - h, AsOf: now})
			}
		}
		for _, code := range job.req.CloseAccounts {
			closed[code] = true
			closing = append(closing, code)
		}
		written = append(written, groupJob{postJob: job, txn: txn})
		results[i] = postResult{txn: txn}
	}

	// Round trip 2: take back the claims of refused jobs (rows this
	// transaction inserted, never seen by anyone), move the balances,
	// insert the journal.
	b = &pgx.Batch{}
	if len(unclaim) > 0 {
		callers, keys, ids := make([]string, len(unclaim)), make([]string, len(unclaim)), make([]uuid.UUID, len(unclaim))
		for i, j := range unclaim {
			callers[i], keys[i], ids[i] = j.req.CallerID, j.req.IdempotencyKey, j.txn.ID
		}
		b.Queue(`DELETE FROM idempotency_keys WHERE (caller_id, idempotency_key, transaction_id) IN
			(SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::UUID[]))`, callers, keys, ids)
	}
	if len(written) == 0 {
		return tx.SendAndCommit(ctx, b, func(br pgx.BatchResults) error {
			if len(unclaim) > 0 {
				if _, err := br.Exec(); err != nil {
					return fmt.Errorf("take back claims: %w", err)
				}
			}
			return nil
		})
	}
	singleRowsAfter, sharded := singleRowUpdate(groupMoves(written, accounts, shards), lotsMoved, book)
	if len(singleRowsAfter.codes) > 0 {
		// One statement for every single-row account (members), whose rows
		// round trip 1 locked already.
		b.Queue(`UPDATE account_balances AS b
			SET balance = b.balance + v.delta,
			    lots = COALESCE(v.lots::JSONB, b.lots),
			    next_lot_expiry = CASE WHEN v.lots IS NULL THEN b.next_lot_expiry ELSE v.next_expiry END
			FROM unnest($1::TEXT[], $2::INT8[], $3::TEXT[], $4::TIMESTAMPTZ[]) AS v (code, delta, lots, next_expiry)
			WHERE b.account_code = v.code AND b.shard = 0`,
			singleRowsAfter.codes, singleRowsAfter.deltas, singleRowsAfter.lots, singleRowsAfter.nextExpiry)
	}
	if len(sharded) > 0 {
		// One statement for the leased shard rows of every sharded account:
		// one row each, as the group nets its moves per account.
		codes, shardIndexes, deltas := make([]string, len(sharded)), make([]int64, len(sharded)), make([]int64, len(sharded))
		for i, m := range sharded {
			codes[i], shardIndexes[i], deltas[i] = m.account.Code, int64(m.shard), m.raw
		}
		b.Queue(`UPDATE account_balances AS b SET balance = b.balance + v.delta
			FROM unnest($1::TEXT[], $2::INT8[], $3::INT8[]) AS v (code, shard, delta)
			WHERE b.account_code = v.code AND b.shard = v.shard`, codes, shardIndexes, deltas)
	}
	if len(closing) > 0 {
		b.Queue(`UPDATE account_balances SET closed = true WHERE account_code = ANY($1) AND shard = 0`, closing)
	}
	txText, txArgs := transactionsSQL(written)
	b.Queue(txText, txArgs...)
	postText, postArgs := groupPostingsSQL(written, accounts)
	b.Queue(postText, postArgs...)
	var all []Statement
	for _, j := range written {
		announced := j.txn
		announced.Announced = j.req.Announced
		for _, e := range l.announce(announced, j.req.Effects) {
			all = append(all, e.forTransaction(j.txn))
		}
	}
	effects := mergeRowInserts(all)
	for _, e := range effects {
		b.Queue(e.Text(), e.Args...)
	}
	return tx.SendAndCommit(ctx, b, func(br pgx.BatchResults) error {
		if len(unclaim) > 0 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("take back claims: %w", err)
			}
		}
		if len(singleRowsAfter.codes) > 0 {
			tag, err := br.Exec()
			if err != nil {
				return fmt.Errorf("move balances: %w", err)
			}
			if tag.RowsAffected() != int64(len(singleRowsAfter.codes)) {
				return fmt.Errorf("moved %d of %d single-row balances: a balance row is missing", tag.RowsAffected(), len(singleRowsAfter.codes))
			}
		}
		if len(sharded) > 0 {
			tag, err := br.Exec()
			if err != nil {
				return fmt.Errorf("move sharded balances: %w", err)
			}
			if tag.RowsAffected() != int64(len(sharded)) {
				return fmt.Errorf("moved %d of %d shard rows: a balance row is missing", tag.RowsAffected(), len(sharded))
			}
		}
		if len(closing) > 0 {
			if _, err := br.Exec(); err != nil {
				return fmt.Errorf("close accounts: %w", err)
			}
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("insert transactions: %w", err)
		}
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("insert postings: %w", err)
		}
		for _, e := range effects {
			if _, err := br.Exec(); err != nil {
				return e.failed(err)
			}
		}
		return nil
	})
}

// singleRowState is the new state of a group's single-row accounts, as
// arrays for one UPDATE: the net move, and for accounts whose lots moved
// their lots (nil: unchanged) and earliest expiry.
type singleRowState struct {
	codes      []string
	deltas     []int64
	lots       []*string
	nextExpiry []*time.Time
}

// singleRowUpdate splits a group's moves into the single-row accounts, with
// the lots that moved (including accounts whose balance did not: points
// earned and spent in the same group), and the sharded ones.
func singleRowUpdate(moves []balanceMove, lotsMoved map[string]bool, book map[string][]Lot) (singleRowState, []balanceMove) {
	var rows singleRowState
	var sharded []balanceMove
	delta := map[string]int64{}
	for _, m := range moves {
		if m.account.Shards == 1 {
			delta[m.account.Code] = m.raw
		} else {
			sharded = append(sharded, m)
		}
	}
	for code := range lotsMoved {
		if _, ok := delta[code]; !ok {
			delta[code] = 0
		}
	}
	for _, code := range slices.Sorted(maps.Keys(delta)) {
		rows.codes = append(rows.codes, code)
		rows.deltas = append(rows.deltas, delta[code])
		if lotsMoved[code] {
			lots := string(encodeLots(book[code]))
			rows.lots = append(rows.lots, &lots)
			rows.nextExpiry = append(rows.nextExpiry, nextExpiry(book[code]))
		} else {
			rows.lots = append(rows.lots, nil)
			rows.nextExpiry = append(rows.nextExpiry, nil)
		}
	}
	return rows, sharded
}

func checkBalanced(txn Transaction, moves []balanceMove) error {
	var sum int64
	for _, m := range moves {
		sum += m.raw
	}
	if sum != 0 {
		return fmt.Errorf("ledger: transaction %s does not balance (sum %d)", txn.ID, sum)
	}
	return nil
}

// scanBalances reads locked single-row balances (account_code, balance,
// lots and, when held is not nil, the active holds), and the open lots of
// the accounts that track them.
func scanBalances(rows pgx.Rows, accounts map[string]Account, raw, held map[string]int64, closed map[string]bool, book map[string][]Lot) error {
	defer rows.Close()
	for rows.Next() {
		var code string
		var balance, heldPoints int64
		var lots []byte
		var isClosed bool
		dest := []any{&code, &balance, &lots}
		if held != nil {
			dest = append(dest, &heldPoints)
		}
		if closed != nil {
			dest = append(dest, &isClosed)
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if isClosed {
			closed[code] = true
		}
		raw[code] = balance
		if held != nil && heldPoints != 0 {
			held[code] = heldPoints
		}
		if accounts[code].TracksLots {
			var err error
			if book[code], err = decodeLots(code, lots); err != nil {
				return err
			}
		}
	}
	return rows.Err()
}

// closedOrNotSettled refuses a job that moves a closed account, or that
// would close an account (closing) without leaving it at zero with nothing
// on hold, its moves applied to the balances read under the locks (raw,
// held).
func closedOrNotSettled(closing []string, moves []balanceMove, raw, held map[string]int64, closed map[string]bool) error {
	for _, m := range moves {
		if closed[m.account.Code] {
			return &AccountClosedError{Account: m.account.Code}
		}
	}
	for _, code := range closing {
		if closed[code] {
			return &AccountClosedError{Account: code}
		}
		posted := raw[code]
		for _, m := range moves {
			if m.account.Code == code {
				posted += m.raw
			}
		}
		if posted != 0 || held[code] != 0 {
			return &NotSettledError{Account: code, Posted: posted, Held: held[code]}
		}
	}
	return nil
}

// groupMoves nets the whole group's postings per account, in lock order.
func groupMoves(jobs []groupJob, accounts map[string]Account, shards map[string]int) []balanceMove {
	var all []Posting
	for _, j := range jobs {
		all = append(all, j.txn.Postings...)
	}
	return netMoves(all, accounts, shards)
}

// The group's three inserts take one array per column, so each is one
// statement text whatever the group's size: prepared once per connection,
// planned generically.

func claimsSQL(jobs []groupJob, now time.Time) (string, []any) {
	callers, keys, hashes, ids := make([]string, len(jobs)), make([]string, len(jobs)), make([][]byte, len(jobs)), make([]uuid.UUID, len(jobs))
	for i, j := range jobs {
		callers[i], keys[i], hashes[i], ids[i] = j.req.CallerID, j.req.IdempotencyKey, j.hash, j.txn.ID
	}
	return `INSERT INTO idempotency_keys (caller_id, idempotency_key, operation, request_hash, transaction_id, created_at)
		SELECT v.caller_id, v.idempotency_key, $1, v.request_hash, v.transaction_id, $2
		FROM unnest($3::TEXT[], $4::TEXT[], $5::BYTEA[], $6::UUID[]) AS v (caller_id, idempotency_key, request_hash, transaction_id)
		ON CONFLICT (caller_id, idempotency_key) DO NOTHING`, []any{opPost, now, callers, keys, hashes, ids}
}

func transactionsSQL(jobs []groupJob) (string, []any) {
	n := len(jobs)
	ids, kinds, callers, keys := make([]uuid.UUID, n), make([]string, n), make([]string, n), make([]string, n)
	effective, recorded, counts := make([]time.Time, n), make([]time.Time, n), make([]int32, n)
	metadata, lots := make([]string, n), make([]*string, n)
	for i, j := range jobs {
		t := j.txn
		ids[i], kinds[i], callers[i], keys[i] = t.ID, string(t.Kind), t.CallerID, t.IdempotencyKey
		effective[i], recorded[i], counts[i], metadata[i] = t.EffectiveAt, t.RecordedAt, int32(len(t.Postings)), string(t.Metadata)
		if moves, ok := encodeLotMoves(t.Lots).(string); ok {
			lots[i] = &moves
		}
	}
	return `INSERT INTO transactions (id, kind, caller_id, idempotency_key, effective_at, recorded_at, posting_count, metadata, lots)
		SELECT v.id, v.kind, v.caller_id, v.idempotency_key, v.effective_at, v.recorded_at, v.posting_count, v.metadata::JSONB, v.lots::JSONB
		FROM unnest($1::UUID[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TIMESTAMPTZ[], $6::TIMESTAMPTZ[], $7::INT4[], $8::TEXT[], $9::TEXT[])
			AS v (id, kind, caller_id, idempotency_key, effective_at, recorded_at, posting_count, metadata, lots)`,
		[]any{ids, kinds, callers, keys, effective, recorded, counts, metadata, lots}
}

// groupPostingsSQL inserts every posting of the group, with the balance and
// held points after its transaction for single-row accounts, as played.
func groupPostingsSQL(jobs []groupJob, accounts map[string]Account) (string, []any) {
	var ids []uuid.UUID
	var seqs []int32
	var codes []string
	var amounts []int64
	var recorded []time.Time
	var balancesAfter, heldAfter []*int64
	for _, j := range jobs {
		after := map[string]Balance{}
		for _, b := range j.txn.BalancesAfter {
			after[b.Account] = b
		}
		for seq, p := range j.txn.Postings {
			var balance, held *int64
			if b, ok := after[p.Account]; ok {
				r, h := accounts[p.Account].normal(b.Posted), b.Held // normal is its own inverse
				balance, held = &r, &h
			}
			ids, seqs, codes, amounts = append(ids, j.txn.ID), append(seqs, int32(seq)), append(codes, p.Account), append(amounts, p.Amount)
			recorded, balancesAfter, heldAfter = append(recorded, j.txn.RecordedAt), append(balancesAfter, balance), append(heldAfter, held)
		}
	}
	return `INSERT INTO postings (transaction_id, seq, account_code, amount, recorded_at, balance_after, held_after)
		SELECT * FROM unnest($1::UUID[], $2::INT4[], $3::TEXT[], $4::INT8[], $5::TIMESTAMPTZ[], $6::INT8[], $7::INT8[])`,
		[]any{ids, seqs, codes, amounts, recorded, balancesAfter, heldAfter}
}
