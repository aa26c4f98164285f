package partners_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/partners"
)

// WritableAt reads in one round trip what Writable and RatesAt read one
// by one, and answers alike: the rates in force at each time, no rates
// before the first version (with the partner, for the caller to report
// later), a suspended partner and an unknown one refused.
func TestWritableAtAgreesWithWritableAndRatesAt(t *testing.T) {
	clock := testclock.New(from.Add(time.Hour))
	_, s, first := setup(t, dbtest.New(t), "0.01", "0.01", clock)
	ctx := context.Background()
	for _, at := range []time.Time{first.EffectiveAt, first.EffectiveAt.AddDate(0, 1, 0), clock.Now()} {
		p, rates, err := s.WritableAt(ctx, "P", at)
		if err != nil {
			t.Fatalf("at %s: %v", at, err)
		}
		wantPartner, err := s.Writable(ctx, "P")
		if err != nil {
			t.Fatal(err)
		}
		wantRates, err := s.RatesAt(ctx, "P", at)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, wantPartner) || rates.Version != wantRates.Version || !rates.IssueRate.Equal(wantRates.IssueRate) {
			t.Errorf("at %s: WritableAt %+v, %+v; Writable and RatesAt %+v, %+v", at, p, rates, wantPartner, wantRates)
		}
	}
	p, _, err := s.WritableAt(ctx, "P", first.EffectiveAt.Add(-time.Microsecond))
	if !errors.Is(err, partners.ErrNoRates) || p.ID != "P" {
		t.Errorf("before the first rates: %+v, %v; want the partner and ErrNoRates", p, err)
	}
	if _, _, err := s.WritableAt(ctx, "NOBODY", clock.Now()); !errors.Is(err, partners.ErrNotFound) {
		t.Errorf("an unknown partner: %v", err)
	}
	if _, err := s.SetStatus(ctx, "test", "suspend", "P", partners.StatusSuspended, "audit"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.WritableAt(ctx, "P", clock.Now()); !errors.Is(err, partners.ErrSuspended) {
		t.Errorf("a suspended partner: %v", err)
	}
}
