package events

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/loyalty-ledger/loyalty/database"
)

// Event is a sequenced event.
type Event struct {
	// Position orders all events: a consumer's cursor.
	Position int64
	ID       uuid.UUID
	Type     string
	Subject  string
	// Seq orders the subject's events from 1, without gaps.
	Seq           int64
	OccurredAt    time.Time
	RecordedAt    time.Time
	SequencedAt   time.Time
	PartnerID     string
	PropertyID    string
	TransactionID uuid.UUID
	Data          json.RawMessage
}

// Source is the CloudEvents source of every event of this service.
const Source = "/loyalty-ledger"

// Envelope is an event as CloudEvents 1.0 in JSON (structured mode). The
// extensions: sequence, the subject's sequence number as a decimal string
// (the CloudEvents sequence extension); position, the global cursor;
// partnerid and propertyid where the fact concerns a hotel.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject"`
	Time            string          `json:"time"`
	DataContentType string          `json:"datacontenttype"`
	Sequence        string          `json:"sequence"`
	Position        int64           `json:"position"`
	PartnerID       string          `json:"partnerid,omitempty"`
	PropertyID      string          `json:"propertyid,omitempty"`
	Data            json.RawMessage `json:"data"`
}

// Envelope is e as CloudEvents. Time is when the fact happened in
// business terms (a stay's check-out), as CloudEvents' time is "when the
// occurrence happened".
func (e Event) Envelope() Envelope {
	return Envelope{SpecVersion: "1.0", ID: e.ID.String(), Source: Source, Type: e.Type, Subject: e.Subject,
		Time: e.OccurredAt.UTC().Format(timeLayout), DataContentType: "application/json",
		Sequence: strconv.FormatInt(e.Seq, 10), Position: e.Position,
		PartnerID: e.PartnerID, PropertyID: e.PropertyID, Data: e.Data}
}

// MaxListPage bounds one page of List.
const MaxListPage = 1000

// Filter narrows List. Zero fields do not filter.
type Filter struct {
	Types []string
	// Subject is a member number (or another subject).
	Subject string
	// PartnerID keeps the events of that partner's hotels only.
	PartnerID string
}

// Store reads sequenced events.
type Store struct{ db *database.DB }

// NewStore returns a store over db.
func NewStore(db *database.DB) *Store { return &Store{db: db} }

// List returns up to limit events after position after, in position
// order, that match f.
func (s *Store) List(ctx context.Context, after int64, f Filter, limit int) ([]Event, error) {
	if limit < 1 || limit > MaxListPage {
		return nil, fmt.Errorf("list events: page size %d: must be 1 to %d", limit, MaxListPage)
	}
	var types []string
	if len(f.Types) > 0 {
		types = f.Types
	}
	rows, err := s.db.Pool.Query(ctx, eventSelect+`
		WHERE position > $1
		  AND ($2::TEXT[] IS NULL OR type = ANY($2::TEXT[]))
		  AND ($3::TEXT = '' OR subject = $3::TEXT)
		  AND ($4::TEXT = '' OR partner_id = $4::TEXT)
		ORDER BY position LIMIT $5`, after, types, f.Subject, f.PartnerID, limit)
	if err != nil {
		return nil, fmt.Errorf("list events after %d: %w", after, err)
	}
	out, err := pgx.CollectRows(rows, ScanEvent)
	if err != nil {
		return nil, fmt.Errorf("list events after %d: %w", after, err)
	}
	return out, nil
}

// LastPosition is the position of the newest sequenced event (0: none).
func (s *Store) LastPosition(ctx context.Context) (int64, error) {
	var last int64
	if err := s.db.Pool.QueryRow(ctx, `SELECT last_position FROM event_sequencer WHERE id = 1`).Scan(&last); err != nil {
		return 0, fmt.Errorf("read the last event position: %w", err)
	}
	return last, nil
}

const eventSelect = `SELECT position, id, type, subject, seq, occurred_at, recorded_at, sequenced_at,
	COALESCE(partner_id, ''), COALESCE(property_id, ''), transaction_id, data::TEXT FROM events`

// ScanEvent scans a row of eventSelect's columns.
func ScanEvent(r pgx.CollectableRow) (Event, error) {
	var e Event
	var transaction *uuid.UUID
	var data string
	err := r.Scan(&e.Position, &e.ID, &e.Type, &e.Subject, &e.Seq, &e.OccurredAt, &e.RecordedAt, &e.SequencedAt,
		&e.PartnerID, &e.PropertyID, &transaction, &data)
	if transaction != nil {
		e.TransactionID = *transaction
	}
	e.Data = json.RawMessage(data)
	return e, err
}

// AppendJSON appends e's envelope as JSON, as json.Marshal(e.Envelope())
// writes it but for data, which is copied as the database gives it (valid
// JSON, maybe with spaces) rather than compacted: the dispatcher writes
// every event it sends, and encoding/json's reflection and compaction
// were about 2% of loyaltyd's CPU with events on.
func (e Event) AppendJSON(buf []byte) []byte {
	buf = append(buf, `{"specversion":"1.0","id":"`...)
	buf = append(buf, e.ID.String()...)
	buf = append(buf, `","source":`...)
	buf = appendJSONString(buf, Source)
	buf = append(buf, `,"type":`...)
	buf = appendJSONString(buf, e.Type)
	buf = append(buf, `,"subject":`...)
	buf = appendJSONString(buf, e.Subject)
	buf = append(buf, `,"time":"`...)
	buf = e.OccurredAt.UTC().AppendFormat(buf, timeLayout)
	buf = append(buf, `","datacontenttype":"application/json","sequence":"`...)
	buf = strconv.AppendInt(buf, e.Seq, 10)
	buf = append(buf, `","position":`...)
	buf = strconv.AppendInt(buf, e.Position, 10)
	if e.PartnerID != "" {
		buf = append(buf, `,"partnerid":`...)
		buf = appendJSONString(buf, e.PartnerID)
	}
	if e.PropertyID != "" {
		buf = append(buf, `,"propertyid":`...)
		buf = appendJSONString(buf, e.PropertyID)
	}
	buf = append(buf, `,"data":`...)
	if len(e.Data) == 0 {
		buf = append(buf, "null"...)
	} else {
		buf = append(buf, e.Data...)
	}
	return append(buf, '}')
}

// ForPartner is e as a partner's webhook endpoint receives it: without the
// member's balance (balance_after), which the alliance API keeps from
// partners; the member's points at a partner's hotel include those earned
// elsewhere.
func (e Event) ForPartner() Event {
	if !bytes.Contains(e.Data, []byte(`"balance_after"`)) {
		return e
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(e.Data, &fields); err != nil {
		return e // not an object: it has no such field
	}
	delete(fields, "balance_after")
	data, err := json.Marshal(fields)
	if err != nil {
		return e // cannot fail: the values were read as JSON
	}
	e.Data = data
	return e
}

// appendJSONString appends s quoted as encoding/json quotes it: as it is
// when it is printable ASCII that needs no escape, else by json.Marshal.
func appendJSONString(buf []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			quoted, _ := json.Marshal(s) // a string: cannot fail
			return append(buf, quoted...)
		}
	}
	buf = append(buf, '"')
	buf = append(buf, s...)
	return append(buf, '"')
}
