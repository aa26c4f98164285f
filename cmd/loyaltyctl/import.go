package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/loyalty-ledger/loyalty/stayimport"
)

// The import command sends a file of stays to the service's batch RPCs
// (stayimport), with an API key: it works through the API like any
// client, not on the database.
func init() {
	commands = append(commands, command{name: "import", summary: "import files through the API", subcommands: []subcommand{
		{name: "stays", summary: "import a CSV or JSON Lines file of completed stays (resumable; -dry-run)", run: importStays},
	}})
}

// importProgressEvery is the least time between two progress lines when
// stderr is not a terminal (tests shorten it); on a terminal the line is
// rewritten at most every terminalRefresh.
var importProgressEvery = 5 * time.Second

const terminalRefresh = 200 * time.Millisecond

// resultColumns are the result file's columns.
var resultColumns = []string{"row", "status", "transaction_id", "points", "tier", "code", "field", "error", "booked_at"}

func importStays(e env, args []string) int {
	const name = "import stays"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	url := fs.String("url", "", "the service's URL (env LOYALTY_URL), as loyaltyd's banner prints it, e.g. http://127.0.0.1:8080")
	key := fs.String("key", "", "an API key (env LOYALTY_KEY): booking-channel or admin for RecordStays, a partner's for AwardStays")
	format := fs.String("format", "", "csv or jsonl (default: by the file's extension: .jsonl, .ndjson and .json are JSON Lines, anything else CSV)")
	batch := fs.Int("batch", stayimport.DefaultBatchSize, fmt.Sprintf("stays per call (1 to %d)", stayimport.MaxBatchSize))
	parallel := fs.Int("parallel", stayimport.DefaultParallel, fmt.Sprintf("calls in flight (1 to %d)", stayimport.MaxParallel))
	api := fs.String("api", "auto", "booking (RecordStays), alliance (AwardStays, a partner's key), or auto: RecordStays, "+
		"and AwardStays from the first answer on if the service answers PERMISSION_DENIED (a partner's key)")
	dryRun := fs.Bool("dry-run", false, "validate every row and compute the points it would earn, writing nothing (status would_record)")
	results := fs.String("results", "", "the result file (default FILE.results.csv); written as results arrive, replaced by each run that has one")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: loyaltyctl import stays [-url URL] [-key KEY] [-format csv|jsonl] [-batch N] [-parallel N] [-api auto|booking|alliance] [-dry-run] [-results PATH] FILE

Imports a file of completed stays through the service's API: RecordStays
(a booking-channel or admin key), or AwardStays with a partner's key (the
service answers PERMISSION_DENIED to a partner's key on BookingService;
-api auto, the default, then sends every batch to AwardStays). Each stay is
recorded exactly as RecordStay (AwardStay) records it.

The file: CSV with a header line, or JSON Lines (one object per line) with
the same names as keys. Columns (unknown ones are refused):
  property_id, stay_id, member_number     required
  arrival_date, departure_date            YYYY-MM-DD, local to the hotel; required
  room_charges                            the nights' charges, separated by ';' (388.00;388.00)
  room_charge, nights                     or one charge for every night, and the number of nights
  currency_code                           required: the programme's currency (CNY)
  channel                                 %s (any case; required with a chain key)
  booked_for_other                        true or false (optional)
  unbooked_extension_nights               how many of the last nights were unbooked extensions (optional)
  booked_at                               RFC 3339 (optional): checked, written to the result file only;
                                          the service does not use it for points
  family_name                             the member's family name: required with a partner's key
Example:
  property_id,stay_id,member_number,arrival_date,departure_date,room_charges,currency_code,channel
  SH-HQ-001,B-1001,1234567890,2026-11-01,2026-11-03,388.00;388.00,CNY,APP

The result file (FILE.results.csv), in the file's order, one line per
stay: row (its line in the file; the header is line 1), status
(recorded, already_recorded, refused; would_record in a dry run),
transaction_id, points, tier (after the stay), code, field (the column)
and error for a refusal, booked_at. A row that
cannot be read is refused without being sent. At the end a summary:
rows, recorded, already recorded, refused by reason, rows/s.

Resume: each stay's idempotency key comes from its line, its booking and
its content, so running the same command again records nothing twice:
rows recorded before answer recorded again (with their first transaction),
the rest are recorded. A booking already recorded under another key (the
same booking on another line, an edited row, a stay recorded by the
hotel's own system) answers already_recorded: a booking counts once.

Order: a member's stays are recorded in the file's order; sort a history
by departure date. Each stay is computed as of its check-out (the
programme version in force then).

-dry-run: the service validates every row and computes the points it would
earn, with the programme version in force at the stay's check-out, and
writes nothing; rows answer would_record (with points and tier, no
transaction id), refused or already_recorded (a booking that has an
outcome, even one this file recorded). Each row is computed on the member
as they stand: a dry run cannot see the effects of the file's earlier rows
of the same member (a first-stay bonus, an upgrade), as nothing is written.
booked_at is never used for points.

SIGINT or SIGTERM stops after the batches in flight and says how to
resume; a second one stops at once.

Exit status: 0 every row recorded or already recorded, 1 a row refused or
the import stopped, 2 a usage error.

Flags:
`, strings.Join(stayimport.ChannelNames(), ", "))
		fs.PrintDefaults()
	}
	flags, files := splitFile(fs, args)
	if err := parseFlags(e, fs, flags); err != nil {
		return usageError(e, name, err)
	}
	if len(files) != 1 {
		return usageError(e, name, fmt.Errorf("one file to import is required, got %d: loyaltyctl import stays [flags] FILE", len(files)))
	}
	path := files[0]
	if *url == "" {
		*url = e.getenv("LOYALTY_URL")
	}
	if *key == "" {
		*key = e.getenv("LOYALTY_KEY")
	}
	if *url == "" || *key == "" {
		return usageError(e, name, errors.New("-url and -key (or LOYALTY_URL and LOYALTY_KEY) are required: loyaltyd's banner prints both"))
	}
	opts := stayimport.Options{Path: path, Format: stayimport.Format(*format), BaseURL: *url, APIKey: *key,
		BatchSize: *batch, Parallel: *parallel, DryRun: *dryRun}
	switch *format {
	case "", "csv", "jsonl":
	default:
		return usageError(e, name, fmt.Errorf("-format %q: csv or jsonl", *format))
	}
	switch *api {
	case "auto":
	case "booking", "alliance":
		opts.API = stayimport.API(*api)
	default:
		return usageError(e, name, fmt.Errorf("-api %q: auto, booking or alliance", *api))
	}
	if *batch < 1 || *batch > stayimport.MaxBatchSize {
		return usageError(e, name, fmt.Errorf("-batch %d: must be 1 to %d", *batch, stayimport.MaxBatchSize))
	}
	if *parallel < 1 || *parallel > stayimport.MaxParallel {
		return usageError(e, name, fmt.Errorf("-parallel %d: must be 1 to %d", *parallel, stayimport.MaxParallel))
	}
	if _, err := os.Stat(path); err != nil {
		return usageError(e, name, err)
	}
	if *results == "" {
		*results = path + ".results.csv"
	}
	return runImport(e, name, opts, *results)
}

// splitFile separates the file from the flags, wherever it is among them
// (the flag package stops at the first argument that is not a flag).
func splitFile(fs *flag.FlagSet, args []string) (flags, files []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(files, args[i+1:]...)
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			files = append(files, a)
			continue
		}
		flags = append(flags, a)
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		f := fs.Lookup(name)
		if f == nil || hasValue {
			continue // the flag package reports an unknown flag
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) { // the flag's value
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, files
}

// runImport imports with opts, writing the results to resultsPath.
func runImport(e env, name string, opts stayimport.Options, resultsPath string) int {
	stderr := &lockedWriter{w: e.stderr} // the signal watcher writes too
	// The results go to a file of their own until the first one comes: a
	// run that fails before any (a wrong key, the service down) leaves the
	// last run's results as they were.
	partialPath := resultsPath + ".partial"
	out, err := os.Create(partialPath)
	if err != nil {
		return failed(e, name, fmt.Errorf("the result file: %w", err))
	}
	placed := false
	place := func() error {
		if placed {
			return nil
		}
		placed = true
		return os.Rename(partialPath, resultsPath)
	}
	defer func() {
		out.Close()
		if !placed {
			_ = os.Remove(partialPath)
		}
	}()
	w := csv.NewWriter(out)
	_ = w.Write(resultColumns)

	ctx, stopping, _, stopWatching := watchSignals(e, stderr,
		"stopping now: the batches in flight are abandoned (the service records or refuses each whole); run the same command again to resume")
	defer stopWatching()

	progress := newProgressLine(e.stderr, stderr)
	var lastLine int
	opts.Stopping = stopping
	opts.Result = func(r stayimport.Result) error {
		if err := place(); err != nil {
			return fmt.Errorf("the result file: %w", err)
		}
		lastLine = r.Line
		points := ""
		if r.Status == stayimport.StatusRecorded || r.Status == stayimport.StatusWouldRecord {
			points = strconv.FormatInt(r.Points, 10)
		}
		return w.Write([]string{strconv.Itoa(r.Line), string(r.Status), r.TransactionID, points, r.Tier, r.Code, r.Field, r.Message, r.BookedAt})
	}
	opts.Progress = func(p stayimport.Progress) {
		// Every batch reaches the file: a run stopped now has its results.
		w.Flush()
		progress.show(p)
	}
	mode := "import"
	if opts.DryRun {
		mode = "dry run (nothing is written)"
	}
	fmt.Fprintf(stderr, "loyaltyctl: %s of %s to %s, results in %s\n", mode, opts.Path, opts.BaseURL, resultsPath)
	sum, runErr := stayimport.Run(ctx, opts)
	w.Flush()
	progress.end()
	if err := w.Error(); err != nil && runErr == nil {
		runErr = fmt.Errorf("the result file: %w", err)
	}
	if runErr == nil { // a file of no rows: its results are a header
		if err := place(); err != nil {
			runErr = fmt.Errorf("the result file: %w", err)
		}
	}
	if !placed {
		fmt.Fprintf(e.stdout, "no row has a result: %s is left as it was\n", resultsPath)
	} else {
		printSummary(e.stdout, sum, opts.DryRun, resultsPath)
	}
	switch {
	case runErr != nil && ctx.Err() != nil:
		fmt.Fprintf(stderr, "loyaltyctl %s: stopped at once after line %d (%d of %d rows have results); the batches in flight may or may not be recorded.\n"+
			"Run the same command again to resume: nothing is recorded twice.\n", name, lastLine, sum.Rows, sum.Total)
		return exitError
	case runErr != nil:
		fmt.Fprintf(stderr, "loyaltyctl %s: %v\n", name, runErr)
		if sum.Rows > 0 {
			fmt.Fprintf(stderr, "loyaltyctl %s: %d of %d rows have results (to line %d); once fixed, run the same command again: nothing is recorded twice\n",
				name, sum.Rows, sum.Total, lastLine)
		}
		return exitError
	case sum.Stopped:
		fmt.Fprintf(stderr, "loyaltyctl %s: stopped after line %d: %d of %d rows have results.\n"+
			"Run the same command again to resume: rows recorded before are replayed, nothing is recorded twice.\n", name, lastLine, sum.Rows, sum.Total)
		return exitError
	case sum.Refused > 0:
		return exitError
	}
	return exitOK
}

func printSummary(w io.Writer, sum stayimport.Summary, dryRun bool, resultsPath string) {
	if dryRun {
		fmt.Fprintf(w, "%d rows (dry run, nothing written): %d would record, %d already recorded, %d refused\n",
			sum.Rows, sum.WouldRecord, sum.AlreadyRecorded, sum.Refused)
	} else {
		fmt.Fprintf(w, "%d rows: %d recorded, %d already recorded, %d refused\n", sum.Rows, sum.Recorded, sum.AlreadyRecorded, sum.Refused)
	}
	if len(sum.Refusals) > 0 {
		fmt.Fprintln(w, "refused by reason:")
		for _, r := range sum.Refusals {
			reason := r.Code
			if r.Field != "" {
				reason += " " + r.Field
			}
			fmt.Fprintf(w, "  %7d  %s\n", r.Count, reason)
		}
	}
	fmt.Fprintf(w, "in %s (%.0f rows/s) through %s; results in %s\n", sum.Elapsed.Round(time.Millisecond), sum.RowsPerSecond(), apiName(sum.API), resultsPath)
}

func apiName(api stayimport.API) string {
	if api == stayimport.APIAlliance {
		return "AllianceService.AwardStays"
	}
	return "BookingService.RecordStays"
}

// progressLine shows an import's progress on stderr: on a terminal one
// line rewritten in place, otherwise a plain line every
// importProgressEvery.
type progressLine struct {
	w        io.Writer
	terminal bool
	last     time.Time
	shown    bool
}

func newProgressLine(raw, w io.Writer) *progressLine {
	f, ok := raw.(*os.File)
	return &progressLine{w: w, terminal: ok && term.IsTerminal(int(f.Fd()))}
}

func (p *progressLine) show(pr stayimport.Progress) {
	now := time.Now()
	every := importProgressEvery
	if p.terminal {
		every = terminalRefresh
	}
	if now.Sub(p.last) < every && pr.Done < pr.Total {
		return
	}
	p.last = now
	rate := 0.0
	if pr.Elapsed > 0 {
		rate = float64(pr.Done) / pr.Elapsed.Seconds()
	}
	eta := "?"
	if rate > 0 {
		eta = (time.Duration(float64(pr.Total-pr.Done)/rate) * time.Second).Round(time.Second).String()
	}
	percent := 100.0
	if pr.Total > 0 {
		percent = 100 * float64(pr.Done) / float64(pr.Total)
	}
	line := fmt.Sprintf("%d/%d rows (%.0f%%), %.0f rows/s, ETA %s", pr.Done, pr.Total, percent, rate, eta)
	if p.terminal {
		fmt.Fprintf(p.w, "\r\033[K%s", line)
		p.shown = true
		return
	}
	fmt.Fprintf(p.w, "loyaltyctl: %s\n", line)
}

// end ends the line rewritten in place.
func (p *progressLine) end() {
	if p.terminal && p.shown {
		fmt.Fprintln(p.w)
	}
}
