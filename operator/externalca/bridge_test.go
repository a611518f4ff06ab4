package externalca

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
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/secrets"
)

const (
	swarmID   = "q1w2e3r4t5y6u7i8o9p0a1s2d"
	otherID   = "zzzzzzzzzzzzzzzzzzzzzzzzz"
	managerID = "abcdefghijklmnopqrstuvwxy"
	nodeID    = "n0d3n0d3n0d3n0d3n0d3n0d3n"
)

type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newCA(t *testing.T, cn string) testCA {
	t.Helper()
	k := newKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return testCA{cert: c, key: k}
}

var serialSeq int64 = 100

func (ca testCA) issue(t *testing.T, subj pkix.Name, pub any, ttl time.Duration) *x509.Certificate {
	t.Helper()
	serialSeq++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serialSeq), Subject: subj, NotBefore: time.Now().Add(-time.Minute),
		NotAfter: time.Now().Add(ttl), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func nodeCert(t *testing.T, ca testCA, cn, ou, o string) *x509.Certificate {
	return ca.issue(t, pkix.Name{CommonName: cn, OrganizationalUnit: []string{ou}, Organization: []string{o}}, &newKey(t).PublicKey, time.Hour)
}

// csrPEM is a CSR like swarmkit's, but with the subject the test asks for (swarmkit's own is empty).
func csrPEM(t *testing.T, subj pkix.Name) (string, *ecdsa.PrivateKey) {
	t.Helper()
	k := newKey(t)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, k)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), k
}

// swarmkitJSON is the body swarmkit posts: json.Marshal of cfssl's signer.SignRequest as ca.PrepareCSR fills it.
func swarmkitJSON(t *testing.T, csr, cn, ou, org, profile string) string {
	t.Helper()
	hosts := []string{ou, cn}
	if ou == ManagerOU {
		hosts = append(hosts, "swarm-ca")
	}
	h, _ := json.Marshal(hosts)
	c, _ := json.Marshal(csr)
	return fmt.Sprintf(`{"hosts":%s,"certificate_request":%s,"subject":{"CN":%q,"names":[{"O":%q,"OU":%q}],"SerialNumber":""},"profile":%q,"crl_override":"","label":"","extensions":null}`,
		h, c, cn, org, ou, profile)
}

// fakeVault signs like a Vault PKI role does: O and OU from the role, CN and names from the request.
type fakeVault struct {
	ca      testCA
	roles   map[string]secrets.PKIRole
	roleErr error
	signErr error
	// lieOU, when set, is the OU the fake puts in the certificate whatever the role says (a misbehaving CA).
	lieOU string

	mu    sync.Mutex
	signs []secrets.PKISignRequest
}

func (f *fakeVault) Mount() string { return "pki-swarm" }

func (f *fakeVault) Role(_ context.Context, role string) (secrets.PKIRole, error) {
	if f.roleErr != nil {
		return secrets.PKIRole{}, f.roleErr
	}
	r, ok := f.roles[role]
	if !ok {
		return secrets.PKIRole{}, fmt.Errorf("reading pki role %q: %w", role, secrets.ErrNotFound)
	}
	return r, nil
}

func (f *fakeVault) Sign(_ context.Context, role string, req secrets.PKISignRequest) (secrets.PKIIssued, error) {
	f.mu.Lock()
	f.signs = append(f.signs, req)
	f.mu.Unlock()
	if f.signErr != nil {
		return secrets.PKIIssued{}, f.signErr
	}
	r := f.roles[role]
	block, _ := pem.Decode([]byte(req.CSRPEM))
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return secrets.PKIIssued{}, err
	}
	ou := r.OU
	if f.lieOU != "" {
		ou = []string{f.lieOU}
	}
	serialSeq++
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serialSeq), Subject: pkix.Name{CommonName: req.CommonName, Organization: r.Organization, OrganizationalUnit: ou},
		DNSNames: req.AltNames, NotBefore: time.Now(), NotAfter: time.Now().Add(req.TTL)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca.cert, csr.PublicKey, f.ca.key)
	if err != nil {
		return secrets.PKIIssued{}, err
	}
	return secrets.PKIIssued{CertificatePEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		Serial: fmt.Sprintf("%x", serialSeq), RequestID: "req-" + fmt.Sprint(serialSeq)}, nil
}

func (f *fakeVault) signCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.signs)
}

type fakeTrust struct {
	t   Trust
	err error
}

func (f fakeTrust) Trust(context.Context) (Trust, error) { return f.t, f.err }

type recorder struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (r *recorder) Record(rec audit.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
}

type fixture struct {
	root, vaultCA, otherRoot testCA
	vault                    *fakeVault
	bridge                   *Bridge
	audit                    *recorder
	metrics                  *Metrics
	reg                      *prometheus.Registry
	logs                     *bytes.Buffer
	manager                  *x509.Certificate
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{root: newCA(t, "swarm-ca"), vaultCA: newCA(t, "vault root"), otherRoot: newCA(t, "other swarm"), audit: &recorder{}, logs: &bytes.Buffer{}}
	f.vault = &fakeVault{ca: f.vaultCA, roles: map[string]secrets.PKIRole{
		"swarm-manager": {Organization: []string{swarmID}, OU: []string{ManagerOU}},
		"swarm-worker":  {Organization: []string{swarmID}, OU: []string{WorkerOU}},
	}}
	pool := x509.NewCertPool()
	pool.AddCert(f.root.cert)
	f.reg = prometheus.NewRegistry()
	f.metrics = NewMetrics(f.reg)
	log := slogJSON(f.logs)
	f.bridge = New(f.vault, fakeTrust{t: Trust{SwarmID: swarmID, Roots: pool, NodeCertExpiry: 720 * time.Hour}},
		Roles{Manager: "swarm-manager", Worker: "swarm-worker"}, f.audit, f.metrics, log)
	f.manager = nodeCert(t, f.root, managerID, ManagerOU, swarmID)
	return f
}

func (f *fixture) post(t *testing.T, client *x509.Certificate, body string) (*httptest.ResponseRecorder, Response) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "https://bridge:8555"+SignPath, strings.NewReader(body))
	if client != nil {
		req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{client}}
	} else {
		req.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	f.bridge.ServeHTTP(w, req)
	var resp Response
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("answer is not CFSSL JSON: %v: %q", err, w.Body.String())
	}
	return w, resp
}

// parseLikeSwarmkit reads an answer as ca/external.go's makeExternalSignRequest does.
func parseLikeSwarmkit(status int, body []byte) (string, bool, error) {
	if status != http.StatusOK {
		return "", true, fmt.Errorf("unexpected status code in CSR response: %d", status)
	}
	var r struct {
		Success bool      `json:"success"`
		Result  any       `json:"result"`
		Errors  []Message `json:"errors"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", true, err
	}
	if !r.Success || r.Result == nil {
		return "", false, fmt.Errorf("response errors: %v", r.Errors)
	}
	m, ok := r.Result.(map[string]any)
	if !ok {
		return "", false, fmt.Errorf("invalid result type: %T", r.Result)
	}
	c, ok := m["certificate"].(string)
	if !ok {
		return "", false, fmt.Errorf("invalid result certificate field type: %T", m["certificate"])
	}
	return c, false, nil
}

func parsePEMCert(t *testing.T, p string) *x509.Certificate {
	t.Helper()
	b, _ := pem.Decode([]byte(p))
	if b == nil {
		t.Fatalf("not PEM: %q", p)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSignAsSwarmkitSendsIt(t *testing.T) {
	for _, ou := range []string{ManagerOU, WorkerOU} {
		t.Run(ou, func(t *testing.T) {
			f := newFixture(t)
			csr, key := csrPEM(t, pkix.Name{}) // swarmkit's CSR carries no subject
			w, _ := f.post(t, f.manager, swarmkitJSON(t, csr, nodeID, ou, swarmID, ""))
			certPEM, _, err := parseLikeSwarmkit(w.Code, w.Body.Bytes())
			if err != nil {
				t.Fatalf("answer = %d %s; swarmkit reads: %v", w.Code, w.Body.String(), err)
			}
			c := parsePEMCert(t, certPEM)
			if c.Subject.CommonName != nodeID || c.Subject.OrganizationalUnit[0] != ou || c.Subject.Organization[0] != swarmID {
				t.Errorf("subject = %v; want CN=%s OU=%s O=%s", c.Subject, nodeID, ou, swarmID)
			}
			if err := c.CheckSignatureFrom(f.vaultCA.cert); err != nil {
				t.Errorf("issued certificate not signed by the vault CA: %v", err)
			}
			if !c.PublicKey.(*ecdsa.PublicKey).Equal(&key.PublicKey) {
				t.Error("issued certificate holds another key than the CSR's")
			}
			got := f.vault.signs[0]
			wantHosts := []string{ou, nodeID}
			if ou == ManagerOU {
				wantHosts = append(wantHosts, "swarm-ca")
			}
			if fmt.Sprint(got.AltNames) != fmt.Sprint(wantHosts) || got.TTL != 720*time.Hour || got.CommonName != nodeID {
				t.Errorf("vault asked for CN %q names %v ttl %s; want %q %v 720h", got.CommonName, got.AltNames, got.TTL, nodeID, wantHosts)
			}
			if len(f.audit.recs) != 1 {
				t.Fatalf("audit records = %d; want 1", len(f.audit.recs))
			}
			rec := f.audit.recs[0]
			if rec.Event != EventCertIssued || rec.Result != "ok" || rec.Node != nodeID || rec.Details["role"] != ou ||
				rec.Details["serial"] == "" || rec.Details["vault_request_id"] == "" || rec.Details["caller"] != managerID {
				t.Errorf("audit record = %+v; want cert_issued ok node %s role %s with serial and vault request ID", rec, nodeID, ou)
			}
			if n := testutil.ToFloat64(f.metrics.requests.WithLabelValues("issued")); n != 1 {
				t.Errorf("requests_total{issued} = %v; want 1", n)
			}
			if !strings.Contains(f.logs.String(), `"msg":"issued node certificate"`) {
				t.Errorf("no issuance log line: %s", f.logs.String())
			}
		})
	}
}

func TestCSRSubjectIsNeverUsed(t *testing.T) {
	f := newFixture(t)
	csr, _ := csrPEM(t, pkix.Name{CommonName: "evil", Organization: []string{otherID}, OrganizationalUnit: []string{ManagerOU}})
	f.vault.roles["swarm-worker"] = secrets.PKIRole{Organization: []string{swarmID}, OU: []string{WorkerOU}}
	w, _ := f.post(t, f.manager, swarmkitJSON(t, csr, nodeID, WorkerOU, swarmID, ""))
	certPEM, _, err := parseLikeSwarmkit(w.Code, w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	c := parsePEMCert(t, certPEM)
	if c.Subject.CommonName != nodeID || c.Subject.OrganizationalUnit[0] != WorkerOU || c.Subject.Organization[0] != swarmID {
		t.Errorf("subject = %v; want the node's own CN=%s OU=%s O=%s, not the CSR's", c.Subject, nodeID, WorkerOU, swarmID)
	}
	if strings.Contains(strings.Join(c.DNSNames, ","), "evil") {
		t.Errorf("names = %v hold the CSR's", c.DNSNames)
	}
}

func TestRefusals(t *testing.T) {
	csr, _ := csrPEM(t, pkix.Name{})
	good := swarmkitJSON(t, csr, nodeID, WorkerOU, swarmID, "")
	cases := []struct {
		name   string
		client func(f *fixture) *x509.Certificate
		body   string
		status int
		want   string
	}{
		{"no client certificate", func(*fixture) *x509.Certificate { return nil }, good, 401, "must authenticate sign request with mutual TLS"},
		{"a worker's certificate", func(f *fixture) *x509.Certificate { return nodeCert(t, f.root, nodeID, WorkerOU, swarmID) }, good, 403, `client certificate OU must be "swarm-manager", got "swarm-worker"`},
		{"another swarm's manager", func(f *fixture) *x509.Certificate { return nodeCert(t, f.root, managerID, ManagerOU, otherID) }, good, 403, "is not this swarm's ID"},
		{"a certificate from another root", func(f *fixture) *x509.Certificate { return nodeCert(t, f.otherRoot, managerID, ManagerOU, swarmID) }, good, 403, "does not chain to this swarm's root CA"},
		{"cross-sign profile CA", nil, swarmkitJSON(t, csr, nodeID, WorkerOU, swarmID, "CA"), 400, `profile "CA" (cross-signing a new root CA) is not supported`},
		{"unknown profile", nil, swarmkitJSON(t, csr, nodeID, WorkerOU, swarmID, "server"), 400, `unknown profile "server"`},
		{"subject of another swarm", nil, swarmkitJSON(t, csr, nodeID, WorkerOU, otherID, ""), 400, "does not match this swarm's ID"},
		{"subject with another role", nil, swarmkitJSON(t, csr, nodeID, "swarm-admin", swarmID, ""), 400, `OU "swarm-admin" is not`},
		{"CN not a node ID", nil, swarmkitJSON(t, csr, "*.example.com", WorkerOU, swarmID, ""), 400, "is not a swarm node ID"},
		{"no subject", nil, fmt.Sprintf(`{"hosts":[],"certificate_request":%q,"profile":""}`, csr), 400, "must contain a subject field"},
		{"not JSON", nil, "certificate please", 400, "unable to decode sign request"},
		{"CSR not PEM", nil, swarmkitJSON(t, "MIIB...", nodeID, WorkerOU, swarmID, ""), 400, "not a PEM CERTIFICATE REQUEST"},
		{"body over the limit", nil, `{"label":"` + strings.Repeat("a", MaxRequestBytes) + `"}`, 413, "sign request is over"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			client := f.manager
			if tc.client != nil {
				client = tc.client(f)
			}
			w, resp := f.post(t, client, tc.body)
			if w.Code != tc.status || resp.Success || len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, tc.want) {
				t.Fatalf("answer = %d %s; want %d, success false, an error with %q", w.Code, w.Body.String(), tc.status, tc.want)
			}
			if resp.Result != nil || resp.Messages == nil {
				t.Errorf("answer = %s; want CFSSL's error shape (result null, messages [])", w.Body.String())
			}
			if _, retry, err := parseLikeSwarmkit(w.Code, w.Body.Bytes()); err == nil || !retry {
				t.Errorf("swarmkit reads it as (retry %v, %v); want a recoverable error", retry, err)
			}
			if n := f.vault.signCount(); n != 0 {
				t.Errorf("vault was asked to sign %d times; want 0", n)
			}
			if n := testutil.ToFloat64(f.metrics.requests.WithLabelValues("refused")); n != 1 {
				t.Errorf("requests_total{refused} = %v; want 1", n)
			}
			if !strings.Contains(f.logs.String(), `"msg":"sign request refused"`) {
				t.Errorf("no refusal log line: %s", f.logs.String())
			}
			if len(f.audit.recs) != 1 || f.audit.recs[0].Result != "refused" {
				t.Errorf("audit records = %+v; want one refused", f.audit.recs)
			}
		})
	}
}

func TestVaultFailures(t *testing.T) {
	csr, _ := csrPEM(t, pkix.Name{})
	body := swarmkitJSON(t, csr, nodeID, ManagerOU, swarmID, "")
	cases := []struct {
		name   string
		set    func(f *fixture)
		status int
		want   string
		signs  int
	}{
		{"vault sealed", func(f *fixture) {
			f.vault.roleErr = fmt.Errorf("reading pki role: %w: vault answered 503: Vault is sealed", secrets.ErrUnreachable)
		}, 503, "Vault is sealed", 0},
		{"vault unreachable while signing", func(f *fixture) {
			f.vault.signErr = fmt.Errorf("signing: %w: connection refused", secrets.ErrUnreachable)
		}, 503, "connection refused", 1},
		{"vault refuses", func(f *fixture) {
			f.vault.signErr = fmt.Errorf("signing: %w", secrets.ErrPermissionDenied)
		}, 502, "permission denied", 1},
		{"role of another swarm", func(f *fixture) {
			f.vault.roles["swarm-manager"] = secrets.PKIRole{Organization: []string{otherID}, OU: []string{ManagerOU}}
		}, 502, "nothing was issued", 0},
		{"role lets the CSR choose the CN", func(f *fixture) {
			f.vault.roles["swarm-manager"] = secrets.PKIRole{Organization: []string{swarmID}, OU: []string{ManagerOU}, UseCSRCommonName: true}
		}, 502, "use_csr_common_name=true", 0},
		{"vault issues another subject", func(f *fixture) { f.vault.lieOU = WorkerOU }, 502, "it was not handed out", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tc.set(f)
			w, resp := f.post(t, f.manager, body)
			if w.Code != tc.status || resp.Success || len(resp.Errors) != 1 || !strings.Contains(resp.Errors[0].Message, tc.want) {
				t.Fatalf("answer = %d %s; want %d with %q", w.Code, w.Body.String(), tc.status, tc.want)
			}
			if _, retry, err := parseLikeSwarmkit(w.Code, w.Body.Bytes()); err == nil || !retry {
				t.Errorf("swarmkit reads it as (retry %v, %v); want a recoverable error", retry, err)
			}
			if strings.Contains(w.Body.String(), "BEGIN CERTIFICATE") {
				t.Errorf("a failed answer carries a certificate: %s", w.Body.String())
			}
			if n := f.vault.signCount(); n != tc.signs {
				t.Errorf("sign calls = %d; want %d", n, tc.signs)
			}
			if n := testutil.ToFloat64(f.metrics.requests.WithLabelValues("failed")); n != 1 {
				t.Errorf("requests_total{failed} = %v; want 1", n)
			}
			if len(f.audit.recs) != 1 || f.audit.recs[0].Result != "failed" {
				t.Errorf("audit records = %+v; want one failed", f.audit.recs)
			}
		})
	}
}

func TestSwarmUnreadable(t *testing.T) {
	f := newFixture(t)
	f.bridge.trust = fakeTrust{err: fmt.Errorf("inspecting swarm: engine unreachable")}
	csr, _ := csrPEM(t, pkix.Name{})
	w, _ := f.post(t, f.manager, swarmkitJSON(t, csr, nodeID, WorkerOU, swarmID, ""))
	if w.Code != http.StatusServiceUnavailable || f.vault.signCount() != 0 {
		t.Fatalf("answer = %d, signs %d; want 503 and no signing", w.Code, f.vault.signCount())
	}
}
