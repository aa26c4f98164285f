// Package financecsv writes finance's reports as CSV: the one place the
// columns and number formats live, shared by loyaltyctl's report commands
// and the finance page's downloads, so both give the same file.
//
// The files are RFC 4180: CRLF line ends, a header row, fields quoted only
// when they need it. Numbers are plain, so a spreadsheet reads them as
// numbers: points as integers, money with exactly two decimal places (no
// thousands separators), and rates and values per point with all their
// decimals, because rounding those would change every amount computed from
// them.
package financecsv

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/partners"
)

// ContentType is the media type of what this package writes, with RFC
// 4180's optional header parameter saying the first row names the columns.
const ContentType = "text/csv; charset=utf-8; header=present"

// MoneyPlaces is how many decimal places programme money (CNY) has in the
// files; a partner's statement is in its settlement currency's minor units
// (partners.SettlementPlaces: none for JPY).
const MoneyPlaces = 2

// NewWriter returns a writer of the files this package writes (RFC 4180,
// CRLF line ends), for other files that must read like them: members'
// statements (package statements). Finish ends what it wrote.
func NewWriter(w io.Writer) *csv.Writer { return newWriter(w) }

// Finish flushes a writer of NewWriter and returns its first write error.
func Finish(c *csv.Writer) error { return finish(c) }

func newWriter(w io.Writer) *csv.Writer {
	c := csv.NewWriter(w)
	c.UseCRLF = true // RFC 4180
	return c
}

// finish flushes c and returns the first write error.
func finish(c *csv.Writer) error {
	c.Flush()
	if err := c.Error(); err != nil {
		return fmt.Errorf("write CSV: %w", err)
	}
	return nil
}

func i64(n int64) string { return strconv.FormatInt(n, 10) }

// money is an amount to the cent, rounded half away from zero.
func money(d decimal.Decimal) string { return d.StringFixed(MoneyPlaces) }

// settled is an amount of a partner's settlement in the minor units of its
// currency, rounded half away from zero, as the statement's totals are.
func settled(d decimal.Decimal, currency string) string {
	return d.StringFixed(partners.SettlementPlaces(currency))
}

// NextMembers returns the trial balance page after pageToken, for the
// individual member lines.
type NextMembers func(pageToken string) (finance.TrialBalance, error)

// TrialBalance writes a trial balance: one row per account ("account"),
// the total row ("total", zero balance when the books balance), then the
// member rows of tb ("member") and, while a page token follows, those of
// the pages next returns (next may be nil when tb has no token).
func TrialBalance(w io.Writer, tb finance.TrialBalance, next NextMembers) error {
	c := newWriter(w)
	line := func(kind string, l finance.TrialLine) {
		_ = c.Write([]string{kind, l.Account, l.Class, l.NormalSide, i64(l.Debit), i64(l.Credit), i64(l.Balance), i64(l.Postings)})
	}
	_ = c.Write([]string{"line", "account", "class", "normal_side", "debit", "credit", "balance", "postings"})
	for _, l := range tb.Lines {
		line("account", l)
	}
	_ = c.Write([]string{"total", "", "", "", i64(tb.TotalDebit), i64(tb.TotalCredit), i64(tb.Total), ""})
	for {
		for _, l := range tb.Members {
			line("member", l)
		}
		if tb.NextPageToken == "" || next == nil {
			break
		}
		var err error
		if tb, err = next(tb.NextPageToken); err != nil {
			_ = finish(c)
			return fmt.Errorf("trial balance: next page of members: %w", err)
		}
	}
	return finish(c)
}

// RollForward writes a liability roll-forward: the opening, one row per
// movement, the revaluation and the closing, in points and money.
func RollForward(w io.Writer, rf finance.RollForward) error {
	c := newWriter(w)
	// money is to the cent, row by row, so the rows need not add up to the
	// closing to the cent; money_exact does, exactly.
	_ = c.Write([]string{"line", "dimension", "category", "detail", "points", "money", "currency", "postings", "money_exact"})
	_ = c.Write([]string{"opening", "", "", "", i64(rf.OpeningPoints), money(rf.OpeningMoney), rf.Currency, "", rf.OpeningMoney.String()})
	for _, l := range rf.Lines {
		_ = c.Write([]string{"movement", l.Dimension, l.Category, l.Detail, i64(l.Points), money(l.Money), rf.Currency, i64(l.Postings), l.Money.String()})
	}
	_ = c.Write([]string{"revaluation", "", "", "", "", money(rf.RevaluationMoney), rf.Currency, "", rf.RevaluationMoney.String()})
	_ = c.Write([]string{"closing", "", "", "", i64(rf.ClosingPoints), money(rf.ClosingMoney), rf.Currency, "", rf.ClosingMoney.String()})
	return finish(c)
}

// PartnerStatements writes settlement statements: per partner, one row per
// rate version ("rate": the rates and the exact amounts) and a total row
// ("total": the amounts in the currency's minor units, the net and who it
// is due to).
func PartnerStatements(w io.Writer, statements []partners.Settlement) error {
	c := newWriter(w)
	_ = c.Write([]string{"partner", "row", "rate_version", "issue_rate", "reimbursement_rate", "points_issued", "points_redeemed",
		"reversed_points_issued", "reversed_points_redeemed", "owed_to_programme", "owed_to_partner", "net", "due_to", "currency",
		"owed_to_programme_exact", "owed_to_partner_exact"})
	for _, st := range statements {
		exactToProgramme, exactToPartner := decimal.Zero, decimal.Zero
		for _, l := range st.Lines {
			_ = c.Write([]string{st.PartnerID, "rate", strconv.Itoa(l.RateVersion), l.IssueRate.String(), l.ReimbursementRate.String(),
				i64(l.PointsIssued), i64(l.PointsRedeemed), i64(l.ReversedPointsIssued), i64(l.ReversedPointsRedeemed),
				settled(l.OwedToProgramme, st.Currency), settled(l.OwedToPartner, st.Currency), "", "", st.Currency,
				l.OwedToProgramme.String(), l.OwedToPartner.String()})
			exactToProgramme, exactToPartner = exactToProgramme.Add(l.OwedToProgramme), exactToPartner.Add(l.OwedToPartner)
		}
		_ = c.Write([]string{st.PartnerID, "total", "", "", "", i64(st.PointsIssued), i64(st.PointsRedeemed),
			i64(st.ReversedPointsIssued), i64(st.ReversedPointsRedeemed), settled(st.OwedToProgramme, st.Currency),
			settled(st.OwedToPartner, st.Currency), settled(st.Net, st.Currency), st.DueTo, st.Currency,
			exactToProgramme.String(), exactToPartner.String()})
	}
	return finish(c)
}

// PointValues writes every version of the book value of a point, oldest
// first; the default has no date.
func PointValues(w io.Writer, values []finance.PointValue) error {
	c := newWriter(w)
	_ = c.Write([]string{"effective_on", "value_per_point", "currency", "created_at", "created_by"})
	for _, v := range values {
		on, at := "", ""
		if !v.EffectiveOn.IsZero() {
			on = v.EffectiveOn.Format(time.DateOnly)
		}
		if !v.CreatedAt.IsZero() {
			at = v.CreatedAt.Format(time.RFC3339)
		}
		_ = c.Write([]string{on, v.Value.String(), v.Currency, at, v.CreatedBy})
	}
	return finish(c)
}
