package programme

import (
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// sameValue compares like reflect.DeepEqual, except that decimals are equal
// when their values are (1.50 and 1.5), and nil and empty slices and maps
// are equal.
func sameValue(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == reflect.TypeFor[decimal.Decimal]() {
		return a.Interface().(decimal.Decimal).Equal(b.Interface().(decimal.Decimal))
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !sameValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	}
	return a.Interface() == b.Interface()
}

func sameProgramme(a, b Programme) bool { return sameValue(reflect.ValueOf(a), reflect.ValueOf(b)) }

// rich is a programme that uses every field, with decimals written with
// trailing zeros.
func rich() Programme {
	p := Default()
	p.TierMultiplier[TierGold] = dec("1.20")
	p.FirstStayMultiplier = dec("1.75")
	p.FreeLateCheckoutTiers = []Tier{TierPlatinum, TierGold}
	p.FreeCancellationUntil[TierPlatinum] = Clock{19, 30}
	p.Rewards["spa_day"] = 3000
	p.Promotions = []Promotion{
		{ID: "double-points-2026-12", Name: "Double points in December", StartsOn: "2026-12-01", EndsOn: "2026-12-31", Multiplier: dec("1")},
		{ID: "shanghai-app", Name: "Shanghai on the app", StartsOn: "2026-06-01", EndsOn: "2026-06-30",
			Properties: []string{"SHA-001", "SHA-002"}, Channels: []Channel{ChannelApp}, Multiplier: dec("0.50"), BonusPoints: 200},
		{ID: "welcome", Name: "Welcome bonus", StartsOn: "2026-01-01", EndsOn: "2026-01-01", BonusPoints: 100},
	}
	return p
}

func TestProgrammeJSONRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		p    Programme
		deep bool // reflect.DeepEqual holds, not only value equality
	}{
		{name: "the default programme round-trips exactly", p: Default(), deep: true},
		{name: "a programme using every field round-trips", p: rich()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := json.Marshal(tc.p)
			if err != nil {
				t.Fatal(err)
			}
			var back Programme
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", data, err)
			}
			if tc.deep && !reflect.DeepEqual(back, tc.p) {
				t.Errorf("round trip is not DeepEqual:\n got %+v\nwant %+v", back, tc.p)
			}
			if !sameProgramme(back, tc.p) {
				t.Errorf("round trip changed the programme:\n got %+v\nwant %+v", back, tc.p)
			}
			again, err := json.Marshal(back)
			if err != nil {
				t.Fatal(err)
			}
			if string(again) != string(data) {
				t.Errorf("second encoding differs:\n%s\n%s", again, data)
			}
			if err := back.Validate(); err != nil {
				t.Errorf("the decoded programme does not validate: %v", err)
			}
		})
	}
}

func TestProgrammeJSONShape(t *testing.T) {
	data, err := json.Marshal(rich())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	snake := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	if n := reflect.TypeFor[Programme]().NumField(); len(doc) != n {
		t.Errorf("%d JSON fields, Programme has %d", len(doc), n)
	}
	for k := range doc {
		if !snake.MatchString(k) {
			t.Errorf("JSON field %q is not snake_case", k)
		}
	}
	want := map[string]string{
		"currency":                      `"CNY"`,
		"points_per_currency_unit":      `"1"`,
		"tier_multiplier":               `{"gold":"1.2","platinum":"1.5","regular":"1","silver":"1"}`,
		"first_stay_multiplier":         `"1.75"`,
		"same_day_booking_exempt_after": `"18:00"`,
		"free_cancellation_until":       `{"gold":"19:00","platinum":"19:30","regular":"18:00","silver":"18:00"}`,
		"guarantee_latest":              `"23:00"`,
		"free_late_checkout_tiers":      `["platinum","gold"]`,
		"rewards":                       `{"bedtime_milk":200,"free_night":2000,"late_checkout_hour":500,"member_card":100,"spa_day":3000,"travel_kit":400}`,
		"promotions": `[{"id":"double-points-2026-12","name":"Double points in December","starts_on":"2026-12-01","ends_on":"2026-12-31","multiplier":"1"},` +
			`{"id":"shanghai-app","name":"Shanghai on the app","starts_on":"2026-06-01","ends_on":"2026-06-30","properties":["SHA-001","SHA-002"],"channels":["app"],"multiplier":"0.5","bonus_points":200},` +
			`{"id":"welcome","name":"Welcome bonus","starts_on":"2026-01-01","ends_on":"2026-01-01","bonus_points":100}]`,
		"time_zone": `"Asia/Shanghai"`,
	}
	for k, w := range want {
		if got := string(doc[k]); got != w {
			t.Errorf("%s = %s, want %s", k, got, w)
		}
	}
	// The default has empty lists, not null.
	data, _ = json.Marshal(Default())
	for _, w := range []string{`"promotions":[]`, `"free_late_checkout_tiers":[]`} {
		if !strings.Contains(string(data), w) {
			t.Errorf("Default() JSON does not contain %s: %s", w, data)
		}
	}
}

func TestClockJSON(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Clock
		ok   bool
	}{
		{name: "a clock is the string HH:MM", in: `"18:00"`, want: Clock{18, 0}, ok: true},
		{name: "the last minute of the day", in: `"23:59"`, want: Clock{23, 59}, ok: true},
		{name: "a single-digit hour is refused", in: `"9:00"`},
		{name: "24:00 is refused", in: `"24:00"`},
		{name: "seconds are refused", in: `"18:00:00"`},
		{name: "a number is refused", in: `1800`},
		{name: "an object is refused", in: `{"hour":18,"minute":0}`},
		{name: "null is refused", in: `null`},
		{name: "an escaped string is read as a string", in: `"18\u003a00"`, want: Clock{18, 0}, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var c Clock
			err := json.Unmarshal([]byte(tc.in), &c)
			if (err == nil) != tc.ok {
				t.Fatalf("Unmarshal(%s) err = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if tc.ok && c != tc.want {
				t.Errorf("Unmarshal(%s) = %v, want %v", tc.in, c, tc.want)
			}
		})
	}
	if got, err := json.Marshal(Clock{7, 5}); err != nil || string(got) != `"07:05"` {
		t.Errorf("Marshal(07:05) = %s, %v", got, err)
	}
	if _, err := json.Marshal(Clock{25, 0}); err == nil {
		t.Error("a clock that is not a time of day marshals")
	}
}

func TestParseProgramme(t *testing.T) {
	good, err := json.Marshal(rich())
	if err != nil {
		t.Fatal(err)
	}
	edit := func(f func(map[string]any)) []byte {
		var doc map[string]any
		if err := json.Unmarshal(good, &doc); err != nil {
			t.Fatal(err)
		}
		f(doc)
		out, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	tests := []struct {
		name  string
		in    []byte
		field string // a *FieldError on this field
		bad   bool   // another error
	}{
		{name: "a complete definition parses", in: good},
		{name: "a missing field is refused, not read as 0", in: edit(func(d map[string]any) { delete(d, "no_show_penalty_per_night") }), field: "no_show_penalty_per_night"},
		{name: "a null field is refused", in: edit(func(d map[string]any) { d["points_per_currency_unit"] = nil }), field: "points_per_currency_unit"},
		{name: "missing promotions are refused", in: edit(func(d map[string]any) { delete(d, "promotions") }), field: "promotions"},
		{name: "an unknown field is refused", in: edit(func(d map[string]any) { d["tier_multipliers"] = map[string]any{} }), field: "tier_multipliers"},
		{name: "an unknown field in a promotion is refused", in: edit(func(d map[string]any) { d["promotions"].([]any)[0].(map[string]any)["multipler"] = "2" }), field: "promotions[0].multipler"},
		{name: "an invalid definition is refused by Validate", in: edit(func(d map[string]any) { d["tier_multiplier"].(map[string]any)["gold"] = "-1" }), field: "tier_multiplier.gold"},
		{name: "an invalid promotion is refused by Validate", in: edit(func(d map[string]any) { d["promotions"].([]any)[2].(map[string]any)["ends_on"] = "2025-12-31" }), field: "promotions[2].ends_on"},
		{name: "a clock that is not HH:MM is refused", in: edit(func(d map[string]any) { d["guarantee_latest"] = "11pm" }), bad: true},
		{name: "a value of the wrong type is refused at its path", in: edit(func(d map[string]any) { d["direct_booking_bonus_points"] = "abc" }), field: "direct_booking_bonus_points"},
		{name: "data after the object is refused", in: append(append([]byte{}, good...), []byte(` {}`)...), bad: true},
		{name: "an array is not a definition", in: []byte(`[]`), bad: true},
		{name: "empty input is not a definition", in: []byte(``), bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProgramme(tc.in)
			switch {
			case tc.field != "":
				wantFieldError(t, err, tc.field)
			case tc.bad:
				var fe *FieldError
				if err == nil || errors.As(err, &fe) {
					t.Fatalf("err = %v, want a decoding error", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !sameProgramme(p, rich()) {
					t.Errorf("ParseProgramme = %+v", p)
				}
			}
		})
	}
}

func TestAProgrammeKeyMustBeSpelledExactly(t *testing.T) {
	good, err := json.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	// edit replaces the first old in the default definition with new.
	edit := func(old, new string) []byte {
		if !strings.Contains(string(good), old) {
			t.Fatalf("the default definition has no %s: %s", old, good)
		}
		return []byte(strings.Replace(string(good), old, new, 1))
	}
	tests := []struct {
		name    string
		in      []byte
		field   string // a *FieldError on this field; "" when it parses
		problem string // in the FieldError's Problem
		other   bool   // another error (not about keys)
	}{
		{name: "the default definition parses", in: good},
		{name: "a key written with a JSON escape is the same key", in: edit(`"currency":`, `"curr\u0065ncy":`)},
		{name: "an unknown key at the top is refused at its path, with the fields listed",
			in: edit(`{`, `{"tier_multipliers":{},`), field: "tier_multipliers", problem: "is not a field of a programme; the fields are adopted_suggestion_points, booked_for_other_factor,"},
		{name: "an unknown key in an object in a list is refused at its path",
			in: edit(`"nights":25`, `"nigths":25`), field: "tier_rules.thresholds[1].nigths", problem: "the fields are nights, points, tier"},
		{name: "a top-level key in another case is refused, not taken for the field",
			in: edit(`"expiry":`, `"Expiry":`), field: "Expiry", problem: `did you mean "expiry"?`},
		{name: "a key in all capitals is refused",
			in: edit(`"no_show_penalty_per_night":`, `"NO_SHOW_PENALTY_PER_NIGHT":`), field: "NO_SHOW_PENALTY_PER_NIGHT", problem: `did you mean "no_show_penalty_per_night"?`},
		{name: "a nested key in another case is refused",
			in: edit(`"window_months":`, `"Window_Months":`), field: "tier_rules.Window_Months", problem: `did you mean "window_months"?`},
		{name: "a key in another case in an object in a list is refused",
			in: edit(`"nights":10`, `"Nights":10`), field: "tier_rules.thresholds[0].Nights", problem: `did you mean "nights"?`},
		{name: "a top-level key given twice is refused, not the last taken",
			in: edit(`{`, `{"currency":"USD",`), field: "currency", problem: "given twice"},
		{name: "a nested key given twice is refused",
			in: edit(`"window":"rolling"`, `"window":"calendar_year","window":"rolling"`), field: "tier_rules.window", problem: "given twice"},
		{name: "a map key given twice is refused",
			in: edit(`"gold":"1.2"`, `"gold":"9","gold":"1.2"`), field: "tier_multiplier.gold", problem: "given twice"},
		{name: "a clock is a value, not an object whose keys are looked at",
			in: edit(`"guarantee_latest":"23:00"`, `"guarantee_latest":{"hour":23}`), other: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProgramme(tc.in)
			switch {
			case tc.field != "":
				wantFieldError(t, err, tc.field)
				if fe := err.(*FieldError); !strings.Contains(fe.Problem, tc.problem) {
					t.Errorf("Problem = %q, want it to contain %q", fe.Problem, tc.problem)
				}
			case tc.other:
				var fe *FieldError
				if err == nil || errors.As(err, &fe) {
					t.Fatalf("err = %v, want a decoding error", err)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(p, Default()) {
					t.Errorf("ParseProgramme = %+v, want Default()", p)
				}
			}
		})
	}
}
