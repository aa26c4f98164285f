package finance

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/partners"
)

// The partner checks: Reconcile's, that every partner's settlement rows
// agree with its ledger accounts; and PartnerStatements', that each
// statement of a period ties to the roll-forward of the same period.
const (
	CheckPartnersTie          = "partner_settlements_equal_partner_accounts"
	CheckPartnerStatementsTie = "partner_statements_tie_to_roll_forward"
)

// PartnerStatements are every partner's statements for one period, with
// the tie-out to the liability roll-forward by partner: per partner, the
// points its statement counts as issued and redeemed are the points the
// roll-forward's partner lines (awards, redemptions and their reversals)
// moved.
type PartnerStatements struct {
	From, To   time.Time
	Statements []partners.Settlement
	// Ties is true when every partner's points equal its roll-forward
	// lines; Discrepancies names each partner that does not.
	Ties          bool
	Discrepancies []Discrepancy
}

// PartnerStatement is a partner's settlement statement for (from, to], as
// finance closes it: points issued at its hotels times the issue rate,
// points redeemed there times the reimbursement rate, per rate version,
// the reversals' share, and the net amount due and to whom, in the
// partner's currency, to the cent. It is the very computation the
// partner's own preview shows (partners.Store.Settlement), on finance's
// time basis: transactions recorded in (from, to], ended now when to is
// in the future.
func (r *Reports) PartnerStatement(ctx context.Context, partnerID string, from, to time.Time) (partners.Settlement, error) {
	return r.partners.Settlement(ctx, partnerID, from, to)
}

// PartnerStatements returns every partner's statement for (from, to] and
// ties their points to the roll-forward by partner over the same period.
func (r *Reports) PartnerStatements(ctx context.Context, from, to time.Time) (PartnerStatements, error) {
	out := PartnerStatements{From: dbTime(from), To: dbTime(to), Ties: true}
	all, err := r.partners.List(ctx)
	if err != nil {
		return out, fmt.Errorf("partner statements: %w", err)
	}
	if to.IsZero() {
		return out, invalid("to", "is required")
	}
	if out.From, out.To, err = r.period(from, to); err != nil {
		return out, err
	}
	// A partner created after the period had nothing in it: a report of a
	// past period reads the same however often it is made.
	all = slices.DeleteFunc(all, func(p partners.Partner) bool { return p.CreatedAt.After(out.To) })
	// The roll-forward and the statements are read in one snapshot: a
	// partner's write committed between two reads would break the tie.
	var rf RollForward
	statements := make([]partners.Settlement, len(all))
	_, err = r.db.SnapshotTx(ctx, out.To, r.clock(), func(tx pgx.Tx) error {
		var err error
		if rf, err = rollForward(ctx, tx, out.From, out.To, GroupByPartner); err != nil {
			return err
		}
		for i, p := range all {
			if statements[i], err = partners.SettlementIn(ctx, tx, p.ID, out.From, out.To); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return out, fmt.Errorf("partner statements: %w", err)
	}
	issued, redeemed := partnerPoints(rf)
	for _, st := range statements {
		p := st.PartnerID
		out.Statements = append(out.Statements, st)
		if st.PointsIssued != issued[p] {
			out.Ties = false
			out.Discrepancies = append(out.Discrepancies, Discrepancy{Check: CheckPartnerStatementsTie, Account: partners.IssuedAccount(p).Code,
				Expected: issued[p], Actual: st.PointsIssued, Detail: "points issued: roll-forward (expected) against the partner's statement"})
		}
		if st.PointsRedeemed != redeemed[p] {
			out.Ties = false
			out.Discrepancies = append(out.Discrepancies, Discrepancy{Check: CheckPartnerStatementsTie, Account: partners.RedeemedAccount(p).Code,
				Expected: redeemed[p], Actual: st.PointsRedeemed, Detail: "points redeemed: roll-forward (expected) against the partner's statement"})
		}
	}
	return out, nil
}

// partnerPoints sums, per partner, the roll-forward's partner lines:
// awards (and their reversals) as points issued, redemptions (and theirs)
// as points redeemed, both signed as a statement counts them.
func partnerPoints(rf RollForward) (issued, redeemed map[string]int64) {
	issued, redeemed = map[string]int64{}, map[string]int64{}
	for _, l := range rf.Lines {
		switch {
		case l.Category == CategoryIssued && l.Detail == "partner_award",
			l.Category == CategoryReversal && l.Detail == CategoryIssued+":partner_award":
			issued[l.Dimension] += l.Points
		case l.Category == CategoryRedeemed && l.Detail == "partner",
			l.Category == CategoryReversal && l.Detail == CategoryRedeemed+":partner":
			redeemed[l.Dimension] -= l.Points
		}
	}
	return issued, redeemed
}
