package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/loyalty-ledger/loyalty/embeddedpg"
)

const (
	// benchDatabase is the database run-all creates for loyaltyd and the baseline.
	benchDatabase = "loyalty"
	// serverStartTimeout covers loyaltyd's migrations and first admin key.
	serverStartTimeout = 90 * time.Second
	// serverStopTimeout is loyaltyd's own grace period plus a margin.
	serverStopTimeout = 45 * time.Second
)

// runAllCommand is make bench: a fresh PostgreSQL (fsync on), loyaltyd on
// it, the steady members, the phases of runAllPhases back to back, the
// ledger's verification, the tables, the ratios, the targets of issue 22
// and the CSV.
func runAllCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, lf := benchFlags("loyaltybench run-all", stderr, "bin/bench.csv")
	bin := fs.String("loyaltyd", "bin/loyaltyd", "the loyaltyd binary to start")
	accounts := fs.Int("accounts", 100000, "accounts of the baseline")
	events := fs.Bool("events", true, "run loyaltyd with its event sequencer and webhook dispatcher; -events=false runs it with them off (every write still writes its events to the outbox), to compare")
	batchSize := fs.Int("webhook-batch", 100, "events per request to the run's webhook endpoint (1 to 500; 1: one event per request)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loyaltybench run-all -loyaltyd bin/loyaltyd [flags]

Starts a private PostgreSQL (fsync on) in a temporary directory, starts
loyaltyd on it, enrols -members steady members and records one past stay
for each (RecordStays), then runs back to back, each phase -duration
(default $BENCH_DURATION or 20s):

  baseline spread, service spread, service half-peak      (run 1)
  baseline spread, service spread, service half-peak      (run 2)
  baseline spread, service first-stay                     (run 1)
  baseline spread, service first-stay                     (run 2)
  baseline hot, service hot                               (run 1)
  baseline hot, service hot                               (run 2)

Service spread and hot use the steady members (steady state: no first
stays); first-stay enrols -members new members for the phase, so that most
of its stays are first stays; half-peak is service spread paced at half
the operations/s its run's service spread reached. Before each phase the
event pipeline catches up and PostgreSQL checkpoints. Then it checks that
every acknowledged write is in the ledger, runs ledger.Verify, stops
loyaltyd (SIGTERM) and PostgreSQL, prints the tables, the ratios and the
targets of issue 22 (met or not), and appends the rows to -csv. Exits 1 on
any discrepancy.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if lf.duration <= 0 && lf.count <= 0 {
		fmt.Fprintln(stderr, "loyaltybench run-all: give -duration or -count")
		return 2
	}
	if _, err := lf.runConfig(modeSpread); err != nil {
		fmt.Fprintf(stderr, "loyaltybench run-all: %v\n", err)
		return 2
	}
	if *batchSize < 1 || *batchSize > 500 {
		fmt.Fprintln(stderr, "loyaltybench run-all: -webhook-batch must be 1 to 500")
		return 2
	}
	if err := runAll(ctx, *lf, *bin, *accounts, *events, *batchSize, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "loyaltybench run-all: %v\n", err)
		return 1
	}
	return 0
}

func runAll(ctx context.Context, lf loadFlags, bin string, accounts int, events bool, batchSize int, stdout, stderr io.Writer) (err error) {
	startedAt := time.Now()
	// (a) PostgreSQL, durable (fsync on, the default), in a temporary directory.
	pg, dbURL, err := startBenchDatabase(ctx, stderr)
	if err != nil {
		return err
	}
	defer func() {
		if stopErr := pg.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop PostgreSQL: %w", stopErr))
		}
	}()
	var fsync string
	if conn, err := pgx.Connect(ctx, dbURL); err == nil {
		_ = conn.QueryRow(ctx, `SHOW fsync`).Scan(&fsync)
		conn.Close(ctx)
	}
	fmt.Fprintf(stdout, "PostgreSQL %s started (fsync=%s), database %q\n", pg.Version(), fsync, benchDatabase)

	// (b) loyaltyd on it.
	srv, err := startServer(ctx, bin, dbURL, events, "", stderr)
	if err != nil {
		return err
	}
	defer srv.kill()
	fmt.Fprintf(stdout, "loyaltyd (pid %d) listening on %s, events %s\n", srv.pid(), srv.url, onOff(events))
	var hooks *receiver
	if events {
		// One webhook endpoint, every event type: what "events on" costs.
		if hooks, err = startReceiver(); err != nil {
			return err
		}
		defer hooks.stop()
		if err := hooks.subscribe(ctx, srv.url, srv.key, batchSize, h2cClients(srv.url)()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "webhook endpoint %s receives every event, %d per request at most\n", hooks.url, batchSize)
	}

	pool, err := openPool(ctx, dbURL, lf.clients)
	if err != nil {
		return err
	}
	defer pool.Close()

	// (c) The steady members: enrolled, with one stay each, before any
	// phase, so that the steady phases measure a running programme.
	steadyStart := time.Now()
	steady, err := steadyMembers(ctx, newAPI(h2cClients(srv.url)(), srv.url, srv.key), lf.members, steadySetupParallel,
		fmt.Sprintf("steady-%08x-", rand.Uint32()), time.Now(), lf.seed, time.Minute)
	if err != nil {
		return fmt.Errorf("the steady members: %w", err)
	}
	fmt.Fprintf(stdout, "steady members: %d enrolled, each with one past stay (RecordStays of %d, %d in flight), in %s\n",
		len(steady), warmUpBatch, warmUpParallel, time.Since(steadyStart).Round(time.Millisecond))
	fmt.Fprintln(stdout, "load clients: Connect protocol, protobuf binary, HTTP/2 without TLS (prior knowledge), one connection each")

	// (d) The phases.
	phases := runAllPhases()
	var reports []*report
	peakOps := map[int]float64{} // operations/s of each run's steady spread phase
	failed := false
	for i, ph := range phases {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(stdout, "\n--- phase %d/%d: %s #%d, %s mode, %d clients, %s ---\n", i+1, len(phases), ph.name(), ph.run, ph.mode, lf.clients, lf.duration)
		var rep *report
		if ph.target == targetBaseline {
			// Each phase starts from a caught-up event pipeline and a
			// clean checkpoint, so that none pays for the previous one's
			// events or dirty pages.
			if err := settle(ctx, pool, hooks != nil, stdout); err != nil {
				return err
			}
			rep, err = runBaseline(ctx, baselineConfig{Clients: lf.clients, Duration: lf.duration, Count: lf.count,
				Mode: ph.mode, Accounts: accounts, Seed: lf.seed, PostgresPID: pg.PID()}, pool)
		} else {
			cfg, cerr := serviceConfig(lf, ph.mode, srv, pg.PID(), pool, stdout)
			if cerr != nil {
				return cerr
			}
			if !ph.firstStay {
				cfg.MemberNumbers = steady
			}
			// The setup's own writes (a first-stay phase's enrolments) are
			// not the phase's: settle after it.
			cfg.AfterSetup = func(ctx context.Context) error { return settle(ctx, pool, hooks != nil, stdout) }
			if ph.halfPeak {
				peak := peakOps[ph.run]
				if peak <= 0 {
					return fmt.Errorf("the half-peak phase #%d needs the steady spread phase #%d before it", ph.run, ph.run)
				}
				cfg.Rate = peak / 2
				fmt.Fprintf(stdout, "paced to %.0f operations/s, half the %.0f/s of steady spread #%d\n", cfg.Rate, peak, ph.run)
			}
			var backlogAge func() (float64, float64)
			if hooks != nil {
				backlogAge = sampleBacklogAge(ctx, srv.metricsURL, 500*time.Millisecond)
			}
			rep, err = runLoad(ctx, cfg, h2cClients(srv.url))
			var largestAge, lastAge float64
			if backlogAge != nil {
				largestAge, lastAge = backlogAge()
			}
			if err == nil && !ph.halfPeak && !ph.firstStay && ph.mode == modeSpread && rep.Elapsed > 0 {
				peakOps[ph.run] = float64(rep.Ops) / rep.Elapsed.Seconds()
			}
			if err == nil {
				rep.Events = onOff(events)
				printEventBacklog(ctx, stdout, pool)
				if hooks != nil {
					fmt.Fprintf(stdout, "webhook deliveries received so far: %d events in %d requests (%d with a bad signature)\n",
						hooks.deliveries.Load(), hooks.requests.Load(), hooks.forged.Load())
					fmt.Fprintf(stdout, "webhook backlog age during the phase: at most %.1f s (read every 500 ms), %.1f s at its end\n", largestAge, lastAge)
				}
				var problems []string
				if problems, err = checkAcknowledged(ctx, pool, rep); err == nil {
					rep.Problems = append(rep.Problems, problems...)
					fmt.Fprintf(stdout, "acknowledged writes: %d stays and redemptions, every one in the ledger under its key: %t\n",
						len(rep.Acked), len(problems) == 0)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("phase %d (%s #%d): %w", i+1, ph.name(), ph.run, err)
		}
		rep.Run = ph.run
		if ph.target == targetService && rep.FirstStay != ph.firstStay {
			return fmt.Errorf("phase %d (%s #%d) ran with first stays %t", i+1, ph.name(), ph.run, rep.FirstStay)
		}
		rep.print(stdout)
		if len(rep.Problems) > 0 || rep.Mismatches > 0 {
			failed = true
		}
		reports = append(reports, rep)
	}

	// (e) The ledger's own verification, on the same database.
	found, err := verifyLedger(ctx, dbURL)
	if err != nil {
		return fmt.Errorf("verify the ledger: %w", err)
	}
	for _, d := range found {
		fmt.Fprintf(stdout, "LEDGER DISCREPANCY: %s\n", d)
	}
	fmt.Fprintf(stdout, "\nledger verification (ledger.Verify): %d discrepancies\n", len(found))
	if len(found) > 0 {
		failed = true
	}

	// (f) Stop loyaltyd (PostgreSQL stops on return).
	if err := srv.stop(); err != nil {
		fmt.Fprintf(stdout, "WARNING: loyaltyd did not stop cleanly: %v\n", err)
	} else {
		fmt.Fprintln(stdout, "loyaltyd stopped cleanly (SIGTERM)")
	}

	// (g) The table, the ratios, the targets, the CSV.
	fmt.Fprintf(stdout, "\n== Summary ==\n")
	fmt.Fprintln(stdout, "committed/s: service = write requests committed for the first time per second, baseline = transfers per second")
	fmt.Fprintln(stdout, "latency: service = first-time write operations (stay, redeem, guarantee place+release; refusals included), baseline = transfers")
	fmt.Fprintln(stdout, "spread and hot: members who have had a first stay (steady state); first-stay: members enrolled for the phase, most stays their first")
	printSummary(stdout, reports)
	printCPUSummary(stdout, reports)
	printRatios(stdout, reports)
	printTargets(stdout, targetRows(reports, runChecks{ledgerDiscrepancies: len(found)}))
	fmt.Fprintf(stdout, "run-all took %s\n", time.Since(startedAt).Round(time.Second))
	if lf.csv != "" {
		if err := saveCSV(stdout, lf.csv, startedAt, reports); err != nil {
			return err
		}
	}
	if failed {
		return errors.New("the run found problems (see INVARIANT VIOLATED, replay mismatches or LEDGER DISCREPANCY above)")
	}
	return nil
}

// steadySetupParallel is how many enrolments the steady members' setup
// has in flight: loyaltyd's whole pool, as nothing else calls run-all's
// private server then.
const steadySetupParallel = 16

// settleTimeout bounds the wait for the event pipeline before a phase.
const settleTimeout = 5 * time.Minute

// phasePlan is one phase of run-all.
type phasePlan struct {
	target, mode string
	// firstStay (service): the phase enrols its own members, so that most
	// of its stays are first stays; otherwise it uses the steady members.
	firstStay bool
	// halfPeak (service): paced at half the operations/s of the steady
	// spread phase of the same run.
	halfPeak bool
	run      int // 1 for the first of the phase's kind, 2 for the second, ...
}

// name is the phase's kind, as report.phaseName names its report.
func (p phasePlan) name() string {
	switch {
	case p.target == targetService && p.firstStay:
		return phaseServiceFirst
	case p.target == targetService && p.halfPeak:
		return phaseServiceHalfPeak
	}
	return p.target + " " + p.mode
}

// runAllPhases is run-all's order. Each service phase runs twice; each
// unpaced one right after a baseline of its mode, so that each has its
// own baseline next to it in time (the machine is shared and drifts); the
// half-peak phase follows the steady spread phase whose peak paces it.
func runAllPhases() []phasePlan {
	var phases []phasePlan
	baselineRuns := map[string]int{}
	baseline := func(mode string) phasePlan {
		baselineRuns[mode]++
		return phasePlan{target: targetBaseline, mode: mode, run: baselineRuns[mode]}
	}
	for run := 1; run <= 2; run++ {
		phases = append(phases, baseline(modeSpread),
			phasePlan{target: targetService, mode: modeSpread, run: run},
			phasePlan{target: targetService, mode: modeSpread, halfPeak: true, run: run})
	}
	for run := 1; run <= 2; run++ {
		phases = append(phases, baseline(modeSpread), phasePlan{target: targetService, mode: modeSpread, firstStay: true, run: run})
	}
	for run := 1; run <= 2; run++ {
		phases = append(phases, baseline(modeHot), phasePlan{target: targetService, mode: modeHot, run: run})
	}
	return phases
}

// settle waits, with events on, until the event pipeline has delivered
// every event written so far, then vacuums and checkpoints: the phase
// that follows carries only its own events, dead rows and dirty pages.
func settle(ctx context.Context, pool *pgxpool.Pool, events bool, stdout io.Writer) error {
	start := time.Now()
	if events {
		if err := waitCaughtUp(ctx, pool, settleTimeout); err != nil {
			return err
		}
	}
	// The vacuum a phase's deletes and inserts owe would otherwise fall on
	// the phase after it (autovacuum), and differ with the order of the
	// phases.
	if _, err := pool.Exec(ctx, `VACUUM`); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if _, err := pool.Exec(ctx, `CHECKPOINT`); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	what := "vacuum, checkpoint"
	if events {
		what = "events delivered, vacuum, checkpoint"
	}
	fmt.Fprintf(stdout, "settled (%s) in %s\n", what, time.Since(start).Round(time.Millisecond))
	return nil
}

// serviceConfig is a phase of load on srv, measured with its database's
// CPU and WAL.
func serviceConfig(lf loadFlags, mode string, srv *server, postgresPID int, pool *pgxpool.Pool, progress io.Writer) (runConfig, error) {
	cfg, err := lf.runConfig(mode)
	if err != nil {
		return cfg, err
	}
	cfg.URL, cfg.Key, cfg.MetricsURL = srv.url, srv.key, srv.metricsURL
	cfg.ServerPID, cfg.ResetPeakRSS, cfg.TrackAcks, cfg.Progress = srv.pid(), true, true, progress
	cfg.PostgresPID = postgresPID
	cfg.WALPosition = func(ctx context.Context) (int64, error) {
		var at int64
		err := pool.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::INT8`).Scan(&at)
		return at, err
	}
	cfg.Rate = 0
	return cfg, nil
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// printEventBacklog says how far the event sequencer is behind the writes
// at the end of a phase: with events off, the outbox holds every event the
// phase wrote.
func printEventBacklog(ctx context.Context, w io.Writer, pool *pgxpool.Pool) {
	var waiting, sequenced int64
	err := pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM event_outbox), (SELECT last_position FROM event_sequencer WHERE id = 1)`).
		Scan(&waiting, &sequenced)
	if err != nil {
		fmt.Fprintf(w, "events: backlog unknown: %v\n", err)
		return
	}
	fmt.Fprintf(w, "events: %d sequenced so far, %d written and waiting in the outbox\n", sequenced, waiting)
}

// startBenchDatabase starts a private PostgreSQL (fsync on, the default)
// in a temporary directory, its log warnings and errors only, and creates
// the bench's database; it returns the server, which the caller stops, and
// the database's URL.
func startBenchDatabase(ctx context.Context, stderr io.Writer) (*embeddedpg.Server, string, error) {
	return startBenchDatabaseWith(ctx, stderr, nil)
}

// startBenchDatabaseWith is startBenchDatabase with extra server settings.
func startBenchDatabaseWith(ctx context.Context, stderr io.Writer, settings map[string]string) (*embeddedpg.Server, string, error) {
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	pg, err := embeddedpg.Start(ctx, embeddedpg.Options{Logger: logger, Settings: settings})
	if err != nil {
		return nil, "", fmt.Errorf("start PostgreSQL: %w", err)
	}
	if err := createDatabase(ctx, pg.ConnString("postgres"), benchDatabase); err != nil {
		return nil, "", errors.Join(err, pg.Stop())
	}
	return pg, pg.ConnString(benchDatabase), nil
}

func createDatabase(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// server is a loyaltyd child process.
type server struct {
	cmd      *exec.Cmd
	url, key string
	// metricsURL is loyaltyd's Prometheus endpoint, on its own port.
	metricsURL string
	done       chan struct{} // closed when the process has exited
	err        error         // its exit status, once done
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// startServer starts loyaltyd on dbURL on a free loopback port and reads
// the URL and the admin key it prints on its first start (adminKey, when
// not empty, is the key of an earlier start on the same database). Its
// log (JSON, warnings and errors only) goes to logs.
func startServer(ctx context.Context, bin, dbURL string, events bool, adminKey string, logs io.Writer) (*server, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	// The background jobs (tier review, expiry, finance rollups) would
	// first run a minute or two after start, in the middle of a phase, and
	// make that phase's figures depend on where it fell: off while measuring.
	cmd := exec.Command(bin, "-database-url", dbURL, "-listen", "127.0.0.1:0", "-metrics-listen", "127.0.0.1:0", "-log-level", "warn",
		"-tier-review-every", "0", "-expire-every", "0", "-finance-jobs-every", "0", "-events-prune-every", "0",
		"-events="+strconv.FormatBool(events))
	cmd.Stdout = w
	cmd.Stderr = logs
	// If we die, so does it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	w.Close()
	s := &server{cmd: cmd, done: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		close(s.done)
	}()

	type banner struct{ url, key, metrics string }
	found := make(chan banner, 1)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		// A restart on the same database prints no key: the caller has it.
		b := banner{key: adminKey}
		sent := false
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "export LOYALTY_URL="); ok {
				b.url = v
			}
			if v, ok := strings.CutPrefix(line, "export LOYALTY_KEY="); ok {
				b.key = v
			}
			if v, ok := strings.CutPrefix(line, "Prometheus metrics (operators' port): "); ok {
				b.metrics = v
			}
			if !sent && b.url != "" && b.key != "" && b.metrics != "" {
				found <- b
				sent = true
			}
		}
		// Keep reading to EOF so that loyaltyd never blocks on stdout.
	}()
	timer := time.NewTimer(serverStartTimeout)
	defer timer.Stop()
	select {
	case b := <-found:
		s.url, s.key, s.metricsURL = b.url, b.key, b.metrics
		return s, nil
	case <-s.done:
		return nil, fmt.Errorf("loyaltyd exited before printing its URL and admin key: %v", s.err)
	case <-timer.C:
		s.kill()
		return nil, fmt.Errorf("loyaltyd printed no URL and admin key within %s", serverStartTimeout)
	case <-ctx.Done():
		s.kill()
		return nil, ctx.Err()
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-s.done:
		return s.err
	case <-time.After(serverStopTimeout):
		s.kill()
		return fmt.Errorf("still running %s after SIGTERM; killed", serverStopTimeout)
	}
}

// kill ends the process if it is still running.
func (s *server) kill() {
	select {
	case <-s.done:
	default:
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
