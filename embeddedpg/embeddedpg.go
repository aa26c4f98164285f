// Package embeddedpg runs a private PostgreSQL server from the PostgreSQL
// server binaries installed on the machine (on Debian/Ubuntu, the
// postgresql package's /usr/lib/postgresql/<version>/bin).
//
// It exists for two callers: the test harness, which wants a throwaway
// cluster per test package, and the service's embedded mode (`make run`),
// which wants a cluster whose data survives restarts. Each Server listens on
// a unix socket in its own private directory (and optionally on a loopback TCP
// port chosen by the caller), so any number of servers can run side by side on
// one machine without sharing global state or fixed ports.
//
// PostgreSQL refuses to run as root. When the calling process is root, the
// cluster is created and the server run as the "postgres" system user (made
// by the Debian postgresql package), and the directories it needs are handed
// to that user.
package embeddedpg

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled is returned (wrapped) by BinDir and Start when no
// PostgreSQL server binaries can be found.
var ErrNotInstalled = errors.New("PostgreSQL server binaries not found: install them with `apt-get install postgresql` (Debian/Ubuntu) or set PG_BINDIR")

const (
	// superuser is the database superuser created by initdb and used by ConnString.
	superuser = "postgres"
	// defaultPort names the unix socket when no TCP port was asked for. The
	// socket lives in a private directory, so the name never clashes.
	defaultPort = 5432
	// readyTimeout bounds how long Start waits for the server to accept connections.
	readyTimeout = 30 * time.Second
	// stopTimeout bounds how long Stop waits for a fast shutdown before killing.
	stopTimeout = 30 * time.Second
	// maxSocketPath keeps the socket path well inside sun_path (108 bytes).
	maxSocketPath = 100
	// logTailLines is how many lines of the server log go into errors.
	logTailLines = 20
	logName      = "postgres.log"
)

// Options says where and how to run the server.
type Options struct {
	// DataDir holds the cluster. Empty: a fresh temporary directory that Stop removes.
	// Non-empty: created with initdb if it holds no cluster yet (no PG_VERSION file), reused otherwise (so data survives restarts).
	DataDir string
	// Throwaway turns off fsync, synchronous_commit and full_page_writes: for test clusters only, never for data that must survive.
	Throwaway bool
	// Port, when > 0, also listens on 127.0.0.1:Port. The server always listens on a unix socket in a private directory.
	Port int
	// Settings are extra postgres -c name=value settings (e.g. max_connections).
	Settings map[string]string
	// Logger receives the server's start/stop lines; nil means slog.Default(). Server output (stderr/stdout) goes to a logfile
	// inside the run directory, whose path is in errors when start fails (with the last lines of that log).
	Logger *slog.Logger
}

// Server is a running PostgreSQL server started by Start. Stop it with Stop.
type Server struct {
	logger    *slog.Logger
	version   string
	runDir    string // temporary; holds the socket dir, the log and (for temporary clusters) the data dir
	socketDir string
	dataDir   string
	tempData  bool // dataDir is inside runDir
	port      int
	logPath   string
	proc      *process
	started   time.Time

	stopOnce sync.Once
	stopErr  error
}

// runAs is the identity the server processes run under.
type runAs struct {
	cred    *syscall.Credential // nil: the current user
	uid     int
	gid     int
	gids    []uint32 // all groups, for permission checks
	name    string
	changed bool // cred != nil
}

// Start creates (if needed) and starts a PostgreSQL server as described by
// opts and waits until it accepts connections. ctx bounds the whole start-up
// (together with an internal 30 s readiness limit); it does not affect the
// server once Start has returned.
func Start(ctx context.Context, opts Options) (*Server, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("embeddedpg: invalid port %d", opts.Port)
	}
	for name := range opts.Settings {
		if name == "" || strings.ContainsAny(name, "= \t\n") {
			return nil, fmt.Errorf("embeddedpg: invalid setting name %q", name)
		}
	}

	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	postgresBin := filepath.Join(binDir, "postgres")
	initdbBin := filepath.Join(binDir, "initdb")
	version, err := binaryVersion(ctx, postgresBin)
	if err != nil {
		return nil, err
	}

	who, err := serverUser()
	if err != nil {
		return nil, err
	}

	s := &Server{
		logger:  logger,
		version: version,
		port:    defaultPort,
		started: time.Now(),
	}
	if opts.Port > 0 {
		s.port = opts.Port
	}

	if err := s.makeRunDir(who); err != nil {
		return nil, err
	}
	// From here on, failures go through s.fail, which removes what was made
	// but keeps the log so its path in the error stays useful.

	newCluster := false
	if opts.DataDir == "" {
		s.tempData = true
		s.dataDir = filepath.Join(s.runDir, "data")
		if err := os.Mkdir(s.dataDir, 0o700); err != nil {
			return nil, s.fail(fmt.Errorf("embeddedpg: create data directory: %w", err))
		}
		if err := who.chown(s.dataDir); err != nil {
			return nil, s.fail(err)
		}
		newCluster = true
	} else {
		s.dataDir, err = filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, s.fail(fmt.Errorf("embeddedpg: data directory: %w", err))
		}
		newCluster, err = preparePersistentDataDir(s.dataDir, who, version)
		if err != nil {
			return nil, s.fail(err)
		}
		// A run killed a moment ago leaves its postmaster shutting down.
		if err := waitForPreviousPostmaster(ctx, s.logger, s.dataDir, previousPostmasterWait); err != nil {
			return nil, s.fail(err)
		}
	}

	// Throwaway clusters (and temporary data directories) are not worth a
	// clean shutdown if we die: SIGQUIT is postgres's immediate shutdown.
	// Clusters that hold real data get SIGTERM (smart shutdown).
	deathSig := syscall.SIGTERM
	if s.tempData || opts.Throwaway {
		deathSig = syscall.SIGQUIT
	}

	if newCluster {
		if err := s.initdb(ctx, initdbBin, who, deathSig); err != nil {
			return nil, s.fail(err)
		}
	}

	listen := ""
	if opts.Port > 0 {
		listen = "127.0.0.1"
	}
	args := []string{
		"-D", s.dataDir,
		"-k", s.socketDir,
		"-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=" + listen,
	}
	if opts.Throwaway {
		args = append(args,
			"-c", "fsync=off",
			"-c", "synchronous_commit=off",
			"-c", "full_page_writes=off",
		)
	}
	// Caller settings come last: on the postgres command line the last -c wins.
	for _, name := range slices.Sorted(maps.Keys(opts.Settings)) {
		args = append(args, "-c", name+"="+opts.Settings[name])
	}

	logFile, err := s.openLog(who)
	if err != nil {
		return nil, s.fail(err)
	}
	cmd := exec.Command(postgresBin, args...)
	cmd.Dir = s.runDir
	cmd.Env = serverEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// Setpgid: a terminal's Ctrl-C goes to our process group only, so the
	// server is stopped by its owner, after in-flight work has drained.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: who.cred, Pdeathsig: deathSig, Setpgid: true}
	s.proc, err = startProcess(cmd)
	logFile.Close() // the child has its own copy
	if err != nil {
		return nil, s.fail(fmt.Errorf("embeddedpg: start %s: %w", postgresBin, err))
	}

	if err := s.waitReady(ctx); err != nil {
		return nil, s.fail(err)
	}

	logger.Info("embeddedpg: postgres started",
		"version", s.version,
		"pid", s.proc.cmd.Process.Pid,
		"socket_dir", s.socketDir,
		"port", s.port,
		"tcp", opts.Port > 0,
		"data_dir", s.dataDir,
		"temporary", s.tempData,
		"throwaway", opts.Throwaway,
		"user", who.name,
		"elapsed", time.Since(s.started).Round(time.Millisecond).String(),
	)
	return s, nil
}

// ConnString returns a libpq keyword/value connection string, accepted by
// pgx.ParseConfig, for the named database as user "postgres" via the unix
// socket. An empty database means "postgres".
func (s *Server) ConnString(database string) string {
	if database == "" {
		database = "postgres"
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteValue(s.socketDir), s.port, superuser, quoteValue(database))
}

// PID returns the process id of the postmaster; the backends are its
// children.
func (s *Server) PID() int { return s.proc.cmd.Process.Pid }

// Version returns the server version string from the binaries (e.g. "15.18").
func (s *Server) Version() string { return s.version }

// Exited is closed when the server's process has exited: after Stop, or
// on its own (killed, crashed), when nothing serves the database any more.
func (s *Server) Exited() <-chan struct{} { return s.proc.done }

// Stop shuts the server down (fast shutdown, wait up to 30s, then kill) and
// removes the temporary directories it created; a persistent DataDir is left
// alone. It is safe to call more than once (and concurrently): later calls
// return the first call's result.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() { s.stopErr = s.stop() })
	return s.stopErr
}

func (s *Server) stop() error {
	var errs []error
	pid := s.proc.cmd.Process.Pid
	select {
	case <-s.proc.done:
		// It died on its own before we asked: say so, with its log.
		how := "cleanly"
		if s.proc.err != nil {
			how = s.proc.err.Error()
		}
		errs = append(errs, fmt.Errorf("embeddedpg: postgres (pid %d) had already exited (%s) before Stop%s",
			pid, how, s.logTail()))
	default:
		if err := s.proc.stop(syscall.SIGINT, stopTimeout); err != nil {
			s.logger.Warn("embeddedpg: postgres did not shut down in time; killed it", "pid", pid, "timeout", stopTimeout.String())
			errs = append(errs, fmt.Errorf("embeddedpg: %w%s", err, s.logTail()))
		} else if s.proc.err != nil {
			errs = append(errs, fmt.Errorf("embeddedpg: postgres (pid %d) shutdown: %v%s", pid, s.proc.err, s.logTail()))
		}
	}
	if err := os.RemoveAll(s.runDir); err != nil {
		errs = append(errs, fmt.Errorf("embeddedpg: remove run directory: %w", err))
	}
	s.logger.Info("embeddedpg: postgres stopped", "pid", pid, "data_dir", s.dataDir, "temporary", s.tempData)
	return errors.Join(errs...)
}

// fail cleans up after a failed Start: it stops the server if it is running
// and removes everything it created except the log, whose path and last lines
// it adds to err.
func (s *Server) fail(err error) error {
	if s.proc != nil {
		// Immediate shutdown: nothing worth saving was written yet, and a
		// persistent cluster recovers from its WAL on the next start.
		_ = s.proc.stop(syscall.SIGQUIT, 5*time.Second)
	}
	msg := fmt.Sprintf("%v (server log kept at %s)%s", err, s.logPath, s.logTail())
	if s.tempData {
		_ = os.RemoveAll(s.dataDir)
	}
	_ = os.RemoveAll(s.socketDir)
	if _, statErr := os.Stat(s.logPath); statErr != nil {
		// No log was written: nothing worth keeping.
		_ = os.RemoveAll(s.runDir)
		msg = err.Error()
	}
	return &startError{msg: msg, err: err}
}

type startError struct {
	msg string
	err error
}

func (e *startError) Error() string { return e.msg }
func (e *startError) Unwrap() error { return e.err }

// makeRunDir creates the private run directory (socket dir and log, plus the
// data dir of a temporary cluster) under the system temp directory, keeping
// the socket path short.
func (s *Server) makeRunDir(who runAs) error {
	base := os.TempDir()
	// "/epg-1234567890/sock/.s.PGSQL.65535" is at most 36 bytes.
	if len(base)+36 >= maxSocketPath || (who.changed && who.cannotReach(base) != "") {
		base = "/tmp"
	}
	sweepRunDirs(s.logger, base, time.Now())
	dir, err := os.MkdirTemp(base, "epg-")
	if err != nil {
		return fmt.Errorf("embeddedpg: create run directory: %w", err)
	}
	if err := claimRunDir(dir); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("embeddedpg: %w", err)
	}
	s.runDir = dir
	s.socketDir = filepath.Join(dir, "sock")
	s.logPath = filepath.Join(dir, logName)
	if len(filepath.Join(s.socketDir, ".s.PGSQL."+strconv.Itoa(s.port))) >= maxSocketPath {
		os.RemoveAll(dir)
		return fmt.Errorf("embeddedpg: unix socket path under %s would be too long", base)
	}
	cleanup := func(err error) error {
		os.RemoveAll(dir)
		return err
	}
	if who.changed {
		// The server user has to get through the run directory to its
		// socket, log and data; the rest stays private to it.
		if err := os.Chmod(dir, 0o755); err != nil {
			return cleanup(fmt.Errorf("embeddedpg: %w", err))
		}
		if p := who.cannotReach(dir); p != "" {
			return cleanup(fmt.Errorf("embeddedpg: the %s user cannot get through %s to reach the run directory %s", who.name, p, dir))
		}
	}
	// Only the server user (and root) may use the socket: with trust
	// authentication, reaching it means being superuser.
	if err := os.Mkdir(s.socketDir, 0o700); err != nil {
		return cleanup(fmt.Errorf("embeddedpg: create socket directory: %w", err))
	}
	if err := who.chown(s.socketDir); err != nil {
		return cleanup(err)
	}
	return nil
}

// openLog opens (creating) the server log for appending, owned by the server
// user. The children write to the descriptor they inherit from us.
func (s *Server) openLog(who runAs) (*os.File, error) {
	f, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("embeddedpg: open server log: %w", err)
	}
	if err := who.chown(s.logPath); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// initdb creates a new cluster in s.dataDir.
func (s *Server) initdb(ctx context.Context, initdbBin string, who runAs, deathSig syscall.Signal) error {
	logFile, err := s.openLog(who)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, initdbBin,
		"-D", s.dataDir, "-U", superuser, "-A", "trust", "-E", "UTF8", "--locale=C")
	cmd.Dir = s.runDir
	cmd.Env = serverEnv()
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	// initdb removes what it made when it catches SIGTERM; SIGKILL would
	// leave a half-made cluster behind that later looks like a real one.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: who.cred, Pdeathsig: deathSig, Setpgid: true}
	t0 := time.Now()
	p, err := startProcess(cmd)
	if err != nil {
		return fmt.Errorf("embeddedpg: start %s: %w", initdbBin, err)
	}
	<-p.done
	if p.err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("embeddedpg: initdb %s: %w (%v)", s.dataDir, ctx.Err(), p.err)
		}
		return fmt.Errorf("embeddedpg: initdb %s failed: %v", s.dataDir, p.err)
	}
	s.logger.Debug("embeddedpg: initdb done", "data_dir", s.dataDir, "elapsed", time.Since(t0).Round(time.Millisecond).String())
	return nil
}

// waitReady connects until the server answers, it exits, or time runs out.
func (s *Server) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	cfg, err := pgx.ParseConfig(s.ConnString("postgres"))
	if err != nil {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	var lastErr error
	for {
		attemptCtx, attemptCancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgx.ConnectConfig(attemptCtx, cfg)
		if err == nil {
			err = conn.Ping(attemptCtx)
			conn.Close(context.Background())
		}
		attemptCancel()
		if err == nil {
			return nil
		}
		lastErr = err

		select {
		case <-s.proc.done:
			return fmt.Errorf("embeddedpg: postgres exited before accepting connections: %v", s.proc.err)
		case <-ctx.Done():
			return fmt.Errorf("embeddedpg: postgres did not accept connections: %w (last attempt: %v)", ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// logTail returns the last lines of the server log, formatted for an error
// message, or "" if there is no log.
func (s *Server) logTail() string {
	tail := readTail(s.logPath, logTailLines)
	if tail == "" {
		return ""
	}
	return "\n--- last lines of " + s.logPath + " ---\n" + tail
}

func readTail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 64 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		if _, err := f.Seek(-maxRead, io.SeekEnd); err != nil {
			return ""
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return ""
	}
	data = bytes.TrimRight(data, "\n")
	all := strings.Split(string(data), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// preparePersistentDataDir makes dir ready for the server: it creates it
// (and missing parents) if needed and reports whether it still needs initdb.
func preparePersistentDataDir(dir string, who runAs, version string) (needInit bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := mkdirParents(filepath.Dir(dir)); err != nil {
			return false, err
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return false, fmt.Errorf("embeddedpg: create data directory: %w", err)
		}
	case err != nil:
		return false, fmt.Errorf("embeddedpg: data directory: %w", err)
	case !fi.IsDir():
		return false, fmt.Errorf("embeddedpg: data directory %s is not a directory", dir)
	}

	if who.changed {
		if p := who.cannotReach(filepath.Dir(dir)); p != "" {
			return false, fmt.Errorf("embeddedpg: the server runs as the %s user (PostgreSQL refuses to run as root), "+
				"which cannot get through %s to reach the data directory %s; choose a DataDir it can reach "+
				"or make %s searchable (chmod o+x)", who.name, p, dir, p)
		}
	}

	pgVersion, err := os.ReadFile(filepath.Join(dir, "PG_VERSION"))
	switch {
	case errors.Is(err, os.ErrNotExist):
		// No cluster yet: hand the (empty) directory to the server user;
		// initdb refuses a non-empty one and says so.
		if err := who.chown(dir); err != nil {
			return false, err
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("embeddedpg: data directory: %w", err)
	}
	// An existing cluster. Its ownership is left alone: postgres checks it
	// and says clearly if it is wrong. A stale postmaster.pid from a crash is
	// postgres's business too.
	if have, want := strings.TrimSpace(string(pgVersion)), majorVersion(version); have != want {
		return false, fmt.Errorf("embeddedpg: the cluster in %s was made by PostgreSQL %s, but the installed server binaries are version %s; "+
			"use PostgreSQL %s binaries (PG_BINDIR) or a new DataDir", dir, have, version, have)
	}
	return false, nil
}

// mkdirParents is os.MkdirAll(dir, 0755), except that directories it creates
// are 0755 whatever the umask, so the server user can get through them.
func mkdirParents(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("embeddedpg: %s is not a directory", dir)
		}
		return nil
	}
	if parent := filepath.Dir(dir); parent != dir {
		if err := mkdirParents(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fmt.Errorf("embeddedpg: %w", err)
	}
	return nil
}

// serverUser says whom to run initdb and postgres as: the current user, or,
// for root, the postgres system user.
func serverUser() (runAs, error) {
	if os.Geteuid() != 0 {
		u, _ := user.Current()
		name := strconv.Itoa(os.Geteuid())
		if u != nil {
			name = u.Username
		}
		return runAs{uid: os.Geteuid(), gid: os.Getegid(), name: name}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAs{}, fmt.Errorf("embeddedpg: running as root, and PostgreSQL refuses to run as root, "+
			"but there is no postgres system user to run it as (the Debian postgresql package creates it): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return runAs{}, fmt.Errorf("embeddedpg: postgres user: %w", err)
	}
	if uid == 0 {
		return runAs{}, errors.New("embeddedpg: the postgres system user has uid 0; PostgreSQL refuses to run as root")
	}
	gids := []uint32{uint32(gid)}
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil && !slices.Contains(gids, uint32(g)) {
				gids = append(gids, uint32(g))
			}
		}
	}
	return runAs{
		cred:    &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: gids},
		uid:     int(uid),
		gid:     int(gid),
		gids:    gids,
		name:    u.Username,
		changed: true,
	}, nil
}

// chown gives path to the server user (nothing to do when that is us).
func (w runAs) chown(path string) error {
	if !w.changed {
		return nil
	}
	if err := os.Chown(path, w.uid, w.gid); err != nil {
		return fmt.Errorf("embeddedpg: hand %s to the %s user: %w", path, w.name, err)
	}
	return nil
}

// cannotReach returns the first directory among dir and its ancestors that
// the server user may not search (by owner/group/other mode bits), or "" if
// it can reach dir. Directories carrying a POSIX ACL are given the benefit of
// the doubt.
func (w runAs) cannotReach(dir string) string {
	for p := filepath.Clean(dir); ; p = filepath.Dir(p) {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err == nil && !w.canSearch(p, &st) {
			return p
		}
		if p == filepath.Dir(p) {
			return ""
		}
	}
}

func (w runAs) canSearch(path string, st *syscall.Stat_t) bool {
	if _, err := syscall.Getxattr(path, "system.posix_acl_access", nil); err == nil {
		return true
	}
	switch {
	case int(st.Uid) == w.uid:
		return st.Mode&0o100 != 0
	case slices.Contains(w.gids, st.Gid):
		return st.Mode&0o010 != 0
	default:
		return st.Mode&0o001 != 0
	}
}

// serverEnv is the environment for initdb and postgres: ours without PG*
// variables (PGDATA, PGPORT, ... would otherwise leak into the server).
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return env
}

// process is a child started by startProcess.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been reaped
	err  error         // cmd.Wait's result; read only after done is closed
}

// startProcess starts cmd from a goroutine locked to its OS thread and keeps
// that thread until the process exits. SysProcAttr.Pdeathsig fires when the
// *thread* that forked the child exits (https://go.dev/issue/27505), and the
// Go runtime ends threads whose locked goroutine returns without unlocking;
// pinning the thread means the signal is sent only when our whole process
// dies.
func startProcess(cmd *exec.Cmd) (*process, error) {
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return p, nil
}

// stop sends sig and waits up to grace for the process to exit, then kills it.
// It returns an error only if it had to kill.
func (p *process) stop(sig syscall.Signal, grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	return fmt.Errorf("postgres (pid %d) did not exit within %s of %v; killed it", p.cmd.Process.Pid, grace, sig)
}

// BinDir finds the PostgreSQL server binaries (the directory holding initdb
// and postgres): $PG_BINDIR if set, else `pg_config --bindir` if that
// directory has a postgres binary, else the newest /usr/lib/postgresql/*/bin
// (by numeric version). If there are none, the error wraps ErrNotInstalled.
func BinDir() (string, error) {
	if dir := os.Getenv("PG_BINDIR"); dir != "" {
		if missing := missingBinaries(dir); missing != "" {
			return "", fmt.Errorf("embeddedpg: PG_BINDIR=%s has no executable %s: %w", dir, missing, ErrNotInstalled)
		}
		return dir, nil
	}
	if pgConfig, err := exec.LookPath("pg_config"); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, pgConfig, "--bindir").Output()
		cancel()
		if dir := strings.TrimSpace(string(out)); err == nil && dir != "" && missingBinaries(dir) == "" {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var dirs []string
	for _, dir := range matches {
		if missingBinaries(dir) == "" {
			dirs = append(dirs, dir)
		}
	}
	if len(dirs) == 0 {
		return "", fmt.Errorf("embeddedpg: %w", ErrNotInstalled)
	}
	slices.SortFunc(dirs, func(a, b string) int {
		return compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	return dirs[len(dirs)-1], nil
}

// missingBinaries names the first of postgres and initdb that dir lacks, or "".
func missingBinaries(dir string) string {
	for _, name := range []string{"postgres", "initdb"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
			return name
		}
	}
	return ""
}

// compareVersions compares dotted numeric versions ("9.6" < "15" < "16.2").
// Non-numeric parts compare as 0.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) ([0-9][0-9A-Za-z.]*)`)

// binaryVersion runs `postgres --version` ("postgres (PostgreSQL) 15.18
// (Debian 15.18-0+deb12u1)") and returns "15.18". --version works as root.
func binaryVersion(ctx context.Context, postgresBin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, postgresBin, "--version")
	cmd.Env = serverEnv()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("embeddedpg: %s --version: %w", postgresBin, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("embeddedpg: cannot read the version from %s --version: %q", postgresBin, strings.TrimSpace(string(out)))
	}
	return string(m[1]), nil
}

// majorVersion is what PG_VERSION holds for a cluster of that version:
// "15" for "15.18", "9.6" for "9.6.24", "17" for "17beta1".
func majorVersion(v string) string {
	parts := strings.Split(v, ".")
	if n, err := strconv.Atoi(parts[0]); err == nil && n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	end := strings.IndexFunc(parts[0], func(r rune) bool { return r < '0' || r > '9' })
	if end < 0 {
		return parts[0]
	}
	return parts[0][:end]
}

// quoteValue quotes a libpq keyword/value connection string value.
func quoteValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}
