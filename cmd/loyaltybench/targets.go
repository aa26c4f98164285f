package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets of issue 22 ("CPU per committed write"), each judged on one
// make bench run, all phases; targetRows lists them.
const (
	// targetServerCPUMS: loyaltyd's CPU per committed write, ms, in the
	// steady spread phases and the hot ones.
	targetServerCPUMS = 0.30
	// targetSpreadRatio: service committed writes/s over the baseline's
	// transfers/s, spread mode (steady state).
	targetSpreadRatio = 0.6
	// targetHotRatio: the service's committed writes/s, hot over spread.
	targetHotRatio = 0.9
	// targetHalfPeakP99: p99 of the first-time writes, paced at half the
	// steady spread peak.
	targetHalfPeakP99 = 25 * time.Millisecond
	// targetPeakRSSMiB: loyaltyd's peak resident set during any service
	// phase.
	targetPeakRSSMiB = 200.0
)

// Phase names (report.phaseName) the targets read.
const (
	phaseBaselineSpread  = targetBaseline + " " + modeSpread
	phaseBaselineHot     = targetBaseline + " " + modeHot
	phaseServiceSpread   = targetService + " " + modeSpread
	phaseServiceHot      = targetService + " " + modeHot
	phaseServiceHalfPeak = targetService + " half-peak"
	phaseServiceFirst    = targetService + " first-stay"
)

// targetRow is one target with what the run measured, run by run.
type targetRow struct {
	name     string
	measured []string // "#1 0.52", "#2 0.49", ...; one figure for what covers the whole run
	want     string
	met      bool
}

// runChecks is what a whole run-all found wrong, besides its figures.
type runChecks struct {
	// ledgerDiscrepancies is what ledger.Verify found at the end.
	ledgerDiscrepancies int
}

// phaseRuns returns the reports of the named phase, in the order run.
func phaseRuns(reports []*report, name string) []*report {
	var out []*report
	for _, r := range reports {
		if r.phaseName() == name {
			out = append(out, r)
		}
	}
	return out
}

// pairedBaseline is the baseline phase of r's mode run last before r: the
// figure r is compared with. nil when there is none.
func pairedBaseline(reports []*report, r *report) *report {
	var last *report
	for _, x := range reports {
		if x == r {
			return last
		}
		if x.Target == targetBaseline && x.Mode == r.Mode {
			last = x
		}
	}
	return nil
}

// sameRun is the report of the named phase with r's run number.
func sameRun(reports []*report, name string, r *report) *report {
	for _, x := range phaseRuns(reports, name) {
		if x.Run == r.Run {
			return x
		}
	}
	return nil
}

// serverCPUms is loyaltyd's CPU per committed write, when measured.
func serverCPUms(r *report) (float64, bool) {
	if r == nil || !r.CPUKnown || r.Committed == 0 || r.cpuParts.serverPID == 0 {
		return 0, false
	}
	return r.cpuPerCommitted(r.CPU.Server), true
}

// postgresCPUms is PostgreSQL's CPU per committed write or transfer.
func postgresCPUms(r *report) (float64, bool) {
	if r == nil || !r.CPUKnown || r.Committed == 0 || r.cpuParts.postgresPID == 0 {
		return 0, false
	}
	return r.cpuPerCommitted(r.CPU.Postgres), true
}

// throughputRatio is a's committed/s over b's.
func throughputRatio(a, b *report) (float64, bool) {
	if a == nil || b == nil || b.committedPerSecond() == 0 {
		return 0, false
	}
	return a.committedPerSecond() / b.committedPerSecond(), true
}

func runLabel(r *report) string {
	if r.Run > 0 {
		return fmt.Sprintf("#%d ", r.Run)
	}
	return ""
}

// judge builds a row from one figure per report: met when there is at
// least one report and every figure is known and ok.
func judge(name, want string, rs []*report, figure func(*report) (string, float64, bool), ok func(float64) bool) targetRow {
	row := targetRow{name: name, want: want, met: len(rs) > 0}
	for _, r := range rs {
		text, v, known := figure(r)
		if !known {
			row.measured = append(row.measured, runLabel(r)+"n/a")
			row.met = false
			continue
		}
		row.measured = append(row.measured, runLabel(r)+text)
		row.met = row.met && ok(v)
	}
	if len(rs) == 0 {
		row.measured = []string{"no such phase"}
	}
	return row
}

// targetRows judges each target of issue 22 on the run's reports.
func targetRows(reports []*report, checks runChecks) []targetRow {
	atMost := func(limit float64) func(float64) bool { return func(v float64) bool { return v <= limit } }
	atLeast := func(limit float64) func(float64) bool { return func(v float64) bool { return v >= limit } }
	serverCPU := func(r *report) (string, float64, bool) {
		v, ok := serverCPUms(r)
		return fmt.Sprintf("%.2f ms", v), v, ok
	}
	// PostgreSQL's CPU per write against its baseline's per transfer: the
	// figure judged is their difference.
	postgresCPU := func(r *report) (string, float64, bool) {
		s, ok1 := postgresCPUms(r)
		b, ok2 := postgresCPUms(pairedBaseline(reports, r))
		return fmt.Sprintf("%.2f vs %.2f ms", s, b), s - b, ok1 && ok2
	}
	spreadRatio := func(r *report) (string, float64, bool) {
		v, ok := throughputRatio(r, pairedBaseline(reports, r))
		return fmt.Sprintf("%.3f", v), v, ok
	}
	hotRatio := func(r *report) (string, float64, bool) {
		v, ok := throughputRatio(r, sameRun(reports, phaseServiceSpread, r))
		return fmt.Sprintf("%.3f", v), v, ok
	}
	p99 := func(r *report) (string, float64, bool) {
		d := r.headline().percentile(.99)
		return ms(d) + " ms", float64(d), r.headline().Count > 0
	}
	spread, hot := phaseRuns(reports, phaseServiceSpread), phaseRuns(reports, phaseServiceHot)
	rows := []targetRow{
		judge("loyaltyd CPU per committed write, spread (steady)", fmt.Sprintf("<= %.2f ms", targetServerCPUMS),
			spread, serverCPU, atMost(targetServerCPUMS)),
		judge("loyaltyd CPU per committed write, hot", fmt.Sprintf("<= %.2f ms", targetServerCPUMS),
			hot, serverCPU, atMost(targetServerCPUMS)),
		judge("PostgreSQL CPU per committed write vs baseline's per transfer, spread", "<= the baseline's",
			spread, postgresCPU, atMost(0)),
		judge("PostgreSQL CPU per committed write vs baseline's per transfer, hot", "<= the baseline's",
			hot, postgresCPU, atMost(0)),
		judge("service/baseline committed/s, spread (steady)", fmt.Sprintf(">= %.1f", targetSpreadRatio),
			spread, spreadRatio, atLeast(targetSpreadRatio)),
		judge("hot/spread committed/s, service", fmt.Sprintf(">= %.1f", targetHotRatio),
			hot, hotRatio, atLeast(targetHotRatio)),
		judge("p99 of writes at half the steady spread peak", fmt.Sprintf("<= %s ms", ms(targetHalfPeakP99)),
			phaseRuns(reports, phaseServiceHalfPeak), p99, atMost(float64(targetHalfPeakP99))),
	}

	// Peak RSS: the largest of each run's service phases.
	rss := targetRow{name: "loyaltyd peak RSS, largest of the service phases", want: fmt.Sprintf("<= %.0f MiB", targetPeakRSSMiB), met: true}
	largest := map[int]float64{}
	var runs []int
	for _, r := range reports {
		if r.Target != targetService {
			continue
		}
		if _, seen := largest[r.Run]; !seen {
			runs = append(runs, r.Run)
			largest[r.Run] = 0
		}
		if r.PeakRSS <= 0 {
			largest[r.Run] = -1 // unknown: the run's figure is not known
		} else if largest[r.Run] >= 0 {
			largest[r.Run] = max(largest[r.Run], r.PeakRSS)
		}
	}
	for _, run := range runs {
		label := runLabel(&report{Run: run})
		if largest[run] < 0 {
			rss.measured = append(rss.measured, label+"n/a")
			rss.met = false
			continue
		}
		rss.measured = append(rss.measured, fmt.Sprintf("%s%.1f MiB", label, largest[run]))
		rss.met = rss.met && largest[run] <= targetPeakRSSMiB
	}
	if len(runs) == 0 {
		rss.measured, rss.met = []string{"no service phase"}, false
	}
	rows = append(rows, rss)

	// Discrepancies: the ledger's own check, the acknowledged writes
	// missing from the ledger (or more than were acknowledged), and
	// replays answered differently from the first answer.
	var problems, mismatches int64
	for _, r := range reports {
		problems += int64(len(r.Problems))
		mismatches += r.Mismatches
	}
	rows = append(rows, targetRow{
		name: "discrepancies",
		measured: []string{fmt.Sprintf("ledger.Verify %d, acknowledged-write and invariant checks failed %d, replay mismatches %d",
			checks.ledgerDiscrepancies, problems, mismatches)},
		want: "0",
		met:  checks.ledgerDiscrepancies == 0 && problems == 0 && mismatches == 0,
	})
	return rows
}

// printTargets writes the targets table: each target, the figures of each
// run, what is wanted and whether every run met it.
func printTargets(w io.Writer, rows []targetRow) {
	fmt.Fprintf(w, "\n== Targets (issue 22: CPU per committed write) ==\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\twanted\tmet\t")
	met := 0
	for _, r := range rows {
		verdict := "NOT MET"
		if r.met {
			verdict = "met"
			met++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", r.name, strings.Join(r.measured, ", "), r.want, verdict)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d of %d targets met (a target with two runs is met when both meet it)\n", met, len(rows))
}

// printRatios writes the ratios between phases, run by run: service over
// its baseline, hot over spread, first-stay over steady, and the p99 at
// half the peak; with the CPU split of service/baseline.
func printRatios(w io.Writer, reports []*report) {
	ratio := func(a, b *report) string {
		if v, ok := throughputRatio(a, b); ok {
			return fmt.Sprintf("%.3f", v)
		}
		return "n/a"
	}
	fmt.Fprintln(w)
	for _, name := range []string{phaseServiceSpread, phaseServiceFirst} {
		for _, s := range phaseRuns(reports, name) {
			b := pairedBaseline(reports, s)
			fmt.Fprintf(w, "service/baseline (%s) %s= %s\n", strings.TrimPrefix(name, targetService+" "), runLabel(s), ratio(s, b))
			if cpu, busy, ok := cpuRatios(s, b); ok {
				fmt.Fprintf(w, "  = cores busy %.3f / CPU per committed %.3f (service/baseline): each committed write costs %.2fx a transfer's CPU\n",
					busy, cpu, cpu)
			}
		}
	}
	for _, h := range phaseRuns(reports, phaseServiceHot) {
		fmt.Fprintf(w, "hot/spread (service) %s= %s\n", runLabel(h), ratio(h, sameRun(reports, phaseServiceSpread, h)))
	}
	for _, h := range phaseRuns(reports, phaseBaselineHot) {
		fmt.Fprintf(w, "hot/spread (baseline) %s= %s\n", runLabel(h), ratio(h, sameRun(reports, phaseBaselineSpread, h)))
	}
	for _, f := range phaseRuns(reports, phaseServiceFirst) {
		fmt.Fprintf(w, "first-stay/steady (service spread) %s= %s\n", runLabel(f), ratio(f, sameRun(reports, phaseServiceSpread, f)))
	}
	for _, p := range phaseRuns(reports, phaseServiceHalfPeak) {
		fmt.Fprintf(w, "p99 at half the peak (service %s) = %s ms (target %s ms)\n", p.modeText(), ms(p.headline().percentile(.99)), ms(targetHalfPeakP99))
	}
}
