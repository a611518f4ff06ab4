package certs

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

// reportNow is the golden report's now.
var reportNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// goldenInventory is a 5-node swarm at reportNow with every kind of row: a probed first manager, a manager
// in its warn window, a down manager that lapses before it is likely back, a worker still on an old root,
// and a worker nobody could read. All dates, serials and names are fixed (the pki package's tests cover
// how an inventory is assembled from real certificates).
func goldenInventory() (pki.Inventory, pki.Policy) {
	const day = 24 * time.Hour
	node := func(id, host, role, state, serial string, src pki.Source, left time.Duration, current bool) pki.NodeCert {
		na := reportNow.Add(left)
		return pki.NodeCert{ID: id, Hostname: host, Role: role, State: state, Availability: "active", Known: true, Source: src,
			Cert:        pki.CertFacts{Subject: "CN=" + id, Serial: serial, NotBefore: na.Add(-2161 * time.Hour), NotAfter: na},
			IssuerKnown: true, IssuerCurrent: current}
	}
	m3 := node("mgr3id", "manager-3", pki.RoleManager, pki.StateDown, "3333", pki.SourceControlAPI, 8*day, true)
	m3.Availability, m3.DownSince = "drain", reportNow.Add(-12*day)
	inv := pki.Inventory{
		CA: pki.CAInfo{CertFacts: pki.CertFacts{Subject: "CN=swarm-ca", Issuer: "CN=swarm-ca", Serial: "5A17", KeyAlgorithm: "ECDSA", KeyBits: 256,
			NotBefore: time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2045, 4, 26, 0, 0, 0, 0, time.UTC)}},
		NodeCertExpiry: 2160 * time.Hour,
		Nodes: []pki.NodeCert{
			node("mgr1id", "manager-1", pki.RoleManager, pki.StateReady, "1111", pki.SourceTLSProbe, 60*day, true),
			node("mgr2id", "manager-2", pki.RoleManager, pki.StateReady, "2222", pki.SourceControlAPI, 10*day+3*time.Hour, true),
			m3,
			node("wrk1id", "worker-1", pki.RoleWorker, pki.StateReady, "4444", pki.SourceControlAPI, 80*day, false),
			{ID: "wrk2id", Hostname: "worker-2", Role: pki.RoleWorker, State: pki.StateDown, Availability: "active", Source: pki.SourceUnknown,
				Reason: "control API: node not listed; tls-probe: workers expose no TLS listener", IssuerKnown: true, IssuerCurrent: true},
		},
	}
	p := pki.Policy{NodeCertExpiry: 720 * time.Hour, WarnBefore: pki.MustWindow("20%"), CriticalBefore: pki.MustWindow("72h"), CAMaxAge: 8760 * time.Hour}
	return inv, p
}

func goldenCertsReport() report.Report {
	inv, p := goldenInventory()
	return ReportFrom(inv, p, reportNow)
}

var goldenExt = map[string]string{report.Table: "txt", report.JSON: "json", report.Markdown: "md", report.HTML: "html", report.JUnit: "xml"}

// TestCertsReportGolden: `report certs` in every format of the report package, from one inventory.
func TestCertsReportGolden(t *testing.T) {
	r := goldenCertsReport()
	for _, format := range report.Formats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, format); err != nil {
				t.Fatalf("Render(%s) = %v", format, err)
			}
			path := filepath.Join("testdata", "report", "certs."+goldenExt[format]+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("reading golden file (regenerate with go test ./operator/certs -update): %v", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("Render(%s) differs from %s (go test ./operator/certs -update, then review the diff):\n%s", format, path, firstDiff(got, string(want)))
			}
		})
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			b, _ := json.Marshal(i + 1)
			return "line " + string(b) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

// TestCertsReportJSONShape pins the fields the certificates issue names, so a rename cannot slip through a
// golden update; the findings carry the report's one status scale.
func TestCertsReportJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := goldenCertsReport().Render(&buf, report.JSON); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		CA             map[string]any   `json:"ca"`
		NodeCertExpiry string           `json:"node_cert_expiry"`
		Nodes          []map[string]any `json:"nodes"`
		Findings       []map[string]any `json:"findings"`
		Summary        map[string]int   `json:"summary"`
		Checks         []map[string]any `json:"checks"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"subject", "serial", "not_before", "not_after"} {
		if _, ok := doc.CA[k]; !ok {
			t.Errorf("ca.%s missing", k)
		}
	}
	if doc.NodeCertExpiry != "2160h0m0s" {
		t.Errorf("node_cert_expiry = %q", doc.NodeCertExpiry)
	}
	if len(doc.Nodes) != 5 {
		t.Fatalf("nodes = %d; want 5", len(doc.Nodes))
	}
	for _, n := range doc.Nodes {
		for _, k := range []string{"id", "hostname", "role", "state", "status", "serial", "not_before", "not_after", "issuer_current", "source"} {
			if _, ok := n[k]; !ok {
				t.Errorf("node %v: %s missing", n["id"], k)
			}
		}
	}
	if na := doc.Nodes[0]["not_after"].(string); na != "2026-07-31T12:00:00Z" {
		t.Errorf("manager-1 not_after = %s; want RFC 3339 UTC to the second", na)
	}
	statuses := map[string]bool{"pass": true, "info": true, "warn": true, "fail": true, "error": true}
	for _, f := range doc.Findings {
		for _, k := range []string{"id", "status", "node", "message"} {
			if _, ok := f[k]; !ok {
				t.Errorf("finding %v: %s missing", f["id"], k)
			}
		}
		if s, _ := f["status"].(string); !statuses[s] {
			t.Errorf("finding %v: status %q is not on the report's scale", f["id"], f["status"])
		}
	}
	for _, n := range doc.Nodes {
		if s, _ := n["status"].(string); !statuses[s] {
			t.Errorf("node %v: status %q is not on the report's scale", n["id"], n["status"])
		}
	}
	if len(doc.Checks) != 3 || doc.Summary == nil {
		t.Errorf("checks = %d, summary %v; want the 3 certificate checks and the report's summary", len(doc.Checks), doc.Summary)
	}
}

// TestCertsReportNoKeyMaterial: no rendering carries a PEM block or key bytes.
func TestCertsReportNoKeyMaterial(t *testing.T) {
	r := goldenCertsReport()
	for _, format := range report.Formats {
		var buf bytes.Buffer
		if err := r.Render(&buf, format); err != nil {
			t.Fatal(err)
		}
		for _, bad := range []string{"BEGIN", "PRIVATE", "MII"} {
			if strings.Contains(buf.String(), bad) {
				t.Errorf("Render(%s) contains %q", format, bad)
			}
		}
	}
}

func TestCertsReportUnknownFormat(t *testing.T) {
	err := goldenCertsReport().Render(&bytes.Buffer{}, "xml")
	if err == nil || !strings.Contains(err.Error(), "table, json, markdown, html") {
		t.Errorf("Render(xml) = %v; want an error listing the formats", err)
	}
}

// TestCertsReportWorst: the report's worst status is the worst finding's, on the report's scale: the golden
// swarm has a certificate that lapses while its node is down (critical, so fail); no findings is pass.
func TestCertsReportWorst(t *testing.T) {
	if got := goldenCertsReport().Worst(); got != report.StatusFail {
		t.Errorf("Worst() = %q; want fail", got)
	}
	ca := pki.CAInfo{CertFacts: pki.CertFacts{Subject: "CN=swarm-ca", KeyAlgorithm: "ECDSA", KeyBits: 256, NotBefore: reportNow.Add(-time.Hour), NotAfter: reportNow.Add(7000 * 24 * time.Hour)}}
	if got := ReportFrom(pki.Inventory{CA: ca}, pki.DefaultPolicy(), reportNow).Worst(); got != report.StatusPass {
		t.Errorf("Worst() of no findings = %q; want pass", got)
	}
}

func BenchmarkCertsReportRender(b *testing.B) {
	inv, p := goldenInventory()
	// Scale to a large swarm: 500 nodes.
	base := inv.Nodes
	inv.Nodes = nil
	for i := 0; i < 100; i++ {
		inv.Nodes = append(inv.Nodes, base...)
	}
	r := ReportFrom(inv, p, reportNow)
	for _, format := range report.Formats {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				if err := r.Render(&bytes.Buffer{}, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
