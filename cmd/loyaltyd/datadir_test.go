package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	readmeJobsBegin = "<!-- readme-jobs:begin -->"
	readmeJobsEnd   = "<!-- readme-jobs:end -->"
	// goRunLoyaltyctl is how the banner and the README run loyaltyctl
	// from the repository's root; the test runs the same program built.
	goRunLoyaltyctl = "go run ./cmd/loyaltyctl"
)

// TestLoyaltyctlFindsTheEmbeddedDatabase: loyaltyd in embedded mode, as
// make run starts it, leaves its database's connection string in
// <data-dir>/database-url (mode 0600) and prints a loyaltyctl command line
// that works with -data-dir alone; the README's jobs lines run against it
// with LOYALTY_DATA_DIR. After a SIGKILL the file is stale, and the next
// start replaces it; after a clean stop it is gone, and loyaltyctl says
// what to do.
func TestLoyaltyctlFindsTheEmbeddedDatabase(t *testing.T) {
	bash := requireTool(t, "bash")
	bin := buildServer(t)
	ctl := buildLoyaltyctl(t)
	dataDir := postgresDataDir(t)
	urlFile := filepath.Join(dataDir, "database-url")

	srv := startServer(t, bin, dataDir)
	first := readURLFile(t, urlFile)
	line := bannerCtlLine(t, srv, dataDir)
	if out, err := runCtl(t, bash, ctl, line); err != nil || !strings.Contains(out, "total 0") {
		t.Fatalf("the banner's loyaltyctl line %q: %v; want a balanced trial balance:\n%s", line, err, out)
	}
	// The README's jobs, on LOYALTY_DATA_DIR instead of the default.
	script := readmeBlock(t, readmeJobsBegin, readmeJobsEnd)
	if !strings.Contains(script, goRunLoyaltyctl+" expire\n") || !strings.Contains(script, goRunLoyaltyctl+" tiers review -as-of") {
		t.Fatalf("the README's jobs lines run no expire and tiers review:\n%s", script)
	}
	out, err := runCtl(t, bash, ctl, script, "LOYALTY_DATA_DIR="+dataDir)
	if err != nil {
		t.Fatalf("the README's jobs lines failed: %v\n%s", err, out)
	}
	// As of 00:00 today in Shanghai, wherever the test runs.
	if !regexp.MustCompile(`points expiry as of \d{4}-\d\d-\d\dT00:00:00\+08:00 \(Asia/Shanghai, the programme's time zone\)`).MatchString(out) ||
		!strings.Contains(out, "total 0") {
		t.Errorf("the README's jobs lines did not expire as of 00:00 Shanghai time and balance:\n%s", out)
	}

	// Killed: the file stays behind, naming a server that is gone; the
	// next start replaces it.
	srv.stopped = true
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-srv.done
	if stale := readURLFile(t, urlFile); stale != first {
		t.Fatalf("after SIGKILL the file holds %q, want the killed run's %q", stale, first)
	}
	srv = startServer(t, bin, dataDir)
	if second := readURLFile(t, urlFile); second == first {
		t.Errorf("the restart left the killed run's connection string %q", first)
	}
	if out, err := runCtl(t, bash, ctl, bannerCtlLine(t, srv, dataDir)); err != nil {
		t.Fatalf("after a restart, the banner's loyaltyctl line: %v\n%s", err, out)
	}

	// Stopped cleanly: no file, and loyaltyctl says what to do.
	srv.stop(t)
	if _, err := os.Stat(urlFile); !os.IsNotExist(err) {
		t.Errorf("after a clean stop %s: %v; want it removed", urlFile, err)
	}
	out, err = runCtl(t, bash, ctl, goRunLoyaltyctl+" report trial-balance -data-dir "+shellQuote(dataDir))
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(out, "start loyaltyd (make run) or give -database-url") {
		t.Errorf("loyaltyctl with no server: %v; want exit 2 saying to start loyaltyd or give -database-url:\n%s", err, out)
	}
}

// bannerCtlLine is the loyaltyctl command line the banner printed.
func bannerCtlLine(t *testing.T, srv *server, dataDir string) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(goRunLoyaltyctl) + ` .*$`).FindString(srv.stdout())
	if m == "" || !strings.HasSuffix(m, " -data-dir "+shellQuote(dataDir)) {
		t.Fatalf("the banner has no loyaltyctl line with -data-dir %s:\n%s", dataDir, srv.stdout())
	}
	return m
}

// readURLFile reads the data directory's connection string and checks
// that only its owner may read it.
func readURLFile(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no connection string for loyaltyctl: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("%s has mode %o, want 0600", path, perm)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.Contains(string(data), "dbname='loyalty'") {
		t.Fatalf("%s holds %q (%v), want the loyalty database's connection string", path, data, err)
	}
	return string(data)
}

// runCtl runs the shell lines from the repository's root with the built
// loyaltyctl in place of `go run ./cmd/loyaltyctl`, without the caller's
// LOYALTY_* variables but with env; it returns stdout and stderr together.
func runCtl(t *testing.T, bash, ctl, lines string, env ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "-euo", "pipefail", "-c", strings.ReplaceAll(lines, goRunLoyaltyctl, shellQuote(ctl)))
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(childEnv(), env...)
	out, err := cmd.CombinedOutput()
	t.Logf("%s\n%s", lines, out)
	return string(out), err
}

// buildLoyaltyctl builds loyaltyctl into a temporary directory.
func buildLoyaltyctl(t *testing.T) string {
	t.Helper()
	goTool := requireTool(t, "go")
	bin := filepath.Join(t.TempDir(), "loyaltyctl")
	if out, err := exec.Command(goTool, "build", "-o", bin, "../loyaltyctl").CombinedOutput(); err != nil {
		t.Fatalf("go build loyaltyctl: %v\n%s", err, out)
	}
	return bin
}

// TestTheREADMEImportsStays runs the README's import lines after its Try
// it lines, in one shell, against loyaltyd as make run starts it: the
// three-line file's two stays are recorded, the results file says so row
// by row, and the same command again records nothing twice (both rows
// replayed, with the first import's transactions and points).
func TestTheREADMEImportsStays(t *testing.T) {
	bash := requireTool(t, "bash")
	requireTool(t, "curl")
	bin := buildServer(t)
	ctl := buildLoyaltyctl(t)
	srv := startServer(t, bin, postgresDataDir(t))
	m := regexp.MustCompile(`(?m)^export LOYALTY_KEY=(lk_\S+)$`).FindStringSubmatch(srv.stdout())
	if m == nil {
		t.Fatalf("no admin key in the banner:\n%s", srv.stdout())
	}
	importLines := readmeBlock(t, "<!-- readme-import:begin -->", "<!-- readme-import:end -->")
	if !strings.Contains(importLines, goRunLoyaltyctl+" import stays stays.csv") || strings.Count(importLines, ",CNY,") != 2 {
		t.Fatalf("the README's import lines are not a three-line file and the import command:\n%s", importLines)
	}
	dir := t.TempDir()
	run := func(lines string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bash, "-euo", "pipefail", "-c", strings.ReplaceAll(lines, goRunLoyaltyctl, shellQuote(ctl)))
		cmd.Dir = dir
		cmd.Env = append(childEnv(), "LOYALTY_URL="+srv.url, "LOYALTY_KEY="+m[1])
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the README's lines failed: %v\n%s\n%s", err, lines, out)
		}
		return string(out)
	}
	out := run(readmeScript(t) + "\n" + importLines)
	recorded := regexp.MustCompile(`(?m)^[23],recorded,[0-9a-f-]{36},[1-9][0-9]*,`)
	if got := recorded.FindAllString(out, -1); len(got) != 2 {
		t.Fatalf("the results file does not show lines 2 and 3 recorded with a transaction and points:\n%s", out)
	}
	again := run(`MEMBER=$(sed -n 2p stays.csv | cut -d, -f3)` + "\n" + importLines[strings.Index(importLines, goRunLoyaltyctl):])
	if got := recorded.FindAllString(again, -1); len(got) != 2 {
		t.Fatalf("the same import again does not replay both rows as recorded:\n%s", again)
	}
	if first, second := recorded.FindAllString(out, -1), recorded.FindAllString(again, -1); strings.Join(first, "\n") != strings.Join(second, "\n") {
		t.Fatalf("the second import answered other transactions:\n%s\nthen\n%s", first, second)
	}
}
