// Package events is what the service tells the world: one event per
// business fact, written in the same database transaction as the fact (a
// transactional outbox), then given an order and handed to consumers
// (webhooks, streams).
//
// The path of an event:
//
//  1. The write that records a fact adds a row to event_outbox in its own
//     database transaction (Row, as a ledger.Statement; ledger
//     transactions get theirs from OfTransaction through the ledger's
//     Outbox option). The event commits with the fact or not at all: no
//     event is lost, none is invented.
//  2. The sequencer (one process at a time, by lease) moves committed
//     rows from the outbox to events in recording order, giving each a
//     global position and a sequence number per subject. Positions become
//     visible in increasing order, so a cursor over them has no gap and
//     no duplicate.
//  3. Consumers read events by position: the pull API and the webhook
//     dispatcher.
//
// Envelopes are CloudEvents 1.0 in JSON (Envelope).
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/loyalty-ledger/loyalty/ledger"
)

// Types of events. The suffix is the version of the type's data schema: a
// change that breaks consumers gets a new type.
const (
	TypeMemberEnrolled     = "loyalty.member.enrolled.v1"
	TypeMemberUpdated      = "loyalty.member.updated.v1"
	TypeMemberClosed       = "loyalty.member.closed.v1"
	TypePointsEarned       = "loyalty.points.earned.v1"
	TypePointsRedeemed     = "loyalty.points.redeemed.v1"
	TypePointsPenalised    = "loyalty.points.penalised.v1"
	TypePointsAdjusted     = "loyalty.points.adjusted.v1"
	TypePointsReversed     = "loyalty.points.reversed.v1"
	TypePointsExpired      = "loyalty.points.expired.v1"
	TypeGuaranteePlaced    = "loyalty.guarantee.placed.v1"
	TypeGuaranteeReleased  = "loyalty.guarantee.released.v1"
	TypeTierChanged        = "loyalty.tier.changed.v1"
	TypeBookingRecorded    = "loyalty.booking.recorded.v1"
	TypeBookingCorrected   = "loyalty.booking.corrected.v1"
	TypePartnerSuspended   = "loyalty.partner.suspended.v1"
	TypePartnerReinstated  = "loyalty.partner.reinstated.v1"
	TypeProgrammePublished = "loyalty.programme.published.v1"
	TypePointsExpiring     = "loyalty.notice.points_expiring.v1"
	TypeTierReviewComing   = "loyalty.notice.tier_review_coming.v1"
)

// Types lists every type, for validation and documentation.
var Types = []string{
	TypeMemberEnrolled, TypeMemberUpdated, TypeMemberClosed,
	TypePointsEarned, TypePointsRedeemed, TypePointsPenalised, TypePointsAdjusted, TypePointsReversed, TypePointsExpired,
	TypeGuaranteePlaced, TypeGuaranteeReleased, TypeTierChanged,
	TypeBookingRecorded, TypeBookingCorrected,
	TypePartnerSuspended, TypePartnerReinstated, TypeProgrammePublished,
	TypePointsExpiring, TypeTierReviewComing,
}

// KnownType reports whether t is one of Types.
func KnownType(t string) bool {
	for _, k := range Types {
		if k == t {
			return true
		}
	}
	return false
}

// Subjects other than members.
const (
	SubjectProgramme     = "programme"
	subjectPartnerPrefix = "partner:"
)

// PartnerSubject is the subject of a partner's own events.
func PartnerSubject(partnerID string) string { return subjectPartnerPrefix + partnerID }

// MaxDataBytes bounds an event's data.
const MaxDataBytes = 16 << 10

// Record is a fact to announce, as written to the outbox.
type Record struct {
	// ID is the event's id, also the webhook-id of its deliveries. Derive
	// it from the fact (NewID) so that a retried write writes the same.
	ID   uuid.UUID
	Type string
	// Subject is a member number, PartnerSubject(id) or SubjectProgramme.
	Subject string
	// OccurredAt is the fact's business time; RecordedAt when it was
	// written.
	OccurredAt time.Time
	RecordedAt time.Time
	// PartnerID, when set, is the partner whose hotel the fact concerns:
	// that partner's endpoints receive the event, no other partner's.
	PartnerID  string
	PropertyID string
	// TransactionID is the ledger transaction of the fact, if any.
	TransactionID uuid.UUID
	// Data is the type's payload, a JSON object.
	Data any
}

// eventNamespace derives event ids from the facts they announce.
var eventNamespace = uuid.MustParse("6f1c2a8e-3d0b-4c55-9a61-2f7f0c8b9e10")

// NewID is the id of the event of type typ about the fact named by parts
// (a transaction id, a member number and a version, ...): the same fact
// gives the same id, whoever writes it and however often.
func NewID(typ string, parts ...string) uuid.UUID {
	// The name typ + "\x00" + each part, put together in one buffer: every
	// event of every write is named here.
	n := len(typ)
	for _, p := range parts {
		n += 1 + len(p)
	}
	name := make([]byte, 0, n)
	name = append(name, typ...)
	for _, p := range parts {
		name = append(append(name, 0), p...)
	}
	return uuid.NewSHA1(eventNamespace, name)
}

// outboxInto is the outbox's row as a ledger.Statement inserts it.
const outboxInto = `event_outbox (id, type, subject, occurred_at, recorded_at, ordinal, partner_id, property_id, transaction_id, data)`

// ordinal counts the outbox rows this process builds. The sequencer
// orders rows by recording time, then by ordinal: a group commit records
// many transactions at one instant, some of them one member's, and their
// events must keep the order they were played in. Transactions of one
// member in two processes are never written at once (they conflict), so
// their recording times order them. It starts at the wall clock's
// nanoseconds, so that a restarted process counts on from above.
var ordinal atomic.Int64

func init() { ordinal.Store(time.Now().UnixNano()) }

// Row is the statement that writes r to the outbox, for a ledger write's
// Effects or for a transaction of the caller's own (Statement.Text and
// Args). It panics on a record that breaks the package's invariants: that
// is a bug in the writer, and an event must never be half right.
func Row(r Record) ledger.Statement {
	if r.ID == uuid.Nil || !KnownType(r.Type) || r.Subject == "" || r.OccurredAt.IsZero() || r.RecordedAt.IsZero() {
		panic(fmt.Sprintf("events: incomplete record %+v", r))
	}
	data, err := encodeData(r.Data)
	if err != nil {
		panic(fmt.Sprintf("events: data of %s: %v", r.Type, err))
	}
	if len(data) > MaxDataBytes || len(data) == 0 || data[0] != '{' {
		panic(fmt.Sprintf("events: data of %s is not a JSON object of at most %d bytes", r.Type, MaxDataBytes))
	}
	var transaction *uuid.UUID
	if r.TransactionID != uuid.Nil {
		transaction = &r.TransactionID
	}
	return ledger.Statement{Into: outboxInto, Args: []any{
		r.ID, r.Type, r.Subject, r.OccurredAt.UTC(), r.RecordedAt.UTC(), ordinal.Add(1),
		nullable(r.PartnerID), nullable(r.PropertyID), transaction, data,
	}}
}

// dataEncoder is a reusable buffer and JSON encoder of events' data.
type dataEncoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var dataEncoders = sync.Pool{New: func() any {
	e := &dataEncoder{}
	e.enc = json.NewEncoder(&e.buf)
	return e
}}

// maxPooledDataBytes bounds the buffer an encoder keeps for the next
// event: room for the largest data, not for whatever a bug asked for.
const maxPooledDataBytes = 2 * MaxDataBytes

// encodeData is json.Marshal(data), as a string, with one allocation: the
// string. (A json.Encoder writes what json.Marshal does, and a newline.)
func encodeData(data any) (string, error) {
	e := dataEncoders.Get().(*dataEncoder)
	defer func() {
		if e.buf.Cap() <= maxPooledDataBytes {
			e.buf.Reset()
			dataEncoders.Put(e)
		}
	}()
	if err := e.enc.Encode(data); err != nil {
		return "", err
	}
	return string(bytes.TrimSuffix(e.buf.Bytes(), []byte("\n"))), nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
