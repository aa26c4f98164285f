package stayimport

import (
	"errors"
	"io"
	"strings"
	"testing"

	loyaltyv1 "github.com/loyalty-ledger/loyalty/proto/gen/loyalty/v1"
)

const header = "property_id,stay_id,member_number,arrival_date,departure_date,room_charges,room_charge,nights,currency_code,channel,booked_for_other,unbooked_extension_nights,booked_at,family_name"

// readAll reads a file's rows: rows and refusals by line.
func readAll(t *testing.T, format Format, text string) ([]Row, []*RowError, error) {
	t.Helper()
	rd, err := newReader(strings.NewReader(text), format)
	if err != nil {
		return nil, nil, err
	}
	var rows []Row
	var refused []*RowError
	for {
		r, err := rd.next()
		var re *RowError
		switch {
		case errors.Is(err, io.EOF):
			return rows, refused, nil
		case errors.As(err, &re):
			refused = append(refused, re)
		case err != nil:
			return rows, refused, err
		default:
			rows = append(rows, r)
		}
	}
}

// TestARowIsRefusedForItsColumn: each rule of the file refuses the row
// naming the column, on the row's line.
func TestARowIsRefusedForItsColumn(t *testing.T) {
	for _, tc := range []struct {
		name, row, column, problem string
	}{
		{"a good row", "H,S,1234567890,2026-11-01,2026-11-03,388.00;388.00,,,CNY,app,true,1,2026-10-01T10:00:00+08:00,Wei", "", ""},
		{"one charge for every night", "H,S,1234567890,2026-11-01,2026-11-03,,388.00,2,cny,WEB,,,,", "", ""},
		{"no property", ",S,1234567890,2026-11-01,2026-11-03,1;1,,,CNY,APP,,,,", ColPropertyID, "is required"},
		{"a property id too long", strings.Repeat("H", 65) + ",S,1234567890,2026-11-01,2026-11-03,1;1,,,CNY,APP,,,,", ColPropertyID, "at most 64"},
		{"no member", "H,S,,2026-11-01,2026-11-03,1;1,,,CNY,APP,,,,", ColMemberNumber, "is required"},
		{"a date that is none", "H,S,1,2026-02-30,2026-03-02,1;1,,,CNY,APP,,,,", ColArrivalDate, "YYYY-MM-DD"},
		{"a date in another form", "H,S,1,01/11/2026,2026-11-03,1;1,,,CNY,APP,,,,", ColArrivalDate, "YYYY-MM-DD"},
		{"departure before arrival", "H,S,1,2026-11-03,2026-11-01,1;1,,,CNY,APP,,,,", ColDepartureDate, "1 to 90 days"},
		{"charges for other nights", "H,S,1,2026-11-01,2026-11-03,1,,,CNY,APP,,,,", ColRoomCharges, "1 charges for a stay of 2 nights"},
		{"nights that do not match the dates", "H,S,1,2026-11-01,2026-11-03,,1.00,3,CNY,APP,,,,", ColNights, "2 nights"},
		{"a charge without nights", "H,S,1,2026-11-01,2026-11-03,,1.00,,CNY,APP,,,,", ColNights, "required"},
		{"both forms of charges", "H,S,1,2026-11-01,2026-11-03,1;1,1.00,2,CNY,APP,,,,", ColRoomCharges, "not both"},
		{"no charges", "H,S,1,2026-11-01,2026-11-03,,,,CNY,APP,,,,", ColRoomCharges, "required"},
		{"a charge that is no amount", `H,S,1,2026-11-01,2026-11-03,"1;3,88",,,CNY,APP,,,,`, ColRoomCharges, `"3,88"`},
		{"three decimals", "H,S,1,2026-11-01,2026-11-03,,1.005,2,CNY,APP,,,,", ColRoomCharge, "decimal"},
		{"no currency", "H,S,1,2026-11-01,2026-11-03,1;1,,,,APP,,,,", ColCurrencyCode, "required"},
		{"an unknown channel", "H,S,1,2026-11-01,2026-11-03,1;1,,,CNY,PIGEON,,,,", ColChannel, "FRONT_DESK"},
		{"booked_for_other not a boolean", "H,S,1,2026-11-01,2026-11-03,1;1,,,CNY,APP,yes please,,,", ColBookedForOther, "true or false"},
		{"more unbooked nights than nights", "H,S,1,2026-11-01,2026-11-03,1;1,,,CNY,APP,,3,,", ColUnbookedNights, "0 to 2"},
		{"booked_at not RFC 3339", "H,S,1,2026-11-01,2026-11-03,1;1,,,CNY,APP,,,2026-10-01,", ColBookedAt, "RFC 3339"},
		{"booked_at after departure", "H,S,1,2026-11-01,2026-11-03,1;1,,,CNY,APP,,,2026-11-05T00:00:00Z,", ColBookedAt, "after the departure"},
		{"too few fields", "H,S,1,2026-11-01", "", "has 4 fields, the header 14"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, refused, err := readAll(t, FormatCSV, header+"\n\n"+tc.row+"\n")
			if err != nil {
				t.Fatal(err)
			}
			if tc.problem == "" {
				if len(rows) != 1 || len(refused) != 0 {
					t.Fatalf("refused: %v", refused)
				}
				if rows[0].Line != 3 {
					t.Errorf("line %d, want 3 (the header is 1, a blank line 2)", rows[0].Line)
				}
				return
			}
			if len(refused) != 1 {
				t.Fatalf("not refused: %+v", rows)
			}
			if r := refused[0]; r.Line != 3 || r.Column != tc.column || !strings.Contains(r.Problem, tc.problem) {
				t.Errorf("refused line %d %q: %q, want line 3 %q: ...%s...", r.Line, r.Column, r.Problem, tc.column, tc.problem)
			}
		})
	}
}

// TestAGoodRowBecomesItsRequest: the charges, channel, extensions and
// flags reach the request as the API has them.
func TestAGoodRowBecomesItsRequest(t *testing.T) {
	rows, _, err := readAll(t, FormatCSV, header+"\nH,S,1234567890,2026-11-01,2026-11-04,100.00;200.00;300.00,,,cny,front_desk,TRUE,1,,Wei\n")
	if err != nil || len(rows) != 1 {
		t.Fatal(rows, err)
	}
	req := rows[0].recordRequest()
	if req.GetChannel() != loyaltyv1.BookingChannel_BOOKING_CHANNEL_FRONT_DESK || !req.GetBookedForOther() || len(req.GetNights()) != 3 {
		t.Fatalf("%v", req)
	}
	for i, n := range req.GetNights() {
		if n.GetUnbookedExtension() != (i == 2) || n.GetRoomCharge().GetCurrencyCode() != "CNY" {
			t.Errorf("night %d: %v", i, n)
		}
	}
	// A partner's stay too: its unbooked extension nights earn nothing.
	if award := rows[0].awardRequest(); award.GetFamilyName() != "Wei" || len(award.GetNights()) != 3 || !award.GetNights()[2].GetUnbookedExtension() ||
		award.GetNights()[1].GetUnbookedExtension() {
		t.Errorf("award %v", award)
	}
}

// TestTheKeyIsTheRowsLineBookingAndContent: the same row on the same line
// has the same key in CSV and JSON Lines; another line, another charge or
// another member, another key.
func TestTheKeyIsTheRowsLineBookingAndContent(t *testing.T) {
	csvRows, _, err := readAll(t, FormatCSV, "property_id,stay_id,member_number,arrival_date,departure_date,room_charges,currency_code,channel\n"+
		"H,S,1234567890,2026-11-01,2026-11-03,1.00;1.00,CNY,APP\n"+
		"H,S,1234567890,2026-11-01,2026-11-03,1.00;1.00,CNY,APP\n"+
		"H,S,1234567890,2026-11-01,2026-11-03,1.00;2.00,CNY,APP\n")
	if err != nil || len(csvRows) != 3 {
		t.Fatal(csvRows, err)
	}
	jsonRows, _, err := readAll(t, FormatJSONL, "\n"+`{"property_id":"H","stay_id":"S","member_number":"1234567890","arrival_date":"2026-11-01","departure_date":"2026-11-03","room_charge":1.00,"nights":2,"currency_code":"CNY","channel":"app"}`+"\n")
	if err != nil || len(jsonRows) != 1 {
		t.Fatal(jsonRows, err)
	}
	k := func(r Row) string { return r.IdempotencyKey }
	if k(csvRows[0]) != k(jsonRows[0]) || len(k(csvRows[0])) != len(idempotencyKeyBase)+32 {
		t.Errorf("line 2 in CSV %q and JSON Lines %q", k(csvRows[0]), k(jsonRows[0]))
	}
	if k(csvRows[0]) == k(csvRows[1]) || k(csvRows[1]) == k(csvRows[2]) {
		t.Errorf("keys %q %q %q: want three", k(csvRows[0]), k(csvRows[1]), k(csvRows[2]))
	}
}

// TestAFileIsRefusedForItsHeaderOrItsSize: an unknown or repeated
// column, a missing one, no charges, a line over the limit.
func TestAFileIsRefusedForItsHeaderOrItsSize(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"an unknown column", header + ",colour\n", `unknown column "colour"`},
		{"a column twice", header + ",stay_id\n", `"stay_id" appears twice`},
		{"a required column missing", "property_id,stay_id,arrival_date,departure_date,room_charges,currency_code\n", `"member_number" is missing`},
		{"no charges", "property_id,stay_id,member_number,arrival_date,departure_date,currency_code\n", "charges are missing"},
		{"an empty file", "", "empty"},
		{"a line too long", header + "\n" + strings.Repeat("x", MaxLineBytes+1) + "\n", "longer than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := readAll(t, FormatCSV, tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want ...%s...", err, tc.want)
			}
		})
	}
}

// TestAnUnknownKeyRefusesItsRow: JSON Lines names unknown keys, per row.
func TestAnUnknownKeyRefusesItsRow(t *testing.T) {
	_, refused, err := readAll(t, FormatJSONL, `{"stay_id":"S","zeta":1,"alpha":2}`+"\n")
	if err != nil || len(refused) != 1 || !strings.Contains(refused[0].Problem, `unknown key "alpha", "zeta"`) || refused[0].Line != 1 {
		t.Fatalf("%v %v", refused, err)
	}
}

// TestTheTotalCountsRowsNotBlankLines.
func TestTheTotalCountsRowsNotBlankLines(t *testing.T) {
	for _, tc := range []struct {
		format Format
		text   string
		want   int
	}{
		{FormatCSV, "h\na\n\n  \nb", 2},
		{FormatCSV, "h\n", 0},
		{FormatJSONL, "{}\n{}\n\n", 2},
	} {
		if n, err := countRows(strings.NewReader(tc.text), tc.format); err != nil || n != tc.want {
			t.Errorf("%q: %d, want %d (%v)", tc.text, n, tc.want, err)
		}
	}
}
