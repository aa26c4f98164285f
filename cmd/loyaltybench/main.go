// Command loyaltybench measures the loyalty service's throughput.
//
//	loyaltybench [flags]           drive a running loyaltyd over Connect (HTTP/2 without TLS)
//	loyaltybench -verify ...       run ledger.Verify on the service's database
//	loyaltybench baseline [flags]  the same hardware's raw-SQL figure: two-posting transfers
//	loyaltybench run-all [flags]   PostgreSQL + loyaltyd + every phase, twice + verification + targets (make bench)
//	loyaltybench events-ab [flags] service phases with the event pipeline off and on, alternating (make bench-events)
//	loyaltybench binaries-ab [flags] service phases on two loyaltyd binaries, alternating (a change's effect)
//
// The load generator enrols its members and creates its hotels, then runs
// a mix of stays, redemptions, late-arrival guarantees and member reads
// from -clients goroutines, re-sending a share of its writes with the same
// idempotency key to check that the answer is the first one. See README.md
// ("Benchmarks").
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 {
		switch args[0] {
		case "baseline":
			return baselineCommand(ctx, args[1:], stdout, stderr)
		case "run-all":
			return runAllCommand(ctx, args[1:], stdout, stderr)
		case "events-ab":
			return eventsABCommand(ctx, args[1:], stdout, stderr)
		case "binaries-ab":
			return binariesABCommand(ctx, args[1:], stdout, stderr)
		case "import-ab":
			return importABCommand(ctx, args[1:], stdout, stderr)
		}
	}
	return loadCommand(ctx, args, stdout, stderr)
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// benchFlags is the flag set of a command that runs phases of load: the
// load generator's flags, each phase lasting $BENCH_DURATION (20 s when
// unset), the CSV file csv by default.
func benchFlags(name string, stderr io.Writer, csv string) (*flag.FlagSet, *loadFlags) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := 20 * time.Second
	if d, err := time.ParseDuration(os.Getenv("BENCH_DURATION")); err == nil && d > 0 {
		duration = d
	}
	lf := &loadFlags{}
	lf.register(fs, duration, csv)
	return fs, lf
}

// parse parses flags; it returns the exit code to use when the command
// should stop (help: 0, bad flags: 2).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return 0, false
	}
	if err != nil {
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected arguments %q\n", fs.Name(), fs.Args())
		return 2, false
	}
	return 0, true
}

// loadFlags are the load generator's flags, shared with run-all.
type loadFlags struct {
	clients    int
	duration   time.Duration
	count      int64
	members    int
	mix        string
	dist       string
	duplicates float64
	seed       uint64
	rate       float64
	csv        string
}

func (f *loadFlags) register(fs *flag.FlagSet, defaultDuration time.Duration, defaultCSV string) {
	fs.IntVar(&f.clients, "clients", 16, "concurrent clients (goroutines, one connection each)")
	fs.DurationVar(&f.duration, "duration", defaultDuration, "how long to run (per phase); 0 with -count runs until the count")
	fs.Int64Var(&f.count, "count", 0, "stop after this many operations (whichever of -duration and -count ends first); 0: no limit")
	fs.IntVar(&f.members, "members", 10000, "members to enrol (in parallel) before the load")
	fs.StringVar(&f.mix, "mix", defaultMix, "operation weights: RecordStay, Redeem (a bedtime milk), PlaceGuarantee+ReleaseGuarantee, GetMember")
	fs.StringVar(&f.dist, "members-dist", "uniform", "how members are picked: uniform or zipf (s=1.1)")
	fs.Float64Var(&f.duplicates, "duplicates", 0.05, "share of writes that re-send an earlier acknowledged write with its idempotency key")
	fs.Uint64Var(&f.seed, "seed", 1, "random seed of the operation stream")
	fs.Float64Var(&f.rate, "rate", 0, "operations started per second, all clients together; 0: as fast as the service answers (run-all: its half-peak phase sets its own)")
	fs.StringVar(&f.csv, "csv", defaultCSV, "append one CSV row per run to this file")
}

func (f *loadFlags) runConfig(mode string) (runConfig, error) {
	m, err := parseMix(f.mix)
	if err != nil {
		return runConfig{}, err
	}
	return runConfig{Clients: f.clients, Duration: f.duration, Count: f.count, Members: f.members, Mix: m,
		Dist: f.dist, Duplicates: f.duplicates, Mode: mode, Seed: f.seed, Rate: f.rate}, nil
}

func loadCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loyaltybench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var lf loadFlags
	lf.register(fs, 30*time.Second, "")
	url := fs.String("url", env("LOYALTY_URL", "http://127.0.0.1:8080"), "the service's URL (env LOYALTY_URL)")
	key := fs.String("key", "", "an admin API key (default: env LOYALTY_KEY; never shown here)")
	mode := fs.String("mode", modeSpread, "spread: stays at 50 hotels on varied channels; hot: half the stays and redemptions at BENCH-1 on the app (the programme's accounts), half at one partner's hotel through AllianceService (that partner's accounts)")
	serverPID := fs.Int("server-pid", 0, "the server's pid, to report its peak RSS (VmHWM from /proc/<pid>/status, since it started)")
	metricsURL := fs.String("metrics-url", "", "the server's /metrics URL, to report database transaction retries")
	verify := fs.Bool("verify", false, "instead of generating load, run ledger.Verify on -database-url and exit 1 on any discrepancy")
	dbURL := fs.String("database-url", env("LOYALTY_DATABASE_URL", ""), "the service's database, for -verify (env LOYALTY_DATABASE_URL)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage:
  loyaltybench [flags]            load a running loyaltyd
  loyaltybench -verify -database-url URL
  loyaltybench baseline [flags]   raw-SQL transfers on a PostgreSQL (loyaltybench baseline -h)
  loyaltybench run-all [flags]    everything, as make bench runs it (loyaltybench run-all -h)

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *verify {
		if *dbURL == "" {
			fmt.Fprintln(stderr, "loyaltybench: -verify needs -database-url (or LOYALTY_DATABASE_URL)")
			return 2
		}
		return verifyCommand(ctx, *dbURL, stdout, stderr)
	}
	cfg, err := lf.runConfig(*mode)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltybench: %v\n", err)
		return 2
	}
	if *key == "" {
		*key = os.Getenv("LOYALTY_KEY")
	}
	cfg.URL, cfg.Key, cfg.ServerPID, cfg.MetricsURL, cfg.Progress = *url, *key, *serverPID, *metricsURL, stderr
	if err := cfg.check(); err != nil {
		fmt.Fprintf(stderr, "loyaltybench: %v\n", err)
		return 2
	}
	startedAt := time.Now()
	rep, err := runLoad(ctx, cfg, h2cClients(cfg.URL))
	if err != nil {
		fmt.Fprintf(stderr, "loyaltybench: %v\n", err)
		return 1
	}
	rep.print(stdout)
	if lf.csv != "" {
		if err := saveCSV(stdout, lf.csv, startedAt, []*report{rep}); err != nil {
			fmt.Fprintf(stderr, "loyaltybench: %v\n", err)
			return 1
		}
	}
	if rep.Mismatches > 0 {
		fmt.Fprintf(stderr, "loyaltybench: %d replays answered differently from the first answer\n", rep.Mismatches)
		return 1
	}
	return 0
}

func verifyCommand(ctx context.Context, url string, stdout, stderr io.Writer) int {
	found, err := verifyLedger(ctx, url)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltybench: verify: %v\n", err)
		return 1
	}
	for _, d := range found {
		fmt.Fprintf(stdout, "DISCREPANCY: %s\n", d)
	}
	if len(found) > 0 {
		fmt.Fprintf(stdout, "ledger verification: %d discrepancies\n", len(found))
		return 1
	}
	fmt.Fprintln(stdout, "ledger verification: the books balance (no discrepancies)")
	return 0
}

func baselineCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loyaltybench baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dbURL := fs.String("database-url", env("LOYALTY_DATABASE_URL", ""), "PostgreSQL URL (env LOYALTY_DATABASE_URL); the tables bench_* are dropped and recreated")
	clients := fs.Int("clients", 16, "concurrent clients (goroutines over one pool of as many connections)")
	duration := fs.Duration("duration", 30*time.Second, "how long to run")
	count := fs.Int64("count", 0, "stop after this many transfers (whichever ends first); 0: no limit")
	mode := fs.String("mode", modeSpread, "spread: both accounts random; hot: one side is always account 0")
	accounts := fs.Int("accounts", 100000, "accounts to create")
	seed := fs.Uint64("seed", 1, "random seed")
	csvPath := fs.String("csv", "", "append one CSV row to this file")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: loyaltybench baseline -database-url URL [flags]

Runs balanced two-posting transfers, one READ COMMITTED transaction each
(insert the transfer and its postings, update both balances in id order),
from -clients goroutines, then checks that the balances sum to zero and
every transfer's postings do. Exits 1 when they do not.

Flags:
`)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *dbURL == "" {
		fmt.Fprintln(stderr, "loyaltybench baseline: -database-url is required")
		return 2
	}
	cfg := baselineConfig{Clients: *clients, Duration: *duration, Count: *count, Mode: *mode, Accounts: *accounts, Seed: *seed}
	if err := cfg.check(); err != nil {
		fmt.Fprintf(stderr, "loyaltybench baseline: %v\n", err)
		return 2
	}
	pool, err := openPool(ctx, *dbURL, cfg.Clients)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltybench baseline: %v\n", err)
		return 1
	}
	defer pool.Close()
	startedAt := time.Now()
	rep, err := runBaseline(ctx, cfg, pool)
	if err != nil {
		fmt.Fprintf(stderr, "loyaltybench baseline: %v\n", err)
		return 1
	}
	rep.print(stdout)
	if *csvPath != "" {
		if err := saveCSV(stdout, *csvPath, startedAt, []*report{rep}); err != nil {
			fmt.Fprintf(stderr, "loyaltybench baseline: %v\n", err)
			return 1
		}
	}
	if len(rep.Problems) > 0 {
		return 1
	}
	return 0
}

// openPool opens a pool of exactly n connections.
func openPool(ctx context.Context, url string, n int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	cfg.MaxConns = int32(n)
	cfg.MinConns = int32(n)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}
