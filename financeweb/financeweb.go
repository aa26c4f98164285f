// Package financeweb is the read-only finance page that loyaltyd serves at
// /finance/: the points liability roll-forward of a chosen period, a chart
// of the points outstanding and the liability over it, and links that
// download each report as CSV (the very files loyaltyctl writes, from
// package financecsv).
//
// It is for people with a browser, so it speaks plain HTTP rather than
// Connect: HTTP Basic authentication whose password is an API key secret
// of role finance or admin (the user name is ignored; browsers prompt for
// it natively and send it again for the CSV links), GET and HEAD only,
// HTML rendered on the server with no JavaScript, and headers that keep
// the page out of caches and frames. Every figure comes from package
// finance, read in snapshots that block no writer.
package financeweb

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/loyalty-ledger/loyalty/apikeys"
	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// Path is where the page lives; every URL of this package is under it.
const Path = "/finance/"

// Realm is the Basic authentication realm browsers show when they prompt.
const Realm = "loyalty finance"

// Config is what the page reads.
type Config struct {
	Reports *finance.Reports
	Keys    *apikeys.Store
	// Clock is "now", for the default period; nil means time.Now.
	Clock func() time.Time
	// Zone is the time zone whose days the page's dates name by default:
	// the programme's, in force at the time given, where finance closes
	// its books. Nil means UTC. A zone parameter overrides it.
	Zone   func(ctx context.Context, at time.Time) (*time.Location, error)
	Logger *slog.Logger // nil: slog.Default()
}

// Handler serves Path and everything under it.
type Handler struct {
	reports *finance.Reports
	keys    *apikeys.Store
	now     func() time.Time
	zone    func(ctx context.Context, at time.Time) (*time.Location, error)
	log     *slog.Logger
	routes  map[string]func(http.ResponseWriter, *http.Request) error
}

// New returns the page's handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Reports == nil || cfg.Keys == nil {
		return nil, errors.New("financeweb: Reports and Keys are required")
	}
	h := &Handler{reports: cfg.Reports, keys: cfg.Keys, now: cfg.Clock, zone: cfg.Zone, log: cfg.Logger}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.routes = map[string]func(http.ResponseWriter, *http.Request) error{
		Path:                            h.page,
		Path + "trial-balance.csv":      h.trialBalanceCSV,
		Path + "roll-forward.csv":       h.rollForwardCSV,
		Path + "partner-statements.csv": h.partnerStatementsCSV,
		Path + "point-values.csv":       h.pointValuesCSV,
	}
	return h, nil
}

// roles may see the page: the roles FinanceService admits.
var roles = map[apikeys.Role]bool{apikeys.RoleFinance: true, apikeys.RoleAdmin: true}

// ServeHTTP checks, in order, the method, the credentials, the key's role
// and the path, so that nothing about the page's URLs is revealed to a
// caller without a finance key.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	nonce := newNonce()
	securityHeaders(w.Header(), nonce)
	r = r.WithContext(context.WithValue(r.Context(), nonceKey{}, nonce))
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		plain(w, http.StatusMethodNotAllowed, "the finance page is read-only: GET or HEAD only")
		return
	}
	_, secret, ok := r.BasicAuth()
	if !ok || secret == "" {
		challenge(w, "sign in with any user name (e.g. finance) and an API key of role finance or admin as the password")
		return
	}
	key, err := h.keys.Authenticate(r.Context(), secret)
	if errors.Is(err, apikeys.ErrUnauthenticated) {
		challenge(w, "unknown, revoked or expired API key")
		return
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !roles[key.Role] {
		plain(w, http.StatusForbidden, fmt.Sprintf("API key %s has role %s; the finance page needs role finance or admin", key.ID, key.Role))
		return
	}
	route, ok := h.routes[r.URL.Path]
	if !ok {
		plain(w, http.StatusNotFound, "no such finance page; see "+Path)
		return
	}
	if err := route(w, r); err != nil {
		var bad *badParam
		var field *ledger.FieldError
		switch {
		case errors.As(err, &bad):
			plain(w, http.StatusBadRequest, bad.Error())
		case errors.As(err, &field):
			plain(w, http.StatusBadRequest, field.Error())
		default:
			h.fail(w, r, err)
		}
		return
	}
	h.log.DebugContext(r.Context(), "finance page", "path", r.URL.Path, "key_id", key.ID)
}

// location is the zone of a request's dates: its zone parameter, else the
// programme's, else UTC.
func (h *Handler) location(r *http.Request) (*time.Location, error) {
	zone, ok, err := zoneParam(r.URL.Query())
	if err != nil || ok {
		return zone, err
	}
	if h.zone == nil {
		return time.UTC, nil
	}
	zone, err = h.zone(r.Context(), h.now())
	if err != nil {
		return nil, fmt.Errorf("the programme's time zone: %w", err)
	}
	return zone, nil
}

// fail answers 503 when the database could not be reached (try again
// shortly; logged at WARN), else 500; it logs the cause, which the caller
// does not see.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	if database.Unavailable(err) {
		h.log.WarnContext(r.Context(), "finance page: the database is unavailable", "path", r.URL.Path, "error", err.Error())
		w.Header().Set("Retry-After", "5")
		plain(w, http.StatusServiceUnavailable, "the database cannot be reached at the moment: try again shortly")
		return
	}
	h.log.ErrorContext(r.Context(), "finance page failed", "path", r.URL.Path, "error", err.Error())
	plain(w, http.StatusInternalServerError, "the finance page failed; the server's log says why")
}

// securityHeaders: nothing is cached (the figures are confidential and
// change), nothing runs but what the page itself is (no script at all;
// styles only the page's own, by nonce; images only its own or inline),
// the page cannot be framed and its type is never sniffed.
func securityHeaders(hd http.Header, nonce string) {
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+nonce+"'; img-src 'self' data:; "+
		"form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
}

type nonceKey struct{}

func newNonce() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+)
	return base64.RawStdEncoding.EncodeToString(b)
}

func nonceOf(ctx context.Context) string {
	n, _ := ctx.Value(nonceKey{}).(string)
	return n
}

// challenge answers 401 with the Basic challenge that makes a browser
// prompt for the key.
func challenge(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
	plain(w, http.StatusUnauthorized, msg)
}

func plain(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintln(w, msg)
}

// badParam is a query parameter the page cannot use: 400, naming it.
type badParam struct {
	Param   string
	Problem string
}

func (e *badParam) Error() string { return e.Param + ": " + e.Problem }
