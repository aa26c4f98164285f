package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcStatFieldsAreCountedFromTheEndOfTheName(t *testing.T) {
	// proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime cstime ...
	const rest = " S 42 1 1 0 -1 4194560 100 0 0 0 1200 300 70 8 20 0 1 0"
	for _, name := range []string{"postgres", "sd-pam", "a b) c", "(paren)"} {
		t.Run(name, func(t *testing.T) {
			got, err := parseProcStat("4711 (" + name + ")" + rest + "\n")
			if err != nil {
				t.Fatal(err)
			}
			want := procStat{ppid: 42, utime: 1200, stime: 300, cutime: 70, cstime: 8}
			if got != want {
				t.Fatalf("got %+v, want %+v", got, want)
			}
			if got.own() != 15*time.Second || got.reapedChildren() != 780*time.Millisecond {
				t.Fatalf("own %s, reaped children %s", got.own(), got.reapedChildren())
			}
		})
	}
	for _, bad := range []string{"", "4711 postgres S 1", "4711 (postgres) S 1 2 3"} {
		if _, err := parseProcStat(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The database server's CPU is its postmaster's and its backends': a
// backend is counted while it runs and, once it has exited and been
// reaped, through the postmaster's children's times, so it is never lost.
func TestCPUMeterCountsAServerAndItsChildrenRunningOrExited(t *testing.T) {
	// The "server" starts a busy child, prints its pid, and reaps it
	// once the test kills it.
	server := exec.Command("sh", "-c", `sh -c 'while :; do :; done' & echo $!; wait; sleep 60`)
	out, err := server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
	var busyPID int
	if _, err := fmt.Fscan(out, &busyPID); err != nil {
		t.Fatal(err)
	}
	m := cpuMeter{postgresPID: server.Process.Pid}
	read := func() cpuTimes {
		t.Helper()
		c, err := m.read()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// Polled, not slept: on a loaded machine the busy child gets the CPU
	// when it gets it.
	waitFor := func(what string, done func() bool) {
		t.Helper()
		for start := time.Now(); !done(); time.Sleep(10 * time.Millisecond) {
			if time.Since(start) > 20*time.Second {
				t.Fatalf("gave up waiting until %s", what)
			}
		}
	}
	before := read()
	var running cpuTimes
	waitFor("the running child is counted", func() bool {
		running = read()
		return running.Postgres-before.Postgres >= 50*time.Millisecond
	})
	if err := syscall.Kill(busyPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor("the child is reaped", func() bool {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", busyPID))
		return os.IsNotExist(err)
	})
	if exited := read(); exited.Postgres < running.Postgres {
		t.Errorf("an exited child's CPU was lost: %s while it ran, %s after", running.Postgres-before.Postgres, exited.Postgres-before.Postgres)
	}

	// This process's own CPU, against getrusage's.
	self := read()
	var usage0, usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage0); err != nil {
		t.Fatal(err)
	}
	waitFor("this process has spun 100 ms of CPU", func() bool {
		for spin := time.Now(); time.Since(spin) < 5*time.Millisecond; {
		}
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &usage)
		return rusageCPU(usage)-rusageCPU(usage0) >= 100*time.Millisecond
	})
	if got := read().Client - self.Client; got < 80*time.Millisecond {
		t.Errorf("this process used %s of CPU and is counted %s", rusageCPU(usage)-rusageCPU(usage0), got)
	}
}

func rusageCPU(u syscall.Rusage) time.Duration {
	return time.Duration(u.Utime.Nano() + u.Stime.Nano())
}

func TestSaveCSVMovesAsideAFileWithOlderColumns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.csv")
	old := "started_at,target,mode\n2026-11-01T00:00:00Z,service,spread\n"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	rep := &report{Target: targetService, Mode: modeSpread, Clients: 1, Elapsed: time.Second, Committed: 10,
		CPU: cpuTimes{Postgres: 20 * time.Millisecond, Server: 10 * time.Millisecond, Client: 5 * time.Millisecond}, CPUKnown: true,
		cpuParts: cpuMeter{postgresPID: 1, serverPID: 2}}
	for range 2 {
		if err := saveCSV(io.Discard, path, time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC), []*report{rep}); err != nil {
			t.Fatal(err)
		}
	}
	if moved, err := os.ReadFile(path + ".old"); err != nil || string(moved) != old {
		t.Fatalf("the old file was not kept: %q, %v", moved, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 || lines[0] != strings.Join(csvHeader, ",") {
		t.Fatalf("want the header and two rows, got:\n%s", b)
	}
	if !strings.Contains(lines[1], ",2.000,1.000,0.500,0.04,") {
		t.Fatalf("CPU columns: %s", lines[1])
	}
}

// The summary splits service/baseline into cores busy over CPU per
// committed unit: throughput is the one over the other.
func TestCPURatiosExplainTheThroughputRatio(t *testing.T) {
	baseline := &report{Target: targetBaseline, Mode: modeSpread, Elapsed: 10 * time.Second, Committed: 20_000,
		CPU: cpuTimes{Postgres: 12 * time.Second, Client: 6 * time.Second}, CPUKnown: true, cpuParts: cpuMeter{postgresPID: 1}}
	service := &report{Target: targetService, Mode: modeSpread, Elapsed: 10 * time.Second, Committed: 6_000,
		CPU: cpuTimes{Postgres: 8 * time.Second, Server: 7 * time.Second, Client: 3 * time.Second}, CPUKnown: true,
		cpuParts: cpuMeter{postgresPID: 1, serverPID: 2}}
	cpu, busy, ok := cpuRatios(service, baseline)
	if !ok {
		t.Fatal("no ratios")
	}
	throughput := service.committedPerSecond() / baseline.committedPerSecond()
	if math.Abs(busy/cpu-throughput) > 1e-9 || math.Abs(cpu-3.0/0.9) > 1e-9 || busy != 1 {
		t.Fatalf("cpu %v, busy %v: busy/cpu %v, throughput ratio %v", cpu, busy, busy/cpu, throughput)
	}
	if _, _, ok := cpuRatios(service, &report{Target: targetBaseline}); ok {
		t.Fatal("ratios from a phase without CPU times")
	}

	var out strings.Builder
	printCPUSummary(&out, []*report{baseline, service, {Target: targetService, Mode: modeHot}})
	var rows []string // each line's fields, one space apart
	for _, line := range strings.Split(out.String(), "\n") {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	for _, want := range []string{
		"baseline spread 0.60 - 0.30 0.90 1.80",
		"service spread 1.33 1.17 0.50 3.00 1.80",
		"service hot n/a n/a n/a n/a n/a",
	} {
		if !slices.Contains(rows, want) {
			t.Errorf("summary lacks the row %q:\n%s", want, out.String())
		}
	}
}
