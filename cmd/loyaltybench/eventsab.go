package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// eventsABCommand measures what events cost the write path: on one
// PostgreSQL, service phases with loyaltyd's event pipeline off and on
// (one webhook endpoint), alternating, so that the machine's drift falls
// on both alike. Two separate runs of run-all on a shared machine differ
// by more than the cost being measured.
func eventsABCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, lf := benchFlags("loyaltybench events-ab", stderr, "")
	bin := fs.String("loyaltyd", "bin/loyaltyd", "the loyaltyd binary to start")
	pairs := fs.Int("pairs", 2, "off/on pairs per mode (1 to 10)")
	modes := fs.String("modes", "spread,hot", "the modes to measure: spread, hot or both (spread,hot)")
	batchSize := fs.Int("webhook-batch", 100, "events per request to the endpoint (1 to 500)")
	statements := fs.Int("statements", 0, "after each phase, print this many top statements by execution time and by WAL, per committed write, and the row operations per table (PostgreSQL loads pg_stat_statements; 0: off; at most 50)")
	firstStay := fs.Bool("first-stay", false, firstStayUsage)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loyaltybench events-ab -loyaltyd bin/loyaltyd [flags]

Starts a private PostgreSQL (fsync on), enrols -members steady members
with one past stay each (as make bench does), then for each mode runs
-pairs pairs of service phases on them (-first-stay: on members each
phase enrols), one with loyaltyd's event sequencer and webhook
dispatcher off (-events=false: writes still fill the outbox) and one
with them on and one webhook endpoint in this process (verifying
signatures), in alternating order (off, on, on, off, ...). Before an
"on" phase it waits until the pipeline has caught up with what the
phases before it wrote. Prints committed writes/s of each phase, on/off
per pair, and the median per mode.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	modeList, ok := abModes(*modes)
	if !ok {
		fmt.Fprintln(stderr, "loyaltybench events-ab: -modes must be spread, hot or spread,hot")
		return 2
	}
	if *pairs < 1 || *pairs > 10 || *batchSize < 1 || *batchSize > 500 || lf.duration <= 0 || *statements < 0 || *statements > maxStatementRows {
		fmt.Fprintln(stderr, "loyaltybench events-ab: -pairs 1 to 10, -webhook-batch 1 to 500, -statements 0 to 50, and a -duration")
		return 2
	}
	sides := [2]abSide{{name: "off", bin: *bin, events: false}, {name: "on", bin: *bin, events: true}}
	opts := abOptions{pairs: *pairs, batchSize: *batchSize, statements: *statements, firstStay: *firstStay}
	if err := compareAB(ctx, *lf, sides, modeList, opts, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "loyaltybench events-ab: %v\n", err)
		return 1
	}
	return 0
}

// abSide is one of the two things an A/B comparison alternates: a
// loyaltyd binary, with its event pipeline on or off.
type abSide struct {
	name   string // "off" and "on", or the binary's name
	bin    string
	events bool
}

// abPhase is one measured phase of an A/B comparison.
type abPhase struct {
	mode      string
	pair      int
	side      int // 0: A, 1: B
	perSecond float64
	cpuMS     float64 // CPU per committed write, all processes; 0 unknown
	serverMS  float64 // loyaltyd's CPU per committed write; 0 unknown
}

// abOptions are how an A/B comparison runs its phases.
type abOptions struct {
	pairs      int // per mode
	batchSize  int // events per webhook request
	statements int // top statements printed after each phase; 0: none
	// firstStay: each phase enrols its own members, so that most stays
	// are first stays (make bench's first-stay phase); otherwise every
	// phase uses the same steady members (make bench's spread and hot).
	firstStay bool
}

// firstStayUsage is the -first-stay flag of the A/B commands.
const firstStayUsage = "run make bench's first-stay mix (each phase enrols its members, most stays are first stays) instead of its steady members (one past stay each)"

// compareAB runs, on one PostgreSQL, pairs of service phases per mode, one
// on each side, in alternating order (A, B, B, A, ...), and prints B/A per
// pair and its median per mode.
func compareAB(ctx context.Context, lf loadFlags, sides [2]abSide, modes []string, opts abOptions, stdout, stderr io.Writer) (err error) {
	pairs, statements := opts.pairs, opts.statements
	var settings map[string]string
	if statements > 0 {
		settings = statementSettings
	}
	pg, dbURL, err := startBenchDatabaseWith(ctx, stderr, settings)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := pg.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop PostgreSQL: %w", stopErr))
		}
	}()
	fmt.Fprintf(stdout, "PostgreSQL %s started, database %q\n", pg.Version(), benchDatabase)
	hooks, err := startReceiver()
	if err != nil {
		return err
	}
	defer hooks.stop()
	// A process of its own migrates the database, prints the admin key
	// and enrols the steady members: a phase that ran on it would find
	// their accounts in its caches, where every other phase's process
	// reads them from the database.
	setup, err := startServer(ctx, sides[0].bin, dbURL, false, "", stderr)
	if err != nil {
		return err
	}
	adminKey := setup.key
	pool, err := openPool(ctx, dbURL, lf.clients)
	if err != nil {
		setup.kill()
		return err
	}
	defer pool.Close()
	if statements > 0 {
		err = createStatementsExtension(ctx, pool)
	}
	// The steady members are enrolled in the first-stay mix too, unused:
	// their writes warm PostgreSQL, whose first phase would otherwise run
	// on a cold database (a pair's "off" phase 35% slower than the rest).
	var steady []string
	if err == nil {
		steady, err = abSteadyMembers(ctx, lf, setup, stdout)
	}
	if opts.firstStay {
		steady = nil
	}
	if stopErr := setup.stop(); err == nil && stopErr != nil {
		err = fmt.Errorf("stop the setup's loyaltyd: %w", stopErr)
	}
	if err != nil {
		return err
	}

	subscribed := false
	var phases []abPhase
	for _, mode := range modes {
		for pair := range pairs {
			order := []int{0, 1}
			if pair%2 == 1 {
				order = []int{1, 0}
			}
			for _, side := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				srv, err := startServer(ctx, sides[side].bin, dbURL, sides[side].events, adminKey, stderr)
				if err != nil {
					return err
				}
				ph, err := abRun(ctx, lf, mode, pair, sides[side], opts, steady, srv, pg.PID(), pool, hooks, &subscribed, stdout)
				ph.side = side
				if stopErr := srv.stop(); stopErr != nil {
					fmt.Fprintf(stdout, "WARNING: loyaltyd did not stop cleanly: %v\n", stopErr)
				}
				if err != nil {
					return err
				}
				phases = append(phases, ph)
			}
		}
	}

	a, b := sides[0].name, sides[1].name
	fmt.Fprintf(stdout, "\n== %s and %s, %s phases, %d clients ==\n", a, b, lf.duration, lf.clients)
	fmt.Fprintf(stdout, "%8s %5s %14s %14s %8s %14s %14s %14s %14s\n", "mode", "pair", a+" writes/s", b+" writes/s", b+"/"+a,
		a+" CPU ms/w", b+" CPU ms/w", a+" loyaltyd", b+" loyaltyd")
	for _, mode := range modes {
		var ratios []float64
		for pair := range pairs {
			var byside [2]abPhase
			for _, p := range phases {
				if p.mode == mode && p.pair == pair {
					byside[p.side] = p
				}
			}
			ratio := byside[1].perSecond / byside[0].perSecond
			ratios = append(ratios, ratio)
			fmt.Fprintf(stdout, "%8s %5d %14.1f %14.1f %8.3f %14.2f %14.2f %14.2f %14.2f\n", mode, pair+1, byside[0].perSecond, byside[1].perSecond, ratio,
				byside[0].cpuMS, byside[1].cpuMS, byside[0].serverMS, byside[1].serverMS)
		}
		median := medianOf(ratios)
		fmt.Fprintf(stdout, "%s: %s/%s median %.3f (a change of %+.1f%%)\n", mode, b, a, median, 100*(median-1))
	}
	fmt.Fprintf(stdout, "webhook deliveries received: %d events in %d requests (%d with a bad signature)\n",
		hooks.deliveries.Load(), hooks.requests.Load(), hooks.forged.Load())
	return nil
}

// medianOf is the median of values (not empty).
func medianOf(values []float64) float64 {
	values = slices.Sorted(slices.Values(values))
	n := len(values)
	if n%2 == 0 {
		return (values[n/2-1] + values[n/2]) / 2
	}
	return values[n/2]
}

// abSteadyMembers enrols lf.members members on srv, each with one past
// stay, as make bench does before its phases.
func abSteadyMembers(ctx context.Context, lf loadFlags, srv *server, stdout io.Writer) ([]string, error) {
	start := time.Now()
	steady, err := steadyMembers(ctx, newAPI(h2cClients(srv.url)(), srv.url, srv.key), lf.members, steadySetupParallel,
		fmt.Sprintf("steady-%08x-", rand.Uint32()), time.Now(), lf.seed, time.Minute)
	if err != nil {
		return nil, fmt.Errorf("the steady members: %w", err)
	}
	fmt.Fprintf(stdout, "steady members: %d enrolled, each with one past stay, in %s\n",
		len(steady), time.Since(start).Round(time.Millisecond))
	return steady, nil
}

// abRun runs one phase on srv (on members, unless nil: then the phase
// enrols its own): with events on, it subscribes the endpoint (once) and
// waits for the pipeline to catch up first.
func abRun(ctx context.Context, lf loadFlags, mode string, pair int, side abSide, opts abOptions, members []string, srv *server, postgresPID int,
	pool *pgxpool.Pool, hooks *receiver, subscribed *bool, stdout io.Writer) (abPhase, error) {
	events, batchSize, statements := side.events, opts.batchSize, opts.statements
	fmt.Fprintf(stdout, "\n--- %s mode, pair %d, %s (%s, events %s) ---\n", mode, pair+1, side.name, side.bin, onOff(events))
	if events {
		if !*subscribed {
			if err := hooks.subscribe(ctx, srv.url, srv.key, batchSize, h2cClients(srv.url)()); err != nil {
				return abPhase{}, err
			}
			*subscribed = true
		}
		if err := waitCaughtUp(ctx, pool, 5*time.Minute); err != nil {
			return abPhase{}, err
		}
	}
	if err := settle(ctx, pool, false, stdout); err != nil {
		return abPhase{}, err
	}
	cfg, err := serviceConfig(lf, mode, srv, postgresPID, pool, stdout)
	if err != nil {
		return abPhase{}, err
	}
	cfg.MemberNumbers = members
	// The setup enrols members, and an "on" phase's pipeline would carry
	// their events into the measured window, while an "off" phase's wait
	// for them falls before the next "on" phase: both measure from a
	// caught-up pipeline, so that each carries the events of its own
	// writes.
	var tables tableCounts
	cfg.AfterSetup = func(ctx context.Context) error {
		if events {
			start := time.Now()
			if err := waitCaughtUp(ctx, pool, 5*time.Minute); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "events: the pipeline caught up with the setup in %s\n", time.Since(start).Round(time.Millisecond))
		}
		if statements > 0 {
			var err error
			tables, err = resetStatements(ctx, pool)
			return err
		}
		return nil
	}
	rep, err := runLoad(ctx, cfg, h2cClients(srv.url))
	if err != nil {
		return abPhase{}, fmt.Errorf("%s phase, events %s: %w", mode, onOff(events), err)
	}
	rep.print(stdout)
	if statements > 0 {
		if err := printStatements(ctx, stdout, pool, statements, rep.Committed, tables); err != nil {
			return abPhase{}, err
		}
	}
	ph := abPhase{mode: mode, pair: pair, perSecond: rep.committedPerSecond()}
	if rep.CPUKnown && rep.Committed > 0 {
		ph.cpuMS = rep.CPU.total().Seconds() * 1000 / float64(rep.Committed)
		ph.serverMS = rep.CPU.Server.Seconds() * 1000 / float64(rep.Committed)
	}
	return ph, nil
}

// waitCaughtUp waits until the outbox is empty and every webhook endpoint
// has been sent every sequenced event.
func waitCaughtUp(ctx context.Context, pool *pgxpool.Pool, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var waiting, behind int64
		err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM event_outbox),
			(SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL
				AND fanned_out < (SELECT last_position FROM event_sequencer WHERE id = 1))`).Scan(&waiting, &behind)
		if err != nil {
			return fmt.Errorf("read the event backlog: %w", err)
		}
		if waiting == 0 && behind == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the event pipeline did not catch up within %s (%d in the outbox, %d endpoints behind)", limit, waiting, behind)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// binariesABCommand measures what a change to loyaltyd costs or saves
// (a profile-guided build, a setting compiled in): two binaries, A and B,
// alternated as events-ab alternates the pipeline, with the events on
// both sides as make bench runs them.
func binariesABCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, lf := benchFlags("loyaltybench binaries-ab", stderr, "")
	binA := fs.String("a", "", "loyaltyd binary A (the reference)")
	binB := fs.String("b", "", "loyaltyd binary B (the change)")
	pairs := fs.Int("pairs", 3, "A/B pairs per mode (1 to 10)")
	modes := fs.String("modes", "spread,hot", "the modes to measure: spread, hot or both (spread,hot)")
	events := fs.Bool("events", true, "run both with the event pipeline on and one webhook endpoint")
	batchSize := fs.Int("webhook-batch", 100, "events per request to the endpoint (1 to 500)")
	firstStay := fs.Bool("first-stay", false, firstStayUsage)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loyaltybench binaries-ab -a bin/loyaltyd.before -b bin/loyaltyd [flags]

Starts a private PostgreSQL (fsync on), enrols -members steady members
with one past stay each (as make bench does), then for each mode runs
-pairs pairs of service phases on them (-first-stay: on members each
phase enrols), one on each binary, in alternating order (A, B, B, A,
...). Prints committed writes/s, CPU per committed write (all
processes, and loyaltyd's) of each phase, B/A per pair and its median.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	modeList, ok := abModes(*modes)
	if !ok || *binA == "" || *binB == "" || *pairs < 1 || *pairs > 10 || *batchSize < 1 || *batchSize > 500 || lf.duration <= 0 {
		fmt.Fprintln(stderr, "loyaltybench binaries-ab: give -a and -b, -pairs 1 to 10, -modes spread, hot or spread,hot, -webhook-batch 1 to 500, and a -duration")
		return 2
	}
	sides := [2]abSide{{name: "A", bin: *binA, events: *events}, {name: "B", bin: *binB, events: *events}}
	fmt.Fprintf(stdout, "A is %s, B is %s\n", *binA, *binB)
	if err := compareAB(ctx, *lf, sides, modeList, abOptions{pairs: *pairs, batchSize: *batchSize, firstStay: *firstStay}, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "loyaltybench binaries-ab: %v\n", err)
		return 1
	}
	return 0
}

// abModes reads an A/B command's -modes.
func abModes(modes string) ([]string, bool) {
	switch modes {
	case "spread", "hot":
		return []string{modes}, true
	case "spread,hot", "both":
		return []string{modeSpread, modeHot}, true
	}
	return nil, false
}
