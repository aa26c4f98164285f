package ledger

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Discrepancy is one way the books fail to prove themselves.
type Discrepancy struct {
	Check         string    // which check found it
	TransactionID uuid.UUID // set for transaction checks
	Account       string    // set for balance checks
	Expected      int64     // what the postings say
	Actual        int64     // what is stored
	Detail        string
}

func (d Discrepancy) String() string {
	if d.Account != "" {
		return fmt.Sprintf("%s: account %s: expected %d, stored %d: %s", d.Check, d.Account, d.Expected, d.Actual, d.Detail)
	}
	return fmt.Sprintf("%s: transaction %s: expected %d, found %d: %s", d.Check, d.TransactionID, d.Expected, d.Actual, d.Detail)
}

// Names of the checks Verify runs.
const (
	CheckTransactionSum   = "transaction_sums_to_zero"
	CheckPostingCount     = "posting_count"
	CheckStoredBalance    = "stored_balance_equals_postings"
	CheckHoldCaptureMatch = "captured_hold_has_transaction"
	CheckLotBook          = "open_lots_equal_balance_above_zero"
	CheckHeldPoints       = "held_points_equal_active_holds"
)

// maxDiscrepancies bounds each check's report: past it, the books are
// broken enough that more rows would not help the person reading them.
const maxDiscrepancies = 1000

// Verify re-derives the books from the postings in one consistent snapshot
// (a few seconds old on CockroachDB: StaleReadTx)
// and reports every discrepancy: a transaction whose postings do not sum
// to zero or whose postings are missing, a stored balance that differs
// from the sum of its account's postings, a captured hold without its
// transaction, an account whose open lots do not add up to its balance
// above zero, held points that differ from the account's active holds.
// An empty result means the books balance.
func (l *Ledger) Verify(ctx context.Context) ([]Discrepancy, error) {
	var found []Discrepancy
	// A snapshot a few seconds old balances as well as the present one,
	// and on CockroachDB these full scans then do not hold up writers.
	err := l.db.StaleReadTx(ctx, func(tx pgx.Tx) error {
		found = found[:0]
		checks := []struct {
			name  string
			query string
			scan  func(pgx.Rows) (Discrepancy, error)
		}{
			{CheckTransactionSum, `SELECT transaction_id, SUM(amount)::INT8 FROM postings
				GROUP BY transaction_id HAVING SUM(amount) <> 0 LIMIT $1`,
				func(r pgx.Rows) (Discrepancy, error) {
					d := Discrepancy{Check: CheckTransactionSum, Detail: "postings do not sum to zero"}
					return d, r.Scan(&d.TransactionID, &d.Actual)
				}},
			{CheckPostingCount, `SELECT t.id, t.posting_count, COUNT(p.seq)::INT8
				FROM transactions t LEFT JOIN postings p ON p.transaction_id = t.id
				GROUP BY t.id, t.posting_count HAVING COUNT(p.seq) <> t.posting_count LIMIT $1`,
				func(r pgx.Rows) (Discrepancy, error) {
					d := Discrepancy{Check: CheckPostingCount, Detail: "postings missing or extra"}
					return d, r.Scan(&d.TransactionID, &d.Expected, &d.Actual)
				}},
			{CheckStoredBalance, `WITH stored AS (
					SELECT account_code, SUM(balance)::INT8 AS balance FROM account_balances GROUP BY account_code
				), derived AS (
					SELECT account_code, SUM(amount)::INT8 AS balance FROM postings GROUP BY account_code
				)
				SELECT COALESCE(s.account_code, d.account_code), COALESCE(d.balance, 0), COALESCE(s.balance, 0)
				FROM stored s FULL OUTER JOIN derived d ON d.account_code = s.account_code
				WHERE COALESCE(d.balance, 0) <> COALESCE(s.balance, 0)
				LIMIT $1`,
				func(r pgx.Rows) (Discrepancy, error) {
					d := Discrepancy{Check: CheckStoredBalance, Detail: "stored balance (raw, credit-positive) differs from the sum of postings"}
					return d, r.Scan(&d.Account, &d.Expected, &d.Actual)
				}},
			{CheckHoldCaptureMatch, `SELECT h.id, h.captured_points, COALESCE(-SUM(p.amount), 0)::INT8
				FROM holds h LEFT JOIN postings p
					ON p.transaction_id = h.capture_transaction_id AND p.account_code = h.account_code
				WHERE h.status = 'captured'
				GROUP BY h.id, h.captured_points
				HAVING COALESCE(-SUM(p.amount), 0) <> h.captured_points LIMIT $1`,
				func(r pgx.Rows) (Discrepancy, error) {
					d := Discrepancy{Check: CheckHoldCaptureMatch, Detail: "captured hold (id in transaction_id) does not match its capture postings"}
					return d, r.Scan(&d.TransactionID, &d.Expected, &d.Actual)
				}},
			{CheckLotBook, `SELECT account_code, expected, actual FROM (
					SELECT b.account_code,
						GREATEST(CASE WHEN a.normal_side = 'debit' THEN -b.balance ELSE b.balance END, 0)::INT8 AS expected,
						COALESCE((SELECT SUM((e.value->>'open')::INT8) FROM jsonb_array_elements(COALESCE(b.lots, '[]'::JSONB)) AS e (value)), 0)::INT8 AS actual
					FROM account_balances b JOIN accounts a ON a.code = b.account_code
					WHERE a.tracks_lots AND b.shard = 0
				) AS lot_books WHERE expected <> actual LIMIT $1`,
				func(r pgx.Rows) (Discrepancy, error) {
					d := Discrepancy{Check: CheckLotBook, Detail: "open lots do not sum to the balance above zero"}
					return d, r.Scan(&d.Account, &d.Expected, &d.Actual)
				}},
			{CheckHeldPoints, `SELECT b.account_code, COALESCE(h.points, 0)::INT8, b.held_points
				FROM account_balances AS b LEFT JOIN (
					SELECT account_code, SUM(points) AS points, MIN(expires_at) AS first_expiry
					FROM holds WHERE status = 'active' GROUP BY account_code
				) AS h ON h.account_code = b.account_code
				WHERE b.shard = 0 AND (b.held_points <> COALESCE(h.points, 0)
					OR (h.first_expiry IS NOT NULL AND (b.holds_expire_from IS NULL OR b.holds_expire_from > h.first_expiry)))
				LIMIT $1`,
				func(r pgx.Rows) (Discrepancy, error) {
					d := Discrepancy{Check: CheckHeldPoints, Detail: "stored held points (or their expiry bound) do not match the active holds"}
					return d, r.Scan(&d.Account, &d.Expected, &d.Actual)
				}},
		}
		for _, c := range checks {
			rows, err := tx.Query(ctx, c.query, maxDiscrepancies)
			if err != nil {
				return fmt.Errorf("check %s: %w", c.name, err)
			}
			for rows.Next() {
				d, err := c.scan(rows)
				if err != nil {
					rows.Close()
					return fmt.Errorf("check %s: %w", c.name, err)
				}
				found = append(found, d)
			}
			if err := rows.Err(); err != nil {
				return fmt.Errorf("check %s: %w", c.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("verify ledger: %w", err)
	}
	return found, nil
}
