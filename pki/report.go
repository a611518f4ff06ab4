package pki

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"
)

// Report formats.
const (
	FormatTable    = "table"
	FormatJSON     = "json"
	FormatMarkdown = "markdown"
	FormatHTML     = "html"
)

// Formats lists the formats Render accepts, for flag help and validation.
var Formats = []string{FormatTable, FormatJSON, FormatMarkdown, FormatHTML}

// ErrUnknownFormat is returned by Render for a format it does not know.
var ErrUnknownFormat = errors.New("unknown report format")

// Report is `report certs`: the CA, the policy, every node's certificate
// and the findings, as of GeneratedAt.
type Report struct {
	GeneratedAt            time.Time
	CA                     CAInfo
	NodeCertExpiry         time.Duration
	RootRotationInProgress bool
	Policy                 Policy
	Nodes                  []NodeCert
	Findings               []Finding
}

// NewReport evaluates inv against p at now and keeps both for rendering.
func NewReport(inv Inventory, p Policy, now time.Time) Report {
	return Report{
		GeneratedAt:            now.UTC(),
		CA:                     inv.CA,
		NodeCertExpiry:         inv.NodeCertExpiry,
		RootRotationInProgress: inv.RootRotationInProgress,
		Policy:                 p,
		Nodes:                  inv.Nodes,
		Findings:               Evaluate(inv, p, now),
	}
}

// Worst is the most urgent severity among the findings, "" when none.
func (r Report) Worst() Severity {
	var worst Severity
	for _, f := range r.Findings {
		if worst == "" || f.Severity.rank() < worst.rank() {
			worst = f.Severity
		}
	}
	return worst
}

// Render writes the report in format (table, json, markdown or html).
func (r Report) Render(w io.Writer, format string) error {
	switch format {
	case FormatTable, "":
		return r.renderTable(w)
	case FormatJSON:
		return r.renderJSON(w)
	case FormatMarkdown, "md":
		return r.renderMarkdown(w)
	case FormatHTML:
		return r.renderHTML(w)
	}
	return fmt.Errorf("%w %q (use one of %s)", ErrUnknownFormat, format, strings.Join(Formats, ", "))
}

// JSONReport is the JSON shape of `report certs --format json`.
type JSONReport struct {
	GeneratedAt            string      `json:"generated_at"`
	CA                     JSONCA      `json:"ca"`
	NodeCertExpiry         string      `json:"node_cert_expiry"`
	RootRotationInProgress bool        `json:"root_rotation_in_progress"`
	Policy                 JSONPolicy  `json:"policy"`
	Nodes                  []JSONNode  `json:"nodes"`
	Findings               []Finding   `json:"findings"`
	Summary                JSONSummary `json:"summary"`
}

// JSONCA is the root CA in the JSON report.
type JSONCA struct {
	Subject      string  `json:"subject"`
	Serial       string  `json:"serial"`
	NotBefore    string  `json:"not_before"`
	NotAfter     string  `json:"not_after"`
	KeyAlgorithm string  `json:"key_algorithm"`
	KeyBits      int     `json:"key_bits"`
	Age          string  `json:"age"`
	DaysLeft     float64 `json:"days_left"`
	Error        string  `json:"error,omitempty"`
}

// JSONPolicy is the policy the findings were judged by.
type JSONPolicy struct {
	NodeCertExpiry string `json:"node_cert_expiry,omitempty"`
	WarnBefore     string `json:"warn_before"`
	CriticalBefore string `json:"critical_before"`
	CAMaxAge       string `json:"ca_max_age,omitempty"`
}

// JSONNode is one node in the JSON report. Certificate fields are null when
// the certificate could not be read (Reason says why): never a guess.
type JSONNode struct {
	ID            string   `json:"id"`
	Hostname      string   `json:"hostname"`
	Role          string   `json:"role"`
	State         string   `json:"state"`
	Availability  string   `json:"availability"`
	Serial        *string  `json:"serial"`
	NotBefore     *string  `json:"not_before"`
	NotAfter      *string  `json:"not_after"`
	DaysLeft      *float64 `json:"days_left"`
	IssuerCurrent *bool    `json:"issuer_current"`
	Source        Source   `json:"source"`
	Reason        string   `json:"reason,omitempty"`
	DownSince     string   `json:"down_since,omitempty"`
}

// JSONSummary counts findings by severity.
type JSONSummary struct {
	Nodes    int `json:"nodes"`
	Unknown  int `json:"unknown"`
	Critical int `json:"critical"`
	Warn     int `json:"warn"`
	Info     int `json:"info"`
}

// JSON builds the JSON shape of the report.
func (r Report) JSON() JSONReport {
	out := JSONReport{
		GeneratedAt:            stamp(r.GeneratedAt),
		NodeCertExpiry:         r.NodeCertExpiry.String(),
		RootRotationInProgress: r.RootRotationInProgress,
		Policy: JSONPolicy{
			WarnBefore: r.Policy.WarnBefore.String(), CriticalBefore: r.Policy.CriticalBefore.String(),
		},
		Nodes:    []JSONNode{},
		Findings: r.Findings,
	}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	if r.Policy.NodeCertExpiry > 0 {
		out.Policy.NodeCertExpiry = r.Policy.NodeCertExpiry.String()
	}
	if r.Policy.CAMaxAge > 0 {
		out.Policy.CAMaxAge = r.Policy.CAMaxAge.String()
	}
	if r.CA.Err != nil {
		out.CA.Error = r.CA.Err.Error()
	} else {
		ca := r.CA.CertFacts
		out.CA = JSONCA{
			Subject: ca.Subject, Serial: ca.Serial,
			NotBefore: stamp(ca.NotBefore), NotAfter: stamp(ca.NotAfter),
			KeyAlgorithm: ca.KeyAlgorithm, KeyBits: ca.KeyBits,
			Age:      r.GeneratedAt.Sub(ca.NotBefore).Truncate(time.Second).String(),
			DaysLeft: daysLeft(ca.NotAfter, r.GeneratedAt),
		}
	}
	for _, n := range r.Nodes {
		jn := JSONNode{
			ID: n.ID, Hostname: n.Hostname, Role: n.Role, State: n.State, Availability: n.Availability,
			Source: n.Source, Reason: n.Reason,
		}
		if n.Known {
			serial, nb, na := n.Cert.Serial, stamp(n.Cert.NotBefore), stamp(n.Cert.NotAfter)
			dl := daysLeft(n.Cert.NotAfter, r.GeneratedAt)
			jn.Serial, jn.NotBefore, jn.NotAfter, jn.DaysLeft = &serial, &nb, &na, &dl
		}
		if n.IssuerKnown {
			cur := n.IssuerCurrent
			jn.IssuerCurrent = &cur
		}
		if !n.DownSince.IsZero() {
			jn.DownSince = stamp(n.DownSince)
		}
		out.Nodes = append(out.Nodes, jn)
	}
	out.Summary = r.summary()
	return out
}

func (r Report) summary() JSONSummary {
	s := JSONSummary{Nodes: len(r.Nodes)}
	for _, n := range r.Nodes {
		if !n.Known {
			s.Unknown++
		}
	}
	for _, f := range r.Findings {
		switch f.Severity {
		case SeverityCritical:
			s.Critical++
		case SeverityWarn:
			s.Warn++
		default:
			s.Info++
		}
	}
	return s
}

// daysLeft is the time from now to t in days, truncated to two decimals.
func daysLeft(t, now time.Time) float64 {
	return math.Trunc(t.Sub(now).Hours()/24*100) / 100
}

func (r Report) renderJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r.JSON())
}

// status classifies a node's certificate for the table and the chart.
func (r Report) status(n NodeCert) string {
	if !n.Known {
		return "unknown"
	}
	nb, na := n.Cert.NotBefore, n.Cert.NotAfter
	switch {
	case !r.GeneratedAt.Before(na):
		return "expired"
	case r.Policy.CriticalBefore.Contains(nb, na, r.GeneratedAt):
		return "critical"
	case r.Policy.WarnBefore.Contains(nb, na, r.GeneratedAt):
		return "warn"
	}
	return "ok"
}

func issuerText(n NodeCert) string {
	switch {
	case !n.IssuerKnown:
		return "unknown"
	case n.IssuerCurrent:
		return "current"
	default:
		return "old"
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func (r Report) caLine() string {
	if r.CA.Err != nil {
		return "unreadable: " + r.CA.Err.Error()
	}
	ca := r.CA.CertFacts
	return fmt.Sprintf("%s  serial %s  %s %d  valid %s to %s  (age %s, %s left)",
		ca.Subject, ca.Serial, ca.KeyAlgorithm, ca.KeyBits, stamp(ca.NotBefore), stamp(ca.NotAfter),
		Days(r.GeneratedAt.Sub(ca.NotBefore)), Days(ca.NotAfter.Sub(r.GeneratedAt)))
}

func (r Report) policyLine() string {
	s := fmt.Sprintf("warn_before %s, critical_before %s", r.Policy.WarnBefore, r.Policy.CriticalBefore)
	if r.Policy.NodeCertExpiry > 0 {
		s += ", node_cert_expiry " + r.Policy.NodeCertExpiry.String()
	}
	if r.Policy.CAMaxAge > 0 {
		s += ", ca.max_age " + r.Policy.CAMaxAge.String()
	}
	return s
}

// row is one node's printable cells, shared by table and markdown.
func (r Report) row(n NodeCert) []string {
	serial, notAfter, left := "-", "-", "-"
	if n.Known {
		serial, notAfter, left = n.Cert.Serial, stamp(n.Cert.NotAfter), Days(n.Cert.NotAfter.Sub(r.GeneratedAt))
	}
	return []string{n.ID, n.Hostname, n.Role, n.State, n.Availability, serial, notAfter, left,
		r.status(n), issuerText(n), string(n.Source)}
}

var rowHeader = []string{"ID", "HOSTNAME", "ROLE", "STATE", "AVAILABILITY", "SERIAL", "NOT AFTER", "LEFT", "STATUS", "ISSUER", "SOURCE"}

func (r Report) renderTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Root CA:\t%s\n", r.caLine())
	fmt.Fprintf(tw, "Node certificate expiry:\t%s\n", r.NodeCertExpiry)
	fmt.Fprintf(tw, "Root rotation in progress:\t%s\n", yesNo(r.RootRotationInProgress))
	fmt.Fprintf(tw, "Policy:\t%s\n", r.policyLine())
	fmt.Fprintf(tw, "Generated:\t%s\n", stamp(r.GeneratedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(rowHeader, "\t"))
	for _, n := range r.Nodes {
		fmt.Fprintln(tw, strings.Join(r.row(n), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range r.Nodes {
		if !n.Known {
			fmt.Fprintf(w, "  %s (%s): %s\n", n.Hostname, n.ID, n.Reason)
		}
	}
	fmt.Fprintln(w)
	if len(r.Findings) == 0 {
		_, err := fmt.Fprintln(w, "No findings.")
		return err
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEVERITY\tFINDING\tNODE\tMESSAGE")
	for _, f := range r.Findings {
		node := f.Node
		if node == "" {
			node = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Severity, f.ID, node, f.Message)
	}
	return tw.Flush()
}

// mdEscape keeps a cell inside its Markdown table column.
func mdEscape(s string) string { return mdReplacer.Replace(s) }

var mdReplacer = strings.NewReplacer("|", `\|`, "\n", " ")

func (r Report) renderMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString("# Swarm certificates\n\n")
	fmt.Fprintf(&b, "Generated %s.\n\n", stamp(r.GeneratedAt))
	b.WriteString("## Root CA\n\n| field | value |\n|---|---|\n")
	if r.CA.Err != nil {
		fmt.Fprintf(&b, "| error | %s |\n", mdEscape(r.CA.Err.Error()))
	} else {
		ca := r.CA.CertFacts
		for _, kv := range [][2]string{
			{"subject", ca.Subject}, {"serial", ca.Serial},
			{"key", fmt.Sprintf("%s %d", ca.KeyAlgorithm, ca.KeyBits)},
			{"not before", stamp(ca.NotBefore)}, {"not after", stamp(ca.NotAfter)},
			{"age", Days(r.GeneratedAt.Sub(ca.NotBefore))}, {"left", Days(ca.NotAfter.Sub(r.GeneratedAt))},
		} {
			fmt.Fprintf(&b, "| %s | %s |\n", kv[0], mdEscape(kv[1]))
		}
	}
	fmt.Fprintf(&b, "| node certificate expiry | %s |\n", r.NodeCertExpiry)
	fmt.Fprintf(&b, "| root rotation in progress | %s |\n", yesNo(r.RootRotationInProgress))
	fmt.Fprintf(&b, "| policy | %s |\n", mdEscape(r.policyLine()))
	b.WriteString("\n## Nodes\n\n| " + strings.Join(rowHeader, " | ") + " |\n|" + strings.Repeat("---|", len(rowHeader)) + "\n")
	for _, n := range r.Nodes {
		cells := r.row(n)
		for i := range cells {
			cells[i] = mdEscape(cells[i])
		}
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	first := true
	for _, n := range r.Nodes {
		if !n.Known {
			if first {
				b.WriteString("\nNot read:\n\n")
				first = false
			}
			fmt.Fprintf(&b, "- `%s` (%s): %s\n", n.Hostname, n.ID, mdEscape(n.Reason))
		}
	}
	b.WriteString("\n## Findings\n\n")
	if len(r.Findings) == 0 {
		b.WriteString("No findings.\n")
	} else {
		b.WriteString("| severity | finding | node | message |\n|---|---|---|---|\n")
		for _, f := range r.Findings {
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s |\n", f.Severity, f.ID, mdEscape(f.Node), mdEscape(f.Message))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
