// Package statements makes a member's statement: the file a member is
// handed for a period of their account, with the programme's name, who
// they are (number, name, tier), the balance at the start and at the end
// of the period, every transaction recorded in it with the breakdown that
// explains its points, the points on hold and the next expiry.
//
// Gather reads a statement from the ledger; CSV and PDF render one. CSV is
// for spreadsheets (RFC 4180, the writer of finance's reports); PDF is for
// people, with an embedded TrueType font that has Chinese glyphs, since
// members' and hotels' names are often Chinese.
package statements

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/loyalty-ledger/loyalty/financecsv"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/txmeta"
)

// DefaultProgrammeName is the title of statements when the service is
// given no programme name: the programme's definition has none.
const DefaultProgrammeName = "Loyalty Programme"

// MaxTransactions is the most transactions one statement lists: a longer
// period is to be asked for in shorter ones. It bounds the file (about 300
// PDF pages) and the time to make it.
const MaxTransactions = 5000

// Statement is a member's statement of a period, ready to render.
type Statement struct {
	ProgrammeName string
	MemberNumber  string
	// FullName is empty for a closed member, whose name was erased.
	FullName string
	// Tier is the member's tier at the end of the period.
	Tier programme.Tier
	// From and To bound the period (From, To]; Zone is the zone dates are
	// shown in (the programme's).
	From, To time.Time
	Zone     *time.Location
	// Opening and Closing are the posted points at From and at To.
	Opening, Closing int64
	// OnHold and NextExpiry are as of AsOf (when the statement was made),
	// not of the period: they are what the member has now.
	AsOf       time.Time
	OnHold     int64
	NextExpiry *Expiry
	// Transactions are those recorded in the period, oldest first.
	Transactions []Transaction
}

// Expiry is when the next points expire and how many.
type Expiry struct {
	At     time.Time
	Points int64
}

// Transaction is one transaction on the member's account.
type Transaction struct {
	ID                      string
	RecordedAt, EffectiveAt time.Time
	// Kind is the transaction's kind as the API spells it in lower case
	// ("stay", "redemption", "reversal", ...).
	Kind        string
	Description string
	// Points is the change of the member's posted points; BalanceAfter the
	// posted points right after it.
	Points       int64
	BalanceAfter int64
	Breakdown    []Line
}

// Line is one line of a transaction's breakdown: a rule and its points.
type Line struct {
	Rule        string
	Description string
	Points      int64
}

// Request says which statement Gather makes.
type Request struct {
	ProgrammeName string
	MemberNumber  string
	From, To, Now time.Time
	Zone          *time.Location
}

// TooManyTransactionsError is returned by Gather for a period with more
// than MaxTransactions transactions.
type TooManyTransactionsError struct{ Max int }

func (e *TooManyTransactionsError) Error() string {
	return fmt.Sprintf("the period has more than %d transactions: ask for a shorter one", e.Max)
}

// Gather reads a member's statement: the member and their tier at r.To,
// then the period and the holdings now in one snapshot of the ledger. An
// unknown member is members.ErrNotFound.
func Gather(ctx context.Context, l *ledger.Ledger, ms *members.Store, r Request) (Statement, error) {
	m, tier, err := ms.MemberAt(ctx, r.MemberNumber, r.To)
	if err != nil {
		return Statement{}, fmt.Errorf("statement of %s: %w", r.MemberNumber, err)
	}
	p, err := l.Period(ctx, programme.MemberAccount(m.Number).Code, r.From, r.To, MaxTransactions)
	var tooMany *ledger.TooManyEntriesError
	if errors.As(err, &tooMany) {
		return Statement{}, &TooManyTransactionsError{Max: MaxTransactions}
	}
	if err != nil {
		return Statement{}, fmt.Errorf("statement of %s: %w", r.MemberNumber, err)
	}
	s := Statement{ProgrammeName: r.ProgrammeName, MemberNumber: m.Number, FullName: m.FullName, Tier: tier,
		From: r.From, To: r.To, Zone: r.Zone, Opening: p.Opening.Posted, Closing: p.Closing.Posted,
		AsOf: p.Now.AsOf, OnHold: p.Now.Held}
	if s.ProgrammeName == "" {
		s.ProgrammeName = DefaultProgrammeName
	}
	for _, lot := range p.Lots { // nearest expiry first
		if lot.ExpiresAt.IsZero() {
			continue
		}
		if s.NextExpiry == nil {
			s.NextExpiry = &Expiry{At: lot.ExpiresAt}
		}
		if lot.ExpiresAt.Equal(s.NextExpiry.At) {
			s.NextExpiry.Points += lot.Open
		}
	}
	for _, e := range p.Entries {
		meta := txmeta.Decode(e.Metadata)
		t := Transaction{ID: e.TransactionID.String(), RecordedAt: e.RecordedAt, EffectiveAt: e.EffectiveAt,
			Kind: meta.Kind, Description: meta.Description, Points: e.Amount}
		if t.Kind == "" {
			t.Kind = string(e.Kind)
		}
		if e.After != nil {
			t.BalanceAfter = e.After.Posted
		}
		for _, line := range meta.Breakdown {
			t.Breakdown = append(t.Breakdown, Line{Rule: line.Rule, Description: line.Description, Points: line.Points})
		}
		s.Transactions = append(s.Transactions, t)
	}
	return s, nil
}

// CSVContentType is the media type of CSV's files.
const CSVContentType = financecsv.ContentType

// CSV writes s as RFC 4180 CSV with a header line. The column line says
// what each line is:
//
//   - member: kind is the tier, description the name (empty once erased);
//   - opening: recorded_at is the period's start, balance_after the balance;
//   - transaction: one per transaction, points its change of the balance;
//   - breakdown: one per line of the transaction above it (same
//     transaction_id), rule and points of that line;
//   - closing: recorded_at is the period's end, balance_after the balance;
//   - on_hold: the points on hold at recorded_at (when the file was made);
//   - next_expiry: effective_at is when the points expire (absent if none).
//
// Times are RFC 3339 in s.Zone. Opening plus the transactions' points is
// the closing balance.
func CSV(w io.Writer, s Statement) error {
	c := financecsv.NewWriter(w)
	at := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.In(s.zone()).Format(time.RFC3339)
	}
	i64 := func(n int64) string { return strconv.FormatInt(n, 10) }
	line := func(kind, id string, recordedAt, effectiveAt time.Time, txKind, rule, description, points, balance string) {
		_ = c.Write([]string{kind, s.MemberNumber, id, at(recordedAt), at(effectiveAt), txKind, rule, description, points, balance})
	}
	_ = c.Write([]string{"line", "member_number", "transaction_id", "recorded_at", "effective_at", "kind", "rule", "description", "points", "balance_after"})
	line("member", "", time.Time{}, time.Time{}, string(s.Tier), "", s.FullName, "", "")
	line("opening", "", s.From, time.Time{}, "", "", "Opening balance", "", i64(s.Opening))
	for _, t := range s.Transactions {
		line("transaction", t.ID, t.RecordedAt, t.EffectiveAt, t.Kind, "", t.Description, i64(t.Points), i64(t.BalanceAfter))
		for _, b := range t.Breakdown {
			line("breakdown", t.ID, t.RecordedAt, time.Time{}, "", b.Rule, b.Description, i64(b.Points), "")
		}
	}
	line("closing", "", s.To, time.Time{}, "", "", "Closing balance", "", i64(s.Closing))
	line("on_hold", "", s.AsOf, time.Time{}, "", "", "Points on hold", i64(s.OnHold), "")
	if s.NextExpiry != nil {
		line("next_expiry", "", s.AsOf, s.NextExpiry.At, "", "", "Next expiry", i64(s.NextExpiry.Points), "")
	}
	if err := financecsv.Finish(c); err != nil {
		return fmt.Errorf("statement of %s: %w", s.MemberNumber, err)
	}
	return nil
}

func (s Statement) zone() *time.Location {
	if s.Zone == nil {
		return time.UTC
	}
	return s.Zone
}
