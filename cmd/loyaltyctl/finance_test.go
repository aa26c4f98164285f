package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
)

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// TestFinanceCommands: the jobs run, the reports write CSV that balances,
// reconcile and verify-seals pass; after a posting is changed with raw SQL
// both exit 1, and verify-seals names the day of that posting.
func TestFinanceCommands(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	clock := testclock.New(time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	member := programme.MemberAccount("100000001")
	if err := l.CreateAccounts(ctx, append(programme.ChartOfAccounts(), member)); err != nil {
		t.Fatal(err)
	}
	for i, p := range []struct {
		kind      ledger.Kind
		from, to  string
		points    int64
		nextDayIn time.Duration
	}{
		{ledger.KindEarn, programme.AccountIssuedStay, member.Code, 800, 24 * time.Hour},
		{ledger.KindRedeem, member.Code, programme.RedeemedAccount("travel_kit"), 400, 24 * time.Hour},
		{ledger.KindPenalty, member.Code, programme.AccountPenaltyNoShow, 300, 0},
	} {
		if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprint("k", i), Kind: p.kind,
			EffectiveAt: clock.Now(), Postings: []ledger.Posting{{Account: p.from, Amount: -p.points}, {Account: p.to, Amount: p.points}},
			Lots: ledger.LotPolicy{ExpiresAt: clock.Now().AddDate(2, 0, 0)}}); err != nil {
			t.Fatal(err)
		}
		clock.Advance(p.nextDayIn)
	}
	// The operator closes June on the morning of 1 July.
	clock.Advance(time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC).Sub(clock.Now()))
	url := db.Pool.Config().ConnString()
	t.Setenv("LOYALTY_DATABASE_URL", url)
	dir := t.TempDir()

	for _, args := range [][]string{{"rollup"}, {"seal"}, {"reconcile"}, {"verify-seals"}} {
		if code, _, stderr := runCLI(t, clock.Now, args...); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
	}
	trial := filepath.Join(dir, "trial.csv")
	if code, _, stderr := runCLI(t, clock.Now, "report", "trial-balance", "-as-of", "2026-06-02T12:00:00Z", "-members", "-o", trial); code != exitOK {
		t.Fatalf("trial balance: exit %d: %s", code, stderr)
	}
	got := map[string][]string{}
	for _, row := range readCSV(t, trial) {
		got[row[0]+" "+row[1]] = row
	}
	if row := got["total "]; row[6] != "0" || row[4] != "800" || row[5] != "800" {
		t.Errorf("total row %v, want debits and credits 800, total 0", row)
	}
	if row := got["member "+member.Code]; row[6] != "400" {
		t.Errorf("member row %v, want balance 400 (the no-show came later)", row)
	}
	roll := filepath.Join(dir, "roll.csv")
	if code, _, stderr := runCLI(t, clock.Now, "report", "roll-forward", "-from", "2026-06-02", "-to", "2026-07-01", "-o", roll); code != exitOK {
		t.Fatalf("roll-forward: exit %d: %s", code, stderr)
	}
	// RFC 4180: every record ends in CRLF, money has two decimal places.
	if raw, err := os.ReadFile(roll); err != nil {
		t.Fatal(err)
	} else if !strings.HasPrefix(string(raw), "line,dimension,category,detail,points,money,currency,postings,money_exact\r\nopening,,,,800,8.00,CNY,,8\r\n") ||
		strings.Count(string(raw), "\n") != strings.Count(string(raw), "\r\n") {
		t.Errorf("roll-forward CSV is not CRLF with a header:\n%q", raw)
	}
	var lines []string
	for _, row := range readCSV(t, roll)[1:] {
		lines = append(lines, strings.Join([]string{row[0], row[2], row[3], row[4], row[5]}, " "))
	}
	want := []string{"opening   800 8.00", "movement redeemed travel_kit -400 -4.00", "movement penalty no_show -300 -3.00", "revaluation    0.00", "closing   100 1.00"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("roll-forward rows\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if code, _, _ := runCLI(t, clock.Now, "report", "roll-forward", "-to", "2026-07-01", "-group-by", "hotel"); code != exitUsage {
		t.Errorf("unknown -group-by: exit %d, want %d", code, exitUsage)
	}

	// A new book value starts after today: set now for a day past, it
	// would reprice what is recorded, and is refused.
	if code, _, stderr := runCLI(t, clock.Now, "point-value", "set", "-on", "2026-06-03", "-value", "0.02"); code != exitUsage || !strings.Contains(stderr, "starts after today") {
		t.Errorf("a value from a day past: exit %d, %s; want 2", code, stderr)
	}
	// A new book value from June 3, set on June 2: the no-show is valued
	// at it, the closing too, and what was outstanding then is revalued.
	onJune2 := func() time.Time { return time.Date(2026, 6, 2, 18, 0, 0, 0, time.UTC) }
	for range 2 { // the second time is a no-op
		if code, _, stderr := runCLI(t, onJune2, "point-value", "set", "-on", "2026-06-03", "-value", "0.02"); code != exitOK {
			t.Fatalf("point-value set: exit %d: %s", code, stderr)
		}
	}
	if code, _, _ := runCLI(t, clock.Now, "point-value", "set", "-on", "2026-06-03", "-value", "0.03"); code != exitError {
		t.Errorf("another value for the same date: exit %d, want 1", code)
	}
	if code, _, _ := runCLI(t, clock.Now, "point-value", "set", "-on", "2026-06-04", "-value", "-1"); code != exitUsage {
		t.Errorf("a negative value: exit %d, want 2", code)
	}
	if code, stdout, _ := runCLI(t, clock.Now, "point-value", "list"); code != exitOK || !strings.Contains(stdout, "\r\n2026-06-03,0.02,CNY,") {
		t.Errorf("point-value list: exit %d, %q", code, stdout)
	}
	if code, _, stderr := runCLI(t, clock.Now, "report", "roll-forward", "-from", "2026-06-02", "-to", "2026-07-01", "-o", roll); code != exitOK {
		t.Fatalf("roll-forward: exit %d: %s", code, stderr)
	}
	lines = nil
	for _, row := range readCSV(t, roll)[1:] {
		lines = append(lines, strings.Join([]string{row[0], row[2], row[3], row[4], row[5]}, " "))
	}
	// 400 outstanding at the change (00:00 on 06-03) x 0.01 more.
	want = []string{"opening   800 8.00", "movement redeemed travel_kit -400 -4.00", "movement penalty no_show -300 -6.00", "revaluation    4.00", "closing   100 2.00"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("roll-forward rows after a change of value\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	if _, err := db.Pool.Exec(ctx, `UPDATE postings SET amount = -401 WHERE account_code = $1 AND amount = -400`, member.Code); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := runCLI(t, clock.Now, "verify-seals")
	if code != exitError || !strings.Contains(stdout, "seal of 2026-06-02 does not match") {
		t.Errorf("verify-seals after tampering: exit %d, %q; want 1 naming 2026-06-02", code, stdout)
	}
	code, stdout, _ = runCLI(t, clock.Now, "reconcile")
	if code != exitError || !strings.Contains(stdout, "transaction_sums_to_zero") {
		t.Errorf("reconcile after tampering: exit %d, %q; want 1 with the transaction", code, stdout)
	}
}
