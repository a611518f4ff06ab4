package compliance

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmguard/swarmguard/operator/workloads"

	"github.com/swarmguard/swarmguard/operator/autolock"
	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/cluster"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/testpki"
	"github.com/swarmguard/swarmguard/operator/networks"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/operator/tokens"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

// fixedNow is the report time of every test: times and IDs are fixed so golden files compare exactly.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func testCAPEM(t testing.TB, notBefore time.Time) string { return testpki.CAPEM(t, notBefore) }

func u64(n uint64) *uint64 { return &n }

// sampleInput is a swarm with one unencrypted overlay network, one encrypted, one exempt with a reason and
// one whose exemption label has no reason; every domain is filled in: the unlock key escrowed, a node
// certificate near its expiry, a down worker, and one synced secret behind Vault.
func sampleInput(t testing.TB) (Input, config.Config) {
	cfg := config.DefaultConfig()
	cfg.Networks.Exempt = []string{"ingress"}
	cfg.PKI.CA.MaxAge = config.Duration(365 * 24 * time.Hour)
	sw := cluster.ReportInput{
		Now: fixedNow,
		Cluster: swarm.Cluster{ID: "swarm0000000000000000000001", NodeCertExpiry: 2160 * time.Hour, AutoLock: true,
			TrustRootPEM: testCAPEM(t, fixedNow.Add(-400*24*time.Hour)), DataPathPort: 4789,
			DefaultAddrPool: []string{"10.20.0.0/16"}, SubnetSize: 24},
		Nodes: []swarm.Node{
			{ID: "node1", Hostname: "m1", Role: "manager", Leader: true, State: "ready", Reachability: "reachable", ManagerAddr: "10.0.0.11:2377", Addr: "10.0.0.11", EngineVersion: "24.0.7"},
			{ID: "node2", Hostname: "m2", Role: "manager", State: "ready", Reachability: "reachable", ManagerAddr: "10.0.0.12:2377", Addr: "10.0.0.12", EngineVersion: "24.0.7"},
			{ID: "node3", Hostname: "m3", Role: "manager", State: "ready", Reachability: "reachable", ManagerAddr: "10.0.0.13:2377", Addr: "10.0.0.13", EngineVersion: "24.0.7"},
			{ID: "node4", Hostname: "w1", Role: "worker", State: "ready", Addr: "10.0.0.21", EngineVersion: "23.0.1"},
		},
		Networks: []swarm.Network{
			{ID: "net-backend", Name: "backend", Driver: "overlay", Scope: "swarm", Attachable: true, Subnets: []string{"10.20.1.0/24"}},
			{ID: "net-secure", Name: "secure", Driver: "overlay", Scope: "swarm", Encrypted: true, HasEncryptedOption: true, Subnets: []string{"10.20.2.0/24"}},
			{ID: "net-legacy", Name: "legacy", Driver: "overlay", Scope: "swarm", Subnets: []string{"10.20.3.0/24"},
				Labels: map[string]string{swarm.LabelEncryption: "exempt", swarm.LabelEncryptionReason: "vendor appliance speaks no IPsec"}},
			{ID: "net-lazy", Name: "lazy", Driver: "overlay", Scope: "swarm", Subnets: []string{"10.20.4.0/24"},
				Labels: map[string]string{swarm.LabelEncryption: "exempt"}},
			{ID: "net-ingress", Name: "ingress", Driver: "overlay", Scope: "swarm", Ingress: true, Subnets: []string{"10.0.0.0/24"}},
		},
		Services: []swarm.Service{
			{ID: "svc-api", Name: "api", Mode: "replicated", Replicas: u64(2), Networks: []swarm.NetworkAttachment{{Target: "net-backend", Aliases: []string{"api"}}},
				EnvNames: []string{"DB_PASSWORD", "LOG_LEVEL", "API_TOKEN_FILE"}, SecretNames: []string{"tls-key"}},
			{ID: "svc-web", Name: "web", Mode: "replicated", Replicas: u64(1), Networks: []swarm.NetworkAttachment{{Target: "net-secure"}, {Target: "net-backend"}},
				VIPNetworks: []string{"net-ingress"}},
		},
		Ledger: []swarm.Entry{
			{Kind: swarm.KindUnlockKey, At: fixedNow.Add(-10 * 24 * time.Hour), Actor: "cli:ops@host", Result: swarm.ResultOK, Seq: 1},
			{Kind: swarm.KindJoinTokenWorker, At: fixedNow.Add(-40 * 24 * time.Hour), Actor: "node1", Result: swarm.ResultAdopted, Seq: 2},
		},
		Local: cluster.LocalSwarmState{NodeID: "node1", Hostname: "m1", Source: "/var/lib/docker/swarm/docker-state.json",
			ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.11:2377"},
		// m2 and m3 carry overlay traffic on their management addresses; w1 on a data network (10.1.0.21)
		Tunnels: []swarm.TunnelEndpoint{{Name: "ingress-endpoint", HostIP: "10.0.0.11"}, {Name: "ingress-endpoint", HostIP: "10.0.0.12"},
			{Name: "ingress-endpoint", HostIP: "10.0.0.13"}, {Name: "ingress-endpoint", HostIP: "10.1.0.21"}},
		// the engine asked runs on nftables, and the swarm has an encrypted overlay network: experimental
		Engine: swarm.EngineFacts{NodeID: "node1", Hostname: "m1", ServerVersion: "29.8.0", FirewallBackend: "nftables"},
		// nothing listens on port 2377 on w1's data-path address (workers do not serve it)
		ListenProbed: true, ListenProbes: []cluster.ListenProbe{{Addr: "10.1.0.21:2377", Refused: true}},
	}
	keyFP := sensitive.New("SWMKEY-1-sample").Fingerprint()
	cert := func(days int) pki.CertFacts {
		return pki.CertFacts{Subject: "CN=node", Issuer: "CN=swarm-ca", Serial: "1A2B", KeyAlgorithm: "ECDSA", KeyBits: 256,
			NotBefore: fixedNow.Add(-90 * 24 * time.Hour), NotAfter: fixedNow.Add(time.Duration(days) * 24 * time.Hour)}
	}
	v1 := secretsync.Version{Name: "db-11111111", VaultVersion: 1}
	v2 := secretsync.Version{Name: "db-22222222", VaultVersion: 2}
	in := Input{ReportInput: sw,
		Autolock: autolock.Observation{KeyFingerprint: keyFP, Escrow: autolock.EscrowObservation{Path: "secret/swarmguard/swarm0000000000000000000001/unlock-key",
			Checked: true, Found: true, Fingerprint: keyFP, SwarmID: sw.Cluster.ID, Version: 3, Matches: true}},
		Inventory: pki.Inventory{NodeCertExpiry: 2160 * time.Hour, Nodes: []pki.NodeCert{
			{ID: "node1", Hostname: "m1", Role: "manager", State: "ready", Known: true, Cert: cert(60), Source: pki.SourceControlAPI, IssuerCurrent: true, IssuerKnown: true},
			{ID: "node2", Hostname: "m2", Role: "manager", State: "ready", Known: true, Cert: cert(5), Source: pki.SourceControlAPI, IssuerCurrent: true, IssuerKnown: true},
			{ID: "node3", Hostname: "m3", Role: "manager", State: "ready", Known: true, Cert: cert(60), Source: pki.SourceTLSProbe, IssuerCurrent: true, IssuerKnown: true},
			{ID: "node4", Hostname: "w1", Role: "worker", State: "down", DownSince: fixedNow.Add(-48 * time.Hour), Known: true, Cert: cert(1), Source: pki.SourceControlAPI},
		}},
		Secrets: []secretsync.Result{{Mapping: "db", Outcome: secretsync.OutcomePlanned, VaultVersion: 2,
			Plan: &secretsync.Plan{Mapping: "db", Source: "secret/apps/db#password", Current: &v1, Wanted: v2, Create: &v2, Updates: []secretsync.ServiceUpdate{{ServiceName: "api"}}}}},
		Workloads: sampleWorkloads(),
	}
	return in, cfg
}

func TestReportGolden(t *testing.T) {
	in, cfg := sampleInput(t)
	r := Build(in, cfg)
	for _, f := range []string{report.Table, report.JSON, report.Markdown, report.JUnit} {
		t.Run(f, func(t *testing.T) {
			var buf bytes.Buffer
			if err := r.Render(&buf, f); err != nil {
				t.Fatalf("Render(%s) = %v", f, err)
			}
			ext := map[string]string{report.Table: "txt", report.JSON: "json", report.Markdown: "md", report.JUnit: "xml"}[f]
			golden(t, filepath.Join("testdata", "report", "report."+ext+".golden"), buf.Bytes())
		})
	}
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v (run go test ./operator -update)", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test ./operator -update and review the diff):\n%s", path, firstDiff(string(want), string(got)))
	}
}

func firstDiff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(wl) || i < len(gl); i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return "line " + itoa(i+1) + ":\n want: " + w + "\n  got: " + g
		}
	}
	return "(no line differs)"
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestReportJSONShape(t *testing.T) {
	in, cfg := sampleInput(t)
	r := Build(in, cfg)
	var buf bytes.Buffer
	if err := r.Render(&buf, report.JSON); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		GeneratedAt string         `json:"generated_at"`
		SwarmID     string         `json:"swarm_id"`
		Summary     map[string]int `json:"summary"`
		Checks      []struct {
			ID, Title, Status, CIS, Remediation string
			Evidence                            []map[string]any
		} `json:"checks"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.GeneratedAt != "2026-06-01T12:00:00Z" || doc.SwarmID != in.Cluster.ID {
		t.Errorf("generated_at, swarm_id = %q, %q", doc.GeneratedAt, doc.SwarmID)
	}
	for _, k := range []string{"pass", "warn", "fail", "info", "error"} {
		if _, ok := doc.Summary[k]; !ok {
			t.Errorf("summary has no %q", k)
		}
	}
	cis := map[string]string{}
	for _, c := range doc.Checks {
		if c.ID == "" || c.Title == "" || c.Status == "" || c.Remediation == "" {
			t.Errorf("check %+v lacks a field", c)
		}
		if c.CIS != "" {
			cis[c.CIS] = c.Status
		}
	}
	for i := 1; i <= 9; i++ {
		if _, ok := cis["7."+itoa(i)]; !ok {
			t.Errorf("no check for CIS 7.%d", i)
		}
	}
	if cis["7.3"] != "fail" {
		t.Errorf("7.3 = %s; want fail (backend is unencrypted)", cis["7.3"])
	}
	if strings.Contains(buf.String(), "DB_PASSWORD=") {
		t.Errorf("report shows an environment value")
	}
}

func checkByID(t *testing.T, r report.Report, id string) report.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == id {
			return c
		}
	}
	t.Fatalf("no check %s", id)
	return report.Check{}
}

func evidenceText(c report.Check) string {
	var parts []string
	for _, e := range c.Evidence {
		parts = append(parts, report.EvidenceLine(e))
	}
	return strings.Join(parts, "; ")
}

func TestReportFails(t *testing.T) {
	mk := func(ss ...report.CheckStatus) report.Report {
		var r report.Report
		for _, s := range ss {
			r.Checks = append(r.Checks, report.Check{Status: s})
		}
		return r
	}
	for _, tc := range []struct {
		name   string
		r      report.Report
		failOn string
		want   bool
	}{
		{"fail gate, a fail", mk(report.StatusPass, report.StatusFail), report.FailOnFail, true},
		{"fail gate, a warn", mk(report.StatusPass, report.StatusWarn), report.FailOnFail, false},
		{"warn gate, a warn", mk(report.StatusPass, report.StatusWarn), report.FailOnWarn, true},
		{"warn gate, info only", mk(report.StatusPass, report.StatusInfo), report.FailOnWarn, false},
		{"fail gate, an error", mk(report.StatusError), report.FailOnFail, true},
		{"no gate, a fail", mk(report.StatusFail), "", false},
		{"no gate, an error", mk(report.StatusError), "", true},
		{"none gate, an error", mk(report.StatusError), report.FailOnNone, false},
	} {
		if got := tc.r.Fails(tc.failOn); got != tc.want {
			t.Errorf("%s: ReportFails(%q) = %v; want %v", tc.name, tc.failOn, got, tc.want)
		}
	}
}

func TestEveryDomainFilledIn(t *testing.T) {
	in, cfg := sampleInput(t)
	r := Build(in, cfg)
	for _, c := range r.Checks {
		if strings.Contains(c.Summary, "not available") {
			t.Errorf("%s = %s %q; want every domain filled in", c.ID, c.Status, c.Summary)
		}
	}
	for _, id := range []string{"tokens.age", "autolock.escrow", "pki.node-certs", "pki.down-nodes", "secrets.sync"} {
		checkByID(t, r, id)
	}
	in.SecretsErr = errors.New("vault down")
	in.InventoryErr = errors.New("control socket gone")
	r = Build(in, cfg)
	for _, id := range []string{"secrets.sync", "pki.node-certs", "pki.down-nodes"} {
		if c := checkByID(t, r, id); c.Status != report.StatusError {
			t.Errorf("%s with a read error = %s; want error", id, c.Status)
		}
	}
}

func TestGauges(t *testing.T) {
	in, cfg := sampleInput(t)
	r := Build(in, cfg)
	g := Gauges(r, in, cfg)
	var b bytes.Buffer
	for _, x := range g {
		b.WriteString(x.Name + "{" + report.FactsText(x.Labels) + "} " + big.NewFloat(x.Value).String() + "\n")
	}
	for _, want := range []string{
		"swarmguard_check_status{check=networks.encrypted} 2",
		"swarmguard_check_status{check=swarm.manager-count} 0",
		"swarmguard_network_encrypted{network=secure} 1",
		"swarmguard_network_encrypted{network=backend} 0",
		"swarmguard_network_compliant{network=secure} 1",
		"swarmguard_network_compliant{network=backend} 0",
		"swarmguard_network_compliant{network=ingress} 1", // unencrypted, exempted by networks.exempt
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("gauges lack %q:\n%s", want, b.String())
		}
	}
}

func TestHTMLSelfContained(t *testing.T) {
	in, cfg := sampleInput(t)
	r := Build(in, cfg)
	var buf bytes.Buffer
	if err := r.Render(&buf, report.HTML); err != nil {
		t.Fatal(err)
	}
	h := buf.String()
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "@import", "url("} {
		if strings.Contains(h, bad) {
			t.Errorf("HTML report holds %q: it must be self-contained", bad)
		}
	}
	if strings.Count(h, "<svg") != 3 || !strings.Contains(h, "w1") || !strings.Contains(h, "1.0 days") ||
		!strings.Contains(h, "Workload findings per check") || !strings.Contains(h, "1 fail, 0 warn / 4") {
		t.Errorf("HTML report lacks its three charts (certificates, ages, workload findings)")
	}
}

func BenchmarkReportRender(b *testing.B) {
	in, cfg := sampleInput(b)
	for i := 0; i < 200; i++ {
		in.Networks = append(in.Networks, swarm.Network{ID: "n" + itoa(i), Name: "net" + itoa(i), Driver: "overlay", Scope: "swarm"})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := Build(in, cfg)
		var buf bytes.Buffer
		_ = r.Render(&buf, report.HTML)
	}
}

func TestGaugeCollector(t *testing.T) {
	c := report.NewGaugeCollector()
	c.Set([]report.Gauge{
		{Name: networks.MetricNetworkEncrypted, Help: "h", Labels: map[string]string{"network": "a"}, Value: 1},
		{Name: networks.MetricNetworkEncrypted, Help: "h", Labels: map[string]string{"network": "a"}, Value: 0},
		{Name: report.MetricCheckStatus, Help: "h", Labels: map[string]string{"check": "networks.encrypted"}, Value: 2},
	})
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	n := 0
	for _, mf := range mfs {
		n += len(mf.GetMetric())
	}
	if n != 2 {
		t.Errorf("gathered %d series; want 2 (duplicates dropped)", n)
	}
}

// sampleWorkloads are the workload domain's services of the golden report: an unhardened one, a hardened
// one, one exempt with a reason, one exempt without, and one with 0 replicas.
func sampleWorkloads() workloads.Observation {
	zero := uint64(0)
	return workloads.Observation{APIVersion: "1.56", Images: map[string]workloads.Image{"nginx:1": {Found: true}}, Services: []swarm.Workload{
		{ID: "w1", Name: "api", Container: true, Image: "nginx:1", CapAdd: []string{"SYS_ADMIN"}, Mode: "replicated",
			Mounts: []swarm.WorkloadMount{{Type: "bind", Source: "/var/run/docker.sock", Target: "/var/run/docker.sock"},
				{Type: "bind", Source: "/srv", Target: "/srv", Propagation: "rshared"}},
			Ports: []swarm.WorkloadPort{{Protocol: "tcp", Target: 8080, Published: 80, Mode: "ingress"}}},
		{ID: "w2", Name: "web", Container: true, Image: "registry.internal:5000/web@sha256:0123", User: "65534:65534", CapDrop: []string{"ALL"},
			ReadOnly: true, MemoryLimit: 64 << 20, NanoCPUs: 25e7, PidsLimit: 100, NoNewPrivileges: true, Mode: "replicated",
			RestartCondition: "on-failure", RestartMaxAttempts: 5, Healthcheck: swarm.HealthSet,
			Ports: []swarm.WorkloadPort{{Protocol: "tcp", Target: 8080, Published: 8443, Mode: "ingress"}}},
		{ID: "w3", Name: "router", Container: true, Image: "nginx:1", User: "101", CapAdd: []string{"NET_ADMIN"}, Mode: "global",
			Labels: map[string]string{swarm.LabelWorkloadExempt: "capabilities", swarm.LabelWorkloadExemptReason: "a network daemon"}},
		{ID: "w4", Name: "agent", Container: true, Image: "nginx:1", Seccomp: "unconfined", Replicas: &zero, Mode: "replicated",
			Labels: map[string]string{swarm.LabelWorkloadExempt: "privileges", swarm.LabelWorkloadProfile: "system"}},
	}}
}

// TestDomainGaugesAgreeWithReport: the controller refreshes the compliance gauges in parts, each domain
// from its own pass (issue 22, item 3), where it once rebuilt the whole report on the networks loop's
// schedule. For one observation the parts together are exactly the report's Gauges: every series, every
// value, nothing more and nothing twice.
func TestDomainGaugesAgreeWithReport(t *testing.T) {
	in, cfg := sampleInput(t)
	want := gaugeLines(Gauges(Build(in, cfg), in, cfg))
	now := in.Now.UTC()
	// Each domain's pass hands over what it read: the secret sync its mappings' latest results.
	parts := map[string][]report.Gauge{
		"cluster":   cluster.SectionGauges(in.ReportInput),
		"networks":  networks.SectionGauges(networkObservation(in.ReportInput), cfg.Networks),
		"tokens":    tokens.SectionGauges(cfg.Tokens, in.Cluster, in.Ledger, now),
		"autolock":  autolock.SectionGauges(in.Cluster, in.Ledger, in.Autolock, cfg.Autolock, now),
		"certs":     certs.SectionGauges(in.Cluster, in.Ledger, nil, in.Inventory, cfg.PKI, now),
		"secrets":   secretsync.SectionGauges(in.Secrets, in.Ledger, nil, now),
		"workloads": workloads.SectionGauges(in.Workloads, cfg.Workloads),
	}
	col := report.NewGaugeCollector()
	for name, g := range parts {
		col.SetPart(name, g)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(col)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather() = %v", err)
	}
	var got []string
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			got = append(got, mf.GetName()+"{"+report.FactsText(labels)+"} "+big.NewFloat(m.GetGauge().GetValue()).String())
		}
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("the domains' gauge parts differ from the report's gauges:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(want) < 20 {
		t.Errorf("the report has only %d gauges; want every domain's (the sample fills them all)", len(want))
	}
	// A part set again replaces only itself: the networks pass does not touch the certs part.
	col.SetPart("networks", nil)
	n := 0
	if mfs, err = reg.Gather(); err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "check" && l.GetValue() == "pki.down-nodes" {
					n++
				}
				if l.GetName() == "check" && strings.HasPrefix(l.GetValue(), "networks.") {
					t.Errorf("series %s left after the networks part was emptied", l.GetValue())
				}
			}
		}
	}
	if n != 1 {
		t.Errorf("pki.down-nodes series after the networks part was emptied: %d; want 1", n)
	}
}

func gaugeLines(g []report.Gauge) []string {
	out := make([]string, 0, len(g))
	seen := map[string]bool{}
	for _, x := range g {
		l := x.Name + "{" + report.FactsText(x.Labels) + "} " + big.NewFloat(x.Value).String()
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}
