package embeddedpg

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// previousPostmasterWait bounds how long Start waits for the postmaster of
// an earlier run of the same data directory to exit: one killed with its
// parent gets SIGTERM from the kernel and takes about half a second.
const previousPostmasterWait = 30 * time.Second

// waitForPreviousPostmaster waits, at most bound, until the postmaster of
// an earlier run of dataDir has stopped: its postmaster.pid names a live
// postgres process that says it is stopping (as one killed with its parent
// does, for about half a second). A server that runs (ready, starting) is
// not waited for: postgres refuses the second start itself, at once. A
// stale file (the process is gone, or the PID is another program's now) is
// left for postgres to replace.
func waitForPreviousPostmaster(ctx context.Context, logger *slog.Logger, dataDir string, bound time.Duration) error {
	pid, status := postmasterPID(dataDir)
	if pid == 0 || status != "stopping" || !isPostgres(pid) {
		return nil
	}
	logger.Info("embeddedpg: waiting for the previous PostgreSQL of this data directory to stop", "pid", pid, "data_dir", dataDir, "at_most", bound.String())
	deadline := time.Now().Add(bound)
	for isPostgres(pid) {
		if time.Now().After(deadline) {
			return fmt.Errorf("embeddedpg: PostgreSQL (pid %d) is still stopping on %s after %s: wait for it, or stop it (kill %d)", pid, dataDir, bound, pid)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// postmasterPID is the PID on the first line of dataDir/postmaster.pid and
// the status on its eighth ("starting", "stopping", "ready"), or 0.
func postmasterPID(dataDir string) (int, string) {
	raw, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, ""
	}
	lines := strings.Split(string(raw), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(lines[0]))
	if err != nil || pid <= 0 {
		return 0, ""
	}
	status := ""
	if len(lines) > 7 {
		status = strings.TrimSpace(lines[7])
	}
	return pid, status
}

// isPostgres reports whether pid is a running postgres process.
func isPostgres(pid int) bool {
	_, comm, ok := procStat(pid)
	return ok && running(pid) && strings.HasPrefix(comm, "postgres")
}

// ownerFile, in a run directory, holds the PID of the process that made it.
const ownerFile = "owner.pid"

// claimRunDir records this process as the run directory's owner.
func claimRunDir(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// sweepRunDirs removes the run directories under base that a process which
// no longer runs left behind (a kill -9, a failed start): those whose owner
// is gone, and unowned ones (made before owners were recorded) older than a
// day. It never touches a directory whose owner still runs.
func sweepRunDirs(logger *slog.Logger, base string, now time.Time) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), "epg-") {
			continue
		}
		dir := filepath.Join(base, e.Name())
		raw, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			info, ierr := e.Info()
			if ierr != nil || now.Sub(info.ModTime()) < 24*time.Hour {
				continue
			}
		} else if pid, perr := strconv.Atoi(strings.TrimSpace(string(raw))); perr != nil || running(pid) {
			continue
		}
		if err := os.RemoveAll(dir); err == nil {
			logger.Info("embeddedpg: removed a run directory an earlier run left", "dir", dir)
		}
	}
}

// running reports whether pid runs (a zombie awaiting its reaper counts as
// exited).
func running(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != 'Z' && state != 'X'
}

// procStat is a process's state letter and command name, from /proc.
func procStat(pid int) (state byte, comm string, ok bool) {
	if pid <= 0 {
		return 0, "", false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", false
	}
	// "pid (comm) state ...": comm may hold spaces and parentheses.
	s := string(stat)
	open, closeParen := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closeParen < open || closeParen+2 >= len(s) {
		return 0, "", false
	}
	return s[closeParen+2], s[open+1 : closeParen], true
}
