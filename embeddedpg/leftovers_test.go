package embeddedpg

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestTheRunDirectoriesOfGoneRunsAreSwept: a run directory whose owner no
// longer runs (a kill -9, a failed start) is removed; one whose owner runs,
// and a recent unowned one, are kept.
func TestTheRunDirectoriesOfGoneRunsAreSwept(t *testing.T) {
	base := t.TempDir()
	// The directories' modification times are the real clock's: the sweep
	// compares them with the moment they were made.
	made := time.Now()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]string{ // name -> owner file ("" none)
		"epg-gone":    strconv.Itoa(gone.Process.Pid),
		"epg-ours":    strconv.Itoa(os.Getpid()),
		"epg-unowned": "",
		"other-dir":   strconv.Itoa(gone.Process.Pid),
	}
	for name, owner := range dirs {
		if err := os.Mkdir(filepath.Join(base, name), 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(base, name, ownerFile), []byte(owner+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	sweepRunDirs(slog.New(slog.DiscardHandler), base, made)
	for name, want := range map[string]bool{"epg-gone": false, "epg-ours": true, "epg-unowned": true, "other-dir": true} {
		if _, err := os.Stat(filepath.Join(base, name)); (err == nil) != want {
			t.Errorf("%s kept %v, want %v", name, err == nil, want)
		}
	}
	// A day on, the unowned one is an earlier run's too.
	sweepRunDirs(slog.New(slog.DiscardHandler), base, made.Add(25*time.Hour))
	if _, err := os.Stat(filepath.Join(base, "epg-unowned")); err == nil {
		t.Error("a day-old unowned run directory was kept")
	}
}

// TestAStartWaitsForThePreviousPostmaster: a data directory whose
// postmaster.pid names a postgres that is stopping is waited for, within
// the bound; one that runs, a stale pid file or another program's PID is
// not (postgres answers those at once).
func TestAStartWaitsForThePreviousPostmaster(t *testing.T) {
	dataDir := t.TempDir()
	logger := slog.New(slog.DiscardHandler)
	writePID := func(pid int, status string) {
		// The file's lines: pid, data dir, start time, port, socket dir,
		// listen address, shared memory key, status.
		content := strconv.Itoa(pid) + "\n/data\n1\n5432\n/tmp\n\n0 0\n" + status + "\n"
		if err := os.WriteFile(filepath.Join(dataDir, "postmaster.pid"), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// A live process that is not postgres: not waited for.
	writePID(os.Getpid(), "stopping")
	if err := waitForPreviousPostmaster(context.Background(), logger, dataDir, time.Second); err != nil {
		t.Fatalf("another program's PID: %v", err)
	}
	// A process named postgres that exits after 300 ms: waited for.
	bin, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "postgres")
	if err := os.Symlink(bin, link); err != nil {
		t.Fatal(err)
	}
	previous := exec.Command(link, "0.3")
	if err := previous.Start(); err != nil {
		t.Fatal(err)
	}
	go previous.Wait()
	writePID(previous.Process.Pid, "ready")
	if started := time.Now(); waitForPreviousPostmaster(context.Background(), logger, dataDir, 10*time.Second) != nil || time.Since(started) > 100*time.Millisecond {
		t.Fatal("a running server was waited for: postgres refuses a second start at once")
	}
	writePID(previous.Process.Pid, "stopping")
	started := time.Now()
	if err := waitForPreviousPostmaster(context.Background(), logger, dataDir, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(started); waited < 200*time.Millisecond {
		t.Errorf("waited %s for a postmaster that ran 300 ms more", waited)
	}
	// One that outlives the bound: an error saying what to do.
	stuck := exec.Command(link, "30")
	if err := stuck.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stuck.Process.Kill(); stuck.Wait() })
	writePID(stuck.Process.Pid, "stopping")
	if err := waitForPreviousPostmaster(context.Background(), logger, dataDir, 200*time.Millisecond); err == nil {
		t.Fatal("a postmaster that outlived the bound was not reported")
	}
	// A stale file: the process is gone.
	stuck.Process.Kill()
	stuck.Wait()
	if err := waitForPreviousPostmaster(context.Background(), logger, dataDir, time.Second); err != nil {
		t.Fatalf("a stale postmaster.pid: %v", err)
	}
}
