package rpc

import (
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/members"
	"github.com/loyalty-ledger/loyalty/programme"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// Limits on request fields not covered by the layers below.
const (
	maxIDLength     = 64  // property_id, stay_id
	maxReasonLength = 500 // characters
	// maxManualTierYears bounds how long a tier set by hand lasts.
	maxManualTierYears = 5
	maxQuantity        = 10
	maxNights          = 90
)

func checkMember(number string) error {
	var fe *ledger.FieldError
	if err := members.ValidateNumber(number); errors.As(err, &fe) {
		return badField(fe.Field, "%s", fe.Problem)
	}
	return nil
}

// checkID checks a caller-chosen identifier such as a property or stay id:
// 1-64 printable ASCII characters.
func checkID(field, id string, required bool) error {
	if id == "" {
		if required {
			return badField(field, "is required")
		}
		return nil
	}
	if len(id) > maxIDLength {
		return badField(field, "is %d bytes, at most %d", len(id), maxIDLength)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return badField(field, "must be printable ASCII without spaces")
		}
	}
	return nil
}

func checkReason(reason string) error {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return badField("reason", "is required")
	}
	if len([]rune(reason)) > maxReasonLength {
		return badField("reason", "at most %d characters", maxReasonLength)
	}
	return nil
}

// localDate parses a "YYYY-MM-DD" date of the property.
func localDate(field, s string) (time.Time, error) {
	d, err := programme.ParseLocalDate(s)
	if err != nil {
		return time.Time{}, badField(field, "must be a date YYYY-MM-DD, got %q", clip(s))
	}
	if d.Year() < 2000 || d.Year() > 2200 {
		return time.Time{}, badField(field, "year out of range 2000-2200")
	}
	return d, nil
}

var channels = map[loyaltyv1.BookingChannel]programme.Channel{
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_WEB:           programme.ChannelWeb,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_APP:           programme.ChannelApp,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_SMS:           programme.ChannelSMS,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_CALL_CENTRE:   programme.ChannelCallCentre,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK:    programme.ChannelFrontDesk,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_PARTNER:       programme.ChannelPartner,
	loyaltyv1.BookingChannel_BOOKING_CHANNEL_TRAVEL_AGENCY: programme.ChannelTravelAgency,
}

func channel(c loyaltyv1.BookingChannel) (programme.Channel, error) {
	ch, ok := channels[c]
	if !ok {
		return "", badField("channel", "is required: one of WEB, APP, SMS, CALL_CENTRE, FRONT_DESK, PARTNER, TRAVEL_AGENCY")
	}
	return ch, nil
}

var tiers = map[programme.Tier]loyaltyv1.Tier{
	programme.TierRegular:  loyaltyv1.Tier_TIER_REGULAR,
	programme.TierSilver:   loyaltyv1.Tier_TIER_SILVER,
	programme.TierGold:     loyaltyv1.Tier_TIER_GOLD,
	programme.TierPlatinum: loyaltyv1.Tier_TIER_PLATINUM,
}

var rewards = map[loyaltyv1.Reward]programme.Reward{
	loyaltyv1.Reward_REWARD_FREE_NIGHT:         programme.RewardFreeNight,
	loyaltyv1.Reward_REWARD_LATE_CHECKOUT_HOUR: programme.RewardLateCheckoutHour,
	loyaltyv1.Reward_REWARD_TRAVEL_KIT:         programme.RewardTravelKit,
	loyaltyv1.Reward_REWARD_BEDTIME_MILK:       programme.RewardBedtimeMilk,
	loyaltyv1.Reward_REWARD_MEMBER_CARD:        programme.RewardMemberCard,
}

// clip shortens a value an error echoes to 64 bytes, cut where a
// character starts: enough to recognise an event type or a key, bounded
// whatever the client sent.
func clip(s string) string {
	const maxEcho = 64
	if len(s) <= maxEcho {
		return s
	}
	cut := maxEcho
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// invert turns a one-to-one mapping around.
func invert[K, V comparable](m map[K]V) map[V]K {
	out := make(map[V]K, len(m))
	for k, v := range m {
		out[v] = k
	}
	return out
}

// rewardOf reads a redemption's reward and quantity (0 means one).
func rewardOf(r loyaltyv1.Reward, q int32) (programme.Reward, int, error) {
	reward, ok := rewards[r]
	if !ok {
		return "", 0, badField("reward", "is required: one of the catalogue's rewards")
	}
	quantity := int(q)
	if quantity == 0 {
		quantity = 1
	}
	if quantity < 1 || quantity > maxQuantity {
		return "", 0, badField("quantity", "must be between 1 and %d", maxQuantity)
	}
	return reward, quantity, nil
}

// clockSkew is how far ahead of the service's clock a caller's timestamp
// may be: hotel systems' clocks drift, and a cancellation stamped a minute
// "in the future" is still a cancellation.
const clockSkew = 5 * time.Minute

// pastInstant is a caller's timestamp of something that has happened: a
// valid time, not before 2000, not after now (give or take clockSkew).
func pastInstant(field string, ts *timestamppb.Timestamp, now time.Time) (time.Time, error) {
	if ts == nil {
		return time.Time{}, badField(field, "is required")
	}
	if err := ts.CheckValid(); err != nil {
		return time.Time{}, badField(field, "is not a valid time")
	}
	t := ts.AsTime()
	if t.Year() < 2000 {
		return time.Time{}, badField(field, "is %s, before 2000", t.Format(time.RFC3339))
	}
	if t.After(now.Add(clockSkew)) {
		return time.Time{}, badField(field, "is %s, in the future: it records something that has happened", t.Format(time.RFC3339))
	}
	return t, nil
}
