package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"
	"time"
)

// The HTML report is one self-contained file: inline CSS and SVG, no script, no external asset, so it
// can be mailed to an auditor, archived and printed as it is.

// htmlBand is a background band of a bar's row: a certificate's validity and its policy windows.
type htmlBand struct {
	X, Width float64
	Color    string
}

type htmlBar struct {
	Bands              []htmlBand
	BandY              float64
	Y, Width           float64
	Label, Value       string
	Color              string
	Marker             float64 // x of the max-age marker (ages chart), 0 when none
	TextX              float64
	Unknown            bool
	LabelY, ValueY     float64
	BarH               float64
	Status             string
	ScaleLabel         string
	HasMarker          bool
	MarkerY1, MarkerY2 float64
}

type htmlChart struct {
	RowH          float64 // height of a bar's row (its bands)
	Title, Note   string
	Width, Height float64
	PlotX, PlotW  float64
	Bars          []htmlBar
	Axis          []htmlTick
	AxisY         float64
	Empty         bool
}

type htmlTick struct {
	X     float64
	Label string
}

type htmlData struct {
	R         Report
	Title     string
	Generated string
	Charts    []htmlChart
	Summary   []htmlSummaryCell
}

type htmlSummaryCell struct {
	Status string
	Count  int
	Color  string
}

var statusColors = map[CheckStatus]string{
	StatusPass:  "#1a7f37",
	StatusWarn:  "#b35900",
	StatusFail:  "#c62828",
	StatusInfo:  "#546e7a",
	StatusError: "#6a1b9a",
}

// Colours of a certificate row's bands, and how far the bar of days left sits inside them.
const (
	bandValidity = "#eaeef2"
	bandWarn     = "#fae17d"
	bandCritical = "#ffcecb"
	barBandInset = 4.0
)

const (
	chartWidth  = 760.0
	chartLabelW = 190.0
	chartValueW = 150.0
	barHeight   = 18.0
	barGap      = 10.0
	chartTop    = 10.0
)

func certChart(r Report) htmlChart {
	ch := htmlChart{Title: "Node certificates: days left", Note: r.Charts.CertDaysNote, Width: chartWidth,
		PlotX: chartLabelW, PlotW: chartWidth - chartLabelW - chartValueW, RowH: barHeight}
	if len(r.Charts.CertDays) == 0 {
		ch.Empty = true
		if ch.Note == "" {
			ch.Note = "no node certificate could be read"
		}
		return ch
	}
	maxDays := 1.0
	for _, b := range r.Charts.CertDays {
		maxDays = math.Max(maxDays, math.Max(b.Total, b.DaysLeft))
	}
	scale := func(days float64) float64 { return math.Min(math.Max(0, days)/maxDays, 1) * ch.PlotW }
	banded := false
	for i, b := range r.Charts.CertDays {
		y := chartTop + float64(i)*(barHeight+barGap)
		w := scale(b.DaysLeft)
		bar := htmlBar{Y: y, BarH: barHeight, Width: w, Label: b.Node, LabelY: y + 13, ValueY: y + 13,
			Value: fmt.Sprintf("%.1f days", b.DaysLeft), Color: statusColors[b.Status], TextX: ch.PlotX + w + 6, Status: string(b.Status)}
		if b.Total <= 0 {
			// no validity: the certificate could not be read, and a bar of 0 days would say it expired
			bar.Unknown, bar.Value, bar.TextX = true, "unknown", ch.PlotX+6
		}
		if b.Total > 0 && (b.WarnDays > 0 || b.CriticalDays > 0) {
			// The bar of days left sits inside its row's bands: the whole validity (grey), the warn window
			// (amber) and the critical window (red), both counted back from the certificate's end.
			crit, warn := scale(b.CriticalDays), scale(b.WarnDays)
			bar.BandY, bar.Y, bar.BarH = y, y+barBandInset, barHeight-2*barBandInset
			bar.Bands = []htmlBand{{X: ch.PlotX, Width: scale(b.Total), Color: bandValidity},
				{X: ch.PlotX + crit, Width: math.Max(0, warn-crit), Color: bandWarn}, {X: ch.PlotX, Width: crit, Color: bandCritical}}
			bar.TextX = ch.PlotX + math.Max(w, scale(b.Total)) + 6
			banded = true
		}
		ch.Bars = append(ch.Bars, bar)
	}
	if banded {
		ch.Note = strings.TrimPrefix(ch.Note+"; ", "; ") + "bar: days left, within the certificate's validity (grey), its warn window (amber) and critical window (red)"
	}
	ch.AxisY = chartTop + float64(len(ch.Bars))*(barHeight+barGap)
	step := tickStep(maxDays)
	for d := 0.0; d <= maxDays+1e-9; d += step {
		ch.Axis = append(ch.Axis, htmlTick{X: ch.PlotX + d/maxDays*ch.PlotW, Label: fmt.Sprintf("%g d", d)})
	}
	ch.Height = ch.AxisY + 24
	return ch
}

// certMaxTicks is the most tick marks the days axis gets besides 0: enough to read a bar against, few
// enough that their labels never overlap.
const certMaxTicks = 5

// tickSteps are the day intervals the days axis may be marked in: round numbers a reader counts in.
var tickSteps = []float64{0.25, 0.5, 1, 2, 5, 7, 10, 15, 30, 60, 90, 180, 365, 730, 1825, 3650, 7300}

// tickStep is the smallest round interval that marks maxDays with at most certMaxTicks ticks.
func tickStep(maxDays float64) float64 {
	for _, s := range tickSteps {
		if maxDays/s <= certMaxTicks {
			return s
		}
	}
	return math.Ceil(maxDays / certMaxTicks)
}

// agesScale is how far past its max age the ages chart reaches (150%).
const agesScale = 1.5

func agesChart(r Report) htmlChart {
	ch := htmlChart{Title: "Credential ages against their max ages (line: max age)", Width: chartWidth,
		PlotX: chartLabelW, PlotW: chartWidth - chartLabelW - chartValueW}
	if len(r.Charts.Ages) == 0 {
		ch.Empty, ch.Note = true, "no credential ages known"
		return ch
	}
	marker := ch.PlotX + ch.PlotW/agesScale
	for i, b := range r.Charts.Ages {
		y := chartTop + float64(i)*(barHeight+barGap)
		bar := htmlBar{Y: y, BarH: barHeight, Label: b.Name, LabelY: y + 13, ValueY: y + 13, Color: statusColors[b.Status], Status: string(b.Status)}
		switch {
		case !b.Known:
			bar.Unknown, bar.Value = true, "unknown ("+b.Note+")"
		case b.MaxAge <= 0:
			// no policy: draw the age against a 1-year scale so the bar still means something
			frac := math.Min(b.Age.Hours()/(365*24), agesScale) / agesScale
			bar.Width, bar.Value = frac*ch.PlotW, RoundAge(b.Age)+" (no max age)"
		default:
			frac := math.Min(b.Age.Hours()/b.MaxAge.Hours(), agesScale) / agesScale
			bar.Width = frac * ch.PlotW
			bar.Value = fmt.Sprintf("%s / %s", RoundAge(b.Age), DurationOrNone(b.MaxAge))
			bar.HasMarker, bar.Marker, bar.MarkerY1, bar.MarkerY2 = true, marker, y-3, y+barHeight+3
		}
		bar.TextX = ch.PlotX + bar.Width + 6
		if bar.Unknown {
			bar.TextX = ch.PlotX + 6
		}
		ch.Bars = append(ch.Bars, bar)
	}
	ch.AxisY = chartTop + float64(len(ch.Bars))*(barHeight+barGap)
	for _, f := range []float64{0, 0.5, 1, 1.5} {
		ch.Axis = append(ch.Axis, htmlTick{X: ch.PlotX + f/agesScale*ch.PlotW, Label: fmt.Sprintf("%.0f%%", f*100)})
	}
	ch.Height = ch.AxisY + 24
	return ch
}

// findingsChart is the workload findings per check: a bar of the services at fail, then at warn, out of
// every service.
func findingsChart(r Report) htmlChart {
	ch := htmlChart{Title: "Workload findings per check (services at fail, then warn)", Width: chartWidth,
		PlotX: chartLabelW, PlotW: chartWidth - chartLabelW - chartValueW}
	total := 0
	for _, b := range r.Charts.Findings {
		total = max(total, b.Total)
	}
	if len(r.Charts.Findings) == 0 || total == 0 {
		ch.Empty, ch.Note = true, "no services judged"
		return ch
	}
	for i, b := range r.Charts.Findings {
		y := chartTop + float64(i)*(barHeight+barGap)
		w := float64(b.Fail+b.Warn) / float64(total) * ch.PlotW
		st := StatusPass
		switch {
		case b.Fail > 0:
			st = StatusFail
		case b.Warn > 0:
			st = StatusWarn
		}
		ch.Bars = append(ch.Bars, htmlBar{Y: y, BarH: barHeight, Width: w, Label: b.Check, LabelY: y + 13, ValueY: y + 13,
			Value: fmt.Sprintf("%d fail, %d warn / %d", b.Fail, b.Warn, b.Total), Color: statusColors[st], TextX: ch.PlotX + w + 6, Status: string(st)})
	}
	ch.AxisY = chartTop + float64(len(ch.Bars))*(barHeight+barGap)
	for _, f := range []float64{0, 0.5, 1} {
		ch.Axis = append(ch.Axis, htmlTick{X: ch.PlotX + f*ch.PlotW, Label: fmt.Sprintf("%.0f", f*float64(total))})
	}
	ch.Height = ch.AxisY + 24
	return ch
}

func (r Report) renderHTML(w io.Writer) error {
	d := htmlData{R: r, Title: r.title(), Generated: r.GeneratedAt.UTC().Format(time.RFC3339)}
	if r.Charts.CertDays != nil || r.Charts.CertDaysNote != "" {
		d.Charts = append(d.Charts, certChart(r))
	}
	if r.Charts.drawAges {
		d.Charts = append(d.Charts, agesChart(r))
	}
	if r.Charts.drawFindings {
		d.Charts = append(d.Charts, findingsChart(r))
	}
	for _, s := range []struct {
		st CheckStatus
		n  int
	}{{StatusPass, r.Summary.Pass}, {StatusWarn, r.Summary.Warn}, {StatusFail, r.Summary.Fail}, {StatusInfo, r.Summary.Info}, {StatusError, r.Summary.Error}} {
		d.Summary = append(d.Summary, htmlSummaryCell{Status: string(s.st), Count: s.n, Color: statusColors[s.st]})
	}
	return reportTemplate.Execute(w, d)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": func(s CheckStatus) string { return strings.ToUpper(string(s)) },
	"color": func(s CheckStatus) string { return statusColors[s] },
	"facts": FactsText,
	"f":     func(x float64) string { return fmt.Sprintf("%.1f", x) },
	"add":   func(a, b float64) float64 { return a + b },
	"sub":   func(a, b float64) float64 { return a - b },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{.Title}}: {{if .R.SwarmID}}{{.R.SwarmID}}{{else}}{{.Generated}}{{end}}</title>
<style>
  body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 2em; max-width: 60em; }
  h1 { font-size: 1.6em; margin-bottom: 0.2em; }
  h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #d0d7de; }
  .meta { color: #57606a; }
  .summary { display: flex; gap: 0.8em; margin: 1em 0; }
  .summary div { border-radius: 6px; padding: 0.5em 1em; color: #fff; font-weight: bold; min-width: 5em; text-align: center; }
  table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
  th, td { text-align: left; padding: 0.35em 0.5em; border-bottom: 1px solid #d0d7de; vertical-align: top; }
  .badge { display: inline-block; color: #fff; border-radius: 4px; padding: 0 0.4em; font-size: 0.85em; font-weight: bold; }
  .check { page-break-inside: avoid; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.6em 1em; margin: 0.8em 0; }
  .check h3 { margin: 0.2em 0; font-size: 1em; }
  .check ul { margin: 0.3em 0; padding-left: 1.2em; font-size: 0.9em; }
  .facts { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9em; color: #424a53; word-break: break-word; }
  .fix { font-size: 0.9em; color: #424a53; }
  svg text { font-family: inherit; font-size: 12px; fill: #1f2328; }
  @media print { body { margin: 0; } .check, svg { page-break-inside: avoid; } }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p class="meta">{{if .R.SwarmID}}Swarm <code>{{.R.SwarmID}}</code> &middot; {{end}}generated {{.Generated}}{{if .R.Benchmark}} &middot; {{.R.Benchmark}}{{end}}</p>
{{if .R.Facts}}<table class="facts-table">
{{range .R.Facts}}<tr><th>{{.Label}}</th><td>{{.Value}}</td></tr>
{{end}}</table>
{{end}}<div class="summary">{{range .Summary}}<div style="background:{{.Color}}">{{.Count}} {{.Status}}</div>{{end}}</div>

<h2>Checks</h2>
<table>
<thead><tr><th>Status</th><th>CIS</th><th>Check</th><th>Summary</th></tr></thead>
<tbody>
{{range .R.Checks}}<tr><td><span class="badge" style="background:{{color .Status}}">{{upper .Status}}</span></td><td>{{.CIS}}</td><td><a href="#{{.ID}}">{{.ID}}</a></td><td>{{.Summary}}</td></tr>
{{end}}</tbody>
</table>

{{range .R.Listings}}
<h2>{{.Title}}</h2>
<table>
<thead><tr><th>Status</th>{{range .Header}}<th>{{.}}</th>{{end}}</tr></thead>
<tbody>
{{range .Rows}}<tr><td><span class="badge" style="background:{{color .Status}}">{{upper .Status}}</span></td>{{range .Cells}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody>
</table>
{{range .Notes}}<p class="meta">{{.}}</p>
{{end}}{{end}}
{{if .Charts}}<h2>Charts</h2>
{{end}}{{range .Charts}}<h3>{{.Title}}</h3>
{{if .Empty}}<p class="meta">{{.Note}}</p>{{else}}{{if .Note}}<p class="meta">{{.Note}}</p>{{end}}
<svg xmlns="http://www.w3.org/2000/svg" width="{{f .Width}}" height="{{f .Height}}" viewBox="0 0 {{f .Width}} {{f .Height}}" role="img" aria-label="{{.Title}}">
{{$c := .}}{{range .Bars}}<text x="{{f (sub $c.PlotX 8)}}" y="{{f .LabelY}}" text-anchor="end">{{.Label}}</text>
{{$bar := .}}{{range .Bands}}<rect x="{{f .X}}" y="{{f $bar.BandY}}" width="{{f .Width}}" height="{{f $c.RowH}}" fill="{{.Color}}"/>
{{end}}{{if not .Unknown}}<rect x="{{f $c.PlotX}}" y="{{f .Y}}" width="{{f .Width}}" height="{{f .BarH}}" fill="{{.Color}}"><title>{{.Label}}: {{.Value}} ({{.Status}})</title></rect>{{end}}
{{if .HasMarker}}<line x1="{{f .Marker}}" x2="{{f .Marker}}" y1="{{f .MarkerY1}}" y2="{{f .MarkerY2}}" stroke="#1f2328" stroke-width="2"/>{{end}}
<text x="{{f .TextX}}" y="{{f .ValueY}}">{{.Value}}</text>
{{end}}<line x1="{{f .PlotX}}" x2="{{f (add .PlotX .PlotW)}}" y1="{{f .AxisY}}" y2="{{f .AxisY}}" stroke="#8c959f"/>
{{range .Axis}}<text x="{{f .X}}" y="{{f (add $c.AxisY 16)}}" text-anchor="middle">{{.Label}}</text>
{{end}}</svg>
{{end}}{{end}}

<h2>Evidence and remediation</h2>
{{range .R.Checks}}<div class="check" id="{{.ID}}">
<h3><span class="badge" style="background:{{color .Status}}">{{upper .Status}}</span> {{.ID}}{{if .CIS}} (CIS {{.CIS}}){{end}}: {{.Title}}</h3>
<p>{{.Summary}}</p>
<ul>{{range .Evidence}}<li><strong>{{.Subject}}</strong>{{if .Status}} <span class="badge" style="background:{{color .Status}}">{{upper .Status}}</span>{{end}}{{if .Facts}} <span class="facts">{{facts .Facts}}</span>{{end}}{{if .Note}} &mdash; {{.Note}}{{end}}</li>
{{end}}</ul>
<p class="fix"><strong>Remediation:</strong> {{.Remediation}}</p>
</div>
{{end}}
</body>
</html>
`))
