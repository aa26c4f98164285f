package stayimport

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

// Limits of a stay file. The field limits are the API's.
const (
	MaxFileBytes  = 1 << 30
	MaxLineBytes  = 64 << 10
	MaxRows       = 10_000_000
	maxIDBytes    = 64  // property_id, stay_id
	maxMemberLen  = 32  // the service's are 10 digits; anything longer is not one
	maxNights     = 90  // the API's
	maxFamilyName = 100 // characters
	maxCurrency   = 3
)

// The columns of a stay file (CSV header, JSON Lines keys).
const (
	ColPropertyID      = "property_id"
	ColStayID          = "stay_id"
	ColMemberNumber    = "member_number"
	ColArrivalDate     = "arrival_date"
	ColDepartureDate   = "departure_date"
	ColRoomCharges     = "room_charges"
	ColRoomCharge      = "room_charge"
	ColNights          = "nights"
	ColCurrencyCode    = "currency_code"
	ColChannel         = "channel"
	ColBookedForOther  = "booked_for_other"
	ColUnbookedNights  = "unbooked_extension_nights"
	ColBookedAt        = "booked_at"
	ColFamilyName      = "family_name"
	colIdempotencyKey  = "idempotency_key" // not a column: a field the service may name
	chargeSeparator    = ";"
	idempotencyKeyBase = "import:"
)

// Columns are every column a file may have, in the order of the
// documentation.
var Columns = []string{ColPropertyID, ColStayID, ColMemberNumber, ColArrivalDate, ColDepartureDate, ColRoomCharges,
	ColRoomCharge, ColNights, ColCurrencyCode, ColChannel, ColBookedForOther, ColUnbookedNights, ColBookedAt, ColFamilyName}

// requiredColumns must be in every CSV header; the charges are
// room_charges, or room_charge and nights.
var requiredColumns = []string{ColPropertyID, ColStayID, ColMemberNumber, ColArrivalDate, ColDepartureDate, ColCurrencyCode}

// chargeAmount is the API's decimal form of money.
var chargeAmount = regexp.MustCompile(`^-?[0-9]{1,12}(\.[0-9]{1,2})?$`)

// Row is one stay of a file, checked as far as the file alone can tell.
type Row struct {
	// Line is the row's line in the file, from 1 (a CSV header is line 1).
	Line                             int
	PropertyID, StayID, MemberNumber string
	ArrivalDate, DepartureDate       string // YYYY-MM-DD
	// Charges are the nights' room charges, one per night.
	Charges                 []string
	CurrencyCode            string
	Channel                 loyaltyv1.BookingChannel
	BookedForOther          bool
	UnbookedExtensionNights int
	BookedAt                string // RFC 3339 as given, or empty
	FamilyName              string
	IdempotencyKey          string

	chargeColumn          string // room_charges or room_charge: what the file used
	memberKey, bookingKey string // what orders the row among others (see Run)
	arrival, departure    time.Time
}

// RowError is a row refused before it is sent: the column and the problem.
type RowError struct {
	Line    int
	Column  string
	Problem string
}

func (e *RowError) Error() string {
	if e.Column == "" {
		return fmt.Sprintf("line %d: %s", e.Line, e.Problem)
	}
	return fmt.Sprintf("line %d: %s: %s", e.Line, e.Column, e.Problem)
}

func rowError(line int, column, format string, args ...any) *RowError {
	return &RowError{Line: line, Column: column, Problem: fmt.Sprintf(format, args...)}
}

// clip shortens a value quoted in a message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// buildRow checks one row's values (column -> text; a column absent or
// empty is not given) and derives its idempotency key.
func buildRow(line int, values map[string]string) (Row, *RowError) {
	r := Row{Line: line}
	get := func(col string) string { return strings.TrimSpace(values[col]) }
	required := func(col string, maxBytes int) (string, *RowError) {
		v := get(col)
		switch {
		case v == "":
			return "", rowError(line, col, "is required")
		case len(v) > maxBytes:
			return "", rowError(line, col, "is %d bytes, at most %d", len(v), maxBytes)
		case !utf8.ValidString(v):
			return "", rowError(line, col, "is not UTF-8")
		}
		return v, nil
	}
	var err *RowError
	if r.PropertyID, err = required(ColPropertyID, maxIDBytes); err != nil {
		return r, err
	}
	if r.StayID, err = required(ColStayID, maxIDBytes); err != nil {
		return r, err
	}
	if r.MemberNumber, err = required(ColMemberNumber, maxMemberLen); err != nil {
		return r, err
	}
	for _, d := range []struct {
		col  string
		text *string
		day  *time.Time
	}{{ColArrivalDate, &r.ArrivalDate, &r.arrival}, {ColDepartureDate, &r.DepartureDate, &r.departure}} {
		v, err := required(d.col, len(time.DateOnly))
		if err != nil {
			if err.Problem != "is required" {
				err.Problem = fmt.Sprintf("must be a date YYYY-MM-DD, got %q", clip(get(d.col)))
			}
			return r, err
		}
		day, perr := time.Parse(time.DateOnly, v)
		if perr != nil || len(v) != len(time.DateOnly) {
			return r, rowError(line, d.col, "must be a date YYYY-MM-DD, got %q", clip(v))
		}
		*d.text, *d.day = v, day
	}
	nights := int(r.departure.Sub(r.arrival).Hours()/24 + 0.5)
	if nights < 1 || nights > maxNights {
		return r, rowError(line, ColDepartureDate, "must be 1 to %d days after arrival_date", maxNights)
	}
	if err := r.setCharges(get(ColRoomCharges), get(ColRoomCharge), get(ColNights), nights); err != nil {
		return r, err
	}
	if r.CurrencyCode, err = required(ColCurrencyCode, maxCurrency); err != nil {
		return r, err
	}
	r.CurrencyCode = strings.ToUpper(r.CurrencyCode)
	if v := get(ColChannel); v != "" {
		c, ok := loyaltyv1.BookingChannel_value["BOOKING_CHANNEL_"+strings.ToUpper(v)]
		if !ok || c == 0 {
			return r, rowError(line, ColChannel, "unknown channel %q: one of %s", clip(v), strings.Join(ChannelNames(), ", "))
		}
		r.Channel = loyaltyv1.BookingChannel(c)
	}
	if v := get(ColBookedForOther); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			return r, rowError(line, ColBookedForOther, "must be true or false, got %q", clip(v))
		}
		r.BookedForOther = b
	}
	if v := get(ColUnbookedNights); v != "" {
		n, perr := strconv.Atoi(v)
		if perr != nil || n < 0 || n > nights {
			return r, rowError(line, ColUnbookedNights, "must be a number of nights from 0 to %d (the stay's), got %q", nights, clip(v))
		}
		r.UnbookedExtensionNights = n
	}
	if v := get(ColBookedAt); v != "" {
		at, perr := time.Parse(time.RFC3339Nano, v)
		if perr != nil {
			return r, rowError(line, ColBookedAt, "must be an RFC 3339 time like 2026-11-01T10:00:00+08:00, got %q", clip(v))
		}
		// The hotel's zone is the service's to know: any instant of the
		// departure day, in any zone, is not after it.
		if at.After(r.departure.Add(38 * time.Hour)) {
			return r, rowError(line, ColBookedAt, "is after the departure date %s", r.DepartureDate)
		}
		r.BookedAt = v
	}
	if v := get(ColFamilyName); v != "" {
		if n := utf8.RuneCountInString(v); n > maxFamilyName || !utf8.ValidString(v) {
			return r, rowError(line, ColFamilyName, "at most %d characters of UTF-8", maxFamilyName)
		}
		r.FamilyName = v
	}
	r.memberKey, r.bookingKey = "m\x00"+r.MemberNumber, "b\x00"+r.PropertyID+"\x00"+r.StayID
	r.IdempotencyKey = r.key()
	return r, nil
}

// setCharges reads the charges: room_charges ("388.00;388.00", one per
// night), or room_charge with nights (the same every night).
func (r *Row) setCharges(list, one, nightsText string, nights int) *RowError {
	switch {
	case list != "" && one != "":
		return rowError(r.Line, ColRoomCharges, "give room_charges, or room_charge and nights, not both")
	case list != "":
		r.chargeColumn = ColRoomCharges
		r.Charges = strings.Split(list, chargeSeparator)
		for i, c := range r.Charges {
			r.Charges[i] = strings.TrimSpace(c)
		}
		if len(r.Charges) != nights {
			return rowError(r.Line, ColRoomCharges, "has %d charges for a stay of %d nights", len(r.Charges), nights)
		}
		if nightsText != "" && nightsText != strconv.Itoa(nights) {
			return rowError(r.Line, ColNights, "is %q for a stay of %d nights", clip(nightsText), nights)
		}
	case one != "":
		r.chargeColumn = ColRoomCharge
		if nightsText == "" {
			return rowError(r.Line, ColNights, "is required with room_charge")
		}
		n, err := strconv.Atoi(nightsText)
		if err != nil || n != nights {
			return rowError(r.Line, ColNights, "is %q for a stay of %d nights (arrival_date to departure_date)", clip(nightsText), nights)
		}
		r.Charges = slices.Repeat([]string{one}, n)
	default:
		return rowError(r.Line, ColRoomCharges, "is required (or room_charge and nights)")
	}
	for _, c := range r.Charges {
		if !chargeAmount.MatchString(c) {
			return rowError(r.Line, r.chargeColumn, "must be a decimal like 388.00, got %q", clip(c))
		}
	}
	return nil
}

// key is the row's idempotency key: its line, its booking and its
// content. The same file run again sends each row under the same key (the
// service replays it and records nothing); the same booking on another
// line, or edited, has another key, and the service answers that the
// booking already has its outcome.
func (r Row) key() string {
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%s\x00%t\x00%d\x00%s",
		r.Line, r.PropertyID, r.StayID, r.MemberNumber, r.ArrivalDate, r.DepartureDate, strings.Join(r.Charges, chargeSeparator),
		r.CurrencyCode, r.Channel, r.BookedForOther, r.UnbookedExtensionNights, r.FamilyName)
	return idempotencyKeyBase + base64.RawURLEncoding.EncodeToString(h.Sum(nil))[:32]
}

// ChannelNames are the channels a file may name (case-insensitive).
func ChannelNames() []string {
	var out []string
	for i := int32(1); ; i++ {
		name, ok := loyaltyv1.BookingChannel_name[i]
		if !ok {
			return out
		}
		out = append(out, strings.TrimPrefix(name, "BOOKING_CHANNEL_"))
	}
}

// recordRequest is the row as RecordStays takes it.
func (r Row) recordRequest() *loyaltyv1.RecordStayRequest {
	return &loyaltyv1.RecordStayRequest{IdempotencyKey: r.IdempotencyKey, MemberNumber: r.MemberNumber, PropertyId: r.PropertyID,
		StayId: r.StayID, ArrivalDate: r.ArrivalDate, DepartureDate: r.DepartureDate, Nights: r.nights(),
		Channel: r.Channel, BookedForOther: r.BookedForOther}
}

// awardRequest is the row as AwardStays takes it.
func (r Row) awardRequest() *loyaltyv1.AwardStayRequest {
	return &loyaltyv1.AwardStayRequest{IdempotencyKey: r.IdempotencyKey, MemberNumber: r.MemberNumber, PropertyId: r.PropertyID,
		StayId: r.StayID, ArrivalDate: r.ArrivalDate, DepartureDate: r.DepartureDate, Nights: r.nights(), FamilyName: r.FamilyName}
}

func (r Row) nights() []*loyaltyv1.StayNight {
	out := make([]*loyaltyv1.StayNight, len(r.Charges))
	for i, c := range r.Charges {
		out[i] = &loyaltyv1.StayNight{RoomCharge: &loyaltyv1.Money{CurrencyCode: r.CurrencyCode, Amount: c},
			UnbookedExtension: i >= len(r.Charges)-r.UnbookedExtensionNights}
	}
	return out
}

// checkFor refuses a row the API cannot take: RecordStays needs a
// channel, AwardStays the member's family name.
func (r Row) checkFor(api API) *RowError {
	switch {
	case api == APIBooking && r.Channel == 0:
		return rowError(r.Line, ColChannel, "is required: one of %s", strings.Join(ChannelNames(), ", "))
	case api == APIAlliance && r.FamilyName == "":
		return rowError(r.Line, ColFamilyName, "is required for a partner's key: the member's family name")
	}
	return nil
}

// reader reads a file's rows one at a time.
type reader struct {
	in     *bufio.Reader
	format Format
	line   int
	header []string
	rows   int
}

// errFile is an error of the whole file (its header, a line too long, too
// many rows): nothing after it is read.
type errFile struct{ error }

func newReader(in io.Reader, format Format) (*reader, error) {
	r := &reader{in: bufio.NewReaderSize(in, MaxLineBytes+1), format: format}
	if format == FormatCSV {
		line, err := r.nextLine()
		if errors.Is(err, io.EOF) {
			return nil, errFile{errors.New("the file is empty: a CSV file starts with its header line")}
		}
		if err != nil {
			return nil, err
		}
		if r.header, err = parseHeader(line); err != nil {
			return nil, errFile{fmt.Errorf("line 1 (header): %w", err)}
		}
	}
	return r, nil
}

// parseHeader checks a CSV header: known columns, once each, the required
// ones present.
func parseHeader(line string) ([]string, error) {
	cols, err := csv.NewReader(strings.NewReader(line)).Read()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, c := range cols {
		c = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(c, "\ufeff")))
		cols[i] = c
		if !slices.Contains(Columns, c) {
			return nil, fmt.Errorf("unknown column %q: the columns are %s", clip(c), strings.Join(Columns, ", "))
		}
		if seen[c] {
			return nil, fmt.Errorf("column %q appears twice", c)
		}
		seen[c] = true
	}
	for _, c := range requiredColumns {
		if !seen[c] {
			return nil, fmt.Errorf("column %q is missing (required: %s, and room_charges or room_charge and nights)", c, strings.Join(requiredColumns, ", "))
		}
	}
	if !seen[ColRoomCharges] && (!seen[ColRoomCharge] || !seen[ColNights]) {
		return nil, errors.New("the charges are missing: give a room_charges column (per-night amounts separated by ';'), or room_charge and nights")
	}
	return cols, nil
}

// nextLine is the file's next line without its end; io.EOF at the end.
func (r *reader) nextLine() (string, error) {
	b, err := r.in.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return "", errFile{fmt.Errorf("line %d is longer than %d bytes", r.line+1, MaxLineBytes)}
	}
	if errors.Is(err, io.EOF) && len(b) == 0 {
		return "", io.EOF
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	r.line++
	return string(bytes.TrimRight(b, "\r\n")), nil
}

// next is the next row: a Row, or a *RowError for a row refused; io.EOF
// at the end; an errFile or read error stops the file.
func (r *reader) next() (Row, error) {
	for {
		line, err := r.nextLine()
		if err != nil {
			return Row{}, err
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if r.rows++; r.rows > MaxRows {
			return Row{}, errFile{fmt.Errorf("line %d: more than %d rows: split the file", r.line, MaxRows)}
		}
		var values map[string]string
		var rerr *RowError
		if r.format == FormatCSV {
			values, rerr = r.csvValues(line)
		} else {
			values, rerr = jsonValues(r.line, line)
		}
		if rerr != nil {
			return Row{}, rerr
		}
		row, rerr := buildRow(r.line, values)
		if rerr != nil {
			return Row{}, rerr
		}
		return row, nil
	}
}

func (r *reader) csvValues(line string) (map[string]string, *RowError) {
	cr := csv.NewReader(strings.NewReader(line))
	cr.FieldsPerRecord = -1
	fields, err := cr.Read()
	if err != nil {
		return nil, rowError(r.line, "", "not a CSV line: %v", err)
	}
	if len(fields) != len(r.header) {
		return nil, rowError(r.line, "", "has %d fields, the header %d", len(fields), len(r.header))
	}
	values := make(map[string]string, len(fields))
	for i, f := range fields {
		values[r.header[i]] = f
	}
	return values, nil
}

// jsonValues reads a JSON Lines row: an object whose keys are the
// columns; strings, numbers and booleans as their text; room_charges a
// list of amounts or a text like CSV's.
func jsonValues(line int, text string) (map[string]string, *RowError) {
	var obj map[string]json.RawMessage
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil || obj == nil {
		return nil, rowError(line, "", "not a JSON object: %v", err)
	}
	if dec.More() {
		return nil, rowError(line, "", "more than one JSON value on the line")
	}
	var unknown []string
	for k := range obj {
		if !slices.Contains(Columns, k) {
			unknown = append(unknown, strconv.Quote(clip(k)))
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return nil, rowError(line, "", "unknown key %s: the keys are %s", strings.Join(unknown, ", "), strings.Join(Columns, ", "))
	}
	values := make(map[string]string, len(obj))
	for k, raw := range obj {
		v, err := jsonText(raw, k == ColRoomCharges)
		if err != nil {
			return nil, rowError(line, k, "%v", err)
		}
		values[k] = v
	}
	return values, nil
}

func jsonText(raw json.RawMessage, list bool) (string, error) {
	raw = bytes.TrimSpace(raw)
	switch {
	case bytes.Equal(raw, []byte("null")):
		return "", nil
	case len(raw) > 0 && raw[0] == '"':
		var s string
		err := json.Unmarshal(raw, &s)
		return s, err
	case len(raw) > 0 && raw[0] == '[' && list:
		var items []json.RawMessage
		if err := json.Unmarshal(raw, &items); err != nil {
			return "", err
		}
		parts := make([]string, len(items))
		for i, it := range items {
			s, err := jsonText(it, false)
			if err != nil {
				return "", err
			}
			parts[i] = s
		}
		return strings.Join(parts, chargeSeparator), nil
	case bytes.Equal(raw, []byte("true")), bytes.Equal(raw, []byte("false")):
		return string(raw), nil
	case len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9'):
		return string(raw), nil // a number as written: 388.00 stays 388.00
	}
	return "", fmt.Errorf("must be a string, a number or a boolean")
}

// countRows counts a file's non-blank lines (less the CSV header): the
// total that progress shows.
func countRows(in io.Reader, format Format) (int, error) {
	br := bufio.NewReaderSize(in, 1<<16)
	n, blank := 0, true
	for {
		b, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
		switch b {
		case '\n':
			if !blank {
				n++
			}
			blank = true
		case ' ', '\t', '\r':
		default:
			blank = false
		}
	}
	if !blank {
		n++
	}
	if format == FormatCSV && n > 0 {
		n-- // the header
	}
	return n, nil
}
