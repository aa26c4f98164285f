// Command loyaltyd serves the loyalty.v1 Connect/gRPC services over one
// HTTP port (HTTP/1.1 and unencrypted HTTP/2), with gRPC health checking,
// server reflection and the read-only finance page at /finance/; Prometheus
// metrics and Go's profiles on ports of their own (-metrics-listen,
// -pprof-listen), never the public one. Every write announces its events
// (the outbox); unless -events=false, this process also sequences them and
// delivers them to webhooks.
//
// Without a database URL it runs its own PostgreSQL (embedded mode, for
// development: `make run`) whose data lives in -data-dir and survives
// restarts; while it runs, <data-dir>/database-url holds the database's
// connection string, where loyaltyctl -data-dir finds it. With one it uses
// that PostgreSQL or CockroachDB.
//
// This is the only place the packages are wired together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/embeddedpg"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/financeweb"
	"github.com/loyalty-ledger/loyalty/internal/datadir"
	"github.com/loyalty-ledger/loyalty/internal/handlerpool"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/migrations"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
	"github.com/loyalty-ledger/loyalty/rpc"
	"github.com/loyalty-ledger/loyalty/statements"
	"github.com/loyalty-ledger/loyalty/tiers"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

const (
	// defaultDataDir is loyaltyctl's default too: it finds the database there.
	defaultDataDir = datadir.Default
	defaultListen  = "127.0.0.1:8080"
	// embeddedDatabase is the database the service uses in embedded mode.
	embeddedDatabase = "loyalty"
	// shutdownGrace is how long in-flight requests get to finish after SIGTERM/SIGINT.
	shutdownGrace = 30 * time.Second
	// backgroundGrace is how long the sequencer and the dispatcher get to
	// stop after the server: the dispatcher's attempts in flight take up to
	// their 10 s timeout, then record their outcome.
	backgroundGrace = 30 * time.Second
	// pruneBatch is the events one pruning transaction deletes at most.
	pruneBatch = 1000
	// handlerWorkers are the goroutines that serve requests (a request
	// that finds all of them busy runs on its own): four times make
	// bench's 16 clients.
	handlerWorkers = 64
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// config is what the flags and environment say.
type config struct {
	databaseURL string
	dataDir     string // absolute; used only in embedded mode
	listen      string
	logLevel    slog.Level
	pprofListen string // empty: no profiling endpoint
	// metricsListen is the address of the Prometheus endpoint; empty: none.
	// Never the service's port: request counts by procedure and code are
	// for operators.
	metricsListen string
	// tierReviewEvery runs the tier review job this often (0: never).
	tierReviewEvery time.Duration
	// expireEvery runs the points expiry job this often (0: never).
	expireEvery time.Duration
	// financeJobsEvery runs the finance rollup and seal jobs this often (0: never).
	financeJobsEvery time.Duration
	// events runs the event sequencer and the webhook dispatcher in this
	// process. Off, the outbox is still written: another process (or a
	// later start) sequences and delivers.
	events bool
	// eventsRetention is how long sequenced events are kept.
	eventsRetention time.Duration
	// pruneEventsEvery runs the events' pruning job this often (0: never).
	pruneEventsEvery time.Duration
	// webhookLease is how long the dispatcher keeps a delivery it
	// attempts: a killed process's deliveries go out again (from another
	// process, or the next start) once their leases run out.
	webhookLease time.Duration
	// statementFont is the TrueType font PDF statements embed;
	// programmeName titles statements.
	statementFont, programmeName string
}

// parseFlags reads the flags, each falling back to its environment
// variable and then to its default. It returns flag.ErrHelp for -h.
func parseFlags(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loyaltyd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(name, def string) string {
		if v, ok := os.LookupEnv(name); ok && v != "" {
			return v
		}
		return def
	}
	var cfg config
	var level string
	fs.StringVar(&cfg.databaseURL, "database-url", env("LOYALTY_DATABASE_URL", ""),
		"PostgreSQL or CockroachDB URL (env LOYALTY_DATABASE_URL); empty runs an embedded PostgreSQL")
	fs.StringVar(&cfg.dataDir, "data-dir", env("LOYALTY_DATA_DIR", defaultDataDir),
		"directory of the embedded PostgreSQL's data, kept across restarts (env LOYALTY_DATA_DIR); while it runs, its "+
			datadir.URLFile+" file holds the database's connection string for loyaltyctl -data-dir")
	fs.StringVar(&cfg.listen, "listen", env("LOYALTY_LISTEN", defaultListen),
		"address to serve HTTP/1.1 and unencrypted HTTP/2 on (env LOYALTY_LISTEN)")
	reviewEvery := env("LOYALTY_TIER_REVIEW_EVERY", "24h")
	fs.Func("tier-review-every", "run the tier review job this often, first a minute after start; 0 turns it off (env LOYALTY_TIER_REVIEW_EVERY, default 24h)", func(v string) error {
		reviewEvery = v
		return nil
	})
	expireEvery := env("LOYALTY_EXPIRE_EVERY", "1h")
	fs.Func("expire-every", "run the points expiry job this often, as of the start of the hour, first two minutes after start; 0 turns it off (env LOYALTY_EXPIRE_EVERY, default 1h)", func(v string) error {
		expireEvery = v
		return nil
	})
	financeEvery := env("LOYALTY_FINANCE_JOBS_EVERY", "1h")
	fs.Func("finance-jobs-every", "roll up and seal the closed days this often, first two minutes after start; 0 turns it off (env LOYALTY_FINANCE_JOBS_EVERY, default 1h)", func(v string) error {
		financeEvery = v
		return nil
	})
	eventsOn := env("LOYALTY_EVENTS", "true")
	fs.Func("events", "sequence events and deliver webhooks in this process: true or false; the outbox is written either way (env LOYALTY_EVENTS, default true)", func(v string) error {
		eventsOn = v
		return nil
	})
	// A boolean flag: -events alone means true.
	if f := fs.Lookup("events"); f != nil {
		f.Value = boolFlag{f.Value}
	}
	retention := env("LOYALTY_EVENTS_RETENTION", "720h")
	fs.Func("events-retention", "keep sequenced events (and their webhook delivery log) this long, at least 24h; older ones an endpoint still needs stay (env LOYALTY_EVENTS_RETENTION, default 720h)", func(v string) error {
		retention = v
		return nil
	})
	pruneEvery := env("LOYALTY_EVENTS_PRUNE_EVERY", "1h")
	fs.Func("events-prune-every", "delete the events older than -events-retention this often, first three minutes after start; 0 turns it off (env LOYALTY_EVENTS_PRUNE_EVERY, default 1h)", func(v string) error {
		pruneEvery = v
		return nil
	})
	lease := env("LOYALTY_WEBHOOK_LEASE", webhooks.DefaultLease.String())
	fs.Func("webhook-lease", fmt.Sprintf("keep a webhook delivery being attempted this long, from %s (it must outlast the attempt's %s timeout, or two processes could send it at once) to %s; a killed process's deliveries go out again once their leases run out (env LOYALTY_WEBHOOK_LEASE, default %s)",
		webhooks.MinLease, webhooks.DefaultAttemptTimeout, webhooks.MaxLease, webhooks.DefaultLease), func(v string) error {
		lease = v
		return nil
	})
	fs.StringVar(&cfg.pprofListen, "pprof-listen", env("LOYALTY_PPROF_LISTEN", ""),
		"address of a separate port serving Go's /debug/pprof profiles, e.g. 127.0.0.1:6060 (env LOYALTY_PPROF_LISTEN); off when empty")
	fs.StringVar(&cfg.metricsListen, "metrics-listen", env("LOYALTY_METRICS_LISTEN", ""),
		"address of a separate port serving Prometheus metrics at /metrics, e.g. 127.0.0.1:9100 (env LOYALTY_METRICS_LISTEN); off when empty")
	fs.StringVar(&cfg.statementFont, "statement-font", env("LOYALTY_STATEMENT_FONT", statements.DefaultFontPath),
		"TrueType font (.ttf, not .ttc) with Chinese glyphs that PDF statements embed (env LOYALTY_STATEMENT_FONT; Debian: apt-get install fonts-droid-fallback); without it PDF statements answer FAILED_PRECONDITION, CSV ones work")
	fs.StringVar(&cfg.programmeName, "programme-name", env("LOYALTY_PROGRAMME_NAME", statements.DefaultProgrammeName),
		"the programme's name, the title of members' statements (env LOYALTY_PROGRAMME_NAME)")
	fs.StringVar(&level, "log-level", env("LOYALTY_LOG_LEVEL", "info"),
		"debug, info, warn or error (env LOYALTY_LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), `Usage: loyaltyd [flags]

Serves the loyalty.v1 Connect/gRPC services, gRPC health and reflection, and
(with -metrics-listen, on a port of its own) Prometheus metrics. Without a database URL it runs an embedded
PostgreSQL whose data lives in -data-dir. A flag wins over its environment
variable. SIGTERM or SIGINT shuts it down gracefully.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	// A value refused is named where it came from: the flag, or, when the
	// flag was not given, its environment variable.
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	source := func(flagName, envName string) string {
		if v, ok := os.LookupEnv(envName); !given[flagName] && ok && v != "" {
			return envName + " (for -" + flagName + ")"
		}
		return "-" + flagName
	}
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "debug":
		cfg.logLevel = slog.LevelDebug
	case "info":
		cfg.logLevel = slog.LevelInfo
	case "warn", "warning":
		cfg.logLevel = slog.LevelWarn
	case "error":
		cfg.logLevel = slog.LevelError
	default:
		return config{}, fmt.Errorf("%s: %q is not debug, info, warn or error", source("log-level", "LOYALTY_LOG_LEVEL"), level)
	}
	if every, err := time.ParseDuration(reviewEvery); err != nil || every < 0 || (every > 0 && every < time.Minute) {
		return config{}, fmt.Errorf("%s: %q is not 0 or a duration of at least 1m", source("tier-review-every", "LOYALTY_TIER_REVIEW_EVERY"), reviewEvery)
	} else {
		cfg.tierReviewEvery = every
	}
	if every, err := time.ParseDuration(expireEvery); err != nil || every < 0 || (every > 0 && every < time.Minute) {
		return config{}, fmt.Errorf("%s: %q is not 0 or a duration of at least 1m", source("expire-every", "LOYALTY_EXPIRE_EVERY"), expireEvery)
	} else {
		cfg.expireEvery = every
	}
	if every, err := time.ParseDuration(financeEvery); err != nil || every < 0 || (every > 0 && every < time.Minute) {
		return config{}, fmt.Errorf("%s: %q is not 0 or a duration of at least 1m", source("finance-jobs-every", "LOYALTY_FINANCE_JOBS_EVERY"), financeEvery)
	} else {
		cfg.financeJobsEvery = every
	}
	if on, err := strconv.ParseBool(strings.TrimSpace(eventsOn)); err != nil {
		return config{}, fmt.Errorf("%s: %q is not true or false", source("events", "LOYALTY_EVENTS"), eventsOn)
	} else {
		cfg.events = on
	}
	if keep, err := time.ParseDuration(retention); err != nil || keep < 24*time.Hour {
		return config{}, fmt.Errorf("%s: %q is not a duration of at least 24h", source("events-retention", "LOYALTY_EVENTS_RETENTION"), retention)
	} else {
		cfg.eventsRetention = keep
	}
	if every, err := time.ParseDuration(pruneEvery); err != nil || every < 0 || (every > 0 && every < time.Minute) {
		return config{}, fmt.Errorf("%s: %q is not 0 or a duration of at least 1m", source("events-prune-every", "LOYALTY_EVENTS_PRUNE_EVERY"), pruneEvery)
	} else {
		cfg.pruneEventsEvery = every
	}
	// Refused rather than raised as the dispatcher would: an operator who
	// asks for a lease shorter than an attempt gets told why not.
	if d, err := time.ParseDuration(lease); err != nil || d < webhooks.MinLease || d > webhooks.MaxLease {
		return config{}, fmt.Errorf("%s: %q is not a duration from %s to %s (a lease must outlast an attempt's %s timeout)", source("webhook-lease", "LOYALTY_WEBHOOK_LEASE"),
			lease, webhooks.MinLease, webhooks.MaxLease, webhooks.DefaultAttemptTimeout)
	} else {
		cfg.webhookLease = d
	}
	if cfg.listen == "" {
		return config{}, errors.New("-listen: an address is required, e.g. " + defaultListen)
	}
	if cfg.databaseURL == "" {
		if cfg.dataDir == "" {
			return config{}, errors.New("-data-dir: a directory is required in embedded mode")
		}
		abs, err := filepath.Abs(cfg.dataDir)
		if err != nil {
			return config{}, fmt.Errorf("-data-dir: %w", err)
		}
		cfg.dataDir = abs
	} else {
		cfg.dataDir = ""
	}
	return cfg, nil
}

// run is the whole program; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "loyaltyd: %v (see loyaltyd -h)\n", err)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.logLevel}))
	slog.SetDefault(logger)
	tuneGC()

	// Signals stop start-up too (initdb, migrations): nothing is left
	// half-done that the next start cannot finish.
	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()

	if err := serve(ctx, stopSignals, cfg, logger, stdout); err != nil {
		logger.Error("loyaltyd: exiting on error", "error", err.Error())
		return 1
	}
	logger.Info("loyaltyd stopped cleanly")
	return 0
}

// tuneGC trades memory the server has to spare for CPU it has not: the
// live heap under load is about 20 MiB, so collecting at 4x instead of 2x
// halves the collector's work, and the soft limit keeps the heap well
// under the 200 MiB budget. GOGC and GOMEMLIMIT, when set, win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(300)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(128 << 20)
	}
}

// serve starts everything, serves until ctx is cancelled, then shuts down
// in order: HTTP (letting in-flight requests finish), the pool, the
// embedded PostgreSQL. The error is nil only for a clean shutdown.
func serve(ctx context.Context, stopSignals func(), cfg config, logger *slog.Logger, stdout io.Writer) (err error) {
	// Cleanups run in reverse order on every exit path; their errors join err.
	var cleanups []func() error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			err = errors.Join(err, cleanups[i]())
		}
	}()

	// The ports first: a start that cannot serve fails before it writes
	// anything, above all the first admin key, whose secret only the
	// banner of a start that serves shows.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.listen, err)
	}
	served := false // once Serve has it, the HTTP server closes ln
	cleanups = append(cleanups, func() error {
		if !served {
			_ = ln.Close()
		}
		return nil
	})
	var metricsLn, pprofLn net.Listener
	if cfg.metricsListen != "" {
		if metricsLn, err = net.Listen("tcp", cfg.metricsListen); err != nil {
			return fmt.Errorf("listen for metrics on %s: %w", cfg.metricsListen, err)
		}
		cleanups = append(cleanups, func() error { _ = metricsLn.Close(); return nil })
	}
	if cfg.pprofListen != "" {
		if pprofLn, err = net.Listen("tcp", cfg.pprofListen); err != nil {
			return fmt.Errorf("listen for profiles on %s: %w", cfg.pprofListen, err)
		}
		cleanups = append(cleanups, func() error { _ = pprofLn.Close(); return nil })
	}

	dbURL := cfg.databaseURL
	// databaseGone is closed when the embedded PostgreSQL exits on its own
	// (nil, never, for a database of its own).
	var databaseGone <-chan struct{}
	if dbURL == "" {
		pg, err := embeddedpg.Start(ctx, embeddedpg.Options{DataDir: cfg.dataDir, Logger: logger})
		if err != nil {
			return fmt.Errorf("start the embedded PostgreSQL: %w", err)
		}
		databaseGone = pg.Exited()
		cleanups = append(cleanups, func() error {
			if err := pg.Stop(); err != nil {
				return fmt.Errorf("stop the embedded PostgreSQL: %w", err)
			}
			return nil
		})
		if err := ensureDatabase(ctx, pg.ConnString("postgres"), embeddedDatabase, logger); err != nil {
			return err
		}
		dbURL = pg.ConnString(embeddedDatabase)
	}

	db, err := database.Open(ctx, dbURL, database.Options{})
	if err != nil {
		return fmt.Errorf("open the database: %w", err)
	}
	cleanups = append(cleanups, func() error {
		if err := db.CloseWithin(poolCloseGrace); err != nil {
			return fmt.Errorf("%w: its connections are dropped with the process", err)
		}
		logger.Info("database pool closed")
		return nil
	})
	poolCfg := db.Pool.Config().ConnConfig
	logger.Info("database connected",
		"engine", string(db.Dialect.Engine),
		"version", db.Dialect.Version,
		"host", poolCfg.Host,
		"database", poolCfg.Database,
		"embedded", cfg.databaseURL == "",
	)

	if err := migrations.Apply(ctx, db.Pool, logger); err != nil {
		return err
	}
	// Every write announces itself in its own transaction, whether or not
	// this process sequences (-events).
	l := ledger.New(db, ledger.Options{Outbox: events.OfTransaction})
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		return fmt.Errorf("create the programme's accounts: %w", err)
	}
	progs := programmes.New(l, nil)
	if err := progs.EnsureDefault(ctx); err != nil {
		return err
	}
	ctlLine := ""
	if cfg.databaseURL == "" {
		// Written once the database is migrated and published: loyaltyctl
		// reading it finds a database it can work on. The socket directory
		// changes on every start, so a file from a killed run is stale:
		// this one replaces it.
		if err := datadir.WriteURL(cfg.dataDir, dbURL); err != nil {
			return fmt.Errorf("leave the database's address for loyaltyctl: %w", err)
		}
		cleanups = append(cleanups, func() error { return datadir.RemoveURL(cfg.dataDir, dbURL) })
		logger.Info("the database's connection string is in the data directory, for loyaltyctl", "file", datadir.URLPath(cfg.dataDir))
		ctlLine = "go run ./cmd/loyaltyctl report trial-balance -data-dir " + shellQuote(cfg.dataDir)
	}

	memberStore := members.New(l, nil)
	keys := apikeys.New(l, nil)
	adminKey, adminSecret, err := keys.EnsureAdmin(ctx)
	if err != nil {
		return err
	}
	if adminSecret != "" {
		// The secret itself goes to stdout once (printBanner), never to the log.
		logger.Info("first admin API key created", "key_id", adminKey.ID)
	}

	m := newMetrics(db, l)
	eventStore := events.NewStore(db)
	webhookStore := webhooks.NewStore(l, nil)
	srv, err := rpc.New(rpc.Config{
		Ledger:        l,
		Members:       memberStore,
		Keys:          keys,
		Programmes:    progs,
		Partners:      partners.New(l, nil),
		Events:        eventStore,
		Webhooks:      webhookStore,
		Logger:        logger,
		Refused:       m.Refused,
		StatementFont: cfg.statementFont,
		ProgrammeName: cfg.programmeName,
	})
	if err != nil {
		return fmt.Errorf("rpc: %w", err)
	}

	reports := finance.New(l, finance.Options{})
	financePage, err := financeweb.New(financeweb.Config{Reports: reports, Keys: keys, Logger: logger,
		Zone: func(ctx context.Context, at time.Time) (*time.Location, error) {
			v, err := progs.At(ctx, at)
			return v.Location, err
		}})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	// More specific than "/", so it wins over the Connect services.
	mux.Handle(financeweb.Path, financePage)
	mux.Handle("/", srv.Handler(m.Interceptor(), logInterceptor(logger)))

	// Requests run on goroutines whose stacks have grown already
	// (internal/handlerpool): as many as the requests usually in flight,
	// with room for event streams, which keep theirs.
	handlers := handlerpool.New(mux, handlerWorkers)
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC without TLS (h2c with prior knowledge)
	httpServer := &http.Server{
		Handler:           handlers,
		Protocols:         protocols,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Event streams never finish by themselves: they end (and their
	// clients resume elsewhere) when the shutdown begins.
	httpServer.RegisterOnShutdown(srv.StopStreams)
	if cfg.pprofListen != "" {
		// A port of its own, never the service's: profiles are for operators.
		profiles := http.NewServeMux()
		profiles.HandleFunc("/debug/pprof/", pprof.Index)
		profiles.HandleFunc("/debug/pprof/profile", pprof.Profile)
		profiles.HandleFunc("/debug/pprof/trace", pprof.Trace)
		profiles.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		profiles.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		pprofServer := &http.Server{Handler: profiles, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := pprofServer.Serve(pprofLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("pprof listener stopped", "error", err.Error())
			}
		}()
		cleanups = append(cleanups, func() error { return pprofServer.Close() })
		logger.Info("profiling endpoint on", "pprof_listen", cfg.pprofListen)
	}
	metricsURL := ""
	if cfg.metricsListen != "" {
		// A port of its own, as pprof's: the public port shows no counts.
		metricsMux := http.NewServeMux()
		metricsMux.Handle("/metrics", m.Handler())
		metricsServer := &http.Server{Handler: metricsMux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsServer.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				logger.Warn("metrics listener stopped", "error", err.Error())
			}
		}()
		cleanups = append(cleanups, func() error { return metricsServer.Close() })
		metricsURL = listenURL(metricsLn.Addr()) + "/metrics"
		logger.Info("metrics endpoint on", "metrics_url", metricsURL)
	}
	jobs := m.jobs
	if cfg.tierReviewEvery > 0 {
		go repeat(ctx, jobs, "tier_review", time.Minute, cfg.tierReviewEvery, jobRetry, func(ctx context.Context) error { return reviewTiers(ctx, memberStore, progs, logger) })
	}
	if cfg.expireEvery > 0 {
		job := expiry.New(l, progs, nil)
		go repeat(ctx, jobs, "points_expiry", 2*time.Minute, cfg.expireEvery, jobRetry, func(ctx context.Context) error { return expirePoints(ctx, job, logger) })
	}
	if cfg.financeJobsEvery > 0 {
		go repeat(ctx, jobs, "finance", 2*time.Minute, cfg.financeJobsEvery, jobRetry, func(ctx context.Context) error { return financeJobs(ctx, reports, logger) })
	}
	if cfg.pruneEventsEvery > 0 {
		go repeat(ctx, jobs, "events_prune", 3*time.Minute, cfg.pruneEventsEvery, jobRetry, func(ctx context.Context) error {
			return pruneEvents(ctx, db, cfg.eventsRetention, logger)
		})
	}
	// The sequencer and the dispatcher outlive the HTTP server: the writes
	// still in flight when it stops announce events to sequence and deliver.
	backgroundCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	cleanups = append(cleanups, func() error { return stopInTime(stopBackground, &background, backgroundGrace, logger) })
	if cfg.events {
		holder := processName()
		sequencer := events.NewSequencer(db, nil, holder)
		dispatcher := webhooks.NewDispatcher(db, webhookStore, webhooks.DispatcherOptions{Holder: holder, Logger: logger, Lease: cfg.webhookLease})
		m.watchDispatcher(dispatcher)
		background.Go(func() { _ = events.RunSequencer(backgroundCtx, sequencer, 0) })
		background.Go(func() { _ = dispatcher.Run(backgroundCtx) })
		logger.Info("events: sequencing and delivering webhooks in this process", "holder", holder, "webhook_lease", cfg.webhookLease.String())
	} else {
		logger.Info("events: -events=false: this process writes events but neither sequences nor delivers them")
	}
	serveErr := make(chan error, 1)
	served = true
	go func() { serveErr <- httpServer.Serve(ln) }()

	url := listenURL(ln.Addr())
	logger.Info("loyaltyd started",
		"engine", string(db.Dialect.Engine),
		"listen", ln.Addr().String(),
		"url", url,
		"data_dir", cfg.dataDir,
		"embedded", cfg.databaseURL == "",
		"admin_key_created", adminSecret != "",
	)
	printBanner(stdout, url, metricsURL, adminSecret, ctlLine)

	// The embedded PostgreSQL gone (killed, out of memory), every call
	// would answer UNAVAILABLE for ever: loyaltyd stops, with an error, so
	// that whoever runs it starts the pair again.
	var stopErr error
	select {
	case <-ctx.Done():
		// A second signal kills at once (the embedded PostgreSQL gets
		// SIGTERM from the kernel when we die and shuts down cleanly).
		stopSignals()
		logger.Info("shutting down: no new connections; waiting for in-flight requests", "grace", shutdownGrace.String())
	case <-databaseGone:
		stopSignals()
		stopErr = errors.New("the embedded PostgreSQL exited on its own (killed? out of memory?): start loyaltyd again")
		logger.Error("the embedded PostgreSQL exited: shutting down", "grace", shutdownGrace.String())
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := httpServer.Shutdown(shutdownCtx); err != nil {
		_ = httpServer.Close()
		return fmt.Errorf("http server: requests still running after %s were cut off: %w", shutdownGrace, err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("http server: %w", err)
	}
	handlers.Close() // every handler has returned: the workers are idle
	logger.Info("http server stopped")
	return stopErr
}

// ensureDatabase creates the named database on the embedded server when it
// does not exist yet.
func ensureDatabase(ctx context.Context, adminConn, name string, logger *slog.Logger) error {
	conn, err := pgx.Connect(ctx, adminConn)
	if err != nil {
		return fmt.Errorf("connect to the embedded PostgreSQL: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	err = conn.QueryRow(ctx, `SELECT 1 FROM pg_database WHERE datname = $1`, name).Scan(&one)
	if err == nil {
		return nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("look for database %s: %w", name, err)
	}
	if _, err := conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	logger.Info("database created", "database", name)
	return nil
}

// listenURL is the URL a client on this machine uses: an unspecified host
// (":8080", "0.0.0.0:8080") is reached through loopback.
func listenURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return "http://" + addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// exampleCurl is the first call to try; README.md's "Try it" starts with it.
const exampleCurl = `curl -s -X POST "$LOYALTY_URL/loyalty.v1.MemberService/EnrollMember" -H "Authorization: Bearer $LOYALTY_KEY" -H 'Content-Type: application/json' -d '{"idempotencyKey":"enrol-1","fullName":"Li Wei","email":"li.wei@example.com","channel":"BOOKING_CHANNEL_APP"}'`

// printBanner tells the operator, on stdout rather than in the log, where
// the server is and how to call it. secret is non-empty only when the first
// admin key was just created: this is the only time it is ever shown.
// ctlLine, in embedded mode, is a loyaltyctl command line that works on
// this server's database.
func printBanner(w io.Writer, url, metricsURL, secret, ctlLine string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nloyaltyd is listening on %s\n\n", url)
	if secret != "" {
		b.WriteString("The first admin API key was created. Its secret is shown only this once; keep it:\n\n")
		fmt.Fprintf(&b, "export LOYALTY_URL=%s\n", url)
		fmt.Fprintf(&b, "export LOYALTY_KEY=%s\n", secret)
	} else {
		b.WriteString("An admin API key already exists: its secret was shown once, when it was created, and cannot be\n")
		b.WriteString("recovered. Set LOYALTY_KEY to a key you hold; to get a new one, call AdminService.CreateApiKey\n")
		b.WriteString("with an admin key.\n\n")
		fmt.Fprintf(&b, "export LOYALTY_URL=%s\n", url)
	}
	b.WriteString("\nTry it:\n\n")
	b.WriteString(exampleCurl + "\n\n")
	fmt.Fprintf(&b, "Finance page (read-only; sign in with any user name and a finance or admin key as the password):\n\n%s%s\n\n", url, financeweb.Path)
	if metricsURL != "" {
		fmt.Fprintf(&b, "Prometheus metrics (operators' port): %s\n\n", metricsURL)
	}
	if ctlLine != "" {
		b.WriteString("The operator's commands (loyaltyctl: the jobs, finance reports) find this embedded database through\n")
		fmt.Fprintf(&b, "its data directory (-data-dir or LOYALTY_DATA_DIR; the default %s from the repository's root), e.g.:\n\n%s\n\n", defaultDataDir, ctlLine)
	}
	io.WriteString(w, b.String())
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-+=:,@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// logInterceptor logs every call at debug level (procedure, outcome, time).
// Failures are logged by the rpc package where they happen.
func logInterceptor(logger *slog.Logger) connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if !logger.Enabled(ctx, slog.LevelDebug) {
				return next(ctx, req)
			}
			start := time.Now()
			resp, err := next(ctx, req)
			logger.DebugContext(ctx, "rpc",
				"procedure", req.Spec().Procedure,
				"protocol", req.Peer().Protocol,
				"code", codeLabel(err),
				"duration", time.Since(start).String(),
			)
			return resp, err
		}
	})
}

// jobRetry is how soon a failed job runs again, the first time.
const jobRetry = time.Minute

// repeat runs a background job first after start and then every
// interval, until ctx ends. Each job resumes from its own checkpoints, so
// a restart, or a second instance doing the same, is harmless. A run that
// fails is tried again sooner: after retry (jobRetry), doubling, at most
// every interval or an hour (a daily review must not miss its day for a
// minute's outage). Each run is counted for /metrics (jobs).
func repeat(ctx context.Context, jobs *jobStats, name string, first, every, retry time.Duration, run func(context.Context) error) {
	timer := time.NewTimer(first)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		started := time.Now()
		err := run(ctx)
		if ctx.Err() != nil {
			return // stopped by the shutdown, not failed
		}
		jobs.ran(name, started, err)
		next := every
		if err != nil {
			failures++
			next = min(retry<<min(failures-1, 6), every, time.Hour)
		} else {
			failures = 0
		}
		timer.Reset(next)
	}
}

// financeJobs rolls up and then seals the closed days. Both read in
// snapshots and write only finance tables, so no ledger write waits.
func financeJobs(ctx context.Context, reports *finance.Reports, logger *slog.Logger) error {
	var failed error
	for _, job := range []struct {
		name string
		run  func(context.Context) (finance.JobProgress, error)
	}{{"finance rollup", reports.RollUp}, {"finance seal", reports.SealDays}} {
		started := time.Now()
		p, err := job.run(ctx)
		if err != nil {
			logger.Error(job.name+" stopped", "error", err.Error(), "days", p.Days)
			failed = errors.Join(failed, fmt.Errorf("%s: %w", job.name, err))
			continue
		}
		logger.Info(job.name+" done", "days", p.Days, "until", p.Until.Format(time.DateOnly), "duration", time.Since(started).String())
	}
	return failed
}

// reviewTiers reviews the tiers as of the start of the hour: a restart
// within the hour resumes that run from its checkpoint, and members
// already reviewed are not due again.
func reviewTiers(ctx context.Context, store *members.Store, progs *programmes.Store, logger *slog.Logger) error {
	asOf := time.Now().UTC().Truncate(time.Hour)
	started := time.Now()
	version, err := progs.At(ctx, asOf)
	if err != nil {
		logger.Error("tier review: no programme version", "as_of", asOf, "error", err.Error())
		return err
	}
	p, err := store.ReviewTiers(ctx, tiers.FromProgramme(version.Programme), asOf, 1000, nil)
	if err != nil {
		logger.Error("tier review stopped", "as_of", asOf, "error", err.Error(), "processed", p.Processed)
		return err
	}
	logger.Info("tier review done", "as_of", asOf, "scanned", p.Processed, "due", p.Due(), "changed", p.Changed,
		"unchanged", p.Unchanged, "not_due", p.NotDue(), "duration", time.Since(started).String())
	return nil
}

// expirePoints expires the lots due by 00:00 today in the programme's time
// zone, booked today (expiry.BookingDay): the day's first run does the work,
// and a restart resumes it from its checkpoint; the later runs of the day
// find it done.
func expirePoints(ctx context.Context, job *expiry.Job, logger *slog.Logger) error {
	asOf, err := job.Today(ctx)
	if err != nil {
		logger.Error("points expiry: no as-of", "error", err.Error())
		return err
	}
	started := time.Now()
	p, err := job.Run(ctx, asOf, 1000, nil)
	if err != nil {
		logger.Error("points expiry stopped", "as_of", asOf, "error", err.Error(), "processed", p.Processed)
		return err
	}
	logger.Info("points expiry done", "as_of", asOf, "members_due", p.Processed, "expired", p.Expired,
		"points", p.Points, "duration", time.Since(started).String())
	return nil
}

// boolFlag makes a flag.Func a boolean flag: "-events" alone is "true".
type boolFlag struct{ flag.Value }

func (boolFlag) IsBoolFlag() bool { return true }

// String is the flag's value. The flag package calls it on a zero
// boolFlag too, to tell whether the default is worth printing in -h.
func (b boolFlag) String() string {
	if b.Value == nil {
		return ""
	}
	return b.Value.String()
}

// processName names this process on the sequencer's and the dispatcher's
// leases: host, pid and a random part, unique across restarts.
func processName() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%d-%08x", host, os.Getpid(), rand.Uint32())
}

// poolCloseGrace bounds closing the database pool at shutdown, past
// which a database that does not answer would hold the exit beyond any
// supervisor's grace (database.DB.CloseWithin).
const poolCloseGrace = 5 * time.Second

// stopInTime cancels the background work and waits for it, at most
// grace: an attempt cut off is retried by whoever runs next (its lease
// runs out), so a stuck one never holds up the shutdown for longer.
func stopInTime(stop context.CancelFunc, wg *sync.WaitGroup, grace time.Duration, logger *slog.Logger) error {
	stop()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		logger.Info("events: sequencer and webhook dispatcher stopped")
		return nil
	case <-time.After(grace):
		return fmt.Errorf("events: the sequencer or the webhook dispatcher was still running %s after the server stopped", grace)
	}
}

// pruneEvents deletes the events older than the retention that no webhook
// endpoint still needs, a batch per transaction.
func pruneEvents(ctx context.Context, db *database.DB, retention time.Duration, logger *slog.Logger) error {
	started := time.Now()
	olderThan := started.Add(-retention)
	n, err := events.Prune(ctx, db, olderThan, pruneBatch)
	if err != nil {
		logger.Error("events pruning stopped", "older_than", olderThan, "error", err.Error(), "deleted", n)
		return err
	}
	logger.Info("events pruning done", "older_than", olderThan, "deleted", n, "duration", time.Since(started).String())
	return nil
}
