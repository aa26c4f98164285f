package programme

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones the tests use, whatever the machine has installed

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/shopspring/decimal"
)

func dec(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// nights builds booked nights at the given charges; a charge prefixed with
// "+" is an unbooked extension night.
func nights(charges ...string) []Night {
	out := make([]Night, len(charges))
	for i, c := range charges {
		ext := strings.HasPrefix(c, "+")
		out[i] = Night{RoomCharge: dec(strings.TrimPrefix(c, "+")), UnbookedExtension: ext}
	}
	return out
}

func repeat(charge string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = charge
	}
	return out
}

func stay(tier Tier, ch Channel, ns ...string) Stay {
	return Stay{Currency: "CNY", Nights: nights(ns...), Channel: ch, Tier: tier}
}

func forOther(s Stay) Stay { s.BookedForOther = true; return s }

// rl is a line without its description: rule and points.
type rl struct {
	Rule   string
	Points int64
}

func ruleLines(lines []Line) []rl {
	out := make([]rl, len(lines))
	for i, l := range lines {
		out[i] = rl{l.Rule, l.Points}
	}
	return out
}

func checkLines(t *testing.T, points int64, lines []Line) {
	t.Helper()
	var sum int64
	for _, l := range lines {
		sum += l.Points
		if l.Rule == "" || l.Description == "" {
			t.Errorf("line %+v: rule and description are required", l)
		}
	}
	if sum != points {
		t.Errorf("lines sum to %d, points are %d: %+v", sum, points, lines)
	}
}

func wantFieldError(t *testing.T, err error, field string) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("err = %v (%T), want *FieldError on %q", err, err, field)
	}
	if fe.Field != field {
		t.Fatalf("FieldError.Field = %q (%v), want %q", fe.Field, fe, field)
	}
	if fe.Problem == "" {
		t.Errorf("FieldError on %q has no problem", field)
	}
}

func TestStayPoints(t *testing.T) {
	custom := Default()
	custom.PointsPerCurrencyUnit = dec("0.5")
	custom.DirectBookingBonusPoints = 100
	custom.TierMultiplier[TierGold] = dec("2")
	custom.SeniorDirectBookingExtraMultiplier = dec("0.5")

	runStayCases(t, []stayCase{
		{
			name: "regular member earns 1 point per CNY per night", stay: stay(TierRegular, ChannelFrontDesk, "388.00", "388.00"),
			points: 776, lines: []rl{{"stay_points", 776}},
		},
		{
			name: "points are rounded down per night, not on the total", stay: stay(TierRegular, ChannelFrontDesk, "388.99", "388.99"),
			points: 776, lines: []rl{{"stay_points", 776}},
		},
		{
			name: "a single night at 388.99 earns 388 base points, rounded down", stay: stay(TierRegular, ChannelFrontDesk, "388.99"),
			points: 388, lines: []rl{{"stay_points", 388}},
		},
		{
			name: "booked for someone else: an odd total is halved rounding down, 389 to 194", stay: forOther(stay(TierRegular, ChannelFrontDesk, "389")),
			points: 194, lines: []rl{{"stay_points", 389}, {"booked_for_other", -195}},
		},
		{
			name: "booked for someone else: an even total is halved exactly", stay: forOther(stay(TierSilver, ChannelCallCentre, "388")),
			points: 194, lines: []rl{{"stay_points", 388}, {"booked_for_other", -194}},
		},
		{
			name: "silver member earns 1x: no tier bonus line", stay: stay(TierSilver, ChannelCallCentre, "250.50"),
			points: 250, lines: []rl{{"stay_points", 250}},
		},
		{
			name: "gold member earns 1.2x, rounded down per night", stay: stay(TierGold, ChannelFrontDesk, "388.00", "388.00"),
			points: 930, lines: []rl{{"stay_points", 776}, {"tier_bonus", 154}}, // 2 × floor(465.6), not floor(931.2)
		},
		{
			name: "platinum member earns 1.5x, rounded down per night", stay: stay(TierPlatinum, ChannelFrontDesk, "199.00", "199.00", "199.00"),
			points: 894, lines: []rl{{"stay_points", 597}, {"tier_bonus", 297}}, // 3 × floor(298.5), not floor(895.5)
		},
		{
			name: "nights at different charges are each rounded down after the multiplier", stay: stay(TierGold, ChannelFrontDesk, "100.50", "200.99"),
			points: 361, lines: []rl{{"stay_points", 300}, {"tier_bonus", 61}}, // floor(120.6) + floor(241.188)
		},
		{
			name: "extension nights not booked in advance earn nothing", stay: stay(TierRegular, ChannelFrontDesk, "300", "+300", "+300"),
			points: 300, lines: []rl{{"stay_points", 300}, {"unbooked_extension", 0}},
		},
		{
			name: "a stay of only extension nights earns nothing, not even the direct bonus", stay: stay(TierRegular, ChannelApp, "+300"),
			points: 0, lines: []rl{{"unbooked_extension", 0}},
		},
		{
			name: "regular member booking on the app gets +77", stay: stay(TierRegular, ChannelApp, "388.00"),
			points: 465, lines: []rl{{"stay_points", 388}, {"direct_booking_bonus", 77}},
		},
		{
			name: "silver member booking by SMS gets +77", stay: stay(TierSilver, ChannelSMS, "100", "100"),
			points: 277, lines: []rl{{"stay_points", 200}, {"direct_booking_bonus", 77}},
		},
		{
			name: "the regular direct bonus is per stay, not per night", stay: stay(TierRegular, ChannelWeb, "100", "100", "100"),
			points: 377, lines: []rl{{"stay_points", 300}, {"direct_booking_bonus", 77}},
		},
		{
			name: "platinum booking on the web gets the stay points again", stay: stay(TierPlatinum, ChannelWeb, "388.00", "388.00"),
			points: 1940, lines: []rl{{"stay_points", 776}, {"tier_bonus", 388}, {"direct_booking_bonus", 776}},
		},
		{
			name: "gold booking on the app gets the base stay points again, not the tier bonus again", stay: stay(TierGold, ChannelApp, "388.00"),
			points: 853, lines: []rl{{"stay_points", 388}, {"tier_bonus", 77}, {"direct_booking_bonus", 388}},
		},
		{
			name: "the senior direct bonus counts only nights that earn", stay: stay(TierPlatinum, ChannelWeb, "200", "200", "+200"),
			points: 1000, lines: []rl{{"stay_points", 400}, {"tier_bonus", 200}, {"unbooked_extension", 0}, {"direct_booking_bonus", 400}},
		},
		{
			name: "no direct bonus when booked through the call centre", stay: stay(TierRegular, ChannelCallCentre, "388.00"),
			points: 388, lines: []rl{{"stay_points", 388}},
		},
		{
			name: "no direct bonus when booked through a partner", stay: stay(TierRegular, ChannelPartner, "100"),
			points: 100, lines: []rl{{"stay_points", 100}},
		},
		{
			name: "no direct bonus when booked through a travel agency", stay: stay(TierPlatinum, ChannelTravelAgency, "100"),
			points: 150, lines: []rl{{"stay_points", 100}, {"tier_bonus", 50}},
		},
		{
			name: "booked for someone else halves stay points but not the direct bonus", stay: forOther(stay(TierRegular, ChannelApp, "388.00", "388.00")),
			points: 465, lines: []rl{{"stay_points", 776}, {"booked_for_other", -388}, {"direct_booking_bonus", 77}},
		},
		{
			name: "booked for someone else halves the tier bonus too, rounding down", stay: forOther(stay(TierPlatinum, ChannelFrontDesk, "201")),
			points: 150, lines: []rl{{"stay_points", 201}, {"tier_bonus", 100}, {"booked_for_other", -151}}, // floor(301 × 0.5)
		},
		{
			name: "a senior member booking for someone else keeps the whole direct bonus", stay: forOther(stay(TierGold, ChannelWeb, "388.00")),
			points: 620, lines: []rl{{"stay_points", 388}, {"tier_bonus", 77}, {"booked_for_other", -233}, {"direct_booking_bonus", 388}},
		},
		{
			name: "a night at zero charge earns nothing", stay: stay(TierRegular, ChannelFrontDesk, "0"),
			points: 0, lines: []rl{{"stay_points", 0}},
		},
		{
			name: "trailing zeros past the cents are not extra decimal places", stay: stay(TierRegular, ChannelFrontDesk, "388.000"),
			points: 388, lines: []rl{{"stay_points", 388}},
		},
		{
			name: "a stay may have up to 90 nights", stay: stay(TierRegular, ChannelFrontDesk, repeat("10", 90)...),
			points: 900, lines: []rl{{"stay_points", 900}},
		},
		{
			name: "the earning rate and the regular bonus are settings", p: custom, stay: stay(TierRegular, ChannelApp, "99.00"),
			points: 149, lines: []rl{{"stay_points", 49}, {"direct_booking_bonus", 100}}, // floor(49.5) + 100
		},
		{
			name: "the tier multiplier and the senior bonus multiplier are settings", p: custom, stay: stay(TierGold, ChannelWeb, "202"),
			points: 252, lines: []rl{{"stay_points", 101}, {"tier_bonus", 101}, {"direct_booking_bonus", 50}}, // floor(101 × 0.5)
		},
	})
}

func TestStayPointsDescriptions(t *testing.T) {
	p := Default()
	tests := []struct {
		name string
		p    Programme
		stay Stay
		want []string // substrings, one per line
	}{
		{
			name: "same charge every night is described as nights at a price",
			stay: stay(TierGold, ChannelApp, "388", "388", "+388"),
			want: []string{"2 nights at 388.00 CNY, 1 point per CNY", "gold member multiplier 1.2", "1 extension night", "base points again"},
		},
		{
			name: "different charges are described by their total",
			stay: forOther(stay(TierRegular, ChannelWeb, "100.5", "200")),
			want: []string{"2 nights, 300.50 CNY in all, 1 point per CNY, rounded down per night", "booked for someone else", "not halved"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, lines, err := p.StayPoints(tc.stay)
			if err != nil {
				t.Fatal(err)
			}
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d: %+v", len(lines), len(tc.want), lines)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i].Description, w) {
					t.Errorf("line %d %q does not say %q", i, lines[i].Description, w)
				}
			}
		})
	}
}

func TestStayPointsErrors(t *testing.T) {
	noGold := Default()
	delete(noGold.TierMultiplier, TierGold)
	withCurrency := func(s Stay, c string) Stay { s.Currency = c; return s }

	tests := []struct {
		name  string
		p     Programme
		stay  Stay
		field string
	}{
		{name: "room charges must be in the programme's currency", stay: withCurrency(stay(TierRegular, ChannelWeb, "100"), "USD"), field: "currency"},
		{name: "the currency is required", stay: withCurrency(stay(TierRegular, ChannelWeb, "100"), ""), field: "currency"},
		{name: "a stay has at least one night", stay: stay(TierRegular, ChannelWeb), field: "nights"},
		{name: "a stay has at most 90 nights", stay: stay(TierRegular, ChannelWeb, repeat("10", 91)...), field: "nights"},
		{name: "a room charge is never negative", stay: stay(TierRegular, ChannelWeb, "100", "-0.01"), field: "nights[1].room_charge"},
		{name: "a room charge has at most 2 decimal places", stay: stay(TierRegular, ChannelWeb, "388.001"), field: "nights[0].room_charge"},
		{name: "an extension night's charge is checked too", stay: stay(TierRegular, ChannelWeb, "100", "+1.234"), field: "nights[1].room_charge"},
		{name: "an unknown tier is refused", stay: stay("bronze", ChannelWeb, "100"), field: "tier"},
		{name: "the tier is required", stay: stay("", ChannelWeb, "100"), field: "tier"},
		{name: "a tier without a multiplier is refused", p: noGold, stay: stay(TierGold, ChannelWeb, "100"), field: "tier"},
		{name: "an unknown channel is refused", stay: stay(TierRegular, "fax", "100"), field: "channel"},
		{name: "the channel is required", stay: stay(TierRegular, "", "100"), field: "channel"},
		{name: "charges too large for whole points are refused", stay: stay(TierRegular, ChannelWeb, "1e30"), field: "nights"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p.Currency == "" {
				p = Default()
			}
			points, lines, err := p.StayPoints(tc.stay)
			wantFieldError(t, err, tc.field)
			if points != 0 || lines != nil {
				t.Errorf("on error got points %d, lines %+v; want 0, nil", points, lines)
			}
		})
	}
}

func TestNoShowPenalty(t *testing.T) {
	tests := []struct {
		name      string
		nights    int
		sameDay   bool
		want      int64
		wantWords string
	}{
		{name: "a no-show costs 300 points per room-night", nights: 1, want: -300, wantWords: "1 room-night"},
		{name: "a three-night no-show costs 900 points", nights: 3, want: -900, wantWords: "3 room-nights"},
		{name: "a same-day booking made after the cutoff is not penalised", nights: 3, sameDay: true, want: 0, wantWords: "18:00"},
		{name: "no room-nights, nothing to penalise", nights: 0, want: 0, wantWords: "no room-nights"},
		{name: "a negative count never turns the penalty into a credit", nights: -2, want: 0, wantWords: "no room-nights"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, lines := Default().NoShowPenalty(tc.nights, tc.sameDay)
			if got != tc.want {
				t.Errorf("points = %d, want %d", got, tc.want)
			}
			checkLines(t, got, lines)
			if len(lines) != 1 || lines[0].Rule != "no_show_penalty" || !strings.Contains(lines[0].Description, tc.wantWords) {
				t.Errorf("lines = %+v, want one no_show_penalty line saying %q", lines, tc.wantWords)
			}
		})
	}
}

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("time zone %s: %v", name, err)
	}
	return loc
}

func TestSameDayLateBooking(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	ny := mustLoad(t, "America/New_York")
	tests := []struct {
		name     string
		bookedAt time.Time
		arrival  string
		loc      *time.Location
		want     bool
	}{
		{name: "a same-day booking made at 17:59 local time is penalised", bookedAt: time.Date(2025, 3, 10, 17, 59, 0, 0, sh), arrival: "2025-03-10", loc: sh, want: false},
		{name: "a same-day booking made at 18:00:00 local time is penalised: it is not after 18:00", bookedAt: time.Date(2025, 3, 10, 18, 0, 0, 0, sh), arrival: "2025-03-10", loc: sh, want: false},
		{name: "a same-day booking made a millisecond after 18:00 local time is not penalised", bookedAt: time.Date(2025, 3, 10, 18, 0, 0, 1e6, sh), arrival: "2025-03-10", loc: sh, want: true},
		{name: "a same-day booking made at 18:01 local time is not penalised", bookedAt: time.Date(2025, 3, 10, 18, 1, 0, 0, sh), arrival: "2025-03-10", loc: sh, want: true},
		{name: "a same-day booking made at 23:59 local time is not penalised", bookedAt: time.Date(2025, 3, 10, 23, 59, 0, 0, sh), arrival: "2025-03-10", loc: sh, want: true},
		{name: "a same-day booking made at 17:59:59 local time is penalised", bookedAt: time.Date(2025, 3, 10, 17, 59, 59, 0, sh), arrival: "2025-03-10", loc: sh, want: false},
		{name: "a booking given in UTC is read in the hotel's local time (10:00:01Z is 18:00:01 in Shanghai)", bookedAt: time.Date(2025, 3, 10, 10, 0, 1, 0, time.UTC), arrival: "2025-03-10", loc: sh, want: true},
		{name: "a booking at 18:00 UTC the day before is 02:00 local on the arrival day: penalised", bookedAt: time.Date(2025, 3, 9, 18, 0, 0, 0, time.UTC), arrival: "2025-03-10", loc: sh, want: false},
		{name: "a booking made the evening before arrival is penalised", bookedAt: time.Date(2025, 3, 9, 20, 0, 0, 0, sh), arrival: "2025-03-10", loc: sh, want: false},
		{name: "a booking after the arrival date is not a same-day booking", bookedAt: time.Date(2025, 3, 11, 19, 0, 0, 0, sh), arrival: "2025-03-10", loc: sh, want: false},
		{name: "on a spring-forward day, 18:00 EDT (22:00Z) is the cutoff", bookedAt: time.Date(2025, 3, 9, 22, 0, 0, 0, time.UTC), arrival: "2025-03-09", loc: ny, want: false},
		{name: "on a spring-forward day, 18:00:01 EDT (22:00:01Z) is after the cutoff", bookedAt: time.Date(2025, 3, 9, 22, 0, 1, 0, time.UTC), arrival: "2025-03-09", loc: ny, want: true},
		{name: "on a spring-forward day, 17:59 EDT (21:59Z) is before the cutoff", bookedAt: time.Date(2025, 3, 9, 21, 59, 0, 0, time.UTC), arrival: "2025-03-09", loc: ny, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Default().SameDayLateBooking(tc.bookedAt, tc.arrival, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("SameDayLateBooking(%s, %s) = %v, want %v", tc.bookedAt, tc.arrival, got, tc.want)
			}
		})
	}
}

func TestSameDayLateBookingErrors(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	at := time.Date(2025, 3, 10, 18, 0, 0, 0, sh)
	tests := []struct {
		name    string
		arrival string
		loc     *time.Location
		field   string
	}{
		{name: "the arrival date is YYYY-MM-DD", arrival: "2025-3-10", loc: sh, field: "arrival_date"},
		{name: "the arrival date is a real date", arrival: "2025-02-30", loc: sh, field: "arrival_date"},
		{name: "the property's time zone is required", arrival: "2025-03-10", loc: nil, field: "time_zone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Default().SameDayLateBooking(at, tc.arrival, tc.loc)
			wantFieldError(t, err, tc.field)
		})
	}
}

func TestFreeCancellation(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	ny := mustLoad(t, "America/New_York")
	local := func(loc *time.Location, d, h, m, s int) time.Time { return time.Date(2025, 3, d, h, m, s, 0, loc) }
	tests := []struct {
		name    string
		tier    Tier
		at      time.Time
		arrival string
		loc     *time.Location
		want    bool
	}{
		{name: "cancelling the day before arrival is free, even just before midnight", tier: TierRegular, at: local(sh, 9, 23, 59, 59), arrival: "2025-03-10", loc: sh, want: true},
		{name: "cancelling weeks before arrival is free", tier: TierRegular, at: local(sh, 1, 20, 0, 0), arrival: "2025-03-10", loc: sh, want: true},
		{name: "regular cancels free until 18:00 on the arrival day", tier: TierRegular, at: local(sh, 10, 17, 59, 59), arrival: "2025-03-10", loc: sh, want: true},
		{name: "regular cancelling at 17:59 on the arrival day is free", tier: TierRegular, at: local(sh, 10, 17, 59, 0), arrival: "2025-03-10", loc: sh, want: true},
		{name: "regular cancelling at 18:01 on the arrival day is not free", tier: TierRegular, at: local(sh, 10, 18, 1, 0), arrival: "2025-03-10", loc: sh, want: false},
		{name: "gold cancelling at 18:59 on the arrival day is free", tier: TierGold, at: local(sh, 10, 18, 59, 0), arrival: "2025-03-10", loc: sh, want: true},
		{name: "gold cancelling at 19:01 on the arrival day is not free", tier: TierGold, at: local(sh, 10, 19, 1, 0), arrival: "2025-03-10", loc: sh, want: false},
		{name: "regular cancelling at 18:00 on the arrival day is not free", tier: TierRegular, at: local(sh, 10, 18, 0, 0), arrival: "2025-03-10", loc: sh, want: false},
		{name: "silver cancels free until 18:00", tier: TierSilver, at: local(sh, 10, 17, 30, 0), arrival: "2025-03-10", loc: sh, want: true},
		{name: "silver cancelling at 18:30 is not free", tier: TierSilver, at: local(sh, 10, 18, 30, 0), arrival: "2025-03-10", loc: sh, want: false},
		{name: "gold cancels free until 19:00", tier: TierGold, at: local(sh, 10, 18, 30, 0), arrival: "2025-03-10", loc: sh, want: true},
		{name: "gold cancels free at 18:59:59", tier: TierGold, at: local(sh, 10, 18, 59, 59), arrival: "2025-03-10", loc: sh, want: true},
		{name: "gold cancelling at 19:00 is not free", tier: TierGold, at: local(sh, 10, 19, 0, 0), arrival: "2025-03-10", loc: sh, want: false},
		{name: "platinum cancels free until 19:00", tier: TierPlatinum, at: local(sh, 10, 18, 59, 0), arrival: "2025-03-10", loc: sh, want: true},
		{name: "platinum cancelling at 19:00 is not free", tier: TierPlatinum, at: local(sh, 10, 19, 0, 0), arrival: "2025-03-10", loc: sh, want: false},
		{name: "cancelling after the arrival day is not free", tier: TierPlatinum, at: local(sh, 11, 9, 0, 0), arrival: "2025-03-10", loc: sh, want: false},
		{name: "the arrival day is the hotel's local day: 16:30Z the day before is 00:30 on arrival day, free", tier: TierRegular, at: time.Date(2025, 3, 9, 16, 30, 0, 0, time.UTC), arrival: "2025-03-10", loc: sh, want: true},
		{name: "the cutoff is local: 10:00Z is 18:00 in Shanghai, not free", tier: TierRegular, at: time.Date(2025, 3, 10, 10, 0, 0, 0, time.UTC), arrival: "2025-03-10", loc: sh, want: false},
		{name: "17:00Z on the arrival date is already the next day in Shanghai, not free", tier: TierRegular, at: time.Date(2025, 3, 10, 17, 0, 0, 0, time.UTC), arrival: "2025-03-10", loc: sh, want: false},
		{name: "on a spring-forward day gold cancels free at 18:59 EDT (22:59Z)", tier: TierGold, at: time.Date(2025, 3, 9, 22, 59, 0, 0, time.UTC), arrival: "2025-03-09", loc: ny, want: true},
		{name: "on a spring-forward day gold cancelling at 19:00 EDT (23:00Z) is not free", tier: TierGold, at: time.Date(2025, 3, 9, 23, 0, 0, 0, time.UTC), arrival: "2025-03-09", loc: ny, want: false},
		{name: "on a fall-back day regular cancels free at 17:30 EST (22:30Z)", tier: TierRegular, at: time.Date(2025, 11, 2, 22, 30, 0, 0, time.UTC), arrival: "2025-11-02", loc: ny, want: true},
		{name: "on a fall-back day regular cancelling at 18:00 EST (23:00Z) is not free", tier: TierRegular, at: time.Date(2025, 11, 2, 23, 0, 0, 0, time.UTC), arrival: "2025-11-02", loc: ny, want: false},
		{name: "a cancellation in the repeated hour of a fall-back day is free", tier: TierRegular, at: time.Date(2025, 11, 2, 6, 30, 0, 0, time.UTC), arrival: "2025-11-02", loc: ny, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Default().FreeCancellation(tc.tier, tc.at, tc.arrival, tc.loc)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("FreeCancellation(%s, %s local, %s) = %v, want %v", tc.tier, tc.at.In(tc.loc), tc.arrival, got, tc.want)
			}
		})
	}
}

func TestFreeCancellationErrors(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	noGold := Default()
	delete(noGold.FreeCancellationUntil, TierGold)
	at := time.Date(2025, 3, 10, 12, 0, 0, 0, sh)
	tests := []struct {
		name    string
		p       Programme
		tier    Tier
		arrival string
		loc     *time.Location
		field   string
	}{
		{name: "an unknown tier is refused", p: Default(), tier: "bronze", arrival: "2025-03-10", loc: sh, field: "tier"},
		{name: "a tier without a cutoff is refused", p: noGold, tier: TierGold, arrival: "2025-03-10", loc: sh, field: "tier"},
		{name: "the arrival date is YYYY-MM-DD", p: Default(), tier: TierGold, arrival: "10/03/2025", loc: sh, field: "arrival_date"},
		{name: "the property's time zone is required", p: Default(), tier: TierGold, arrival: "2025-03-10", loc: nil, field: "time_zone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.p.FreeCancellation(tc.tier, at, tc.arrival, tc.loc)
			wantFieldError(t, err, tc.field)
		})
	}
}

func TestGuaranteeHold(t *testing.T) {
	tests := []struct {
		name   string
		until  Clock
		hours  int
		points int64
		field  string
	}{
		{name: "guaranteeing until 19:00 holds one hour, 500 points", until: Clock{19, 0}, hours: 1, points: 500},
		{name: "a guarantee is on the hour: 18:01 is refused", until: Clock{18, 1}, field: "hold_until"},
		{name: "a guarantee is on the hour: 20:15 is refused", until: Clock{20, 15}, field: "hold_until"},
		{name: "guaranteeing until 21:00 holds three hours", until: Clock{21, 0}, hours: 3, points: 1500},
		{name: "guaranteeing until 23:00, the latest, is allowed and holds five hours", until: Clock{23, 0}, hours: 5, points: 2500},
		{name: "a guarantee is on the hour: 22:59 is refused", until: Clock{22, 59}, field: "hold_until"},
		{name: "no guarantee is needed until 18:00: rooms are held until then anyway", until: Clock{18, 0}, field: "hold_until"},
		{name: "a guarantee before the normal hold time is refused", until: Clock{17, 0}, field: "hold_until"},
		{name: "a guarantee until 23:01, past 23:00, is refused", until: Clock{23, 1}, field: "hold_until"},
		{name: "a clock that is not a time of day is refused", until: Clock{25, 0}, field: "hold_until"},
		{name: "minutes past 59 are refused", until: Clock{20, 60}, field: "hold_until"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hours, points, err := Default().GuaranteeHold(tc.until)
			if tc.field != "" {
				wantFieldError(t, err, tc.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if hours != tc.hours || points != tc.points {
				t.Errorf("GuaranteeHold(%s) = %d h, %d points; want %d h, %d points", tc.until, hours, points, tc.hours, tc.points)
			}
		})
	}
}

func TestLateCheckoutCharge(t *testing.T) {
	free := Default()
	free.FreeLateCheckoutTiers = []Tier{TierGold, TierPlatinum}
	tests := []struct {
		name   string
		p      Programme
		hours  int
		tier   Tier
		points int64
		words  string
		field  string
	}{
		{name: "one hour of late check-out costs 500 points", hours: 1, tier: TierRegular, points: -500, words: "1 hour of late check-out, 500 points per hour"},
		{name: "six hours, the most, cost 3000 points", hours: 6, tier: TierSilver, points: -3000, words: "6 hours"},
		{name: "by default late check-out is not free for any tier", hours: 2, tier: TierPlatinum, points: -1000, words: "500 points per hour"},
		{name: "late check-out is free for a tier in the free list", p: free, hours: 2, tier: TierGold, points: 0, words: "2 hours of late check-out, free for gold members"},
		{name: "late check-out is free for every tier in the free list", p: free, hours: 6, tier: TierPlatinum, points: 0, words: "free for platinum members"},
		{name: "a tier not in the free list pays", p: free, hours: 2, tier: TierSilver, points: -1000, words: "500 points per hour"},
		{name: "zero hours is not a late check-out", hours: 0, tier: TierRegular, field: "hours"},
		{name: "negative hours are refused", hours: -1, tier: TierRegular, field: "hours"},
		{name: "more than six hours are refused", hours: 7, tier: TierRegular, field: "hours"},
		{name: "more than six hours are refused even when free", p: free, hours: 7, tier: TierGold, field: "hours"},
		{name: "an unknown tier is refused", hours: 1, tier: "bronze", field: "tier"},
		{name: "the tier is required", p: free, hours: 1, tier: "", field: "tier"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.p
			if p.Currency == "" {
				p = Default()
			}
			points, lines, err := p.LateCheckoutCharge(tc.hours, tc.tier)
			if tc.field != "" {
				wantFieldError(t, err, tc.field)
				if points != 0 || lines != nil {
					t.Errorf("on error got points %d, lines %+v; want 0, nil", points, lines)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if points != tc.points {
				t.Errorf("points = %d, want %d", points, tc.points)
			}
			checkLines(t, points, lines)
			if len(lines) != 1 || lines[0].Rule != RuleLateCheckout || lines[0].Points != tc.points || !strings.Contains(lines[0].Description, tc.words) {
				t.Errorf("lines = %+v, want one late_checkout line of %d saying %q", lines, tc.points, tc.words)
			}
		})
	}
}

func TestRewardPrice(t *testing.T) {
	tests := []struct {
		name     string
		reward   Reward
		quantity int
		points   int64
		field    string
	}{
		{name: "a free night costs 2000 points", reward: RewardFreeNight, quantity: 1, points: -2000},
		{name: "two hours of late check-out cost 1000 points", reward: RewardLateCheckoutHour, quantity: 2, points: -1000},
		{name: "a travel kit costs 400 points", reward: RewardTravelKit, quantity: 1, points: -400},
		{name: "three bedtime milks cost 600 points", reward: RewardBedtimeMilk, quantity: 3, points: -600},
		{name: "a member card costs 100 points", reward: RewardMemberCard, quantity: 1, points: -100},
		{name: "up to ten of one reward at once", reward: RewardFreeNight, quantity: 10, points: -20000},
		{name: "an unknown reward is refused", reward: "spa", quantity: 1, field: "reward"},
		{name: "the reward is required", reward: "", quantity: 1, field: "reward"},
		{name: "a quantity of zero is refused", reward: RewardTravelKit, quantity: 0, field: "quantity"},
		{name: "more than ten at once is refused", reward: RewardTravelKit, quantity: 11, field: "quantity"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			points, lines, err := Default().RewardPrice(tc.reward, tc.quantity)
			if tc.field != "" {
				wantFieldError(t, err, tc.field)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if points != tc.points {
				t.Errorf("points = %d, want %d", points, tc.points)
			}
			checkLines(t, points, lines)
			if len(lines) != 1 || lines[0].Rule != "reward" {
				t.Errorf("lines = %+v, want one reward line", lines)
			}
		})
	}
}

func TestRewardCatalogueIsASetting(t *testing.T) {
	p := Default()
	delete(p.Rewards, RewardBedtimeMilk)
	p.Rewards["spa"] = 3000
	if _, _, err := p.RewardPrice(RewardBedtimeMilk, 1); err == nil {
		t.Error("a reward removed from the catalogue is still priced")
	}
	if pts, _, err := p.RewardPrice("spa", 2); err != nil || pts != -6000 {
		t.Errorf("RewardPrice(spa, 2) = %d, %v; want -6000", pts, err)
	}
}

func TestAdoptedSuggestion(t *testing.T) {
	points, lines := Default().AdoptedSuggestion()
	if points != 50 {
		t.Errorf("an adopted suggestion earns %d, want 50", points)
	}
	checkLines(t, points, lines)
}

func TestParseClock(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Clock
		ok   bool
	}{
		{name: "HH:MM parses", in: "18:00", want: Clock{18, 0}, ok: true},
		{name: "midnight parses", in: "00:00", want: Clock{0, 0}, ok: true},
		{name: "the last minute of the day parses", in: "23:59", want: Clock{23, 59}, ok: true},
		{name: "a single-digit hour is refused", in: "9:00"},
		{name: "24:00 is refused", in: "24:00"},
		{name: "minute 60 is refused", in: "18:60"},
		{name: "seconds are refused", in: "18:00:00"},
		{name: "surrounding space is refused", in: " 18:00"},
		{name: "a missing colon is refused", in: "1800"},
		{name: "signs are refused", in: "+8:00"},
		{name: "empty is refused", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseClock(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseClock(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && (got != tc.want || got.String() != tc.in) {
				t.Errorf("ParseClock(%q) = %v (%s), want %v", tc.in, got, got, tc.want)
			}
		})
	}
}

func TestParseLocalDate(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{name: "YYYY-MM-DD parses", in: "2025-03-09", ok: true},
		{name: "a leap day parses", in: "2024-02-29", ok: true},
		{name: "a leap day of a common year is refused", in: "2025-02-29"},
		{name: "leading zeros are required", in: "2025-3-9"},
		{name: "a time after the date is refused", in: "2025-03-09T00:00"},
		{name: "other orders are refused", in: "09/03/2025"},
		{name: "empty is refused", in: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseLocalDate(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseLocalDate(%q) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && got.Format(time.DateOnly) != tc.in {
				t.Errorf("ParseLocalDate(%q) = %s", tc.in, got)
			}
		})
	}
}

func TestTiersAndChannels(t *testing.T) {
	seniors := map[Tier]bool{TierRegular: false, TierSilver: false, TierGold: true, TierPlatinum: true, "bronze": false}
	for tier, want := range seniors {
		if tier.Senior() != want {
			t.Errorf("%q.Senior() = %v, want %v", tier, !want, want)
		}
	}
	self := map[Channel]bool{
		ChannelWeb: true, ChannelApp: true, ChannelSMS: true,
		ChannelCallCentre: false, ChannelFrontDesk: false, ChannelPartner: false, ChannelTravelAgency: false, "fax": false,
	}
	for ch, want := range self {
		if ch.SelfService() != want {
			t.Errorf("%q.SelfService() = %v, want %v", ch, !want, want)
		}
	}
}

func TestDefaultIsTheDomainBrief(t *testing.T) {
	p := Default()
	eqDec := func(name string, got decimal.Decimal, want string) {
		t.Helper()
		if !got.Equal(dec(want)) {
			t.Errorf("%s = %s, want %s", name, got, want)
		}
	}
	if p.Currency != "CNY" || p.CurrencyDecimalPlaces != 2 {
		t.Errorf("currency = %s with %d places, want CNY with 2", p.Currency, p.CurrencyDecimalPlaces)
	}
	eqDec("PointsPerCurrencyUnit", p.PointsPerCurrencyUnit, "1")
	for tier, want := range map[Tier]string{TierRegular: "1", TierSilver: "1", TierGold: "1.2", TierPlatinum: "1.5"} {
		eqDec("TierMultiplier["+string(tier)+"]", p.TierMultiplier[tier], want)
	}
	eqDec("FirstStayMultiplier", p.FirstStayMultiplier, "1.5")
	eqDec("SeniorDirectBookingExtraMultiplier", p.SeniorDirectBookingExtraMultiplier, "1")
	if len(p.Promotions) != 0 || len(p.FreeLateCheckoutTiers) != 0 {
		t.Errorf("Promotions = %v, FreeLateCheckoutTiers = %v; want none by default", p.Promotions, p.FreeLateCheckoutTiers)
	}
	if err := p.Validate(); err != nil {
		t.Errorf("Default().Validate() = %v", err)
	}
	eqDec("BookedForOtherFactor", p.BookedForOtherFactor, "0.5")
	ints := map[string][2]int64{
		"DirectBookingBonusPoints":  {p.DirectBookingBonusPoints, 77},
		"NoShowPenaltyPerNight":     {p.NoShowPenaltyPerNight, 300},
		"GuaranteePointsPerHour":    {p.GuaranteePointsPerHour, 500},
		"LateCheckoutPointsPerHour": {p.LateCheckoutPointsPerHour, 500},
		"MaxLateCheckoutHours":      {int64(p.MaxLateCheckoutHours), 6},
		"MaxRewardQuantity":         {int64(p.MaxRewardQuantity), 10},
		"AdoptedSuggestionPoints":   {p.AdoptedSuggestionPoints, 50},
		"MaxNightsPerStay":          {int64(p.MaxNightsPerStay), 90},
	}
	for name, v := range ints {
		if v[0] != v[1] {
			t.Errorf("%s = %d, want %d", name, v[0], v[1])
		}
	}
	clocks := map[string][2]Clock{
		"SameDayBookingExemptAfter":      {p.SameDayBookingExemptAfter, {18, 0}},
		"GuaranteeNormalHoldUntil":       {p.GuaranteeNormalHoldUntil, {18, 0}},
		"GuaranteeLatest":                {p.GuaranteeLatest, {23, 0}},
		"FreeCancellationUntil[regular]": {p.FreeCancellationUntil[TierRegular], {18, 0}},
		"FreeCancellationUntil[silver]":  {p.FreeCancellationUntil[TierSilver], {18, 0}},
		"FreeCancellationUntil[gold]":    {p.FreeCancellationUntil[TierGold], {19, 0}},
		"FreeCancellationUntil[plat]":    {p.FreeCancellationUntil[TierPlatinum], {19, 0}},
	}
	for name, v := range clocks {
		if v[0] != v[1] {
			t.Errorf("%s = %s, want %s", name, v[0], v[1])
		}
	}
	wantRewards := map[Reward]int64{RewardFreeNight: 2000, RewardLateCheckoutHour: 500, RewardTravelKit: 400, RewardBedtimeMilk: 200, RewardMemberCard: 100}
	if len(p.Rewards) != len(wantRewards) {
		t.Errorf("Rewards = %v, want %v", p.Rewards, wantRewards)
	}
	for r, want := range wantRewards {
		if p.Rewards[r] != want {
			t.Errorf("Rewards[%s] = %d, want %d", r, p.Rewards[r], want)
		}
	}
	if p.TimeZone != "Asia/Shanghai" {
		t.Errorf("TimeZone = %q", p.TimeZone)
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil {
		t.Errorf("TimeZone %q does not load: %v", p.TimeZone, err)
	}
}

func TestDefaultReturnsFreshMaps(t *testing.T) {
	a := Default()
	a.TierMultiplier[TierGold] = dec("9")
	a.Rewards[RewardFreeNight] = 1
	a.FreeCancellationUntil[TierGold] = Clock{1, 0}
	a.Promotions = append(a.Promotions, Promotion{ID: "x"})
	a.FreeLateCheckoutTiers = append(a.FreeLateCheckoutTiers, TierGold)
	b := Default()
	if !b.TierMultiplier[TierGold].Equal(dec("1.2")) || b.Rewards[RewardFreeNight] != 2000 || b.FreeCancellationUntil[TierGold] != (Clock{19, 0}) ||
		len(b.Promotions) != 0 || len(b.FreeLateCheckoutTiers) != 0 {
		t.Error("changing one Default() changed another")
	}
}

func TestFieldErrorMessage(t *testing.T) {
	err := error(&FieldError{Field: "currency", Problem: `is "USD"`})
	if got, want := err.Error(), `programme: currency: is "USD"`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestMemberAccount(t *testing.T) {
	got := MemberAccount("100000001")
	want := ledger.Account{Code: "member:100000001:points", NormalSide: ledger.Credit, AllowNegative: false, Shards: 1, TracksLots: true}
	if got != want {
		t.Errorf("MemberAccount = %+v, want %+v", got, want)
	}
}

func TestChartOfAccounts(t *testing.T) {
	want := []struct {
		code string
		side ledger.Side
	}{
		{"programme:adjustment:debit", ledger.Credit},
		{"programme:breakage", ledger.Credit},
		{"programme:debt_written_off", ledger.Debit},
		{"programme:forfeited", ledger.Credit},
		{"programme:issued:booking_bonus", ledger.Debit},
		{"programme:issued:goodwill", ledger.Debit},
		{"programme:issued:promotion", ledger.Debit},
		{"programme:issued:stay", ledger.Debit},
		{"programme:issued:suggestion", ledger.Debit},
		{"programme:penalty:guarantee_capture", ledger.Credit},
		{"programme:penalty:late_checkout", ledger.Credit},
		{"programme:penalty:no_show", ledger.Credit},
		{"programme:redeemed:bedtime_milk", ledger.Credit},
		{"programme:redeemed:free_night", ledger.Credit},
		{"programme:redeemed:late_checkout_hour", ledger.Credit},
		{"programme:redeemed:member_card", ledger.Credit},
		{"programme:redeemed:travel_kit", ledger.Credit},
	}
	got := ChartOfAccounts()
	if len(got) != len(want) {
		t.Fatalf("%d accounts, want %d: %+v", len(got), len(want), got)
	}
	for i, a := range got {
		if a.Code != want[i].code || a.NormalSide != want[i].side {
			t.Errorf("account %d = %s (%s), want %s (%s)", i, a.Code, a.NormalSide, want[i].code, want[i].side)
		}
		if !a.AllowNegative || a.Shards != ProgrammeShards {
			t.Errorf("%s: AllowNegative %v, Shards %d; want true, %d", a.Code, a.AllowNegative, a.Shards, ProgrammeShards)
		}
	}
	if RedeemedAccount(RewardFreeNight) != "programme:redeemed:free_night" {
		t.Errorf("RedeemedAccount(free_night) = %q", RedeemedAccount(RewardFreeNight))
	}
	// Every code is one the ledger accepts.
	for _, a := range append(got, MemberAccount("100000001")) {
		if len(a.Code) > ledger.MaxAccountCodeLen || a.Shards < 1 || a.Shards > ledger.MaxShards {
			t.Errorf("%s: the ledger would refuse it", a.Code)
		}
		for _, c := range a.Code {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":._-", c)) {
				t.Errorf("%s: %q is not allowed in an account code", a.Code, c)
			}
		}
	}
}
