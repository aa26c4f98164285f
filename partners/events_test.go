package partners_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/database"
	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/partners"
)

// readEvents sequences the outbox and returns the events after *cursor,
// moving it past them.
func readEvents(t *testing.T, db *database.DB, clock *testclock.Clock, cursor *int64) []events.Event {
	t.Helper()
	ctx := context.Background()
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
	page, err := events.NewStore(db).List(ctx, *cursor, events.Filter{}, events.MaxListPage)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) > 0 {
		*cursor = page[len(page)-1].Position
	}
	return page
}

// TestAPartnersSuspensionAndReinstatementAreAnnounced: each change of a
// partner's status writes one event, of the partner (subject and partner
// id, so that the partner's endpoints receive it), with the reason; the
// same request again, a status the partner has already and a suspension
// of an unknown partner write none.
func TestAPartnersSuspensionAndReinstatementAreAnnounced(t *testing.T) {
	db := dbtest.New(t)
	clock := testclock.New(from.Add(time.Hour))
	_, s, _ := setup(t, db, "0.01", "0.01", clock)
	ctx := context.Background()
	var cursor int64
	readEvents(t, db, clock, &cursor)
	for _, tc := range []struct {
		name, key string
		partner   string
		status    partners.Status
		want      string // the event's type; "" none
		refused   error
	}{
		{"a suspension", "suspend", "P", partners.StatusSuspended, events.TypePartnerSuspended, nil},
		{"the suspension's retry", "suspend", "P", partners.StatusSuspended, "", nil},
		{"a suspension of a suspended partner", "suspend-again", "P", partners.StatusSuspended, "", nil},
		{"a reinstatement", "reinstate", "P", partners.StatusActive, events.TypePartnerReinstated, nil},
		{"a suspension of an unknown partner", "suspend-nobody", "NOBODY", partners.StatusSuspended, "", partners.ErrNotFound},
		{"a second suspension", "suspend-2", "P", partners.StatusSuspended, events.TypePartnerSuspended, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock.Advance(time.Minute)
			_, err := s.SetStatus(ctx, "admin", tc.key, tc.partner, tc.status, "audit: "+tc.key)
			if !errors.Is(err, tc.refused) || (tc.refused == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.refused)
			}
			got := readEvents(t, db, clock, &cursor)
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("wrote %d events (%s...)", len(got), got[0].Type)
				}
				return
			}
			if len(got) != 1 || got[0].Type != tc.want {
				t.Fatalf("events %v, want one %s", got, tc.want)
			}
			e := got[0]
			var d events.PartnerStatusData
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			if e.Subject != events.PartnerSubject("P") || e.PartnerID != "P" || d.PartnerID != "P" || d.Status != string(tc.status) ||
				d.Reason != "audit: "+tc.key || d.ChangedAt != events.Time(clock.Now()) || !e.OccurredAt.Equal(clock.Now()) {
				t.Errorf("event of %s, partner %s, data %+v", e.Subject, e.PartnerID, d)
			}
		})
	}
}
