package programmes_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/dbtest"
	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/internal/testclock"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/programmes"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// TestAPublishedVersionIsAnnounced: publishing a version writes one
// event, of the programme, with its number and when it takes effect; the
// same request again and a refused version write none.
func TestAPublishedVersionIsAnnounced(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	clock := testclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	l := ledger.New(db, ledger.Options{Clock: clock.Now, Outbox: events.OfTransaction})
	s := programmes.New(l, clock.Now)
	if err := s.EnsureDefault(ctx); err != nil {
		t.Fatal(err)
	}
	var cursor int64
	read := func() []events.Event {
		t.Helper()
		seq := events.NewSequencer(db, clock.Now, "test")
		for {
			n, err := seq.Step(ctx, events.MaxSequenceBatch)
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
	if got := read(); len(got) != 0 {
		t.Fatalf("the shipped default wrote %d events: it is not announced", len(got))
	}
	effective := clock.Now().AddDate(0, 1, 0)
	badZone := programme.Default()
	badZone.TimeZone = "Mars/Olympus"
	for _, tc := range []struct {
		name, key string
		p         programme.Programme
		at        time.Time
		announced bool
	}{
		{"a new version", "publish", programme.Default(), effective, true},
		{"its retry", "publish", programme.Default(), effective, false},
		{"a version in an unknown time zone", "publish-bad", badZone, effective.AddDate(0, 1, 0), false},
		{"a version that starts in the past", "publish-past", programme.Default(), clock.Now().Add(-time.Hour), false},
		{"a version that starts before the last", "publish-before", programme.Default(), effective.Add(-time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := s.Publish(ctx, "admin", tc.key, tc.at, tc.p)
			got := read()
			if !tc.announced {
				if len(got) != 0 {
					t.Fatalf("wrote %d events (refused: %v)", len(got), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 1 || got[0].Type != events.TypeProgrammePublished || got[0].Subject != events.SubjectProgramme || got[0].PartnerID != "" {
				t.Fatalf("events %+v, want one %s of the programme", got, events.TypeProgrammePublished)
			}
			var d events.ProgrammePublishedData
			if err := json.Unmarshal(got[0].Data, &d); err != nil {
				t.Fatal(err)
			}
			want := events.ProgrammePublishedData{Version: v.Number, EffectiveAt: events.Time(effective), PublishedAt: events.Time(clock.Now()),
				TimeZone: "Asia/Shanghai"}
			if d != want || v.Number != 2 {
				t.Errorf("data %+v, want %+v", d, want)
			}
		})
	}
}
