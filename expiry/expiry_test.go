package expiry_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// An expiry and a redemption of the same member, at the same moment, in
// either order: a redemption that comes first draws the due lot (nearest
// expiry first) and the expiry takes only what is left of it (50); an
// expiry that comes first takes the whole due lot (100) and the
// redemption draws the other. Never are the same points spent and expired.
func TestExpiryRacingRedemptionsNeverTakesSpentPoints(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	asOf := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := testclock.Ticking(asOf.Add(time.Hour), time.Microsecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	const members = 40
	account := func(i int) string { return programme.MemberAccount(fmt.Sprint(1000 + i)).Code }
	for i := range members {
		if err := l.CreateAccount(ctx, programme.MemberAccount(fmt.Sprint(1000+i))); err != nil {
			t.Fatal(err)
		}
		for n, expires := range []time.Time{asOf.AddDate(0, 0, -1), asOf.AddDate(1, 0, 0)} { // one lot due, one not
			if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprintf("earn-%d-%d", i, n),
				Kind: ledger.KindEarn, EffectiveAt: asOf.AddDate(-1, 0, 0), Lots: ledger.LotPolicy{ExpiresAt: expires},
				Postings: []ledger.Posting{{Account: account(i), Amount: 100}, {Account: programme.AccountIssuedStay, Amount: -100}}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The redemptions start once the job's first batch is done: its members
	// expire first, the others race.
	var wg sync.WaitGroup
	firstBatch := make(chan struct{})
	var once sync.Once
	started := func() { once.Do(func() { close(firstBatch) }) }
	wg.Go(func() {
		defer started() // a job that fails early must not leave the test waiting
		if _, err := expiry.New(l, progs, clock.Now).Run(ctx, asOf, 7, func(expiry.Progress) { started() }); err != nil {
			t.Error(err)
		}
	})
	<-firstBatch
	for i := range members {
		wg.Go(func() {
			if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprintf("redeem-%d", i),
				Kind: ledger.KindRedeem, EffectiveAt: asOf,
				Postings: []ledger.Posting{{Account: account(i), Amount: -50}, {Account: programme.RedeemedAccount(programme.RewardTravelKit), Amount: 50}}}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// A run after both finished expires whatever the first run came too
	// early for (a redemption between its scan and its write).
	if _, err := expiry.New(l, progs, clock.Now).Run(ctx, asOf.Add(time.Second), 7, nil); err != nil {
		t.Fatal(err)
	}
	var totalExpired int64
	orders := map[int64]int{}
	for i := range members {
		b, err := l.Balance(ctx, account(i))
		if err != nil {
			t.Fatal(err)
		}
		var expired int64
		if err := db.Pool.QueryRow(ctx, `SELECT COALESCE(-SUM(p.amount), 0)::INT8 FROM postings p
			JOIN transactions t ON t.id = p.transaction_id WHERE t.kind = 'expiry' AND p.account_code = $1`, account(i)).Scan(&expired); err != nil {
			t.Fatal(err)
		}
		if (expired != 50 && expired != 100) || b.Posted+expired != 150 {
			t.Errorf("member %d: %d points expired and %d left; want 50 expired and 100 left, or 100 and 50", i, expired, b.Posted)
		}
		lots, err := l.Lots(ctx, account(i))
		if err != nil || len(lots) != 1 || lots[0].Due(asOf.Add(time.Second)) {
			t.Errorf("member %d: open lots %+v (%v), want only the lot not due", i, lots, err)
		}
		totalExpired += expired
		orders[expired]++
	}
	breakage, err := l.Balance(ctx, programme.AccountBreakage)
	if err != nil {
		t.Fatal(err)
	}
	if breakage.Posted != totalExpired {
		t.Errorf("breakage %d, want the %d points expired", breakage.Posted, totalExpired)
	}
	t.Logf("expiry first for %d members, redemption first for %d", orders[100], orders[50])
	if orders[100] < 7 {
		t.Errorf("the first batch's 7 members should have expired before any redemption")
	}
	found, err := l.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range found {
		t.Errorf("discrepancy: %s", d)
	}
}

// Points due by the time of a member's activity expired then, in the
// member's view, even when the job has not run yet: a redemption after
// they fell due spends them first (nearest expiry) but extends only the
// lots not yet due, and the job then expires what is left of the due lot.
func TestActivityAfterPointsFellDueDoesNotRescueThem(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	asOf := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	clock := testclock.New(asOf.Add(time.Hour))
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	member := programme.MemberAccount("1001").Code
	if err := l.CreateAccount(ctx, programme.MemberAccount("1001")); err != nil {
		t.Fatal(err)
	}
	due, later := asOf.AddDate(0, 0, -1), asOf.AddDate(0, 6, 0)
	for n, expires := range []time.Time{due, later} {
		if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprintf("earn-%d", n),
			Kind: ledger.KindEarn, EffectiveAt: asOf.AddDate(-2, 0, 0), Lots: ledger.LotPolicy{ExpiresAt: expires},
			Postings: []ledger.Posting{{Account: member, Amount: 100}, {Account: programme.AccountIssuedStay, Amount: -100}}}); err != nil {
			t.Fatal(err)
		}
	}
	extendTo := asOf.AddDate(2, 0, 0)
	if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "redeem", Kind: ledger.KindRedeem,
		EffectiveAt: asOf, Lots: ledger.LotPolicy{ExtendTo: extendTo},
		Postings: []ledger.Posting{{Account: member, Amount: -30}, {Account: programme.RedeemedAccount(programme.RewardTravelKit), Amount: 30}}}); err != nil {
		t.Fatal(err)
	}
	lots, err := l.Lots(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if len(lots) != 2 || !lots[0].ExpiresAt.Equal(due) || lots[0].Open != 70 || !lots[1].ExpiresAt.Equal(extendTo) || lots[1].Open != 100 {
		t.Fatalf("lots after the redemption: %+v; want the due lot's 70 still due %s and the other extended to %s", lots, due, extendTo)
	}
	if _, err := expiry.New(l, progs, clock.Now).Run(ctx, asOf, 100, nil); err != nil {
		t.Fatal(err)
	}
	b, err := l.Balance(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if b.Posted != 100 {
		t.Fatalf("balance %d after the job, want 100: the due lot's 70 expired", b.Posted)
	}
}

// The books date an expiry on the day of its as-of, in the programme's
// time zone, the date members were told: the job records it only while
// that day lasts, so the roll-forward of that day shows it, and the trial
// balance and the seals (which count by recorded_at too) agree. An as-of
// whose day has ended is refused, and a day that ends during a run stops
// the run; the members left expire with the next day's run, on its books.
func TestAnExpiryIsBookedOnTheDayOfItsAsOf(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	asOf := time.Date(2026, 11, 27, 0, 0, 0, 0, shanghai) // the default programme's zone
	nextDay := asOf.AddDate(0, 0, 1)
	clock := testclock.New(asOf.AddDate(0, 0, -30))
	l := ledger.New(db, ledger.Options{Clock: clock.Now})
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	const members, pointsEach = 3, 100
	for i := range members {
		number := fmt.Sprint(1001 + i)
		if err := l.CreateAccount(ctx, programme.MemberAccount(number)); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "earn-" + number,
			Kind: ledger.KindEarn, EffectiveAt: clock.Now(), Lots: ledger.LotPolicy{ExpiresAt: asOf},
			Postings: []ledger.Posting{{Account: programme.MemberAccount(number).Code, Amount: pointsEach}, {Account: programme.AccountIssuedStay, Amount: -pointsEach}}}); err != nil {
			t.Fatal(err)
		}
	}
	job := expiry.New(l, progs, clock.Now)
	breakage := func() int64 {
		t.Helper()
		b, err := l.Balance(ctx, programme.AccountBreakage)
		if err != nil {
			t.Fatal(err)
		}
		return b.Posted
	}

	for _, tc := range []struct {
		rule string
		now  time.Time
	}{
		{"an as-of whose day has ended is refused", nextDay.Add(10 * time.Hour)},
		{"an as-of days ago is refused", asOf.AddDate(0, 0, 9)},
		{"an as-of at the very instant its day begins is refused (that instant closes the day before)", asOf},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			clock.Set(tc.now)
			_, err := job.Run(ctx, asOf, 10, nil)
			var fe *ledger.FieldError
			if !errors.As(err, &fe) || fe.Field != "as_of" {
				t.Fatalf("run as of %s at %s: %v, want a FieldError on as_of", asOf, tc.now, err)
			}
			if got := breakage(); got != 0 {
				t.Fatalf("breakage %d after a refused run, want 0", got)
			}
		})
	}

	// On its day: the first batch (one member) is booked that day; then the
	// day ends during the run, which stops.
	clock.Set(asOf.Add(23*time.Hour + 59*time.Minute))
	_, err = job.Run(ctx, asOf, 1, func(p expiry.Progress) { clock.Set(nextDay.Add(time.Minute)) })
	if !errors.Is(err, ledger.ErrOutsideBookingDay) {
		t.Fatalf("a run whose day ends after its first batch: %v, want ErrOutsideBookingDay", err)
	}
	if got := breakage(); got != pointsEach {
		t.Fatalf("breakage %d after the day ended mid-run, want the first member's %d", got, pointsEach)
	}
	// The next day's run expires the others, on the next day's books.
	today, err := job.Today(ctx)
	if err != nil || !today.Equal(nextDay) {
		t.Fatalf("today's as-of %s, %v; want %s", today, err, nextDay)
	}
	if p, err := job.Run(ctx, today, 10, nil); err != nil || p.Expired != members-1 {
		t.Fatalf("the next day's run: %+v, %v; want %d members expired", p, err, members-1)
	}

	// Finance, before and after the days are rolled up and sealed.
	reports := finance.New(l, finance.Options{Clock: clock.Now})
	expiredOn := func(day time.Time) int64 {
		t.Helper()
		rf, err := reports.RollForward(ctx, day, day.AddDate(0, 0, 1), finance.GroupBySource)
		if err != nil {
			t.Fatal(err)
		}
		if !rf.Balanced {
			t.Fatalf("roll-forward of %s not balanced: %+v", day, rf)
		}
		var expired int64
		for _, line := range rf.Lines {
			if line.Category == "expired" {
				expired += line.Points
			}
		}
		return expired
	}
	breakageAt := func(at time.Time) int64 {
		t.Helper()
		tb, err := reports.TrialBalance(ctx, at, finance.TrialOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range tb.Lines {
			if line.Account == programme.AccountBreakage {
				return line.Balance
			}
		}
		return 0
	}
	check := func(when string) {
		t.Helper()
		if got := expiredOn(asOf); got != -pointsEach {
			t.Errorf("%s: the roll-forward of the as-of's day, %s, shows %d expired; want %d", when, asOf.Format(time.DateOnly), got, -pointsEach)
		}
		if got := expiredOn(nextDay); got != -(members-1)*pointsEach {
			t.Errorf("%s: the roll-forward of the next day shows %d expired; want %d", when, got, -(members-1)*pointsEach)
		}
		if got := expiredOn(asOf.AddDate(0, 0, -1)); got != 0 {
			t.Errorf("%s: the day before the as-of shows %d expired; want 0", when, got)
		}
		if got := breakageAt(nextDay); got != pointsEach {
			t.Errorf("%s: trial balance breakage at the end of the as-of's day %d; want %d", when, got, pointsEach)
		}
	}
	check("open days")
	clock.Set(nextDay.AddDate(0, 0, 2))
	for _, step := range []func(context.Context) (finance.JobProgress, error){reports.RollUp, reports.SealDays} {
		if _, err := step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	check("rolled up and sealed")
	if c, err := reports.VerifySeals(ctx); err != nil || !c.OK() || c.Checked == 0 {
		t.Fatalf("seals: %+v, %v", c, err)
	}
	if rec, err := reports.Reconcile(ctx); err != nil || !rec.OK() {
		t.Fatalf("reconcile: %+v, %v", rec, err)
	}
}
