package embeddedpg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// testLogger sends the package's log lines to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

func connect(t *testing.T, connString string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		t.Fatalf("connect %q: %v", connString, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func exec1(t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryString(t *testing.T, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	var v string
	if err := conn.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// reachableTempDir is a temporary directory the server user can get
// through (t.TempDir is 0700 root-owned when tests run as root).
func reachableTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "epgtest-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestBinDir(t *testing.T) {
	dir, err := BinDir()
	if err != nil {
		t.Fatalf("BinDir: %v", err)
	}
	for _, name := range []string{"postgres", "initdb"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("BinDir() = %s, which lacks %s: %v", dir, name, err)
		}
	}
	t.Logf("BinDir() = %s", dir)

	t.Setenv("PG_BINDIR", dir)
	if got, err := BinDir(); err != nil || got != dir {
		t.Errorf("with PG_BINDIR=%s: BinDir() = %q, %v", dir, got, err)
	}

	t.Setenv("PG_BINDIR", t.TempDir())
	_, err = BinDir()
	if !errors.Is(err, ErrNotInstalled) {
		t.Errorf("with PG_BINDIR pointing at an empty directory: err = %v, want ErrNotInstalled", err)
	} else if !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Errorf("error does not say what to install: %v", err)
	}
}

func TestVersionHelpers(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int // sign
	}{
		{"9.6", "15", -1}, {"15", "9.6", 1}, {"15", "16", -1}, {"16", "16", 0}, {"10", "9", 1}, {"16.2", "16", 1},
	} {
		got := compareVersions(tc.a, tc.b)
		if (got < 0 && tc.want >= 0) || (got > 0 && tc.want <= 0) || (got == 0 && tc.want != 0) {
			t.Errorf("compareVersions(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
	for v, want := range map[string]string{"15.18": "15", "9.6.24": "9.6", "17beta1": "17", "16": "16"} {
		if got := majorVersion(v); got != want {
			t.Errorf("majorVersion(%q) = %q, want %q", v, got, want)
		}
	}
}

func TestThrowaway(t *testing.T) {
	t.Parallel()
	s := startServer(t, Options{Throwaway: true, Settings: map[string]string{"max_connections": "20"}})

	if !regexp.MustCompile(`^\d+\.\d+`).MatchString(s.Version()) {
		t.Errorf("Version() = %q, want something like 15.18", s.Version())
	}
	if len(filepath.Join(s.socketDir, ".s.PGSQL.5432")) >= 100 {
		t.Errorf("socket path %s is too long", s.socketDir)
	}
	if _, err := pgx.ParseConfig(s.ConnString("postgres")); err != nil {
		t.Fatalf("ParseConfig(%q): %v", s.ConnString("postgres"), err)
	}

	conn := connect(t, s.ConnString("postgres"))
	if got := queryString(t, conn, "SELECT 1::text"); got != "1" {
		t.Errorf("SELECT 1 = %q", got)
	}
	if got := queryString(t, conn, "SHOW server_version"); !strings.HasPrefix(got, s.Version()) {
		t.Errorf("server_version %q does not start with Version() %q", got, s.Version())
	}
	for name, want := range map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "20", "listen_addresses": ""} {
		if got := queryString(t, conn, "SELECT current_setting($1)", name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}

	exec1(t, conn, "CREATE TABLE things (id int PRIMARY KEY, name text NOT NULL)")
	exec1(t, conn, "INSERT INTO things VALUES (1, 'one'), (2, 'two')")
	if got := queryString(t, conn, "SELECT string_agg(name, ',' ORDER BY id) FROM things"); got != "one,two" {
		t.Errorf("read back %q", got)
	}

	// A database whose name needs quoting in the connection string.
	exec1(t, conn, `CREATE DATABASE "it's here"`)
	conn2 := connect(t, s.ConnString("it's here"))
	if got := queryString(t, conn2, "SELECT current_database()"); got != "it's here" {
		t.Errorf("current_database() = %q", got)
	}
	conn2.Close(context.Background())
	conn.Close(context.Background())

	runDir := s.runDir
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := os.Stat(runDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run directory %s still there after Stop (err=%v)", runDir, err)
	}
}

func TestTCPPort(t *testing.T) {
	t.Parallel()
	// Take a free port from the kernel; another process could grab it before
	// postgres does, but that is unlikely in a test run.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	s := startServer(t, Options{Throwaway: true, Port: port})
	if !strings.Contains(s.ConnString("x"), "port="+strconv.Itoa(port)) {
		t.Errorf("ConnString %q does not use port %d", s.ConnString("x"), port)
	}
	connect(t, s.ConnString("postgres")) // unix socket named after the port
	conn := connect(t, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres sslmode=disable", port))
	if got := queryString(t, conn, "SELECT 1::text"); got != "1" {
		t.Errorf("SELECT 1 over TCP = %q", got)
	}
}

func TestPersistentDataDir(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(reachableTempDir(t), "state", "pgdata")
	ctx := context.Background()

	s := startServer(t, Options{DataDir: dataDir})
	conn := connect(t, s.ConnString("postgres"))
	exec1(t, conn, "CREATE TABLE kept (v text)")
	exec1(t, conn, "INSERT INTO kept VALUES ('survives')")
	conn.Close(ctx)

	// A second server on the same live data directory must fail clearly.
	_, err := Start(ctx, Options{DataDir: dataDir, Logger: testLogger(t)})
	if err == nil {
		t.Fatal("second Start on a data directory in use succeeded")
	}
	if !strings.Contains(err.Error(), "postmaster.pid") {
		t.Errorf("second Start error does not show the server log's lock-file complaint: %v", err)
	}
	t.Logf("second Start failed as expected: %v", err)
	if m := regexp.MustCompile(`server log kept at (\S+)\)`).FindStringSubmatch(err.Error()); m != nil {
		os.RemoveAll(filepath.Dir(m[1]))
	} else {
		t.Errorf("error does not name the server log: %v", err)
	}

	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Fatalf("Stop removed the persistent data directory: %v", err)
	}

	s2 := startServer(t, Options{DataDir: dataDir})
	conn = connect(t, s2.ConnString("postgres"))
	if got := queryString(t, conn, "SELECT v FROM kept"); got != "survives" {
		t.Errorf("after restart, row = %q", got)
	}
	conn.Close(ctx)
	if err := s2.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); err != nil {
		t.Fatalf("Stop removed the persistent data directory: %v", err)
	}
}

func TestStartFailureShowsLog(t *testing.T) {
	t.Parallel()
	_, err := Start(context.Background(), Options{
		Throwaway: true,
		Settings:  map[string]string{"no_such_setting_xyz": "1"},
		Logger:    testLogger(t),
	})
	if err == nil {
		t.Fatal("Start with a bogus setting succeeded")
	}
	t.Logf("Start failed as expected: %v", err)
	if !strings.Contains(err.Error(), "no_such_setting_xyz") || !strings.Contains(err.Error(), "last lines of") {
		t.Errorf("error lacks the log tail: %v", err)
	}
	m := regexp.MustCompile(`server log kept at (\S+)\)`).FindStringSubmatch(err.Error())
	if m == nil {
		t.Fatalf("error does not name the server log: %v", err)
	}
	runDir := filepath.Dir(m[1])
	defer os.RemoveAll(runDir)
	// The log stays for the operator, with the owner's PID, by which the
	// next run sweeps the directory once this process is gone.
	entries, _ := os.ReadDir(runDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != fmt.Sprint([]string{ownerFile, logName}) {
		t.Errorf("after a failed Start, run directory holds %v, want only the owner and the log", names)
	}
}

func TestUnreachableDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the data directory to another user")
	}
	t.Parallel()
	private := t.TempDir() // 0700, root's
	_, err := Start(context.Background(), Options{DataDir: filepath.Join(private, "pg"), Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "cannot get through") {
		t.Fatalf("Start on a DataDir the postgres user cannot reach: err = %v", err)
	}
}

// TestDeathSignal checks that a temporary server does not outlive a test
// binary that dies without calling Stop.
func TestDeathSignal(t *testing.T) {
	if os.Getenv("EMBEDDEDPG_HELPER") == "1" {
		deathSignalHelper()
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDeathSignal$", "-test.count=1")
	cmd.Env = append(os.Environ(), "EMBEDDEDPG_HELPER=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	var pid int
	var runDir string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if n, _ := fmt.Sscanf(sc.Text(), "HELPER pid=%d rundir=%s", &pid, &runDir); n == 2 {
			break
		}
	}
	if pid == 0 {
		cmd.Wait()
		t.Fatal("helper did not report a server")
	}
	defer os.RemoveAll(runDir)
	if !running(pid) {
		t.Fatalf("postgres pid %d not running while the helper is", pid)
	}

	cmd.Process.Kill() // crash: no Stop
	cmd.Wait()
	killed := time.Now()
	for running(pid) {
		if time.Since(killed) > 20*time.Second {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("postgres pid %d outlived its parent", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func deathSignalHelper() {
	s, err := Start(context.Background(), Options{Throwaway: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	fmt.Printf("HELPER pid=%d rundir=%s\n", s.proc.cmd.Process.Pid, s.runDir)
	time.Sleep(time.Minute)
	os.Exit(3)
}
