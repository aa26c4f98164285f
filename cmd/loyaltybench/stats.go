package main

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// maxSamples bounds the latency samples kept per operation kind; past it
// only the count and the maximum are kept exact.
const maxSamples = 2_000_000

// latencies is one goroutine's record of one operation kind.
type latencies struct {
	samples []time.Duration
	limit   int
	count   int64
	max     time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.count++
	l.max = max(l.max, d)
	if len(l.samples) < l.limit {
		l.samples = append(l.samples, d)
	}
}

// kindStats is one operation kind over a whole run.
type kindStats struct {
	Name    string
	Count   int64 // operations, successful or not
	Refused int64 // FAILED_PRECONDITION answers that are business refusals, not errors
	Errors  map[string]int64
	samples []time.Duration // sorted
	Max     time.Duration
}

func (k *kindStats) merge(l *latencies) {
	k.Count += l.count
	k.Max = max(k.Max, l.max)
	room := maxSamples - len(k.samples)
	if room > 0 {
		k.samples = append(k.samples, l.samples[:min(room, len(l.samples))]...)
	}
}

func (k *kindStats) finish() { slices.Sort(k.samples) }

// percentile is the nearest-rank percentile of the kept samples.
func (k *kindStats) percentile(p float64) time.Duration {
	return percentile(k.samples, p)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func (k *kindStats) errorCount() int64 {
	var n int64
	for _, c := range k.Errors {
		n += c
	}
	return n
}

// report is what one run measured: a load run against the service or a
// baseline run against plain SQL.
type report struct {
	Target string // "service" or "baseline"
	Mode   string // "spread" or "hot"
	// Events is "on" or "off": whether the server sequenced and delivered
	// its events during the run (run-all); "" for the baseline and for a
	// server run-all did not start.
	Events  string
	Clients int
	Rate    float64 // operations/s the run was paced to; 0: unpaced
	// FirstStay (service): the run enrolled its members in its setup, so
	// that most of its stays are members' first stays (each claims it and
	// earns the first-stay bonus); false when its members had had a stay
	// before it (steady state, runConfig.MemberNumbers).
	FirstStay bool
	// Run is which of run-all's runs of its phase this is (1, 2, ...); 0
	// outside run-all.
	Run     int
	Elapsed time.Duration // of the measured phase, setup excluded
	Setup   time.Duration

	Ops       int64 // operations finished, replays and reads included
	Committed int64 // write requests committed for the first time (service), transfers (baseline)
	LedgerTx  int64 // ledger transactions written by acknowledged stays and redemptions (service)

	Kinds []*kindStats // in display order; "write" latencies aggregate the first-time writes

	Replays       int64 // re-sent writes (same idempotency key)
	Mismatches    int64 // replays whose answer differed from the first
	BalanceDrifts int64 // guarantee replays that differed only in the balance read now (see load.go)
	Examples      []string

	Retries   int64   // database transaction retries during the phase; -1 unknown
	PeakRSS   float64 // MiB; 0 unknown
	RSSSource string

	// Groups the server's group commit wrote during the phase, and the
	// requests in them (0 and 0: unknown).
	Groups, GroupRequests int64

	// CPU time used during the measured phase (CPUKnown false: unknown).
	CPU      cpuTimes
	CPUKnown bool
	cpuParts cpuMeter // which parts were measured

	// Acknowledged stays and redemptions, when the run tracked them.
	KeyPrefix string
	Acked     []ack

	// Invariant checks (baseline): empty means they held.
	Problems []string
}

// ack is a write the service acknowledged with a ledger transaction.
type ack struct {
	Key           string
	TransactionID string
}

func (r *report) kind(name string) *kindStats {
	for _, k := range r.Kinds {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// errors sums the errors of every kind by Connect code (baseline: SQLSTATE
// or "other").
func (r *report) errorsByCode() map[string]int64 {
	out := map[string]int64{}
	for _, k := range r.Kinds {
		if k.Name == kindWrite {
			continue // an aggregate of the others
		}
		for c, n := range k.Errors {
			out[c] += n
		}
	}
	return out
}

func (r *report) errorCount() int64 {
	var n int64
	for _, c := range r.errorsByCode() {
		n += c
	}
	return n + r.Mismatches
}

func (r *report) refused() int64 {
	var n int64
	for _, k := range r.Kinds {
		if k.Name != kindWrite {
			n += k.Refused
		}
	}
	return n
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// committedPerSecond is the headline figure: committed writes (service) or
// transfers (baseline) per second.
func (r *report) committedPerSecond() float64 { return perSecond(r.Committed, r.Elapsed) }

// headline is the latency the CSV and the summary table quote: first-time
// writes for the service, transfers for the baseline.
func (r *report) headline() *kindStats {
	if k := r.kind(kindWrite); k != nil {
		return k
	}
	if k := r.kind(kindTransfer); k != nil {
		return k
	}
	return &kindStats{}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func formatCodes(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s:%d", k, m[k])
	}
	return strings.Join(parts, ";")
}

func (r *report) retriesText() string {
	if r.Retries < 0 {
		return "n/a"
	}
	return strconv.FormatInt(r.Retries, 10)
}

func (r *report) rssText() string {
	if r.PeakRSS <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", r.PeakRSS)
}

// print writes the human-readable report of one run.
func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s, %s mode, %d clients, %s measured (setup %s) ==\n",
		r.Target, r.modeText(), r.Clients, r.Elapsed.Round(time.Millisecond), r.Setup.Round(time.Millisecond))
	if r.Target == targetService {
		fmt.Fprintf(w, "committed writes/s: %.1f   (%d writes: stays, redemptions, guarantee places and releases)\n",
			r.committedPerSecond(), r.Committed)
		fmt.Fprintf(w, "ledger tx/s:        %.1f   (%d transactions from stays and redemptions)\n",
			perSecond(r.LedgerTx, r.Elapsed), r.LedgerTx)
	} else {
		fmt.Fprintf(w, "transfers/s:        %.1f   (%d transfers, one SQL transaction each)\n", r.committedPerSecond(), r.Committed)
	}
	fmt.Fprintf(w, "ops/s:              %.1f   (%d operations)\n", perSecond(r.Ops, r.Elapsed), r.Ops)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "operation\tcount\tp50 ms\tp90 ms\tp99 ms\tmax ms\trefused\terrors\t")
	for _, k := range r.Kinds {
		if k.Count == 0 && k.Name != kindWrite {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t\n", k.Name, k.Count,
			ms(k.percentile(.50)), ms(k.percentile(.90)), ms(k.percentile(.99)), ms(k.Max), k.Refused, k.errorCount())
	}
	tw.Flush()
	fmt.Fprintf(w, "errors by code:     %s\n", formatCodes(r.errorsByCode()))
	if r.Target == targetService {
		fmt.Fprintf(w, "refused:            %d (FAILED_PRECONDITION: not enough points; not errors)\n", r.refused())
		fmt.Fprintf(w, "replays:            %d, mismatches %d, guarantee replays with a newer balance %d\n",
			r.Replays, r.Mismatches, r.BalanceDrifts)
	}
	fmt.Fprintf(w, "db retries:         %s\n", r.retriesText())
	if r.Groups > 0 {
		fmt.Fprintf(w, "group commit:       %d groups, %.1f requests each\n", r.Groups, float64(r.GroupRequests)/float64(r.Groups))
	}
	if r.CPUKnown && r.Committed > 0 {
		fmt.Fprintf(w, "CPU per %s: %s (%.2f of %d cores busy)\n", r.committedUnit(), r.cpuPerCommittedText(),
			r.CPU.total().Seconds()/r.Elapsed.Seconds(), runtime.NumCPU())
	}
	rss := r.rssText()
	if r.RSSSource != "" && r.PeakRSS > 0 {
		rss += " MiB (" + r.RSSSource + ")"
	}
	fmt.Fprintf(w, "peak RSS:           %s\n", rss)
	for _, e := range r.Examples {
		fmt.Fprintf(w, "  example: %s\n", e)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  INVARIANT VIOLATED: %s\n", p)
	}
}

// modeText is the mode, with "first-stay" when most stays are first
// stays, the pace of a paced run ("spread@280/s") and run-all's run
// number ("spread #2").
func (r *report) modeText() string {
	s := r.Mode
	if r.FirstStay {
		s += " first-stay"
	}
	if r.Rate > 0 {
		s += fmt.Sprintf("@%.0f/s", r.Rate)
	}
	if r.Run > 0 {
		s += fmt.Sprintf(" #%d", r.Run)
	}
	return s
}

// phaseName names the kind of phase: "baseline spread", "service spread"
// (steady state when run-all runs it), "service first-stay", "service
// half-peak", "service hot", ...
func (r *report) phaseName() string {
	switch {
	case r.Target == targetService && r.FirstStay && r.Mode == modeSpread:
		return r.Target + " first-stay"
	case r.Target == targetService && r.Rate > 0 && r.Mode == modeSpread:
		return r.Target + " half-peak"
	}
	return r.Target + " " + r.Mode
}

// printSummary writes one line per run, the figures the CSV keeps.

func printSummary(w io.Writer, reports []*report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "run\tmode\tclients\tsecs\tops\tcommitted/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\terrors\tretries\tpeak RSS MiB\t")
	for _, r := range reports {
		h := r.headline()
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.Target, r.modeText(), r.Clients,
			r.Elapsed.Seconds(), r.Ops, r.committedPerSecond(),
			ms(h.percentile(.50)), ms(h.percentile(.90)), ms(h.percentile(.99)), ms(h.Max),
			formatCodes(r.errorsByCode()), r.retriesText(), r.rssText())
	}
	tw.Flush()
}

var csvHeader = []string{"started_at", "target", "mode", "events", "clients", "duration_s", "ops", "committed_tx_per_s",
	"p50_ms", "p90_ms", "p99_ms", "max_ms", "errors", "retries", "peak_rss_mib",
	"cpu_postgres_ms", "cpu_server_ms", "cpu_client_ms", "cores_busy",
	// Added with the steady-state and first-stay phases: earlier files,
	// without them, are moved aside (appendCSV); the columns before are
	// as they were.
	"phase", "first_stay", "run"}

// appendCSV appends one row per report to path, with a header when the
// file is new or empty. A file with other columns (from an older
// loyaltybench) is first moved aside to path.old, which it returns.
func appendCSV(path string, started time.Time, reports []*report) (movedTo string, err error) {
	if first, err := firstLine(path); err == nil && first != "" && first != strings.Join(csvHeader, ",") {
		movedTo = path + ".old"
		if err := os.Rename(path, movedTo); err != nil {
			return "", err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return movedTo, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return movedTo, err
	}
	w := csv.NewWriter(f)
	if info.Size() == 0 {
		_ = w.Write(csvHeader)
	}
	for _, r := range reports {
		h := r.headline()
		errs := formatCodes(r.errorsByCode())
		if r.Mismatches > 0 {
			errs += fmt.Sprintf(";replay_mismatch:%d", r.Mismatches)
		}
		_ = w.Write([]string{
			started.UTC().Format(time.RFC3339), r.Target, r.Mode, r.Events, strconv.Itoa(r.Clients),
			fmt.Sprintf("%.1f", r.Elapsed.Seconds()), strconv.FormatInt(r.Ops, 10),
			fmt.Sprintf("%.1f", r.committedPerSecond()),
			ms(h.percentile(.50)), ms(h.percentile(.90)), ms(h.percentile(.99)), ms(h.Max),
			errs, r.retriesText(), r.rssText(),
			r.cpuCSV(r.cpuParts.postgresPID > 0, r.CPU.Postgres), r.cpuCSV(r.cpuParts.serverPID > 0, r.CPU.Server),
			r.cpuCSV(true, r.CPU.Client), r.coresBusyCSV(),
			r.phaseName(), firstStayCSV(r), strconv.Itoa(r.Run),
		})
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return movedTo, err
	}
	return movedTo, f.Close()
}

// firstStayCSV says whether most stays were first stays (service) or ""
// (baseline).
func firstStayCSV(r *report) string {
	if r.Target != targetService {
		return ""
	}
	return strconv.FormatBool(r.FirstStay)
}

// saveCSV appends the reports to the CSV file at path and says so on w.
func saveCSV(w io.Writer, path string, started time.Time, reports []*report) error {
	movedTo, err := appendCSV(path, started, reports)
	if movedTo != "" {
		fmt.Fprintf(w, "%s had the columns of an older loyaltybench: moved to %s\n", path, movedTo)
	}
	if err != nil {
		return fmt.Errorf("csv: %w", err)
	}
	fmt.Fprintf(w, "CSV rows appended to %s\n", path)
	return nil
}

// firstLine returns the first line of the file at path ("" when empty).
func firstLine(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
