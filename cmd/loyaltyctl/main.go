// Command loyaltyctl is the operator's command line: jobs that work on the
// service's database directly, outside any API call.
//
//	loyaltyctl tiers review -as-of 2026-12-01 [-batch 1000] [-database-url URL | -data-dir DIR]
//	loyaltyctl expire [-as-of TODAY] [-batch 1000] [-database-url URL | -data-dir DIR]
//	loyaltyctl import stays [-url URL] [-key KEY] [-dry-run] [-batch 500] [-parallel 2] FILE
//	loyaltyctl partners create|suspend|reinstate|set-rates|add-property|get|list [flags]
//	loyaltyctl report trial-balance [-as-of T] [-members] [-o file.csv]
//	loyaltyctl report roll-forward -to T [-from T] [-group-by source|property|partner] [-o file.csv]
//	loyaltyctl point-value set -on 2027-01-01 -value 0.012 | point-value list
//	loyaltyctl reconcile | rollup | seal | verify-seals
//
// The partners commands call AdminService with an admin key, and import
// stays calls BookingService.RecordStays (or AllianceService.AwardStays
// with a partner's key), through the API (-url, -key or LOYALTY_URL,
// LOYALTY_KEY); the others work on the database: -database-url
// (LOYALTY_DATABASE_URL), or else the one an embedded-mode loyaltyd (make
// run) runs, found through its data directory (-data-dir, LOYALTY_DATA_DIR,
// default .data/postgres). It never migrates the database: loyaltyd does
// that when it starts, so loyaltyd must have been started once against the
// database first.
//
// A date flag given as a plain date (2026-12-01) means 00:00 that day in
// the programme's time zone (Asia/Shanghai by default), the zone in which
// points expire and the books close; an RFC 3339 time keeps its offset.
//
// Commands are a table of "command subcommand" pairs (tiers review; later
// report ..., expire ...) with a small dispatcher, no CLI framework. Exit
// codes: 0 done, 1 an error (or an interrupted job), 2 a usage error.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/internal/datadir"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, time.Now))
}

// env is what a subcommand gets from the process: its output, its
// environment, the calendar, and SIGINT/SIGTERM as they arrive (tests
// pass their own).
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// now is the time jobs and reports take as "now", and the clock of
	// the ledger they write with.
	now     func() time.Time
	signals <-chan os.Signal
}

// command is a group of subcommands: "tiers", "report", later "expire";
// or, with run, a command of its own ("reconcile").
type command struct {
	name, summary string
	subcommands   []subcommand
	run           func(e env, args []string) int
}

// subcommand is one job; run gets the arguments after its name and returns
// the exit code.
type subcommand struct {
	name, summary string
	run           func(e env, args []string) int
}

// commands lists everything loyaltyctl does. A new command is a new entry.
var commands = []command{
	{name: "tiers", summary: "members' tiers", subcommands: []subcommand{
		{name: "review", summary: "review every member due at -as-of: anniversary downgrades, resumable", run: tiersReview},
	}},
	{name: "expire", summary: "expire every lot due at -as-of into breakage (resumable)", run: pointsExpire},
	{name: "partners", summary: "the alliance's partners, through AdminService", subcommands: partnerSubcommands},
	{name: "report", summary: "finance reports as CSV", subcommands: []subcommand{
		{name: "trial-balance", summary: "every account's balance as of a time; the total is zero", run: reportTrialBalance},
		{name: "roll-forward", summary: "the points liability over a period, in points and money", run: reportRollForward},
		{name: "partner-statements", summary: "each partner's settlement for a period, tied to the roll-forward", run: reportPartnerStatements},
	}},
	{name: "point-value", summary: "the book value of a point, versioned by date", subcommands: []subcommand{
		{name: "set", summary: "add a version from a date on", run: pointValueSet},
		{name: "list", summary: "every version as CSV", run: pointValueList},
	}},
	{name: "reconcile", summary: "prove the books; exit 1 on any discrepancy", run: reconcile},
	{name: "rollup", summary: "roll up the closed days not rolled up yet (resumable)",
		run: job("rollup", "Writes the per-day totals of every closed day not rolled up yet: what reports read.", (*finance.Reports).RollUp)},
	{name: "seal", summary: "seal the closed days not sealed yet (resumable)",
		run: job("seal", "Seals every closed day not sealed yet: a hash of its transactions chained to the previous day's.", (*finance.Reports).SealDays)},
	{name: "verify-seals", summary: "recompute the seals; name the first day that changed", run: verifySeals},
}

// run is the whole program on the clock now; it returns the exit code.
func run(args []string, stdout, stderr io.Writer, now func() time.Time) int {
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(signals)
	return dispatch(env{stdout: stdout, stderr: stderr, getenv: os.Getenv, now: now, signals: signals}, args)
}

// dispatch finds the command and subcommand named by args and runs it.
func dispatch(e env, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage())
		return exitUsage
	}
	if isHelp(args[0]) {
		fmt.Fprint(e.stdout, usage())
		return exitOK
	}
	cmd, ok := findCommand(args[0])
	if !ok {
		fmt.Fprintf(e.stderr, "loyaltyctl: unknown command %q\n\n%s", args[0], usage())
		return exitUsage
	}
	if cmd.run != nil {
		return cmd.run(e, args[1:])
	}
	if len(args) == 1 {
		fmt.Fprintf(e.stderr, "loyaltyctl %s: a subcommand is required\n\n%s", cmd.name, cmd.usage())
		return exitUsage
	}
	if isHelp(args[1]) {
		fmt.Fprint(e.stdout, cmd.usage())
		return exitOK
	}
	for _, sub := range cmd.subcommands {
		if sub.name == args[1] {
			return sub.run(e, args[2:])
		}
	}
	fmt.Fprintf(e.stderr, "loyaltyctl %s: unknown subcommand %q\n\n%s", cmd.name, args[1], cmd.usage())
	return exitUsage
}

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func usage() string {
	var b strings.Builder
	b.WriteString(`Usage: loyaltyctl <command> <subcommand> [flags]

The loyalty programme's operator commands. They work on the service's
database directly and never migrate it: start loyaltyd once against a
database before using it here. Without -database-url (LOYALTY_DATABASE_URL)
they use the database of the loyaltyd running in embedded mode (make run)
on -data-dir (LOYALTY_DATA_DIR, default .data/postgres). A plain date
(2026-12-01) is 00:00 that day in the programme's time zone.

Commands:
`)
	for _, c := range commands {
		if c.run != nil {
			fmt.Fprintf(&b, "  %-26s %s\n", c.name, c.summary)
		}
		for _, s := range c.subcommands {
			fmt.Fprintf(&b, "  %-26s %s\n", c.name+" "+s.name, s.summary)
		}
	}
	b.WriteString(`
'loyaltyctl <command> -h' lists a command's subcommands; 'loyaltyctl <command>
<subcommand> -h' its flags. Exit codes: 0 done, 1 error or interrupted, 2 usage.
`)
	return b.String()
}

func (c command) usage() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage: loyaltyctl %s <subcommand> [flags]\n\nSubcommands of %s (%s):\n", c.name, c.name, c.summary)
	for _, s := range c.subcommands {
		fmt.Fprintf(&b, "  %-14s %s\n", s.name, s.summary)
	}
	fmt.Fprintf(&b, "\n'loyaltyctl %s <subcommand> -h' lists its flags.\n", c.name)
	return b.String()
}

// parseFlags parses a subcommand's flags. -h prints the usage to stdout
// and returns flag.ErrHelp; a bad flag prints the message and the usage to
// stderr.
//
// A subcommand that works on the database (it has -database-url) gets
// -data-dir here too, so that every such command finds make run's database
// the same way: given no database URL, parseFlags sets -database-url to the
// one the embedded loyaltyd left in its data directory, or says what to do
// when there is none.
func parseFlags(e env, fs *flag.FlagSet, args []string) error {
	var dataDir *string
	if f := fs.Lookup("database-url"); f != nil && fs.Lookup("data-dir") == nil {
		f.Usage = "PostgreSQL or CockroachDB URL of loyaltyd's database (env LOYALTY_DATABASE_URL); " +
			"default: the database of the loyaltyd running in embedded mode on -data-dir (make run)"
		dataDir = fs.String("data-dir", "", fmt.Sprintf("data directory of a loyaltyd in embedded mode (make run), whose %s file "+
			"names its database; read when no database URL is given (env LOYALTY_DATA_DIR, default %s)", datadir.URLFile, datadir.Default))
	}
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		e.stdout.Write(out.Bytes())
	case err != nil:
		e.stderr.Write(out.Bytes())
		err = &flagParseError{err}
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments: %q", fs.Args())
	case dataDir != nil:
		err = embeddedDatabase(e, fs, *dataDir)
	}
	fs.SetOutput(e.stderr)
	return err
}

// embeddedDatabase sets fs's empty -database-url, when LOYALTY_DATABASE_URL
// is empty too, to the connection string in the data directory dir (else
// LOYALTY_DATA_DIR, else the default), which loyaltyd writes there while it
// runs in embedded mode.
func embeddedDatabase(e env, fs *flag.FlagSet, dir string) error {
	if fs.Lookup("database-url").Value.String() != "" || e.getenv("LOYALTY_DATABASE_URL") != "" {
		return nil
	}
	if dir == "" {
		dir = e.getenv("LOYALTY_DATA_DIR")
	}
	if dir == "" {
		dir = datadir.Default
	}
	url, err := datadir.ReadURL(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("no database: none was given (-database-url or LOYALTY_DATABASE_URL), and no loyaltyd runs in embedded mode on %s (it has no %s file): "+
			"start loyaltyd (make run) or give -database-url", dir, datadir.URLFile)
	}
	if err != nil {
		return err
	}
	// A killed loyaltyd leaves its file behind, naming a socket directory
	// that went with its PostgreSQL: say so, rather than a dial error.
	if cfg, err := pgconn.ParseConfig(url); err == nil && strings.HasPrefix(cfg.Host, "/") {
		if _, err := os.Stat(cfg.Host); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("no database: no loyaltyd runs in embedded mode on %s (its %s file is left from one that was killed, and names a socket that is gone): "+
				"start loyaltyd (make run) or give -database-url", dir, datadir.URLFile)
		}
	}
	return fs.Set("database-url", url)
}

// usageError reports a usage error of the named subcommand and returns 2.
func usageError(e env, name string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	var parse *flagParseError
	var zone *zoneError
	switch {
	case errors.As(err, &zone):
		// The flag was right; the database could not say what it means.
		return failed(e, name, err)
	case !errors.As(err, &parse):
		fmt.Fprintf(e.stderr, "loyaltyctl %s: %v (see loyaltyctl %s -h)\n", name, err, name)
	}
	return exitUsage
}

// failed reports an error of the named subcommand and returns 1.
func failed(e env, name string, err error) int {
	fmt.Fprintf(e.stderr, "loyaltyctl %s: %v\n", name, err)
	return exitError
}

// databaseURL is the database a subcommand works on: its -database-url
// flag (which parseFlags sets from -data-dir), else LOYALTY_DATABASE_URL.
func databaseURL(e env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if url := e.getenv("LOYALTY_DATABASE_URL"); url != "" {
		return url, nil
	}
	return "", errors.New("a database is required: start loyaltyd (make run) or give -database-url (or set LOYALTY_DATABASE_URL to the URL loyaltyd uses)")
}

// The rule of every date flag: a plain date is 00:00 that day in the
// programme's time zone, an RFC 3339 time the instant it names.
const (
	dateHelp    = "a date (2026-12-01: 00:00 that day in the programme's time zone, Asia/Shanghai by default) or an RFC 3339 time with its offset (2026-12-01T00:00:00+08:00)"
	dateExample = "a date like 2026-12-01 (00:00 in the programme's time zone) or an RFC 3339 time with an offset like 2026-12-01T00:00:00+08:00"
)

// parseTime reads the date or time flag named flagName. An RFC 3339 time
// is the instant it names, in its own offset. A plain date (YYYY-MM-DD) is
// 00:00 that day in the time zone zone returns for it (the programme's),
// called only for a plain date; its error is returned as a *zoneError.
// Anything else is refused, naming the flag.
func parseTime(flagName, text string, zone func(day time.Time) (*time.Location, error)) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, text); err == nil {
		return t, nil
	}
	day, err := time.Parse(time.DateOnly, text)
	if err != nil {
		return time.Time{}, fmt.Errorf("-%s %q: give %s", flagName, text, dateExample)
	}
	loc, err := zone(day)
	if err != nil {
		return time.Time{}, &zoneError{fmt.Errorf("-%s %s: the programme's time zone: %w", flagName, text, err)}
	}
	return time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, loc), nil
}

// zoneError is a failure to learn the programme's time zone: the flag was
// well formed, so it is not a usage error.
type zoneError struct{ error }

func (z *zoneError) Unwrap() error { return z.error }

// parseTimeOn is parseTime for a command that works on the database at url:
// a plain date is read in the time zone of the programme version in force
// that day (at its 00:00 UTC; a version that changes the zone applies from
// the next day on), read from that database the way the jobs read it.
func parseTimeOn(e env, url, flagName, text string) (time.Time, error) {
	return parseTime(flagName, text, func(day time.Time) (*time.Location, error) {
		ctx, cancel := context.WithTimeout(context.Background(), zoneTimeout)
		defer cancel()
		db, err := openDatabase(ctx, e, url, database.Options{MaxConns: 1})
		if err != nil {
			return nil, fmt.Errorf("open the database: %w", err)
		}
		defer db.Close()
		return programmeZone(ctx, programmes.New(ledger.New(db, ledger.Options{Clock: e.now}), e.now), day)
	})
}

// connectTimeout bounds connecting to the database: one that does not
// answer is named within it, not after the driver's own minutes.
const connectTimeout = 15 * time.Second

// openDatabase connects to the database at url, within connectTimeout;
// SIGINT or SIGTERM meanwhile gives up at once.
func openDatabase(ctx context.Context, e env, url string, opts database.Options) (*database.DB, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	var interrupted atomic.Bool
	opened := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case sig := <-e.signals:
			interrupted.Store(true)
			fmt.Fprintf(e.stderr, "loyaltyctl: %v: no longer waiting for the database\n", sig)
			cancel()
		case <-opened:
		}
	})
	db, err := database.Open(ctx, url, opts)
	close(opened)
	watcher.Wait()
	switch {
	case err == nil:
		return db, nil
	case interrupted.Load():
		return nil, errors.New("interrupted while connecting")
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return nil, fmt.Errorf("the database did not answer within %s: is it running, and is the URL right? (%w)", connectTimeout, err)
	}
	return nil, err
}

// zoneTimeout bounds the look-up of the programme's time zone.
const zoneTimeout = 30 * time.Second

// programmeZone is the time zone of the programme version in force at t.
// A database with the schema but no version yet (loyaltyd publishes the
// shipped programme on its first start) has the shipped programme's.
func programmeZone(ctx context.Context, progs *programmes.Store, t time.Time) (*time.Location, error) {
	v, err := progs.At(ctx, t)
	if errors.Is(err, programmes.ErrNoVersion) {
		return time.LoadLocation(programme.Default().TimeZone)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && (pgErr.Code == "42P01" || pgErr.Code == "42703") { // undefined table, column
		return nil, fmt.Errorf("%w (this database has no loyalty schema, or an older one; loyaltyctl never migrates: "+
			"start loyaltyd once with the same database URL to apply the migrations)", err)
	}
	if err != nil {
		return nil, err
	}
	return v.Location, nil
}

// flagParseError is an error the flag package has printed already.
type flagParseError struct{ error }

// watchSignals lets a batch job be stopped cleanly: the first SIGINT or
// SIGTERM asks it to stop after the current batch (stopping reports it;
// the job cancels ctx once the batch is saved), a second cancels ctx at
// once (atNextSignal says what that means for the job). stop ends the
// watcher, so that nothing is written to stderr once the command returns.
func watchSignals(e env, stderr io.Writer, atNextSignal string) (ctx context.Context, stopping func() bool, cancel context.CancelFunc, stop func()) {
	ctx, cancel = context.WithCancel(context.Background())
	var asked atomic.Bool
	finished := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		select {
		case sig := <-e.signals:
			fmt.Fprintf(stderr, "loyaltyctl: %v: stopping after the current batch (send it again to stop at once)\n", sig)
			asked.Store(true)
		case <-finished:
			return
		}
		select {
		case sig := <-e.signals:
			fmt.Fprintf(stderr, "loyaltyctl: %v again: %s\n", sig, atNextSignal)
			cancel()
		case <-finished:
		}
	})
	return ctx, asked.Load, cancel, func() {
		close(finished)
		watcher.Wait()
		cancel()
	}
}
