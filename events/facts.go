package events

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
)

// The business facts other than ledger transactions, one constructor each:
// the services call them and write what they return in the fact's own
// database transaction. SCHEMA.md documents every type's data.

// MaxTextBytes bounds a free text (a reason) copied into an event: the
// event's data must stay within MaxDataBytes whatever the fact says.
const MaxTextBytes = 1000

// maxNameBytes bounds a name copied into an event from a record that
// bounds it more loosely (a rule, a stay id in a transaction's metadata).
const maxNameBytes = 200

// clip cuts s to at most MaxTextBytes, at a character boundary.
func clip(s string) string { return clipTo(s, MaxTextBytes) }

// clipTo cuts s to at most n bytes, at a character boundary.
func clipTo(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Time is how a time appears in event data (RFC 3339, UTC, microseconds);
// the zero time is empty.
func Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// MemberEnrolledData is the data of loyalty.member.enrolled.v1. It names
// the contact fields the member gave, never their values, and not the
// member's name: an event is kept and delivered again as it was written,
// so a correction or erasure of personal data could never reach it. A
// CRM that needs the name reads the profile (MemberService.GetMember).
type MemberEnrolledData struct {
	MemberNumber        string `json:"member_number"`
	Tier                string `json:"tier"`
	EnrolmentChannel    string `json:"enrolment_channel"`
	EnrolmentPropertyID string `json:"enrolment_property_id,omitempty"`
	// ContactFields are the contact fields the member gave: "email",
	// "phone".
	ContactFields []string `json:"contact_fields"`
	EnrolledAt    string   `json:"enrolled_at"`
}

// MemberEnrolled announces an enrolment. A member is enrolled once: its
// number names the event.
func MemberEnrolled(d MemberEnrolledData, enrolledAt time.Time) Record {
	d.EnrolledAt = Time(enrolledAt)
	return Record{ID: NewID(TypeMemberEnrolled, d.MemberNumber), Type: TypeMemberEnrolled, Subject: d.MemberNumber,
		OccurredAt: enrolledAt, RecordedAt: enrolledAt, Data: d}
}

// MemberUpdatedData is the data of loyalty.member.updated.v1: which
// fields of the profile changed (full_name, email, phone), never their
// values.
type MemberUpdatedData struct {
	MemberNumber  string   `json:"member_number"`
	ChangedFields []string `json:"changed_fields"`
	Tier          string   `json:"tier"`
	UpdatedAt     string   `json:"updated_at"`
}

// MemberUpdated announces a correction of a member's profile, made by the
// request request (its caller and idempotency key): the same request
// names the same event.
func MemberUpdated(d MemberUpdatedData, updatedAt time.Time, request string) Record {
	d.UpdatedAt = Time(updatedAt)
	return Record{ID: NewID(TypeMemberUpdated, d.MemberNumber, request), Type: TypeMemberUpdated, Subject: d.MemberNumber,
		OccurredAt: updatedAt, RecordedAt: updatedAt, Data: d}
}

// MemberClosedData is the data of loyalty.member.closed.v1. A consumer
// that keeps the member's personal data (a CRM, a hotel's guest profile)
// erases it on this event: the programme erases its own.
type MemberClosedData struct {
	MemberNumber string `json:"member_number"`
	ClosedAt     string `json:"closed_at"`
}

// MemberClosed announces the closure of a membership. A membership is
// closed once: its number names the event.
func MemberClosed(number string, closedAt time.Time) Record {
	return Record{ID: NewID(TypeMemberClosed, number), Type: TypeMemberClosed, Subject: number,
		OccurredAt: closedAt, RecordedAt: closedAt, Data: MemberClosedData{MemberNumber: number, ClosedAt: Time(closedAt)}}
}

// Causes of a tier change.
const (
	TierCauseStay   = "stay"   // an upgrade a recorded stay earned
	TierCauseReview = "review" // the tier review job
	TierCauseManual = "manual" // an admin set the tier by hand
)

// TierChangedData is the data of loyalty.tier.changed.v1.
type TierChangedData struct {
	MemberNumber string `json:"member_number"`
	From         string `json:"from_tier"`
	To           string `json:"to_tier"`
	// Direction is "up" or "down".
	Direction string `json:"direction"`
	Cause     string `json:"cause"`
	Reason    string `json:"reason"`
	// Nights and Points are the qualifying activity in the window the
	// decision counted (0 for a manual change).
	Nights      int    `json:"nights"`
	Points      int64  `json:"points"`
	EffectiveAt string `json:"effective_at"`
	// ManualUntil is when a manual tier ends; empty: until changed again.
	ManualUntil string `json:"manual_until,omitempty"`
	// For an upgrade a stay earned: the stay and its transaction.
	PropertyID    string `json:"property_id,omitempty"`
	StayID        string `json:"stay_id,omitempty"`
	TransactionID string `json:"transaction_id,omitempty"`
}

// TierChanged announces a member's move from one tier to another, made by
// key (the request, or the review run, that made it): the same key names
// the same event. Write it with the change only if the change happened
// (see InsertSelect).
func TierChanged(d TierChangedData, effectiveAt, recordedAt time.Time, key string) Record {
	d.EffectiveAt, d.Reason = Time(effectiveAt), clip(d.Reason)
	return Record{ID: NewID(TypeTierChanged, d.MemberNumber, d.Cause, key), Type: TypeTierChanged, Subject: d.MemberNumber,
		OccurredAt: effectiveAt, RecordedAt: recordedAt, PropertyID: d.PropertyID, Data: d}
}

// BookingData is the data of loyalty.booking.recorded.v1 and
// loyalty.booking.corrected.v1: a booking's outcome (stayed, no_show,
// cancelled_free, cancelled_charged) or its late check-out charge
// (late_checkout).
type BookingData struct {
	MemberNumber string `json:"member_number"`
	PropertyID   string `json:"property_id"`
	StayID       string `json:"stay_id"`
	// Outcome is what the booking has now; empty when a correction took
	// its outcome away (the outcome's transaction was reversed).
	Outcome string `json:"outcome"`
	// Points moved on the member's account by the outcome's transaction:
	// positive earned, negative charged; 0 when nothing was posted.
	Points int64 `json:"points"`
	// TransactionID is the outcome's ledger transaction; empty when
	// nothing was posted (a free cancellation, an exempt no-show).
	TransactionID string `json:"transaction_id,omitempty"`
	// PartnerID is the partner whose hotel it is, if any.
	PartnerID   string `json:"partner_id,omitempty"`
	EffectiveAt string `json:"effective_at"`
	// For a correction: the outcome replaced, its transaction, and why.
	PreviousOutcome       string `json:"previous_outcome,omitempty"`
	PreviousTransactionID string `json:"previous_transaction_id,omitempty"`
	Reason                string `json:"reason,omitempty"`
}

// BookingRecorded announces a booking's outcome, recorded by the claim
// claimID (its booking_outcomes row): the same claim names the same event.
func BookingRecorded(d BookingData, effectiveAt, recordedAt time.Time, claimID uuid.UUID) Record {
	d.EffectiveAt = Time(effectiveAt)
	return Record{ID: NewID(TypeBookingRecorded, claimID.String()), Type: TypeBookingRecorded, Subject: d.MemberNumber,
		OccurredAt: effectiveAt, RecordedAt: recordedAt, PartnerID: d.PartnerID, PropertyID: d.PropertyID, Data: d}
}

// BookingCorrected announces that a booking's outcome was replaced (by
// the outcome in d, claim claimID) or taken away (by the reversal of its
// transaction, claimID the reversed transaction's id).
func BookingCorrected(d BookingData, effectiveAt, recordedAt time.Time, claimID uuid.UUID) Record {
	d.EffectiveAt, d.Reason = Time(effectiveAt), clip(d.Reason)
	return Record{ID: NewID(TypeBookingCorrected, claimID.String()), Type: TypeBookingCorrected, Subject: d.MemberNumber,
		OccurredAt: effectiveAt, RecordedAt: recordedAt, PartnerID: d.PartnerID, PropertyID: d.PropertyID, Data: d}
}

// GuaranteeData is the data of loyalty.guarantee.placed.v1 and
// loyalty.guarantee.released.v1: points on hold for a late arrival.
type GuaranteeData struct {
	MemberNumber string `json:"member_number"`
	PropertyID   string `json:"property_id"`
	StayID       string `json:"stay_id"`
	ArrivalDate  string `json:"arrival_date"`
	// HoldUntil is the local time the room is kept until (HH:MM).
	HoldUntil string `json:"hold_until"`
	Hours     int    `json:"hours"`
	Points    int64  `json:"points"`
	ExpiresAt string `json:"expires_at"`
	// Reason a guarantee was released: "released" (asked for) or
	// "free_cancellation".
	Reason string `json:"release_reason,omitempty"`
	// HoldID and BalanceAfter are the ledger's, filled in by the hold's
	// own write (GuaranteeRow).
	HoldID       string       `json:"hold_id,omitempty"`
	BalanceAfter BalanceAfter `json:"balance_after"`
}

// Release reasons of a guarantee.
const (
	ReleaseAsked            = "released"
	ReleaseFreeCancellation = "free_cancellation"
)

// GuaranteePlaced is the effect of ledger.HoldRequest that announces a
// guarantee's hold, placed by the request request (caller and idempotency
// key): its hold id and the member's balance after come from the ledger.
func GuaranteePlaced(d GuaranteeData, placedAt time.Time, request string) ledger.Statement {
	r := Record{ID: NewID(TypeGuaranteePlaced, d.PropertyID, d.StayID, request), Type: TypeGuaranteePlaced,
		Subject: d.MemberNumber, OccurredAt: placedAt, RecordedAt: placedAt, PropertyID: d.PropertyID, Data: d}
	return holdRow(r)
}

// GuaranteeReleased is the effect of ledger.ReleaseRequest that announces
// the release of the hold holdID.
func GuaranteeReleased(d GuaranteeData, holdID uuid.UUID, releasedAt time.Time) ledger.Statement {
	r := Record{ID: NewID(TypeGuaranteeReleased, holdID.String()), Type: TypeGuaranteeReleased,
		Subject: d.MemberNumber, OccurredAt: releasedAt, RecordedAt: releasedAt, PropertyID: d.PropertyID, Data: d}
	return holdRow(r)
}

// holdRow writes r with a hold operation's parameters (see
// ledger.HoldEffectParameters): the hold's id, the time of the operation
// and the balance after it go into the row and its data.
func holdRow(r Record) ledger.Statement {
	// Every value of r is a parameter but the two times the ledger gives:
	// the ledger's parameters come after them.
	n := len(outboxTypes) - 2
	hold, at, posted, held, available := n+1, n+2, n+3, n+4, n+5
	text, args := InsertSelect(r, 1, Fill{
		OccurredAt: fmt.Sprintf("$%d::TIMESTAMPTZ", at),
		RecordedAt: fmt.Sprintf("$%d::TIMESTAMPTZ", at),
		Data: fmt.Sprintf(`jsonb_build_object('hold_id', $%d::UUID::TEXT, 'balance_after',
			jsonb_build_object('posted', $%d::INT8, 'held', $%d::INT8, 'available', $%d::INT8))`, hold, posted, held, available),
	}, "")
	if len(args) != n {
		panic(fmt.Sprintf("events: a hold's event has %d parameters before the ledger's, want %d", len(args), n))
	}
	return ledger.Statement{SQL: text, Args: args, WithTransaction: true}
}

// PartnerStatusData is the data of loyalty.partner.suspended.v1 and
// loyalty.partner.reinstated.v1.
type PartnerStatusData struct {
	PartnerID string `json:"partner_id"`
	// Status is the partner's status now: "suspended" or "active".
	Status    string `json:"status"`
	Reason    string `json:"reason"`
	ChangedAt string `json:"changed_at"`
}

// PartnerStatusChanged announces a partner's suspension (d.Status
// "suspended") or reinstatement ("active"), made by the request request.
// Its subject is the partner, and its partner id the partner's own: the
// partner's endpoints receive it.
func PartnerStatusChanged(d PartnerStatusData, changedAt time.Time, request string) Record {
	typ := TypePartnerReinstated
	if d.Status == "suspended" {
		typ = TypePartnerSuspended
	}
	d.ChangedAt, d.Reason = Time(changedAt), clip(d.Reason)
	return Record{ID: NewID(typ, d.PartnerID, request), Type: typ, Subject: PartnerSubject(d.PartnerID),
		OccurredAt: changedAt, RecordedAt: changedAt, PartnerID: d.PartnerID, Data: d}
}

// ProgrammePublishedData is the data of loyalty.programme.published.v1.
// The rules themselves are read with the version's number
// (AdminService): they can be larger than an event.
type ProgrammePublishedData struct {
	Version     int    `json:"version"`
	EffectiveAt string `json:"effective_at"`
	PublishedAt string `json:"published_at"`
	TimeZone    string `json:"time_zone"`
}

// ProgrammePublished announces a new programme version: its number names
// the event.
func ProgrammePublished(d ProgrammePublishedData, effectiveAt, publishedAt time.Time) Record {
	d.EffectiveAt, d.PublishedAt = Time(effectiveAt), Time(publishedAt)
	return Record{ID: NewID(TypeProgrammePublished, fmt.Sprint(d.Version)), Type: TypeProgrammePublished,
		Subject: SubjectProgramme, OccurredAt: publishedAt, RecordedAt: publishedAt, Data: d}
}

// ExpiringLot is points of a member that expire at one time.
type ExpiringLot struct {
	Points    int64  `json:"points"`
	ExpiresAt string `json:"expires_at"`
}

// MaxExpiringLots bounds the lots a notice lists; its total counts them
// all.
const MaxExpiringLots = 31

// PointsExpiringData is the data of loyalty.notice.points_expiring.v1.
type PointsExpiringData struct {
	MemberNumber string `json:"member_number"`
	// NoticeDate is the date of the notice, in the programme's time zone.
	NoticeDate string `json:"notice_date"`
	// Points expire in the window (NoticeDate's run, Until]; the first at
	// FirstExpiresAt.
	Points         int64         `json:"points"`
	FirstExpiresAt string        `json:"first_expires_at"`
	Until          string        `json:"until"`
	Lots           []ExpiringLot `json:"lots"`
}

// PointsExpiring is the notice of d, once per member and date.
func PointsExpiring(d PointsExpiringData, recordedAt time.Time) Record {
	return notice(TypePointsExpiring, d.MemberNumber, d.NoticeDate, recordedAt, d)
}

// TierReviewComingData is the data of
// loyalty.notice.tier_review_coming.v1: what keeping the tier at the
// coming review still takes.
type TierReviewComingData struct {
	MemberNumber string `json:"member_number"`
	NoticeDate   string `json:"notice_date"`
	Tier         string `json:"tier"`
	ReviewDate   string `json:"review_date"`
	// The review counts qualifying activity from WindowStart to the review
	// date; Nights and Points are counted already.
	WindowStart string `json:"window_start"`
	Nights      int    `json:"nights"`
	Points      int64  `json:"points"`
	// Either suffices: the nights, or the qualifying points, still needed
	// before the review date (0: the tier is kept).
	NightsNeeded int   `json:"nights_needed"`
	PointsNeeded int64 `json:"points_needed"`
	Kept         bool  `json:"kept"`
	// TierIfNotKept is where the review would move the member: one step
	// down.
	TierIfNotKept string `json:"tier_if_not_kept"`
}

// TierReviewComing is the notice of d, once per member and date.
func TierReviewComing(d TierReviewComingData, recordedAt time.Time) Record {
	return notice(TypeTierReviewComing, d.MemberNumber, d.NoticeDate, recordedAt, d)
}

func notice(typ, member, date string, recordedAt time.Time, data any) Record {
	return Record{ID: NewID(typ, member, date), Type: typ, Subject: member, OccurredAt: recordedAt, RecordedAt: recordedAt, Data: data}
}

// MaxOnceRows bounds InsertOnce.
const MaxOnceRows = 1000

// InsertOnce is one statement that writes records to the outbox, each
// unless a row of its id is there already (a notice a job writes again):
// INSERT ... ON CONFLICT (id) DO NOTHING. The sequencer announces an id
// once even when it is written again after it was sequenced.
func InsertOnce(records []Record) (string, []any) {
	if len(records) == 0 || len(records) > MaxOnceRows {
		panic(fmt.Sprintf("events: InsertOnce of %d records: 1 to %d", len(records), MaxOnceRows))
	}
	var sb strings.Builder
	sb.WriteString("INSERT INTO " + outboxInto + " VALUES ")
	var args []any
	for i, r := range records {
		row := Row(r)
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteByte('(')
		for c := range row.Args {
			if c > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "$%d", len(args)+c+1)
		}
		sb.WriteByte(')')
		args = append(args, row.Args...)
	}
	sb.WriteString(" ON CONFLICT (id) DO NOTHING")
	return sb.String(), args
}

// Fill replaces values of an outbox row with SQL expressions of the
// statement that writes the fact, for what only that statement knows: a
// ledger transaction's id and times, a hold's id and balance. Empty fields
// keep the record's value.
type Fill struct {
	OccurredAt, RecordedAt string // TIMESTAMPTZ
	TransactionID          string // UUID
	// Data is a JSONB object whose keys are added to the record's data
	// (replacing those it has).
	Data string
}

// outboxTypes are the SQL types of Row's arguments, in order.
var outboxTypes = []string{"UUID", "TEXT", "TEXT", "TIMESTAMPTZ", "TIMESTAMPTZ", "INT8", "TEXT", "TEXT", "UUID", "JSONB"}

// InsertSelect is the statement that writes r to the outbox once per row
// of from, a relation of the fact's own statement (a CTE whose rows are
// the rows the fact changed: the event is written exactly when the fact
// is), or once when from is empty. r's values are parameters numbered from
// first, but those fill gives as SQL. It returns the SQL, to follow the
// CTEs of the fact's statement, and the arguments of r's parameters.
func InsertSelect(r Record, first int, fill Fill, from string) (string, []any) {
	row := Row(r)
	var sql strings.Builder
	sql.Grow(len(insertSelectHead) + 24*len(row.Args) + len(fill.OccurredAt) + len(fill.RecordedAt) + len(fill.TransactionID) +
		len(fill.Data) + len(from) + 16)
	sql.WriteString(insertSelectHead)
	args := make([]any, 0, len(row.Args))
	var number [20]byte
	for i, a := range row.Args {
		if i > 0 {
			sql.WriteString(", ")
		}
		if expr := fill.of(i); expr != "" {
			sql.WriteString(expr)
			continue
		}
		data := i == 9 && fill.Data != ""
		if data {
			sql.WriteByte('(')
		}
		sql.WriteByte('$')
		sql.Write(strconv.AppendInt(number[:0], int64(first+len(args)), 10))
		sql.WriteString("::")
		sql.WriteString(outboxTypes[i])
		if data {
			sql.WriteString(" || ")
			sql.WriteString(fill.Data)
			sql.WriteByte(')')
		}
		args = append(args, a)
	}
	if from != "" {
		sql.WriteString(" FROM ")
		sql.WriteString(from)
		sql.WriteString(" LIMIT 1")
	}
	return sql.String(), args
}

const insertSelectHead = "INSERT INTO " + outboxInto + " SELECT "

// of is the SQL that fills Row's argument i, if any (Data adds to the
// argument rather than replace it).
func (f Fill) of(i int) string {
	switch i {
	case 3:
		return f.OccurredAt
	case 4:
		return f.RecordedAt
	case 8:
		return f.TransactionID
	}
	return ""
}
