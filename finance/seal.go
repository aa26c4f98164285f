package finance

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/txmeta"
)

// Seals make the journal tamper-evident. Each closed UTC day D (the
// transactions recorded in (D 00:00, D+1 00:00]) gets a seal, from the day
// of the first transaction on, including days with no transaction:
//
//	content = SHA-256 of the day's transactions in the canonical encoding
//	seal    = SHA-256(previous seal (32 zero bytes for the first day) ||
//	                  "YYYY-MM-DD" || content || transaction count as uint64 big-endian)
//
// The canonical encoding, transactions in id order (the UUID's 16 bytes
// compared as bytes), each followed by its postings in seq order:
//
//	transaction: 'T' id(16 bytes) str(kind) str(caller_id) str(idempotency_key)
//	             i64(effective_at, Unix microseconds) i64(recorded_at, Unix microseconds)
//	             reverses_id(16 bytes, zeros when none) str(metadata) u32(posting_count)
//	posting:     'P' u32(seq) str(account_code) i64(amount) opt(balance_after) opt(held_after)
//
// where str is a u32 byte length then the UTF-8 bytes, integers are
// big-endian, opt is 0x00 for NULL or 0x01 then i64, and metadata is the
// JSON object re-encoded with sorted keys and no spaces (numbers kept as
// written), so that PostgreSQL and CockroachDB, which print JSONB
// differently, seal the same content the same way.
//
// Any change to a sealed row (an amount, an account, a deleted or added
// posting or transaction, a rewritten time) changes that day's content, and
// VerifySeals names the first such day.
//
// Encodings, and erasure (issue 23). Closing a membership erases the
// member's personal data everywhere, including any text of a transaction's
// metadata that holds it (an admin's reason "goodwill for Wang Fang"). The
// journal is otherwise immutable, and a seal over the metadata's bytes
// would break on that one permitted rewrite. So each seal row says which
// canonical encoding it used (finance_seals.encoding):
//
//   - encoding 1, every seal written before issue 23: metadata as above,
//     its strings as they are;
//   - encoding 2, every seal written since: the same, except that every
//     string value of the metadata (keys stay as they are) is replaced,
//     before the JSON is re-encoded, by its commitment
//     "sha256:" + hex(SHA-256(the string's UTF-8 bytes)).
//
// Erasure replaces a whole string value s that holds personal data by
// txmeta.Erased(s) = "[erased sha256:" + hex(SHA-256(s)) + "]", and
// encoding 2 commits such a marker to the hash it carries: the erased and
// the original string have the same commitment, so a day sealed with
// encoding 2 verifies before and after any erasure, while any other change
// of a string (or of the hash in a marker) still breaks it. Numbers, keys,
// amounts, accounts and times are sealed as before.
//
// Why a commitment per string rather than excluding named "personal"
// fields: personal data reaches metadata only through free text (reasons,
// descriptions), never through a field of its own, so no field list could
// say where it is; and a per-string hash keeps every other string sealed.
// The hash of a short string can be guessed by someone who holds the
// journal and a candidate (it is a pseudonym, not an anonymisation); the
// erased text itself is not kept anywhere.
//
// Seals of encoding 1 stay as they were and verify with encoding 1: nothing
// is re-sealed, so a copy of an old seal kept outside still matches. The
// cost: a day sealed with encoding 1 whose metadata is later erased no
// longer verifies (VerifySeals says so, naming the erasure). Before issue
// 23 no field of the metadata was personal; a deployment that has such
// days can attest them under encoding 2 before any closure (not built).

// Seal is one sealed day.
type Seal struct {
	Day          time.Time
	Transactions int64
	ContentHash  []byte
	Seal         []byte
	SealedAt     time.Time
	// Encoding is the canonical encoding the seal used (1 or 2, above).
	Encoding int
}

// The canonical encodings; new seals use the last.
const (
	encodingPlain     = 1
	encodingCommitted = 2
	currentEncoding   = encodingCommitted
)

// sealOf chains a day's content to the previous seal.
func sealOf(previous []byte, day time.Time, content []byte, count int64) []byte {
	h := sha256.New()
	if previous == nil {
		previous = make([]byte, sha256.Size)
	}
	h.Write(previous)
	h.Write([]byte(fmtDay(day)))
	h.Write(content)
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(count)))
	return h.Sum(nil)
}

// dayContent hashes the day's transactions in the canonical encoding.
func dayContent(ctx context.Context, tx pgx.Tx, day time.Time, encoding int) (content []byte, count int64, err error) {
	if encoding != encodingPlain && encoding != encodingCommitted {
		return nil, 0, fmt.Errorf("seal of %s: unknown encoding %d", fmtDay(day), encoding)
	}
	rows, err := tx.Query(ctx, `
		SELECT t.id, t.kind, t.caller_id, t.idempotency_key, t.effective_at, t.recorded_at, t.reverses_id,
			t.metadata::TEXT, t.posting_count, p.seq, p.account_code, p.amount, p.balance_after, p.held_after
		FROM transactions t LEFT JOIN postings p ON p.transaction_id = t.id
		WHERE t.recorded_at > $1 AND t.recorded_at <= $2
		ORDER BY t.id, p.seq`, day, day.AddDate(0, 0, 1))
	if err != nil {
		return nil, 0, fmt.Errorf("read transactions of %s: %w", fmtDay(day), err)
	}
	h := sha256.New()
	var (
		id, last                  uuid.UUID
		reverses                  *uuid.UUID
		kind, caller, key, meta   string
		effective, recorded       time.Time
		postingCount              int32
		seq                       *int32
		account                   *string
		amount, balance, heldAfer *int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &kind, &caller, &key, &effective, &recorded, &reverses, &meta, &postingCount,
		&seq, &account, &amount, &balance, &heldAfer}, func() error {
		if count == 0 || id != last {
			count++
			last = id
			canonical, err := canonicalJSON(meta, encoding == encodingCommitted)
			if err != nil {
				return fmt.Errorf("metadata of %s: %w", id, err)
			}
			h.Write([]byte{'T'})
			h.Write(id[:])
			writeStr(h, kind)
			writeStr(h, caller)
			writeStr(h, key)
			writeI64(h, effective.UnixMicro())
			writeI64(h, recorded.UnixMicro())
			var rev uuid.UUID
			if reverses != nil {
				rev = *reverses
			}
			h.Write(rev[:])
			writeStr(h, canonical)
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(postingCount)))
		}
		if seq == nil {
			return nil // a transaction without postings: its count says so
		}
		h.Write([]byte{'P'})
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(*seq)))
		writeStr(h, *account)
		writeI64(h, *amount)
		writeOpt(h, balance)
		writeOpt(h, heldAfer)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("hash transactions of %s: %w", fmtDay(day), err)
	}
	return h.Sum(nil), count, nil
}

func writeStr(h hash.Hash, s string) {
	h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
	h.Write([]byte(s))
}

func writeI64(h hash.Hash, v int64) { h.Write(binary.BigEndian.AppendUint64(nil, uint64(v))) }

func writeOpt(h hash.Hash, v *int64) {
	if v == nil {
		h.Write([]byte{0})
		return
	}
	h.Write([]byte{1})
	writeI64(h, *v)
}

// canonicalJSON re-encodes a JSON text with sorted keys and no spaces; with
// committed, every string value is replaced by its commitment (encoding 2).
func canonicalJSON(text string, committed bool) (string, error) {
	d := json.NewDecoder(bytes.NewReader([]byte(text)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", err
	}
	if committed {
		v = commitStrings(v)
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// commitStrings replaces every string value in v by "sha256:" and its
// hash; an erased string (txmeta.Erased) by the hash it carries, which is
// the hash of the string it replaced.
func commitStrings(v any) any {
	switch x := v.(type) {
	case string:
		if h, ok := txmeta.ErasedHash(x); ok {
			return "sha256:" + h
		}
		sum := sha256.Sum256([]byte(x))
		return "sha256:" + hex.EncodeToString(sum[:])
	case map[string]any:
		for k, e := range x {
			x[k] = commitStrings(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = commitStrings(e)
		}
		return x
	}
	return v // numbers (json.Number), booleans, null
}

// lastSeal is the newest seal; nil when none.
func lastSeal(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (*Seal, error) {
	var s Seal
	var day string
	err := q.QueryRow(ctx, `SELECT day::TEXT, transactions, content_hash, seal, sealed_at, encoding FROM finance_seals ORDER BY day DESC LIMIT 1`).
		Scan(&day, &s.Transactions, &s.ContentHash, &s.Seal, &s.SealedAt, &s.Encoding)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the last seal: %w", err)
	}
	if s.Day, err = time.Parse(time.DateOnly, day); err != nil {
		return nil, fmt.Errorf("seal day %q: %w", day, err)
	}
	return &s, nil
}

// SealDays seals every closed day not sealed yet, oldest first, one day per
// transaction. It reads each day in a snapshot and writes only
// finance_seals, so writers never wait for it; like RollUp it resumes after
// the last day it sealed and is harmless to run again or twice at once.
func (r *Reports) SealDays(ctx context.Context) (JobProgress, error) {
	var p JobProgress
	closed := closedUntil(r.clock())
	for {
		prev, err := lastSeal(ctx, r.db.Pool)
		if err != nil {
			return p, err
		}
		var day time.Time
		var previous []byte
		if prev != nil {
			day, previous = prev.Day.AddDate(0, 0, 1), prev.Seal
		} else {
			var ok bool
			if day, ok, err = firstDay(ctx, r.db.Pool); err != nil || !ok {
				return p, err
			}
		}
		p.Until = day
		if day.AddDate(0, 0, 1).After(closed) {
			return p, nil
		}
		var content []byte
		var count int64
		_, err = r.db.SnapshotTx(ctx, day.AddDate(0, 0, 1), r.clock(), func(tx pgx.Tx) error {
			content, count, err = dayContent(ctx, tx, day, currentEncoding)
			return err
		})
		if err != nil {
			return p, fmt.Errorf("seal %s: %w", fmtDay(day), err)
		}
		seal := sealOf(previous, day, content, count)
		err = r.db.WriteTx(ctx, func(tx pgx.Tx) error {
			now, err := lastSeal(ctx, tx)
			if err != nil {
				return err
			}
			if (now == nil) != (prev == nil) || now != nil && !now.Day.Equal(prev.Day) {
				return errMoved
			}
			_, err = tx.Exec(ctx, `INSERT INTO finance_seals (day, transactions, content_hash, seal, sealed_at, encoding)
				VALUES ($1::DATE, $2, $3, $4, $5, $6)`, fmtDay(day), count, content, seal, r.clock(), currentEncoding)
			return err
		})
		if errors.Is(err, errMoved) || isUniqueViolation(err) {
			continue // another run sealed this day: go on from where it is
		}
		if err != nil {
			return p, fmt.Errorf("seal %s: %w", fmtDay(day), err)
		}
		p.Days++
		p.Until = day.AddDate(0, 0, 1)
	}
}

// Seals lists the seals of days in [from, to) (zero: unbounded), oldest
// first, at most limit.
func (r *Reports) Seals(ctx context.Context, from, to time.Time, limit int) ([]Seal, error) {
	if limit < 1 || limit > MaxPageSize {
		return nil, invalid("page_size", "must be between 1 and %d, got %d", MaxPageSize, limit)
	}
	lo, hi := "0001-01-01", "9999-12-31"
	if !from.IsZero() {
		lo = fmtDay(floorDay(from))
	}
	if !to.IsZero() {
		hi = fmtDay(floorDay(to))
	}
	rows, err := r.db.Pool.Query(ctx, `SELECT day::TEXT, transactions, content_hash, seal, sealed_at, encoding FROM finance_seals
		WHERE day >= $1::DATE AND day < $2::DATE ORDER BY day LIMIT $3`, lo, hi, limit)
	if err != nil {
		return nil, fmt.Errorf("list seals: %w", err)
	}
	return collectSeals(rows)
}

func collectSeals(rows pgx.Rows) ([]Seal, error) {
	var out []Seal
	var s Seal
	var day string
	_, err := pgx.ForEachRow(rows, []any{&day, &s.Transactions, &s.ContentHash, &s.Seal, &s.SealedAt, &s.Encoding}, func() error {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return err
		}
		s.Day, s.SealedAt = d, s.SealedAt.UTC()
		out = append(out, s)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read seals: %w", err)
	}
	return out, nil
}

// SealCheck is the result of VerifySeals.
type SealCheck struct {
	Checked int // seals recomputed
	// FirstBad is the first day whose seal no longer matches (zero when
	// every seal matches), and Problem says how.
	FirstBad time.Time
	Problem  string
}

// OK reports whether every seal matched.
func (c SealCheck) OK() bool { return c.FirstBad.IsZero() }

// VerifySeals recomputes every seal, oldest first, in one snapshot, and
// stops at the first day whose content or chain no longer matches.
func (r *Reports) VerifySeals(ctx context.Context) (SealCheck, error) {
	var c SealCheck
	now := r.clock()
	_, err := r.db.SnapshotTx(ctx, now, now, func(tx pgx.Tx) error {
		c = SealCheck{}
		rows, err := tx.Query(ctx, `SELECT day::TEXT, transactions, content_hash, seal, sealed_at, encoding FROM finance_seals ORDER BY day`)
		if err != nil {
			return fmt.Errorf("read seals: %w", err)
		}
		seals, err := collectSeals(rows)
		if err != nil {
			return err
		}
		var previous []byte
		for i, s := range seals {
			content, count, err := dayContent(ctx, tx, s.Day, s.Encoding)
			if err != nil {
				return err
			}
			c.Checked++
			switch {
			case i > 0 && !s.Day.Equal(seals[i-1].Day.AddDate(0, 0, 1)):
				c.Problem = fmt.Sprintf("the chain skips from %s to %s", fmtDay(seals[i-1].Day), fmtDay(s.Day))
			case count != s.Transactions:
				c.Problem = fmt.Sprintf("%d transactions now, %d when sealed", count, s.Transactions)
			case !bytes.Equal(content, s.ContentHash) && s.Encoding == encodingPlain:
				c.Problem = "the day's transactions or postings changed since it was sealed (sealed with encoding 1, which an erasure of personal data from metadata also breaks)"
			case !bytes.Equal(content, s.ContentHash):
				c.Problem = "the day's transactions or postings changed since it was sealed"
			case !bytes.Equal(sealOf(previous, s.Day, content, count), s.Seal):
				c.Problem = "the seal does not chain from the previous day's"
			}
			if c.Problem != "" {
				c.FirstBad = s.Day
				return nil
			}
			previous = s.Seal
		}
		return nil
	})
	if err != nil {
		return SealCheck{}, fmt.Errorf("verify seals: %w", err)
	}
	return c, nil
}
