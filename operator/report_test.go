package operator

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/report")

// fixedNow is the report time of every test: times and IDs are fixed so golden files compare exactly.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// testCAPEM makes a root CA certificate with exact dates and serial (the key is throwaway and random; it
// shows in no output).
func testCAPEM(t testing.TB, notBefore time.Time) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(0x5a17), Subject: pkix.Name{CommonName: "swarm-ca"},
		NotBefore: notBefore, NotAfter: notBefore.Add(20 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func u64(n uint64) *uint64 { return &n }

// sampleInput is a swarm with one unencrypted overlay network, one encrypted, one exempt with a reason and
// one whose exemption label has no reason.
func sampleInput(t testing.TB) (ReportInput, config.Config) {
	cfg := config.DefaultConfig()
	cfg.Networks.Exempt = []string{"ingress"}
	cfg.PKI.CA.MaxAge = config.Duration(365 * 24 * time.Hour)
	in := ReportInput{
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
		Local: LocalSwarmState{NodeID: "node1", Hostname: "m1", Source: "/var/lib/docker/swarm/docker-state.json",
			ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.11:2377"},
		// m2 and m3 carry overlay traffic on their management addresses; w1 on a data network (10.1.0.21)
		Tunnels: []swarm.TunnelEndpoint{{Name: "ingress-endpoint", HostIP: "10.0.0.11"}, {Name: "ingress-endpoint", HostIP: "10.0.0.12"},
			{Name: "ingress-endpoint", HostIP: "10.0.0.13"}, {Name: "ingress-endpoint", HostIP: "10.1.0.21"}},
		// nothing listens on port 2377 on w1's data-path address (workers do not serve it)
		ListenProbed: true, ListenProbes: []ListenProbe{{Addr: "10.1.0.21:2377", Refused: true}},
		Domains: map[string]DomainResult{},
	}
	return in, cfg
}

func TestReportGolden(t *testing.T) {
	in, cfg := sampleInput(t)
	r := BuildReport(in, cfg)
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
	r := BuildReport(in, cfg)
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

func TestEvaluateNetworks(t *testing.T) {
	in, cfg := sampleInput(t)
	vs := EvaluateNetworks(in.Networks, in.Services, cfg.Networks)
	want := map[string]struct {
		status report.CheckStatus
		exempt bool
		svcs   string
	}{
		"backend": {report.StatusFail, false, "api, web"},
		"secure":  {report.StatusPass, false, "web"},
		"legacy":  {report.StatusInfo, true, "none"},
		"lazy":    {report.StatusFail, false, "none"}, // exemption label without a reason does not exempt
		"ingress": {report.StatusInfo, true, "web"},   // exempt by config; web has a VIP on it
	}
	for _, v := range vs {
		w := want[v.Network.Name]
		if v.Status != w.status || v.Exempt != w.exempt || listOrNone(v.Services) != w.svcs {
			t.Errorf("EvaluateNetworks(%s) = %s exempt=%v services=%s; want %s exempt=%v services=%s",
				v.Network.Name, v.Status, v.Exempt, listOrNone(v.Services), w.status, w.exempt, w.svcs)
		}
	}
	r := BuildReport(in, cfg)
	if c := checkByID(t, r, "networks.exemptions"); c.Status != report.StatusFail || !strings.Contains(evidenceText(c), "lazy") {
		t.Errorf("networks.exemptions = %s %s; want fail naming lazy", c.Status, evidenceText(c))
	}
	c := checkByID(t, r, "networks.encrypted")
	if !strings.Contains(evidenceText(c), "backend") || !strings.Contains(c.Summary, "backend") {
		t.Errorf("7.3 evidence does not name backend: %s", evidenceText(c))
	}
}

func evidenceText(c report.Check) string {
	var parts []string
	for _, e := range c.Evidence {
		parts = append(parts, report.EvidenceLine(e))
	}
	return strings.Join(parts, "; ")
}

func TestManagerCount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		managers int
		want     report.CheckStatus
	}{
		{"one manager", 1, report.StatusWarn},
		{"two managers", 2, report.StatusWarn},
		{"three managers", 3, report.StatusPass},
		{"four managers", 4, report.StatusWarn},
		{"five managers", 5, report.StatusPass},
		{"seven managers", 7, report.StatusPass},
		{"eight managers", 8, report.StatusFail},
		{"nine managers", 9, report.StatusFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []swarm.Node
			for i := 0; i < tc.managers; i++ {
				nodes = append(nodes, swarm.Node{ID: "m" + itoa(i), Hostname: "m" + itoa(i), Role: "manager", Reachability: "reachable"})
			}
			nodes = append(nodes, swarm.Node{ID: "w", Hostname: "w", Role: "worker"})
			if got := checkManagerCount(nodes, nil).Status; got != tc.want {
				t.Errorf("checkManagerCount(%d managers) = %s; want %s", tc.managers, got, tc.want)
			}
		})
	}
	if got := checkManagerCount(nil, errors.New("boom")).Status; got != report.StatusError {
		t.Errorf("checkManagerCount(read error) = %s; want error", got)
	}
}

func TestListenAndDataPath(t *testing.T) {
	one := []swarm.Node{{ID: "n1", Hostname: "m1", Role: "manager"}}
	three := append(one, swarm.Node{ID: "n2", Hostname: "m2", Role: "manager"}, swarm.Node{ID: "n3", Hostname: "w1", Role: "worker"})
	st := func(listen, adv, data string) LocalSwarmState {
		return LocalSwarmState{NodeID: "n1", Hostname: "m1", Source: "state.json", ListenAddr: listen, AdvertiseAddr: adv, DataPathAddr: data}
	}
	unreadable := LocalSwarmState{Err: errors.New("not on the engine's host")}
	for _, tc := range []struct {
		name         string
		nodes        []swarm.Node
		local        LocalSwarmState
		listen, data report.CheckStatus
	}{
		{"single node, wildcard, shared", one, st("0.0.0.0:2377", "10.0.0.11:2377", ""), report.StatusFail, report.StatusFail},
		{"single node, specific, separated", one, st("10.0.0.11:2377", "10.0.0.11:2377", "192.168.5.11"), report.StatusPass, report.StatusPass},
		{"single node, interface name", one, st("eth0:2377", "eth0:2377", "eth1"), report.StatusPass, report.StatusPass},
		{"single node, ipv6 wildcard", one, st("[::]:2377", "10.0.0.11:2377", "10.0.0.11"), report.StatusFail, report.StatusFail},
		{"several nodes, local good", three, st("10.0.0.11:2377", "10.0.0.11:2377", "192.168.5.11"), report.StatusInfo, report.StatusInfo},
		{"several nodes, local bad", three, st("0.0.0.0:2377", "10.0.0.11:2377", ""), report.StatusFail, report.StatusFail},
		{"state unreadable", one, unreadable, report.StatusInfo, report.StatusInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkListenAddr(ReportInput{Nodes: tc.nodes, Local: tc.local, TunnelsErr: errors.New("no ingress")}).Status; got != tc.listen {
				t.Errorf("checkListenAddr = %s; want %s", got, tc.listen)
			}
			if got := checkDataPathSeparated(tc.nodes, nil, tc.local, nil, errors.New("no ingress")).Status; got != tc.data {
				t.Errorf("checkDataPathSeparated = %s; want %s", got, tc.data)
			}
		})
	}
}

func TestParseLocalSwarmState(t *testing.T) {
	data := []byte(`{"LocalAddr":"10.99.6.11","ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"10.99.6.11:2377","DataPathAddr":"","DataPathPort":4789}`)
	st := ParseLocalSwarmState(data, "x.json", swarm.EngineFacts{NodeID: "n1", NodeAddr: "10.99.6.11"})
	if st.Err != nil || st.ListenAddr != "0.0.0.0:2377" || st.AdvertiseAddr != "10.99.6.11:2377" {
		t.Errorf("ParseLocalSwarmState = %+v", st)
	}
	st = ParseLocalSwarmState(data, "x.json", swarm.EngineFacts{NodeID: "n1", NodeAddr: "10.99.6.12"})
	if st.Err == nil {
		t.Errorf("ParseLocalSwarmState(another engine's file) = nil error; want a mismatch")
	}
	if st := ParseLocalSwarmState([]byte("{"), "x.json", swarm.EngineFacts{}); st.Err == nil {
		t.Errorf("ParseLocalSwarmState(bad JSON) = nil error")
	}
}

func TestOverlayCVEVulnerable(t *testing.T) {
	for _, tc := range []struct {
		v           string
		vuln, known bool
	}{
		{"20.10.23", true, true},
		{"20.10.24+dfsg1", false, true},
		{"20.10.24", false, true},
		{"19.03.15", true, true},
		{"23.0.0", true, true},
		{"23.0.2", true, true},
		{"23.0.3", false, true},
		{"24.0.7", false, true},
		{"28.5.2", false, true},
		{"v23.0.1-rc.1", true, true},
		{"", false, false},
		{"dev", false, false},
	} {
		vuln, known := OverlayCVEVulnerable(tc.v)
		if vuln != tc.vuln || known != tc.known {
			t.Errorf("OverlayCVEVulnerable(%q) = %v, %v; want %v, %v", tc.v, vuln, known, tc.vuln, tc.known)
		}
	}
}

func TestLooksLikeCredential(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASSWORD": true, "API_TOKEN": true, "AWS_SECRET_ACCESS_KEY": true, "PASSWORD_FILE": false,
		"LOG_LEVEL": false, "PWD": false, "MYSQL_ROOT_PASSWORD": true, "PATH": false, "DBPASSWORD": true,
		"BASIC_AUTH": true, "DB_PASS": true, "API_KEY": true, "STRIPE_API_KEY": true, "GPG_PASSPHRASE": true,
		"AUTHOR_NAME": false, "KEYBOARD_LAYOUT": false, "PASSENGER_COUNT": false, "OAUTH_TOKEN_URL": false,
		"TOKEN_TTL": false, "SORT_KEY": false, "DB_USER": false, "JWT_SECRET": true,
	} {
		if got := LooksLikeCredential(name); got != want {
			t.Errorf("LooksLikeCredential(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestAgeChecks(t *testing.T) {
	cl := swarm.Cluster{AutoLock: true}
	entry := func(kind string, age time.Duration, result string) []swarm.Entry {
		return []swarm.Entry{{Kind: kind, At: fixedNow.Add(-age), Result: result}}
	}
	ac := func(max time.Duration) config.AutolockConfig {
		return config.AutolockConfig{Rotate: config.MaxAge{MaxAge: config.Duration(max)}}
	}
	for _, tc := range []struct {
		name    string
		cl      swarm.Cluster
		entries []swarm.Entry
		err     error
		max     time.Duration
		want    report.CheckStatus
	}{
		{"fresh key", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultOK), nil, 24 * time.Hour, report.StatusPass},
		{"old key", cl, entry(swarm.KindUnlockKey, 48*time.Hour, swarm.ResultOK), nil, 24 * time.Hour, report.StatusFail},
		{"adopted, young", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultAdopted), nil, 24 * time.Hour, report.StatusPass},
		{"failed rotation does not count", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultFailed), nil, 24 * time.Hour, report.StatusWarn},
		{"no entry", cl, nil, nil, 24 * time.Hour, report.StatusWarn},
		{"no policy", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultOK), nil, 0, report.StatusWarn},
		{"autolock off", swarm.Cluster{}, nil, nil, 24 * time.Hour, report.StatusFail},
		{"ledger unreadable", cl, nil, errors.New("corrupt"), 24 * time.Hour, report.StatusError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkUnlockKeyAge(tc.cl, tc.entries, tc.err, ac(tc.max), fixedNow).Status; got != tc.want {
				t.Errorf("checkUnlockKeyAge = %s; want %s", got, tc.want)
			}
		})
	}
}

func TestNodeCertExpiryAndCA(t *testing.T) {
	p := config.PKIConfig{NodeCertExpiry: config.Duration(720 * time.Hour)}
	for _, tc := range []struct {
		got  time.Duration
		want report.CheckStatus
	}{{720 * time.Hour, report.StatusPass}, {24 * time.Hour, report.StatusPass}, {2160 * time.Hour, report.StatusFail}, {0, report.StatusWarn}} {
		if s := checkNodeCertExpiry(swarm.Cluster{NodeCertExpiry: tc.got}, p).Status; s != tc.want {
			t.Errorf("checkNodeCertExpiry(%s) = %s; want %s", tc.got, s, tc.want)
		}
	}
	old := swarm.Cluster{TrustRootPEM: testCAPEM(t, fixedNow.Add(-100*24*time.Hour))}
	ca := config.CAConfig{MaxAge: config.Duration(30 * 24 * time.Hour)}
	if s := checkCAAge(old, nil, nil, ca, fixedNow).Status; s != report.StatusFail {
		t.Errorf("checkCAAge(100 days, max 30) = %s; want fail", s)
	}
	rotated := []swarm.Entry{{Kind: swarm.KindCA, At: fixedNow.Add(-24 * time.Hour), Result: swarm.ResultOK}}
	if s := checkCAAge(old, rotated, nil, ca, fixedNow).Status; s != report.StatusPass {
		t.Errorf("checkCAAge(rotated a day ago per ledger) = %s; want pass", s)
	}
	if s := checkCAAge(old, nil, nil, config.CAConfig{}, fixedNow).Status; s != report.StatusWarn {
		t.Errorf("checkCAAge(no policy) = %s; want warn", s)
	}
	if s := checkCAKeyStrength(old).Status; s != report.StatusPass {
		t.Errorf("checkCAKeyStrength(P-256) = %s; want pass", s)
	}
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

func TestDomainsNotAvailableAreInfo(t *testing.T) {
	in, cfg := sampleInput(t)
	r := BuildReport(in, cfg)
	for _, id := range []string{"tokens.age", "pki.node-certs", "pki.down-nodes", "secrets.sync"} {
		if c := checkByID(t, r, id); c.Status != report.StatusInfo || !strings.Contains(c.Summary, "not available") {
			t.Errorf("%s = %s %q; want info, not available", id, c.Status, c.Summary)
		}
	}
	in.Domains[DomainSecrets] = DomainResult{Err: errors.New("vault down")}
	r = BuildReport(in, cfg)
	if c := checkByID(t, r, "secrets.sync"); c.Status != report.StatusError {
		t.Errorf("secrets.sync with a domain error = %s; want error", c.Status)
	}
}

func TestGauges(t *testing.T) {
	in, cfg := sampleInput(t)
	r := BuildReport(in, cfg)
	g := ReportGauges(r, in, cfg)
	var b bytes.Buffer
	for _, x := range g {
		b.WriteString(x.Name + "{" + report.FactsText(x.Labels) + "} " + big.NewFloat(x.Value).String() + "\n")
	}
	for _, want := range []string{
		"swarmguard_check_status{check=networks.encrypted} 2",
		"swarmguard_check_status{check=swarm.manager-count} 0",
		"swarmguard_network_encrypted{network=secure} 1",
		"swarmguard_network_encrypted{network=backend} 0",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("gauges lack %q:\n%s", want, b.String())
		}
	}
}

func TestHTMLSelfContained(t *testing.T) {
	in, cfg := sampleInput(t)
	in.Domains[DomainCerts] = DomainResult{CertDays: []report.CertDaysBar{{Node: "m1", DaysLeft: 60, Total: 90, Status: report.StatusPass}, {Node: "w1", DaysLeft: 3, Total: 90, Status: report.StatusFail}}}
	r := BuildReport(in, cfg)
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
	if strings.Count(h, "<svg") != 2 || !strings.Contains(h, "w1") || !strings.Contains(h, "3.0 days") {
		t.Errorf("HTML report lacks its two charts")
	}
}

func BenchmarkReportRender(b *testing.B) {
	in, cfg := sampleInput(b)
	for i := 0; i < 200; i++ {
		in.Networks = append(in.Networks, swarm.Network{ID: "n" + itoa(i), Name: "net" + itoa(i), Driver: "overlay", Scope: "swarm"})
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := BuildReport(in, cfg)
		var buf bytes.Buffer
		_ = r.Render(&buf, report.HTML)
	}
}

func TestGaugeCollector(t *testing.T) {
	c := report.NewGaugeCollector()
	c.Set([]report.Gauge{
		{Name: report.MetricNetworkEncrypted, Help: "h", Labels: map[string]string{"network": "a"}, Value: 1},
		{Name: report.MetricNetworkEncrypted, Help: "h", Labels: map[string]string{"network": "a"}, Value: 0},
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

func TestDataPathFromTunnels(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "n1", Hostname: "m1", Role: "manager", Addr: "10.0.0.11", ManagerAddr: "10.0.0.11:2377"},
		{ID: "n2", Hostname: "m2", Role: "manager", Addr: "10.0.0.12", ManagerAddr: "10.0.0.12:2377"},
		{ID: "n3", Hostname: "w1", Role: "worker", Addr: "10.0.0.21"},
	}
	tun := func(ips ...string) []swarm.TunnelEndpoint {
		var out []swarm.TunnelEndpoint
		for _, ip := range ips {
			out = append(out, swarm.TunnelEndpoint{Name: "ingress-endpoint", HostIP: ip})
		}
		return out
	}
	noLocal := LocalSwarmState{Err: errors.New("not on the host")}
	sepLocal := LocalSwarmState{NodeID: "n1", Hostname: "m1", ListenAddr: "10.0.0.11:2377", AdvertiseAddr: "10.0.0.11:2377", DataPathAddr: "10.1.0.11"}
	for _, tc := range []struct {
		name    string
		local   LocalSwarmState
		tunnels []swarm.TunnelEndpoint
		err     error
		want    report.CheckStatus
		text    string
	}{
		{"all separated", noLocal, tun("10.1.0.11", "10.1.0.12", "10.1.0.21"), nil, report.StatusPass, "all 3 node(s)"},
		{"all separated, local from its state file", sepLocal, tun("10.1.0.11", "10.1.0.12", "10.1.0.21"), nil, report.StatusPass, "all 3"},
		{"one shares", noLocal, tun("10.1.0.11", "10.0.0.12", "10.1.0.21"), nil, report.StatusFail, "on m2"},
		{"none separated", noLocal, tun("10.0.0.11", "10.0.0.12", "10.0.0.21"), nil, report.StatusFail, "m1, m2, w1"},
		{"a node without endpoint (down)", noLocal, tun("10.1.0.11", "10.1.0.12"), nil, report.StatusInfo, "not determinable"},
		{"no ingress, no state file", noLocal, nil, errors.New("no ingress network"), report.StatusInfo, "not determinable for m1, m2, w1"},
		{"state file says shared", LocalSwarmState{NodeID: "n1", Hostname: "m1", AdvertiseAddr: "10.0.0.11:2377"}, tun("10.1.0.12", "10.1.0.21"), nil, report.StatusFail, "on m1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkDataPathSeparated(nodes, nil, tc.local, tc.tunnels, tc.err)
			if c.Status != tc.want || !strings.Contains(c.Summary, tc.text) {
				t.Errorf("checkDataPathSeparated = %s %q; want %s containing %q\n%s", c.Status, c.Summary, tc.want, tc.text, evidenceText(c))
			}
		})
	}
}

func TestListenAddrFromProbes(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "n1", Hostname: "m1", Role: "manager", Addr: "10.0.0.11", ManagerAddr: "10.0.0.11:2377"},
		{ID: "n2", Hostname: "m2", Role: "manager", Addr: "10.0.0.12", ManagerAddr: "10.0.0.12:2377"},
		{ID: "n3", Hostname: "m3", Role: "manager", Addr: "10.0.0.13", ManagerAddr: "10.0.0.13:2377"},
	}
	tun := func(ips ...string) []swarm.TunnelEndpoint {
		var out []swarm.TunnelEndpoint
		for _, ip := range ips {
			out = append(out, swarm.TunnelEndpoint{HostIP: ip})
		}
		return out
	}
	local := LocalSwarmState{NodeID: "n1", Hostname: "m1", ListenAddr: "10.0.0.11:2377", AdvertiseAddr: "10.0.0.11:2377", DataPathAddr: "10.1.0.11"}
	refused := func(ip string) ListenProbe { return ListenProbe{Addr: ip + ":2377", Refused: true} }
	for _, tc := range []struct {
		name string
		in   ReportInput
		want report.CheckStatus
		text string
	}{
		{"all bound", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true,
			ListenProbes: []ListenProbe{refused("10.1.0.12"), refused("10.1.0.13")}}, report.StatusPass, "3 manager(s) bound"},
		{"one answers on its data path", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true,
			ListenProbes: []ListenProbe{{Addr: "10.1.0.12:2377", NodeID: "n2"}, refused("10.1.0.13")}}, report.StatusFail, "m2"},
		{"a probe timed out", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true,
			ListenProbes: []ListenProbe{refused("10.1.0.12"), {Addr: "10.1.0.13:2377", Err: "i/o timeout"}}}, report.StatusInfo, "not determinable for m2, m3"},
		{"data path shared: nothing to probe", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.0.0.12", "10.0.0.13"), ListenProbed: true},
			report.StatusInfo, "not determinable for m2, m3; bound: m1"},
		{"a node without endpoint", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12"), ListenProbed: true,
			ListenProbes: []ListenProbe{refused("10.1.0.12")}}, report.StatusInfo, "not determinable"},
		{"local wildcard", ReportInput{Nodes: nodes, Local: LocalSwarmState{NodeID: "n1", Hostname: "m1", ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.11:2377"},
			Tunnels: tun("10.0.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true, ListenProbes: []ListenProbe{refused("10.1.0.12"), refused("10.1.0.13")}}, report.StatusFail, "m1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkListenAddr(tc.in)
			if c.Status != tc.want || !strings.Contains(c.Summary, tc.text) {
				t.Errorf("checkListenAddr = %s %q; want %s containing %q\n%s", c.Status, c.Summary, tc.want, tc.text, evidenceText(c))
			}
		})
	}
	in := ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.0.0.12", "10.1.0.13")}
	if got := listenProbeTargets(in); !slices.Equal(got, []string{"10.1.0.13"}) {
		t.Errorf("listenProbeTargets = %v", got)
	}
}

// Worse orders pass < info < warn < fail < error, whichever side each is on; an unknown status counts as
// error, so it is never hidden.
func TestWorse(t *testing.T) {
	order := []report.CheckStatus{report.StatusPass, report.StatusInfo, report.StatusWarn, report.StatusFail, report.StatusError}
	for i, a := range order {
		for j, b := range order {
			want := order[max(i, j)]
			if got := report.Worse(a, b); got != want {
				t.Errorf("Worse(%s, %s) = %s; want %s", a, b, got, want)
			}
		}
	}
	if got := report.Worse(report.StatusFail, report.CheckStatus("bogus")); got != "bogus" {
		t.Errorf("Worse(fail, bogus) = %s; want the unknown status", got)
	}
	r := report.Report{Checks: []report.Check{{Status: report.StatusError}, {Status: report.StatusFail}}}
	if got := r.Worst(); got != report.StatusError {
		t.Errorf("Worst() of error then fail = %s; want error", got)
	}
}
