package members_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	"github.com/loyalty-ledger/loyalty/tiers"
)

// newEvents sequences the outbox and returns the events after *cursor,
// moving it past them.
func (f storeFixture) newEvents(t *testing.T, cursor *int64) []events.Event {
	t.Helper()
	s := events.NewSequencer(f.db, f.clock.Now, "test")
	for {
		n, err := s.Step(f.ctx, events.MaxSequenceBatch)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	var out []events.Event
	for {
		page, err := events.NewStore(f.db).List(f.ctx, *cursor, events.Filter{}, events.MaxListPage)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
		*cursor = page[len(page)-1].Position
	}
}

func typesOf(es []events.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

const (
	privateName  = "Zhang Xiaoming"
	privateEmail = "zhang.private@example.com"
	privatePhone = "+86 139 0000 1111"
)

// TestEveryMemberFactWritesOneEvent: an enrolment, a correction of the
// profile, a closure and every kind of tier change (by hand, at review) each write
// exactly one event, with the member as subject and no partner, the data
// a consumer needs and no name, e-mail or phone number; the same request
// again writes nothing more.
func TestEveryMemberFactWritesOneEvent(t *testing.T) {
	enrollment := members.Enrollment{FullName: privateName, Email: privateEmail, Phone: privatePhone, Channel: programme.ChannelWeb, PropertyID: "SH-1"}
	for _, tc := range []struct {
		name  string
		fact  func(f storeFixture, number string) error
		want  string
		check func(t *testing.T, f storeFixture, number string, data []byte)
	}{
		{"an enrolment", nil, events.TypeMemberEnrolled, func(t *testing.T, f storeFixture, number string, data []byte) {
			var d events.MemberEnrolledData
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			if d.MemberNumber != number || d.Tier != "regular" || d.EnrolmentChannel != "web" || d.EnrolmentPropertyID != "SH-1" ||
				strings.Join(d.ContactFields, ",") != "email,phone" || d.EnrolledAt != events.Time(enrolled) {
				t.Errorf("enrolled %+v", d)
			}
		}},
		{"a correction of the profile", func(f storeFixture, number string) error {
			email, phone := "new."+privateEmail, ""
			_, err := f.store.Update(f.ctx, "member", "the-fact", number, members.Update{Email: &email, Phone: &phone})
			return err
		}, events.TypeMemberUpdated, func(t *testing.T, f storeFixture, number string, data []byte) {
			var d events.MemberUpdatedData
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			if d.MemberNumber != number || strings.Join(d.ChangedFields, ",") != "email,phone" || d.Tier != "regular" {
				t.Errorf("updated %+v", d)
			}
		}},
		{"a closure", func(f storeFixture, number string) error {
			_, err := f.store.Close(f.ctx, "admin", "the-fact", number, "the member asked")
			return err
		}, events.TypeMemberClosed, func(t *testing.T, f storeFixture, number string, data []byte) {
			var d events.MemberClosedData
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			if d.MemberNumber != number || d.ClosedAt != events.Time(f.clock.Now()) {
				t.Errorf("closed %+v", d)
			}
		}},
		{"a tier set by hand", func(f storeFixture, number string) error {
			_, err := f.store.SetManualTier(f.ctx, "admin", "the-fact", number, programme.TierGold, "compensation", time.Time{}, enrolled.AddDate(0, 6, 0))
			return err
		}, events.TypeTierChanged, func(t *testing.T, f storeFixture, number string, data []byte) {
			var d events.TierChangedData
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			if d.MemberNumber != number || d.From != "regular" || d.To != "gold" || d.Direction != "up" || d.Cause != events.TierCauseManual ||
				d.Reason != "set by hand: compensation" || d.ManualUntil != events.Time(enrolled.AddDate(0, 6, 0)) || d.TransactionID != "" {
				t.Errorf("tier change %+v", d)
			}
		}},
		{"a downgrade at review", func(f storeFixture, number string) error {
			if _, err := f.db.Pool.Exec(f.ctx, `UPDATE members SET tier = 'gold', tier_since = $2, first_stay = 'x' WHERE member_number = $1`,
				number, enrolled.AddDate(-1, 0, -1)); err != nil {
				return err
			}
			_, err := f.store.ReviewTiers(f.ctx, tiers.Default(), enrolled, 10, nil)
			return err
		}, events.TypeTierChanged, func(t *testing.T, f storeFixture, number string, data []byte) {
			var d events.TierChangedData
			if err := json.Unmarshal(data, &d); err != nil {
				t.Fatal(err)
			}
			if d.From != "gold" || d.To != "silver" || d.Direction != "down" || d.Cause != events.TierCauseReview || d.EffectiveAt != events.Time(enrolled) {
				t.Errorf("tier change %+v", d)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStoreFixture(t)
			var cursor int64
			m, err := f.store.Enroll(f.ctx, "desk", "enrol", enrollment)
			if err != nil {
				t.Fatal(err)
			}
			fact := tc.fact
			if fact == nil { // the enrolment is the fact
				fact = func(f storeFixture, number string) error {
					again, err := f.store.Enroll(f.ctx, "desk", "enrol", enrollment)
					if err == nil && again.Number != number {
						t.Fatalf("the retry enrolled %s, not %s", again.Number, number)
					}
					return err
				}
			} else {
				f.newEvents(t, &cursor) // the enrolment's
				if err := fact(f, m.Number); err != nil {
					t.Fatal(err)
				}
			}
			got := f.newEvents(t, &cursor)
			if len(got) != 1 || got[0].Type != tc.want {
				t.Fatalf("events %v, want one %s", typesOf(got), tc.want)
			}
			e := got[0]
			if e.Subject != m.Number || e.PartnerID != "" {
				t.Errorf("subject %q partner %q, want the member and no partner", e.Subject, e.PartnerID)
			}
			for _, private := range []string{privateName, privateEmail, privatePhone, "Zhang"} {
				if strings.Contains(string(e.Data), private) {
					t.Errorf("the event tells %q: %s", private, e.Data)
				}
			}
			tc.check(t, f, m.Number, e.Data)
			if err := fact(f, m.Number); err != nil {
				t.Fatalf("the retry: %v", err)
			}
			if again := f.newEvents(t, &cursor); len(again) != 0 {
				t.Fatalf("the retry wrote %v", typesOf(again))
			}
		})
	}
}

// TestARefusedMemberFactWritesNoEvent: a fact refused (by validation, for
// an unknown member, by the rules) writes no event, and one that changes
// nothing writes none either: of two decisions from the same tier, the
// second moves and announces nothing.
func TestARefusedMemberFactWritesNoEvent(t *testing.T) {
	bad := "not an address"
	same := "+86 1"
	for _, tc := range []struct {
		name    string
		fact    func(f storeFixture, number string) error
		refused bool
	}{
		{"an enrolment without a name", func(f storeFixture, _ string) error {
			_, err := f.store.Enroll(f.ctx, "desk", "enrol-bad", members.Enrollment{Phone: "+86 2", Channel: programme.ChannelApp})
			return err
		}, true},
		{"an update to a malformed e-mail", func(f storeFixture, number string) error {
			_, err := f.store.Update(f.ctx, "member", "update", number, members.Update{Email: &bad})
			return err
		}, true},
		{"an update of an unknown member", func(f storeFixture, _ string) error {
			_, err := f.store.Update(f.ctx, "member", "update", "1999999999", members.Update{Email: &bad})
			return err
		}, true},
		{"a tier set from a future time", func(f storeFixture, number string) error {
			_, err := f.store.SetManualTier(f.ctx, "admin", "tier", number, programme.TierGold, "why", enrolled.AddDate(0, 0, 1), time.Time{})
			return err
		}, true},
		{"an update that changes nothing", func(f storeFixture, number string) error {
			_, err := f.store.Update(f.ctx, "member", "update", number, members.Update{Phone: &same})
			return err
		}, false},
		{"a tier set by hand to the tier the member has", func(f storeFixture, number string) error {
			_, err := f.store.SetManualTier(f.ctx, "admin", "tier", number, programme.TierSilver, "keep", time.Time{}, time.Time{})
			return err
		}, false},
		{"a second decision from a tier the member has left", func(f storeFixture, number string) error {
			c := members.ChangeTier(number, members.TierChange{From: programme.TierRegular, To: programme.TierSilver, Reason: "first stay",
				EffectiveAt: enrolled, ChangedBy: "test", Cause: events.TierCauseStay, EventKey: "second"}, enrolled)
			_, err := f.db.Pool.Exec(f.ctx, c.Text(), c.Args...)
			return err
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newStoreFixture(t)
			m := f.enrol(t, "enrol")
			// A first decision, announced, before the cases' facts.
			c := members.ChangeTier(m.Number, members.TierChange{From: programme.TierRegular, To: programme.TierSilver, Reason: "first stay",
				EffectiveAt: enrolled, ChangedBy: "test", Cause: events.TierCauseStay, EventKey: "first"}, enrolled)
			if _, err := f.db.Pool.Exec(f.ctx, c.Text(), c.Args...); err != nil {
				t.Fatal(err)
			}
			var cursor int64
			if got := f.newEvents(t, &cursor); len(got) != 2 {
				t.Fatalf("the enrolment and the first decision wrote %v", typesOf(got))
			}
			err := tc.fact(f, m.Number)
			if tc.refused != (err != nil) {
				t.Fatalf("refused: %v, want refused %v", err, tc.refused)
			}
			if got := f.newEvents(t, &cursor); len(got) != 0 {
				t.Fatalf("wrote %v", typesOf(got))
			}
		})
	}
}
