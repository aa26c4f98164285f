// Package expiry runs the points expiry: it finds the members whose point
// lots are due and posts one expiry transaction for each, moving the
// expired points to the breakage account, where finance counts them.
//
// It is a batch job, off the booking path: members are taken in account
// order, a batch at a time, and each batch ends with a checkpoint, so a run
// that stops resumes where it was when started again with the same as-of
// time, and a finished run does nothing. Each expiry is also idempotent by
// its own key, and the ledger decides the points under the member's lock,
// so an expiry never takes points a redemption spent a moment before.
package expiry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

// CallerID is who the ledger records as the writer of expiries.
const CallerID = "expiry-job"

// MaxBatch bounds the members of one batch, all expired in one database
// transaction.
const MaxBatch = ledger.MaxExpireBatch

// Progress is reported after every batch.
type Progress struct {
	AsOf time.Time
	// Processed is the members found due so far, Expired those that had
	// points expire (the others spent them first), Points the points
	// expired.
	Processed, Expired, Points int64
	Cursor                     string // the last account processed
	Done                       bool
}

// Job expires points.
type Job struct {
	ledger     *ledger.Ledger
	programmes *programmes.Store
	now        func() time.Time
}

// New returns the job; clock nil means time.Now.
func New(l *ledger.Ledger, p *programmes.Store, clock func() time.Time) *Job {
	if clock == nil {
		clock = time.Now
	}
	return &Job{ledger: l, programmes: p, now: clock}
}

// Run expires every lot due at asOf, batchSize members at a time.
func (j *Job) Run(ctx context.Context, asOf time.Time, batchSize int, progress func(Progress)) (Progress, error) {
	if batchSize < 1 || batchSize > MaxBatch {
		return Progress{}, fmt.Errorf("expiry batch size %d: must be 1 to %d", batchSize, MaxBatch)
	}
	asOf = asOf.UTC().Truncate(time.Microsecond)
	if asOf.After(j.now()) {
		return Progress{}, &ledger.FieldError{Field: "as_of", Problem: "must not be in the future: points expire when their day has passed"}
	}
	v, err := j.programmes.At(ctx, asOf)
	if err != nil {
		return Progress{}, err
	}
	day := BookingDayOf(asOf, v.Location)
	if now := j.now(); now.After(day.End) || !now.After(day.Start) {
		return Progress{}, &ledger.FieldError{Field: "as_of", Problem: fmt.Sprintf(
			"must be today (%s, the programme's time zone): the books date an expiry on its as-of's day, %s, which is not the day now; "+
				"run it as of today, and the points due earlier expire too",
			now.In(v.Location).Format(time.DateOnly)+" in "+v.Location.String(), day.Date)}
	}
	metadata := expiryMetadata(v)
	name := "expiry:" + asOf.Format(time.RFC3339Nano)
	db := j.ledger.DB()
	p := Progress{AsOf: asOf}
	err = db.Pool.QueryRow(ctx, `SELECT cursor, done, processed, changed, amount FROM job_checkpoints WHERE job = $1`, name).
		Scan(&p.Cursor, &p.Done, &p.Processed, &p.Expired, &p.Points)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return p, fmt.Errorf("read checkpoint of %s: %w", name, err)
	}
	for !p.Done {
		due, err := j.ledger.DueAccounts(ctx, p.Cursor, asOf, batchSize)
		if err != nil {
			return p, err
		}
		expired, points, err := j.expireAll(ctx, due, asOf, day, metadata)
		if err != nil {
			return p, fmt.Errorf("expire points at %s after %q: %w", asOf.Format(time.RFC3339), p.Cursor, err)
		}
		next := p
		next.Processed += int64(len(due))
		next.Expired += expired
		next.Points += points
		if len(due) > 0 {
			next.Cursor = due[len(due)-1]
		}
		next.Done = len(due) < batchSize
		if _, err := db.Pool.Exec(ctx, `INSERT INTO job_checkpoints (job, cursor, done, processed, changed, amount, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (job) DO UPDATE SET cursor = excluded.cursor, done = excluded.done,
				processed = excluded.processed, changed = excluded.changed, amount = excluded.amount, updated_at = excluded.updated_at`,
			name, next.Cursor, next.Done, next.Processed, next.Expired, next.Points, j.now().UTC()); err != nil {
			return p, fmt.Errorf("save checkpoint of %s: %w", name, err)
		}
		p = next
		if progress != nil {
			progress(p)
		}
	}
	return p, nil
}

// BookingDay is the day of the books an expiry belongs to: the programme's
// calendar day of its as-of, as finance counts a day, (Start, End] by
// recorded_at. Members are told their points expire on a date; the job
// records an expiry as of that date only while that day lasts, so the
// roll-forward of the day shows it, and the trial balance and the seals,
// which count by recorded_at too, agree.
type BookingDay struct {
	Date       string // YYYY-MM-DD in the programme's time zone
	Start, End time.Time
}

// BookingDayOf is the booking day of an expiry as of asOf, in zone.
func BookingDayOf(asOf time.Time, zone *time.Location) BookingDay {
	local := asOf.In(zone)
	start := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, zone)
	return BookingDay{Date: start.Format(time.DateOnly), Start: start.UTC(), End: start.AddDate(0, 0, 1).UTC()}
}

// Today is the as-of of today's expiry: 00:00 today in the programme's
// time zone, when the points due today fell due (and with them any due
// earlier that a missed run left).
func (j *Job) Today(ctx context.Context) (time.Time, error) {
	now := j.now()
	v, err := j.programmes.At(ctx, now)
	if err != nil {
		return time.Time{}, err
	}
	return BookingDayOf(now, v.Location).Start, nil
}

// writers is how many database transactions a batch is split over, written
// at once: one keeps a single database core busy.
const writers = 2

// expireAll posts the expiries of a batch, split over writers database
// transactions written at once, and returns how many expired and how many
// points.
func (j *Job) expireAll(ctx context.Context, accounts []string, asOf time.Time, day BookingDay, metadata func(member string) json.RawMessage) (int64, int64, error) {
	var expired, points int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	size := (len(accounts) + writers - 1) / writers
	for chunk := range slices.Chunk(accounts, max(size, 1)) {
		wg.Go(func() {
			e, p, err := j.expireChunk(ctx, chunk, asOf, day, metadata)
			mu.Lock()
			defer mu.Unlock()
			expired, points = expired+e, points+p
			if err != nil && firstErr == nil {
				firstErr = err
			}
		})
	}
	wg.Wait()
	return expired, points, firstErr
}

// expireChunk posts the expiries of part of a batch in one database
// transaction.
func (j *Job) expireChunk(ctx context.Context, accounts []string, asOf time.Time, day BookingDay, metadata func(member string) json.RawMessage) (int64, int64, error) {
	reqs := make([]ledger.ExpireRequest, len(accounts))
	for i, account := range accounts {
		reqs[i] = ledger.ExpireRequest{
			CallerID: CallerID, IdempotencyKey: "expiry:" + asOf.Format(time.RFC3339Nano) + ":" + memberNumberOf(account),
			Account: account, Destination: programme.AccountBreakage, AsOf: asOf,
			Metadata:    metadata(memberNumberOf(account)),
			RecordAfter: day.Start, RecordBy: day.End,
		}
	}
	results, err := j.ledger.ExpireMany(ctx, reqs)
	if err != nil {
		return 0, 0, err
	}
	var expired, points int64
	for _, r := range results {
		switch {
		case errors.Is(r.Err, ledger.ErrNothingDue): // spent or extended since the scan
		case errors.Is(r.Err, ledger.ErrOutsideBookingDay):
			return 0, 0, fmt.Errorf("%w: the day of the as-of, %s, ended during the run; run the job again as of today, "+
				"and the members left expire then", r.Err, day.Date)
		case r.Err != nil:
			return 0, 0, r.Err
		default:
			expired++
			for _, m := range r.Transaction.Lots {
				points -= m.Points
			}
		}
	}
	return expired, points, nil
}

// memberNumberOf is the member of a points account: every account with
// lots is a member's.
func memberNumberOf(account string) string {
	number, _ := programme.MemberOfAccount(account)
	return number
}

// expiryMetadata explains an expiry the way the service explains every
// transaction (kind, member, description, the rules' version); the lots it
// expired are the transaction's own lot moves.
func expiryMetadata(v programmes.Version) func(member string) json.RawMessage {
	rule := v.Programme.Expiry
	description := fmt.Sprintf("Points expired: %d months without earning or redeeming", rule.Months)
	if rule.Rule == programme.ExpiryLotAge {
		description = fmt.Sprintf("Points expired %d months after they were earned", rule.Months)
	}
	return func(member string) json.RawMessage {
		b, err := json.Marshal(struct {
			Kind             string `json:"kind"`
			Member           string `json:"member_number"`
			Description      string `json:"description"`
			ProgrammeVersion int    `json:"programme_version"`
		}{"expiry", member, description, v.Number})
		if err != nil {
			panic(fmt.Sprintf("expiry: encode metadata: %v", err)) // plain strings
		}
		return b
	}
}
