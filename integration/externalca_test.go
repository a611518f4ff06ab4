//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/externalca"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

type auditList struct{ recs []audit.Record }

func (a *auditList) Record(r audit.Record) { a.recs = append(a.recs, r) }

// TestExternalCABridge: a PKI mount in the lab's Vault generates a root whose key stays in Vault; the bridge
// runs in-process against the lab's swarm and that mount; a manager's real node certificate (from its data
// dir) asks, as swarmkit does, for a certificate: the answer's subject is the node's, its issuer Vault's root,
// its serial in Vault's issued certificates. A worker's real certificate is refused and nothing is issued.
func TestExternalCABridge(t *testing.T) {
	env := labEnv(t)
	ctx := t.Context()
	p := ecaSetup(t, env)
	root, mount, roles, serverRole, vaultRootCert, sw, cl := p.root, p.mount, p.roles, p.serverRole, p.rootCert, p.sw, p.cl
	v, err := secrets.NewVault(secrets.VaultConfig{Address: env["VAULT_ADDR"], Auth: secrets.AuthConfig{Method: secrets.AuthToken, Token: sensitive.New(env["VAULT_TOKEN"])}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Login(ctx); err != nil {
		t.Fatal(err)
	}
	pki := v.PKI(mount)
	var logs bytes.Buffer
	audit := &auditList{}
	bridge := externalca.New(pki, externalca.SwarmTrust{Swarm: sw}, roles, audit, externalca.NewMetrics(prometheus.NewRegistry()), slog.New(slog.NewJSONHandler(&logs, nil)))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	certs := &externalca.VaultCert{Issue: func(ctx context.Context) (tls.Certificate, error) {
		return pki.IssueServer(ctx, serverRole, "swarm-ca", nil, []string{"127.0.0.1"}, time.Hour)
	}}
	go func() { served <- externalca.Serve(bctx, ln, bridge, certs, slog.New(slog.NewJSONHandler(&logs, nil))) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("bridge shutdown: %v", err)
		}
	})
	url := "https://" + ln.Addr().String() + externalca.SignPath

	pool := x509.NewCertPool()
	pool.AddCert(vaultRootCert)
	post := func(node string, body []byte) (int, externalca.Response) {
		return ecaPost(t, env, url, pool, node, body)
	}

	issuedBefore := vaultSerials(t, root, mount)
	mgrID := nodeCertCN(t, env, "n1")
	// A CSR that asks for another subject: the certificate is the node's own whatever it says.
	csr, key := itCSR(t, pkix.Name{CommonName: "evil", Organization: []string{"another-swarm"}, OrganizationalUnit: []string{externalca.ManagerOU}})
	status, resp := post("n1", itSignJSON(csr, mgrID, externalca.ManagerOU, cl.ID))
	if status != http.StatusOK || !resp.Success {
		t.Fatalf("manager's request = %d %+v; want a certificate. logs:\n%s", status, resp, logs.String())
	}
	certPEM := resp.Result.(map[string]any)["certificate"].(string)
	got := mustParseCertPEM(t, certPEM)
	if got.Subject.CommonName != mgrID || !slices.Equal(got.Subject.Organization, []string{cl.ID}) || !slices.Equal(got.Subject.OrganizationalUnit, []string{externalca.ManagerOU}) {
		t.Errorf("issued subject = %v; want CN=%s O=%s OU=swarm-manager", got.Subject, mgrID, cl.ID)
	}
	if err := got.CheckSignatureFrom(vaultRootCert); err != nil || got.Issuer.String() != vaultRootCert.Subject.String() {
		t.Errorf("issuer = %v (%v); want vault's root %v", got.Issuer, err, vaultRootCert.Subject)
	}
	if !got.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
		t.Error("issued certificate holds another key than the CSR's")
	}
	for _, want := range []string{"swarm-manager", mgrID, "swarm-ca"} {
		if !slices.Contains(got.DNSNames, want) {
			t.Errorf("names = %v; want %s among them", got.DNSNames, want)
		}
	}
	if slices.Contains(got.DNSNames, "evil") {
		t.Errorf("names = %v hold the CSR's CN", got.DNSNames)
	}
	if d := got.NotAfter.Sub(got.NotBefore); d < 2000*time.Hour || d > 2200*time.Hour {
		t.Errorf("validity = %s; want the swarm's node cert expiry (lab default 2160h)", d)
	}
	serial := colonHex(got.SerialNumber.Bytes())
	after := vaultSerials(t, root, mount)
	if !slices.Contains(after, serial) {
		t.Errorf("serial %s not in vault's issued certificates %v", serial, after)
	}
	if len(audit.recs) != 1 || audit.recs[0].Result != "ok" || audit.recs[0].Details["serial"] != serial || audit.recs[0].Details["vault_request_id"] == "" || audit.recs[0].Node != mgrID {
		t.Errorf("audit = %+v; want one ok record for %s with serial %s and a vault request ID", audit.recs, mgrID, serial)
	}
	t.Logf("issued %s for %s by %s (vault request %s), %d certificates in %s before, %d after", serial, mgrID, got.Issuer, audit.recs[0].Details["vault_request_id"], len(issuedBefore), mount, len(after))

	// A worker's real certificate is refused, and nothing is issued.
	wcsr, _ := itCSR(t, pkix.Name{})
	status, resp = post("n4", itSignJSON(wcsr, nodeCertCN(t, env, "n4"), externalca.WorkerOU, cl.ID))
	if status != http.StatusForbidden || resp.Success || len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, `client certificate OU must be "swarm-manager"`) {
		t.Errorf("worker's request = %d %+v; want 403, OU must be swarm-manager", status, resp)
	}
	if n := len(vaultSerials(t, root, mount)); n != len(after) {
		t.Errorf("vault holds %d certificates after the worker's request; want %d (nothing issued)", n, len(after))
	}
	if !strings.Contains(logs.String(), `"msg":"sign request refused"`) || !strings.Contains(logs.String(), `"reason":"not_manager"`) {
		t.Errorf("no refusal log line for the worker:\n%s", logs.String())
	}
	secretScan(t, []string{logs.String(), fmt.Sprint(audit.recs)}, env["VAULT_TOKEN"])
}

func vaultRoot(t *testing.T, env map[string]string) *vault.Client {
	t.Helper()
	cfg := vault.DefaultConfig()
	cfg.Address = env["VAULT_ADDR"]
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(env["VAULT_TOKEN"])
	return c
}

func vaultSerials(t *testing.T, c *vault.Client, mount string) []string {
	t.Helper()
	sec, err := c.Logical().ListWithContext(t.Context(), mount+"/certs")
	if err != nil {
		t.Fatalf("listing %s/certs: %v", mount, err)
	}
	var out []string
	if sec != nil {
		if keys, ok := sec.Data["keys"].([]any); ok {
			for _, k := range keys {
				out = append(out, fmt.Sprint(k))
			}
		}
	}
	return out
}

func colonHex(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02x", x)
	}
	return strings.Join(parts, ":")
}

func mustParseCertPEM(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatalf("not a PEM certificate: %.40q", p)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func nodeCertDir(env map[string]string, node string) string {
	return filepath.Join(env["LAB_DATA"], node, "swarm", "certificates")
}

// nodeKeyPair is a node's real certificate and key from its data dir (the key must be unencrypted: autolock off).
func nodeKeyPair(t *testing.T, env map[string]string, node string) tls.Certificate {
	t.Helper()
	dir := nodeCertDir(env, node)
	crt, err := os.ReadFile(filepath.Join(dir, "swarm-node.crt"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := os.ReadFile(filepath.Join(dir, "swarm-node.key"))
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(crt, key)
	if err != nil {
		t.Fatalf("node %s's key pair (is autolock on? its key is then encrypted): %v", node, err)
	}
	return pair
}

func nodeCertCN(t *testing.T, env map[string]string, node string) string {
	t.Helper()
	crt, err := os.ReadFile(filepath.Join(nodeCertDir(env, node), "swarm-node.crt"))
	if err != nil {
		t.Fatal(err)
	}
	return mustParseCertPEM(t, string(crt)).Subject.CommonName
}

func itCSR(t *testing.T, subj pkix.Name) (string, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), k
}

// itSignJSON is what swarmkit's ExternalCA.Sign posts (ca.PrepareCSR marshalled as cfssl's SignRequest).
func itSignJSON(csr, cn, ou, org string) []byte {
	hosts := []string{ou, cn}
	if ou == externalca.ManagerOU {
		hosts = append(hosts, "swarm-ca")
	}
	b, _ := json.Marshal(map[string]any{"hosts": hosts, "certificate_request": csr, "profile": "", "crl_override": "", "label": "", "extensions": nil,
		"subject": map[string]any{"CN": cn, "names": []map[string]string{{"O": org, "OU": ou}}, "SerialNumber": ""}})
	return b
}

// ecaPKI is a PKI mount of the test's own in the lab's Vault, with a root generated inside it and the
// bridge's three roles for the lab's swarm.
type ecaPKI struct {
	root       *vault.Client
	mount      string
	roles      externalca.Roles
	serverRole string
	rootCert   *x509.Certificate
	sw         *swarm.Client
	cl         swarm.Cluster
}

func ecaSetup(t *testing.T, env map[string]string) ecaPKI {
	t.Helper()
	ctx := t.Context()
	run := fmt.Sprintf("%d", time.Now().UnixNano())
	mount := "pki-it-" + run

	root := vaultRoot(t, env)
	if err := root.Sys().MountWithContext(ctx, mount, &vault.MountInput{Type: "pki", Config: vault.MountConfigInput{MaxLeaseTTL: "87600h"}}); err != nil {
		t.Fatalf("mounting pki at %s: %v", mount, err)
	}
	t.Cleanup(func() { _ = root.Sys().UnmountWithContext(context.WithoutCancel(ctx), mount) })
	gen, err := root.Logical().WriteWithContext(ctx, mount+"/root/generate/internal", map[string]any{"common_name": "swarmguard it root " + run, "ttl": "8760h", "key_type": "ec", "key_bits": 256})
	if err != nil {
		t.Fatalf("generating the root in vault: %v", err)
	}
	if _, ok := gen.Data["private_key"]; ok {
		t.Fatal("vault handed out the root key: generate/internal must keep it")
	}
	vaultRootCert := mustParseCertPEM(t, gen.Data["certificate"].(string))

	sw, err := swarm.New(swarm.Options{Host: env["DOCKER_HOST"], APITimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := sw.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	roles := externalca.Roles{Manager: "mgr-" + run, Worker: "wrk-" + run}
	for role, ou := range map[string]string{roles.Manager: externalca.ManagerOU, roles.Worker: externalca.WorkerOU} {
		if _, err := root.Logical().WriteWithContext(ctx, mount+"/roles/"+role, map[string]any{
			"organization": cl.ID, "ou": ou, "allow_any_name": true, "enforce_hostnames": false,
			"use_csr_common_name": false, "use_csr_sans": false, "key_type": "any", "max_ttl": "8760h",
			"server_flag": true, "client_flag": true,
		}); err != nil {
			t.Fatalf("writing role %s: %v", role, err)
		}
	}
	serverRole := "bridge-" + run
	if _, err := root.Logical().WriteWithContext(ctx, mount+"/roles/"+serverRole, map[string]any{
		"allow_any_name": true, "allow_ip_sans": true, "server_flag": true, "client_flag": false, "key_type": "ec", "key_bits": 256, "max_ttl": "24h",
	}); err != nil {
		t.Fatalf("writing role %s: %v", serverRole, err)
	}

	return ecaPKI{root: root, mount: mount, roles: roles, serverRole: serverRole, rootCert: vaultRootCert, sw: sw, cl: cl}
}

// ecaPost posts a sign request to the bridge at url as swarmkit does, with node's real certificate.
func ecaPost(t *testing.T, env map[string]string, url string, pool *x509.CertPool, node string, body []byte) (int, externalca.Response) {
	t.Helper()
	pair := nodeKeyPair(t, env, node)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{pair}, RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("posting as %s: %v", node, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r externalca.Response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("answer %d is not CFSSL JSON: %q", resp.StatusCode, b)
	}
	return resp.StatusCode, r
}

// TestExternalCABridgeRun: `swarmguard run` with pki.external_ca enabled serves the bridge (its server
// certificate issued by Vault for the URL's address), issues a manager's request through Vault, refuses a
// worker's, and counts both in /metrics.
func TestExternalCABridgeRun(t *testing.T) {
	env := labEnv(t)
	p := ecaSetup(t, env)
	id := fmt.Sprintf("eca%d", time.Now().UnixNano()%1_000_000_000)
	rtRemoveObjects(t, env, id)
	port := rtFreePort(t)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, externalca.SignPath)
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s}
ledger: {name: sgit-state-%[1]s}
pki:
  external_ca:
    enabled: true
    listen: "127.0.0.1:%[2]d"
    mount: %[3]s
    manager_role: %[4]s
    worker_role: %[5]s
    server_role: %[6]s
    urls: [%[7]q]
`, id, port, p.mount, p.roles.Manager, p.roles.Worker, p.serverRole, url))
	if r := runSG(t, env, nil, "config", "check", "--config", cfg); r.Code != 0 {
		t.Fatalf("config check = %d %s %s", r.Code, r.Stdout, r.Stderr)
	}
	hosts := managerSockets(t, env)
	rep := rtStartReplica(t, env, hosts[0], 1, cfg)
	eventually(t, 30*time.Second, "the bridge serving", func() bool {
		return strings.Contains(rep.log.String(), "serving the external CA bridge") || !rep.running()
	})
	if !rep.running() {
		t.Fatalf("run exited %d:\n%s", rep.code, rtTail(rep.log.String(), 30))
	}
	pool := x509.NewCertPool()
	pool.AddCert(p.rootCert)
	mgrID := nodeCertCN(t, env, "n1")
	csr, _ := itCSR(t, pkix.Name{})
	status, resp := ecaPost(t, env, url, pool, "n1", itSignJSON(csr, mgrID, externalca.ManagerOU, p.cl.ID))
	if status != http.StatusOK || !resp.Success {
		t.Fatalf("manager's request = %d %+v; want a certificate", status, resp)
	}
	got := mustParseCertPEM(t, resp.Result.(map[string]any)["certificate"].(string))
	if got.Subject.CommonName != mgrID || got.Issuer.String() != p.rootCert.Subject.String() || !slices.Contains(vaultSerials(t, p.root, p.mount), colonHex(got.SerialNumber.Bytes())) {
		t.Errorf("issued %v by %v serial %s; want CN %s by vault's root, serial in %s/certs", got.Subject, got.Issuer, colonHex(got.SerialNumber.Bytes()), mgrID, p.mount)
	}
	wcsr, _ := itCSR(t, pkix.Name{})
	if status, _ := ecaPost(t, env, url, pool, "n4", itSignJSON(wcsr, nodeCertCN(t, env, "n4"), externalca.WorkerOU, p.cl.ID)); status != http.StatusForbidden {
		t.Errorf("worker's request = %d; want 403", status)
	}
	code, metrics, err := rep.get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics = %d %v", code, err)
	}
	for _, want := range []string{`swarmguard_external_ca_requests_total{result="issued"} 1`, `swarmguard_external_ca_requests_total{result="refused"} 1`,
		`swarmguard_external_ca_failures_total{reason="not_manager",result="refused"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	log := rep.log.String()
	for _, want := range []string{`"msg":"issued node certificate"`, `"event":"cert_issued"`, `"reason":"not_manager"`} {
		if !strings.Contains(log, want) {
			t.Errorf("run's log lacks %s", want)
		}
	}
	secretScan(t, []string{log, metrics}, env["VAULT_TOKEN"])
}

// TestExternalCABridgeVaultDown: with Vault unreachable when run starts, the controller keeps running, says
// the bridge has no server certificate yet, and no request gets a certificate (the handshake fails, which
// swarmkit retries).
func TestExternalCABridgeVaultDown(t *testing.T) {
	env := labEnv(t)
	down := map[string]string{}
	for k, v := range env {
		down[k] = v
	}
	down["VAULT_ADDR"] = fmt.Sprintf("http://127.0.0.1:%d", rtFreePort(t)) // nothing listens there
	id := fmt.Sprintf("ecad%d", time.Now().UnixNano()%1_000_000_000)
	rtRemoveObjects(t, env, id)
	port := rtFreePort(t)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, externalca.SignPath)
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s}
ledger: {name: sgit-state-%[1]s}
vault: {timeout: 2s}
pki:
  external_ca: {enabled: true, listen: "127.0.0.1:%[2]d", urls: [%[3]q]}
`, id, port, url))
	rep := rtStartReplica(t, down, managerSockets(t, env)[0], 1, cfg)
	eventually(t, 60*time.Second, "the bridge serving without a certificate", func() bool {
		return strings.Contains(rep.log.String(), "serving the external CA bridge") || !rep.running()
	})
	if !rep.running() || !strings.Contains(rep.log.String(), "vault unreachable: the external CA bridge has no server certificate yet") {
		t.Fatalf("run = running %v; want running with the warning:\n%s", rep.running(), rtTail(rep.log.String(), 30))
	}
	pair := nodeKeyPair(t, env, "n1")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		Certificates: []tls.Certificate{pair}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}}} //nolint:gosec // only checks no certificate is served
	csr, _ := itCSR(t, pkix.Name{})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(itSignJSON(csr, nodeCertCN(t, env, "n1"), externalca.ManagerOU, "x")))
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("request with Vault down = %d; want the handshake to fail (no server certificate)", resp.StatusCode)
	}
	if !rep.running() {
		t.Errorf("run exited after a failed handshake:\n%s", rtTail(rep.log.String(), 30))
	}
}
