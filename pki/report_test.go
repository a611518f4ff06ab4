package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

// goldenReport is a 5-node swarm at testNow with every kind of row: a probed
// first manager, a manager in its warn window, a down manager that lapses
// before it is likely back, a worker still on an old root, and a worker
// nobody could read. All dates, serials and names are fixed.
func goldenReport(t testing.TB) Report {
	t.Helper()
	ca := newCA(t, p256(t), 0x5A17, "swarm-ca", time.Date(2025, 5, 1, 0, 0, 0, 0, time.UTC), time.Date(2045, 4, 26, 0, 0, 0, 0, time.UTC))
	old := newCA(t, p256(t), 0x01D, "swarm-ca", time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2044, 1, 1, 0, 0, 0, 0, time.UTC))
	cert := func(c testCA, serial int64, id, role string, left time.Duration) *x509Cert {
		na := testNow.Add(left).Truncate(time.Second)
		return &x509Cert{c: c.leaf(t, serial, id, role, na.Add(-2161*time.Hour), na)}
	}
	m1 := cert(ca, 0x1111, "mgr1id", RoleManager, 60*day)
	m2 := cert(ca, 0x2222, "mgr2id", RoleManager, 10*day+3*time.Hour)
	m3 := cert(ca, 0x3333, "mgr3id", RoleManager, 8*day)
	w1 := cert(old, 0x4444, "wrk1id", RoleWorker, 80*day)

	cluster := ca.cluster(2160 * time.Hour)
	nodes := []NodeInput{
		ca.node("mgr1id", "manager-1", RoleManager, StateReady),
		ca.node("mgr2id", "manager-2", RoleManager, StateReady),
		ca.node("mgr3id", "manager-3", RoleManager, StateDown),
		old.node("wrk1id", "worker-1", RoleWorker, StateReady),
		ca.node("wrk2id", "worker-2", RoleWorker, StateDown),
	}
	nodes[2].StatusChangedAt = testNow.Add(-12 * day)
	nodes[2].Availability = "drain"
	obs := Observed{
		Control: map[string][]byte{"mgr1id": nil, "mgr2id": []byte(pemOf(m2.c)), "mgr3id": []byte(pemOf(m3.c)), "wrk1id": []byte(pemOf(w1.c))},
		Probes:  map[string]ProbeResult{"mgr1id": {Chain: []*x509.Certificate{m1.c, ca.cert}}},
	}
	inv := Assemble(cluster, nodes, obs)
	p := Policy{NodeCertExpiry: 720 * time.Hour, WarnBefore: MustWindow("20%"), CriticalBefore: MustWindow("72h"), CAMaxAge: 8760 * time.Hour}
	return NewReport(inv, p, testNow)
}

func TestReportGolden(t *testing.T) {
	r := goldenReport(t)
	for _, format := range Formats {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, format); err != nil {
				t.Fatalf("Render(%s) = %v", format, err)
			}
			ext := map[string]string{FormatTable: "txt", FormatJSON: "json", FormatMarkdown: "md", FormatHTML: "html"}[format]
			path := filepath.Join("testdata", "report", "certs."+ext+".golden")
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
				t.Fatalf("reading golden file (regenerate with go test ./pki -update): %v", err)
			}
			if got := buf.String(); got != string(want) {
				t.Errorf("Render(%s) differs from %s (go test ./pki -update, then review the diff):\n%s", format, path, firstDiff(got, string(want)))
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
			return "line " + itoa(i+1) + ":\n got: " + gl + "\nwant: " + wl
		}
	}
	return ""
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestReportJSONShape pins the fields the issue names, so a rename cannot
// slip through a golden update.
func TestReportJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := goldenReport(t).Render(&buf, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		CA             map[string]any   `json:"ca"`
		NodeCertExpiry string           `json:"node_cert_expiry"`
		Nodes          []map[string]any `json:"nodes"`
		Findings       []map[string]any `json:"findings"`
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
		for _, k := range []string{"id", "hostname", "role", "state", "serial", "not_before", "not_after", "issuer_current", "source"} {
			if _, ok := n[k]; !ok {
				t.Errorf("node %v: %s missing", n["id"], k)
			}
		}
	}
	if na := doc.Nodes[0]["not_after"].(string); na != "2026-07-31T12:00:00Z" {
		t.Errorf("manager-1 not_after = %s; want RFC 3339 UTC to the second", na)
	}
	for _, f := range doc.Findings {
		for _, k := range []string{"id", "severity", "node", "message"} {
			if _, ok := f[k]; !ok {
				t.Errorf("finding %v: %s missing", f["id"], k)
			}
		}
	}
}

// TestReportNoKeyMaterial: no rendering carries a PEM block or key bytes.
func TestReportNoKeyMaterial(t *testing.T) {
	r := goldenReport(t)
	for _, format := range Formats {
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

func TestRenderUnknownFormat(t *testing.T) {
	err := goldenReport(t).Render(&bytes.Buffer{}, "xml")
	if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), "table, json, markdown, html") {
		t.Errorf("Render(xml) = %v; want ErrUnknownFormat listing the formats", err)
	}
}

func TestReportWorst(t *testing.T) {
	if got := goldenReport(t).Worst(); got != SeverityCritical {
		t.Errorf("Worst() = %q; want critical", got)
	}
	if got := (Report{}).Worst(); got != "" {
		t.Errorf("Worst() of no findings = %q; want empty", got)
	}
}

func BenchmarkRender(b *testing.B) {
	r := goldenReport(b)
	// Scale to a large swarm: 500 nodes.
	base := r.Nodes
	r.Nodes = nil
	for i := 0; i < 100; i++ {
		r.Nodes = append(r.Nodes, base...)
	}
	for _, format := range Formats {
		b.Run(format, func(b *testing.B) {
			for b.Loop() {
				if err := r.Render(&bytes.Buffer{}, format); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type x509Cert struct{ c *x509.Certificate }

func TestTickStep(t *testing.T) {
	tests := []struct{ max, want float64 }{{1.04, 0.25}, {2, 0.5}, {90.04, 30}, {365, 90}, {7300, 1825}, {100000, 20000}}
	for _, tt := range tests {
		if got := tickStep(tt.max); got != tt.want {
			t.Errorf("tickStep(%v) = %v; want %v", tt.max, got, tt.want)
		}
	}
}
