package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// Report formats.
const (
	Table    = "table"
	JSON     = "json"
	Markdown = "markdown"
	HTML     = "html"
	JUnit    = "junit"
)

// Formats lists what Render accepts; the first is the default.
var Formats = []string{Table, JSON, Markdown, HTML, JUnit}

// Render writes the report in a format.
func (r Report) Render(w io.Writer, format string) error {
	switch format {
	case Table, "":
		return r.renderTable(w)
	case JSON:
		return r.renderJSON(w)
	case Markdown:
		return r.renderMarkdown(w)
	case HTML:
		return r.renderHTML(w)
	case JUnit:
		return r.renderJUnit(w)
	}
	return fmt.Errorf("report format %q is not one of %s", format, strings.Join(Formats, ", "))
}

// FactsText prints facts as k=v in key order.
func FactsText(f map[string]string) string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+f[k])
	}
	return strings.Join(parts, " ")
}

func EvidenceLine(e Evidence) string {
	var b strings.Builder
	b.WriteString(e.Subject)
	if e.Status != "" {
		b.WriteString(" [" + string(e.Status) + "]")
	}
	if len(e.Facts) > 0 {
		b.WriteString(": " + FactsText(e.Facts))
	}
	if e.Note != "" {
		b.WriteString(" (" + e.Note + ")")
	}
	return b.String()
}

// renderJSON writes the report as one JSON object: the Document's fields first, then the report's own.
func (r Report) renderJSON(w io.Writer) error {
	base, err := json.Marshal(r)
	if err != nil {
		return err
	}
	doc := []byte("{}")
	if r.Document != nil {
		if doc, err = json.Marshal(r.Document); err != nil {
			return fmt.Errorf("encoding the report's document: %w", err)
		}
		var fields, own map[string]json.RawMessage
		if err := json.Unmarshal(doc, &fields); err != nil {
			return fmt.Errorf("the report's document is not a JSON object: %w", err)
		}
		if err := json.Unmarshal(base, &own); err != nil {
			return err
		}
		for k := range fields {
			if _, ok := own[k]; ok {
				return fmt.Errorf("the report's document repeats the report's own field %q", k)
			}
		}
	}
	joined := base
	if len(bytes.TrimSpace(doc)) > 2 {
		doc = bytes.TrimSpace(doc)
		joined = append(append(doc[:len(doc)-1:len(doc)-1], ','), base[1:]...)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, joined, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

func (r Report) summaryLine() string {
	s := r.Summary
	return fmt.Sprintf("%d pass, %d warn, %d fail, %d info, %d error", s.Pass, s.Warn, s.Fail, s.Info, s.Error)
}

func (r Report) headLine() string {
	head := r.title()
	if r.SwarmID != "" {
		head += " for swarm " + r.SwarmID
	}
	return head + ", " + r.GeneratedAt.UTC().Format(time.RFC3339)
}

func (r Report) renderTable(w io.Writer) error {
	fmt.Fprintln(w, r.headLine())
	if r.Benchmark != "" {
		fmt.Fprintln(w, r.Benchmark)
	}
	if len(r.Facts) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, f := range r.Facts {
			fmt.Fprintf(tw, "%s:\t%s\n", f.Label, f.Value)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "summary: %s\n\n", r.summaryLine())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STATUS\tCIS\tCHECK\tSUMMARY")
	for _, c := range r.Checks {
		cis := c.CIS
		if cis == "" {
			cis = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", strings.ToUpper(string(c.Status)), cis, c.ID, c.Summary)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range r.Listings {
		fmt.Fprintf(w, "\n%s\n", t.Title)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "STATUS\t"+strings.Join(t.Header, "\t"))
		for _, row := range t.Rows {
			fmt.Fprintln(tw, strings.ToUpper(string(row.Status))+"\t"+strings.Join(row.Cells, "\t"))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	for _, c := range r.Checks {
		if c.Status == StatusPass {
			continue
		}
		fmt.Fprintf(w, "\n%s %s: %s\n", strings.ToUpper(string(c.Status)), c.ID, c.Title)
		for _, e := range c.Evidence {
			fmt.Fprintf(w, "  - %s\n", EvidenceLine(e))
		}
		if c.Status != StatusInfo {
			fmt.Fprintf(w, "  fix: %s\n", c.Remediation)
		}
	}
	return nil
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

func (r Report) renderMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "# %s\n\n", r.title())
	if r.SwarmID != "" {
		fmt.Fprintf(w, "- Swarm: `%s`\n", r.SwarmID)
	}
	fmt.Fprintf(w, "- Generated: %s\n", r.GeneratedAt.UTC().Format(time.RFC3339))
	if r.Benchmark != "" {
		fmt.Fprintf(w, "- Benchmark: %s\n", r.Benchmark)
	}
	for _, f := range r.Facts {
		fmt.Fprintf(w, "- %s: %s\n", mdCell(f.Label), mdCell(f.Value))
	}
	fmt.Fprintf(w, "- Summary: %s\n\n", r.summaryLine())
	fmt.Fprintln(w, "| Status | CIS | Check | Summary |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, c := range r.Checks {
		fmt.Fprintf(w, "| %s | %s | `%s` %s | %s |\n", strings.ToUpper(string(c.Status)), mdCell(c.CIS), c.ID, mdCell(c.Title), mdCell(c.Summary))
	}
	for _, t := range r.Listings {
		fmt.Fprintf(w, "\n## %s\n\n| Status | %s |\n|---|%s\n", mdCell(t.Title), strings.Join(mdCells(t.Header), " | "), strings.Repeat("---|", len(t.Header)))
		for _, row := range t.Rows {
			fmt.Fprintf(w, "| %s | %s |\n", strings.ToUpper(string(row.Status)), strings.Join(mdCells(row.Cells), " | "))
		}
		if len(t.Notes) > 0 {
			fmt.Fprintln(w)
			for _, n := range t.Notes {
				fmt.Fprintf(w, "- %s\n", mdCell(n))
			}
		}
	}
	for _, c := range r.Checks {
		cis := ""
		if c.CIS != "" {
			cis = " (CIS " + c.CIS + ")"
		}
		fmt.Fprintf(w, "\n## %s: %s%s\n\n**%s**: %s\n\n", c.ID, c.Title, cis, strings.ToUpper(string(c.Status)), c.Summary)
		if len(c.Evidence) > 0 {
			fmt.Fprintln(w, "Evidence:")
			fmt.Fprintln(w)
			for _, e := range c.Evidence {
				fmt.Fprintf(w, "- %s\n", mdEvidence(e))
			}
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Remediation: %s\n", c.Remediation)
	}
	return nil
}

func mdCells(cells []string) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = mdCell(c)
	}
	return out
}

func mdEvidence(e Evidence) string {
	var b strings.Builder
	b.WriteString("**" + mdCell(e.Subject) + "**")
	if e.Status != "" {
		b.WriteString(" (" + string(e.Status) + ")")
	}
	if len(e.Facts) > 0 {
		keys := make([]string, 0, len(e.Facts))
		for k := range e.Facts {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, 0, len(keys))
		for _, k := range keys {
			parts = append(parts, "`"+k+"`: "+mdCell(e.Facts[k]))
		}
		b.WriteString(": " + strings.Join(parts, ", "))
	}
	if e.Note != "" {
		b.WriteString(". " + mdCell(e.Note))
	}
	return b.String()
}

// JUnit XML: one test suite, one test case per check. fail is a <failure>, error an <error>, info a
// <skipped> (nothing to judge), warn passes with the warning in <system-out> (gate warnings with --fail-on warn).
type junitSuites struct {
	XMLName xml.Name     `xml:"testsuites"`
	Name    string       `xml:"name,attr"`
	Tests   int          `xml:"tests,attr"`
	Fails   int          `xml:"failures,attr"`
	Errors  int          `xml:"errors,attr"`
	Skipped int          `xml:"skipped,attr"`
	Suites  []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name      string      `xml:"name,attr"`
	Tests     int         `xml:"tests,attr"`
	Fails     int         `xml:"failures,attr"`
	Errors    int         `xml:"errors,attr"`
	Skipped   int         `xml:"skipped,attr"`
	Timestamp string      `xml:"timestamp,attr"`
	Props     []junitProp `xml:"properties>property"`
	Cases     []junitCase `xml:"testcase"`
}

type junitProp struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	ClassName string        `xml:"classname,attr"`
	Failure   *junitMessage `xml:"failure,omitempty"`
	Error     *junitMessage `xml:"error,omitempty"`
	Skipped   *junitMessage `xml:"skipped,omitempty"`
	SystemOut string        `xml:"system-out,omitempty"`
}

type junitMessage struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr,omitempty"`
	Text    string `xml:",chardata"`
}

func (r Report) renderJUnit(w io.Writer) error {
	name := "swarmguard compliance"
	if r.Title != "" {
		name = r.Title
	}
	s := junitSuite{Name: name, Timestamp: r.GeneratedAt.UTC().Format(time.RFC3339),
		Props: []junitProp{{Name: "swarm_id", Value: r.SwarmID}}}
	if r.Benchmark != "" {
		s.Props = append(s.Props, junitProp{Name: "benchmark", Value: r.Benchmark})
	}
	for _, f := range r.Facts {
		s.Props = append(s.Props, junitProp{Name: f.Label, Value: f.Value})
	}
	for _, c := range r.Checks {
		class := "swarmguard"
		if c.CIS != "" {
			class = "cis." + c.CIS
		}
		var ev []string
		for _, e := range c.Evidence {
			ev = append(ev, EvidenceLine(e))
		}
		body := strings.Join(ev, "\n") + "\nremediation: " + c.Remediation
		tc := junitCase{Name: c.ID + ": " + c.Title, ClassName: class}
		switch c.Status {
		case StatusFail:
			tc.Failure = &junitMessage{Message: c.Summary, Type: "fail", Text: body}
			s.Fails++
		case StatusError:
			tc.Error = &junitMessage{Message: c.Summary, Type: "error", Text: body}
			s.Errors++
		case StatusInfo:
			tc.Skipped = &junitMessage{Message: "info: " + c.Summary}
			s.Skipped++
		default:
			tc.SystemOut = string(c.Status) + ": " + c.Summary + "\n" + strings.Join(ev, "\n")
		}
		s.Cases = append(s.Cases, tc)
		s.Tests++
	}
	doc := junitSuites{Name: "swarmguard", Tests: s.Tests, Fails: s.Fails, Errors: s.Errors, Skipped: s.Skipped, Suites: []junitSuite{s}}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}
