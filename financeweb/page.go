package financeweb

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/loyalty-ledger/loyalty/finance"
)

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// row is one line of the roll-forward table as shown.
type row struct {
	Kind, Dimension, Category, Detail string
	Points, Money, Postings           string
}

// download is a link to a CSV file.
type download struct {
	Href, Label, Note string
}

type pageData struct {
	Nonce          string
	From, To       string // the form's dates
	Zone           string // the zone's IANA name, for the form
	ZoneText       string // the zone as the page says it
	FromTo         string // the period as a sentence
	GroupBy        string
	GroupBys       []finance.GroupBy
	ByDimension    bool
	Currency       string
	OpeningValue   string
	ClosingValue   string
	Rows           []row
	PointsIdentity string
	MoneyIdentity  string
	PointsOK       bool
	MoneyOK        bool
	Balanced       bool
	Basis          string
	Chart          chart
	PlotColour     string
	Downloads      []download
	Generated      string
}

// page renders GET /finance/?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=...&zone=...:
// the roll-forward of (from 00:00, to 00:00] in the zone (default the
// programme's, where finance closes its books), the chart and the download
// links. Without dates it shows the previous full month, the period
// finance closes.
func (h *Handler) page(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	now := h.now().UTC()
	zone, err := h.location(r)
	if err != nil {
		return err
	}
	from, to, err := period(q, now, false, zone)
	if err != nil {
		return err
	}
	zoneText := zoneLabel(zone, to)
	if _, explicit, _ := zoneParam(q); !explicit && h.zone != nil {
		zoneText += ", the programme's time zone"
	}
	fromDay, toDay := from.In(zone).Format(time.DateOnly), to.In(zone).Format(time.DateOnly)
	g, err := groupBy(q)
	if err != nil {
		return err
	}
	rf, err := h.reports.RollForward(r.Context(), from, to, g)
	if err != nil {
		return err
	}
	times, step := sampleTimes(from, to)
	samples, err := h.reports.Outstanding(r.Context(), times)
	if err != nil {
		return err
	}

	d := pageData{
		Nonce: nonceOf(r.Context()), From: fromDay, To: toDay, Zone: zone.String(), ZoneText: zoneText,
		FromTo:  "after " + fromDay + " 00:00, up to and including " + toDay + " 00:00, " + zoneText,
		GroupBy: string(g), GroupBys: []finance.GroupBy{finance.GroupBySource, finance.GroupByProperty, finance.GroupByPartner},
		ByDimension: g != finance.GroupBySource, Currency: rf.Currency,
		OpeningValue: rf.OpeningValue.String(), ClosingValue: rf.ClosingValue.String(),
		Balanced: rf.Balanced, Basis: rf.Basis,
		Chart:      buildChart(samples, from.In(zone), to.In(zone), step),
		PlotColour: PlotColour,
		Generated:  now.Format(time.RFC3339),
	}
	if rf.To.Before(to) {
		// The period is still running: the report ends now.
		d.FromTo = "after " + fromDay + " 00:00, up to now, " + rf.To.In(zone).Format("2006-01-02 15:04:05") + ", " + zoneText +
			": the period runs to " + toDay + " 00:00, so these figures are not final"
	}
	d.Rows = append(d.Rows, row{Kind: "Opening", Points: groupInt(rf.OpeningPoints), Money: groupMoney(rf.OpeningMoney)})
	for _, l := range rf.Lines {
		d.Rows = append(d.Rows, row{Kind: "Movement", Dimension: l.Dimension, Category: l.Category, Detail: l.Detail,
			Points: groupInt(l.Points), Money: groupMoney(l.Money), Postings: groupInt(l.Postings)})
	}
	d.Rows = append(d.Rows,
		row{Kind: "Movements", Points: groupInt(rf.MovementPoints), Money: groupMoney(rf.MovementMoney)},
		row{Kind: "Revaluation", Money: groupMoney(rf.RevaluationMoney)},
		row{Kind: "Closing", Points: groupInt(rf.ClosingPoints), Money: groupMoney(rf.ClosingMoney)})
	d.PointsOK = rf.OpeningPoints+rf.MovementPoints == rf.ClosingPoints
	d.PointsIdentity = groupInt(rf.OpeningPoints) + " opening + " + groupInt(rf.MovementPoints) + " movements = " +
		groupInt(rf.OpeningPoints+rf.MovementPoints) + "; closing " + groupInt(rf.ClosingPoints)
	sum := rf.OpeningMoney.Add(rf.MovementMoney).Add(rf.RevaluationMoney)
	d.MoneyOK = sum.Equal(rf.ClosingMoney)
	d.MoneyIdentity = groupMoney(rf.OpeningMoney) + " opening + " + groupMoney(rf.MovementMoney) + " movements + " +
		groupMoney(rf.RevaluationMoney) + " revaluation = " + groupMoney(sum) + "; closing " + groupMoney(rf.ClosingMoney) +
		" (" + rf.Currency + ", compared exactly, before rounding to the cent)"
	d.Downloads = downloads(fromDay, toDay, zone)

	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, d); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = b.WriteTo(w)
	return nil
}

// downloads are the CSV links of the period (dates in zone), relative to
// Path; each names the zone, so that a file is the period the page shows.
func downloads(fromDay, toDay string, zone *time.Location) []download {
	period := url.Values{"from": {fromDay}, "to": {toDay}, "zone": {zone.String()}}
	with := func(k, v string) string {
		q := url.Values{k: {v}}
		for pk, pv := range period {
			q[pk] = pv
		}
		return q.Encode()
	}
	return []download{
		{"trial-balance.csv?" + url.Values{"as_of": {toDay}, "zone": {zone.String()}}.Encode(), "Trial balance", "as of " + toDay + " 00:00 " + zone.String() + ", members in aggregate"},
		{"roll-forward.csv?" + with("group_by", "source"), "Roll-forward by source", "the table above"},
		{"roll-forward.csv?" + with("group_by", "property"), "Roll-forward by property", ""},
		{"roll-forward.csv?" + with("group_by", "partner"), "Roll-forward by partner", ""},
		{"partner-statements.csv?" + period.Encode(), "Partner settlement statements", "every partner, per rate version and total"},
		{"point-values.csv", "Book values of a point", "every version"},
	}
}
