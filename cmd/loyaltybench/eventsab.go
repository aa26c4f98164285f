package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
	fs := flag.NewFlagSet("loyaltybench events-ab", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultDuration := 20 * time.Second
	if d, err := time.ParseDuration(env("BENCH_DURATION", "")); err == nil && d > 0 {
		defaultDuration = d
	}
	var lf loadFlags
	lf.register(fs, defaultDuration, "")
	bin := fs.String("loyaltyd", "bin/loyaltyd", "the loyaltyd binary to start")
	pairs := fs.Int("pairs", 2, "off/on pairs per mode (1 to 10)")
	modes := fs.String("modes", "spread,hot", "the modes to measure: spread, hot or both (spread,hot)")
	batchSize := fs.Int("webhook-batch", 100, "events per request to the endpoint (1 to 500)")
	statements := fs.Int("statements", 0, "after each phase, print this many top statements by execution time and by WAL, per committed write, and the row operations per table (PostgreSQL loads pg_stat_statements; 0: off; at most 50)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loyaltybench events-ab -loyaltyd bin/loyaltyd [flags]

Starts a private PostgreSQL (fsync on), then for each mode runs -pairs
pairs of service phases, one with loyaltyd's event sequencer and webhook
dispatcher off (-events=false: writes still fill the outbox) and one with
them on and one webhook endpoint in this process (verifying signatures),
in alternating order (off, on, on, off, ...). Before an "on" phase it
waits until the pipeline has caught up with what the phases before it
wrote. Prints committed writes/s of each phase, on/off per pair, and the
median per mode.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var modeList []string
	switch *modes {
	case "spread", "hot":
		modeList = []string{*modes}
	case "spread,hot", "both":
		modeList = []string{modeSpread, modeHot}
	default:
		fmt.Fprintln(stderr, "loyaltybench events-ab: -modes must be spread, hot or spread,hot")
		return 2
	}
	if *pairs < 1 || *pairs > 10 || *batchSize < 1 || *batchSize > 500 || lf.duration <= 0 || *statements < 0 || *statements > maxStatementRows {
		fmt.Fprintln(stderr, "loyaltybench events-ab: -pairs 1 to 10, -webhook-batch 1 to 500, -statements 0 to 50, and a -duration")
		return 2
	}
	if err := eventsAB(ctx, lf, *bin, modeList, *pairs, *batchSize, *statements, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "loyaltybench events-ab: %v\n", err)
		return 1
	}
	return 0
}

// abPhase is one measured phase of events-ab.
type abPhase struct {
	mode      string
	pair      int
	events    bool
	perSecond float64
	cpuMS     float64 // CPU per committed write, all processes; 0 unknown
}

func eventsAB(ctx context.Context, lf loadFlags, bin string, modes []string, pairs, batchSize, statements int, stdout, stderr io.Writer) (err error) {
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
	subscribed := false
	adminKey := "" // printed by the first start only
	var pool *pgxpool.Pool
	defer func() {
		if pool != nil {
			pool.Close()
		}
	}()

	var phases []abPhase
	for _, mode := range modes {
		for pair := range pairs {
			order := []bool{false, true}
			if pair%2 == 1 {
				order = []bool{true, false}
			}
			for _, events := range order {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				srv, err := startServer(ctx, bin, dbURL, events, adminKey, stderr)
				if err != nil {
					return err
				}
				adminKey = srv.key
				if pool == nil {
					if pool, err = openPool(ctx, dbURL, lf.clients); err != nil {
						srv.kill()
						return err
					}
					if statements > 0 {
						if err := createStatementsExtension(ctx, pool); err != nil {
							srv.kill()
							return err
						}
					}
				}
				ph, err := abRun(ctx, lf, mode, pair, events, batchSize, statements, srv, pg.PID(), pool, hooks, &subscribed, stdout)
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

	fmt.Fprintf(stdout, "\n== events off and on, %s phases, %d clients ==\n", lf.duration, lf.clients)
	fmt.Fprintf(stdout, "%8s %5s %14s %14s %8s %14s %14s\n", "mode", "pair", "off writes/s", "on writes/s", "on/off", "off CPU ms/w", "on CPU ms/w")
	for _, mode := range modes {
		var ratios []float64
		for pair := range pairs {
			var off, on abPhase
			for _, p := range phases {
				if p.mode == mode && p.pair == pair {
					if p.events {
						on = p
					} else {
						off = p
					}
				}
			}
			ratio := on.perSecond / off.perSecond
			ratios = append(ratios, ratio)
			fmt.Fprintf(stdout, "%8s %5d %14.1f %14.1f %8.3f %14.2f %14.2f\n", mode, pair+1, off.perSecond, on.perSecond, ratio, off.cpuMS, on.cpuMS)
		}
		slices.Sort(ratios)
		median := ratios[len(ratios)/2]
		if len(ratios)%2 == 0 {
			median = (ratios[len(ratios)/2-1] + ratios[len(ratios)/2]) / 2
		}
		fmt.Fprintf(stdout, "%s: on/off median %.3f (a drop of %.1f%%)\n", mode, median, 100*(1-median))
	}
	fmt.Fprintf(stdout, "webhook deliveries received: %d events in %d requests (%d with a bad signature)\n",
		hooks.deliveries.Load(), hooks.requests.Load(), hooks.forged.Load())
	return nil
}

// abRun runs one phase on srv: with events on, it subscribes the endpoint
// (once) and waits for the pipeline to catch up first.
func abRun(ctx context.Context, lf loadFlags, mode string, pair int, events bool, batchSize, statements int, srv *server, postgresPID int,
	pool *pgxpool.Pool, hooks *receiver, subscribed *bool, stdout io.Writer) (abPhase, error) {
	fmt.Fprintf(stdout, "\n--- %s mode, pair %d, events %s ---\n", mode, pair+1, onOff(events))
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
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return abPhase{}, fmt.Errorf("checkpoint: %w", err)
	}
	cfg, err := serviceConfig(lf, mode, srv, postgresPID, pool, stdout)
	if err != nil {
		return abPhase{}, err
	}
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
	ph := abPhase{mode: mode, pair: pair, events: events, perSecond: rep.committedPerSecond()}
	if rep.CPUKnown && rep.Committed > 0 {
		ph.cpuMS = rep.CPU.total().Seconds() * 1000 / float64(rep.Committed)
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
