package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// domainReport is a report of one domain: a title, header facts, a listing, a document, one section.
func domainReport() Report {
	r := New(time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC), "", Section{
		Checks:   []Check{{ID: "d.one", Title: "One holds", Status: StatusWarn, Summary: "one is off", Remediation: "fix one"}},
		CertDays: []CertDaysBar{{Node: "n1", DaysLeft: 30, Total: 90, Status: StatusPass, WarnDays: 18, CriticalDays: 9}, {Node: "n2", Status: StatusInfo}},
	})
	r.Benchmark, r.Title = "", "swarmguard domain report"
	r.Facts = []Fact{{Label: "Policy", Value: "max_age 1h"}}
	r.Listings = []Listing{{Title: "Things", Header: []string{"NAME", "LEFT"}, Rows: []Row{{Status: StatusFail, Cells: []string{"a|b", "1d"}}}, Notes: []string{"c: not read"}}}
	r.Document = struct {
		Things []string `json:"things"`
	}{[]string{"a|b"}}
	return r
}

// A domain's report renders its title, facts and listings in every format, with the one status scale.
func TestRenderDomainReport(t *testing.T) {
	r := domainReport()
	for _, tt := range []struct {
		format string
		want   []string
	}{
		{Table, []string{"swarmguard domain report, 2026-06-01T12:00:00Z\n", "Policy:  max_age 1h\n", "summary: 0 pass, 1 warn, 0 fail, 0 info, 0 error", "\nThings\nSTATUS  NAME  LEFT\nFAIL    a|b   1d\n  c: not read\n"}},
		{Markdown, []string{"# swarmguard domain report\n", "- Policy: max_age 1h\n", "## Things\n\n| Status | NAME | LEFT |\n|---|---|---|\n| FAIL | a\\|b | 1d |\n", "- c: not read\n"}},
		{HTML, []string{"<h1>swarmguard domain report</h1>", "<th>Policy</th><td>max_age 1h</td>", "<h2>Things</h2>", "<td>a|b</td>", "c: not read", "30.0 days",
			`fill="` + bandWarn + `"`, `fill="` + bandCritical + `"`, "its warn window (amber)", ">unknown</text>"}},
		{JUnit, []string{`<testsuite name="swarmguard domain report"`, `<property name="Policy" value="max_age 1h">`}},
	} {
		var b bytes.Buffer
		if err := r.Render(&b, tt.format); err != nil {
			t.Fatalf("Render(%s) = %v", tt.format, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(b.String(), w) {
				t.Errorf("Render(%s) lacks %q:\n%s", tt.format, w, b.String())
			}
		}
		for _, bad := range []string{"compliance", "CIS Docker Benchmark", "Swarm <code>", "Credential ages", "Workload findings"} {
			if strings.Contains(b.String(), bad) {
				t.Errorf("Render(%s) of a domain report holds %q:\n%s", tt.format, bad, b.String())
			}
		}
	}
}

// The JSON rendering is one object: the document's fields first, then the report's own.
func TestRenderJSONDocument(t *testing.T) {
	var b bytes.Buffer
	if err := domainReport().Render(&b, JSON); err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not one JSON object: %v\n%s", err, b.String())
	}
	for _, k := range []string{"things", "generated_at", "swarm_id", "summary", "checks"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("JSON lacks %s:\n%s", k, b.String())
		}
	}
	if _, ok := doc["benchmark"]; ok {
		t.Errorf("JSON of a report with no benchmark names one:\n%s", b.String())
	}
	if !strings.HasPrefix(b.String(), "{\n  \"things\": [") || !strings.HasSuffix(b.String(), "}\n") {
		t.Errorf("JSON does not start with the document's fields, indented:\n%s", b.String())
	}
}

// A document that repeats a field of the report, or is no object, is refused, not written half.
func TestRenderJSONDocumentRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		doc  any
		want string
	}{
		{"repeats summary", map[string]int{"summary": 1}, `repeats the report's own field "summary"`},
		{"not an object", []string{"x"}, "not a JSON object"},
	} {
		r := domainReport()
		r.Document = tt.doc
		var b bytes.Buffer
		err := r.Render(&b, JSON)
		if err == nil || !strings.Contains(err.Error(), tt.want) || b.Len() != 0 {
			t.Errorf("%s: Render(json) = %v, wrote %d bytes; want an error saying %q and nothing written", tt.name, err, b.Len(), tt.want)
		}
	}
}

// The HTML draws the charts the sections gave, an empty one with its note, and no other.
func TestHTMLChartsGiven(t *testing.T) {
	var b bytes.Buffer
	if err := domainReport().Render(&b, HTML); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(b.String(), "<svg"); n != 1 {
		t.Errorf("domain report draws %d charts; want 1, its certificate chart", n)
	}
	r := New(time.Now(), "s", Section{Ages: []AgeBar{}}, Section{Findings: []FindingBar{}})
	b.Reset()
	if err := r.Render(&b, HTML); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"no credential ages known", "no services judged"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("HTML lacks the empty chart's note %q", want)
		}
	}
	if strings.Contains(b.String(), "Node certificates: days left") {
		t.Errorf("HTML draws the certificate chart no section gave")
	}
}
