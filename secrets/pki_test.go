package secrets

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// pkiVault is a fake Vault PKI mount on the network: it records what was posted and answers as told.
type pkiVault struct {
	status int
	answer map[string]any
	gotURL string
	got    map[string]any
}

func (p *pkiVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.gotURL = r.Method + " " + r.URL.Path
	p.got = map[string]any{}
	_ = json.NewDecoder(r.Body).Decode(&p.got)
	writeJSON(w, p.status, p.answer)
}

func newTestPKI(t *testing.T, fake *pkiVault) *PKI {
	t.Helper()
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, err := api.NewClient(&api.Config{Address: srv.URL, MaxRetries: 0})
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken("test-token")
	return newPKI(c.Logical(), "/pki-swarm/")
}

func TestPKISign(t *testing.T) {
	fake := &pkiVault{status: 200, answer: map[string]any{"request_id": "rid-1", "data": map[string]any{
		"certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "serial_number": "0a:0b"}}}
	p := newTestPKI(t, fake)
	got, err := p.Sign(t.Context(), "swarm-manager", PKISignRequest{CSRPEM: "CSR", CommonName: "node1", AltNames: []string{"swarm-manager", "node1", "swarm-ca"}, TTL: 720 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != "0a:0b" || got.RequestID != "rid-1" || !strings.Contains(got.CertificatePEM, "BEGIN CERTIFICATE") {
		t.Errorf("Sign() = %+v; want serial 0a:0b, request rid-1, the PEM", got)
	}
	if fake.gotURL != "PUT /v1/pki-swarm/sign/swarm-manager" {
		t.Errorf("Sign() called %q; want PUT /v1/pki-swarm/sign/swarm-manager", fake.gotURL)
	}
	want := map[string]any{"csr": "CSR", "common_name": "node1", "alt_names": "swarm-manager,node1,swarm-ca", "ttl": "2592000s", "format": "pem", "exclude_cn_from_sans": false}
	for k, v := range want {
		if fake.got[k] != v {
			t.Errorf("Sign() sent %s = %v; want %v", k, fake.got[k], v)
		}
	}
}

func TestPKISignErrors(t *testing.T) {
	cases := []struct {
		name   string
		status int
		answer map[string]any
		want   error
	}{
		{"sealed", 503, map[string]any{"errors": []string{"Vault is sealed"}}, ErrUnreachable},
		{"forbidden", 403, map[string]any{"errors": []string{"permission denied"}}, ErrPermissionDenied},
		{"no certificate", 200, map[string]any{"data": map[string]any{}}, ErrUnreachable},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := newTestPKI(t, &pkiVault{status: tc.status, answer: tc.answer})
			_, err := p.Sign(t.Context(), "r", PKISignRequest{CSRPEM: "CSR", CommonName: "n"})
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), "pki-swarm/sign/r") {
				t.Errorf("Sign() = %v; want %v naming the path", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "test-token") {
				t.Errorf("error holds the token: %v", err)
			}
		})
	}
}

func TestPKIRole(t *testing.T) {
	p := newTestPKI(t, &pkiVault{status: 200, answer: map[string]any{"data": map[string]any{
		"organization": []string{"swarm1"}, "ou": []string{"swarm-worker"}, "use_csr_common_name": false, "use_csr_sans": true}}})
	r, err := p.Role(t.Context(), "w")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(r.Organization, ",") != "swarm1" || strings.Join(r.OU, ",") != "swarm-worker" || r.UseCSRCommonName || !r.UseCSRSANs {
		t.Errorf("Role() = %+v; want O swarm1, OU swarm-worker, use_csr_sans", r)
	}
	missing := newTestPKI(t, &pkiVault{status: 404, answer: map[string]any{"errors": []string{}}})
	if _, err := missing.Role(t.Context(), "w"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Role() of a missing role = %v; want ErrNotFound", err)
	}
}
