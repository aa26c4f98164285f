package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestFlags(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"LOYALTY_DATABASE_URL", "LOYALTY_DATA_DIR", "LOYALTY_LISTEN", "LOYALTY_LOG_LEVEL", "LOYALTY_TIER_REVIEW_EVERY", "LOYALTY_FINANCE_JOBS_EVERY",
		"LOYALTY_EVENTS", "LOYALTY_EVENTS_RETENTION", "LOYALTY_EVENTS_PRUNE_EVERY", "LOYALTY_WEBHOOK_LEASE", "LOYALTY_STATEMENT_FONT", "LOYALTY_PROGRAMME_NAME"} {
		t.Setenv(name, "")
	}

	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{dataDir: filepath.Join(wd, ".data", "postgres"), listen: "127.0.0.1:8080", logLevel: slog.LevelInfo, tierReviewEvery: 24 * time.Hour, expireEvery: time.Hour, financeJobsEvery: time.Hour,
		events: true, eventsRetention: 720 * time.Hour, pruneEventsEvery: time.Hour, webhookLease: 40 * time.Second,
		statementFont: "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", programmeName: "Loyalty Programme"}
	if cfg != want {
		t.Errorf("defaults: got %+v, want %+v", cfg, want)
	}

	// The environment replaces the defaults...
	t.Setenv("LOYALTY_DATA_DIR", "pg")
	t.Setenv("LOYALTY_LISTEN", "127.0.0.1:9000")
	t.Setenv("LOYALTY_LOG_LEVEL", "debug")
	t.Setenv("LOYALTY_TIER_REVIEW_EVERY", "6h")
	t.Setenv("LOYALTY_FINANCE_JOBS_EVERY", "30m")
	t.Setenv("LOYALTY_EVENTS", "false")
	t.Setenv("LOYALTY_EVENTS_RETENTION", "48h")
	t.Setenv("LOYALTY_EVENTS_PRUNE_EVERY", "10m")
	t.Setenv("LOYALTY_WEBHOOK_LEASE", "15s")
	t.Setenv("LOYALTY_STATEMENT_FONT", "/fonts/cjk.ttf")
	t.Setenv("LOYALTY_PROGRAMME_NAME", "华住会")
	cfg, err = parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = config{dataDir: filepath.Join(wd, "pg"), listen: "127.0.0.1:9000", logLevel: slog.LevelDebug, tierReviewEvery: 6 * time.Hour, expireEvery: time.Hour, financeJobsEvery: 30 * time.Minute,
		eventsRetention: 48 * time.Hour, pruneEventsEvery: 10 * time.Minute, webhookLease: 15 * time.Second,
		statementFont: "/fonts/cjk.ttf", programmeName: "华住会"}
	if cfg != want {
		t.Errorf("environment: got %+v, want %+v", cfg, want)
	}

	// ...and a flag wins over the environment.
	t.Setenv("LOYALTY_DATABASE_URL", "postgresql://env@localhost/loyalty")
	cfg, err = parseFlags([]string{"-database-url", "postgresql://flag@localhost/loyalty", "-listen", ":9001", "-log-level", "WARN", "-tier-review-every", "0", "-expire-every", "0", "-finance-jobs-every", "0",
		"-events", "-events-retention", "168h", "-events-prune-every", "0", "-webhook-lease", "10m",
		"-statement-font", "/flag/font.ttf", "-programme-name", "Rewards"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// With a database URL there is no embedded data directory.
	want = config{databaseURL: "postgresql://flag@localhost/loyalty", listen: ":9001", logLevel: slog.LevelWarn,
		events: true, eventsRetention: 168 * time.Hour, webhookLease: 10 * time.Minute, statementFont: "/flag/font.ttf", programmeName: "Rewards"}
	if cfg != want {
		t.Errorf("flags: got %+v, want %+v", cfg, want)
	}

	for _, args := range [][]string{{"-log-level", "loud"}, {"-listen", ""}, {"extra"}, {"-no-such-flag"}, {"-tier-review-every", "5s"}, {"-finance-jobs-every", "10s"}, {"-expire-every", "-1h"},
		{"-events=maybe"}, {"-events-retention", "1h"}, {"-events-retention", "0"}, {"-events-prune-every", "30s"},
		// A lease shorter than an attempt's 10 s timeout could let two
		// processes send one delivery at once.
		{"-webhook-lease", "2s"}, {"-webhook-lease", "10s"}, {"-webhook-lease", "11m"}, {"-webhook-lease", "0"}, {"-webhook-lease", "soon"}} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded, want an error", args)
		}
	}

	// A value refused is named where it came from.
	t.Setenv("LOYALTY_EXPIRE_EVERY", "10")
	if _, err := parseFlags(nil, io.Discard); err == nil || !strings.HasPrefix(err.Error(), "LOYALTY_EXPIRE_EVERY (for -expire-every): ") {
		t.Errorf("a bad environment variable: %v; want it named", err)
	}
	if _, err := parseFlags([]string{"-expire-every", "10"}, io.Discard); err == nil || !strings.HasPrefix(err.Error(), "-expire-every: ") {
		t.Errorf("a bad flag over the environment: %v; want the flag named", err)
	}
}

// An operator's first command: -h lists every flag, and nothing else
// (the flag package once printed a panic of ours in the middle of it).
func TestHelpListsEveryFlag(t *testing.T) {
	var out strings.Builder
	if _, err := parseFlags([]string{"-h"}, &out); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("parseFlags(-h): %v, want flag.ErrHelp", err)
	}
	help := out.String()
	if strings.Contains(help, "panic") {
		t.Errorf("-h printed a panic:\n%s", help)
	}
	for _, name := range []string{"data-dir", "database-url", "events", "events-prune-every", "events-retention", "expire-every", "finance-jobs-every",
		"listen", "log-level", "metrics-listen", "pprof-listen", "programme-name", "statement-font", "tier-review-every", "webhook-lease"} {
		if !strings.Contains(help, "\n  -"+name+" ") && !strings.Contains(help, "\n  -"+name+"\n") {
			t.Errorf("-h does not list -%s:\n%s", name, help)
		}
	}
}

// TestABusyPortFailsTheStartBeforeAnythingIsWritten: the first admin
// key's secret is shown once, by the banner of a start that serves. A
// start whose port (or metrics or profiles port) is taken must fail before it creates
// the key, or nobody would ever hold an admin key: it fails before the
// database is even set up, and the next start shows the key.
func TestABusyPortFailsTheStartBeforeAnythingIsWritten(t *testing.T) {
	bin := buildServer(t)
	dataDir := postgresDataDir(t)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, flags := range [][]string{
		{"-listen", busy.Addr().String()},
		{"-listen", freeAddr(t), "-metrics-listen", busy.Addr().String()},
		{"-listen", freeAddr(t), "-pprof-listen", busy.Addr().String()},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		cmd := exec.CommandContext(ctx, bin, append([]string{"-data-dir", dataDir}, flags...)...)
		cmd.Env = childEnv()
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		cancel()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 {
			t.Fatalf("loyaltyd %v: %v, want exit status 1; stderr:\n%s", flags, err, stderr.String())
		}
		if !strings.Contains(stderr.String(), "address already in use") || stdout.Len() != 0 {
			t.Errorf("loyaltyd %v: stdout %q; stderr does not name the busy port:\n%s", flags, stdout.String(), stderr.String())
		}
		if _, err := os.Stat(dataDir); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("loyaltyd %v left a data directory (%v): it set up the database before it had its ports", flags, err)
		}
	}

	srv := startServer(t, bin, dataDir)
	if !regexp.MustCompile(`(?m)^export LOYALTY_KEY=lk_\S+$`).MatchString(srv.stdout()) {
		t.Errorf("the first start that serves shows no admin key:\n%s", srv.stdout())
	}
	srv.stop(t)
}

// TestAFailedJobRunsAgainSoon: a background job that fails runs again
// after the retry delay, doubling, not a whole interval later (a daily tier
// review missed its day for a minute's outage), and every run is counted
// for /metrics: by result, and when the last success ended.
func TestAFailedJobRunsAgainSoon(t *testing.T) {
	jobs := newJobStats()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var runs []time.Duration // since start
	start := time.Now()
	go repeat(ctx, jobs, "tier_review", time.Millisecond, 24*time.Hour, 20*time.Millisecond, func(context.Context) error {
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, time.Since(start))
		if len(runs) <= 2 {
			return errors.New("the database does not answer")
		}
		return nil // the next run is a day later
	})
	for testutil.ToFloat64(jobs.runs.WithLabelValues("tier_review", "ok")) < 1 {
		if time.Since(start) > 10*time.Second {
			t.Fatal("no successful run within 10 s: a failed run waits the whole interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(runs) != 3 {
		t.Fatalf("%d runs, want 3", len(runs))
	}
	if gap := runs[2] - runs[1]; gap < 40*time.Millisecond {
		t.Errorf("the second retry came %s after the first, want the delay doubled (40ms)", gap)
	}
	if got := testutil.ToFloat64(jobs.runs.WithLabelValues("tier_review", "failed")); got != 2 {
		t.Errorf("%v failed runs counted, want 2", got)
	}
	if last := testutil.ToFloat64(jobs.lastSuccess.WithLabelValues("tier_review")); time.Since(time.Unix(int64(last), 0)) > time.Minute {
		t.Errorf("last success at %v", last)
	}
}
