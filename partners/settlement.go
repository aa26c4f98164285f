package partners

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"
	"golang.org/x/text/currency"
)

// MaxSettlementPeriod bounds a settlement's period.
const MaxSettlementPeriod = 366 * 24 * time.Hour

// Settlement is what a partner and the programme owe each other for a
// period (From, To] of recording time: the transactions the ledger
// recorded after From and up to To, the same basis as finance's reports
// (a balance as of T includes what was recorded at T), so the settlements
// of all partners tie to the liability roll-forward, and a closed period
// never changes however late a stay is reported.
//
// Rounding rule: every amount is exact until the end. The exact sums over
// the period (each rate version's points x its rate, added up) are rounded
// once, half away from zero, to 2 decimal places: OwedToProgramme and
// OwedToPartner. Net is OwedToProgramme - OwedToPartner, the difference of
// the two rounded amounts, so the three figures always agree.
type Settlement struct {
	PartnerID string
	Currency  string
	From, To  time.Time
	// Signed sums over the period: reversals count negative.
	PointsIssued   int64
	PointsRedeemed int64
	// Of those, the reversals' share (zero or negative).
	ReversedPointsIssued   int64
	ReversedPointsRedeemed int64
	OwedToProgramme        decimal.Decimal // the partner owes, for points issued at its hotels
	OwedToPartner          decimal.Decimal // the programme owes, for points redeemed at its hotels
	Net                    decimal.Decimal // positive: the partner pays
	// DueTo says who the net amount is due to: DueToProgramme (the
	// partner pays), DueToPartner (the programme pays) or DueToNobody.
	DueTo string
	// Lines are per rate version, oldest first, exact.
	Lines []SettlementLine
}

// Who a settlement's net amount is due to.
const (
	DueToProgramme = "programme"
	DueToPartner   = "partner"
	DueToNobody    = ""
)

// SettlementLine is one rate version's share of a settlement, exact.
type SettlementLine struct {
	RateVersion       int
	IssueRate         decimal.Decimal
	ReimbursementRate decimal.Decimal
	PointsIssued      int64
	PointsRedeemed    int64
	// Of those, the reversals' share (zero or negative).
	ReversedPointsIssued   int64
	ReversedPointsRedeemed int64
	OwedToProgramme        decimal.Decimal
	OwedToPartner          decimal.Decimal
}

// SettlementPlaces is where a settlement's totals are rounded: the minor
// units of its currency (ISO 4217: 2 for CNY, 0 for JPY, 3 for KWD), so
// that an amount due can be paid; 2 for a code the table does not know
// (a partner created before codes were checked).
func SettlementPlaces(currencyCode string) int32 {
	unit, err := currency.ParseISO(currencyCode)
	if err != nil {
		return 2
	}
	places, _ := currency.Standard.Rounding(unit)
	return int32(places)
}

// Settlement computes a partner's settlement for (from, to]: over the
// partner's transactions recorded in the period (reversals included,
// negative, at the rates of the transaction they reverse), the
// points are summed in SQL per rate version, and each sum is multiplied
// by that version's rate here, exactly. This is the one computation both
// the partner's preview and finance use.
//
// A period that ends in the future ends now: it shows what is recorded so
// far, and says so by its end, so that it is never read as final; one
// that has not begun is refused.
func (s *Store) Settlement(ctx context.Context, partnerID string, from, to time.Time) (Settlement, error) {
	if err := checkPeriod(from, to); err != nil {
		return Settlement{}, err
	}
	if now := s.now().UTC().Truncate(time.Microsecond); to.After(now) {
		if !from.IsZero() && !now.After(from) {
			return Settlement{}, fieldError("from", "is in the future: the period has not begun")
		}
		to = now
	}
	var out Settlement
	err := s.db.ReadTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = SettlementIn(ctx, tx, partnerID, from, to)
		return err
	})
	return out, err
}

// SettlementIn is Settlement read in tx, so that a report can read it with
// others in one snapshot.
func SettlementIn(ctx context.Context, tx pgx.Tx, partnerID string, from, to time.Time) (Settlement, error) {
	if err := checkPeriod(from, to); err != nil {
		return Settlement{}, err
	}
	out := Settlement{PartnerID: partnerID, From: from.UTC(), To: to.UTC(),
		OwedToProgramme: decimal.Zero, OwedToPartner: decimal.Zero}
	var err error
	if out.Currency, out.Lines, err = settlementLines(ctx, tx, partnerID, out.From, out.To); err != nil {
		return Settlement{}, fmt.Errorf("settlement of partner %s: %w", partnerID, err)
	}
	for _, l := range out.Lines {
		out.PointsIssued += l.PointsIssued
		out.PointsRedeemed += l.PointsRedeemed
		out.ReversedPointsIssued += l.ReversedPointsIssued
		out.ReversedPointsRedeemed += l.ReversedPointsRedeemed
		out.OwedToProgramme = out.OwedToProgramme.Add(l.OwedToProgramme)
		out.OwedToPartner = out.OwedToPartner.Add(l.OwedToPartner)
	}
	out.OwedToProgramme = out.OwedToProgramme.Round(SettlementPlaces(out.Currency))
	out.OwedToPartner = out.OwedToPartner.Round(SettlementPlaces(out.Currency))
	out.Net = out.OwedToProgramme.Sub(out.OwedToPartner)
	switch out.Net.Sign() {
	case 1:
		out.DueTo = DueToProgramme
	case -1:
		out.DueTo = DueToPartner
	}
	return out, nil
}

// checkPeriod refuses a settlement period that is not from < to, at most
// MaxSettlementPeriod long.
func checkPeriod(from, to time.Time) error {
	if from.IsZero() || to.IsZero() || !from.Before(to) {
		return fieldError("to", "the period needs from < to")
	}
	if to.Sub(from) > MaxSettlementPeriod {
		return fieldError("to", "a period is at most 366 days")
	}
	return nil
}

// settlementLines reads a partner's currency and its settlement's lines
// for (from, to], one per rate version, in tx.
func settlementLines(ctx context.Context, tx pgx.Tx, partnerID string, from, to time.Time) (string, []SettlementLine, error) {
	p, err := scanPartner(tx.QueryRow(ctx, partnerSelect+` WHERE partner_id = $1`, partnerID))
	if err != nil {
		return "", nil, err
	}
	rows, err := tx.Query(ctx, `SELECT t.rate_version, r.issue_rate::TEXT, r.reimbursement_rate::TEXT,
			sum(t.points_issued)::BIGINT, sum(t.points_redeemed)::BIGINT,
			sum(CASE WHEN t.kind = 'reversal' THEN t.points_issued ELSE 0 END)::BIGINT,
			sum(CASE WHEN t.kind = 'reversal' THEN t.points_redeemed ELSE 0 END)::BIGINT
		FROM partner_transactions AS t
		JOIN partner_rates AS r ON r.partner_id = t.partner_id AND r.version = t.rate_version
		WHERE t.partner_id = $1 AND t.recorded_at > $2 AND t.recorded_at <= $3
		GROUP BY t.rate_version, r.issue_rate, r.reimbursement_rate
		ORDER BY t.rate_version`, partnerID, from, to)
	if err != nil {
		return "", nil, err
	}
	lines, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SettlementLine, error) {
		var l SettlementLine
		var issue, reimburse string
		if err := r.Scan(&l.RateVersion, &issue, &reimburse, &l.PointsIssued, &l.PointsRedeemed,
			&l.ReversedPointsIssued, &l.ReversedPointsRedeemed); err != nil {
			return l, err
		}
		var err error
		if l.IssueRate, err = decimal.NewFromString(issue); err != nil {
			return l, err
		}
		if l.ReimbursementRate, err = decimal.NewFromString(reimburse); err != nil {
			return l, err
		}
		l.OwedToProgramme = l.IssueRate.Mul(decimal.NewFromInt(l.PointsIssued))
		l.OwedToPartner = l.ReimbursementRate.Mul(decimal.NewFromInt(l.PointsRedeemed))
		return l, nil
	})
	return p.Currency, lines, err
}

// Verify checks, per partner, that the points its settlement counts (the
// index rows) are the points on its ledger accounts: an award or a
// redemption recorded without its row, or the other way round, would
// misstate a settlement. It returns one line per discrepancy.
func (s *Store) Verify(ctx context.Context) ([]string, error) {
	var found []string
	err := s.db.StaleReadTx(ctx, func(tx pgx.Tx) error {
		found = found[:0]
		rows, err := tx.Query(ctx, `SELECT p.partner_id,
				COALESCE((SELECT sum(points_issued) FROM partner_transactions t WHERE t.partner_id = p.partner_id), 0)::BIGINT,
				COALESCE((SELECT sum(points_redeemed) FROM partner_transactions t WHERE t.partner_id = p.partner_id), 0)::BIGINT,
				COALESCE((SELECT -sum(balance) FROM account_balances b WHERE b.account_code = 'partner:' || p.partner_id || ':issued'), 0)::BIGINT,
				COALESCE((SELECT sum(balance) FROM account_balances b WHERE b.account_code = 'partner:' || p.partner_id || ':redeemed'), 0)::BIGINT
			FROM partners p ORDER BY p.partner_id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var issued, redeemed, ledgerIssued, ledgerRedeemed int64
			if err := rows.Scan(&id, &issued, &redeemed, &ledgerIssued, &ledgerRedeemed); err != nil {
				return err
			}
			if issued != ledgerIssued {
				found = append(found, fmt.Sprintf("partner %s: %d points issued in its transactions, %d on %s", id, issued, ledgerIssued, IssuedAccount(id).Code))
			}
			if redeemed != ledgerRedeemed {
				found = append(found, fmt.Sprintf("partner %s: %d points redeemed in its transactions, %d on %s", id, redeemed, ledgerRedeemed, RedeemedAccount(id).Code))
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("verify partners: %w", err)
	}
	return found, nil
}
