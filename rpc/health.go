package rpc

import (
	"context"
	"net/http"
	"sync"
	"time"

	"connectrpc.com/grpchealth"

	"github.com/loyalty-ledger/loyalty/database"
)

// healthPingTimeout bounds the database ping behind a health check, and
// healthTTL is how long its answer stands: a load balancer that checks
// every second costs the database one ping a second, whatever its count.
const (
	healthPingTimeout = time.Second
	healthTTL         = time.Second
)

// databaseHealth answers gRPC health checks: NOT_SERVING while the
// database does not answer, or answers but takes no writes (a standby
// during a failover, a database made read-only), since every call, or
// every write, would then fail with UNAVAILABLE, so that a load balancer
// sends the traffic elsewhere. The services it knows are services' (a
// static checker's); others are NOT_FOUND.
type databaseHealth struct {
	db       *database.DB
	services *grpchealth.StaticChecker

	mu      sync.Mutex
	checked time.Time
	serving bool
}

func (h *databaseHealth) Check(ctx context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	res, err := h.services.Check(ctx, req)
	if err != nil || res.Status != grpchealth.StatusServing {
		return res, err
	}
	if !h.databaseAnswers(ctx) {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
	}
	return res, nil
}

// databaseAnswers asks the database whether it takes writes, at most once
// per healthTTL; checks that come meanwhile share the last answer (and
// wait for a question under way, at most healthPingTimeout).
func (h *databaseHealth) databaseAnswers(ctx context.Context) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.checked) < healthTTL {
		return h.serving
	}
	ping, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthPingTimeout)
	defer cancel()
	var readOnly string
	h.serving = h.db.Pool.QueryRow(ping, `SHOW transaction_read_only`).Scan(&readOnly) == nil && readOnly == "off"
	h.checked = time.Now()
	return h.serving
}

// ready answers GET /readyz: 200 while the service can serve, 503 while
// the database does not answer or takes no writes (what NOT_SERVING says
// to a gRPC health check).
func (h *databaseHealth) ready(w http.ResponseWriter, r *http.Request) {
	if !h.databaseAnswers(r.Context()) {
		plainText(w, http.StatusServiceUnavailable, "not ready: the database does not answer, or takes no writes")
		return
	}
	plainText(w, http.StatusOK, "ok")
}

// plainText writes a short answer for people and probes, never cached.
func plainText(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(text + "\n"))
}
