// Package stayimport reads stay files (a hotel's nightly check-outs, a
// partner's extract, a migration of history: CSV or JSON Lines) and imports
// them through the batch RPCs, BookingService.RecordStays or, with a
// partner's key, AllianceService.AwardStays. loyaltyctl import stays and
// the benchmark (cmd/loyaltybench) share it.
//
// A file's rows become requests whose idempotency keys are derived from
// the row (its line, booking and content), so that importing the same
// file again records nothing twice: each row is replayed (recorded, with
// its first transaction) or answered already recorded. That is how an
// interrupted import resumes: run it again.
//
// # The file
//
// CSV: a header line naming the columns, then one stay per line (no line
// breaks inside a field). JSON Lines: one object per line, the same
// names as keys. Unknown columns and keys are errors naming them. The
// columns:
//
//	property_id                the hotel (required)
//	stay_id                    the booking reference at the hotel (required)
//	member_number              the member (required)
//	arrival_date               YYYY-MM-DD, local to the hotel (required)
//	departure_date             YYYY-MM-DD (required), 1 to 90 nights after arrival
//	room_charges               the nights' charges, separated by ';': 388.00;388.00
//	room_charge, nights        or one charge for every night and the number of nights
//	currency_code              the charges' currency, the programme's (CNY) (required)
//	channel                    WEB, APP, SMS, CALL_CENTRE, FRONT_DESK, PARTNER,
//	                           TRAVEL_AGENCY (case-insensitive; required for
//	                           RecordStays, ignored by AwardStays)
//	booked_for_other           true or false (optional)
//	unbooked_extension_nights  how many of the last nights were unbooked
//	                           extensions (optional)
//	booked_at                  RFC 3339 (optional): checked (not after the
//	                           departure date) and written to the results only;
//	                           the service does not use it for points
//	family_name                the member's family name (required for a partner's
//	                           key: AwardStay needs it; ignored otherwise)
//
// A row that cannot be read is refused locally, never sent, with the
// column and the problem, like a refusal of the service.
//
// # Order
//
// The service records the rows of one member or one booking within a
// batch in the file's order; across batches, Run never sends a row while a
// batch in flight holds a row of the same member or booking: it carries
// that row (and the member's and booking's later rows) over to a later
// batch and fills the batch with other members' rows. So a file sorted
// by departure is recorded in that order, member by member, and results
// equal single RecordStay calls in the file's order. Results are reported
// in the file's order all the same.
package stayimport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
	"github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1/loyaltyv1connect"
)

// Format is a file's format.
type Format string

const (
	FormatCSV   Format = "csv"
	FormatJSONL Format = "jsonl"
)

// FormatOf is the format a file's name says: .jsonl, .ndjson and .json are
// JSON Lines, anything else CSV.
func FormatOf(path string) Format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".jsonl", ".ndjson", ".json":
		return FormatJSONL
	}
	return FormatCSV
}

// API is the batch procedure rows go to.
type API string

const (
	// APIAuto sends the first batch to RecordStays; a PERMISSION_DENIED
	// for the whole call (what the service answers a partner's key on
	// BookingService) sends it and the rest to AwardStays.
	APIAuto     API = ""
	APIBooking  API = "booking"  // BookingService.RecordStays
	APIAlliance API = "alliance" // AllianceService.AwardStays
)

// Batch sizes and parallelism.
const (
	DefaultBatchSize = 500
	MaxBatchSize     = 1000 // the service's limit per call
	DefaultParallel  = 2
	MaxParallel      = 8
	// maxAttempts bounds the calls of one batch (whole-call UNAVAILABLE or
	// DEADLINE_EXCEEDED) and of one row (a row answered "unavailable",
	// "aborted" or "deadline_exceeded"), the same keys each time.
	maxAttempts = 8
	// callTimeout bounds one call: 1,000 stays take seconds.
	callTimeout = 2 * time.Minute
	maxBackoff  = 5 * time.Second
)

// Options say what to import, where, and how.
type Options struct {
	// Path is the file; Format its format ("": FormatOf(Path)).
	Path   string
	Format Format
	// BaseURL is the service's ("http://127.0.0.1:8080"), APIKey the key
	// calls carry (a booking-channel or admin key, or a partner's).
	BaseURL, APIKey string
	// HTTPClient makes the calls (nil: a plain http.Client, HTTP/1.1 or
	// HTTP/2 over TLS as the URL offers). ClientOptions are added to the
	// Connect clients' (e.g. connect.WithGRPC()).
	HTTPClient    *http.Client
	ClientOptions []connect.ClientOption
	API           API
	// BatchSize is the rows per call (0: DefaultBatchSize; at most
	// MaxBatchSize); Parallel the calls in flight (0: DefaultParallel; at
	// most MaxParallel).
	BatchSize, Parallel int
	// DryRun asks the service to validate every row and compute its points
	// without writing anything (validate_only): rows answer would_record,
	// refused or already_recorded. Each row is computed on the member as
	// they stand: a dry run cannot see the effects of the file's earlier
	// rows of the same member (a first-stay bonus, an upgrade).
	DryRun bool
	// Result, if set, gets every row's result, in the file's order, from
	// one goroutine; an error stops the import (Run returns it).
	Result func(Result) error
	// Progress, if set, is called from the same goroutine after each batch's
	// results.
	Progress func(Progress)
	// Stopping, if set, is asked before each batch is sent: true stops the
	// import after the batches in flight (Summary.Stopped). Cancelling the
	// context stops at once: the batches in flight are abandoned (their
	// rows may or may not be recorded; a new run tells).
	Stopping func() bool
	// Now is the clock of elapsed times (nil: time.Now).
	Now func() time.Time
}

// Status is what became of a row.
type Status string

const (
	StatusRecorded        Status = "recorded"
	StatusAlreadyRecorded Status = "already_recorded"
	StatusRefused         Status = "refused"
	StatusWouldRecord     Status = "would_record"
)

// Result is one row's result.
type Result struct {
	Line   int
	Status Status
	// TransactionID is the row's transaction (recorded), or the booking's
	// outcome's (already_recorded); empty when none was posted.
	TransactionID string
	// Points are the points the stay earned, or would earn (would_record).
	Points int64
	// Tier is the member's tier after the stay (RecordStays) or the tier
	// that priced it (AwardStays): regular, silver, gold, platinum.
	Tier string
	// Code, Field and Message say why a row was refused: the service's
	// code ("invalid_argument", "not_found", ...), the column, the problem.
	Code, Field, Message string
	// Local is true for a row refused before it was sent.
	Local bool
	// BookedAt is the row's booked_at, as given.
	BookedAt string
}

// Progress is how far an import is.
type Progress struct {
	// Done rows have their results, of Total in the file.
	Done, Total int
	Elapsed     time.Duration
}

// Refusal is a reason rows were refused, and how many.
type Refusal struct {
	Code, Field string
	Count       int
}

// Summary is what an import did.
type Summary struct {
	// Rows have results, of Total in the file.
	Rows, Total                                     int
	Recorded, AlreadyRecorded, Refused, WouldRecord int
	// Refusals are the refusals by code and field, the most frequent
	// first.
	Refusals []Refusal
	Elapsed  time.Duration
	// Stopped is true when Stopping stopped the import before the end of
	// the file (or the context was cancelled).
	Stopped bool
	// API is the procedure the rows went to.
	API API
}

// RowsPerSecond is the import's rate.
func (s Summary) RowsPerSecond() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Rows) / s.Elapsed.Seconds()
}

// item is a row of a batch: a row to send, or one refused locally.
type item struct {
	ord     int // the row's place among the file's rows, from 0
	row     Row
	refusal *RowError
}

// batch is rows of the file in the file's order, up to BatchSize of them
// to send.
type batch struct {
	items   []item
	keys    []string // the members and bookings of its rows
	results []Result // in items' order, once done
	err     error    // the batch could not be sent: the import stops
}

// Run imports the file opts.Path and returns what it did. The error is a
// reason the import could not go on (the file, the service, the key, ctx);
// rows refused are results, not errors.
func Run(ctx context.Context, opts Options) (Summary, error) {
	im, err := newImporter(opts)
	if err != nil {
		return Summary{}, err
	}
	return im.run(ctx)
}

type importer struct {
	opts     Options
	now      func() time.Time
	booking  loyaltyv1connect.BookingServiceClient
	alliance loyaltyv1connect.AllianceServiceClient

	mu       sync.Mutex
	cond     *sync.Cond
	api      API // decided (APIAuto until the first answer)
	deciding bool
	inFlight int
	ended    int            // batches answered
	keys     map[string]int // members and bookings of the batches in flight
}

func newImporter(opts Options) (*importer, error) {
	switch {
	case opts.Path == "":
		return nil, errors.New("stayimport: no file")
	case opts.BaseURL == "" || opts.APIKey == "":
		return nil, errors.New("stayimport: the service's URL and an API key are required")
	case opts.BatchSize < 0 || opts.BatchSize > MaxBatchSize:
		return nil, fmt.Errorf("stayimport: batch size %d: 1 to %d", opts.BatchSize, MaxBatchSize)
	case opts.Parallel < 0 || opts.Parallel > MaxParallel:
		return nil, fmt.Errorf("stayimport: parallel %d: 1 to %d", opts.Parallel, MaxParallel)
	}
	switch opts.API {
	case APIAuto, APIBooking, APIAlliance:
	default:
		return nil, fmt.Errorf("stayimport: unknown API %q: booking or alliance", opts.API)
	}
	if opts.Format == "" {
		opts.Format = FormatOf(opts.Path)
	}
	if opts.Format != FormatCSV && opts.Format != FormatJSONL {
		return nil, fmt.Errorf("stayimport: unknown format %q: csv or jsonl", opts.Format)
	}
	if opts.BatchSize == 0 {
		opts.BatchSize = DefaultBatchSize
	}
	if opts.Parallel == 0 {
		opts.Parallel = DefaultParallel
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	im := &importer{opts: opts, now: opts.Now, api: opts.API, keys: map[string]int{}}
	if im.now == nil {
		im.now = time.Now
	}
	im.cond = sync.NewCond(&im.mu)
	key := opts.APIKey
	auth := connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+key)
			return next(ctx, req)
		}
	})
	copts := append(slices.Clone(opts.ClientOptions), connect.WithInterceptors(auth))
	url := strings.TrimRight(opts.BaseURL, "/")
	im.booking = loyaltyv1connect.NewBookingServiceClient(opts.HTTPClient, url, copts...)
	im.alliance = loyaltyv1connect.NewAllianceServiceClient(opts.HTTPClient, url, copts...)
	return im, nil
}

func (im *importer) run(ctx context.Context) (Summary, error) {
	start := im.now()
	f, err := os.Open(im.opts.Path)
	if err != nil {
		return Summary{}, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Summary{}, err
	}
	if info.Size() > MaxFileBytes {
		return Summary{}, fmt.Errorf("%s is %d bytes, at most %d: split it", im.opts.Path, info.Size(), MaxFileBytes)
	}
	total, err := countRows(f, im.opts.Format)
	if err != nil {
		return Summary{}, fmt.Errorf("read %s: %w", im.opts.Path, err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		return Summary{}, err
	}
	rd, err := newReader(f, im.opts.Format)
	if err != nil {
		return Summary{}, fmt.Errorf("%s: %w", im.opts.Path, err)
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sum := Summary{Total: total}
	refusals := map[Refusal]int{}
	done := make(chan *batch, im.opts.Parallel)
	var (
		emitErr error
		emitted = make(chan struct{})
	)
	// The emitter: results in the file's order, as batches complete.
	go func() {
		defer close(emitted)
		pending := map[int]Result{}
		next := 0
		for b := range done {
			if b.err != nil && emitErr == nil {
				emitErr = b.err
				cancel()
			}
			if emitErr != nil {
				continue
			}
			for i, it := range b.items {
				pending[it.ord] = b.results[i]
			}
			before := sum.Rows
			for r, ok := pending[next]; ok && emitErr == nil; r, ok = pending[next] {
				delete(pending, next)
				next++
				sum.Rows++
				switch r.Status {
				case StatusRecorded:
					sum.Recorded++
				case StatusAlreadyRecorded:
					sum.AlreadyRecorded++
				case StatusWouldRecord:
					sum.WouldRecord++
				case StatusRefused:
					sum.Refused++
					refusals[Refusal{Code: r.Code, Field: r.Field}]++
				}
				if im.opts.Result != nil {
					if err := im.opts.Result(r); err != nil {
						emitErr = fmt.Errorf("row %d's result: %w", r.Line, err)
						cancel()
					}
				}
			}
			if im.opts.Progress != nil && sum.Rows > before {
				im.opts.Progress(Progress{Done: sum.Rows, Total: total, Elapsed: im.now().Sub(start)})
			}
		}
	}()

	var sending sync.WaitGroup
	readErr := im.dispatch(ctx, rd, &sending, done)
	sending.Wait()
	close(done)
	<-emitted

	sum.Elapsed = im.now().Sub(start)
	sum.API = im.api
	if sum.API == APIAuto {
		sum.API = APIBooking
	}
	for r, n := range refusals {
		r.Count = n
		sum.Refusals = append(sum.Refusals, r)
	}
	slices.SortFunc(sum.Refusals, func(a, b Refusal) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Code+"\x00"+a.Field, b.Code+"\x00"+b.Field)
	})
	sum.Stopped = sum.Rows < total
	switch {
	case emitErr != nil:
		return sum, emitErr
	case readErr != nil:
		return sum, readErr
	}
	return sum, nil
}

// dispatch reads batches and starts each when a lane is free; it returns
// at the end of the file, when stopped, or at an error of the file.
//
// A member's rows (and a booking's) are recorded in the file's order: the
// service keeps the order within a batch, and dispatch never sends a row
// while a batch in flight holds a row of the same member or booking. Such
// a row is carried over to a later batch, with every later row of its
// member and booking, while the other rows go on; at most maxCarried rows
// wait so.
func (im *importer) dispatch(ctx context.Context, rd *reader, sending *sync.WaitGroup, done chan<- *batch) error {
	maxCarried := 4 * im.opts.BatchSize
	var (
		carried []item
		ord     int
		eof     bool
		readErr error
	)
	for {
		if ctx.Err() != nil || im.opts.Stopping != nil && im.opts.Stopping() {
			return readErr
		}
		im.mu.Lock()
		for im.inFlight >= im.opts.Parallel || im.deciding {
			im.cond.Wait()
		}
		ended := im.ended
		im.mu.Unlock()
		// Asked to stop while waiting for a lane: nothing more is sent.
		if ctx.Err() != nil || im.opts.Stopping != nil && im.opts.Stopping() {
			return readErr
		}

		b := &batch{}
		inBatch := map[string]bool{}
		held := map[string]bool{} // keys of rows carried over in this pass
		sendable := 0
		// take adds it to the batch unless a batch in flight, or a row
		// carried over before it, has its member or booking.
		take := func(it item) bool {
			if it.refusal != nil {
				b.items = append(b.items, it)
				return true
			}
			keys := [2]string{it.row.memberKey, it.row.bookingKey}
			if held[keys[0]] || held[keys[1]] || im.busy(keys[0]) || im.busy(keys[1]) {
				held[keys[0]], held[keys[1]] = true, true
				return false
			}
			b.items = append(b.items, it)
			sendable++
			for _, k := range keys {
				if !inBatch[k] {
					inBatch[k] = true
					b.keys = append(b.keys, k)
				}
			}
			return true
		}
		var still []item
		for _, it := range carried {
			if sendable >= im.opts.BatchSize || !take(it) {
				held[it.row.memberKey], held[it.row.bookingKey] = true, true
				still = append(still, it)
			}
		}
		carried = still
		for !eof && sendable < im.opts.BatchSize && len(carried) < maxCarried {
			row, err := rd.next()
			var rerr *RowError
			switch {
			case errors.As(err, &rerr):
				take(item{ord: ord, refusal: rerr})
				ord++
			case err != nil:
				eof = true
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
			default:
				if !take(item{ord: ord, row: row}) {
					carried = append(carried, item{ord: ord, row: row})
				}
				ord++
			}
		}
		// The rows read before an unreadable part of the file are sent; the
		// ones carried over then are not.
		if readErr != nil {
			carried = nil
		}
		if len(b.items) == 0 {
			if eof && len(carried) == 0 {
				return readErr
			}
			// Every row waits for a batch in flight: wait for one to end.
			im.mu.Lock()
			for im.inFlight > 0 && im.ended == ended {
				im.cond.Wait()
			}
			im.mu.Unlock()
			continue
		}
		im.mu.Lock()
		im.inFlight++
		for _, k := range b.keys {
			im.keys[k]++
		}
		// The first batch decides the API; the others wait for it.
		if im.api == APIAuto && sendable > 0 {
			im.deciding = true
		}
		im.mu.Unlock()
		sending.Add(1)
		go func() {
			defer sending.Done()
			im.send(ctx, b)
			im.mu.Lock()
			im.inFlight--
			im.ended++
			for _, k := range b.keys {
				if im.keys[k]--; im.keys[k] == 0 {
					delete(im.keys, k)
				}
			}
			im.mu.Unlock()
			im.cond.Broadcast()
			done <- b
		}()
	}
}

// busy says whether a batch in flight has a row of key's member or
// booking.
func (im *importer) busy(key string) bool {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.keys[key] > 0
}

// send calls the service for the batch's rows and fills its results.
func (im *importer) send(ctx context.Context, b *batch) {
	b.results = make([]Result, len(b.items))
	var toSend []int // indices in items
	for i, it := range b.items {
		if it.refusal != nil {
			b.results[i] = localRefusal(it.refusal, "")
			continue
		}
		toSend = append(toSend, i)
	}
	for attempt := 1; len(toSend) > 0; attempt++ {
		api := im.decidedAPI()
		used := api
		if used == APIAuto {
			used = APIBooking
		}
		var rows []int
		for _, i := range toSend {
			row := b.items[i].row
			if rerr := row.checkFor(api); api != APIAuto && rerr != nil {
				b.results[i] = localRefusal(rerr, row.BookedAt)
				continue
			}
			rows = append(rows, i)
		}
		if len(rows) == 0 {
			return
		}
		results, err := im.call(ctx, used, b, rows)
		var ce *connect.Error
		switch {
		case err == nil:
			im.decide(used)
		case api == APIAuto && errors.As(err, &ce) && ce.Code() == connect.CodePermissionDenied:
			// A partner's key: the same rows to AwardStays.
			im.decide(APIAlliance)
			attempt--
			continue
		case ctx.Err() != nil:
			b.err = ctx.Err()
			im.decide(used)
			return
		case retryable(connect.CodeOf(err)) && attempt < maxAttempts:
			if !sleep(ctx, backoff(attempt)) {
				b.err = ctx.Err()
				im.decide(used)
				return
			}
			continue
		default:
			b.err = fmt.Errorf("%s (line %d on): %w", procedureOf(used), b.items[rows[0]].row.Line, err)
			im.decide(used)
			return
		}
		toSend = toSend[:0]
		for k, i := range rows {
			b.results[i] = results[k]
			if results[k].Status == StatusRefused && retryable(codeNamed(results[k].Code)) && attempt < maxAttempts {
				toSend = append(toSend, i)
			}
		}
		if len(toSend) > 0 && !sleep(ctx, backoff(attempt)) {
			b.err = ctx.Err()
			return
		}
	}
}

// call sends rows (indices of b.items) to api and returns their results.
func (im *importer) call(ctx context.Context, api API, b *batch, rows []int) ([]Result, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	out := make([]Result, len(rows))
	if api == APIAlliance {
		req := &loyaltyv1.AwardStaysRequest{Stays: make([]*loyaltyv1.AwardStayRequest, len(rows)), ValidateOnly: im.opts.DryRun}
		for k, i := range rows {
			req.Stays[k] = b.items[i].row.awardRequest()
		}
		res, err := im.alliance.AwardStays(ctx, connect.NewRequest(req))
		if err != nil {
			return nil, err
		}
		if n := len(res.Msg.GetResults()); n != len(rows) {
			return nil, fmt.Errorf("AwardStays answered %d results for %d stays", n, len(rows))
		}
		for k, r := range res.Msg.GetResults() {
			row := b.items[rows[k]].row
			out[k] = resultOf(row, r.GetStatus(), r.GetExisting(), r.GetError())
			if t := r.GetRecorded(); t != nil {
				out[k].TransactionID, out[k].Points, out[k].Tier = t.GetTransaction().GetTransactionId(), t.GetTransaction().GetPointsIssued(), tierName(t.GetTier())
			}
		}
		return out, nil
	}
	req := &loyaltyv1.RecordStaysRequest{Stays: make([]*loyaltyv1.RecordStayRequest, len(rows)), ValidateOnly: im.opts.DryRun}
	for k, i := range rows {
		req.Stays[k] = b.items[i].row.recordRequest()
	}
	res, err := im.booking.RecordStays(ctx, connect.NewRequest(req))
	if err != nil {
		return nil, err
	}
	if n := len(res.Msg.GetResults()); n != len(rows) {
		return nil, fmt.Errorf("RecordStays answered %d results for %d stays", n, len(rows))
	}
	for k, r := range res.Msg.GetResults() {
		row := b.items[rows[k]].row
		out[k] = resultOf(row, r.GetStatus(), r.GetExisting(), r.GetError())
		if t := r.GetRecorded(); t != nil {
			out[k].TransactionID, out[k].Points, out[k].Tier = t.GetTransaction().GetTransactionId(), t.GetTransaction().GetAvailablePointsDelta(), tierName(t.GetTier())
		}
	}
	return out, nil
}

func procedureOf(api API) string {
	if api == APIAlliance {
		return "AwardStays"
	}
	return "RecordStays"
}

// resultOf is a row's result but for what the recorded answer says.
func resultOf(row Row, status loyaltyv1.StayRowStatus, existing *loyaltyv1.RecordedOutcome, rerr *loyaltyv1.StayRowError) Result {
	out := Result{Line: row.Line, BookedAt: row.BookedAt}
	switch status {
	case loyaltyv1.StayRowStatus_STAY_ROW_STATUS_RECORDED:
		out.Status = StatusRecorded
	case loyaltyv1.StayRowStatus_STAY_ROW_STATUS_WOULD_RECORD:
		out.Status = StatusWouldRecord
	case loyaltyv1.StayRowStatus_STAY_ROW_STATUS_ALREADY_RECORDED:
		out.Status, out.TransactionID = StatusAlreadyRecorded, existing.GetTransactionId()
	default:
		out.Status = StatusRefused
		out.Code, out.Field, out.Message = rerr.GetCode(), columnOf(rerr.GetField(), row), rerr.GetMessage()
		if out.Code == "" {
			out.Code, out.Message = "unknown", fmt.Sprintf("the service answered status %s", status)
		}
	}
	return out
}

// localRefusal is the result of a row refused before it was sent.
func localRefusal(e *RowError, bookedAt string) Result {
	return Result{Line: e.Line, Status: StatusRefused, Code: connect.CodeInvalidArgument.String(), Field: e.Column,
		Message: e.Problem, Local: true, BookedAt: bookedAt}
}

// columnOf is the file's column for a field the service names from the
// batch's root ("stays[3].nights[0].roomCharge.amount": room_charges).
func columnOf(field string, row Row) string {
	if field == "" {
		return ""
	}
	if _, rest, ok := strings.Cut(field, "]."); ok && strings.HasPrefix(field, "stays[") {
		field = rest
	}
	head, _, _ := strings.Cut(field, ".")
	head, _, _ = strings.Cut(head, "[")
	switch {
	case head == "nights" && strings.HasSuffix(field, "currencyCode"):
		return ColCurrencyCode
	case head == "nights" && strings.Contains(field, "."), head == "nights" && row.chargeColumn == ColRoomCharges:
		return row.chargeColumn
	case head == "nights":
		return ColNights
	}
	names := map[string]string{"memberNumber": ColMemberNumber, "propertyId": ColPropertyID, "stayId": ColStayID,
		"arrivalDate": ColArrivalDate, "departureDate": ColDepartureDate, "channel": ColChannel,
		"bookedForOther": ColBookedForOther, "familyName": ColFamilyName, "idempotencyKey": colIdempotencyKey}
	if c, ok := names[head]; ok {
		return c
	}
	return field
}

func tierName(t loyaltyv1.Tier) string {
	if t == loyaltyv1.Tier_TIER_UNSPECIFIED {
		return ""
	}
	return strings.ToLower(strings.TrimPrefix(t.String(), "TIER_"))
}

// retryable codes mean "not done for now, send it again as it was".
func retryable(c connect.Code) bool {
	switch c {
	case connect.CodeUnavailable, connect.CodeDeadlineExceeded, connect.CodeAborted:
		return true
	}
	return false
}

func codeNamed(name string) connect.Code {
	var c connect.Code
	if err := c.UnmarshalText([]byte(name)); err != nil {
		return connect.CodeUnknown
	}
	return c
}

// backoff is the wait before attempt+1: exponential, jittered, capped.
func backoff(attempt int) time.Duration {
	d := min(100*time.Millisecond<<min(attempt-1, 10), maxBackoff)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (im *importer) decidedAPI() API {
	im.mu.Lock()
	defer im.mu.Unlock()
	return im.api
}

// decide settles the API on the first answer (a decided one stays) and
// lets the other batches go.
func (im *importer) decide(api API) {
	im.mu.Lock()
	if im.api == APIAuto {
		im.api = api
	}
	im.deciding = false
	im.mu.Unlock()
	im.cond.Broadcast()
}
