package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// progressEvery is the least time between two progress lines (tests
// shorten it).
var progressEvery = 2 * time.Second

// tiersReview runs the tier review job (members.Store.ReviewTiers) with the
// programme's default tier rules: a member due at -as-of who no longer
// qualifies goes down one tier, one who qualifies higher goes up. Each batch
// commits with its checkpoint, so an interrupted review resumes when run
// again with the same -as-of, and a finished one changes nothing again. An
// -as-of in the future is refused unless -allow-future-as-of is given: the
// review would date tier changes, and members' next reviews, in the future
// on the stays recorded so far.
func tiersReview(e env, args []string) int {
	const name = "tiers review"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	dbFlag := fs.String("database-url", "",
		"PostgreSQL or CockroachDB URL of loyaltyd's database (env LOYALTY_DATABASE_URL); required")
	asOfText := fs.String("as-of", "",
		"the review's time: "+dateHelp+"; required.\n"+
			"A run with the same -as-of resumes or repeats the same review")
	batch := fs.Int("batch", 1000,
		fmt.Sprintf("members per batch, each reviewed in one transaction with the checkpoint (1 to %d)", members.MaxReviewBatch))
	allowFuture := fs.Bool("allow-future-as-of", false,
		"review as of a time after now, for a rehearsal on a copy of the data (to see whom a coming review would move):\n"+
			"it decides on the stays recorded so far and dates the tier changes and the members' reviews at -as-of,\n"+
			"so the next real review at an earlier time finds them not due. Never on the live database")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: loyaltyctl tiers review -as-of TIME [-batch N] [-database-url URL] [-allow-future-as-of]

Reviews every member's tier as of -as-of: a member whose review date has
come (the anniversary of their tier, or of their last review) and who no
longer qualifies goes down one tier; one who qualifies higher goes up.
Members are reviewed in member-number order, in batches; each batch commits
with a checkpoint in the database, so after a crash or Ctrl-C the same
command resumes after the last finished batch, and once finished it changes
nothing when run again. Progress goes to stderr, the summary to stdout. It
never migrates the database: start loyaltyd once against it first.

The summary counts the members scanned, and of them those due (their review
date had come by -as-of), split into changed (the tier went down one step,
or up) and unchanged (due, and kept the tier: their next review is a year
on); the rest were not due. A member whose stays reach a higher tier goes
up at any review and counts as due and changed. A resumed review counts
the batches of the runs before it too.

An -as-of in the future is refused (exit status 2), as loyaltyctl expire
refuses one: the review would decide on the stays recorded so far and date
its tier changes in the future. -allow-future-as-of allows it, for a
rehearsal on a copy of the data.

SIGINT or SIGTERM stops after the current batch; a second one stops at once
(the batch in progress is rolled back).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	url, err := databaseURL(e, *dbFlag)
	if err != nil {
		return usageError(e, name, err)
	}
	if *asOfText == "" {
		return usageError(e, name, errors.New("-as-of is required, e.g. -as-of 2026-12-01"))
	}
	asOf, err := parseTimeOn(e, url, "as-of", *asOfText)
	if err != nil {
		return usageError(e, name, err)
	}
	if asOf.After(e.now()) && !*allowFuture {
		return usageError(e, name, fmt.Errorf("-as-of %s is in the future: a review decides on the stays recorded so far and dates its tier changes at -as-of; "+
			"give -allow-future-as-of to do it anyway (a rehearsal on a copy of the data)", asOf.Format(time.RFC3339Nano)))
	}
	if *batch < 1 || *batch > members.MaxReviewBatch {
		return usageError(e, name, fmt.Errorf("-batch %d: must be 1 to %d", *batch, members.MaxReviewBatch))
	}
	stderr := &lockedWriter{w: e.stderr} // the signal watcher writes too
	asOfFlag := asOf.Format(time.RFC3339Nano)

	ctx, stopping, cancel, stopWatching := watchSignals(e, stderr, "stopping now; the batch in progress is rolled back")
	defer stopWatching()

	db, err := openDatabase(ctx, e, url, database.Options{MaxConns: 2})
	if err != nil {
		fmt.Fprintf(stderr, "loyaltyctl %s: open the database: %v\n", name, err)
		return exitError
	}
	defer db.Close()
	if stopping() {
		fmt.Fprintf(stderr, "loyaltyctl: interrupted before the review started; nothing was changed\n")
		return exitError
	}
	conn := db.Pool.Config().ConnConfig
	fmt.Fprintf(stderr, "loyaltyctl: tier review as of %s in batches of %d, on %s database %q at %s\n",
		asOfFlag, *batch, db.Dialect.Engine, conn.Database, conn.Host)
	if asOf.After(e.now()) {
		fmt.Fprintf(stderr, "loyaltyctl: note: -as-of %s is in the future (-allow-future-as-of): members due by then are reviewed now, "+
			"on the stays recorded so far, and their tier changes are dated %s\n", asOfFlag, asOfFlag)
	}
	// Tier changes announce themselves, as loyaltyd's own writes do.
	l := ledger.New(db, ledger.Options{Clock: e.now, Outbox: events.OfTransaction})
	store := members.New(l, e.now)
	// The tier rules of the programme version in force at -as-of.
	version, err := programmes.New(l, e.now).At(ctx, asOf)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltyctl: %v (start loyaltyd once against this database: it publishes the default programme)\n", err)
		return exitError
	}

	interrupted := func(p members.ReviewProgress) int {
		fmt.Fprintf(stderr, "loyaltyctl: interrupted: %s at this -as-of so far, every finished batch saved.\n"+
			"Run the same command again (-as-of %s) to resume after member %q.\n", counts(p), asOfFlag, p.Cursor)
		return exitError
	}

	start := time.Now()
	var calls int
	var base int64 // members reviewed before this run; -1 unknown
	lastPrint := start
	final, err := store.ReviewTiers(ctx, tiers.FromProgramme(version.Programme), asOf, *batch, func(p members.ReviewProgress) {
		calls++
		if calls == 1 {
			base = reviewedBefore(p, *batch)
		}
		if stopping() {
			cancel() // the batch has committed; the next one does not start
		}
		if now := time.Now(); !p.Done && now.Sub(lastPrint) >= progressEvery {
			lastPrint = now
			fmt.Fprintf(stderr, "loyaltyctl: %s, %.0f members/s, after member %s\n",
				counts(p), perSecond(p.Processed-base, now.Sub(start)), p.Cursor)
		}
	})
	elapsed := time.Since(start)
	if err != nil {
		if stopping() && ctx.Err() != nil {
			return interrupted(final)
		}
		fmt.Fprintf(stderr, "loyaltyctl %s: %v\n", name, err)
		if calls > 0 {
			fmt.Fprintf(stderr, "loyaltyctl: %s at this -as-of so far, every finished batch saved: "+
				"the same command (-as-of %s) resumes after member %q\n", counts(final), asOfFlag, final.Cursor)
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42703") { // undefined table, column
			fmt.Fprintf(stderr, "hint: this database has no loyalty schema, or an older one; loyaltyctl never migrates:\n"+
				"start loyaltyd once with the same database URL to apply the migrations, then run this again\n")
		}
		return exitError
	}
	switch {
	case calls == 0:
		fmt.Fprintf(e.stdout, "the review as of %s had already finished: %s; nothing was changed now (a new review needs another -as-of)\n",
			asOfFlag, counts(final))
	case base < 0:
		fmt.Fprintf(e.stdout, "%s, in %s (this run resumed an earlier one and did its last batch)\n",
			counts(final), round(elapsed))
	default:
		fmt.Fprintf(e.stdout, "%s, in %s (%.0f members/s)\n",
			counts(final), round(elapsed), perSecond(final.Processed-base, elapsed))
		if base > 0 {
			fmt.Fprintf(stderr, "loyaltyctl: this run resumed an earlier one: %d of the members had been scanned by it\n", base)
		}
	}
	return exitOK
}

// counts says how many members a review scanned, found due, changed and
// left unchanged, and how many were not due.
func counts(p members.ReviewProgress) string {
	return fmt.Sprintf("%d members scanned: %d due (%d changed, %d unchanged), %d not due",
		p.Processed, p.Due(), p.Changed, p.Unchanged, p.NotDue())
}

// reviewedBefore is how many members earlier runs had reviewed, from the
// first progress of this run: a batch that is not the last one is full.
// A first batch that is also the last is this run's only one: if it holds
// all the members the run started afresh, else it is unknown (-1).
func reviewedBefore(first members.ReviewProgress, batch int) int64 {
	switch {
	case !first.Done:
		return first.Processed - int64(batch)
	case first.Processed <= int64(batch):
		return 0
	default:
		return -1
	}
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

func round(d time.Duration) time.Duration {
	if d > time.Minute {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
