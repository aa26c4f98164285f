package financeweb

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/loyalty-ledger/loyalty/finance"
	"github.com/loyalty-ledger/loyalty/financecsv"
)

// The downloads are written to memory first, so that a report that fails
// halfway is a 500 rather than a truncated file that looks whole. Each is
// bounded: no individual member lines (those are loyaltyctl's, paged), and
// at most MaxPeriod of movements grouped by category, property or partner.

// sendCSV answers with a CSV file to save as name.
func sendCSV(w http.ResponseWriter, name string, body *bytes.Buffer) error {
	hd := w.Header()
	hd.Set("Content-Type", financecsv.ContentType)
	hd.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	hd.Set("Content-Length", strconv.Itoa(body.Len()))
	w.WriteHeader(http.StatusOK)
	// The status is sent: a client gone away now is not the report's error.
	_, _ = body.WriteTo(w)
	return nil
}

// trialBalanceCSV: ?as_of=T (a date, 00:00 in the page's zone, or an RFC
// 3339 time; default now).
func (h *Handler) trialBalanceCSV(w http.ResponseWriter, r *http.Request) error {
	zone, err := h.location(r)
	if err != nil {
		return err
	}
	asOf, ok, err := parseWhen(r.URL.Query(), "as_of", true, zone)
	if err != nil {
		return err
	}
	if !ok {
		asOf = h.now()
	}
	tb, err := h.reports.TrialBalance(r.Context(), asOf, finance.TrialOptions{})
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := financecsv.TrialBalance(&b, tb, nil); err != nil {
		return err
	}
	return sendCSV(w, "trial-balance-"+stamp(tb.AsOf, zone)+".csv", &b)
}

// rollForwardCSV: ?from&to (the page's period) and group_by.
func (h *Handler) rollForwardCSV(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	zone, err := h.location(r)
	if err != nil {
		return err
	}
	from, to, err := period(q, h.now(), true, zone)
	if err != nil {
		return err
	}
	g, err := groupBy(q)
	if err != nil {
		return err
	}
	rf, err := h.reports.RollForward(r.Context(), from, to, g)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := financecsv.RollForward(&b, rf); err != nil {
		return err
	}
	return sendCSV(w, fmt.Sprintf("roll-forward-%s-%s--%s.csv", g, stamp(from, zone), stamp(to, zone)), &b)
}

// partnerStatementsCSV: ?from&to, every partner.
func (h *Handler) partnerStatementsCSV(w http.ResponseWriter, r *http.Request) error {
	zone, err := h.location(r)
	if err != nil {
		return err
	}
	from, to, err := period(r.URL.Query(), h.now(), true, zone)
	if err != nil {
		return err
	}
	ps, err := h.reports.PartnerStatements(r.Context(), from, to)
	if err != nil {
		return err
	}
	if !ps.Ties {
		// Statements that do not tie to the ledger's own roll-forward are
		// damaged books, not something to file: the page says so, with
		// what is off (loyaltyctl writes them and exits 1, for whoever
		// investigates).
		msg := "the partner statements of this period do not tie to the roll-forward, so they are not served: the books need looking at (loyaltyctl reconcile)"
		for _, d := range ps.Discrepancies {
			h.log.WarnContext(r.Context(), "partner statements do not tie to the roll-forward", "discrepancy", d.String())
			msg += "\n" + d.String()
		}
		plain(w, http.StatusConflict, msg)
		return nil
	}
	var b bytes.Buffer
	if err := financecsv.PartnerStatements(&b, ps.Statements); err != nil {
		return err
	}
	return sendCSV(w, fmt.Sprintf("partner-statements-%s--%s.csv", stamp(from, zone), stamp(to, zone)), &b)
}

// pointValuesCSV: every version of the book value of a point.
func (h *Handler) pointValuesCSV(w http.ResponseWriter, r *http.Request) error {
	values, err := h.reports.PointValues(r.Context())
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := financecsv.PointValues(&b, values); err != nil {
		return err
	}
	return sendCSV(w, "point-values-"+h.now().UTC().Format(time.DateOnly)+".csv", &b)
}
