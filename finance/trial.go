package finance

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Account classes of the chart of accounts, as the trial balance groups
// them. A code with any other prefix is ClassOther: it is listed, never
// dropped.
const (
	ClassMember    = "member"
	ClassProgramme = "programme"
	ClassPartner   = "partner"
	ClassOther     = "other"
)

func classOf(code string) string {
	switch {
	case code == MemberAggregate || strings.HasPrefix(code, memberPrefix):
		return ClassMember
	case strings.HasPrefix(code, "programme:"):
		return ClassProgramme
	case strings.HasPrefix(code, "partner:"):
		return ClassPartner
	}
	return ClassOther
}

// TrialLine is one account's balance in a trial balance.
type TrialLine struct {
	Account    string // MemberAggregate for all members together
	Class      string // ClassMember, ClassProgramme, ClassPartner or ClassOther
	NormalSide string // "debit", "credit", or "" for an account unknown to the accounts table
	// Debit and Credit are the balance on the side it stands on (one of
	// them is zero); Balance is it on the account's normal side (the raw,
	// credit-positive sum when the side is unknown).
	Debit, Credit, Balance int64
	Postings               int64
}

// TrialBalance is every account with its balance as of a time.
type TrialBalance struct {
	AsOf time.Time
	// Lines: every programme, partner and other account, and the members in
	// aggregate (MemberAggregate), ordered by code.
	Lines []TrialLine
	// TotalDebit and TotalCredit are equal and Total is zero when the books
	// balance.
	TotalDebit, TotalCredit, Total int64
	// Members is one page of individual member accounts, when asked for;
	// all pages together add up to the MemberAggregate line.
	Members       []TrialLine
	NextPageToken string
}

// TrialOptions ask for individual member lines.
type TrialOptions struct {
	IndividualMembers bool
	PageSize          int    // 0: DefaultPageSize; at most MaxPageSize
	PageToken         string // from the previous page
}

// Page sizes of the individual member lines.
const (
	DefaultPageSize = 1000
	MaxPageSize     = 10000
)

func lineOf(code, side string, raw, postings int64) TrialLine {
	l := TrialLine{Account: code, Class: classOf(code), NormalSide: side, Balance: raw, Postings: postings}
	if raw > 0 {
		l.Credit = raw
	} else {
		l.Debit = -raw
	}
	if side == "debit" {
		l.Balance = -raw
	}
	return l
}

// TrialBalance returns every account's balance as of asOf (zero: now), in
// one snapshot.
func (r *Reports) TrialBalance(ctx context.Context, asOf time.Time, opts TrialOptions) (TrialBalance, error) {
	if opts.PageSize < 0 || opts.PageSize > MaxPageSize {
		return TrialBalance{}, invalid("page_size", "must be between 0 and %d, got %d", MaxPageSize, opts.PageSize)
	}
	if opts.PageSize == 0 {
		opts.PageSize = DefaultPageSize
	}
	after := ""
	if opts.PageToken != "" {
		var pinned time.Time
		var ok bool
		if after, pinned, ok = decodeTrialToken(opts.PageToken); !ok {
			return TrialBalance{}, invalid("page_token", "is not a token this service issued")
		}
		if !pinned.IsZero() {
			// Every page is as of the first page's time, so that the pages
			// add up to its member line.
			asOf = pinned
		}
	}
	if asOf.IsZero() {
		asOf = r.clock()
	}
	asOf = dbTime(asOf)
	tb := TrialBalance{AsOf: asOf}
	readAt, err := r.db.SnapshotTx(ctx, asOf, r.clock(), func(tx pgx.Tx) error {
		tb = TrialBalance{AsOf: asOf}
		t, err := periodTotals(ctx, tx, accountGrain, time.Time{}, asOf)
		if err != nil {
			return err
		}
		if err := trialLines(ctx, tx, t, &tb); err != nil {
			return err
		}
		if opts.IndividualMembers {
			return memberLines(ctx, tx, asOf, after, opts.PageSize, &tb)
		}
		return nil
	})
	if err != nil {
		return TrialBalance{}, fmt.Errorf("trial balance as of %s: %w", fmtTime(asOf), err)
	}
	if readAt.Before(tb.AsOf) {
		// Asked of the future: it shows what was written when it was read.
		tb.AsOf = dbTime(readAt)
	}
	if tb.NextPageToken != "" {
		tb.NextPageToken = encodeTrialToken(tb.NextPageToken, tb.AsOf)
	}
	return tb, nil
}

// A trial balance's page token: the last member account listed and the
// as-of of the first page, in microseconds ("member:…:points|1764547200000000").
// A token of an older release has the account alone.

func encodeTrialToken(after string, asOf time.Time) string {
	return base64.RawURLEncoding.EncodeToString([]byte(after + "|" + strconv.FormatInt(asOf.UnixMicro(), 10)))
}

func decodeTrialToken(token string) (after string, asOf time.Time, ok bool) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || !strings.HasPrefix(string(raw), memberPrefix) {
		return "", time.Time{}, false
	}
	after, micros, pinned := strings.Cut(string(raw), "|")
	if !pinned {
		return after, time.Time{}, true
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil || us <= 0 {
		return "", time.Time{}, false
	}
	return after, time.UnixMicro(us).UTC(), true
}

// trialLines lists every account but the members one by one: each
// programme, partner or other account the ledger knows (with a zero
// balance if nothing was posted to it), any code postings name that the
// ledger does not know, and the members in aggregate.
func trialLines(ctx context.Context, tx pgx.Tx, t totals, tb *TrialBalance) error {
	byAccount := map[string]sum{MemberAggregate: {}}
	for k, s := range t {
		cur := byAccount[k.Account]
		cur.Points += s.Points
		cur.Postings += s.Postings
		byAccount[k.Account] = cur
	}
	sides := map[string]string{MemberAggregate: "credit"}
	// Both ranges of the primary key around the member codes. An account
	// created after asOf is not listed (it had no postings then): a
	// report of a past time reads the same however often it is made.
	rows, err := tx.Query(ctx, `SELECT code, normal_side FROM accounts
		WHERE (code < 'member:' OR code >= 'member;') AND created_at <= $1`, tb.AsOf)
	if err != nil {
		return fmt.Errorf("read accounts: %w", err)
	}
	var code, side string
	if _, err := pgx.ForEachRow(rows, []any{&code, &side}, func() error {
		sides[code] = side
		if _, ok := byAccount[code]; !ok {
			byAccount[code] = sum{}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("read accounts: %w", err)
	}
	for code, s := range byAccount {
		l := lineOf(code, sides[code], s.Points, s.Postings)
		tb.Lines = append(tb.Lines, l)
		tb.TotalDebit += l.Debit
		tb.TotalCredit += l.Credit
		tb.Total += s.Points
	}
	slices.SortFunc(tb.Lines, func(a, b TrialLine) int { return strings.Compare(a.Account, b.Account) })
	return nil
}

// memberLines reads one page of member accounts, in code order, each with
// the sum of its postings recorded by asOf (through postings_by_account).
func memberLines(ctx context.Context, tx pgx.Tx, asOf time.Time, after string, pageSize int, tb *TrialBalance) error {
	if after == "" {
		after = memberPrefix
	}
	// ';' follows ':' in byte order: the range is every "member:..." code.
	rows, err := tx.Query(ctx, `
		WITH page AS (
			SELECT code FROM accounts WHERE code > $1 AND code < 'member;' AND created_at <= $3 ORDER BY code LIMIT $2
		)
		SELECT page.code, COALESCE(s.points, 0)::INT8, COALESCE(s.postings, 0)::INT8
		FROM page LEFT JOIN LATERAL (
			SELECT SUM(p.amount) AS points, COUNT(*) AS postings FROM postings p
			WHERE p.account_code = page.code AND p.recorded_at <= $3
		) s ON true
		ORDER BY page.code`, after, pageSize+1, asOf)
	if err != nil {
		return fmt.Errorf("read member balances: %w", err)
	}
	var code string
	var raw, n int64
	if _, err := pgx.ForEachRow(rows, []any{&code, &raw, &n}, func() error {
		tb.Members = append(tb.Members, lineOf(code, "credit", raw, n))
		return nil
	}); err != nil {
		return fmt.Errorf("read member balances: %w", err)
	}
	if len(tb.Members) > pageSize {
		tb.Members = tb.Members[:pageSize]
		tb.NextPageToken = tb.Members[pageSize-1].Account // encoded with the as-of by TrialBalance
	}
	return nil
}
