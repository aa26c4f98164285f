package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/webhooks"
)

// metrics is the server's Prometheus registry: RPC counts and latencies,
// the database's transaction retries, the group commit, the pool, and the
// Go runtime and process. It has its own registry, so nothing registered
// globally by a dependency leaks into /metrics.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	jobs     *jobStats
}

// jobStats counts the background jobs' runs (repeat), by job: what an
// operator alerts on ("the tier review has not succeeded for 26 h").
type jobStats struct {
	runs        *prometheus.CounterVec
	lastSuccess *prometheus.GaugeVec
	lastRun     *prometheus.GaugeVec
}

func newJobStats() *jobStats {
	return &jobStats{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyalty_job_runs_total",
			Help: "Runs of the background jobs (tier_review, points_expiry, finance, events_prune), by job and result (ok, failed).",
		}, []string{"job", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loyalty_job_last_success_timestamp_seconds",
			Help: "When the job's last successful run ended (Unix time); absent until one has.",
		}, []string{"job"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loyalty_job_last_run_duration_seconds",
			Help: "How long the job's last run took, successful or not.",
		}, []string{"job"}),
	}
}

// ran records a run of job that started at started and ended now, with err.
func (j *jobStats) ran(job string, started time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	j.runs.WithLabelValues(job, result).Inc()
	j.lastRun.WithLabelValues(job).Set(time.Since(started).Seconds())
	if err == nil {
		j.lastSuccess.WithLabelValues(job).Set(float64(time.Now().Unix()))
	}
}

func newMetrics(db *database.DB, l *ledger.Ledger) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyalty_rpc_requests_total",
			Help: "Unary RPCs handled, by procedure and Connect code (\"ok\" for success); calls refused for their key of a path that is no procedure count as procedure \"unknown\".",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loyalty_rpc_request_duration_seconds",
			Help:    "Time to handle a unary RPC, from authentication to the response message, by procedure.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"procedure"}),
		jobs: newJobStats(),
	}
	stats := func(field func(database.Stats) uint64) func() float64 {
		return func() float64 { return float64(field(db.Stats())) }
	}
	pool := func(field func(acquired, idle, total, max int32) int32) func() float64 {
		return func() float64 {
			s := db.Pool.Stat()
			return float64(field(s.AcquiredConns(), s.IdleConns(), s.TotalConns(), s.MaxConns()))
		}
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests,
		m.duration,
		m.jobs.runs,
		m.jobs.lastSuccess,
		m.jobs.lastRun,
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_db_transaction_attempts_total",
			Help: "Write transaction attempts started (first tries and retries).",
		}, stats(func(s database.Stats) uint64 { return s.Attempts })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_db_transaction_retries_total",
			Help: "Write transaction attempts retried after a serialization failure, deadlock or lost connection.",
		}, stats(func(s database.Stats) uint64 { return s.Retries })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_db_ambiguous_commits_total",
			Help: "Commits whose outcome was unknown (connection lost during COMMIT) and were retried.",
		}, stats(func(s database.Stats) uint64 { return s.AmbiguousCommits })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_ledger_groups_total",
			Help: "Groups the ledger's group commit wrote, each in one database transaction (mean size: requests / groups).",
		}, func() float64 { return float64(l.GroupStats().Groups) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_ledger_group_requests_total",
			Help: "Post requests and expiries the group commit wrote in those groups.",
		}, func() float64 { return float64(l.GroupStats().Requests) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "loyalty_db_pool_acquired_conns",
			Help: "Connections of the pool in use.",
		}, pool(func(acquired, _, _, _ int32) int32 { return acquired })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "loyalty_db_pool_idle_conns",
			Help: "Idle connections of the pool.",
		}, pool(func(_, idle, _, _ int32) int32 { return idle })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "loyalty_db_pool_total_conns",
			Help: "Connections of the pool: acquired, idle and being opened.",
		}, pool(func(_, _, total, _ int32) int32 { return total })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "loyalty_db_pool_max_conns",
			Help: "Most connections the pool opens.",
		}, pool(func(_, _, _, max int32) int32 { return max })),
		&eventLog{db: db, store: events.NewStore(db), webhooks: webhooks.NewStore(l, nil)},
	)
	return m
}

// watchDispatcher adds the webhook dispatcher's counters: this process's
// attempts and their outcomes, and how far behind its deliveries are.
func (m *metrics) watchDispatcher(d *webhooks.Dispatcher) {
	stat := func(field func(webhooks.DispatcherStats) uint64) func() float64 {
		return func() float64 { return float64(field(d.Stats())) }
	}
	m.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_webhook_attempts_total",
			Help: "Webhook delivery attempts this process started.",
		}, stat(func(s webhooks.DispatcherStats) uint64 { return s.Attempts })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_webhook_delivered_total",
			Help: "Webhook delivery attempts answered 2xx.",
		}, stat(func(s webhooks.DispatcherStats) uint64 { return s.Delivered })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_webhook_failed_total",
			Help: "Webhook delivery attempts that failed (no answer in time, a refused connection, a status other than 2xx).",
		}, stat(func(s webhooks.DispatcherStats) uint64 { return s.Failed })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_webhook_dead_total",
			Help: "Webhook deliveries that became dead letters (still failing three days after their first attempt).",
		}, stat(func(s webhooks.DispatcherStats) uint64 { return s.Dead })),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "loyalty_webhook_fanned_out_total",
			Help: "Webhook deliveries this process created from sequenced events.",
		}, stat(func(s webhooks.DispatcherStats) uint64 { return s.FannedOut })),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "loyalty_webhook_backlog_age_seconds",
			Help: "How long the oldest due webhook delivery has waited, as of the dispatcher's last round: 0 when it keeps up.",
		}, func() float64 { return d.Stats().BacklogAge.Seconds() }),
	)
}

// maxOutboxCount bounds the rows the outbox gauge counts: past it, the
// backlog is reported as this, and the age says the rest.
const maxOutboxCount = 100_000

// eventLog reports, at each scrape, the events written but not yet
// sequenced (the outbox: how far the sequencer is behind) and the newest
// position. Two small reads, bounded: a count stopped at maxOutboxCount,
// and the oldest row by the sequencer's own index.
type eventLog struct {
	db       *database.DB
	store    *events.Store
	webhooks *webhooks.Store
}

var (
	databaseUpDesc = prometheus.NewDesc("loyalty_db_up",
		"1 when this scrape's reads of the database answered (within 2 s), 0 when they did not: then the event and webhook gauges are missing from the scrape.", nil, nil)
	outboxRowsDesc = prometheus.NewDesc("loyalty_events_outbox_rows",
		"Events written but not yet sequenced (counted up to 100000).", nil, nil)
	outboxAgeDesc = prometheus.NewDesc("loyalty_events_outbox_oldest_age_seconds",
		"How long the oldest event not yet sequenced has waited: 0 when the outbox is empty.", nil, nil)
	lastPositionDesc = prometheus.NewDesc("loyalty_events_last_position",
		"The position of the newest sequenced event.", nil, nil)
	pendingDesc = prometheus.NewDesc("loyalty_webhook_pending_deliveries",
		"Webhook deliveries not yet received, of every endpoint: failed and waiting for their retry, or waiting behind their member's earlier one (counted up to 100000).", nil, nil)
	pendingAgeDesc = prometheus.NewDesc("loyalty_webhook_oldest_pending_age_seconds",
		"How long ago the event of the earliest pending webhook delivery was recorded: 0 when none is pending. It grows while an endpoint is down.", nil, nil)
	unsentDesc = prometheus.NewDesc("loyalty_webhook_unsent_events",
		"Sequenced events after the cursor of the active webhook endpoint furthest behind: not yet sent to it, nor passed over. It grows while no process dispatches (-events=false everywhere) or the dispatchers fall behind.", nil, nil)
	unsentAgeDesc = prometheus.NewDesc("loyalty_webhook_oldest_unsent_age_seconds",
		"How long ago the first event after the furthest-behind active endpoint's cursor was recorded: 0 when every active endpoint is up to date.", nil, nil)
)

func (l *eventLog) Describe(ch chan<- *prometheus.Desc) {
	ch <- databaseUpDesc
	ch <- outboxRowsDesc
	ch <- outboxAgeDesc
	ch <- lastPositionDesc
	ch <- pendingDesc
	ch <- pendingAgeDesc
	ch <- unsentDesc
	ch <- unsentAgeDesc
}

func (l *eventLog) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var rows int64
	err := l.db.Pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM event_outbox LIMIT $1) AS o`, maxOutboxCount).Scan(&rows)
	if err != nil {
		slog.Warn("metrics: count the event outbox", "error", err.Error())
		ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, 1)
	age := 0.0
	if rows > 0 {
		var oldest time.Time
		// The sequencer's order, so that its index answers on both engines.
		if err := l.db.Pool.QueryRow(ctx, `SELECT recorded_at FROM event_outbox ORDER BY recorded_at, ordinal, id LIMIT 1`).Scan(&oldest); err == nil {
			age = max(0, time.Since(oldest).Seconds())
		}
	}
	ch <- prometheus.MustNewConstMetric(outboxRowsDesc, prometheus.GaugeValue, float64(rows))
	ch <- prometheus.MustNewConstMetric(outboxAgeDesc, prometheus.GaugeValue, age)
	if last, err := l.store.LastPosition(ctx); err == nil {
		ch <- prometheus.MustNewConstMetric(lastPositionDesc, prometheus.GaugeValue, float64(last))
	}
	if b, err := l.webhooks.Backlog(ctx); err == nil {
		pendingAge := 0.0
		if !b.OldestRecordedAt.IsZero() {
			pendingAge = max(0, time.Since(b.OldestRecordedAt).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(b.Pending))
		ch <- prometheus.MustNewConstMetric(pendingAgeDesc, prometheus.GaugeValue, pendingAge)
		unsentAge := 0.0
		if !b.OldestUnsentAt.IsZero() {
			unsentAge = max(0, time.Since(b.OldestUnsentAt).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(unsentDesc, prometheus.GaugeValue, float64(b.Unsent))
		ch <- prometheus.MustNewConstMetric(unsentAgeDesc, prometheus.GaugeValue, unsentAge)
	}
}

// Handler serves the registry in the Prometheus exposition format.
func (m *metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Interceptor counts and times unary RPCs. It sees every call that reaches
// a service handler; calls refused for their key before their body is read
// are counted by Refused; requests Connect itself rejects earlier (unknown
// content type, undecodable message) never get this far, and streaming
// calls (server reflection, event streams) are not counted.
func (m *metrics) Interceptor() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			start := time.Now()
			resp, err := next(ctx, req)
			procedure := req.Spec().Procedure
			m.duration.WithLabelValues(procedure).Observe(time.Since(start).Seconds())
			m.requests.WithLabelValues(procedure, codeLabel(err)).Inc()
			return resp, err
		}
	})
}

// Refused counts a call refused for its key before its body was read.
func (m *metrics) Refused(procedure string, code connect.Code) {
	m.requests.WithLabelValues(procedure, code.String()).Inc()
}

// codeLabel is "ok" for success, else the Connect code ("not_found", ...).
func codeLabel(err error) string {
	if err == nil {
		return "ok"
	}
	return connect.CodeOf(err).String()
}
