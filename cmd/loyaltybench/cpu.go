package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// cpuMeter reads from /proc the CPU time (user and system) used so far by
// the processes of a run on this machine: the PostgreSQL server (its
// postmaster and every backend, running or already exited), loyaltyd, and
// this process, the load generator or the baseline's client. A phase's
// CPU per committed write is what decides, when the cores are the limit,
// how many writes per second it can reach.
type cpuMeter struct {
	postgresPID int // 0: not measured
	serverPID   int // 0: not measured
}

// cpuTimes is CPU time used by each part of a run.
type cpuTimes struct {
	Postgres, Server, Client time.Duration
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{Postgres: c.Postgres - o.Postgres, Server: c.Server - o.Server, Client: c.Client - o.Client}
}

func (c cpuTimes) total() time.Duration { return c.Postgres + c.Server + c.Client }

// clockTicksPerSecond is USER_HZ, the unit of /proc/<pid>/stat's times:
// 100 on every architecture Linux runs Go on.
const clockTicksPerSecond = 100

// read returns the CPU time used so far. The server's exited backends are
// in the postmaster's children's times once it has reaped them, and the
// running ones are counted one by one, so a backend is counted whether it
// lives through the phase or not.
func (m cpuMeter) read() (cpuTimes, error) {
	var t cpuTimes
	self, err := readProcStat(os.Getpid())
	if err != nil {
		return t, err
	}
	t.Client = self.own()
	if m.serverPID > 0 {
		server, err := readProcStat(m.serverPID)
		if err != nil {
			return t, fmt.Errorf("loyaltyd: %w", err)
		}
		t.Server = server.own()
	}
	if m.postgresPID > 0 {
		postmaster, err := readProcStat(m.postgresPID)
		if err != nil {
			return t, fmt.Errorf("postgres: %w", err)
		}
		t.Postgres = postmaster.own() + postmaster.reapedChildren()
		stats, _ := filepath.Glob("/proc/[0-9]*/stat")
		for _, path := range stats {
			pid, err := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			if err != nil {
				continue
			}
			st, err := readProcStat(pid)
			if err != nil || st.ppid != m.postgresPID {
				continue // gone since the listing, or not a backend
			}
			t.Postgres += st.own()
		}
	}
	return t, nil
}

// procStat is what cpuMeter needs of /proc/<pid>/stat.
type procStat struct {
	ppid           int
	utime, stime   int64 // clock ticks, this process's threads
	cutime, cstime int64 // clock ticks, its children it has waited for
}

func (s procStat) own() time.Duration { return ticks(s.utime + s.stime) }

func (s procStat) reapedChildren() time.Duration { return ticks(s.cutime + s.cstime) }

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicksPerSecond }

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(string(b))
}

// parseProcStat reads a /proc/<pid>/stat line (proc(5)). The command name,
// field 2, is in parentheses and may itself hold spaces and parentheses,
// so the fields are counted from the last ')'.
func parseProcStat(line string) (procStat, error) {
	end := strings.LastIndexByte(line, ')')
	if end < 0 {
		return procStat{}, errors.New("no command name in /proc stat line")
	}
	fields := strings.Fields(line[end+1:]) // fields[0] is field 3, the state
	if len(fields) < 15 {
		return procStat{}, fmt.Errorf("/proc stat line has %d fields after the name, want at least 15", len(fields))
	}
	var s procStat
	var err error
	number := func(field int) int64 {
		n, perr := strconv.ParseInt(fields[field-3], 10, 64)
		if perr != nil && err == nil {
			err = fmt.Errorf("/proc stat field %d: %w", field, perr)
		}
		return n
	}
	s.ppid = int(number(4))
	s.utime, s.stime, s.cutime, s.cstime = number(14), number(15), number(16), number(17)
	return s, err
}

// measureCPU records the CPU time used since before (read when the phase
// started), or says why it cannot.
func (r *report) measureCPU(m cpuMeter, before cpuTimes, beforeErr error, progress io.Writer) {
	after, err := m.read()
	if err = errors.Join(beforeErr, err); err != nil {
		fmt.Fprintf(progress, "note: no CPU times from /proc: %v\n", err)
		return
	}
	r.CPU, r.CPUKnown = after.sub(before), true
	r.cpuParts = m
}

// committedUnit names what the phase commits.
func (r *report) committedUnit() string {
	if r.Target == targetBaseline {
		return "transfer"
	}
	return "committed write"
}

// cpuPerCommitted is a part's CPU time per committed write or transfer,
// in milliseconds.
func (r *report) cpuPerCommitted(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond) / float64(r.Committed)
}

func (r *report) cpuPerCommittedText() string {
	var parts []string
	if r.cpuParts.postgresPID > 0 {
		parts = append(parts, fmt.Sprintf("PostgreSQL %.2f ms", r.cpuPerCommitted(r.CPU.Postgres)))
	}
	if r.cpuParts.serverPID > 0 {
		parts = append(parts, fmt.Sprintf("loyaltyd %.2f ms", r.cpuPerCommitted(r.CPU.Server)))
	}
	client := "load generator"
	if r.Target == targetBaseline {
		client = "client"
	}
	parts = append(parts, fmt.Sprintf("%s %.2f ms", client, r.cpuPerCommitted(r.CPU.Client)))
	return strings.Join(parts, " + ") + fmt.Sprintf(" = %.2f ms", r.cpuPerCommitted(r.CPU.total()))
}

// printCPUSummary writes each phase's CPU time per committed write or
// transfer, by part, and how many of the machine's cores were busy.
func printCPUSummary(w io.Writer, reports []*report) {
	fmt.Fprintf(w, "\nCPU per committed write (service) or transfer (baseline), ms, from /proc; this machine has %d cores\n", runtime.NumCPU())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tmode\tPostgreSQL\tloyaltyd\tclient\ttotal\tcores busy\t")
	part := func(r *report, measured bool, d time.Duration) string {
		if !measured {
			return "-"
		}
		return fmt.Sprintf("%.2f", r.cpuPerCommitted(d))
	}
	for _, r := range reports {
		if !r.CPUKnown || r.Committed == 0 {
			fmt.Fprintf(tw, "%s\t%s\tn/a\tn/a\tn/a\tn/a\tn/a\t\n", r.Target, r.modeText())
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t\n", r.Target, r.modeText(),
			part(r, r.cpuParts.postgresPID > 0, r.CPU.Postgres), part(r, r.cpuParts.serverPID > 0, r.CPU.Server),
			part(r, true, r.CPU.Client), part(r, true, r.CPU.total()), r.CPU.total().Seconds()/r.Elapsed.Seconds())
	}
	tw.Flush()
}

// cpuRatios compares two phases: the CPU a committed write of a costs
// over a committed unit of b, and the cores a kept busy over those b did.
// Throughput is cores busy over CPU per committed, so a's throughput over
// b's is busy/cpu.
func cpuRatios(a, b *report) (cpu, busy float64, ok bool) {
	if a == nil || b == nil || !a.CPUKnown || !b.CPUKnown || a.Committed == 0 || b.Committed == 0 || b.CPU.total() == 0 {
		return 0, 0, false
	}
	cpu = a.cpuPerCommitted(a.CPU.total()) / b.cpuPerCommitted(b.CPU.total())
	busy = (a.CPU.total().Seconds() / a.Elapsed.Seconds()) / (b.CPU.total().Seconds() / b.Elapsed.Seconds())
	return cpu, busy, true
}

// cpuCSV is a part's CPU per committed unit for the CSV ("" unknown).
func (r *report) cpuCSV(measured bool, d time.Duration) string {
	if !measured || !r.CPUKnown || r.Committed == 0 {
		return ""
	}
	return fmt.Sprintf("%.3f", r.cpuPerCommitted(d))
}

func (r *report) coresBusyCSV() string {
	if !r.CPUKnown || r.Elapsed <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", r.CPU.total().Seconds()/r.Elapsed.Seconds())
}
