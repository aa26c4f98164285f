package ledger

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Period is a single-row account's movements between two instants, as a
// statement of that period shows them, all read in one snapshot so that
// Opening plus the entries' amounts is Closing.
type Period struct {
	// Opening and Closing are the balances as of the period's from and to
	// (BalanceAt).
	Opening, Closing Balance
	// Entries are the postings recorded in (from, to], oldest first.
	Entries []StatementEntry
	// Now and Lots are the account's balance and open lots now (as
	// QueueHoldings reads them), for what is on hold and what expires next.
	Now  Balance
	Lots []Lot
}

// TooManyEntriesError is returned by Period when the period holds more
// than the entries asked for at most.
type TooManyEntriesError struct {
	Account string
	Max     int
}

func (e *TooManyEntriesError) Error() string {
	return fmt.Sprintf("%s has more than %d postings in the period", e.Account, e.Max)
}

// Period reads an account's period (from, to] in one snapshot: the opening
// and closing balances, the entries (at most maxEntries, else a
// *TooManyEntriesError) and the holdings now.
func (l *Ledger) Period(ctx context.Context, code string, from, to time.Time, maxEntries int) (Period, error) {
	if maxEntries < 1 {
		return Period{}, invalid("max_entries", "must be at least 1, got %d", maxEntries)
	}
	if !from.Before(to) {
		return Period{}, invalid("from", "must be before to")
	}
	account, err := l.Account(ctx, code)
	if err != nil {
		return Period{}, err
	}
	from, to = dbTime(from), dbTime(to)
	var out Period
	err = l.db.ReadTx(ctx, func(tx pgx.Tx) error {
		out = Period{} // the read may run again
		b := &pgx.Batch{}
		for _, at := range []time.Time{from, to} {
			b.Queue(balanceAtSQL, code, at)
		}
		b.Queue(statementSQL+` AND p.recorded_at > $2 AND p.recorded_at <= $3
			ORDER BY p.recorded_at, p.transaction_id, p.seq LIMIT $4`, code, from, to, maxEntries+1)
		holdings := l.QueueHoldings(b, account)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		for i, at := range []time.Time{from, to} {
			var raw, held int64
			if err := br.QueryRow().Scan(&raw, &held); err != nil {
				return fmt.Errorf("read balance of %s at %s: %w", code, at.Format(time.RFC3339), err)
			}
			posted := account.normal(raw)
			bal := Balance{Account: code, Posted: posted, Held: held, Available: posted - held, AsOf: at}
			if i == 0 {
				out.Opening = bal
			} else {
				out.Closing = bal
			}
		}
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("read period of %s: %w", code, err)
		}
		out.Entries, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (StatementEntry, error) {
			return scanEntry(r, account)
		})
		if err != nil {
			return fmt.Errorf("read period of %s: %w", code, err)
		}
		if len(out.Entries) > maxEntries {
			return &TooManyEntriesError{Account: code, Max: maxEntries}
		}
		if out.Now, out.Lots, err = holdings(br); err != nil {
			return err
		}
		return br.Close()
	})
	var tooMany *TooManyEntriesError
	if errors.As(err, &tooMany) {
		return Period{}, tooMany
	}
	if err != nil {
		return Period{}, fmt.Errorf("read period of %s: %w", code, err)
	}
	return out, nil
}

// scanEntry reads a row of Statement's query, and of Period's (the same
// columns).
func scanEntry(r pgx.CollectableRow, account Account) (StatementEntry, error) {
	var e StatementEntry
	var kind string
	var metadata, lots []byte
	var raw, held *int64
	if err := r.Scan(&e.TransactionID, &e.Seq, &e.Amount, &e.RecordedAt, &raw, &held, &kind, &e.EffectiveAt, &e.CallerID, &metadata, &lots); err != nil {
		return e, err
	}
	if raw != nil && held != nil {
		posted := account.normal(*raw)
		e.After = &Balance{Account: account.Code, Posted: posted, Held: *held, Available: posted - *held, AsOf: e.RecordedAt.UTC()}
	}
	e.Kind, e.Amount = Kind(kind), account.normal(e.Amount)
	e.RecordedAt, e.EffectiveAt = e.RecordedAt.UTC(), e.EffectiveAt.UTC()
	var err error
	if e.Metadata, err = canonicalMetadata(metadata); err != nil {
		return e, err
	}
	moves, err := decodeLotMoves(lots)
	for _, m := range moves {
		if m.Account == account.Code {
			e.Lots = append(e.Lots, m)
		}
	}
	return e, err
}
