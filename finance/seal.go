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
	"slices"
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
// is re-sealed, so a copy of an old seal kept outside still matches. An
// erasure would break such a day, so the erasure first attests it
// (AttestBeforeErasure, in the erasure's own transaction): it checks that
// the day still matches its encoding-1 seal, then records, in
// finance_seal_attestations, the day's content under encoding 2 and the
// seal it vouches for. VerifySeals checks an attested day that no longer
// matches its encoding-1 content against the attestation instead, and
// chains the seal from the content the seal itself records (which the
// attestation vouched for). A day that already did not match its seal is
// not attested: VerifySeals goes on naming it.

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
// first, at most limit: a page of up to MaxPageSize and one more, which
// tells a caller that another page follows.
func (r *Reports) Seals(ctx context.Context, from, to time.Time, limit int) ([]Seal, error) {
	if limit < 1 || limit > MaxPageSize+1 {
		return nil, invalid("page_size", "must be 1 to %d, got %d", MaxPageSize, limit)
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
	// Attested counts the days sealed with encoding 1 that verified through
	// their attestation (their metadata was erased since they were sealed).
	Attested int
	// FirstBad is the first day whose seal no longer matches (zero when
	// every seal matches), and Problem says how.
	FirstBad time.Time
	Problem  string
}

// OK reports whether every seal matched.
func (c SealCheck) OK() bool { return c.FirstBad.IsZero() }

// attestation is a finance_seal_attestations row.
type attestation struct {
	seal         []byte
	encoding     int
	transactions int64
	content      []byte
	attestedAt   time.Time
}

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
		attestations, err := readAttestations(ctx, tx)
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
			a, attested := attestations[fmtDay(s.Day)]
			if s.Encoding == encodingPlain && attested && (count != s.Transactions || !bytes.Equal(content, s.ContentHash)) {
				c.Attested++
				if c.Problem, err = checkAttestation(ctx, tx, s, a); err != nil {
					return err
				}
				// The attestation vouched for the content the seal records.
				content, count = s.ContentHash, s.Transactions
			}
			switch {
			case c.Problem != "":
			case i > 0 && !s.Day.Equal(seals[i-1].Day.AddDate(0, 0, 1)):
				c.Problem = fmt.Sprintf("the chain skips from %s to %s", fmtDay(seals[i-1].Day), fmtDay(s.Day))
			case count != s.Transactions:
				c.Problem = fmt.Sprintf("%d transactions now, %d when sealed", count, s.Transactions)
			case !bytes.Equal(content, s.ContentHash) && s.Encoding == encodingPlain:
				c.Problem = "the day's transactions or postings changed since it was sealed (sealed with encoding 1, which an erasure of personal data from metadata also breaks when the day was not attested first)"
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

// checkAttestation is what is wrong with an attested day ("" when it
// matches its attestation).
func checkAttestation(ctx context.Context, tx pgx.Tx, s Seal, a attestation) (string, error) {
	if !bytes.Equal(a.seal, s.Seal) || a.transactions != s.Transactions {
		return "the day's attestation vouches for another seal", nil
	}
	content, count, err := dayContent(ctx, tx, s.Day, a.encoding)
	if err != nil {
		return "", err
	}
	if count != a.transactions || !bytes.Equal(content, a.content) {
		return fmt.Sprintf("the day's transactions or postings changed since it was attested under encoding %d on %s",
			a.encoding, a.attestedAt.UTC().Format(time.RFC3339)), nil
	}
	return "", nil
}

func readAttestations(ctx context.Context, tx pgx.Tx) (map[string]attestation, error) {
	rows, err := tx.Query(ctx, `SELECT day::TEXT, seal, encoding, transactions, content_hash, attested_at FROM finance_seal_attestations`)
	if err != nil {
		return nil, fmt.Errorf("read seal attestations: %w", err)
	}
	out := map[string]attestation{}
	var day string
	var a attestation
	_, err = pgx.ForEachRow(rows, []any{&day, &a.seal, &a.encoding, &a.transactions, &a.content, &a.attestedAt}, func() error {
		out[day] = a
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read seal attestations: %w", err)
	}
	return out, nil
}

// AttestBeforeErasure attests, under the current encoding, each day sealed
// with encoding 1 that holds one of the transactions an erasure is about to
// rewrite, and that still matches its seal; a day attested
// already, sealed with encoding 2 or not sealed yet needs nothing. It runs
// in the erasure's transaction, before the rewrite, so the attestation
// commits with the erasure or not at all. It returns the days it attested.
func AttestBeforeErasure(ctx context.Context, tx pgx.Tx, transactionIDs []uuid.UUID, now time.Time) ([]time.Time, error) {
	if len(transactionIDs) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT recorded_at FROM transactions WHERE id = ANY($1::UUID[])`, transactionIDs)
	if err != nil {
		return nil, fmt.Errorf("read the days of the erased transactions: %w", err)
	}
	recorded, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, fmt.Errorf("read the days of the erased transactions: %w", err)
	}
	days := make([]time.Time, 0, len(recorded))
	for _, t := range recorded {
		days = append(days, dayOf(t))
	}
	slices.SortFunc(days, time.Time.Compare)
	rows, err = tx.Query(ctx, `SELECT day::TEXT, transactions, content_hash, seal, sealed_at, encoding FROM finance_seals s
		WHERE day = ANY($1::DATE[]) AND encoding = $2
		AND NOT EXISTS (SELECT 1 FROM finance_seal_attestations a WHERE a.day = s.day)
		ORDER BY day`, slices.CompactFunc(days, time.Time.Equal), encodingPlain)
	if err != nil {
		return nil, fmt.Errorf("read the seals of the erased transactions: %w", err)
	}
	seals, err := collectSeals(rows)
	if err != nil {
		return nil, err
	}
	var attested []time.Time
	for _, s := range seals {
		old, count, err := dayContent(ctx, tx, s.Day, encodingPlain)
		if err != nil {
			return nil, err
		}
		if count != s.Transactions || !bytes.Equal(old, s.ContentHash) {
			continue // already broken: an attestation would vouch for a change
		}
		content, count, err := dayContent(ctx, tx, s.Day, currentEncoding)
		if err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO finance_seal_attestations (day, seal, encoding, transactions, content_hash, attested_at)
			VALUES ($1::DATE, $2, $3, $4, $5, $6) ON CONFLICT (day) DO NOTHING`,
			fmtDay(s.Day), s.Seal, currentEncoding, count, content, now.UTC()); err != nil {
			return nil, fmt.Errorf("attest the seal of %s: %w", fmtDay(s.Day), err)
		}
		attested = append(attested, s.Day)
	}
	return attested, nil
}
