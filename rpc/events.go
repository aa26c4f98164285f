package rpc

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/loyalty-ledger/loyalty/events"
	"github.com/loyalty-ledger/loyalty/ledger"
	"github.com/loyalty-ledger/loyalty/partners"
	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

type eventService struct{ *Server }

var _ loyaltyv1connect.EventServiceHandler = eventService{}

// StreamOptions tune SubscribeEvents. Zero fields take the defaults.
type StreamOptions struct {
	// Heartbeat is how long a stream stays silent before it sends a
	// heartbeat: proxies close connections idle for a minute or so.
	// Default 15 s.
	Heartbeat time.Duration
	// Poll is how often the server reads the newest position while
	// streams wait for events, once per server however many streams
	// wait. Default 200 ms.
	Poll time.Duration
	// MaxDuration ends a stream, cleanly, after this long: the client
	// resumes with its last token, perhaps on another server, so that
	// streams spread again after a deploy. Default 1 h.
	MaxDuration time.Duration
	// MaxStreams bounds the streams open on this server at once; one
	// more is RESOURCE_EXHAUSTED. Default 100.
	MaxStreams int
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Heartbeat <= 0 {
		o.Heartbeat = 15 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 200 * time.Millisecond
	}
	if o.MaxDuration <= 0 {
		o.MaxDuration = time.Hour
	}
	if o.MaxStreams <= 0 {
		o.MaxStreams = 100
	}
	return o
}

// Limits of the event requests.
const (
	defaultEventPage = 100
	// maxEventTypes bounds a filter's types (there are fewer types than
	// this; repeating one is harmless).
	maxEventTypes = 50
	// streamBatch is how many events a stream reads at a time.
	streamBatch = 100
)

// eventFilter reads the filters common to ListEvents and SubscribeEvents.
func (s *Server) eventFilter(types []string, member, partnerID string) (events.Filter, error) {
	if len(types) > maxEventTypes {
		return events.Filter{}, badField("event_types", "at most %d, got %d", maxEventTypes, len(types))
	}
	for i, t := range types {
		if !events.KnownType(t) {
			return events.Filter{}, badField(fmt.Sprintf("event_types[%d]", i), "%q is not an event type: one of %s", clip(t), strings.Join(events.Types, ", "))
		}
	}
	if member != "" {
		if err := checkMember(member); err != nil {
			return events.Filter{}, err
		}
	}
	if partnerID != "" {
		var fe *ledger.FieldError
		if err := partners.ValidateID(partnerID); errors.As(err, &fe) {
			return events.Filter{}, badField("partner_id", "%s", fe.Problem)
		}
	}
	return events.Filter{Types: types, Subject: member, PartnerID: partnerID}, nil
}

// An event cursor (page token, resume token) is a position, opaque to
// clients so that it may carry more one day: a version byte and the
// position, in base64url.
const cursorVersion = 1

func encodeCursor(position int64) string {
	buf := binary.BigEndian.AppendUint64([]byte{cursorVersion}, uint64(position))
	return base64.RawURLEncoding.EncodeToString(buf)
}

func decodeCursor(field, token string) (int64, error) {
	buf, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(buf) != 9 || buf[0] != cursorVersion || int64(binary.BigEndian.Uint64(buf[1:])) < 0 {
		return 0, badField(field, "is not a token this service returned")
	}
	return int64(binary.BigEndian.Uint64(buf[1:])), nil
}

// cursorPast refuses a cursor beyond the newest position, last: this
// database never gave it (another environment's, or one kept across a
// restore to an earlier backup). Accepted, it would skip, in silence,
// every event up to it once they are written.
func cursorPast(field string, after, last int64) error {
	if after <= last {
		return nil
	}
	return connect.NewError(connect.CodeOutOfRange, fmt.Errorf(
		"%s: position %d is past the newest event's, %d: this cursor is not from this service's log (another environment's, or kept across a restore); start again from a position you have seen, or from 0", field, after, last))
}

// startAfter reads where a request starts: a token, a position, or
// neither; field names the one given ("" for neither), for the refusal of
// a cursor past the log (cursorPast).
func startAfter(tokenField, token string, position *int64) (after int64, field string, err error) {
	switch {
	case token != "" && position != nil:
		return 0, "", badField("after_position", "give %s or after_position, not both", tokenField)
	case token != "":
		after, err = decodeCursor(tokenField, token)
		return after, tokenField, err
	case position != nil:
		if *position < 0 {
			return 0, "", badField("after_position", "must be 0 or more")
		}
		return *position, "after_position", nil
	}
	return 0, "", nil
}

func (s eventService) ListEvents(ctx context.Context, req *connect.Request[loyaltyv1.ListEventsRequest]) (*connect.Response[loyaltyv1.ListEventsResponse], error) {
	msg, proc := req.Msg, req.Spec().Procedure
	size := int(msg.GetPageSize())
	switch {
	case size == 0:
		size = defaultEventPage
	case size < 1 || size > events.MaxListPage:
		return nil, badField("page_size", "must be 0 (%d) or 1 to %d", defaultEventPage, events.MaxListPage)
	}
	after, cursorField, err := startAfter("page_token", msg.GetPageToken(), msg.AfterPosition)
	if err != nil {
		return nil, err
	}
	filter, err := s.eventFilter(msg.GetEventTypes(), msg.GetMemberNumber(), msg.GetPartnerId())
	if err != nil {
		return nil, err
	}
	// The newest position first: every event up to it is visible to the
	// List that follows, so a short page proves there is nothing more to
	// match up to it, and the cursor moves past the events the filters
	// skipped.
	last, err := s.events.LastPosition(ctx)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	if err := cursorPast(cursorField, after, last); err != nil {
		return nil, err
	}
	list, err := s.events.List(ctx, after, filter, size)
	if err != nil {
		return nil, s.toConnect(ctx, proc, err)
	}
	out := &loyaltyv1.ListEventsResponse{LastPosition: last}
	cursor := after
	for _, e := range list {
		out.Events = append(out.Events, protoEvent(e))
		cursor = e.Position
	}
	if len(list) < size && last > cursor {
		cursor = last
	}
	out.NextPageToken = encodeCursor(cursor)
	return connect.NewResponse(out), nil
}

// protoEvent is e as the contract shows it, its envelope included: the
// bytes a webhook delivers (events.Event.AppendJSON), so that a consumer
// may forward or hash either.
func protoEvent(e events.Event) *loyaltyv1.Event {
	return &loyaltyv1.Event{Id: e.ID.String(), Source: events.Source, Type: e.Type, Subject: e.Subject,
		Time: timestamppb.New(e.OccurredAt), Sequence: e.Seq, Position: e.Position,
		PartnerId: e.PartnerID, PropertyId: e.PropertyID, DataJson: string(e.Data),
		CloudEventJson: string(e.AppendJSON(nil)), RecordedAt: timestamppb.New(e.RecordedAt),
		ResumeToken: encodeCursor(e.Position)}
}

func (s eventService) SubscribeEvents(ctx context.Context, req *connect.Request[loyaltyv1.SubscribeEventsRequest], stream *connect.ServerStream[loyaltyv1.SubscribeEventsResponse]) error {
	msg, proc := req.Msg, req.Spec().Procedure
	// Unary calls get these from interceptors (saneRequest, jsonFieldNames);
	// a stream's request is checked here.
	if bad := saneMessage(msg.ProtoReflect()); bad != nil {
		return respell(bad.err().(*connect.Error), msg.ProtoReflect().Descriptor())
	}
	err := s.subscribe(ctx, proc, msg, stream)
	var ce *connect.Error
	if errors.As(err, &ce) {
		return respell(ce, msg.ProtoReflect().Descriptor())
	}
	return err
}

func (s eventService) subscribe(ctx context.Context, proc string, msg *loyaltyv1.SubscribeEventsRequest, stream *connect.ServerStream[loyaltyv1.SubscribeEventsResponse]) error {
	after, cursorField, err := startAfter("resume_token", msg.GetResumeToken(), msg.AfterPosition)
	if err != nil {
		return err
	}
	if msg.GetFromBeginning() && cursorField != "" {
		return badField("from_beginning", "give one of resume_token, after_position and from_beginning")
	}
	filter, err := s.eventFilter(msg.GetEventTypes(), msg.GetMemberNumber(), msg.GetPartnerId())
	if err != nil {
		return err
	}
	release, err := s.streams.open()
	if err != nil {
		return err
	}
	defer release()
	ctx, cancel := context.WithTimeout(ctx, s.streamOpts.MaxDuration)
	defer cancel()
	stop := context.AfterFunc(s.streams.stopping, cancel)
	defer stop()

	last, err := s.events.LastPosition(ctx)
	if err != nil {
		return s.streamError(ctx, proc, err)
	}
	if err := cursorPast(cursorField, after, last); err != nil {
		return err
	}
	if cursorField == "" && !msg.GetFromBeginning() {
		after = last // from now on
	}
	heartbeat := time.NewTimer(s.streamOpts.Heartbeat)
	defer heartbeat.Stop()
	for {
		list, err := s.events.List(ctx, after, filter, streamBatch)
		if err != nil {
			return s.streamError(ctx, proc, err)
		}
		for _, e := range list {
			if err := stream.Send(&loyaltyv1.SubscribeEventsResponse{Item: &loyaltyv1.SubscribeEventsResponse_Event{Event: protoEvent(e)}}); err != nil {
				return s.streamError(ctx, proc, err)
			}
			after = e.Position
			heartbeat.Reset(s.streamOpts.Heartbeat)
		}
		if len(list) == streamBatch {
			continue // more at once
		}
		// Every event up to last was visible to List: none is left to
		// match up to it.
		after = max(after, last)
		for last <= after {
			p, moved := s.tail.waitPast(ctx, after, heartbeat.C)
			switch {
			case moved:
				last = max(last, p)
			case ctx.Err() != nil:
				return s.streamEnd(ctx)
			default: // silent for too long
				if err := stream.Send(&loyaltyv1.SubscribeEventsResponse{Item: &loyaltyv1.SubscribeEventsResponse_Heartbeat{
					Heartbeat: &loyaltyv1.Heartbeat{Position: after, ResumeToken: encodeCursor(after), SentAt: timestamppb.New(s.now())}}}); err != nil {
					return s.streamError(ctx, proc, err)
				}
				heartbeat.Reset(s.streamOpts.Heartbeat)
			}
		}
	}
}

// streamEnd is how a stream ends when its context does: cleanly when the
// server ended it (its time is up, or the server stops), so that the
// client resumes; as the context says when the client went away.
func (s eventService) streamEnd(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), context.DeadlineExceeded) || s.streams.stopping.Err() != nil {
		return nil
	}
	return connect.NewError(connect.CodeCanceled, errors.New("the client ended the stream"))
}

// streamError maps an error of a stream, which may be the end of its
// context.
func (s eventService) streamError(ctx context.Context, proc string, err error) error {
	if ctx.Err() != nil {
		return s.streamEnd(ctx)
	}
	return s.toConnect(ctx, proc, err)
}

// streams counts the open streams and ends them when the server stops.
type streams struct {
	mu    sync.Mutex
	count int
	max   int
	// stopping ends with StopStreams.
	stopping context.Context
	stop     context.CancelFunc
}

func newStreams(max int) *streams {
	ctx, cancel := context.WithCancel(context.Background())
	return &streams{max: max, stopping: ctx, stop: cancel}
}

// open counts a stream in; the function it returns counts it out.
func (st *streams) open() (func(), error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopping.Err() != nil {
		return nil, connect.NewError(connect.CodeUnavailable, errors.New("the server is shutting down: subscribe again (another server will answer)"))
	}
	if st.count >= st.max {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("this server streams to %d subscribers already, its most: retry later", st.max))
	}
	st.count++
	return func() {
		st.mu.Lock()
		st.count--
		st.mu.Unlock()
	}, nil
}

// StopStreams ends every SubscribeEvents stream, cleanly (the clients
// resume elsewhere), and refuses new ones: call it when the server begins
// to shut down (http.Server.RegisterOnShutdown), since a stream never
// finishes by itself.
func (s *Server) StopStreams() { s.streams.stop() }

// tail follows the newest event position for the streams of one server:
// one reader every poll interval while any stream waits, however many
// wait, rather than one query per stream.
type tail struct {
	store *events.Store
	every time.Duration
	log   *slog.Logger

	mu       sync.Mutex
	position int64
	// changed is closed when position moves, then replaced.
	changed chan struct{}
	// waiting counts the streams waiting; the reader runs while any does.
	waiting int
	running bool
}

func newTail(store *events.Store, every time.Duration, log *slog.Logger) *tail {
	return &tail{store: store, every: every, log: log, changed: make(chan struct{})}
}

// waitPast waits until the newest position is past after (true, and the
// position), or until ctx ends or wake fires (false).
func (t *tail) waitPast(ctx context.Context, after int64, wake <-chan time.Time) (int64, bool) {
	t.mu.Lock()
	if t.position > after {
		p := t.position
		t.mu.Unlock()
		return p, true
	}
	t.waiting++
	if !t.running {
		t.running = true
		go t.follow()
	}
	changed := t.changed
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		t.waiting--
		t.mu.Unlock()
	}()
	select {
	case <-changed:
		t.mu.Lock()
		defer t.mu.Unlock()
		return t.position, true
	case <-ctx.Done():
	case <-wake:
	}
	return 0, false
}

// follow reads the newest position every interval while streams wait.
func (t *tail) follow() {
	ticker := time.NewTicker(t.every)
	defer ticker.Stop()
	for range ticker.C {
		t.mu.Lock()
		if t.waiting == 0 {
			t.running = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		p, err := t.store.LastPosition(ctx)
		cancel()
		if err != nil {
			t.log.Warn("streams: read the newest event position", "error", err.Error())
			continue
		}
		t.mu.Lock()
		if p > t.position {
			t.position = p
			close(t.changed)
			t.changed = make(chan struct{})
		}
		t.mu.Unlock()
	}
}

// noDeadlines lifts the server's read and write deadlines for a stream
// (an http.Server's WriteTimeout would cut it after 30 s): MaxDuration
// bounds it instead.
func noDeadlines(procedure string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == procedure {
			rc := http.NewResponseController(w)
			_ = rc.SetReadDeadline(time.Time{})
			_ = rc.SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}
