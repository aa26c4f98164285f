package partners_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shopspring/decimal"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
)

// otherProcess is a second Store on the same database, with a cache of
// its own: another server of the service.
func otherProcess(db *database.DB, clock *testclock.Clock) *partners.Store {
	return partners.New(ledger.New(db, ledger.Options{Clock: clock.Now}), clock.Now)
}

// fromMemory is WritableAt with a cancelled context: it answers only what
// s remembers, since any read of the database fails.
func fromMemory(s *partners.Store, partnerID string, at time.Time) (partners.Partner, partners.Rates, error) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return s.WritableAt(ctx, partnerID, at)
}

// stillTrusted skips what follows when the machine took TrustFor or more
// since start, a read made after it: the read has run out, so nothing
// can tell whether it was remembered.
func stillTrusted(t *testing.T, start time.Time) {
	t.Helper()
	if elapsed := time.Since(start); elapsed >= partners.TrustFor {
		t.Skipf("the machine took %s, TrustFor or more, between a read and the check of what was remembered of it", elapsed)
	}
}

// TestAPartnerIsReadOncePerTrustFor: after one read, WritableAt answers
// from memory, unaware of a suspension written behind the Store's back,
// and reads the partner again once TrustFor has passed.
func TestAPartnerIsReadOncePerTrustFor(t *testing.T) {
	db := dbtest.New(t)
	clock := testclock.New(from.Add(time.Hour))
	_, s, first := setup(t, db, "0.01", "0.01", clock)
	ctx := context.Background()
	start := time.Now()
	if _, _, err := s.WritableAt(ctx, "P", clock.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE partners SET status = 'suspended' WHERE partner_id = 'P'`); err != nil {
		t.Fatal(err)
	}
	p, r, err := fromMemory(s, "P", clock.Now())
	stillTrusted(t, start)
	if err != nil || p.ID != "P" || r.Version != first.Version {
		t.Fatalf("within TrustFor of a read: %+v, %+v, %v; want the partner and its rates from memory", p, r, err)
	}
	for {
		_, _, err := s.WritableAt(ctx, "P", clock.Now())
		if errors.Is(err, partners.ErrSuspended) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed > partners.TrustFor+100*time.Millisecond {
			t.Fatalf("the partner is still taken for active %s after it was read", elapsed)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestAStatusChangeAppliesToEveryProcessOnceAcknowledged: SetStatus
// answers only after TrustFor (a replay and a status the partner has
// already too), and by then a second process, which read the partner
// before the change, applies the new status, as does the one that made it.
func TestAStatusChangeAppliesToEveryProcessOnceAcknowledged(t *testing.T) {
	db := dbtest.New(t)
	clock := testclock.New(from.Add(time.Hour))
	_, changer, _ := setup(t, db, "0.01", "0.01", clock)
	other := otherProcess(db, clock)
	ctx := context.Background()
	for _, tc := range []struct {
		name, key string
		status    partners.Status
		want      error // of WritableAt afterwards
	}{
		{"a suspension", "suspend", partners.StatusSuspended, partners.ErrSuspended},
		{"its replay", "suspend", partners.StatusSuspended, partners.ErrSuspended},
		{"a suspension of a suspended partner", "suspend-again", partners.StatusSuspended, partners.ErrSuspended},
		{"a reinstatement", "reinstate", partners.StatusActive, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []*partners.Store{changer, other} {
				if _, _, err := s.WritableAt(ctx, "P", clock.Now()); err != nil && !errors.Is(err, partners.ErrSuspended) {
					t.Fatal(err)
				}
			}
			start := time.Now()
			p, err := changer.SetStatus(ctx, "admin", tc.key, "P", tc.status, "audit")
			if err != nil || p.Status != tc.status {
				t.Fatalf("SetStatus: %+v, %v", p, err)
			}
			if elapsed := time.Since(start); elapsed < partners.TrustFor {
				t.Errorf("SetStatus answered after %s, before TrustFor (%s)", elapsed, partners.TrustFor)
			}
			for name, s := range map[string]*partners.Store{"the changing process": changer, "another process": other} {
				if _, _, err := s.WritableAt(ctx, "P", clock.Now()); !errors.Is(err, tc.want) {
					t.Errorf("%s, once SetStatus has answered: %v, want %v", name, err, tc.want)
				}
				if _, err := s.Writable(ctx, "P"); !errors.Is(err, tc.want) {
					t.Errorf("%s, Writable once SetStatus has answered: %v, want %v", name, err, tc.want)
				}
			}
		})
	}
}

// TestASuspensionAppliesAtOnceInItsProcessAndWithinTrustForInOthers: a
// SetStatus interrupted while it waits has committed; the process that
// made it refuses the partner's writes at once, another process within
// TrustFor of its last read, and a retry with the same key waits again.
func TestASuspensionAppliesAtOnceInItsProcessAndWithinTrustForInOthers(t *testing.T) {
	db := dbtest.New(t)
	clock := testclock.New(from.Add(time.Hour))
	_, changer, _ := setup(t, db, "0.01", "0.01", clock)
	other := otherProcess(db, clock)
	ctx := context.Background()
	start := time.Now()
	for _, s := range []*partners.Store{changer, other} {
		if _, _, err := s.WritableAt(ctx, "P", clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, partners.TrustFor/2)
	defer cancel()
	if _, err := changer.SetStatus(short, "admin", "suspend", "P", partners.StatusSuspended, "audit"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("SetStatus with half of TrustFor to wait: %v, want it interrupted", err)
	}
	if _, _, err := changer.WritableAt(ctx, "P", clock.Now()); !errors.Is(err, partners.ErrSuspended) {
		t.Errorf("the changing process, at once: %v", err)
	}
	for {
		_, _, err := other.WritableAt(ctx, "P", clock.Now())
		if errors.Is(err, partners.ErrSuspended) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if elapsed := time.Since(start); elapsed > partners.TrustFor+100*time.Millisecond {
			t.Fatalf("another process still accepts the partner %s after its last read", elapsed)
		}
		time.Sleep(5 * time.Millisecond)
	}
	retry := time.Now()
	if p, err := changer.SetStatus(ctx, "admin", "suspend", "P", partners.StatusSuspended, "audit"); err != nil || p.Status != partners.StatusSuspended {
		t.Fatalf("the retry: %+v, %v", p, err)
	}
	if elapsed := time.Since(retry); elapsed < partners.TrustFor {
		t.Errorf("the retry answered after %s, before TrustFor", elapsed)
	}
}

// TestNewRatesApplyFromTheirEffectiveTimeFromMemory: once SetRates has
// answered (after TrustFor), every process prices a write before the new
// version's start with the old one and from its start with the new one,
// from memory after one read.
func TestNewRatesApplyFromTheirEffectiveTimeFromMemory(t *testing.T) {
	db := dbtest.New(t)
	clock := testclock.New(from.Add(time.Hour))
	_, changer, first := setup(t, db, "0.01", "0.01", clock)
	other := otherProcess(db, clock)
	ctx := context.Background()
	for _, s := range []*partners.Store{changer, other} {
		if _, _, err := s.WritableAt(ctx, "P", clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	effectiveAt := clock.Now().Add(time.Hour)
	start := time.Now()
	v2, err := changer.SetRates(ctx, "admin", "v2", "P", partners.Rates{EffectiveAt: effectiveAt,
		IssueRate: decimal.RequireFromString("0.02"), ReimbursementRate: decimal.RequireFromString("0.02"), Card: standard()})
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed < partners.TrustFor {
		t.Errorf("SetRates answered after %s, before TrustFor", elapsed)
	}
	for _, tc := range []struct {
		name    string
		at      time.Time
		version int
	}{
		{"before the new version's start", effectiveAt.Add(-time.Microsecond), first.Version},
		{"at its start", effectiveAt, v2.Version},
		{"a year on", effectiveAt.AddDate(1, 0, 0), v2.Version},
	} {
		for name, s := range map[string]*partners.Store{"the changing process": changer, "another process": other} {
			t.Run(tc.name+" in "+name, func(t *testing.T) {
				start := time.Now()
				if _, r, err := s.WritableAt(ctx, "P", tc.at); err != nil || r.Version != tc.version {
					t.Fatalf("version %d, %v; want %d", r.Version, err, tc.version)
				}
				_, r, err := fromMemory(s, "P", tc.at)
				stillTrusted(t, start)
				wantRate := v2.IssueRate
				if tc.version == first.Version {
					wantRate = first.IssueRate
				}
				if err != nil || r.Version != tc.version || !r.IssueRate.Equal(wantRate) {
					t.Errorf("from memory: version %d (issue rate %s), %v; want %d (%s)", r.Version, r.IssueRate, err, tc.version, wantRate)
				}
			})
		}
	}
}

// TestAWriteBeforeTheOldestRememberedVersionReadsTheDatabase: a partner
// with more versions than a Store remembers (the newest 64) is priced
// right at every time: from memory from the oldest remembered version's
// start, from the database before it.
func TestAWriteBeforeTheOldestRememberedVersionReadsTheDatabase(t *testing.T) {
	db := dbtest.New(t)
	clock := testclock.New(from.Add(time.Hour))
	_, s, first := setup(t, db, "0.001", "0.001", clock)
	ctx := context.Background()
	// Versions 2 to 70, version v from v hours after from, issue rate v/1000:
	// written directly, since SetRates waits TrustFor for each.
	card, err := json.Marshal(standard())
	if err != nil {
		t.Fatal(err)
	}
	const versions = 70
	b := &pgx.Batch{}
	for v := 2; v <= versions; v++ {
		b.Queue(`INSERT INTO partner_rates (partner_id, version, effective_at, issue_rate, reimbursement_rate, rate_card, created_at, created_by)
			VALUES ('P', $1, $2, $3::DECIMAL, $3::DECIMAL, $4, $5, 'test')`,
			v, from.Add(time.Duration(v)*time.Hour), fmt.Sprintf("0.%03d", v), string(card), clock.Now())
	}
	if err := db.Pool.SendBatch(ctx, b).Close(); err != nil {
		t.Fatal(err)
	}
	oldestRemembered := versions - 64 + 1
	versionStart := func(v int) time.Time { return from.Add(time.Duration(v) * time.Hour) }
	for _, tc := range []struct {
		name       string
		at         time.Time
		version    int // 0: none in force
		fromMemory bool
	}{
		{"the newest version", versionStart(versions).AddDate(0, 1, 0), versions, true},
		{"the oldest version remembered, at its start", versionStart(oldestRemembered), oldestRemembered, true},
		{"the version before it, at its end", versionStart(oldestRemembered).Add(-time.Microsecond), oldestRemembered - 1, false},
		{"the first version", versionStart(2).Add(-time.Microsecond), first.Version, false},
		{"before the first version", first.EffectiveAt.Add(-time.Microsecond), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			p, r, err := s.WritableAt(ctx, "P", tc.at)
			if tc.version == 0 {
				if !errors.Is(err, partners.ErrNoRates) || p.ID != "P" {
					t.Errorf("%+v, %v; want the partner and ErrNoRates", p, err)
				}
			} else if err != nil || r.Version != tc.version || !r.IssueRate.Equal(decimal.New(int64(tc.version), -3)) {
				t.Errorf("version %d (issue rate %s), %v; want %d", r.Version, r.IssueRate, err, tc.version)
			}
			_, cached, err := fromMemory(s, "P", tc.at)
			if !tc.fromMemory {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("answered without the database: version %d, %v", cached.Version, err)
				}
				return
			}
			stillTrusted(t, start)
			if err != nil || cached.Version != tc.version {
				t.Errorf("from memory: version %d, %v; want %d", cached.Version, err, tc.version)
			}
		})
	}
}

// TestAnUnknownPartnerIsNotRemembered: a partner created just after a
// write found no such partner writes at once.
func TestAnUnknownPartnerIsNotRemembered(t *testing.T) {
	db := dbtest.New(t)
	clock := testclock.New(from.Add(time.Hour))
	_, s, _ := setup(t, db, "0.01", "0.01", clock)
	ctx := context.Background()
	if _, _, err := s.WritableAt(ctx, "Q", clock.Now()); !errors.Is(err, partners.ErrNotFound) {
		t.Fatalf("an unknown partner: %v", err)
	}
	if _, err := s.Writable(ctx, "Q"); !errors.Is(err, partners.ErrNotFound) {
		t.Fatalf("an unknown partner, Writable: %v", err)
	}
	if _, err := s.Create(ctx, "test", "create-Q", partners.NewPartner{ID: "Q", Name: "Q", Currency: "CNY", Rates: partners.Rates{
		IssueRate: decimal.RequireFromString("0.01"), ReimbursementRate: decimal.RequireFromString("0.01"), Card: standard()}}); err != nil {
		t.Fatal(err)
	}
	if p, r, err := s.WritableAt(ctx, "Q", clock.Now()); err != nil || p.ID != "Q" || r.Version != 1 {
		t.Errorf("just created: %+v, %+v, %v", p, r, err)
	}
}
