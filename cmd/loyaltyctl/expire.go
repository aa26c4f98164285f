package main

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programmes"
)

// pointsExpire runs the expiry job (expiry.Job.Run): every member with
// lots due at -as-of gets one expiry transaction moving them to breakage.
// Each batch ends with a checkpoint, so an interrupted run resumes when run
// again with the same -as-of, and a finished one does nothing again.
func pointsExpire(e env, args []string) int {
	const name = "expire"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	dbFlag := fs.String("database-url", "",
		"PostgreSQL or CockroachDB URL of loyaltyd's database (env LOYALTY_DATABASE_URL); required")
	asOfText := fs.String("as-of", "",
		"expire the lots due at this time: "+dateHelp+"; today in the programme's time zone, not in the future.\n"+
			"Default: today's date, 00:00 in the programme's time zone, when points expire.\n"+
			"The books date an expiry on its as-of's day, so an earlier day is refused: today's run expires the points due before it too.\n"+
			"A run with the same -as-of resumes or repeats the same run")
	batch := fs.Int("batch", 1000, fmt.Sprintf("members per batch, each followed by a checkpoint (1 to %d)", expiry.MaxBatch))
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: loyaltyctl expire [-as-of DATE|TIME] [-batch N] [-database-url URL | -data-dir DIR]

Expires the points of every lot due at -as-of (default: 00:00 today in the
programme's time zone) under the programme's expiry rule: one expiry
transaction per member, moving the points to the breakage account and
recording the lots it expired. Finance books an expiry on the day of its
as-of, the date members were told, so -as-of must be today in the
programme's time zone; if the day ends during the run, the run stops and
the next day's run expires the rest. Members are taken in account
order, in batches, each followed by a checkpoint in the database: after a
crash or Ctrl-C the same command resumes, and once finished it does nothing
when run again (each expiry is idempotent too). Progress goes to stderr, the
summary to stdout. It never migrates the database.

SIGINT or SIGTERM stops after the current batch; a second one stops at once
(expiries already acknowledged stay; the rest are done by the next run).

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
	var asOf time.Time // zero: today's, once the programme's zone is read
	if *asOfText != "" {
		if asOf, err = parseTimeOn(e, url, "as-of", *asOfText); err != nil {
			return usageError(e, name, err)
		}
	}
	if asOf.After(e.now()) {
		return usageError(e, name, fmt.Errorf("-as-of %s is in the future: points expire only once their day has passed", asOf.Format(time.RFC3339)))
	}
	if *batch < 1 || *batch > expiry.MaxBatch {
		return usageError(e, name, fmt.Errorf("-batch %d: must be 1 to %d", *batch, expiry.MaxBatch))
	}
	stderr := &lockedWriter{w: e.stderr}
	ctx, stopping, cancel, stopWatching := watchSignals(e, stderr, "stopping now")
	defer stopWatching()

	db, err := openDatabase(ctx, e, url, database.Options{MaxConns: 8})
	if err != nil {
		fmt.Fprintf(stderr, "loyaltyctl %s: open the database: %v\n", name, err)
		return exitError
	}
	defer db.Close()
	// Expiries announce themselves, as loyaltyd's own writes do.
	l := ledger.New(db, ledger.Options{Clock: e.now, Outbox: events.OfTransaction})
	progs := programmes.New(l, e.now)
	job := expiry.New(l, progs, e.now)
	if asOf.IsZero() {
		if asOf, err = job.Today(ctx); err != nil {
			fmt.Fprintf(stderr, "loyaltyctl %s: today's as-of: %v\n", name, err)
			return exitError
		}
	}
	// Said in the programme's time zone, where points expire at 00:00.
	zone, err := programmeZone(ctx, progs, asOf)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltyctl %s: %v\n", name, err)
		return exitError
	}
	asOfFlag := asOf.In(zone).Format(time.RFC3339Nano)
	fmt.Fprintf(stderr, "loyaltyctl: points expiry as of %s (%s, the programme's time zone) in batches of %d, on %s\n",
		asOfFlag, zone, *batch, db.Dialect.Engine)
	start := time.Now()
	lastPrint := start
	calls := 0
	final, err := job.Run(ctx, asOf, *batch, func(p expiry.Progress) {
		calls++
		if stopping() {
			cancel()
		}
		if now := time.Now(); !p.Done && now.Sub(lastPrint) >= progressEvery {
			lastPrint = now
			fmt.Fprintf(stderr, "loyaltyctl: %d members due, %d expired, %d points, after %s\n", p.Processed, p.Expired, p.Points, p.Cursor)
		}
	})
	elapsed := time.Since(start)
	if err != nil {
		if stopping() && ctx.Err() != nil {
			fmt.Fprintf(stderr, "loyaltyctl: interrupted after %s; run the same command again (-as-of %s) to resume\n", final.Cursor, asOfFlag)
			return exitError
		}
		if fe := (*ledger.FieldError)(nil); errors.As(err, &fe) && fe.Field == "as_of" {
			return usageError(e, name, fmt.Errorf("-as-of %s %s", asOfFlag, fe.Problem))
		}
		fmt.Fprintf(stderr, "loyaltyctl %s: %v\n(the same command, -as-of %s, resumes after %q)\n", name, err, asOfFlag, final.Cursor)
		return exitError
	}
	if calls == 0 {
		fmt.Fprintf(e.stdout, "the expiry as of %s had already finished: %d members due, %d expired; nothing was done now\n",
			asOfFlag, final.Processed, final.Expired)
		return exitOK
	}
	fmt.Fprintf(e.stdout, "expired %d points of %d members (%d found due) in %s\n",
		final.Points, final.Expired, final.Processed, round(elapsed))
	return exitOK
}
