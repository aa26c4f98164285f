// Package webhooks delivers the events of package events to HTTP
// endpoints as signed webhooks (Standard Webhooks headers, the CloudEvents
// envelope as body, or a CloudEvents JSON batch): at least once, and in
// order per member (subject) per endpoint.
//
// The Store keeps the endpoints (created by admins) and their delivery log
// (a row per request for what the stream delivered, requests.go, and a
// row per event for what failed, waited or was sent again); the Dispatcher, which several processes may run at once, streams each
// endpoint its events and retries failures with backoff for three days
// before a delivery is dead (a dead letter, sent again by Redeliver).
//
// How the dispatcher keeps its promises:
//
//   - Streams (stream.go): one process at a time holds an endpoint's stream
//     (a lease on its row), sends a window of the events after its cursor
//     and records the window in one transaction that holds the row and
//     checks the cursor has not moved: no event is skipped, and none is
//     recorded twice, whoever runs it. A process that dies mid-window
//     records nothing: the next holder sends the window again, with the
//     same ids.
//   - Order: a member's events of a window go out one after another. A
//     failed attempt's events become pending deliveries, and the member's
//     later events follow them, blocked; of an endpoint's pending
//     deliveries of one subject only the earliest is unblocked. When a
//     delivery is done (delivered or dead), a transaction that holds the
//     endpoint's row unblocks the next.
//   - Leases: a due retry is leased by one statement (FOR UPDATE SKIP
//     LOCKED, and the lease's own conditions on the updated row), so one
//     delivery is in flight in one process at a time. Its next attempt
//     moves to the lease's end: a process that dies mid-attempt loses
//     nothing, the delivery comes due again when the lease runs out.
//   - Outcomes are written only under the lease that made the attempt.
package webhooks

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
)

// Limits.
const (
	MaxURLBytes = 2048
	// MaxDescription is in characters.
	MaxDescription = 200
	// MaxEndpoints bounds the endpoints not deleted: the dispatcher reads
	// them all at every round.
	MaxEndpoints = 100
	// MaxPageSize bounds a page of List and ListDeliveries;
	// DefaultPageSize is a page size of 0.
	MaxPageSize     = 100
	DefaultPageSize = 50
	// DefaultOverlap is how long the old secret still signs after a
	// rotation when the caller gives no overlap; MaxOverlap bounds it.
	DefaultOverlap = 24 * time.Hour
	MaxOverlap     = 7 * 24 * time.Hour
	// MaxBatchSize bounds the events of one request: a batch is one
	// request body, held in memory and read by the receiver at once, and
	// must go out within one attempt's timeout. DefaultBatchSize, one event
	// per request, is a batch size of 0 on create.
	MaxBatchSize     = 500
	DefaultBatchSize = 1
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusDead      = "dead"
)

// ErrNotFound: no such endpoint (or it is deleted), or no delivery of that
// event to it.
var ErrNotFound = errors.New("webhook endpoint or delivery not found")

// ErrTooManyEndpoints: MaxEndpoints endpoints are not deleted; another
// is refused until one is.
var ErrTooManyEndpoints = fmt.Errorf("there are %d webhook endpoints already, the most there may be: delete one first", MaxEndpoints)

// ErrNoDelivery: the endpoint is there, but the event was never for it
// (RedeliverEvent). It is an ErrNotFound.
var ErrNoDelivery = fmt.Errorf("%w: the endpoint has no delivery of this event", ErrNotFound)

// Endpoint is where events are POSTed. Its secret is never part of it.
type Endpoint struct {
	// ID is "wh_" and 16 hex digits.
	ID string
	// URL is https:// or http:// (for local receivers and tests).
	URL string
	// EventTypes are the types it receives; empty: every type.
	EventTypes []string
	// PartnerID, when set, makes it a partner's endpoint: it receives only
	// the events whose PartnerID is this partner (its hotels' events), as
	// the alliance API shows a partner only its own activity. Empty: the
	// programme's, every event.
	PartnerID   string
	Description string
	// Paused: its deliveries are queued, not attempted; resumed, they go
	// out in order.
	Paused bool
	// BatchSize is how many events one request carries, 1 to MaxBatchSize:
	// 1 sends each event as its own CloudEvent (application/json), more
	// sends the CloudEvents JSON batch format
	// (application/cloudevents-batch+json), signed as a whole.
	BatchSize int `json:",omitempty"`
	CreatedAt time.Time
	UpdatedAt time.Time
	CreatedBy string
	// SecretRotatedAt is zero if the secret was never rotated.
	SecretRotatedAt time.Time
}

// CreateRequest describes a new endpoint.
type CreateRequest struct {
	URL         string
	EventTypes  []string
	PartnerID   string
	Description string
	// BatchSize is Endpoint.BatchSize; 0 means DefaultBatchSize.
	BatchSize int `json:",omitempty"`
}

// UpdateRequest changes an endpoint; nil fields are left as they are. A
// partner's endpoint stays that partner's.
type UpdateRequest struct {
	URL         *string
	EventTypes  *[]string
	Description *string
	Paused      *bool
	// BatchSize, when set, is 1 to MaxBatchSize.
	BatchSize *int `json:",omitempty"`
}

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	EndpointID string
	// EventID is the webhook-id of every request that carries the event
	// alone (batch size 1, and every retry).
	EventID   uuid.UUID
	EventType string
	Position  int64
	Subject   string
	// Status is StatusPending, StatusDelivered or StatusDead.
	Status string
	// Attempts started so far.
	Attempts int
	// LastStatusCode is the HTTP status of the last attempt; 0 when it got
	// no answer.
	LastStatusCode int
	LastError      string
	LastLatency    time.Duration
	// NextAttemptAt is when a pending delivery is next due (while an
	// attempt is in flight, when its lease runs out); zero otherwise.
	NextAttemptAt time.Time
	LastAttemptAt time.Time
	DeliveredAt   time.Time
	CreatedAt     time.Time
}

// DeliveryFilter narrows ListDeliveries.
type DeliveryFilter struct {
	// Status is StatusPending, StatusDelivered, StatusDead or "" for all.
	Status string
}

// Store keeps endpoints and reads their deliveries.
type Store struct {
	db     *database.DB
	ledger *ledger.Ledger
	now    func() time.Time
}

// NewStore returns a store whose idempotent writes go through l; now nil
// means time.Now.
func NewStore(l *ledger.Ledger, now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{db: l.DB(), ledger: l, now: now}
}

func fieldError(field, format string, args ...any) error {
	return &ledger.FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

var endpointIDPattern = regexp.MustCompile(`^wh_[0-9a-f]{16}$`)

func validateEndpointID(id string) error {
	if !endpointIDPattern.MatchString(id) {
		return fieldError("endpoint_id", `must be "wh_" and 16 lower-case hex digits`)
	}
	return nil
}

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateURL(raw string) error {
	if raw == "" || len(raw) > MaxURLBytes {
		return fieldError("url", "is required, at most %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fieldError("url", "is not a URL")
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return fieldError("url", "must be an https:// URL (http:// for a local receiver)")
	}
	if u.Host == "" || u.Hostname() == "" {
		return fieldError("url", "has no host")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		// Signed events carry member numbers and balances: in clear text
		// only to a receiver on the same machine.
		return fieldError("url", "http:// only for a receiver on this machine (localhost, or a loopback address such as 127.0.0.1 or ::1); use https://")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fieldError("url", "port %s is not a port: 1 to 65535", p)
		}
	}
	if u.User != nil {
		// Credentials in a URL end up in logs and in the admin API's
		// answers; a receiver authenticates deliveries by their signature.
		return fieldError("url", "must not carry credentials: receivers verify the webhook-signature instead")
	}
	return nil
}

func validateEventTypes(types []string) error {
	if len(types) > len(events.Types) {
		return fieldError("event_types", "at most %d types", len(events.Types))
	}
	for i, t := range types {
		if !events.KnownType(t) {
			return fieldError("event_types", "%q is not an event type", t)
		}
		if slices.Contains(types[:i], t) {
			return fieldError("event_types", "%q is listed twice", t)
		}
	}
	return nil
}

func validateDescription(d string) error {
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > MaxDescription {
		return fieldError("description", "at most %d characters of UTF-8", MaxDescription)
	}
	return nil
}

func validateBatchSize(n, least int) error {
	if n < least || n > MaxBatchSize {
		if least == 0 {
			return fieldError("batch_size", "must be 0 to %d (0: %d, one event per request)", MaxBatchSize, DefaultBatchSize)
		}
		return fieldError("batch_size", "must be %d to %d", least, MaxBatchSize)
	}
	return nil
}

func validateCreate(req CreateRequest) error {
	if err := validateURL(req.URL); err != nil {
		return err
	}
	if err := validateEventTypes(req.EventTypes); err != nil {
		return err
	}
	if req.PartnerID != "" {
		if err := partners.ValidateID(req.PartnerID); err != nil {
			return err
		}
	}
	if err := validateBatchSize(req.BatchSize, 0); err != nil {
		return err
	}
	return validateDescription(req.Description)
}

// Create adds an endpoint and returns it with its signing secret
// ("whsec_" and the base64 of 32 random bytes). The secret is shown once:
// a replay of the same idempotency key returns the endpoint with an empty
// secret (a caller that lost it rotates it). The endpoint receives the
// events sequenced from its creation on.
func (s *Store) Create(ctx context.Context, callerID, idempotencyKey string, req CreateRequest) (Endpoint, string, error) {
	if err := validateCreate(req); err != nil {
		return Endpoint{}, "", err
	}
	if len(req.EventTypes) == 0 {
		req.EventTypes = nil
	}
	batchSize := req.BatchSize
	if batchSize == 0 {
		batchSize = DefaultBatchSize
	}
	// What the last attempt that ran created; it is the committed endpoint
	// only if the one returned is it (not a replay).
	var created Endpoint
	var secret string
	ep, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "create_webhook_endpoint", req,
		func(ctx context.Context, tx pgx.Tx) (Endpoint, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			if err := checkRoom(ctx, tx, req.PartnerID); err != nil {
				return Endpoint{}, err
			}
			var last int64
			if err := tx.QueryRow(ctx, `SELECT last_position FROM event_sequencer WHERE id = 1`).Scan(&last); err != nil {
				return Endpoint{}, fmt.Errorf("read the last event position: %w", err)
			}
			created = Endpoint{ID: "wh_" + hex.EncodeToString(randomBytes(8)), URL: req.URL, EventTypes: req.EventTypes,
				PartnerID: req.PartnerID, Description: req.Description, BatchSize: batchSize, CreatedAt: now, UpdatedAt: now,
				CreatedBy: callerID}
			secret = newSecret()
			_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (id, url, event_types, partner_id, description, paused,
					batch_size, secret, fanned_out, created_at, created_by, updated_at)
				VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8, $9, $10, $9)`,
				created.ID, created.URL, typesArg(created.EventTypes), nullable(created.PartnerID), created.Description,
				created.BatchSize, secret, last, now, callerID)
			if err != nil {
				return Endpoint{}, fmt.Errorf("insert endpoint: %w", err)
			}
			return created, nil
		})
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("create webhook endpoint: %w", err)
	}
	if ep.ID != created.ID {
		secret = ""
	}
	return ep, secret, nil
}

// checkRoom refuses an endpoint beyond MaxEndpoints, or for a partner that
// does not exist (whose endpoint would silently receive nothing).
func checkRoom(ctx context.Context, tx pgx.Tx, partnerID string) error {
	if partnerID != "" {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM partners WHERE partner_id = $1`, partnerID).Scan(&n); err != nil {
			return fmt.Errorf("look up partner: %w", err)
		}
		if n == 0 {
			return fieldError("partner_id", "no partner %q", partnerID)
		}
	}
	var live int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook_endpoints WHERE deleted_at IS NULL`).Scan(&live); err != nil {
		return fmt.Errorf("count endpoints: %w", err)
	}
	if live >= MaxEndpoints {
		return ErrTooManyEndpoints
	}
	return nil
}

const endpointColumns = `id, url, event_types, COALESCE(partner_id, ''), description, paused, batch_size,
	created_at, updated_at, created_by, secret_rotated_at`

const endpointSelect = `SELECT ` + endpointColumns + ` FROM webhook_endpoints`

func scanEndpoint(row pgx.Row) (Endpoint, error) {
	var e Endpoint
	var rotated *time.Time
	err := row.Scan(&e.ID, &e.URL, &e.EventTypes, &e.PartnerID, &e.Description, &e.Paused, &e.BatchSize,
		&e.CreatedAt, &e.UpdatedAt, &e.CreatedBy, &rotated)
	if errors.Is(err, pgx.ErrNoRows) {
		return Endpoint{}, ErrNotFound
	}
	if err != nil {
		return Endpoint{}, err
	}
	if len(e.EventTypes) == 0 {
		e.EventTypes = nil
	}
	e.CreatedAt, e.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	if rotated != nil {
		e.SecretRotatedAt = rotated.UTC()
	}
	return e, nil
}

// Get returns an endpoint that is not deleted.
func (s *Store) Get(ctx context.Context, id string) (Endpoint, error) {
	if err := validateEndpointID(id); err != nil {
		return Endpoint{}, err
	}
	e, err := scanEndpoint(s.db.Pool.QueryRow(ctx, endpointSelect+` WHERE id = $1 AND deleted_at IS NULL`, id))
	if err != nil {
		return Endpoint{}, fmt.Errorf("get webhook endpoint %s: %w", id, err)
	}
	return e, nil
}

// List returns the endpoints that are not deleted, by id, a page at a
// time (pageSize 1 to MaxPageSize; 0: DefaultPageSize), and the token of
// the next page ("" after the last).
func (s *Store) List(ctx context.Context, pageSize int, pageToken string) ([]Endpoint, string, error) {
	size, err := checkPageSize(pageSize)
	if err != nil {
		return nil, "", err
	}
	after := ""
	if pageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || validateEndpointID(string(b)) != nil {
			return nil, "", fieldError("page_token", "is not a token of this list")
		}
		after = string(b)
	}
	rows, err := s.db.Pool.Query(ctx, endpointSelect+` WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2`, after, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list webhook endpoints: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Endpoint, error) { return scanEndpoint(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list webhook endpoints: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[size-1].ID))
	}
	return out, next, nil
}

func checkPageSize(pageSize int) (int, error) {
	if pageSize == 0 {
		return DefaultPageSize, nil
	}
	if pageSize < 1 || pageSize > MaxPageSize {
		return 0, fieldError("page_size", "must be 1 to %d (0: %d)", MaxPageSize, DefaultPageSize)
	}
	return pageSize, nil
}

// Update changes an endpoint. Its new event types apply to the events
// fanned out after the change; a resumed endpoint gets its queued
// deliveries in order.
func (s *Store) Update(ctx context.Context, callerID, idempotencyKey, id string, req UpdateRequest) (Endpoint, error) {
	if err := validateEndpointID(id); err != nil {
		return Endpoint{}, err
	}
	if req.URL != nil {
		if err := validateURL(*req.URL); err != nil {
			return Endpoint{}, err
		}
	}
	if req.EventTypes != nil {
		if err := validateEventTypes(*req.EventTypes); err != nil {
			return Endpoint{}, err
		}
	}
	if req.Description != nil {
		if err := validateDescription(*req.Description); err != nil {
			return Endpoint{}, err
		}
	}
	if req.BatchSize != nil {
		if err := validateBatchSize(*req.BatchSize, 1); err != nil {
			return Endpoint{}, err
		}
	}
	request := struct {
		ID      string
		Request UpdateRequest
	}{id, req}
	ep, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "update_webhook_endpoint", request,
		func(ctx context.Context, tx pgx.Tx) (Endpoint, error) {
			e, err := scanEndpoint(tx.QueryRow(ctx, endpointSelect+` WHERE id = $1 AND deleted_at IS NULL FOR UPDATE`, id))
			if err != nil {
				return Endpoint{}, err
			}
			before := e
			if req.URL != nil {
				e.URL = *req.URL
			}
			if req.EventTypes != nil {
				e.EventTypes = *req.EventTypes
				if len(e.EventTypes) == 0 {
					e.EventTypes = nil
				}
			}
			if req.Description != nil {
				e.Description = *req.Description
			}
			if req.Paused != nil {
				e.Paused = *req.Paused
			}
			if req.BatchSize != nil {
				e.BatchSize = *req.BatchSize
			}
			if e.URL == before.URL && slices.Equal(e.EventTypes, before.EventTypes) && e.Description == before.Description &&
				e.Paused == before.Paused && e.BatchSize == before.BatchSize {
				return e, nil // nothing changes, not even updated_at
			}
			e.UpdatedAt = s.now().UTC().Truncate(time.Microsecond)
			_, err = tx.Exec(ctx, `UPDATE webhook_endpoints SET url = $2, event_types = $3, description = $4, paused = $5,
					batch_size = $6, updated_at = $7
				WHERE id = $1`, id, e.URL, typesArg(e.EventTypes), e.Description, e.Paused, e.BatchSize, e.UpdatedAt)
			if err != nil {
				return Endpoint{}, fmt.Errorf("update: %w", err)
			}
			return e, nil
		})
	if err != nil {
		return Endpoint{}, fmt.Errorf("update webhook endpoint %s: %w", id, err)
	}
	return ep, nil
}

// Delete deletes an endpoint: nothing more is fanned out or delivered to
// it (an attempt in flight finishes). Its delivery log goes with the
// events it concerns (events.Prune).
func (s *Store) Delete(ctx context.Context, callerID, idempotencyKey, id string) error {
	if err := validateEndpointID(id); err != nil {
		return err
	}
	_, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "delete_webhook_endpoint", struct{ ID string }{id},
		func(ctx context.Context, tx pgx.Tx) (struct{}, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			tag, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL`, id, now)
			if err != nil {
				return struct{}{}, fmt.Errorf("delete: %w", err)
			}
			if tag.RowsAffected() == 0 {
				return struct{}{}, ErrNotFound
			}
			return struct{}{}, nil
		})
	if err != nil {
		return fmt.Errorf("delete webhook endpoint %s: %w", id, err)
	}
	return nil
}

// rotation is RotateSecret's stored response: the endpoint, and which
// attempt drew the secret, to tell a first answer from a replay.
type rotation struct {
	Endpoint Endpoint
	Attempt  string
}

// RotateSecret gives an endpoint a new secret and returns it (empty on a
// replay). The old secret still signs deliveries, as a second v1
// signature, until now+overlap (0 to MaxOverlap; 0 means DefaultOverlap),
// so a receiver can switch without refusing a delivery. A rotation during
// another's overlap ends that overlap: only the last old secret signs.
func (s *Store) RotateSecret(ctx context.Context, callerID, idempotencyKey, id string, overlap time.Duration) (Endpoint, string, error) {
	if err := validateEndpointID(id); err != nil {
		return Endpoint{}, "", err
	}
	if overlap < 0 || overlap > MaxOverlap {
		return Endpoint{}, "", fieldError("overlap", "must be 0 to %s (0: %s)", MaxOverlap, DefaultOverlap)
	}
	if overlap == 0 {
		overlap = DefaultOverlap
	}
	request := struct {
		ID             string
		OverlapSeconds int64
	}{id, int64(overlap / time.Second)}
	var attempt, secret string
	r, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "rotate_webhook_secret", request,
		func(ctx context.Context, tx pgx.Tx) (rotation, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			attempt, secret = hex.EncodeToString(randomBytes(8)), newSecret()
			e, err := scanEndpoint(tx.QueryRow(ctx, `UPDATE webhook_endpoints
				SET previous_secret = secret, previous_secret_until = $2, secret = $3, secret_rotated_at = $4, updated_at = $4
				WHERE id = $1 AND deleted_at IS NULL
				RETURNING `+endpointColumns, id, now.Add(overlap), secret, now))
			if err != nil {
				return rotation{}, err
			}
			return rotation{Endpoint: e, Attempt: attempt}, nil
		})
	if err != nil {
		return Endpoint{}, "", fmt.Errorf("rotate the secret of webhook endpoint %s: %w", id, err)
	}
	if r.Attempt != attempt {
		secret = ""
	}
	return r.Endpoint, secret, nil
}

const deliveryColumns = `endpoint_id, event_id, event_type, position, subject, status, attempts, last_status_code, last_error,
	last_latency_us, next_attempt_at, last_attempt_at, delivered_at, created_at`

func scanDelivery(row pgx.Row) (Delivery, error) {
	var d Delivery
	var latencyMicros int64
	var lastAttempt, delivered *time.Time
	err := row.Scan(&d.EndpointID, &d.EventID, &d.EventType, &d.Position, &d.Subject, &d.Status, &d.Attempts,
		&d.LastStatusCode, &d.LastError, &latencyMicros, &d.NextAttemptAt, &lastAttempt, &delivered, &d.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Delivery{}, ErrNotFound
	}
	if err != nil {
		return Delivery{}, err
	}
	d.LastLatency = time.Duration(latencyMicros) * time.Microsecond
	d.NextAttemptAt, d.CreatedAt = d.NextAttemptAt.UTC(), d.CreatedAt.UTC()
	if d.Status != StatusPending {
		d.NextAttemptAt = time.Time{}
	}
	if lastAttempt != nil {
		d.LastAttemptAt = lastAttempt.UTC()
	}
	if delivered != nil {
		d.DeliveredAt = delivered.UTC()
	}
	return d, nil
}

// ListDeliveries returns an endpoint's deliveries, newest event first, a
// page at a time (pageSize 1 to MaxPageSize; 0: DefaultPageSize), and the
// token of the next page ("" after the last).
func (s *Store) ListDeliveries(ctx context.Context, endpointID string, f DeliveryFilter, pageSize int, pageToken string) ([]Delivery, string, error) {
	if err := validateEndpointID(endpointID); err != nil {
		return nil, "", err
	}
	size, err := checkPageSize(pageSize)
	if err != nil {
		return nil, "", err
	}
	before := int64(1<<63 - 1)
	if pageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(pageToken)
		p, perr := strconv.ParseInt(string(b), 10, 64)
		if err != nil || perr != nil || p < 1 {
			return nil, "", fieldError("page_token", "is not a token of this list")
		}
		before = p
	}
	var query string
	args := []any{endpointID, before, size + 1}
	switch f.Status {
	case "":
		query = `WHERE endpoint_id = $1 AND position < $2 ORDER BY position DESC LIMIT $3`
	case StatusDead:
		// Spelled out, so that the partial index of dead letters serves it.
		query = `WHERE endpoint_id = $1 AND status = 'dead' AND position < $2 ORDER BY position DESC LIMIT $3`
	case StatusPending, StatusDelivered:
		query = `WHERE endpoint_id = $1 AND status = $4 AND position < $2 ORDER BY position DESC LIMIT $3`
		args = append(args, f.Status)
	default:
		return nil, "", fieldError("status", "must be pending, delivered, dead or empty")
	}
	if _, err := s.Get(ctx, endpointID); err != nil {
		return nil, "", err
	}
	rows, err := s.db.Pool.Query(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries `+query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries of %s: %w", endpointID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Delivery, error) { return scanDelivery(r) })
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries of %s: %w", endpointID, err)
	}
	if f.Status == "" || f.Status == StatusDelivered {
		// The events delivered by the stream are logged by request: each
		// has no row above, and each row above no request. Both lists
		// hold their newest size+1: the page is the newest of both.
		logged, err := loggedDeliveries(ctx, s.db.Pool, endpointID, before, size+1)
		if err != nil {
			return nil, "", fmt.Errorf("list deliveries of %s: %w", endpointID, err)
		}
		out = append(out, logged...)
		slices.SortFunc(out, func(a, b Delivery) int { return cmp.Compare(b.Position, a.Position) })
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(out[size-1].Position, 10)))
	}
	return out, next, nil
}

// Redeliver sends an event to an endpoint again: a dead or delivered
// delivery goes back to pending, due at once, with three days of retries
// from its next attempt. It is sent outside its subject's order (the
// deliveries after it have gone, or went on when it died). A pending
// delivery that is waiting for a retry is made due at once; one in flight
// or waiting for its turn is left as it is.
func (s *Store) Redeliver(ctx context.Context, callerID, idempotencyKey, endpointID string, eventID uuid.UUID) (Delivery, error) {
	if err := validateEndpointID(endpointID); err != nil {
		return Delivery{}, err
	}
	if eventID == uuid.Nil {
		return Delivery{}, fieldError("event_id", "is required")
	}
	request := struct {
		EndpointID string
		EventID    uuid.UUID
	}{endpointID, eventID}
	d, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "redeliver_webhook_event", request,
		func(ctx context.Context, tx pgx.Tx) (Delivery, error) {
			now := s.now().UTC().Truncate(time.Microsecond)
			var live bool
			if err := tx.QueryRow(ctx, `SELECT count(*) > 0 FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL`, endpointID).
				Scan(&live); err != nil {
				return Delivery{}, fmt.Errorf("read endpoint: %w", err)
			}
			if !live {
				return Delivery{}, ErrNotFound
			}
			d, err := scanDelivery(tx.QueryRow(ctx, `UPDATE webhook_deliveries SET
					status = 'pending', blocked = false, released = true, next_attempt_at = $3, leased_by = NULL, lease_until = NULL,
					first_attempt_at = CASE WHEN status = 'pending' THEN first_attempt_at END,
					delivered_at = NULL
				WHERE endpoint_id = $1 AND event_id = $2
				  AND (status <> 'pending' OR (NOT blocked AND leased_by IS NULL))
				RETURNING `+deliveryColumns, endpointID, eventID, now))
			if errors.Is(err, ErrNotFound) {
				// In flight or waiting for its turn, or no such delivery.
				d, err = scanDelivery(tx.QueryRow(ctx, `SELECT `+deliveryColumns+` FROM webhook_deliveries
					WHERE endpoint_id = $1 AND event_id = $2`, endpointID, eventID))
			}
			if errors.Is(err, ErrNotFound) {
				// Delivered by the stream, logged with its request.
				d, err = redeliverLogged(ctx, tx, endpointID, eventID, now)
			}
			if errors.Is(err, ErrNotFound) {
				return Delivery{}, ErrNoDelivery
			}
			return d, err
		})
	if err != nil {
		return Delivery{}, fmt.Errorf("redeliver event %s to %s: %w", eventID, endpointID, err)
	}
	return d, nil
}

// newSecret draws a signing secret: "whsec_" and the standard base64 of
// 32 random bytes, as Standard Webhooks libraries read it.
func newSecret() string {
	return secretPrefix + base64.StdEncoding.EncodeToString(randomBytes(32))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("webhooks: crypto/rand failed: %v", err))
	}
	return b
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// typesArg is event types as a TEXT[] parameter: never NULL.
func typesArg(types []string) []string {
	if types == nil {
		return []string{}
	}
	return types
}

// MaxBacklogCount bounds the pending deliveries Backlog counts.
const MaxBacklogCount = 100_000

// Backlog is what the endpoints have not received yet: the deliveries
// pending (failed and waiting for their retry, or waiting behind their
// member's earlier one), and when the earliest of them was recorded.
type Backlog struct {
	// Pending counts them, up to MaxBacklogCount.
	Pending int64
	// OldestRecordedAt is when the event of the earliest of them (among
	// those counted) was recorded; zero when none is pending.
	OldestRecordedAt time.Time
	// Unsent counts the sequenced events after the cursor of the endpoint
	// (active: not paused, not deleted) furthest behind: events no
	// dispatcher has sent it yet, or decided it does not take. It grows
	// when no process dispatches, or the dispatchers fall behind.
	Unsent int64
	// OldestUnsentAt is when the first of those was recorded; zero when
	// every active endpoint is up to date.
	OldestUnsentAt time.Time
}

// Backlog reads the pending deliveries of every endpoint, for operators:
// an endpoint that is down keeps its deliveries pending, which the
// dispatcher's own figures (due deliveries) do not show; and how far the
// slowest active endpoint's cursor is behind the newest event. Two bounded
// reads: by the pending deliveries' index, and of the endpoints.
func (s *Store) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var oldest *time.Time
	err := s.db.Pool.QueryRow(ctx, `SELECT p.n, e.recorded_at
		FROM (SELECT count(*) AS n, min(d.position) AS first
		      FROM (SELECT position FROM webhook_deliveries WHERE status = 'pending' LIMIT $1) AS d) AS p
		LEFT JOIN events AS e ON e.position = p.first`, MaxBacklogCount).Scan(&b.Pending, &oldest)
	if err != nil {
		return Backlog{}, fmt.Errorf("read the webhook backlog: %w", err)
	}
	if oldest != nil {
		b.OldestRecordedAt = *oldest
	}
	var unsent *int64
	var oldestUnsent *time.Time
	err = s.db.Pool.QueryRow(ctx, `SELECT (SELECT last_position FROM event_sequencer WHERE id = 1) - c.fanned_out, e.recorded_at
		FROM (SELECT min(fanned_out) AS fanned_out FROM webhook_endpoints WHERE NOT paused AND deleted_at IS NULL) AS c
		LEFT JOIN events AS e ON e.position = c.fanned_out + 1`).Scan(&unsent, &oldestUnsent)
	if err != nil {
		return Backlog{}, fmt.Errorf("read the webhook cursors: %w", err)
	}
	if unsent != nil && *unsent > 0 {
		b.Unsent = *unsent
		if oldestUnsent != nil {
			b.OldestUnsentAt = *oldestUnsent
		}
	}
	return b, nil
}
