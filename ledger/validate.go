package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Limits on every input. Past a limit a request is refused with a
// FieldError and nothing is written.
const (
	MaxPostings         = 64
	MaxEffects          = 8
	MaxMetadataBytes    = 16 << 10
	MaxKeyLength        = 128
	MaxCallerIDLength   = 128
	MaxAccountCodeLen   = 128
	MaxShards           = 256
	MaxPostingPoints    = 1_000_000_000_000 // per posting; keeps every sum far from int64 overflow
	MaxHoldDuration     = 366 * 24 * time.Hour
	DefaultPageSize     = 50
	MaxPageSize         = 200
	accountCodeAlphabet = "A-Z a-z 0-9 : . _ -"
)

func validateAccount(a Account) error {
	if err := validateAccountCode("code", a.Code); err != nil {
		return err
	}
	if a.NormalSide != Debit && a.NormalSide != Credit {
		return invalid("normal_side", "must be %q or %q, got %q", Debit, Credit, a.NormalSide)
	}
	if a.Shards < 1 || a.Shards > MaxShards {
		return invalid("shards", "must be between 1 and %d, got %d", MaxShards, a.Shards)
	}
	if !a.AllowNegative && a.Shards != 1 {
		return invalid("shards", "an account that may not go negative has exactly 1 shard, got %d", a.Shards)
	}
	if a.TracksLots && a.Shards != 1 {
		return invalid("shards", "an account that tracks lots has exactly 1 shard, got %d", a.Shards)
	}
	return nil
}

func validateAccountCode(field, code string) error {
	if code == "" {
		return invalid(field, "is required")
	}
	if len(code) > MaxAccountCodeLen {
		return invalid(field, "is %d bytes, at most %d", len(code), MaxAccountCodeLen)
	}
	for i := 0; i < len(code); i++ {
		c := code[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == ':' || c == '.' || c == '_' || c == '-'
		if !ok {
			return invalid(field, "has %q at byte %d; allowed: %s", c, i, accountCodeAlphabet)
		}
	}
	return nil
}

// validateCaller checks the caller id and idempotency key every write carries.
func validateCaller(callerID, key string) error {
	if callerID == "" {
		return invalid("caller_id", "is required")
	}
	if len(callerID) > MaxCallerIDLength {
		return invalid("caller_id", "is %d bytes, at most %d", len(callerID), MaxCallerIDLength)
	}
	if key == "" {
		return invalid("idempotency_key", "is required")
	}
	if len(key) > MaxKeyLength {
		return invalid("idempotency_key", "is %d bytes, at most %d", len(key), MaxKeyLength)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return invalid("idempotency_key", "has a non-printable or non-ASCII byte at %d", i)
		}
	}
	return nil
}

func validatePost(req PostRequest) error {
	if err := validateFingerprint(req.Fingerprint); err != nil {
		return err
	}
	if err := validateCaller(req.CallerID, req.IdempotencyKey); err != nil {
		return err
	}
	if !kinds[req.Kind] {
		return invalid("kind", "unknown kind %q", req.Kind)
	}
	if err := validateTime("effective_at", req.EffectiveAt); err != nil {
		return err
	}
	if err := validatePostings(req.Postings); err != nil {
		return err
	}
	if len(req.Effects) > MaxEffects {
		return invalid("effects", "at most %d, got %d", MaxEffects, len(req.Effects))
	}
	return nil
}

// validatePostings enforces the double-entry rule: at least two postings,
// no zero amounts, and a sum of zero.
func validatePostings(postings []Posting) error {
	if len(postings) < 2 {
		return invalid("postings", "a transaction needs at least 2 postings, got %d", len(postings))
	}
	if len(postings) > MaxPostings {
		return invalid("postings", "at most %d postings, got %d", MaxPostings, len(postings))
	}
	var sum int64
	for i, p := range postings {
		if err := validateAccountCode(fmt.Sprintf("postings[%d].account", i), p.Account); err != nil {
			return err
		}
		if p.Amount == 0 {
			return invalid(fmt.Sprintf("postings[%d].amount", i), "must not be zero")
		}
		if p.Amount > MaxPostingPoints || p.Amount < -MaxPostingPoints {
			return invalid(fmt.Sprintf("postings[%d].amount", i), "magnitude at most %d, got %d", int64(MaxPostingPoints), p.Amount)
		}
		sum += p.Amount
	}
	if sum != 0 {
		return invalid("postings", "amounts must sum to zero, they sum to %d", sum)
	}
	return nil
}

func validateTime(field string, t time.Time) error {
	if t.IsZero() {
		return invalid(field, "is required")
	}
	if t.Year() < 2000 || t.Year() > 2200 {
		return invalid(field, "year %d is out of range 2000-2200", t.Year())
	}
	return nil
}

func validateHold(req HoldRequest, now time.Time) error {
	if err := validateFingerprint(req.Fingerprint); err != nil {
		return err
	}
	if err := validateCaller(req.CallerID, req.IdempotencyKey); err != nil {
		return err
	}
	if err := validateAccountCode("account", req.Account); err != nil {
		return err
	}
	if req.Points <= 0 || req.Points > MaxPostingPoints {
		return invalid("points", "must be between 1 and %d, got %d", int64(MaxPostingPoints), req.Points)
	}
	if len(req.Reference) > MaxKeyLength {
		return invalid("reference", "is %d bytes, at most %d", len(req.Reference), MaxKeyLength)
	}
	if !req.ExpiresAt.After(now) {
		return invalid("expires_at", "must be in the future, got %s", req.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if req.ExpiresAt.Sub(now) > MaxHoldDuration {
		return invalid("expires_at", "a hold lasts at most %s", MaxHoldDuration)
	}
	return nil
}

func validateCapture(req CaptureRequest) error {
	if err := validateFingerprint(req.Fingerprint); err != nil {
		return err
	}
	if err := validateCaller(req.CallerID, req.IdempotencyKey); err != nil {
		return err
	}
	if req.HoldID == uuid.Nil {
		return invalid("hold_id", "is required")
	}
	if req.Points <= 0 || req.Points > MaxPostingPoints {
		return invalid("points", "must be positive, got %d", req.Points)
	}
	if err := validateAccountCode("destination", req.Destination); err != nil {
		return err
	}
	if req.Kind != "" && !kinds[req.Kind] {
		return invalid("kind", "unknown kind %q", req.Kind)
	}
	if len(req.Effects) > MaxEffects {
		return invalid("effects", "at most %d, got %d", MaxEffects, len(req.Effects))
	}
	if !req.EffectiveAt.IsZero() {
		return validateTime("effective_at", req.EffectiveAt)
	}
	return nil
}

// canonicalMetadata checks that raw is a JSON object within the size limit
// and returns it in one canonical form (object keys sorted, no spaces), so
// that the first response and every replay carry the same bytes whatever
// form the database keeps JSON in. Empty means {}.
func canonicalMetadata(raw json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return json.RawMessage(`{}`), nil
	}
	if len(raw) > MaxMetadataBytes {
		return nil, invalid("metadata", "is %d bytes, at most %d", len(raw), MaxMetadataBytes)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("metadata", "is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, invalid("metadata", "has trailing data after the JSON object")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, invalid("metadata", "must be a JSON object")
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, invalid("metadata", "cannot be encoded: %v", err)
	}
	return out, nil
}

// checkMetadata is canonicalMetadata without the re-encoding: the same
// checks, the bytes as given.
func checkMetadata(raw json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(raw)
	switch {
	case len(trimmed) == 0:
		return json.RawMessage(`{}`), nil
	case len(raw) > MaxMetadataBytes:
		return nil, invalid("metadata", "is %d bytes, at most %d", len(raw), MaxMetadataBytes)
	case !json.Valid(trimmed):
		return nil, invalid("metadata", "is not valid JSON")
	case trimmed[0] != '{':
		return nil, invalid("metadata", "must be a JSON object")
	}
	return json.RawMessage(trimmed), nil
}
