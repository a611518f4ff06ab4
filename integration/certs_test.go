//go:build integration

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// certsConfig writes a config for the certificate tests: the first manager's control socket (as the
// host sees it), a ledger of the test's own, and extra pki keys.
func certsConfig(t *testing.T, env map[string]string, ledger string, pkiExtra string) string {
	t.Helper()
	socks := strings.Fields(env["LAB_CONTROL_SOCKETS"])
	if len(socks) == 0 {
		t.Fatalf("lab env has no LAB_CONTROL_SOCKETS")
	}
	body := fmt.Sprintf("ledger:\n  name: %s\npki:\n  control_socket: %s\n%s", ledger, socks[0], pkiExtra)
	path := filepath.Join(t.TempDir(), "swarmguard.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// certsClient is a real engine client on the lab's first manager.
func certsClient(t *testing.T, env map[string]string) *swarm.Client {
	t.Helper()
	c, err := swarm.New(swarm.Options{Host: env["DOCKER_HOST"], APITimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

type certsReportJSON struct {
	CA struct {
		Serial   string `json:"serial"`
		NotAfter string `json:"not_after"`
	} `json:"ca"`
	NodeCertExpiry string `json:"node_cert_expiry"`
	Nodes          []struct {
		ID            string  `json:"id"`
		Hostname      string  `json:"hostname"`
		Role          string  `json:"role"`
		Serial        *string `json:"serial"`
		NotBefore     *string `json:"not_before"`
		NotAfter      *string `json:"not_after"`
		IssuerCurrent *bool   `json:"issuer_current"`
		Source        string  `json:"source"`
		Reason        string  `json:"reason"`
	} `json:"nodes"`
	Findings []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
		Node   string `json:"node"`
	} `json:"findings"`
	Summary map[string]int `json:"summary"`
	Checks  []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"checks"`
}

func certsRunReport(t *testing.T, env map[string]string, cfg string) certsReportJSON {
	t.Helper()
	r := runSG(t, env, nil, "--config", cfg, "report", "certs", "--format", "json")
	if r.Code != 0 {
		t.Fatalf("report certs: exit %d\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	var rep certsReportJSON
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("report certs JSON: %v\n%s", err, r.Stdout)
	}
	return rep
}

// diskNotAfter reads what `openssl x509 -enddate` says of node N's certificate file.
func certsDiskNotAfter(t *testing.T, env map[string]string, hostname string) string {
	t.Helper()
	n := hostname[strings.LastIndex(hostname, "-n")+2:]
	path := filepath.Join(env["LAB_DATA"], "n"+n, "swarm", "certificates", "swarm-node.crt")
	out, err := exec.Command("openssl", "x509", "-enddate", "-noout", "-in", path).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl x509 -enddate %s: %v\n%s", path, err, out)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "notAfter=")
	at, err := time.Parse("Jan _2 15:04:05 2006 MST", v)
	if err != nil {
		t.Fatalf("parsing openssl date %q: %v", v, err)
	}
	return at.UTC().Format(time.RFC3339)
}

// reportMatchesDisk reports whether every node is known and its not_after equals its file's, to the
// second (a node writes its renewed certificate a moment after the CA records it).
func certsMatchDisk(t *testing.T, env map[string]string, rep certsReportJSON) (bool, string) {
	for _, n := range rep.Nodes {
		if n.NotAfter == nil {
			return false, fmt.Sprintf("%s unknown: %s", n.Hostname, n.Reason)
		}
		if disk := certsDiskNotAfter(t, env, n.Hostname); disk != *n.NotAfter {
			return false, fmt.Sprintf("%s: report %s, file %s", n.Hostname, *n.NotAfter, disk)
		}
	}
	return true, ""
}

// TestCertsReportAllNodes: report certs lists all 4 nodes, workers included, and each not_after equals
// to the second what openssl reads from the node's swarm-node.crt.
func TestCertsReportAllNodes(t *testing.T) {
	env := labEnv(t)
	cfg := certsConfig(t, env, "sgit-certs-report", "")
	var rep certsReportJSON
	var why string
	eventually(t, 60*time.Second, "report not_after to match every node's file", func() bool {
		rep = certsRunReport(t, env, cfg)
		var ok bool
		ok, why = certsMatchDisk(t, env, rep)
		if !ok {
			t.Logf("not yet: %s", why)
		}
		return ok
	})
	if len(rep.Nodes) != 4 {
		t.Fatalf("report lists %d nodes; want 4", len(rep.Nodes))
	}
	roles := map[string]int{}
	for _, n := range rep.Nodes {
		roles[n.Role]++
		if n.Source != string(pki.SourceControlAPI) && n.Source != string(pki.SourceTLSProbe) {
			t.Errorf("%s source %q; want control-api or tls-probe", n.Hostname, n.Source)
		}
		if n.Role == "worker" && n.Source != string(pki.SourceControlAPI) {
			t.Errorf("worker %s source %q; want control-api", n.Hostname, n.Source)
		}
		t.Logf("%s %s not_after %s source %s", n.Hostname, n.Role, *n.NotAfter, n.Source)
	}
	if roles["manager"] != 3 || roles["worker"] != 1 {
		t.Errorf("roles = %v; want 3 managers and 1 worker", roles)
	}
	// The report package's model: the certificate checks on its one status scale, and its summary.
	checks := map[string]string{}
	for _, c := range rep.Checks {
		checks[c.ID] = c.Status
	}
	for _, id := range []string{"pki.node-certs", "pki.down-nodes", "pki.cluster"} {
		switch checks[id] {
		case "pass", "info", "warn", "fail":
		default:
			t.Errorf("check %s status %q; want one of pass, info, warn, fail (checks %v)", id, checks[id], checks)
		}
	}
	if n := rep.Summary["pass"] + rep.Summary["info"] + rep.Summary["warn"] + rep.Summary["fail"] + rep.Summary["error"]; n != len(rep.Checks) {
		t.Errorf("summary %v counts %d checks; the report has %d", rep.Summary, n, len(rep.Checks))
	}

	// Every other format renders from the same read.
	for _, f := range []string{"table", "markdown", "html"} {
		out := filepath.Join(t.TempDir(), "certs."+f)
		r := runSG(t, env, nil, "--config", cfg, "report", "certs", "--format", f, "--output", out)
		b, err := os.ReadFile(out)
		if r.Code != 0 || err != nil || len(b) == 0 {
			t.Errorf("report certs --format %s: exit %d, %v\n%s", f, r.Code, err, r.Stderr)
		}
		secretScan(t, []string{string(b)}, "PRIVATE KEY")
	}
}

// TestCertsEnforceAndRotate: with node_cert_expiry 24h and mode enforce one pass sets the cluster spec;
// after `rotate ca --wait` every node's certificate lasts 25h (24h + Swarm's 1h backdate) under the new
// issuer, and the ledger has the rotation.
func TestCertsEnforceAndRotate(t *testing.T) {
	env := labEnv(t)
	ctx := t.Context()
	ledgerName := fmt.Sprintf("sgit-certs-%d", time.Now().UnixNano())
	cfgPath := certsConfig(t, env, ledgerName, "  mode: enforce\n  node_cert_expiry: 24h\n")
	c := certsClient(t, env)
	before, err := c.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, _, err := c.SetNodeCertExpiry(context.Background(), before.NodeCertExpiry); err != nil {
			t.Logf("restoring node cert expiry: %v", err)
		}
	})
	if before.NodeCertExpiry == 24*time.Hour {
		if _, _, err := c.SetNodeCertExpiry(ctx, 2160*time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	oldSerial := certsRootSerial(t, before.TrustRootPEM)

	// One controller pass.
	cfg := config.DefaultConfig()
	cfg.PKI.Mode = config.ModeEnforce
	cfg.PKI.NodeCertExpiry = config.Duration(24 * time.Hour)
	cfg.PKI.ControlSocket = strings.Fields(env["LAB_CONTROL_SOCKETS"])[0]
	ledger := c.NewLedger(ledgerName, 50)
	t.Cleanup(func() { _ = certsRemoveConfig(c, ledgerName) })
	task := certs.Task(c, ledger, pki.Sources{Control: &pki.ControlClient{Socket: cfg.PKI.ControlSocket}, Prober: &pki.TLSProber{}}, cfg.PKI, nil, nil)
	if err := task.Run(ctx, operator.TaskEnv{Actor: "integration", Now: time.Now, Log: slog.New(slog.NewTextHandler(os.Stderr, nil))}); err != nil {
		t.Fatalf("certs pass: %v", err)
	}
	after, err := c.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.NodeCertExpiry != 24*time.Hour {
		t.Fatalf("after one enforce pass NodeCertExpiry = %s; want 24h", after.NodeCertExpiry)
	}
	entries, err := ledger.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e := certsLatestKind(entries, swarm.KindNodeCertExpiry); e == nil || e.Details["to"] != "24h0m0s" {
		t.Errorf("ledger node-cert-expiry entry = %+v; want one to 24h0m0s", e)
	}

	// Rotate and follow.
	start := time.Now()
	r := runSG(t, env, nil, "--config", cfgPath, "rotate", "ca", "--reason", "integration test", "--wait", "--timeout", "3m")
	t.Logf("rotate ca --wait took %s:\n%s%s", time.Since(start).Truncate(time.Millisecond), r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("rotate ca --wait: exit %d", r.Code)
	}
	if !strings.Contains(r.Stdout, "root CA rotation complete: 4/4 nodes on the new root") {
		t.Errorf("rotate ca output lacks completion:\n%s", r.Stdout)
	}

	var rep certsReportJSON
	eventually(t, 60*time.Second, "every node file to carry the reissued certificate", func() bool {
		rep = certsRunReport(t, env, cfgPath)
		ok, why := certsMatchDisk(t, env, rep)
		if !ok {
			t.Logf("not yet: %s", why)
		}
		return ok
	})
	if rep.CA.Serial == oldSerial {
		t.Errorf("root CA serial unchanged (%s) after rotation", oldSerial)
	}
	if rep.NodeCertExpiry != "24h0m0s" {
		t.Errorf("node_cert_expiry = %s; want 24h0m0s", rep.NodeCertExpiry)
	}
	for _, n := range rep.Nodes {
		nb, _ := time.Parse(time.RFC3339, *n.NotBefore)
		na, _ := time.Parse(time.RFC3339, *n.NotAfter)
		if got := na.Sub(nb); got < 25*time.Hour-time.Minute || got > 25*time.Hour+time.Minute {
			t.Errorf("%s certificate lasts %s; want about 25h", n.Hostname, got)
		}
		if n.IssuerCurrent == nil || !*n.IssuerCurrent {
			t.Errorf("%s issuer_current = %v; want true", n.Hostname, n.IssuerCurrent)
		}
	}
	entries, err = ledger.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Kind == swarm.KindCA {
			actions = append(actions, e.Details["action"]+":"+e.Result)
		}
	}
	if strings.Join(actions, ",") != "started:ok,completed:ok" {
		t.Errorf("ledger ca entries = %v; want started:ok,completed:ok", actions)
	}
}

// TestCertsRotationWithWorkerDown: with a worker's dockerd stopped, `rotate ca --wait --timeout 60s`
// exits 1 naming it; once it is back, `rotate ca --wait` attaches to the same rotation (ForceRotate
// unchanged) and completes.
func TestCertsRotationWithWorkerDown(t *testing.T) {
	env := labEnv(t)
	ctx := t.Context()
	ledgerName := fmt.Sprintf("sgit-certs-down-%d", time.Now().UnixNano())
	cfgPath := certsConfig(t, env, ledgerName, "")
	c := certsClient(t, env)
	t.Cleanup(func() { _ = certsRemoveConfig(c, ledgerName) })

	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var worker swarm.Node
	for _, n := range nodes {
		if n.Role == "worker" {
			worker = n
		}
	}
	if worker.ID == "" {
		t.Fatal("no worker in the lab")
	}
	num := worker.Hostname[strings.LastIndex(worker.Hostname, "-n")+2:]
	lab(t, env, "node", "stop", num)
	started := false
	t.Cleanup(func() {
		if !started {
			lab(t, env, "node", "start", num)
		}
	})
	eventually(t, 90*time.Second, worker.Hostname+" to be down", func() bool {
		ns, err := c.Nodes(ctx)
		if err != nil {
			return false
		}
		for _, n := range ns {
			if n.ID == worker.ID {
				return n.State == "down"
			}
		}
		return false
	})

	t0 := time.Now()
	r := runSG(t, env, nil, "--config", cfgPath, "rotate", "ca", "--reason", "integration: worker down", "--wait", "--timeout", "60s")
	t.Logf("rotate ca --wait --timeout 60s took %s: exit %d\n%s%s", time.Since(t0).Truncate(time.Millisecond), r.Code, r.Stdout, r.Stderr)
	if r.Code != 1 {
		t.Fatalf("rotate ca with a worker down: exit %d; want 1", r.Code)
	}
	want := fmt.Sprintf("%s (%s, worker, down)", worker.Hostname, worker.ID)
	if !strings.Contains(r.Stderr, want) {
		t.Errorf("stderr does not name the down worker as %q:\n%s", want, r.Stderr)
	}
	mid, err := c.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !mid.RootRotationInProgress {
		t.Fatalf("rotation not in progress after the timeout")
	}

	lab(t, env, "node", "start", num)
	started = true
	r = runSG(t, env, nil, "--config", cfgPath, "rotate", "ca", "--reason", "integration: worker back", "--wait", "--timeout", "3m")
	t.Logf("second rotate ca --wait: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("rotate ca --wait after the worker returned: exit %d", r.Code)
	}
	if !strings.Contains(r.Stdout, fmt.Sprintf("attached to the root CA rotation in progress (ForceRotate %d)", mid.ForceRotate)) {
		t.Errorf("second run did not attach at ForceRotate %d:\n%s", mid.ForceRotate, r.Stdout)
	}
	end, err := c.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if end.ForceRotate != mid.ForceRotate || end.RootRotationInProgress {
		t.Errorf("after attach: ForceRotate %d (was %d), in progress %v; want unchanged and done", end.ForceRotate, mid.ForceRotate, end.RootRotationInProgress)
	}
	ledger := c.NewLedger(ledgerName, 50)
	entries, err := ledger.Entries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Kind == swarm.KindCA {
			actions = append(actions, e.Details["action"]+":"+e.Result)
		}
	}
	if strings.Join(actions, ",") != "started:ok,wait-failed:failed,completed:ok" {
		t.Errorf("ledger ca entries = %v; want started:ok,wait-failed:failed,completed:ok", actions)
	}
}

func certsRootSerial(t *testing.T, pemData string) string {
	t.Helper()
	root, err := pki.ParseCertificate([]byte(pemData))
	if err != nil {
		t.Fatal(err)
	}
	return pki.SerialHex(root)
}

func certsLatestKind(entries []swarm.Entry, kind string) *swarm.Entry {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Kind == kind {
			return &entries[i]
		}
	}
	return nil
}

func certsRemoveConfig(c *swarm.Client, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	obj, err := c.ConfigByName(ctx, name)
	if err != nil {
		return err
	}
	return c.RemoveConfig(ctx, obj.ID)
}

// TestCertsRotateHandedInCA: `rotate ca --cert --key --wait` rotates to the CA handed in, and the key
// appears in no output.
func TestCertsRotateHandedInCA(t *testing.T) {
	env := labEnv(t)
	ledgerName := fmt.Sprintf("sgit-certs-handed-%d", time.Now().UnixNano())
	cfgPath := certsConfig(t, env, ledgerName, "")
	c := certsClient(t, env)
	t.Cleanup(func() { _ = certsRemoveConfig(c, ledgerName) })

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(0x5EC0DE), Subject: pkix.Name{CommonName: "sgit-handed-in-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * 365 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte(keyPEM), 0o600); err != nil {
		t.Fatal(err)
	}

	dry := runSG(t, env, nil, "--config", cfgPath, "rotate", "ca", "--cert", certFile, "--key", keyFile, "--dry-run")
	if dry.Code != 0 || !strings.Contains(dry.Stdout, "would rotate the root CA to the certificate handed in") {
		t.Fatalf("dry run: exit %d\n%s%s", dry.Code, dry.Stdout, dry.Stderr)
	}
	r := runSG(t, env, nil, "--config", cfgPath, "--log-level", "debug", "rotate", "ca", "--cert", certFile, "--key", keyFile,
		"--reason", "integration: handed-in CA", "--wait", "--timeout", "3m")
	t.Logf("rotate ca --cert --key --wait: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("rotate ca to a handed-in CA: exit %d", r.Code)
	}
	rep := certsRunReport(t, env, cfgPath)
	if rep.CA.Serial != "5EC0DE" {
		t.Errorf("root CA serial after rotation = %s; want 5EC0DE", rep.CA.Serial)
	}
	for _, n := range rep.Nodes {
		if n.IssuerCurrent == nil || !*n.IssuerCurrent {
			t.Errorf("%s issuer_current = %v; want true", n.Hostname, n.IssuerCurrent)
		}
	}
	raw := runSG(t, env, nil, "--config", cfgPath, "report", "certs", "--format", "json")
	keyBody := strings.Join(strings.Split(strings.TrimSpace(keyPEM), "\n")[1:2], "")
	secretScan(t, []string{dry.Stdout, dry.Stderr, r.Stdout, r.Stderr, raw.Stdout, raw.Stderr}, keyPEM, keyBody)
	entries, err := c.NewLedger(ledgerName, 50).Entries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		for k, v := range e.Details {
			secretScan(t, []string{k + "=" + v, e.Reason}, keyBody)
		}
		if e.Details["action"] == "started" && e.Details["handed_in"] != "true" {
			t.Errorf("ledger start entry = %+v; want handed_in=true", e)
		}
	}
}
