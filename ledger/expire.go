package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNothingDue: the account has no lot due to expire (any more).
var ErrNothingDue = errors.New("no points due to expire")

// ErrOutsideBookingDay: the ledger's clock is outside the day an expiry
// must be recorded in (ExpireRequest.RecordAfter, RecordBy], so nothing was
// written.
var ErrOutsideBookingDay = errors.New("outside the day the expiry is booked in")

// ExpireRequest asks to expire the lots of an account that are due.
type ExpireRequest struct {
	CallerID       string
	IdempotencyKey string
	// Account tracks lots (a member's points).
	Account string
	// Destination receives the expired points (the breakage account).
	Destination string
	// AsOf: every lot whose expiry is at or before it expires. It is the
	// transaction's effective time.
	AsOf     time.Time
	Metadata json.RawMessage
	// RecordAfter and RecordBy, when set, bound the expiry's recorded_at to
	// (RecordAfter, RecordBy]: the day of the books its as-of falls in. The
	// books count a transaction at recorded_at (package finance), so this
	// is what makes an expiry land on the day members were told their
	// points expire, however long the job runs; a write attempted outside
	// it fails with ErrOutsideBookingDay and writes nothing.
	RecordAfter, RecordBy time.Time
}

// expireSpec is an expiry as the group commit plays it.
type expireSpec struct {
	account, destination  string
	asOf                  time.Time
	recordAfter, recordBy time.Time
}

// outsideBookingDay says why an expiry may not be recorded at now, or nil.
func (e *expireSpec) outsideBookingDay(now time.Time) error {
	if (!e.recordAfter.IsZero() && !now.After(e.recordAfter)) || (!e.recordBy.IsZero() && now.After(e.recordBy)) {
		return fmt.Errorf("%w: recorded at %s, the day is (%s, %s]", ErrOutsideBookingDay,
			now.Format(time.RFC3339Nano), e.recordAfter.Format(time.RFC3339), e.recordBy.Format(time.RFC3339))
	}
	return nil
}

// Expire posts one transaction of kind KindExpiry that moves the points of
// the account's lots due at AsOf to Destination, drawing exactly those
// lots; points on hold are left until the hold ends. The amount is
// decided once the account is locked, so a redemption that spent the same
// points a moment before is never expired twice. No lot due is
// ErrNothingDue, and writes nothing. A retry with the same idempotency key
// returns the first transaction. It is ExpireMany of one request.
func (l *Ledger) Expire(ctx context.Context, req ExpireRequest) (Transaction, error) {
	results, err := l.ExpireMany(ctx, []ExpireRequest{req})
	if err != nil {
		return Transaction{}, err
	}
	return results[0].Transaction, results[0].Err
}

// MaxExpireBatch bounds ExpireMany.
const MaxExpireBatch = 1000

// ExpireResult is the outcome of one request of ExpireMany: its
// transaction, or its error (ErrNothingDue when no lot was due).
type ExpireResult struct {
	Transaction Transaction
	Err         error
}

// ExpireMany does what Expire does for many accounts (at most
// MaxExpireBatch), in one database transaction and one commit: the batch
// path of the expiry job. Each request keeps its own result. An invalid
// request fails the whole call before anything is written.
func (l *Ledger) ExpireMany(ctx context.Context, reqs []ExpireRequest) ([]ExpireResult, error) {
	if len(reqs) > MaxExpireBatch {
		return nil, invalid("requests", "at most %d, got %d", MaxExpireBatch, len(reqs))
	}
	// One lookup for the batch's accounts, which the jobs then find cached.
	codes := make([]string, 0, 2*len(reqs))
	for _, req := range reqs {
		codes = append(codes, req.Account, req.Destination)
	}
	if _, err := l.accountsByCode(ctx, codes); err != nil {
		return nil, err
	}
	jobs := make([]*postJob, len(reqs))
	for i, req := range reqs {
		job, err := l.expireJob(ctx, req)
		if err != nil {
			return nil, fmt.Errorf("expiry %d (%s): %w", i, req.Account, err)
		}
		jobs[i] = job
	}
	out := make([]ExpireResult, len(reqs))
	if len(jobs) == 0 {
		return out, nil
	}
	for i, r := range l.writeGroup(ctx, jobs) {
		out[i].Transaction, out[i].Err = l.expireResult(ctx, jobs[i], r)
	}
	return out, nil
}

// expireJob validates an expiry and makes it a job for the group commit.
func (l *Ledger) expireJob(ctx context.Context, req ExpireRequest) (*postJob, error) {
	if err := validateCaller(req.CallerID, req.IdempotencyKey); err != nil {
		return nil, err
	}
	if err := validateAccountCode("account", req.Account); err != nil {
		return nil, err
	}
	if err := validateAccountCode("destination", req.Destination); err != nil {
		return nil, err
	}
	if req.Account == req.Destination {
		return nil, invalid("destination", "must differ from account")
	}
	if err := validateTime("as_of", req.AsOf); err != nil {
		return nil, err
	}
	if !req.RecordAfter.IsZero() && !req.RecordBy.IsZero() && !req.RecordBy.After(req.RecordAfter) {
		return nil, invalid("record_by", "must be after record_after")
	}
	metadata, err := canonicalMetadata(req.Metadata)
	if err != nil {
		return nil, err
	}
	accounts, err := l.accountsByCode(ctx, []string{req.Account, req.Destination})
	if err != nil {
		return nil, err
	}
	if !accounts[req.Account].TracksLots {
		return nil, invalid("account", "%s does not track lots", req.Account)
	}
	asOf := dbTime(req.AsOf)
	hash := requestHash(opPost, struct {
		Expire      string    `json:"expire"`
		Destination string    `json:"destination"`
		AsOf        time.Time `json:"as_of"`
		Metadata    any       `json:"metadata"`
	}{req.Account, req.Destination, asOf, metadata})
	return &postJob{
		req:  PostRequest{CallerID: req.CallerID, IdempotencyKey: req.IdempotencyKey, Kind: KindExpiry, Metadata: metadata},
		hash: hash, metadata: metadata, effectiveAt: asOf, accounts: accounts,
		expire: &expireSpec{account: req.Account, destination: req.Destination, asOf: asOf,
			recordAfter: req.RecordAfter, recordBy: req.RecordBy},
	}, nil
}

func (l *Ledger) expireResult(ctx context.Context, job *postJob, r postResult) (Transaction, error) {
	if r.replay {
		return l.replayTransaction(ctx, job.req.CallerID, job.req.IdempotencyKey, opPost, job.hash)
	}
	if r.err != nil {
		return Transaction{}, fmt.Errorf("expire lots of %s: %w", job.expire.account, r.err)
	}
	return r.txn, nil
}

// expiryPostings move the points of the lots due to the destination; nil
// when none is due. Points on hold stay: they are promised to a guarantee,
// whose capture draws the due lot first; whatever of it the hold's release
// gives back expires at the next run.
func expiryPostings(e expireSpec, accounts map[string]Account, book map[string][]Lot, raw, held map[string]int64) []Posting {
	available := accounts[e.account].normal(raw[e.account]) - held[e.account]
	due := min(dueLots(book[e.account], e.asOf), available)
	if due <= 0 {
		return nil
	}
	amount := accounts[e.account].normal(-due) // raw, credit-positive
	return []Posting{{Account: e.account, Amount: amount}, {Account: e.destination, Amount: -amount}}
}

// Lots returns an account's open lots, nearest expiry first.
func (l *Ledger) Lots(ctx context.Context, code string) ([]Lot, error) {
	var raw []byte
	err := l.db.Pool.QueryRow(ctx, `SELECT lots FROM account_balances WHERE account_code = $1 AND shard = 0`, code).Scan(&raw)
	if isNoRows(err) {
		return nil, &UnknownAccountError{Account: code}
	}
	if err != nil {
		return nil, fmt.Errorf("read lots of %s: %w", code, err)
	}
	return decodeLots(code, raw)
}

// MaxDueAccountsPage bounds one page of DueAccounts.
const MaxDueAccountsPage = 10_000

// DueAccounts returns, in code order, up to limit accounts after the code
// after that have a lot due at asOf. It reads a few seconds back
// (StaleReadTx), without locks: Expire checks again under the account's
// lock, and a lot earned in those seconds is not due for months.
func (l *Ledger) DueAccounts(ctx context.Context, after string, asOf time.Time, limit int) ([]string, error) {
	if limit < 1 || limit > MaxDueAccountsPage {
		return nil, invalid("limit", "must be between 1 and %d, got %d", MaxDueAccountsPage, limit)
	}
	var codes []string
	err := l.db.StaleReadTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT account_code FROM account_balances
			WHERE account_code > $1 AND shard = 0 AND next_lot_expiry <= $2
			ORDER BY account_code LIMIT $3`, after, dbTime(asOf), limit)
		if err != nil {
			return err
		}
		codes, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find accounts with lots due: %w", err)
	}
	return codes, nil
}
