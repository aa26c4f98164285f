package programme

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// allTiers are the tiers, lowest first.
var allTiers = []Tier{TierRegular, TierSilver, TierGold, TierPlatinum}

// MaxCurrencyDecimalPlaces is the most decimal places a currency may have.
const MaxCurrencyDecimalPlaces = 8

// MaxRewardNameLen is the longest reward name: it becomes part of an
// account code (RedeemedAccount).
const MaxRewardNameLen = 64

// MaxPropertyIDLen is the longest property id a promotion may name.
const MaxPropertyIDLen = 64

// Validate checks that the programme is complete and sane, and returns the
// first problem found as a *FieldError whose Field is the JSON path of the
// offending value, e.g. "tier_multiplier.gold" or
// "promotions[2].multiplier"; nil when there is none. Fields are checked
// in the order they are declared, tiers lowest first, map keys in order.
//
// It checks: currency is 3 upper-case letters and its decimal places
// 0..MaxCurrencyDecimalPlaces; every rate and multiplier is non-negative,
// FirstStayMultiplier is at least 1 (1 is no bonus; below 1 would take
// points away) and BookedForOtherFactor at most 1; every tier has a tier
// multiplier and a free-cancellation time, and no unknown tier appears;
// every points amount is non-negative; every clock is a time of day and
// GuaranteeNormalHoldUntil is before GuaranteeLatest; every limit is > 0;
// every reward has a name of 1..MaxRewardNameLen characters of a-z, 0-9
// and "_" and a price > 0; FreeLateCheckoutTiers are known tiers, each
// once; every promotion is valid (see below); the time zone is named.
// Whether the time zone exists is not checked here: loading it is the
// caller's job.
//
// A promotion is valid when its ID is 1..MaxPromotionIDLen characters of
// a-z, 0-9 and "-" and no other promotion has it; it has a name;
// StartsOn and EndsOn are YYYY-MM-DD dates with StartsOn ≤ EndsOn;
// Multiplier and BonusPoints are ≥ 0 and at least one is > 0; its
// properties are 1..MaxPropertyIDLen printable ASCII characters without
// spaces, each once; its channels are known, each once.
func (p Programme) Validate() error {
	if err := p.validate(); err != nil {
		return err
	}
	if err := p.TierRules.validate(); err != nil {
		return err
	}
	if err := p.Expiry.validate(); err != nil {
		return err
	}
	if err := nonNegative("partner_max_points_per_unit", p.PartnerMaxPointsPerUnit); err != nil {
		return err
	}
	return nil
}

func (r TierRules) validate() *FieldError {
	rank := func(t Tier) int { return slices.Index(allTiers, t) }
	if rank(r.AfterFirstStay) < 0 {
		return fieldErr("tier_rules.after_first_stay", "unknown tier %q", r.AfterFirstStay)
	}
	last := rank(r.AfterFirstStay)
	for i, th := range r.Thresholds {
		at := fmt.Sprintf("tier_rules.thresholds[%d]", i)
		if rank(th.Tier) <= last {
			return fieldErr(at+".tier", "%q must be a known tier above the previous one", th.Tier)
		}
		last = rank(th.Tier)
		if th.Nights < 1 || th.Points < 1 {
			return fieldErr(at, "nights and points must both be positive")
		}
		// A higher tier asks for more: below the tier beneath, a member
		// would skip that tier for this one.
		if i > 0 {
			below := r.Thresholds[i-1]
			if th.Nights < below.Nights {
				return fieldErr(at+".nights", "is %d, below %s's %d: a higher tier needs at least as much", th.Nights, below.Tier, below.Nights)
			}
			if th.Points < below.Points {
				return fieldErr(at+".points", "is %d, below %s's %d: a higher tier needs at least as much", th.Points, below.Tier, below.Points)
			}
		}
	}
	if r.Window != "rolling" && r.Window != "calendar_year" {
		return fieldErr("tier_rules.window", "is %q, want rolling or calendar_year", r.Window)
	}
	if r.WindowMonths < 1 || r.WindowMonths > 60 {
		return fieldErr("tier_rules.window_months", "is %d, must be 1 to 60", r.WindowMonths)
	}
	if r.ReviewMonths < 1 || r.ReviewMonths > 60 {
		return fieldErr("tier_rules.review_months", "is %d, must be 1 to 60", r.ReviewMonths)
	}
	return nil
}

func (p Programme) validate() *FieldError {
	if len(p.Currency) != 3 || strings.ContainsFunc(p.Currency, func(r rune) bool { return r < 'A' || r > 'Z' }) {
		return fieldErr("currency", "is %q, want an ISO code of 3 upper-case letters such as CNY", p.Currency)
	}
	if p.CurrencyDecimalPlaces < 0 || p.CurrencyDecimalPlaces > MaxCurrencyDecimalPlaces {
		return fieldErr("currency_decimal_places", "is %d, must be 0 to %d", p.CurrencyDecimalPlaces, MaxCurrencyDecimalPlaces)
	}
	if err := nonNegative("points_per_currency_unit", p.PointsPerCurrencyUnit); err != nil {
		return err
	}
	for _, t := range allTiers {
		m, ok := p.TierMultiplier[t]
		if !ok {
			return fieldErr("tier_multiplier."+string(t), "is missing: every tier has a multiplier")
		}
		if err := nonNegative("tier_multiplier."+string(t), m); err != nil {
			return err
		}
	}
	if err := unknownTierKey("tier_multiplier", p.TierMultiplier); err != nil {
		return err
	}
	if p.FirstStayMultiplier.LessThan(decimal.NewFromInt(1)) {
		return fieldErr("first_stay_multiplier", "is %s, must be at least 1 (1 is no first-stay bonus)", p.FirstStayMultiplier.String())
	}
	if err := nonNegativeInt("direct_booking_bonus_points", p.DirectBookingBonusPoints); err != nil {
		return err
	}
	if err := nonNegative("senior_direct_booking_extra_multiplier", p.SeniorDirectBookingExtraMultiplier); err != nil {
		return err
	}
	if err := nonNegative("booked_for_other_factor", p.BookedForOtherFactor); err != nil {
		return err
	}
	if p.BookedForOtherFactor.GreaterThan(decimal.NewFromInt(1)) {
		return fieldErr("booked_for_other_factor", "is %s, must be at most 1: booking for someone else never earns more", p.BookedForOtherFactor.String())
	}
	if err := p.validatePromotions(); err != nil {
		return err
	}
	if err := nonNegativeInt("no_show_penalty_per_night", p.NoShowPenaltyPerNight); err != nil {
		return err
	}
	if err := validClock("same_day_booking_exempt_after", p.SameDayBookingExemptAfter); err != nil {
		return err
	}
	for _, t := range allTiers {
		c, ok := p.FreeCancellationUntil[t]
		if !ok {
			return fieldErr("free_cancellation_until."+string(t), "is missing: every tier has a free-cancellation time")
		}
		if err := validClock("free_cancellation_until."+string(t), c); err != nil {
			return err
		}
	}
	if err := unknownTierKey("free_cancellation_until", p.FreeCancellationUntil); err != nil {
		return err
	}
	if err := validClock("guarantee_normal_hold_until", p.GuaranteeNormalHoldUntil); err != nil {
		return err
	}
	if err := validClock("guarantee_latest", p.GuaranteeLatest); err != nil {
		return err
	}
	if p.GuaranteeNormalHoldUntil.minutes() >= p.GuaranteeLatest.minutes() {
		return fieldErr("guarantee_latest", "is %s, must be after guarantee_normal_hold_until %s",
			p.GuaranteeLatest, p.GuaranteeNormalHoldUntil)
	}
	if err := nonNegativeInt("guarantee_points_per_hour", p.GuaranteePointsPerHour); err != nil {
		return err
	}
	if err := nonNegativeInt("late_checkout_points_per_hour", p.LateCheckoutPointsPerHour); err != nil {
		return err
	}
	if err := positive("max_late_checkout_hours", p.MaxLateCheckoutHours); err != nil {
		return err
	}
	for i, t := range p.FreeLateCheckoutTiers {
		field := fmt.Sprintf("free_late_checkout_tiers[%d]", i)
		if !t.known() {
			return fieldErr(field, "unknown tier %q; want one of regular, silver, gold, platinum", t)
		}
		if slices.Contains(p.FreeLateCheckoutTiers[:i], t) {
			return fieldErr(field, "tier %q is listed twice", t)
		}
	}
	for _, r := range slices.Sorted(maps.Keys(p.Rewards)) {
		field := "rewards." + string(r)
		if !validName(string(r), MaxRewardNameLen, "abcdefghijklmnopqrstuvwxyz0123456789_") {
			return fieldErr(field, "a reward is named by 1 to %d characters of a-z, 0-9 and _", MaxRewardNameLen)
		}
		if p.Rewards[r] <= 0 {
			return fieldErr(field, "costs %d points, must be more than 0", p.Rewards[r])
		}
	}
	if err := positive("max_reward_quantity", p.MaxRewardQuantity); err != nil {
		return err
	}
	if err := nonNegativeInt("adopted_suggestion_points", p.AdoptedSuggestionPoints); err != nil {
		return err
	}
	if strings.TrimSpace(p.TimeZone) == "" {
		return fieldErr("time_zone", "is required: the IANA zone of a property that names none, such as Asia/Shanghai")
	}
	if _, err := time.LoadLocation(p.TimeZone); err != nil {
		return fieldErr("time_zone", "%q is not an IANA time zone such as Asia/Shanghai", p.TimeZone)
	}
	if err := positive("max_nights_per_stay", p.MaxNightsPerStay); err != nil {
		return err
	}
	return nil
}

func (p Programme) validatePromotions() *FieldError {
	for i, pr := range p.Promotions {
		at := func(field string) string { return fmt.Sprintf("promotions[%d].%s", i, field) }
		if !validName(pr.ID, MaxPromotionIDLen, "abcdefghijklmnopqrstuvwxyz0123456789-") {
			return fieldErr(at("id"), "is %q, want 1 to %d characters of a-z, 0-9 and -", pr.ID, MaxPromotionIDLen)
		}
		for j, other := range p.Promotions[:i] {
			if other.ID == pr.ID {
				return fieldErr(at("id"), "%q is also the id of promotions[%d]", pr.ID, j)
			}
		}
		if strings.TrimSpace(pr.Name) == "" {
			return fieldErr(at("name"), "is required: it tells the member why they got the points")
		}
		from, err := ParseLocalDate(pr.StartsOn)
		if err != nil {
			return fieldErr(at("starts_on"), "is %q, want YYYY-MM-DD", pr.StartsOn)
		}
		to, err := ParseLocalDate(pr.EndsOn)
		if err != nil {
			return fieldErr(at("ends_on"), "is %q, want YYYY-MM-DD", pr.EndsOn)
		}
		if to.Before(from) {
			return fieldErr(at("ends_on"), "is %s, before starts_on %s", pr.EndsOn, pr.StartsOn)
		}
		for j, prop := range pr.Properties {
			field := at(fmt.Sprintf("properties[%d]", j))
			if prop == "" || len(prop) > MaxPropertyIDLen || strings.ContainsFunc(prop, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
				return fieldErr(field, "is %q, want 1 to %d printable ASCII characters without spaces", prop, MaxPropertyIDLen)
			}
			if slices.Contains(pr.Properties[:j], prop) {
				return fieldErr(field, "property %q is listed twice", prop)
			}
		}
		for j, ch := range pr.Channels {
			field := at(fmt.Sprintf("channels[%d]", j))
			if !ch.known() {
				return fieldErr(field, "unknown channel %q; want one of web, app, sms, call_centre, front_desk, partner, travel_agency", ch)
			}
			if slices.Contains(pr.Channels[:j], ch) {
				return fieldErr(field, "channel %q is listed twice", ch)
			}
		}
		if err := nonNegative(at("multiplier"), pr.Multiplier); err != nil {
			return err
		}
		if err := nonNegativeInt(at("bonus_points"), pr.BonusPoints); err != nil {
			return err
		}
		if !pr.Multiplier.IsPositive() && pr.BonusPoints == 0 {
			return fieldErr(at("multiplier"), "and bonus_points are both 0: a promotion gives a multiplier, bonus points or both")
		}
	}
	return nil
}

func nonNegative(field string, d decimal.Decimal) *FieldError {
	if d.IsNegative() {
		return fieldErr(field, "is %s, must not be negative", d.String())
	}
	return nil
}

func nonNegativeInt(field string, n int64) *FieldError {
	if n < 0 {
		return fieldErr(field, "is %d, must not be negative", n)
	}
	return nil
}

func positive(field string, n int) *FieldError {
	if n <= 0 {
		return fieldErr(field, "is %d, must be more than 0", n)
	}
	return nil
}

func validClock(field string, c Clock) *FieldError {
	if !c.valid() {
		return fieldErr(field, "%02d:%02d is not a time of day", c.Hour, c.Minute)
	}
	return nil
}

// unknownTierKey refuses a key of m that is not a tier, the first in order.
func unknownTierKey[V any](field string, m map[Tier]V) *FieldError {
	for _, t := range slices.Sorted(maps.Keys(m)) {
		if !t.known() {
			return fieldErr(field+"."+string(t), "%q is not a tier; want regular, silver, gold or platinum", t)
		}
	}
	return nil
}

func validName(s string, maxLen int, alphabet string) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(alphabet, s[i]) < 0 {
			return false
		}
	}
	return true
}

// ParseProgramme decodes a programme definition strictly and validates it:
// the JSON must be one object; every key, at any depth, must be a field's
// JSON name exactly, case included, and given once in its object (see
// checkKeys); every field of Programme must be present and not null (a
// field left out would otherwise silently be 0, such as a no-show penalty
// of 0), a promotion's omitempty fields excepted; then Validate. Problems
// with the definition are *FieldError, at the path of the value or key as
// the document spells it; malformed JSON is another error.
func ParseProgramme(data []byte) (Programme, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return Programme{}, fmt.Errorf("programme: definition is not a JSON object: %w", err)
	}
	keys := json.NewDecoder(bytes.NewReader(data))
	keys.UseNumber() // a number is skipped, never read as a float64
	if err := checkKeys(keys, reflect.TypeFor[Programme](), ""); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return Programme{}, fe
		}
		return Programme{}, fmt.Errorf("programme: definition: %w", err)
	}
	for _, name := range requiredFields(reflect.TypeFor[Programme]()) {
		raw, ok := fields[name]
		if !ok || string(bytes.TrimSpace(raw)) == "null" {
			return Programme{}, fieldErr(name, "is required")
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Programme
	if err := dec.Decode(&p); err != nil {
		// A value of the wrong type: its path, as the document spells it.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return Programme{}, fieldErr(typeErr.Field, "is a JSON %s, want %s", typeErr.Value, typeErr.Type)
		}
		return Programme{}, fmt.Errorf("programme: definition: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Programme{}, errors.New("programme: definition: data after the JSON object")
	}
	if err := p.Validate(); err != nil {
		return Programme{}, err
	}
	return p, nil
}

// requiredFields are the JSON names of t's fields that are neither
// omitempty nor omitzero.
func requiredFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero") {
			continue
		}
		out = append(out, name)
	}
	return out
}

// checkKeys reads the JSON value at dec's position as a value of type t
// (nil: any value, not looked into) and returns, as a *FieldError at the
// key's path as the document spells it ("tier_rules.thresholds[1].nigths"),
// the first key of an object that is not the JSON name of a field of t
// exactly, case included, or that its object gives twice. It exists
// because encoding/json takes a key that differs from a field's name only
// in case ("Expiry") for that field, silently keeps the last of a key
// given twice, and names no path for an unknown key. A map's keys are
// data, any string (Validate checks them), but each is given once. Types
// that decode themselves (json.Unmarshaler or encoding.TextUnmarshaler:
// decimals, clocks) are not looked into, nor is a value of the wrong JSON
// kind for t: decoding refuses those.
func checkKeys(dec *json.Decoder, t reflect.Type, path string) error {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || decodesItself(t) || !slices.Contains([]reflect.Kind{reflect.Struct, reflect.Map, reflect.Slice, reflect.Array}, t.Kind()) {
		var skip json.RawMessage
		return dec.Decode(&skip)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch tok {
	case json.Delim('['):
		var elem reflect.Type // nil: a list where t is not one
		if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
			elem = t.Elem()
		}
		for i := 0; dec.More(); i++ {
			if err := checkKeys(dec, elem, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case json.Delim('{'):
		var fields map[string]reflect.Type
		if t.Kind() == reflect.Struct {
			fields = jsonFields(t)
		}
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key := tok.(string)
			at := key
			if path != "" {
				at = path + "." + key
			}
			if seen[key] {
				return fieldErr(at, "is given twice: give each key of an object once")
			}
			seen[key] = true
			var value reflect.Type // nil: an object where t is a list
			switch t.Kind() {
			case reflect.Map:
				value = t.Elem()
			case reflect.Struct:
				var ok bool
				if value, ok = fields[key]; !ok {
					return unknownKey(at, path, key, fields)
				}
			}
			if err := checkKeys(dec, value, at); err != nil {
				return err
			}
		}
	default:
		return nil // a scalar, such as null: it has no keys
	}
	_, err = dec.Token() // the closing ] or }
	return err
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// decodesItself reports whether encoding/json leaves a value of type t to
// t's own UnmarshalJSON or UnmarshalText.
func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler)
}

// jsonFields are the types of struct type t's fields by the names
// encoding/json gives them: the json tag's name, else the Go name;
// unexported fields and the tag "-" left out; an embedded struct without
// a tag name lends its fields, which t's own fields of the same name
// override (the types here have no deeper clashes to settle).
func jsonFields(t reflect.Type) map[string]reflect.Type {
	own, promoted := map[string]reflect.Type{}, map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		embedded := f.Type
		if embedded.Kind() == reflect.Pointer {
			embedded = embedded.Elem()
		}
		switch {
		case tag == "-":
		case f.Anonymous && name == "" && embedded.Kind() == reflect.Struct:
			maps.Copy(promoted, jsonFields(embedded))
		case !f.IsExported():
		case name == "":
			own[f.Name] = f.Type
		default:
			own[name] = f.Type
		}
	}
	maps.Copy(promoted, own)
	return promoted
}

// unknownKey is the error for key, at path at, which the object at path
// (the programme itself when "") has no field for: it names the field
// spelled in another case, else lists the fields.
func unknownKey(at, path, key string, fields map[string]reflect.Type) *FieldError {
	of := path
	if of == "" {
		of = "a programme"
	}
	names := slices.Sorted(maps.Keys(fields))
	for _, name := range names {
		if strings.EqualFold(name, key) {
			return fieldErr(at, "is not a field of %s: keys are case-sensitive; did you mean %q?", of, name)
		}
	}
	const most = 30
	if len(names) > most {
		names = append(names[:most:most], fmt.Sprintf("and %d more", len(names)-most))
	}
	return fieldErr(at, "is not a field of %s; the fields are %s", of, strings.Join(names, ", "))
}
