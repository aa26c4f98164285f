package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/financecsv"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
)

// The finance commands: reports written as CSV, the reconciliation, and the
// jobs loyaltyd also runs on a schedule (rollup, seal). Each reads the
// database directly, in a snapshot for the reports.

// financeFlags are the flags every finance command has.
type financeFlags struct {
	databaseURL *string
}

func newFinanceFlags(fs *flag.FlagSet) financeFlags {
	return financeFlags{databaseURL: fs.String("database-url", "",
		"PostgreSQL or CockroachDB URL of loyaltyd's database (env LOYALTY_DATABASE_URL); required")}
}

// time reads the date or time flag flagName on the flags' database: a
// plain date is 00:00 in the programme's time zone (parseTimeOn).
func (f financeFlags) time(e env, flagName, text string) (time.Time, error) {
	url, err := databaseURL(e, *f.databaseURL)
	if err != nil {
		return time.Time{}, err
	}
	return parseTimeOn(e, url, flagName, text)
}

// open connects to the database the flags or the environment name.
func (f financeFlags) open(ctx context.Context, e env, name string) (*finance.Reports, func(), int) {
	url, err := databaseURL(e, *f.databaseURL)
	if err != nil {
		return nil, nil, usageError(e, name, err)
	}
	db, err := openDatabase(ctx, e, url, database.Options{MaxConns: 4})
	if err != nil {
		fmt.Fprintf(e.stderr, "loyaltyctl %s: open the database: %v\n", name, err)
		return nil, nil, exitError
	}
	return finance.New(ledger.New(db, ledger.Options{Clock: e.now, Outbox: events.OfTransaction}), finance.Options{Clock: e.now}), db.Close, exitOK
}

// output opens -o: "-" (the default) is stdout.
func output(e env, path string) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return e.stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	return f, f.Close, nil
}

func financeUsage(fs *flag.FlagSet, text string) {
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), text+"\nFlags:\n")
		fs.PrintDefaults()
	}
}

// reportTrialBalance writes the trial balance as CSV.
func reportTrialBalance(e env, args []string) int {
	const name = "report trial-balance"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	db := newFinanceFlags(fs)
	asOfText := fs.String("as-of", "", "balances as of this time: "+dateHelp+"; default now")
	members := fs.Bool("members", false, "also list every member account (after the totals)")
	out := fs.String("o", "-", "CSV file to write; - is stdout")
	financeUsage(fs, `Usage: loyaltyctl report trial-balance [-as-of DATE|TIME] [-members] [-o FILE.csv] [-database-url URL | -data-dir DIR]

Writes every account's balance as of -as-of as CSV: programme, partner and
other accounts one by one, members in aggregate ("member:*"), a total row
(zero when the books balance), and with -members each member account.
`)
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	var asOf time.Time
	if *asOfText != "" {
		var err error
		if asOf, err = db.time(e, "as-of", *asOfText); err != nil {
			return usageError(e, name, err)
		}
	}
	ctx := context.Background()
	reports, closeDB, code := db.open(ctx, e, name)
	if reports == nil {
		return code
	}
	defer closeDB()
	tb, err := reports.TrialBalance(ctx, asOf, finance.TrialOptions{IndividualMembers: *members, PageSize: finance.MaxPageSize})
	if err != nil {
		return failed(e, name, err)
	}
	w, closeOut, err := output(e, *out)
	if err != nil {
		return failed(e, name, err)
	}
	// The last page read: its AsOf and totals are the summary's.
	last := tb
	next := func(token string) (finance.TrialBalance, error) {
		var err error
		last, err = reports.TrialBalance(ctx, tb.AsOf, finance.TrialOptions{IndividualMembers: true,
			PageSize: finance.MaxPageSize, PageToken: token})
		return last, err
	}
	if err := errors.Join(financecsv.TrialBalance(w, tb, next), closeOut()); err != nil {
		return failed(e, name, err)
	}
	tb = last
	fmt.Fprintf(e.stderr, "loyaltyctl: trial balance as of %s: debits %d, credits %d, total %d (%s)\n",
		tb.AsOf.Format(time.RFC3339Nano), tb.TotalDebit, tb.TotalCredit, tb.Total, finance.Basis)
	if tb.Total != 0 {
		return exitError
	}
	return exitOK
}

// reportRollForward writes the liability roll-forward as CSV.
func reportRollForward(e env, args []string) int {
	const name = "report roll-forward"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	db := newFinanceFlags(fs)
	fromText := fs.String("from", "", "start of the period (exclusive): "+dateHelp+"; default the beginning")
	toText := fs.String("to", "", "end of the period (inclusive): "+dateHelp+"; required")
	groupBy := fs.String("group-by", "source", "source, property or partner")
	out := fs.String("o", "-", "CSV file to write; - is stdout")
	financeUsage(fs, `Usage: loyaltyctl report roll-forward -to DATE|TIME [-from DATE|TIME] [-group-by source|property|partner] [-o FILE.csv]

Writes the points liability over (-from, -to] as CSV: the opening, one row
per movement (issued, redeemed, penalty, expired, adjustment, reversal,
other), the revaluation, and the closing, in points and in money at the
book value of a point. Exits 1 if opening + movements != closing.
`)
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	var from, to time.Time
	var err error
	if *fromText != "" {
		if from, err = db.time(e, "from", *fromText); err != nil {
			return usageError(e, name, err)
		}
	}
	if *toText == "" {
		return usageError(e, name, errors.New("-to is required, e.g. -to 2026-12-01"))
	}
	if to, err = db.time(e, "to", *toText); err != nil {
		return usageError(e, name, err)
	}
	ctx := context.Background()
	reports, closeDB, code := db.open(ctx, e, name)
	if reports == nil {
		return code
	}
	defer closeDB()
	rf, err := reports.RollForward(ctx, from, to, finance.GroupBy(*groupBy))
	var field *ledger.FieldError
	if errors.As(err, &field) {
		return usageError(e, name, err)
	}
	if err != nil {
		return failed(e, name, err)
	}
	w, closeOut, err := output(e, *out)
	if err != nil {
		return failed(e, name, err)
	}
	if err := errors.Join(financecsv.RollForward(w, rf), closeOut()); err != nil {
		fmt.Fprintf(e.stderr, "loyaltyctl %s: write: %v\n", name, err)
		return exitError
	}
	fmt.Fprintf(e.stderr, "loyaltyctl: roll-forward: opening %d + movements %d = closing %d: balanced %v (%s)\n",
		rf.OpeningPoints, rf.MovementPoints, rf.ClosingPoints, rf.Balanced, finance.Basis)
	if !rf.Balanced {
		return exitError
	}
	return exitOK
}

// reconcile prints every discrepancy and exits 1 when there is any.
func reconcile(e env, args []string) int {
	const name = "reconcile"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	db := newFinanceFlags(fs)
	financeUsage(fs, `Usage: loyaltyctl reconcile [-database-url URL]

Re-derives the books: every transaction sums to zero and has its postings,
every stored balance equals its postings, the trial balance is zero, the
roll-forward balances and matches the members' balances, every rolled-up day
equals its postings, and the seal chain holds. Prints each discrepancy with
the ids to look at; exits 1 when there is any.
`)
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	ctx := context.Background()
	reports, closeDB, code := db.open(ctx, e, name)
	if reports == nil {
		return code
	}
	defer closeDB()
	rec, err := reports.Reconcile(ctx)
	if err != nil {
		return failed(e, name, err)
	}
	for _, d := range rec.Discrepancies {
		fmt.Fprintln(e.stdout, d.String())
	}
	if !rec.OK() {
		fmt.Fprintf(e.stderr, "loyaltyctl: %d discrepancies as of %s\n", len(rec.Discrepancies), rec.AsOf.Format(time.RFC3339))
		return exitError
	}
	fmt.Fprintf(e.stdout, "the books balance as of %s (%d seals verified)\n", rec.AsOf.Format(time.RFC3339), rec.SealsChecked)
	return exitOK
}

// job runs a finance job (rollup, seal) once.
func job(name, summary string, run func(*finance.Reports, context.Context) (finance.JobProgress, error)) func(e env, args []string) int {
	return func(e env, args []string) int {
		fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
		db := newFinanceFlags(fs)
		financeUsage(fs, "Usage: loyaltyctl "+name+" [-database-url URL]\n\n"+summary+"\n")
		if err := parseFlags(e, fs, args); err != nil {
			return usageError(e, name, err)
		}
		ctx := context.Background()
		reports, closeDB, code := db.open(ctx, e, name)
		if reports == nil {
			return code
		}
		defer closeDB()
		p, err := run(reports, ctx)
		if err != nil {
			fmt.Fprintf(e.stderr, "loyaltyctl %s: %v (%d days done before it; run it again to resume)\n", name, err, p.Days)
			return exitError
		}
		until := "nothing to do yet: no transaction"
		if !p.Until.IsZero() {
			until = "done up to " + p.Until.Format(time.DateOnly)
		}
		fmt.Fprintf(e.stdout, "%s: %d days, %s\n", name, p.Days, until)
		return exitOK
	}
}

// verifySeals recomputes the seals and names the first day that no longer
// matches.
func verifySeals(e env, args []string) int {
	const name = "verify-seals"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	db := newFinanceFlags(fs)
	financeUsage(fs, `Usage: loyaltyctl verify-seals [-database-url URL]

Recomputes the seal of every sealed day from its transactions and postings,
oldest first, and names the first day whose content or chain no longer
matches; exits 1 then.
`)
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	ctx := context.Background()
	reports, closeDB, code := db.open(ctx, e, name)
	if reports == nil {
		return code
	}
	defer closeDB()
	c, err := reports.VerifySeals(ctx)
	if err != nil {
		return failed(e, name, err)
	}
	if !c.OK() {
		fmt.Fprintf(e.stdout, "seal of %s does not match: %s (%d seals checked)\n", c.FirstBad.Format(time.DateOnly), c.Problem, c.Checked)
		return exitError
	}
	fmt.Fprintf(e.stdout, "%d seals match\n", c.Checked)
	return exitOK
}

// pointValueSet adds a version of the book value of a point.
func pointValueSet(e env, args []string) int {
	const name = "point-value set"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	db := newFinanceFlags(fs)
	onText := fs.String("on", "", "the date the value applies from, e.g. 2027-01-01, a UTC date (not the programme's time zone: see below); required")
	valueText := fs.String("value", "", "money per point, e.g. 0.012 (at most 8 decimal places); required")
	currency := fs.String("currency", finance.DefaultPointValue.Currency, "ISO 4217 currency; every version has the default's")
	financeUsage(fs, `Usage: loyaltyctl point-value set -on DATE -value DECIMAL [-currency CNY] [-database-url URL]

Adds a version of the book value of a point from -on (00:00 UTC) on. A
version is never changed: the same value again does nothing, another value
for a date that has one fails. Unlike the other date flags, -on is a UTC
date: the versions of the book value are kept by UTC date.
`)
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	on, err := time.Parse(time.DateOnly, *onText)
	if err != nil {
		return usageError(e, name, fmt.Errorf("-on %q: give a date like 2027-01-01", *onText))
	}
	value, err := decimal.NewFromString(*valueText)
	if err != nil || *valueText == "" {
		return usageError(e, name, fmt.Errorf("-value %q: give a decimal like 0.012", *valueText))
	}
	ctx := context.Background()
	reports, closeDB, code := db.open(ctx, e, name)
	if reports == nil {
		return code
	}
	defer closeDB()
	// The request is its own idempotency key: setting it again is harmless.
	key := "point-value:" + *onText + ":" + value.String() + ":" + *currency
	v, err := reports.SetPointValue(ctx, "loyaltyctl", key, on, value, *currency)
	var field *ledger.FieldError
	if errors.As(err, &field) {
		return usageError(e, name, err)
	}
	if err != nil {
		return failed(e, name, err)
	}
	fmt.Fprintf(e.stdout, "from %s a point is worth %s %s\n", v.EffectiveOn.Format(time.DateOnly), v.Value, v.Currency)
	return exitOK
}

// pointValueList writes every version of the book value as CSV.
func pointValueList(e env, args []string) int {
	const name = "point-value list"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	db := newFinanceFlags(fs)
	financeUsage(fs, "Usage: loyaltyctl point-value list [-database-url URL]\n\nWrites every version of the book value of a point as CSV, oldest first.\n")
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	ctx := context.Background()
	reports, closeDB, code := db.open(ctx, e, name)
	if reports == nil {
		return code
	}
	defer closeDB()
	values, err := reports.PointValues(ctx)
	if err != nil {
		return failed(e, name, err)
	}
	if err := financecsv.PointValues(e.stdout, values); err != nil {
		return failed(e, name, err)
	}
	return exitOK
}

// reportPartnerStatements writes the settlement statements of every
// partner (or one, -partner) for a period as CSV, one row per partner and
// rate version and one total row per partner, and checks that each ties
// to the roll-forward by partner.
func reportPartnerStatements(e env, args []string) int {
	const name = "report partner-statements"
	fs := flag.NewFlagSet("loyaltyctl "+name, flag.ContinueOnError)
	db := newFinanceFlags(fs)
	partnerID := fs.String("partner", "", "only this partner's statement; default every partner")
	fromText := fs.String("from", "", "start of the period (exclusive): "+dateHelp+"; required")
	toText := fs.String("to", "", "end of the period (inclusive): "+dateHelp+"; required")
	out := fs.String("o", "-", "CSV file to write; - is stdout")
	financeUsage(fs, `Usage: loyaltyctl report partner-statements -from DATE|TIME -to DATE|TIME [-partner ID] [-o FILE.csv]

Writes each partner's settlement statement for the transactions recorded in
(-from, -to] as CSV: per rate version, the points issued at its hotels x the
issue rate and the points redeemed there x the reimbursement rate (exact),
the reversals' share, then a total row with the amounts rounded to the cent,
the net and who it is due to, in the partner's currency. Exits 1 when a
partner's points do not tie to the roll-forward by partner.
`)
	if err := parseFlags(e, fs, args); err != nil {
		return usageError(e, name, err)
	}
	if *fromText == "" || *toText == "" {
		return usageError(e, name, errors.New("-from and -to are required, e.g. -from 2026-11-01 -to 2026-12-01"))
	}
	from, err := db.time(e, "from", *fromText)
	if err != nil {
		return usageError(e, name, err)
	}
	to, err := db.time(e, "to", *toText)
	if err != nil {
		return usageError(e, name, err)
	}
	ctx := context.Background()
	reports, closeDB, code := db.open(ctx, e, name)
	if reports == nil {
		return code
	}
	defer closeDB()
	all, err := reports.PartnerStatements(ctx, from, to)
	var field *ledger.FieldError
	if errors.As(err, &field) {
		return usageError(e, name, err)
	}
	if err != nil {
		return failed(e, name, err)
	}
	statements := all.Statements
	discrepancies := all.Discrepancies
	if *partnerID != "" {
		statements, discrepancies = nil, nil
		for _, st := range all.Statements {
			if st.PartnerID == *partnerID {
				statements = append(statements, st)
			}
		}
		// Only the partner asked for decides the exit status.
		for _, d := range all.Discrepancies {
			if d.Account == partners.IssuedAccount(*partnerID).Code || d.Account == partners.RedeemedAccount(*partnerID).Code {
				discrepancies = append(discrepancies, d)
			}
		}
		if len(statements) == 0 {
			// Before the output file is made: no empty file is left.
			fmt.Fprintf(e.stderr, "loyaltyctl %s: no partner %q\n", name, *partnerID)
			return exitError
		}
	}
	w, closeOut, err := output(e, *out)
	if err != nil {
		return failed(e, name, err)
	}
	if err := errors.Join(financecsv.PartnerStatements(w, statements), closeOut()); err != nil {
		return failed(e, name, err)
	}
	if len(discrepancies) > 0 {
		for _, d := range discrepancies {
			fmt.Fprintf(e.stderr, "loyaltyctl %s: does not tie: %s\n", name, d)
		}
		return exitError
	}
	return exitOK
}
