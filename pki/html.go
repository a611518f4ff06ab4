package pki

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"time"
)

//go:embed templates/report.html.tmpl
var htmlSource string

var htmlTemplate = template.Must(template.New("report").Parse(htmlSource))

// Chart geometry, in SVG user units. The chart is drawn server-side so that
// the file needs no script and prints as it shows.
const (
	chartLabelWidth = 170.0
	chartPlotWidth  = 520.0
	chartRightPad   = 80.0
	chartRowHeight  = 24.0
	chartBarHeight  = 14.0
	chartTopPad     = 28.0
	chartAxisPad    = 30.0
	chartMaxTicks   = 5 // tick marks on the days axis, at most, besides 0
)

type chartRow struct {
	Y, TextY                    float64
	Label, Title, Status, Text  string
	Known                       bool
	CritW, WarnX, WarnW, ValidW float64
	BarW, TextX, BarY, WarnAbsX float64
}

type chartTick struct {
	X     float64
	Label string
}

type chartData struct {
	Width, Height, PlotX, PlotW, AxisY float64
	AxisX2, TickY2, TickLabelY         float64
	Rows                               []chartRow
	Ticks                              []chartTick
}

type htmlData struct {
	Report   Report
	JSON     JSONReport
	CALine   string
	Policy   string
	Chart    chartData
	Rows     [][]string
	Statuses []string
	Header   []string
}

// chart lays out days left per node against each node's windows: the red
// band is the critical window, the amber band the warn window (a percentage
// window differs per node, hence one band per row), the grey band the whole
// validity, and the bar the days left.
func (r Report) chart() chartData {
	const day = 24 * time.Hour
	maxDays := 1.0
	for _, n := range r.Nodes {
		if n.Known {
			maxDays = math.Max(maxDays, n.Cert.Validity().Hours()/24)
			maxDays = math.Max(maxDays, n.Cert.NotAfter.Sub(r.GeneratedAt).Hours()/24)
		}
	}
	scale := func(d time.Duration) float64 {
		v := d.Hours() / 24 / maxDays * chartPlotWidth
		return math.Round(math.Max(0, math.Min(chartPlotWidth, v))*10) / 10
	}
	c := chartData{PlotX: chartLabelWidth, PlotW: chartPlotWidth, Width: chartLabelWidth + chartPlotWidth + chartRightPad}
	for i, n := range r.Nodes {
		y := chartTopPad + float64(i)*chartRowHeight
		row := chartRow{Y: y, TextY: y + chartBarHeight - 3, Label: n.Hostname, Status: r.status(n), Known: n.Known}
		row.Title = fmt.Sprintf("%s (%s, %s)", n.Hostname, n.Role, n.ID)
		if !n.Known {
			row.Text = "unknown"
			row.TextX = chartLabelWidth + 4
		} else {
			nb, na := n.Cert.NotBefore, n.Cert.NotAfter
			left := na.Sub(r.GeneratedAt)
			row.ValidW = scale(n.Cert.Validity())
			row.CritW = scale(r.Policy.CriticalBefore.Lead(nb, na))
			row.WarnX = row.CritW
			row.WarnW = math.Max(0, scale(r.Policy.WarnBefore.Lead(nb, na))-row.CritW)
			row.BarW = scale(left)
			row.BarY = y + 3
			row.WarnAbsX = chartLabelWidth + row.WarnX
			row.Text = fmt.Sprintf("%.1f d", left.Hours()/24)
			row.TextX = chartLabelWidth + math.Max(row.BarW, row.ValidW) + 6
		}
		c.Rows = append(c.Rows, row)
	}
	c.AxisY = chartTopPad + float64(len(r.Nodes))*chartRowHeight + 4
	c.Height = c.AxisY + chartAxisPad
	c.AxisX2, c.TickY2, c.TickLabelY = chartLabelWidth+chartPlotWidth, c.AxisY+4, c.AxisY+16
	step := tickStep(maxDays)
	for d := 0.0; d <= maxDays+1e-9; d += step {
		c.Ticks = append(c.Ticks, chartTick{
			X:     chartLabelWidth + scale(time.Duration(d*float64(day))),
			Label: fmt.Sprintf("%g d", d),
		})
	}
	return c
}

func (r Report) renderHTML(w io.Writer) error {
	d := htmlData{
		Report: r, JSON: r.JSON(), CALine: r.caLine(), Policy: r.policyLine(), Chart: r.chart(),
		Header: rowHeader,
	}
	for _, n := range r.Nodes {
		d.Rows = append(d.Rows, r.row(n))
		d.Statuses = append(d.Statuses, r.status(n))
	}
	return htmlTemplate.Execute(w, d)
}

// tickSteps are the day intervals the axis may be marked in.
var tickSteps = []float64{0.25, 0.5, 1, 2, 5, 7, 10, 15, 30, 60, 90, 180, 365, 730, 1825, 3650, 7300}

// tickStep is the smallest round interval that marks maxDays with at most chartMaxTicks ticks.
func tickStep(maxDays float64) float64 {
	for _, s := range tickSteps {
		if maxDays/s <= chartMaxTicks {
			return s
		}
	}
	return math.Ceil(maxDays / chartMaxTicks)
}
