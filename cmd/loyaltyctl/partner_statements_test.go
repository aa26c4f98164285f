package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	"github.com/loyalty-ledger/loyalty/programme"
)

// TestReportPartnerStatements: a partner's award and redemption in June;
// the statement's CSV has one row per rate version and a total to the cent
// with who is owed, and it ties to the roll-forward (reversals: see the
// alliance end-to-end test).
func TestReportPartnerStatements(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	june := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := testclock.Ticking(june.Add(9*time.Hour), time.Second)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	member := programme.MemberAccount("100000001")
	if err := l.CreateAccounts(ctx, append(programme.ChartOfAccounts(), member)); err != nil {
		t.Fatal(err)
	}
	store := partners.New(l, clock.Now)
	one := decimal.NewFromInt(1)
	p, err := store.Create(ctx, "test", "create-P", partners.NewPartner{ID: "P", Name: "Partner", Currency: "CNY", Rates: partners.Rates{
		IssueRate: decimal.RequireFromString("0.0085"), ReimbursementRate: decimal.RequireFromString("0.0061"), EffectiveAt: june.AddDate(0, -1, 0),
		Card: partners.RateCard{PointsPerCurrencyUnit: one, TierMultiplier: map[programme.Tier]decimal.Decimal{
			programme.TierRegular: one, programme.TierSilver: one, programme.TierGold: one, programme.TierPlatinum: one}}}})
	if err != nil {
		t.Fatal(err)
	}
	rates := p.Rates[0]
	post := func(key string, kind partners.Kind, issued, redeemed int64) {
		t.Helper()
		e := partners.Entry{PartnerID: "P", PropertyID: "P-1", MemberNumber: "100000001", RateVersion: rates.Version, Kind: kind,
			PointsIssued: issued, PointsRedeemed: redeemed, Amount: partners.Amount(rates, issued, redeemed)}
		req := ledger.PostRequest{CallerID: "test", IdempotencyKey: key, Kind: ledger.KindEarn, EffectiveAt: clock.Now(),
			Postings: []ledger.Posting{{Account: member.Code, Amount: issued}, {Account: partners.IssuedAccount("P").Code, Amount: -issued}},
			Effects:  []ledger.Statement{partners.Record(e)}, Lots: ledger.LotPolicy{ExpiresAt: june.AddDate(2, 0, 0)}}
		if redeemed > 0 {
			req.Kind = ledger.KindRedeem
			req.Postings = []ledger.Posting{{Account: member.Code, Amount: -redeemed}, {Account: partners.RedeemedAccount("P").Code, Amount: redeemed}}
		}
		if _, err := l.Post(ctx, req); err != nil {
			t.Fatal(err)
		}
	}
	post("award", partners.KindAward, 1000, 0)
	post("redeem", partners.KindRedemption, 0, 400)
	// The statements for June are made on the morning of 1 July.
	clock.Advance(time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC).Sub(clock.Now()))
	url := db.Pool.Config().ConnString()
	t.Setenv("LOYALTY_DATABASE_URL", "")
	out := filepath.Join(t.TempDir(), "statements.csv")
	code, _, stderr := runCLI(t, clock.Now, "report", "partner-statements", "-from", "2026-06-01", "-to", "2026-07-01", "-o", out, "-database-url", url)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := readCSV(t, out)
	// 1000 x 0.0085 = 8.50 owed to the programme, 400 x 0.0061 = 2.44 to
	// the partner: the partner pays 6.06.
	want := []string{
		"partner,row,rate_version,issue_rate,reimbursement_rate,points_issued,points_redeemed,reversed_points_issued,reversed_points_redeemed,owed_to_programme,owed_to_partner,net,due_to,currency,owed_to_programme_exact,owed_to_partner_exact",
		"P,rate,1,0.0085,0.0061,1000,400,0,0,8.50,2.44,,,CNY,8.5,2.44",
		"P,total,,,,1000,400,0,0,8.50,2.44,6.06,programme,CNY,8.5,2.44",
	}
	var got []string
	for _, r := range rows {
		got = append(got, strings.Join(r, ","))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("CSV:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A settlement row that disagrees with the ledger: the report exits 1.
	if _, err := db.Pool.Exec(ctx, `UPDATE partner_transactions SET points_redeemed = 401 WHERE kind = 'redemption'`); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI(t, clock.Now, "report", "partner-statements", "-from", "2026-06-01", "-to", "2026-07-01", "-o", out, "-database-url", url); code != exitError || !strings.Contains(stderr, "partner:P:redeemed") {
		t.Fatalf("after tampering: exit %d, stderr %s", code, stderr)
	}
	if code, _, _ := runCLI(t, clock.Now, "report", "partner-statements", "-to", "2026-07-01", "-database-url", url); code != exitUsage {
		t.Fatalf("without -from: exit %d", code)
	}
	// An unknown -partner: exit 1, and no file is left behind.
	missing := filepath.Join(t.TempDir(), "nobody.csv")
	code, _, stderr = runCLI(t, clock.Now, "report", "partner-statements", "-from", "2026-06-01", "-to", "2026-07-01", "-partner", "NOBODY", "-o", missing, "-database-url", url)
	if _, err := os.Stat(missing); code != exitError || !strings.Contains(stderr, `no partner "NOBODY"`) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an unknown partner: exit %d, %s, the file: %v", code, stderr, err)
	}
}
