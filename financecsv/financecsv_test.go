package financecsv

import (
	"bytes"
	"encoding/csv"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/partners"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// TestFormats: every file is CRLF with a header row; money has exactly two
// places (rounded half away from zero), rates and values per point and a
// statement's exact per-rate shares keep their decimals; a field that
// needs quoting is quoted.
func TestFormats(t *testing.T) {
	rf := finance.RollForward{Currency: "CNY", OpeningPoints: 1234567, OpeningMoney: dec("12345.67"),
		Lines: []finance.RollLine{
			{Category: finance.CategoryIssued, Detail: "stay", Dimension: "H,1", Points: 1001, Money: dec("10.015"), Postings: 2},
			{Category: finance.CategoryRedeemed, Detail: "travel_kit", Points: -400, Money: dec("-4.005"), Postings: 1},
		},
		RevaluationMoney: decimal.Zero, ClosingPoints: 1235168, ClosingMoney: dec("12351.68")}
	st := partners.Settlement{PartnerID: "P", Currency: "CNY", PointsIssued: 1001, PointsRedeemed: 400,
		OwedToProgramme: dec("8.51"), OwedToPartner: dec("2.44"), Net: dec("6.07"), DueTo: partners.DueToProgramme,
		Lines: []partners.SettlementLine{{RateVersion: 1, IssueRate: dec("0.0085"), ReimbursementRate: dec("0.0061"),
			PointsIssued: 1001, PointsRedeemed: 400, OwedToProgramme: dec("8.5085"), OwedToPartner: dec("2.44")}}}
	yen := partners.Settlement{PartnerID: "J", Currency: "JPY", PointsIssued: 1001, PointsRedeemed: 400,
		OwedToProgramme: dec("1386"), OwedToPartner: dec("360"), Net: dec("1026"), DueTo: partners.DueToProgramme,
		Lines: []partners.SettlementLine{{RateVersion: 2, IssueRate: dec("1.385"), ReimbursementRate: dec("0.9"),
			PointsIssued: 1001, PointsRedeemed: 400, OwedToProgramme: dec("1386.385"), OwedToPartner: dec("360")}}}
	values := []finance.PointValue{finance.DefaultPointValue,
		{EffectiveOn: time.Date(2026, 6, 3, 0, 0, 0, 0, time.UTC), Value: dec("0.01234567"), Currency: "CNY",
			CreatedAt: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC), CreatedBy: "key_1"}}
	tb := finance.TrialBalance{Lines: []finance.TrialLine{{Account: finance.MemberAggregate, Class: finance.ClassMember, NormalSide: "credit", Credit: 5, Balance: 5, Postings: 1},
		{Account: "programme:issued:stay", Class: finance.ClassProgramme, NormalSide: "debit", Debit: 5, Balance: 5, Postings: 1}},
		TotalDebit: 5, TotalCredit: 5}
	for _, tc := range []struct {
		name  string
		write func(*bytes.Buffer) error
		want  []string
	}{
		{"roll-forward: money to the cent, half away from zero, and exactly beside it", func(b *bytes.Buffer) error { return RollForward(b, rf) }, []string{
			"line,dimension,category,detail,points,money,currency,postings,money_exact",
			"opening,,,,1234567,12345.67,CNY,,12345.67",
			`movement,"H,1",issued,stay,1001,10.02,CNY,2,10.015`,
			"movement,,redeemed,travel_kit,-400,-4.01,CNY,1,-4.005",
			"revaluation,,,,,0.00,CNY,,0",
			"closing,,,,1235168,12351.68,CNY,,12351.68",
		}},
		{"partner statements: money to the cent, the exact shares beside it", func(b *bytes.Buffer) error { return PartnerStatements(b, []partners.Settlement{st}) }, []string{
			"partner,row,rate_version,issue_rate,reimbursement_rate,points_issued,points_redeemed,reversed_points_issued,reversed_points_redeemed,owed_to_programme,owed_to_partner,net,due_to,currency,owed_to_programme_exact,owed_to_partner_exact",
			"P,rate,1,0.0085,0.0061,1001,400,0,0,8.51,2.44,,,CNY,8.5085,2.44",
			"P,total,,,,1001,400,0,0,8.51,2.44,6.07,programme,CNY,8.5085,2.44",
		}},
		{"partner statements: money in the settlement currency's minor units (none for yen)", func(b *bytes.Buffer) error { return PartnerStatements(b, []partners.Settlement{yen}) }, []string{
			"partner,row,rate_version,issue_rate,reimbursement_rate,points_issued,points_redeemed,reversed_points_issued,reversed_points_redeemed,owed_to_programme,owed_to_partner,net,due_to,currency,owed_to_programme_exact,owed_to_partner_exact",
			"J,rate,2,1.385,0.9,1001,400,0,0,1386,360,,,JPY,1386.385,360",
			"J,total,,,,1001,400,0,0,1386,360,1026,programme,JPY,1386.385,360",
		}},
		{"point values keep every decimal", func(b *bytes.Buffer) error { return PointValues(b, values) }, []string{
			"effective_on,value_per_point,currency,created_at,created_by",
			",0.01,CNY,,default",
			"2026-06-03,0.01234567,CNY,2026-06-01T09:00:00Z,key_1",
		}},
		{"trial balance without members", func(b *bytes.Buffer) error { return TrialBalance(b, tb, nil) }, []string{
			"line,account,class,normal_side,debit,credit,balance,postings",
			"account,member:*,member,credit,0,5,5,1",
			"account,programme:issued:stay,programme,debit,5,0,5,1",
			"total,,,,5,5,0,",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(&b); err != nil {
				t.Fatal(err)
			}
			if want := strings.Join(tc.want, "\r\n") + "\r\n"; b.String() != want {
				t.Errorf("got\n%q\nwant\n%q", b.String(), want)
			}
			if _, err := csv.NewReader(&b).ReadAll(); err != nil {
				t.Errorf("does not read back as CSV: %v", err)
			}
		})
	}
}

// TestTrialBalanceMemberPages: the member rows of every page follow the
// total, in order; an error fetching a page is returned, after the rows
// written so far.
func TestTrialBalanceMemberPages(t *testing.T) {
	member := func(code string, n int64) finance.TrialLine {
		return finance.TrialLine{Account: code, Class: finance.ClassMember, NormalSide: "credit", Credit: n, Balance: n, Postings: 1}
	}
	first := finance.TrialBalance{Members: []finance.TrialLine{member("member:1", 1)}, NextPageToken: "a"}
	pages := map[string]finance.TrialBalance{
		"a": {Members: []finance.TrialLine{member("member:2", 2)}, NextPageToken: "b"},
		"b": {Members: []finance.TrialLine{member("member:3", 3)}},
	}
	var b bytes.Buffer
	err := TrialBalance(&b, first, func(token string) (finance.TrialBalance, error) { return pages[token], nil })
	if err != nil {
		t.Fatal(err)
	}
	want := "line,account,class,normal_side,debit,credit,balance,postings\r\ntotal,,,,0,0,0,\r\n" +
		"member,member:1,member,credit,0,1,1,1\r\nmember,member:2,member,credit,0,2,2,1\r\nmember,member:3,member,credit,0,3,3,1\r\n"
	if b.String() != want {
		t.Errorf("got\n%q\nwant\n%q", b.String(), want)
	}
	b.Reset()
	boom := errors.New("boom")
	err = TrialBalance(&b, first, func(string) (finance.TrialBalance, error) { return finance.TrialBalance{}, boom })
	if !errors.Is(err, boom) || !strings.HasSuffix(b.String(), "member,member:1,member,credit,0,1,1,1\r\n") {
		t.Errorf("a failing page: err %v, written %q", err, b.String())
	}
}
