// Package apikeys issues, checks and revokes the API keys callers
// authenticate with. A key has a role that decides which RPCs it may call;
// its secret is random, shown once at creation and stored only as a hash.
package apikeys

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/internal/trust"
	"github.com/loyalty-ledger/loyalty/ledger"
)

// Role is what a key may do.
type Role string

const (
	RoleBookingChannel Role = "booking_channel"
	RolePartner        Role = "partner"
	RoleFinance        Role = "finance"
	RoleAdmin          Role = "admin"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RoleBookingChannel, RolePartner, RoleFinance, RoleAdmin:
		return true
	}
	return false
}

// secretPrefix marks a string as a loyalty API key secret, so a leaked one
// is recognisable in logs and by secret scanners.
const secretPrefix = "lk_"

// Limits.
const (
	MaxNameLength   = 200
	MaxPartnerID    = 64
	MaxSecretLength = 100
	// MaxLifetimeYears bounds a key's expiry.
	MaxLifetimeYears = 5
)

var (
	// ErrUnauthenticated: no such key, or it is revoked or expired.
	ErrUnauthenticated = errors.New("unknown, revoked or expired API key")
	// ErrNotFound: no key with that id.
	ErrNotFound = errors.New("API key not found")
)

// Key is an API key without its secret.
type Key struct {
	ID        string    `json:"key_id"`
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	PartnerID string    `json:"partner_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// CreateRequest describes a new key.
type CreateRequest struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	PartnerID string    `json:"partner_id,omitempty"` // required for, and only for, partner keys
	ExpiresAt time.Time `json:"expires_at,omitzero"`  // zero: never
}

// Store keeps keys.
type Store struct {
	db      *database.DB
	ledger  *ledger.Ledger
	now     func() time.Time
	trusted *trust.Cache[[sha256.Size]byte, Key]
}

// New returns a store; clock nil means time.Now.
func New(l *ledger.Ledger, clock func() time.Time) *Store {
	if clock == nil {
		clock = time.Now
	}
	return &Store{db: l.DB(), ledger: l, now: clock, trusted: trust.New[[sha256.Size]byte, Key](TrustFor, maxTrusted)}
}

// Create issues a key and returns it with its secret. The secret is not
// stored: a retry with the same idempotency key returns the key with an
// empty secret.
func (s *Store) Create(ctx context.Context, callerID, idempotencyKey string, req CreateRequest) (Key, string, error) {
	req.Name = strings.TrimSpace(req.Name)
	if err := validateCreate(req, s.now()); err != nil {
		return Key{}, "", err
	}
	// The secret of the last attempt that ran; it is the committed one only
	// if the key returned is the key that attempt created (not a replay).
	var created Key
	var secret string
	k, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "create_api_key", req,
		func(ctx context.Context, tx pgx.Tx) (Key, error) {
			var err error
			created, secret, err = s.insert(ctx, tx, callerID, req)
			return created, err
		})
	if err != nil {
		return Key{}, "", fmt.Errorf("create API key: %w", err)
	}
	if k.ID != created.ID {
		secret = ""
	}
	return k, secret, nil
}

func (s *Store) insert(ctx context.Context, tx pgx.Tx, callerID string, req CreateRequest) (Key, string, error) {
	k, secret := s.newKey(callerID, req)
	return k, secret, insertKey(ctx, tx, k, secret)
}

// newKey draws a key's id and secret.
func (s *Store) newKey(callerID string, req CreateRequest) (Key, string) {
	now := s.now().UTC().Truncate(time.Microsecond)
	k := Key{ID: "key_" + randomHex(8), Name: req.Name, Role: req.Role, PartnerID: req.PartnerID,
		CreatedAt: now, CreatedBy: callerID, ExpiresAt: req.ExpiresAt.UTC().Truncate(time.Microsecond)}
	return k, secretPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(32))
}

func insertKey(ctx context.Context, tx pgx.Tx, k Key, secret string) error {
	var partner *string
	if k.PartnerID != "" {
		partner = &k.PartnerID
	}
	var expires *time.Time
	if !k.ExpiresAt.IsZero() {
		expires = &k.ExpiresAt
	}
	secretHash := hashSecret(secret)
	_, err := tx.Exec(ctx, `INSERT INTO api_keys (key_id, secret_hash, name, role, partner_id, created_at, created_by, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, secretHash[:], k.Name, string(k.Role), partner, k.CreatedAt, k.CreatedBy, expires)
	if err != nil {
		return fmt.Errorf("insert API key: %w", err)
	}
	return nil
}

// Authenticate returns the active key whose secret this is.
//
// A key read from the database is trusted, without being read again, for
// TrustFor; Revoke waits longer than that before it answers, so a revoked
// key stops on every server by the time its revocation is acknowledged.
// Expiry is checked at every call. Unknown secrets are never remembered:
// a new key works at once.
func (s *Store) Authenticate(ctx context.Context, secret string) (Key, error) {
	if !strings.HasPrefix(secret, secretPrefix) || len(secret) > MaxSecretLength {
		return Key{}, ErrUnauthenticated
	}
	hash := hashSecret(secret)
	k, ok := s.trusted.Get(hash, time.Now())
	if !ok {
		generation := s.trusted.Begin()
		// Stamped before the read is sent: a read that cannot see a
		// revocation began before the revocation committed.
		readAt := time.Now()
		var err error
		k, err = scanKey(s.db.Pool.QueryRow(ctx, keySelect+` WHERE secret_hash = $1`, hash[:]))
		if errors.Is(err, ErrNotFound) {
			return Key{}, ErrUnauthenticated
		}
		if err != nil {
			return Key{}, fmt.Errorf("authenticate: %w", err)
		}
		if k.RevokedAt.IsZero() {
			s.trusted.Put(hash, k, readAt, generation)
		}
	}
	if !k.RevokedAt.IsZero() || (!k.ExpiresAt.IsZero() && !s.now().Before(k.ExpiresAt)) {
		return Key{}, ErrUnauthenticated
	}
	return k, nil
}

// Revoke stops a key from working: once it has answered, no server accepts
// the key. It waits out TrustFor after the revocation commits (a replay
// waits too), so it takes a little over a second.
func (s *Store) Revoke(ctx context.Context, callerID, idempotencyKey, keyID string) (Key, error) {
	if keyID == "" || len(keyID) > 64 {
		return Key{}, &ledger.FieldError{Field: "key_id", Problem: "is required (at most 64 bytes)"}
	}
	out, err := ledger.KeyedWriteOf(ctx, s.ledger, callerID, idempotencyKey, "revoke_api_key", keyID,
		func(ctx context.Context, tx pgx.Tx) (Key, error) {
			k, err := scanKey(tx.QueryRow(ctx, keySelect+` WHERE key_id = $1 FOR UPDATE`, keyID))
			if err != nil {
				return Key{}, err
			}
			if k.RevokedAt.IsZero() {
				k.RevokedAt = s.now().UTC().Truncate(time.Microsecond)
				if _, err := tx.Exec(ctx, `UPDATE api_keys SET revoked_at = $2, revoked_by = $3 WHERE key_id = $1`,
					keyID, k.RevokedAt, callerID); err != nil {
					return Key{}, fmt.Errorf("revoke: %w", err)
				}
			}
			return k, nil
		})
	if err != nil {
		return Key{}, fmt.Errorf("revoke API key %s: %w", keyID, err)
	}
	wait := time.NewTimer(revocationWait)
	defer wait.Stop()
	select {
	case <-wait.C:
	case <-ctx.Done():
		// Committed, but servers may trust the key a moment longer; a
		// retry with the same idempotency key waits again.
		return Key{}, fmt.Errorf("revoke API key %s: revoked, but interrupted while servers stop trusting it: %w", keyID, ctx.Err())
	}
	return out, nil
}

// EnsureAdmin creates a first admin key when no active admin key exists,
// and returns its secret (empty when one existed). It is how a new
// installation gets its first credentials.
//
// The key and its secret are drawn once, before the transaction: when a
// commit's answer is lost and the retry finds the key this call inserted,
// it returns that key's secret rather than taking it for someone else's
// and losing the installation's only credentials.
func (s *Store) EnsureAdmin(ctx context.Context) (Key, string, error) {
	candidate, candidateSecret := s.newKey("bootstrap", CreateRequest{Name: "first admin (created at start-up)", Role: RoleAdmin})
	var created bool
	err := s.db.WriteTx(ctx, func(tx pgx.Tx) error {
		var ours, active bool
		if err := tx.QueryRow(ctx, `SELECT COALESCE(bool_or(key_id = $2), false), count(*) > 0 FROM api_keys
			WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1)`,
			s.now(), candidate.ID).Scan(&ours, &active); err != nil {
			return err
		}
		created = ours || !active
		if ours || active {
			return nil
		}
		return insertKey(ctx, tx, candidate, candidateSecret)
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("ensure an admin key: %w", err)
	}
	if !created {
		return Key{}, "", nil
	}
	return candidate, candidateSecret, nil
}

// MaxListPage bounds a page of List.
const MaxListPage = 500

// List returns up to limit keys after the key id after, in key id order:
// those that work, or all of them (includeRevoked: revoked and expired
// too).
func (s *Store) List(ctx context.Context, after string, limit int, includeRevoked bool) ([]Key, error) {
	if limit < 1 || limit > MaxListPage {
		return nil, &ledger.FieldError{Field: "page_size", Problem: fmt.Sprintf("must be 1 to %d", MaxListPage)}
	}
	rows, err := s.db.Pool.Query(ctx, keySelect+` WHERE key_id > $1
		AND ($2 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)))
		ORDER BY key_id LIMIT $4`, after, includeRevoked, s.now(), limit)
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list API keys: %w", err)
	}
	return keys, nil
}

// Find returns the key secret belongs to, revoked or expired too;
// ErrNotFound when none does.
func (s *Store) Find(ctx context.Context, secret string) (Key, error) {
	hash := hashSecret(secret)
	k, err := scanKey(s.db.Pool.QueryRow(ctx, keySelect+` WHERE secret_hash = $1`, hash[:]))
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Key{}, fmt.Errorf("find API key: %w", err)
	}
	return k, err
}

const keySelect = `SELECT key_id, name, role, COALESCE(partner_id, ''), created_at, created_by, expires_at, revoked_at FROM api_keys`

func scanKey(row pgx.Row) (Key, error) {
	var k Key
	var role string
	var expires, revoked *time.Time
	err := row.Scan(&k.ID, &k.Name, &role, &k.PartnerID, &k.CreatedAt, &k.CreatedBy, &expires, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Key{}, ErrNotFound
	}
	if err != nil {
		return Key{}, err
	}
	k.Role, k.CreatedAt = Role(role), k.CreatedAt.UTC()
	if expires != nil {
		k.ExpiresAt = expires.UTC()
	}
	if revoked != nil {
		k.RevokedAt = revoked.UTC()
	}
	return k, nil
}

func validateCreate(req CreateRequest, now time.Time) error {
	if req.Name == "" || utf8.RuneCountInString(req.Name) > MaxNameLength {
		return &ledger.FieldError{Field: "name", Problem: fmt.Sprintf("1 to %d characters", MaxNameLength)}
	}
	if !req.Role.Valid() {
		return &ledger.FieldError{Field: "role", Problem: "must be booking_channel, partner, finance or admin"}
	}
	if (req.Role == RolePartner) != (req.PartnerID != "") {
		return &ledger.FieldError{Field: "partner_id", Problem: "is required for a partner key and only for one"}
	}
	if len(req.PartnerID) > MaxPartnerID {
		return &ledger.FieldError{Field: "partner_id", Problem: fmt.Sprintf("at most %d bytes", MaxPartnerID)}
	}
	if !req.ExpiresAt.IsZero() && !req.ExpiresAt.After(now) {
		return &ledger.FieldError{Field: "expires_at", Problem: "must be in the future"}
	}
	if latest := now.AddDate(MaxLifetimeYears, 0, 0); req.ExpiresAt.After(latest) {
		return &ledger.FieldError{Field: "expires_at", Problem: fmt.Sprintf("is after %s: a key expires within %d years (omit it for a key that never expires)",
			latest.UTC().Format(time.RFC3339), MaxLifetimeYears)}
	}
	return nil
}

// hashSecret: the secrets are 256 random bits, so a plain SHA-256 is
// enough; a slow password hash would only slow every request.
func hashSecret(secret string) [sha256.Size]byte {
	return sha256.Sum256([]byte(secret))
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("apikeys: crypto/rand failed: %v", err))
	}
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }
