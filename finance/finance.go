// Package finance is what finance reads to close a month and hand the books
// to auditors: the trial balance, the points liability roll-forward valued
// at the book value of a point, the reconciliation that proves the books,
// and the tamper-evident seals of closed days.
//
// Time basis. Every report counts a transaction at its recorded_at, the
// moment the ledger wrote it, exactly as ledger.BalanceAt does: a balance
// "as of T" is the sum of the postings recorded at or before T, and a period
// (from, to] holds the postings recorded after from and at or before to.
// A day is such a period, (D 00:00, D+1 00:00]: the page and loyaltyctl
// name days of the programme's time zone, where finance closes its books;
// the rollups and the seals are kept per UTC day, a storage grain, and a
// report over other days adds the raw postings of the partial UTC days at
// its edges.
//
// Expiries. The books date an expiry on the day of its as-of, the date
// members were told their points expire: the expiry job records it only
// while that day (in the programme's zone) lasts (expiry.BookingDay,
// enforced by the ledger), so its recorded_at, which every report, the
// trial balance and the seals count it at, falls on that day.
//
// Scale. Reports never load postings into Go: they are SQL aggregates. A job
// (RollUp) writes the per-day totals of every closed day to
// finance_daily_totals, off the write path; a report adds the totals of the
// closed days it spans to the SQL sum of the postings of the rest (the open
// tail after the last rolled-up day, and the partial days at its edges).
//
// Consistency. Every report reads one snapshot (database.SnapshotTx): its
// rollups, its raw postings and its stored balances all belong to the same
// moment, and no writer waits for it. On CockroachDB a report of a time at
// least database.SnapshotStaleness old reads that far back; a report of a
// more recent time reads the present, so that it includes what was written
// just before it was asked for, and says the time it read.
//
// Extending. A new report is a function over periodTotals (the sums of a
// period at the grain of the rollups, partner included) run in a snapshot:
// the partner settlement statement, for one, is the partner's issued and
// redeemed lines of a period priced at the partner's rates.
package finance

import (
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
)

// ClosedDayLag is how long after its end (midnight UTC) a day is closed: the
// rollup and seal jobs touch a day only once this has passed.
//
// Why it is safe: the ledger stamps recorded_at with its clock when a write
// attempt starts, inside the write's transaction, and the transaction
// becomes visible when it commits, a little later. A transaction recorded
// at or before midnight that is still invisible ten minutes after it would
// have had to run for ten minutes; the service's requests end after 30
// seconds (the HTTP server's write timeout) and a write is retried at most
// 12 times with backoff under 100ms. Ten minutes also covers clock skew of
// minutes between service instances. Should anything still land in a
// rolled-up or sealed day, Reconcile and VerifySeals name that day.
const ClosedDayLag = 10 * time.Minute

// endOfRecords bounds a period that takes every transaction a snapshot
// holds, whenever it was recorded.
var endOfRecords = time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC)

// MemberAggregate is the account code every member account is collapsed to
// in the rollups and the trial balance: the points liability in aggregate.
const MemberAggregate = "member:*"

// memberPrefix starts the code of every member account.
const memberPrefix = "member:"

// Options configure Reports.
type Options struct {
	// Clock is the time reports and jobs take as "now". Nil means time.Now.
	Clock func() time.Time
}

// Reports reads the finance reports of one database and runs their jobs.
type Reports struct {
	db       *database.DB
	ledger   *ledger.Ledger
	partners *partners.Store
	now      func() time.Time
}

// New returns the reports over l's database, whose schema must be migrated.
func New(l *ledger.Ledger, opts Options) *Reports {
	clock := opts.Clock
	if clock == nil {
		clock = time.Now
	}
	return &Reports{db: l.DB(), ledger: l, partners: partners.New(l, clock), now: clock}
}

func (r *Reports) clock() time.Time { return dbTime(r.now()) }

func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// floorDay is the UTC midnight at or before t.
func floorDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// ceilDay is the UTC midnight at or after t.
func ceilDay(t time.Time) time.Time {
	d := floorDay(t)
	if d.Equal(t) {
		return d
	}
	return d.AddDate(0, 0, 1)
}

// dayOf is the day whose period (D, D+1] holds a transaction recorded at t.
func dayOf(t time.Time) time.Time { return floorDay(t.Add(-time.Microsecond)) }

// closedUntil is the end of the last closed day at now: every day ending at
// or before it is closed.
func closedUntil(now time.Time) time.Time { return floorDay(now.Add(-ClosedDayLag)) }

func fmtDay(d time.Time) string { return d.Format(time.DateOnly) }

func fmtTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

func invalid(field, format string, args ...any) error {
	return &ledger.FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}
