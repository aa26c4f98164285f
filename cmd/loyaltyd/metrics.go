package main

import (
	"context"
	"net/http"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// metrics is the server's Prometheus registry: RPC counts and latencies,
// the database's transaction retries, the group commit, the pool, and the
// Go runtime and process. It has its own registry, so nothing registered
// globally by a dependency leaks into /metrics.
type metrics struct {
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(db *database.DB, l *ledger.Ledger) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loyalty_rpc_requests_total",
			Help: "Unary RPCs handled, by procedure and Connect code (\"ok\" for success).",
		}, []string{"procedure", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loyalty_rpc_request_duration_seconds",
			Help:    "Time to handle a unary RPC, from authentication to the response message, by procedure.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"procedure"}),
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
	)
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Interceptor counts and times unary RPCs. It sees every call that reaches
// a service handler; calls refused for their key before their body is read
// are counted by Refused; requests Connect itself rejects earlier (unknown
// content type, undecodable message) never get this far, and streaming
// calls (server reflection) are not counted.
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
