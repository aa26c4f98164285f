package financeweb

import (
	"fmt"
	"strings"
	"time"

	"github.com/loyalty-ledger/loyalty/finance"
)

// MaxChartSamples bounds the chart: the points outstanding are read at
// most this many times over the period (its ends included).
const MaxChartSamples = 60

// The chart's colours. The series' are saturated and used nowhere else on
// the page, and the plot areas have a tint of their own, so that a
// screenshot shows where the chart is and whether its lines were drawn.
const (
	PointsColour    = "#0057ff"
	LiabilityColour = "#e8005a"
	PlotColour      = "#eef3f8"
)

// Geometry, in SVG user units (CSS pixels at 100%): two panels one above
// the other, sharing the time axis, because points and money have scales
// of their own and, while the value of a point does not change, the same
// shape: drawn on one plot, one line would hide the other.
const (
	chartWidth  = 960
	plotLeft    = 130 // room for the value labels
	plotRight   = 30
	plotHeight  = 150
	panelTop    = 34 // room for a panel's title
	panelGap    = 40
	axisLabelsH = 30
)

// sampleTimes are the times the chart reads the points outstanding at:
// from, then every step whole days, then to. The step is the fewest whole
// days that keeps the count within MaxChartSamples, so that every sum
// between two samples is whole days, which the finance rollups hold.
func sampleTimes(from, to time.Time) (times []time.Time, step time.Duration) {
	days := int(to.Sub(from).Hours() / 24)
	stepDays := max(1, (days+MaxChartSamples-2)/(MaxChartSamples-1))
	step = time.Duration(stepDays) * 24 * time.Hour
	for t := from; t.Before(to); t = t.Add(step) {
		times = append(times, t)
	}
	return append(times, to), step
}

// panel is one series' plot.
type panel struct {
	ID, Title, Colour  string
	X, Y, W, H         int
	Line               string // the polyline's points
	MaxLabel, MinLabel string
	Last               [2]float64 // the last sample's position, marked with a dot
	// Where the title and the labels go.
	Right, Bottom, TitleY, LabelX, MaxY, MinY int
}

// chart is the SVG the template draws.
type chart struct {
	Width, Height      int
	Panels             []panel
	AxisY              int
	FromLabel, ToLabel string
	PlotRight          int
	Samples            int
	Step               string
}

// buildChart lays out the samples: x in proportion to time over (from,
// to), y between each series' minimum (bottom) and maximum (top). A flat
// series is drawn at mid-height.
func buildChart(samples []finance.OutstandingSample, from, to time.Time, step time.Duration) chart {
	w := chartWidth - plotLeft - plotRight
	c := chart{Width: chartWidth, FromLabel: from.Format(time.DateOnly), ToLabel: to.Format(time.DateOnly),
		PlotRight: plotLeft + w, Samples: len(samples), Step: fmtStep(step)}
	currency := ""
	if len(samples) > 0 {
		currency = samples[len(samples)-1].Currency
	}
	pointsOf := func(s finance.OutstandingSample) (float64, string) {
		return float64(s.Points), groupInt(s.Points)
	}
	liabilityOf := func(s finance.OutstandingSample) (float64, string) {
		return s.Liability.InexactFloat64(), groupMoney(s.Liability) + " " + s.Currency
	}
	series := []struct {
		id, title, colour string
		of                func(finance.OutstandingSample) (float64, string)
	}{
		{"points", "Points outstanding", PointsColour, pointsOf},
		{"liability", "Liability (" + currency + ", points x book value then)", LiabilityColour, liabilityOf},
	}
	y := 0
	span := to.Sub(from).Seconds()
	for _, s := range series {
		y += panelTop
		p := panel{ID: s.id, Title: s.title, Colour: s.colour, X: plotLeft, Y: y, W: w, H: plotHeight,
			Right: plotLeft + w, Bottom: y + plotHeight, TitleY: y - 12, LabelX: plotLeft - 8, MaxY: y + 12, MinY: y + plotHeight}
		lo, hi := 0.0, 0.0
		for i, smp := range samples {
			v, label := s.of(smp)
			if i == 0 || v < lo {
				lo, p.MinLabel = v, label
			}
			if i == 0 || v > hi {
				hi, p.MaxLabel = v, label
			}
		}
		var line strings.Builder
		for _, smp := range samples {
			v, _ := s.of(smp)
			x := float64(p.X) + float64(p.W)*smp.At.Sub(from).Seconds()/span
			yy := float64(p.Y) + float64(p.H)/2
			if hi > lo {
				yy = float64(p.Y) + float64(p.H)*(hi-v)/(hi-lo)
			}
			fmt.Fprintf(&line, "%.1f,%.1f ", x, yy)
			p.Last = [2]float64{x, yy}
		}
		p.Line = strings.TrimSpace(line.String())
		c.Panels = append(c.Panels, p)
		y += plotHeight + panelGap
	}
	c.AxisY = y - panelGap + 20
	c.Height = c.AxisY + axisLabelsH - 10
	return c
}

func fmtStep(d time.Duration) string {
	if days := int(d.Hours() / 24); days >= 1 {
		if days == 1 {
			return "every day"
		}
		return fmt.Sprintf("every %d days", days)
	}
	return "every " + d.String()
}
