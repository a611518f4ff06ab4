//go:build integration

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// These tests cover what the unit tests cannot: the controller process (`swarmguard run`) acting on its own
// schedule against the real lab and the real Vault, its /metrics as scraped, its webhooks as a real HTTPS
// receiver gets them, and dry runs measured from outside by the objects' versions.

// rowsDelivery is one webhook delivery as the receiver got it.
type rowsDelivery struct {
	Verified bool   // signature and replay window checked against the documented scheme
	Problem  string // why not, when not
	Event    string // X-Swarmguard-Event
	Body     map[string]any
	Raw      string
}

// rowsReceiver is an HTTPS webhook receiver on the lab's bridge address with a certificate of its own CA; the
// controller is told to trust that CA (SSL_CERT_FILE), so its TLS verification stays on.
type rowsReceiver struct {
	URL    string
	CAFile string
	key    []byte
	mu     sync.Mutex
	got    []rowsDelivery
}

func rowsStartReceiver(t *testing.T, env map[string]string, key []byte) *rowsReceiver {
	t.Helper()
	ip := env["LAB_BRIDGE_IP"]
	if ip == "" {
		t.Fatal("lab env has no LAB_BRIDGE_IP (the receiver listens on the lab's bridge)")
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "swarmguard it webhook CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: ip},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), IPAddresses: []net.IP{net.ParseIP(ip)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	r := &rowsReceiver{key: key, CAFile: filepath.Join(t.TempDir(), "webhook-ca.pem")}
	if err := os.WriteFile(r.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("listening on the lab bridge %s: %v", ip, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	t.Cleanup(func() { _ = srv.Close() })
	r.URL = "https://" + ln.Addr().String() + "/hook"
	return r
}

// serve verifies each delivery as docs/operations.md "Audit trail and webhooks" tells a receiver to: the HMAC-SHA256 of
// timestamp "." raw body under the key, compared in constant time before parsing, then the 5-minute window.
func (r *rowsReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	d := rowsDelivery{Event: req.Header.Get("X-Swarmguard-Event"), Raw: string(body)}
	ts := req.Header.Get("X-Swarmguard-Timestamp")
	m := hmac.New(sha256.New, r.key)
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := "sha256=" + hex.EncodeToString(m.Sum(nil))
	sec, terr := strconv.ParseInt(ts, 10, 64)
	switch {
	case !hmac.Equal([]byte(want), []byte(req.Header.Get("X-Swarmguard-Signature-256"))):
		d.Problem = "bad signature"
	case terr != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute:
		d.Problem = "timestamp outside the replay window: " + ts
	case json.Unmarshal(body, &d.Body) != nil:
		d.Problem = "body is not JSON"
	case d.Body["id"] != req.Header.Get("X-Swarmguard-Delivery") || d.Body["event"] != d.Event:
		d.Problem = "headers do not match the body"
	default:
		d.Verified = true
	}
	r.mu.Lock()
	r.got = append(r.got, d)
	r.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

func (r *rowsReceiver) deliveries() []rowsDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]rowsDelivery(nil), r.got...)
}

// rowsAuditRecords are the replica's log lines with the message "audit", as JSON objects (the record's fields
// either at the top or under "record").
func rowsAuditRecords(log string) []map[string]any {
	var out []map[string]any
	for _, l := range strings.Split(log, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "audit" {
			continue
		}
		if rec, ok := m["record"].(map[string]any); ok {
			m = rec
		}
		out = append(out, m)
	}
	return out
}

var rowsSample = regexp.MustCompile(`^([a-z_]+)(?:\{([^}]*)\})? (\S+)$`)

// rowsSamples are the samples of one metric family in a /metrics body: labels (as written) -> value.
func rowsSamples(body, name string) map[string]float64 {
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		m := rowsSample.FindStringSubmatch(l)
		if m == nil || m[1] != name {
			continue
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err == nil {
			out[m[2]] = v
		}
	}
	return out
}

// TestRowsScheduledUnlockKeyWebhookMetrics: one `swarmguard run` replica with autolock enforce, a 20 s key
// max age and a 5 s schedule. Its first pass turns autolock on; a later scheduled pass rotates the key on
// its own. The rotated key is escrowed to the real Vault, the ledger and the audit log have the rotation, and
// a real HTTPS receiver on the lab bridge (TLS verified by the controller, against the receiver's own CA)
// gets the action, signed as docs/operations.md documents, verified there. The same running controller's /metrics
// has every node's certificate NotAfter equal to its certificate file, and the root CA's NotAfter.
func TestRowsScheduledUnlockKeyWebhookMetrics(t *testing.T) {
	env := labEnv(t)
	alRestoreAtEnd(t, env)
	var outs tokOutputs
	if on := mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}"); on != "false" {
		t.Fatalf("autolock is %s before the test; want false", on)
	}
	id := rtUniq()
	rtRemoveObjects(t, env, id)
	escrow := "secret/sgit-" + id + "/unlock-key"
	t.Cleanup(func() { vaultDo(t, env, http.MethodDelete, "secret/metadata/sgit-"+id+"/unlock-key", nil) })

	hookKey := []byte(rtUniq() + rtUniq())
	keyFile := filepath.Join(t.TempDir(), "webhook.key")
	if err := os.WriteFile(keyFile, append(hookKey, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	recv := rowsStartReceiver(t, env, hookKey)
	// A second receiver whose CA the controller is not given: its deliveries must fail the TLS handshake.
	untrusted := rowsStartReceiver(t, env, hookKey)
	// The controller's TLS trusts the receiver's CA through the standard variable; nothing skips verification.
	t.Setenv("SSL_CERT_FILE", recv.CAFile)
	socks := strings.Fields(env["LAB_CONTROL_SOCKETS"])
	if len(socks) == 0 {
		t.Fatal("lab env has no LAB_CONTROL_SOCKETS")
	}
	const maxAge = 20 * time.Second
	// The tests' leases are their own objects, fresh each run, with a short TTL: a lease object that did not
	// exist is acted on only after a full TTL (one replica here, nobody to fence against).
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: 6s}
ledger: {name: sgit-state-%[1]s}
networks: {exempt: [ingress]}
pki: {control_socket: %[2]s, schedule: "@every 5s"}
autolock:
  mode: enforce
  schedule: "@every 5s"
  rotate: {max_age: %[3]s}
  escrow: {vault_path: %[4]s}
notify:
  webhooks:
    - url: %[5]s
      events: [action]
      secret_file: %[6]s
    - url: %[7]s
      events: [action]
      secret_file: %[6]s
`, id, socks[0], maxAge, escrow, recv.URL, keyFile, untrusted.URL))
	rep := rtStartReplica(t, env, env["DOCKER_HOST"], 1, cfg)
	start := time.Now()

	// The scheduled rotation: an unlock-key entry with a "scheduled" reason after autolock was turned on.
	var rotated rtLedgerEntry
	eventually(t, 150*time.Second, "a scheduled unlock-key rotation in the ledger", func() bool {
		if !rep.running() {
			t.Fatalf("swarmguard run exited %d", rep.code)
		}
		r := runSG(t, env, nil, "status", "--config", cfg, "--format", "json")
		outs.add(r)
		var st struct {
			Ledger []tokLedgerEntry `json:"ledger"`
		}
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &st) != nil {
			return false
		}
		for _, e := range st.Ledger {
			if e.Kind == "unlock-key" && e.Result == "ok" && strings.HasPrefix(e.Reason, "scheduled") && e.Details["old_fingerprint"] != "" {
				rotated = rtLedgerEntry{Kind: e.Kind, Actor: e.Actor, Result: e.Result, Details: e.Details}
				return true
			}
		}
		return false
	})
	t.Logf("scheduled rotation recorded %s after start (max age %s)", time.Since(start).Round(time.Second), maxAge)
	if !strings.HasPrefix(rotated.Actor, "operator:") {
		t.Errorf("rotation actor %q; want operator:<node ID>", rotated.Actor)
	}
	// The key the rotation produced is escrowed (the controller may have rotated again since: compare with Vault
	// once the key is stable between two reads).
	var key string
	eventually(t, 60*time.Second, "vault to hold the current unlock key", func() bool {
		key = tokUnlockKey(t, env["DOCKER_HOST"])
		rec := tokVaultRead(t, env, escrow)
		return rec != nil && rec["key"] == key && rec["fingerprint"] == tokSHA(key)
	})
	newFP := rotated.Details["new_fingerprint"]
	if newFP == "" || newFP == rotated.Details["old_fingerprint"] {
		t.Errorf("rotation entry details %v; want distinct old and new fingerprints", rotated.Details)
	}
	var escrowed bool
	for _, e := range rtReadLedger(t, env, env["DOCKER_HOST"], cfg) {
		escrowed = escrowed || (e.Kind == "unlock-key-escrow" && e.Result == "ok" && strings.Contains(fmt.Sprint(e.Details), newFP))
	}
	if !escrowed {
		t.Errorf("no ok unlock-key-escrow entry names the rotated key's fingerprint %s", newFP)
	}

	// The audit log line and the verified webhook for that rotation.
	auditFor := func(recs []map[string]any) bool {
		for _, r := range recs {
			if r["kind"] == "unlock-key" && r["result"] == "ok" && strings.Contains(fmt.Sprint(r["fingerprints"], r["details"]), newFP) {
				return true
			}
		}
		return false
	}
	eventually(t, 30*time.Second, "the audit record of the scheduled rotation in the controller's log", func() bool {
		return auditFor(rowsAuditRecords(rep.log.String()))
	})
	eventually(t, 60*time.Second, "the webhook receiver to get the rotation", func() bool {
		var bodies []map[string]any
		for _, d := range recv.deliveries() {
			if d.Verified && d.Event == "action" {
				bodies = append(bodies, d.Body)
			}
		}
		return auditFor(bodies)
	})
	ds := recv.deliveries()
	for _, d := range ds {
		if !d.Verified {
			t.Errorf("a delivery failed verification: %s", d.Problem)
		}
		outs = append(outs, d.Raw)
	}
	t.Logf("webhook: %d deliveries, all verified against the documented signature", len(ds))
	eventually(t, 90*time.Second, "the controller to give up on the receiver it cannot verify", func() bool {
		for _, l := range strings.Split(rep.log.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "webhook delivery failed, record dropped" &&
				strings.Contains(fmt.Sprint(m["err"]), "certificate signed by unknown authority") {
				return true
			}
		}
		return false
	})
	if n := len(untrusted.deliveries()); n != 0 {
		t.Errorf("the receiver with an untrusted certificate got %d deliveries; want 0 (TLS must be verified)", n)
	}

	// (c) The running controller's certificate and CA metrics, against the files and the trust root.
	var body, why string
	if !poll(60*time.Second, func() bool {
		_, body, _ = rep.get("/metrics")
		na := rowsSamples(body, "swarmguard_cert_not_after_timestamp_seconds")
		if len(na) != len(strings.Fields(env["LAB_NODES"])) {
			why = fmt.Sprintf("%d node series: %v", len(na), na)
			return false
		}
		for labels, v := range na {
			host := regexp.MustCompile(`node="([^"]+)"`).FindStringSubmatch(labels)
			if host == nil {
				why = "no node label: " + labels
				return false
			}
			if got, disk := time.Unix(int64(v), 0).UTC().Format(time.RFC3339), certsDiskNotAfter(t, env, host[1]); got != disk {
				why = fmt.Sprintf("%s: metric %s, file %s", host[1], got, disk)
				return false
			}
		}
		return true
	}) {
		t.Fatalf("cert metrics never matched every node's certificate file: %s", why)
	}
	roles := map[string]int{}
	for labels := range rowsSamples(body, "swarmguard_cert_not_after_timestamp_seconds") {
		roles[regexp.MustCompile(`role="([^"]+)"`).FindStringSubmatch(labels)[1]]++
	}
	if roles["manager"] != 3 || roles["worker"] != 1 {
		t.Errorf("cert series by role = %v; want 3 managers and 1 worker", roles)
	}
	for _, fam := range []string{"swarmguard_cert_not_before_timestamp_seconds", "swarmguard_cert_warn_at_timestamp_seconds", "swarmguard_cert_critical_at_timestamp_seconds"} {
		if n := len(rowsSamples(body, fam)); n != 4 {
			t.Errorf("%s has %d series; want 4", fam, n)
		}
	}
	root, _ := pem.Decode([]byte(mustDocker(t, env, "", "swarm", "ca")))
	if root == nil {
		t.Fatal("docker swarm ca printed no PEM")
	}
	caCert, err := x509.ParseCertificate(root.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if got := rowsSamples(body, "swarmguard_ca_not_after_timestamp_seconds")[""]; int64(got) != caCert.NotAfter.Unix() {
		t.Errorf("swarmguard_ca_not_after_timestamp_seconds = %v; want the trust root's NotAfter %d", got, caCert.NotAfter.Unix())
	}
	if got, ok := rowsSamples(body, "swarmguard_ca_rotation_in_progress")[""]; !ok || got != 0 {
		t.Errorf("swarmguard_ca_rotation_in_progress = %v (present %v); want 0", got, ok)
	}
	t.Logf("metrics: 4 node certificates equal their files, CA NotAfter %s", caCert.NotAfter.UTC().Format(time.RFC3339))
	outs = append(outs, rep.log.String(), body)
	secretScan(t, outs, key, string(hookKey))
}

// rowsVersions is every object version a dry run must leave alone, as text to compare.
func rowsVersions(t *testing.T, env map[string]string) string {
	t.Helper()
	var lines []string
	lines = append(lines, "swarm "+mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.Version.Index}}"))
	lines = append(lines, "worker-token "+tokSHA(tokJoinToken(t, env, "worker")), "manager-token "+tokSHA(tokJoinToken(t, env, "manager")))
	for _, kind := range []string{"secret", "config", "service"} {
		ids := strings.Fields(mustDocker(t, env, "", kind, "ls", "-q"))
		for _, id := range ids {
			lines = append(lines, kind+" "+mustDocker(t, env, "", kind, "inspect", "-f", "{{.ID}} {{.Spec.Name}} {{.Version.Index}}", id))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestRowsDryRunsChangeNothing: with a join token past its max age and a secret whose Vault value changed
// (so both would act), `rotate secret --dry-run` and `run --once --dry-run` say what they would do and leave
// every object version as it was: the swarm's index, the join tokens, every secret, config (ledger and lease
// included) and service with its version.
func TestRowsDryRunsChangeNothing(t *testing.T) {
	id := rtUniq()
	f := newSecretsFixture(t, "dry", fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: 6s}
ledger: {name: sgit-state-%[1]s}
networks: {exempt: [ingress]}
tokens:
  worker: {max_age: 1s}
`, id))
	rtRemoveObjects(t, f.env, id)
	f.put("it-dry-one-" + f.run)
	svc := f.service("app", "--label", "swarmguard.secrets="+f.name, "--label", "swarmguard.secrets."+f.name+".target=pw",
		"swarmguard-testapp:lab", "print", "/run/secrets/pw")
	// A real pass: the ledger exists, the worker token is adopted, the service gets version 1.
	f.mustSG("run", "--once")
	passed := time.Now()
	if refs := f.serviceSecrets(svc); len(refs) != 1 {
		t.Fatalf("after the first pass %s refers to %v; want the mapping's secret", svc, refs)
	}
	f.put("it-dry-two-" + f.run)
	// Both are due now: the worker token is older than 1s, the value changed.
	eventually(t, 10*time.Second, "the worker token to pass its 1s max age", func() bool { return time.Since(passed) > 2*time.Second })
	before := rowsVersions(t, f.env)

	r := f.mustSG("rotate", "secret", f.name, "--dry-run", "--reason", "it dry run")
	t.Logf("rotate secret --dry-run printed:\n%s", r.Stdout)
	if !strings.Contains(r.Stdout, f.name+"-") || !strings.Contains(r.Stdout, svc) {
		t.Errorf("rotate secret --dry-run does not name the version it would create and the service:\n%s\n%s", r.Stdout, r.Stderr)
	}
	if after := rowsVersions(t, f.env); after != before {
		t.Errorf("rotate secret --dry-run changed object versions:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	r = f.mustSG("run", "--once", "--dry-run")
	t.Logf("run --once --dry-run printed:\n%s", r.Stdout)
	if out := r.Stdout; !strings.Contains(out, "would rotate worker token") || !strings.Contains(out, "would create "+f.name+"-") {
		t.Errorf("run --once --dry-run does not say it would rotate the worker token and sync %s:\n%s\n%s", f.name, r.Stdout, r.Stderr)
	}
	if after := rowsVersions(t, f.env); after != before {
		t.Errorf("run --once --dry-run changed object versions:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	secretScan(t, f.outputs, tokJoinToken(t, f.env, "worker"), tokJoinToken(t, f.env, "manager"))
	t.Logf("dry runs left %d object versions as they were", strings.Count(before, "\n")+1)
}

// TestRowsDownNodeCertLapses: a worker that is down while its certificate lapses. What is real: Swarm's
// shortest node certificate expiry (1h, its minimum) set on the cluster, every certificate reissued under it
// by a real root CA rotation (so the worker's file really lapses within the hour), and the worker's dockerd
// stopped. What is policy: a down node is assumed back no sooner than 24h from now (pki.DefaultDownFloor), so
// a certificate that lapses within the hour lapses while it is down. A running controller then logs the
// finding (cert-lapses-while-down, naming the worker), exports swarmguard_check_status{check="pki.down-nodes"}
// 2 (what SwarmguardDownNodeCertificateLapses alerts on), sends one signed webhook (event finding) to a real
// HTTPS receiver, and report certs names it; once the worker is back the check passes again. The test ends with a rotation under the lab's 2160h expiry, so no 1h certificate
// is left behind.
func TestRowsDownNodeCertLapses(t *testing.T) {
	env := labEnv(t)
	ctx := t.Context()
	c := certsClient(t, env)
	before, err := c.CA(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if before.RootRotationInProgress {
		t.Fatal("a root CA rotation is in progress before the test")
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var worker swarm.Node
	for _, n := range nodes {
		if n.Role == "worker" && n.State == "ready" {
			worker = n
		}
	}
	if worker.ID == "" {
		t.Fatal("no ready worker in the lab")
	}
	num := worker.Hostname[strings.LastIndex(worker.Hostname, "-n")+2:]
	nodeState := func() string {
		ns, err := c.Nodes(ctx)
		if err != nil {
			return ""
		}
		for _, n := range ns {
			if n.ID == worker.ID {
				return n.State
			}
		}
		return ""
	}
	// Cleanups run last-registered first: the worker comes back before the expiry is restored.
	t.Cleanup(func() {
		if _, _, err := c.SetNodeCertExpiry(context.Background(), before.NodeCertExpiry); err != nil {
			t.Errorf("restoring node cert expiry %s: %v", before.NodeCertExpiry, err)
		}
	})
	stopped := false
	t.Cleanup(func() {
		if stopped {
			lab(t, env, "node", "start", num)
		}
	})
	id := rtUniq()
	rtRemoveObjects(t, env, id)
	socks := strings.Fields(env["LAB_CONTROL_SOCKETS"])
	if len(socks) == 0 {
		t.Fatal("lab env has no LAB_CONTROL_SOCKETS")
	}
	hookKey := []byte(rtUniq() + rtUniq())
	keyFile := filepath.Join(t.TempDir(), "webhook.key")
	if err := os.WriteFile(keyFile, hookKey, 0o600); err != nil {
		t.Fatal(err)
	}
	recv := rowsStartReceiver(t, env, hookKey)
	t.Setenv("SSL_CERT_FILE", recv.CAFile)
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: 6s}
ledger: {name: sgit-state-%[1]s}
networks: {exempt: [ingress], schedule: "@every 5s"}
pki: {control_socket: %[2]s, schedule: "@every 5s", node_cert_expiry: 1h}
notify:
  webhooks:
    - url: %[3]s
      events: [finding]
      secret_file: %[4]s
`, id, socks[0], recv.URL, keyFile))

	if _, _, err := c.SetNodeCertExpiry(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r := runSG(t, env, nil, "--config", cfg, "rotate", "ca", "--reason", "integration: 1h certificates", "--wait", "--timeout", "3m"); r.Code != 0 {
		t.Fatalf("rotate ca --wait: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var lapse time.Time
	eventually(t, 60*time.Second, worker.Hostname+"'s certificate file to last at most 1h from now", func() bool {
		lapse, err = time.Parse(time.RFC3339, certsDiskNotAfter(t, env, worker.Hostname))
		return err == nil && time.Until(lapse) <= time.Hour
	})
	t.Logf("%s's certificate lapses at %s", worker.Hostname, lapse.Format(time.RFC3339))

	rep := rtStartReplica(t, env, env["DOCKER_HOST"], 1, cfg)
	downStatus := func() string {
		l := rep.metric(`swarmguard_check_status{check="pki.down-nodes"}`)
		return strings.TrimSpace(l[strings.LastIndex(l, " ")+1:])
	}
	eventually(t, 90*time.Second, "pki.down-nodes to pass while every node is up", func() bool { return downStatus() == "0" })

	lab(t, env, "node", "stop", num)
	stopped = true
	eventually(t, 90*time.Second, worker.Hostname+" to be down", func() bool { return nodeState() == "down" })

	// The finding in the controller's log: an error naming the worker.
	finding := func() bool {
		for _, l := range strings.Split(rep.log.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "certificate finding" && m["finding"] == "cert-lapses-while-down" &&
				m["node"] == worker.ID && m["level"] == "ERROR" {
				return true
			}
		}
		return false
	}
	eventually(t, 60*time.Second, "the controller to log cert-lapses-while-down for "+worker.Hostname, finding)
	eventually(t, 60*time.Second, `swarmguard_check_status{check="pki.down-nodes"} 2`, func() bool { return downStatus() == "2" })
	lapseHooks := func() int {
		n := 0
		for _, d := range recv.deliveries() {
			if d.Verified && d.Event == "finding" && d.Body["kind"] == pki.FindingCertLapsesWhileDown && d.Body["node"] == worker.ID {
				n++
			}
		}
		return n
	}
	eventually(t, 60*time.Second, "a signed finding webhook for "+worker.Hostname, func() bool { return lapseHooks() > 0 })
	rc := certsRunReport(t, env, cfg)
	var inReport bool
	for _, f := range rc.Findings {
		inReport = inReport || (f.ID == pki.FindingCertLapsesWhileDown && f.Node == worker.ID && f.Status == "fail")
	}
	if !inReport {
		t.Errorf("report certs findings %+v; want %s (status fail) for %s", rc.Findings, pki.FindingCertLapsesWhileDown, worker.ID)
	}
	for _, c := range rc.Checks {
		if c.ID == "pki.down-nodes" && c.Status != "fail" {
			t.Errorf("report certs check pki.down-nodes = %s; want fail while %s is down", c.Status, worker.Hostname)
		}
	}

	lab(t, env, "node", "start", num)
	stopped = false
	eventually(t, 90*time.Second, worker.Hostname+" to be ready", func() bool { return nodeState() == "ready" })
	eventually(t, 60*time.Second, "pki.down-nodes to pass again once the worker is back", func() bool { return downStatus() == "0" })
	// One webhook for the whole time the worker was down (passes every 5 s), and every delivery verified.
	if n := lapseHooks(); n != 1 {
		t.Errorf("%d finding webhooks for %s's lapse; want 1 (sent when it appears, not on every pass)", n, worker.Hostname)
	}
	for _, d := range recv.deliveries() {
		if !d.Verified {
			t.Errorf("a delivery failed verification: %s", d.Problem)
		}
	}

	// Leave the lab's certificates as long as they were.
	if _, _, err := c.SetNodeCertExpiry(ctx, before.NodeCertExpiry); err != nil {
		t.Fatal(err)
	}
	if r := runSG(t, env, nil, "--config", cfg, "rotate", "ca", "--reason", "integration: restore certificate expiry", "--wait", "--timeout", "3m"); r.Code != 0 {
		t.Errorf("rotate ca --wait (restoring): exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}
