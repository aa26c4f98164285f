package expiry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/expiry"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

// TestPointsExpiringNoticesOncePerMemberAndDate: a member whose lots
// expire within 30 days hears how many points and when, from the lots
// (those due already are the expiry run's, those later not yet); others
// hear nothing. A second run on the same date, a run that lost its
// checkpoint and two runs at once write each notice once; the next date
// writes new ones.
func TestPointsExpiringNoticesOncePerMemberAndDate(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	asOf := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) // 08:00 in Shanghai
	clock := testclock.Ticking(asOf.Add(time.Hour), time.Microsecond)
	l := ledger.New(db, ledger.Options{Clock: clock.Now, Outbox: events.OfTransaction})
	progs := programmes.New(l, clock.Now)
	if err := progs.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.CreateAccounts(ctx, programme.ChartOfAccounts()); err != nil {
		t.Fatal(err)
	}
	earn := func(member string, points int64, expires time.Time) {
		t.Helper()
		account := programme.MemberAccount(member)
		if err := l.CreateAccount(ctx, account); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: fmt.Sprint("earn-", member, "-", expires.Unix()),
			Kind: ledger.KindEarn, EffectiveAt: asOf.AddDate(-1, 0, 0), Lots: ledger.LotPolicy{ExpiresAt: expires},
			Postings: []ledger.Posting{{Account: account.Code, Amount: points}, {Account: programme.AccountIssuedStay, Amount: -points}}}); err != nil {
			t.Fatal(err)
		}
	}
	soon, later, due := "1000000001", "1000000002", "1000000003"
	earn(soon, 100, asOf.AddDate(0, 0, 10))
	earn(later, 100, asOf.AddDate(0, 0, 45))
	earn(due, 100, asOf.AddDate(0, 0, -1))
	// soon's second lot, in the window too, and a third after it.
	if _, err := l.Post(ctx, ledger.PostRequest{CallerID: "test", IdempotencyKey: "earn-soon-2", Kind: ledger.KindEarn, EffectiveAt: asOf.AddDate(-1, 0, 0),
		Lots:     ledger.LotPolicy{ExpiresAt: asOf.AddDate(0, 0, 20)},
		Postings: []ledger.Posting{{Account: programme.MemberAccount(soon).Code, Amount: 50}, {Account: programme.AccountIssuedStay, Amount: -50}}}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // members with nothing expiring at all
		earn(fmt.Sprint(2000000000+i), 10, asOf.AddDate(2, 0, 0))
	}

	var cursor int64
	newEvents := func() []events.Event {
		s := events.NewSequencer(db, clock.Now, "test")
		for {
			n, err := s.Step(ctx, events.MaxSequenceBatch)
			if err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
		}
		page, err := events.NewStore(db).List(ctx, cursor, events.Filter{}, events.MaxListPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 0 {
			cursor = page[len(page)-1].Position
		}
		return page
	}
	newEvents() // the earnings'
	job := expiry.New(l, progs, clock.Now)
	run := func(at time.Time) expiry.NoticeProgress {
		t.Helper()
		p, err := job.Notices(ctx, at, 2, nil)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	notices := func(date string) map[string]events.PointsExpiringData {
		t.Helper()
		out := map[string]events.PointsExpiringData{}
		for _, e := range newEvents() {
			var d events.PointsExpiringData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if e.Type != events.TypePointsExpiring || e.Subject != d.MemberNumber || d.NoticeDate != date {
				t.Fatalf("event %s of %s: %+v", e.Type, e.Subject, d)
			}
			if _, twice := out[d.MemberNumber]; twice {
				t.Fatalf("two notices to %s on %s", d.MemberNumber, date)
			}
			out[d.MemberNumber] = d
		}
		return out
	}

	if p := run(asOf); !p.Done || p.Noticed != 1 || p.Points != 150 || p.Date != "2026-06-01" {
		t.Fatalf("progress %+v", p)
	}
	first := notices("2026-06-01")
	want := events.PointsExpiringData{MemberNumber: soon, NoticeDate: "2026-06-01", Points: 150,
		FirstExpiresAt: events.Time(asOf.AddDate(0, 0, 10)), Until: events.Time(asOf.AddDate(0, 0, 30)),
		Lots: []events.ExpiringLot{{Points: 100, ExpiresAt: events.Time(asOf.AddDate(0, 0, 10))}, {Points: 50, ExpiresAt: events.Time(asOf.AddDate(0, 0, 20))}}}
	if len(first) != 1 || fmt.Sprint(first[soon]) != fmt.Sprint(want) {
		t.Fatalf("notices %+v, want only\n%+v", first, want)
	}

	run(asOf.Add(time.Hour))
	for range 2 {
		if _, err := db.Pool.Exec(ctx, `DELETE FROM job_checkpoints WHERE job LIKE 'points-expiring-notices:%'`); err != nil {
			t.Fatal(err)
		}
		run(asOf)
	}
	if again := notices("2026-06-01"); len(again) != 0 {
		t.Fatalf("notices written again on the same date: %v", again)
	}

	next := asOf.AddDate(0, 0, 1)
	clock.Advance(24 * time.Hour)
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := job.Notices(ctx, next, 2, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if second := notices("2026-06-02"); len(second) != 1 || second[soon].Points != 150 {
		t.Fatalf("notices of the next date: %v", second)
	}
}
