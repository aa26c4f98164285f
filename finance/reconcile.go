package finance

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// Names of the checks Reconcile adds to ledger.Verify's.
const (
	CheckTrialBalanceZero       = "trial_balance_is_zero"
	CheckRollForwardIdentity    = "roll_forward_identity"
	CheckLiabilityEqualsBalance = "liability_equals_stored_member_balances"
	CheckRollupEqualsPostings   = "rollup_equals_postings"
	CheckSealChain              = "seal_chain"
)

// Discrepancy is one way the books fail to prove themselves, with the ids
// to look at: a transaction, an account, a day.
type Discrepancy struct {
	Check         string
	TransactionID uuid.UUID // uuid.Nil when not about one transaction
	Account       string
	Day           time.Time // zero when not about one day
	Expected      int64
	Actual        int64
	Detail        string
}

func (d Discrepancy) String() string {
	s := d.Check + ":"
	if d.TransactionID != uuid.Nil {
		s += " transaction " + d.TransactionID.String()
	}
	if d.Account != "" {
		s += " account " + d.Account
	}
	if !d.Day.IsZero() {
		s += " day " + fmtDay(d.Day)
	}
	return fmt.Sprintf("%s: expected %d, found %d: %s", s, d.Expected, d.Actual, d.Detail)
}

// Reconciliation is what Reconcile found; no discrepancy means the books
// prove themselves.
type Reconciliation struct {
	// AsOf is when the snapshot of the checks was read, on the reports'
	// clock: the checks cover every transaction committed by then.
	AsOf          time.Time
	Discrepancies []Discrepancy
	SealsChecked  int
}

// OK reports whether nothing is off.
func (r Reconciliation) OK() bool { return len(r.Discrepancies) == 0 }

// Reconcile re-derives the books and reports every discrepancy:
// ledger.Verify's checks (every transaction sums to zero and has all its
// postings, every stored balance equals its postings, captured holds match),
// then, in one snapshot, the trial balance is zero, the roll-forward over
// the whole ledger balances and its closing equals the members' stored
// balances, the rollup of every closed day equals its postings; and last,
// the seal chain.
func (r *Reports) Reconcile(ctx context.Context) (Reconciliation, error) {
	asOf := r.clock()
	rec := Reconciliation{AsOf: asOf}
	found, err := r.ledger.Verify(ctx)
	if err != nil {
		return rec, fmt.Errorf("reconcile: %w", err)
	}
	for _, d := range found {
		rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: d.Check, TransactionID: d.TransactionID,
			Account: d.Account, Expected: d.Expected, Actual: d.Actual, Detail: d.Detail})
	}
	// The checks run over every transaction the snapshot holds: a bound at
	// asOf would leave out writes recorded after it but committed before
	// the snapshot was taken, which the stored balances include.
	upTo := endOfRecords
	verified := len(rec.Discrepancies)
	readAt, err := r.db.SnapshotTx(ctx, asOf, asOf, func(tx pgx.Tx) error {
		rec.Discrepancies = rec.Discrepancies[:verified] // a retried read starts again
		all, err := periodTotals(ctx, tx, accountGrain, time.Time{}, upTo)
		if err != nil {
			return err
		}
		tb := TrialBalance{AsOf: asOf}
		if err := trialLines(ctx, tx, all, &tb); err != nil {
			return err
		}
		if tb.Total != 0 {
			rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckTrialBalanceZero, Actual: tb.Total,
				Detail: fmt.Sprintf("the trial balance report (rollups and postings): debits %d, credits %d", tb.TotalDebit, tb.TotalCredit)})
		}
		// The same total straight from every posting, so that a posting
		// changed after its day was rolled up shows here too.
		var raw int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(p.amount), 0)::INT8 FROM postings p
			JOIN transactions t ON t.id = p.transaction_id WHERE t.recorded_at <= $1`, upTo).Scan(&raw); err != nil {
			return fmt.Errorf("sum every posting: %w", err)
		}
		if raw != 0 {
			rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckTrialBalanceZero, Actual: raw,
				Detail: "the sum of every posting: look for transactions that do not sum to zero"})
		}
		rf, err := rollForward(ctx, tx, time.Time{}, upTo, GroupBySource)
		if err != nil {
			return err
		}
		if !rf.Balanced {
			rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckRollForwardIdentity, Account: MemberAggregate,
				Expected: rf.ClosingPoints, Actual: rf.OpeningPoints + rf.MovementPoints,
				Detail: fmt.Sprintf("opening %d + movements %d (money %s + %s + revaluation %s) against closing %d (money %s)",
					rf.OpeningPoints, rf.MovementPoints, rf.OpeningMoney, rf.MovementMoney, rf.RevaluationMoney, rf.ClosingPoints, rf.ClosingMoney)})
		}
		var stored int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(SUM(balance), 0)::INT8 FROM account_balances
			WHERE account_code > 'member:' AND account_code < 'member;'`).Scan(&stored); err != nil {
			return fmt.Errorf("sum member balances: %w", err)
		}
		if stored != rf.ClosingPoints {
			rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckLiabilityEqualsBalance, Account: MemberAggregate,
				Expected: rf.ClosingPoints, Actual: stored,
				Detail: "members' stored balances differ from the liability the rollups and postings give"})
		}
		return rollupChecks(ctx, tx, &rec)
	})
	if err != nil {
		return rec, fmt.Errorf("reconcile: %w", err)
	}
	rec.AsOf = dbTime(readAt)
	// Every partner's settlement rows against its ledger accounts: what
	// ties each partner statement to the roll-forward.
	partnerFound, err := r.partners.Verify(ctx)
	if err != nil {
		return rec, fmt.Errorf("reconcile: %w", err)
	}
	for _, d := range partnerFound {
		rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckPartnersTie, Detail: d})
	}
	seals, err := r.VerifySeals(ctx)
	if err != nil {
		return rec, fmt.Errorf("reconcile: %w", err)
	}
	rec.SealsChecked = seals.Checked
	if !seals.OK() {
		rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckSealChain, Day: seals.FirstBad, Detail: seals.Problem})
	}
	return rec, nil
}

// rollupChecks compares the rollup of every rolled-up day with its
// postings, per account (members in aggregate).
func rollupChecks(ctx context.Context, tx pgx.Tx, rec *Reconciliation) error {
	frontier, ok, err := rolledUntil(ctx, tx)
	if err != nil || !ok {
		return err
	}
	rows, err := tx.Query(ctx, `
		WITH raw AS (
			SELECT ((t.recorded_at - INTERVAL '1 microsecond') AT TIME ZONE 'UTC')::DATE AS day,
				CASE WHEN p.account_code LIKE 'member:%' THEN 'member:*' ELSE p.account_code END AS account_code,
				SUM(p.amount)::INT8 AS points, COUNT(*)::INT8 AS postings
			FROM transactions t JOIN postings p ON p.transaction_id = t.id
			WHERE t.recorded_at <= $1
			GROUP BY 1, 2
		), rolled AS (
			SELECT 'finance_daily_totals' AS tbl, day, account_code, SUM(points)::INT8 AS points, SUM(postings)::INT8 AS postings
			FROM finance_daily_totals GROUP BY day, account_code
			UNION ALL
			SELECT 'finance_daily_property_totals', day, account_code, SUM(points)::INT8, SUM(postings)::INT8
			FROM finance_daily_property_totals GROUP BY day, account_code
		), expected AS (
			SELECT g.tbl, raw.* FROM raw
			CROSS JOIN (VALUES ('finance_daily_totals'), ('finance_daily_property_totals')) AS g (tbl)
		)
		SELECT COALESCE(r.tbl, d.tbl), COALESCE(r.day, d.day)::TEXT, COALESCE(r.account_code, d.account_code),
			COALESCE(r.points, 0)::INT8, COALESCE(d.points, 0)::INT8, COALESCE(r.postings, 0)::INT8, COALESCE(d.postings, 0)::INT8
		FROM expected r FULL OUTER JOIN rolled d ON d.tbl = r.tbl AND d.day = r.day AND d.account_code = r.account_code
		WHERE COALESCE(r.points, 0) <> COALESCE(d.points, 0) OR COALESCE(r.postings, 0) <> COALESCE(d.postings, 0)
		ORDER BY 2, 3, 1
		LIMIT 1000`, frontier)
	if err != nil {
		return fmt.Errorf("compare rollups with postings: %w", err)
	}
	var table, day, account string
	var rawPoints, rolledPoints, rawCount, rolledCount int64
	_, err = pgx.ForEachRow(rows, []any{&table, &day, &account, &rawPoints, &rolledPoints, &rawCount, &rolledCount}, func() error {
		d, err := time.Parse(time.DateOnly, day)
		if err != nil {
			return err
		}
		rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckRollupEqualsPostings, Day: d, Account: account,
			Expected: rawPoints, Actual: rolledPoints,
			Detail: fmt.Sprintf("%s: postings recorded that day: %d (rolled up: %d); a write landed in a closed day or a rollup row changed",
				table, rawCount, rolledCount)})
		return nil
	})
	if err != nil {
		return fmt.Errorf("compare rollups with postings: %w", err)
	}
	for _, g := range []grain{accountGrain, propertyGrain} {
		if err := monthChecks(ctx, tx, g, rec); err != nil {
			return err
		}
	}
	return nil
}

type monthAccount struct {
	month   time.Time
	account string
}

// monthChecks compares each monthly rollup with the sum of its days.
func monthChecks(ctx context.Context, tx pgx.Tx, g grain, rec *Reconciliation) error {
	sums := func(table, col string) (map[monthAccount]sum, error) {
		rows, err := tx.Query(ctx, `SELECT `+col+`::TEXT, account_code, SUM(points)::INT8, SUM(postings)::INT8
			FROM `+table+` GROUP BY `+col+`, account_code`)
		if err != nil {
			return nil, fmt.Errorf("sum %s: %w", table, err)
		}
		out := map[monthAccount]sum{}
		var day, account string
		var s sum
		_, err = pgx.ForEachRow(rows, []any{&day, &account, &s.Points, &s.Postings}, func() error {
			d, err := time.Parse(time.DateOnly, day)
			if err != nil {
				return err
			}
			k := monthAccount{floorMonth(d), account}
			cur := out[k]
			cur.Points += s.Points
			cur.Postings += s.Postings
			out[k] = cur
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("sum %s: %w", table, err)
		}
		return out, nil
	}
	days, err := sums(g.table, "day")
	if err != nil {
		return err
	}
	months, err := sums(g.monthTable, "month")
	if err != nil {
		return err
	}
	for k, m := range months {
		d := days[k]
		if d != m {
			rec.Discrepancies = append(rec.Discrepancies, Discrepancy{Check: CheckRollupEqualsPostings, Day: k.month, Account: k.account,
				Expected: d.Points, Actual: m.Points,
				Detail: fmt.Sprintf("%s: the month starting that day differs from the sum of its days in %s (%d postings, %d)", g.monthTable, g.table, d.Postings, m.Postings)})
		}
	}
	return nil
}
