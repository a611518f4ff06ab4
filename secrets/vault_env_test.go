package secrets

import (
	"crypto/tls"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/swarmguard/swarmguard/sensitive"
)

// headerRecorder wraps a handler and keeps what each request carried that the environment could have added.
type headerRecorder struct {
	next http.Handler
	mu   sync.Mutex
	seen []http.Header
}

func (h *headerRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	h.next.ServeHTTP(w, r)
}

// decoy counts every request that reaches it: each one would be a credential sent where the configuration
// did not say.
func decoy(t *testing.T) (*httptest.Server, func() int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)
	return srv, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// hostileVaultEnv sets every VAULT_* variable the Vault API package reads to something that would redirect
// or weaken a request.
func hostileVaultEnv(t *testing.T, decoyURL string) {
	t.Helper()
	for k, v := range map[string]string{
		"VAULT_ADDR":        decoyURL,
		"VAULT_AGENT_ADDR":  decoyURL,
		"VAULT_PROXY_ADDR":  decoyURL,
		"VAULT_HTTP_PROXY":  decoyURL,
		"HTTPS_PROXY":       decoyURL,
		"HTTP_PROXY":        decoyURL,
		"VAULT_SKIP_VERIFY": "true",
		"VAULT_NAMESPACE":   "decoy-ns",
		"VAULT_TOKEN":       "env-token-must-not-be-sent",
		"VAULT_HEADERS":     `{"X-Decoy":"1"}`,
		"VAULT_WRAP_TTL":    "5m",
		"VAULT_SRV_LOOKUP":  "true",
	} {
		t.Setenv(k, v)
	}
}

// The configuration is the only source of where Vault requests go and what they carry: with every VAULT_*
// variable pointing at a decoy, an AppRole login, a token check and a KV read go to vault.address, with the
// configured token only, no namespace, no extra header and no response wrapping.
func TestVaultIgnoresEnvironment(t *testing.T) {
	dsrv, decoyHits := decoy(t)
	hostileVaultEnv(t, dsrv.URL)
	fv, _ := newFakeVault(t)
	fv.v2["app"] = []map[string]any{{"k": "v"}}
	rec := &headerRecorder{next: fv}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)

	dir := t.TempDir()
	role, sid := filepath.Join(dir, "role_id"), filepath.Join(dir, "secret_id")
	_ = os.WriteFile(role, []byte("role-1"), 0o600)
	_ = os.WriteFile(sid, []byte("sid-1"), 0o600)
	for _, cfg := range []VaultConfig{
		{Address: srv.URL, Auth: AuthConfig{Method: AuthAppRole, RoleIDFile: role, SecretIDFile: sid}},
		{Address: srv.URL, Auth: AuthConfig{Method: AuthToken, Token: sensitive.New("configured-token")}},
	} {
		t.Run(cfg.Auth.Method, func(t *testing.T) {
			v, err := NewVault(cfg, nil)
			if err != nil {
				t.Fatalf("NewVault() = %v", err)
			}
			if err := v.Login(t.Context()); err != nil {
				t.Fatalf("Login() = %v", err)
			}
			if _, err := v.KV().Read(t.Context(), "secret/app"); err != nil {
				t.Fatalf("Read(secret/app) = %v", err)
			}
		})
	}
	if n := decoyHits(); n != 0 {
		t.Errorf("the decoy named by VAULT_AGENT_ADDR/VAULT_PROXY_ADDR/VAULT_HTTP_PROXY got %d requests; want 0", n)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.seen) < 4 {
		t.Fatalf("vault.address got %d requests; want the logins and reads there", len(rec.seen))
	}
	for i, h := range rec.seen {
		if got := h.Get("X-Vault-Namespace"); got != "" {
			t.Errorf("request %d: X-Vault-Namespace = %q; want none (VAULT_NAMESPACE is ignored)", i, got)
		}
		if got := h.Get("X-Decoy"); got != "" {
			t.Errorf("request %d: X-Decoy = %q; want none (VAULT_HEADERS is ignored)", i, got)
		}
		if got := h.Get("X-Vault-Wrap-TTL"); got != "" {
			t.Errorf("request %d: X-Vault-Wrap-TTL = %q; want none (VAULT_WRAP_TTL is ignored)", i, got)
		}
		if got := h.Get("X-Vault-Token"); strings.Contains(got, "env-token") {
			t.Errorf("request %d carried VAULT_TOKEN; want only the configured credentials", i)
		}
		if h.Get("X-Vault-Request") != "true" {
			t.Errorf("request %d: X-Vault-Request missing; want the API's SSRF guard kept", i)
		}
	}
}

// Certificate checks depend on vault.tls alone: VAULT_SKIP_VERIFY and a VAULT_CACERT that would trust the
// server do not turn them off, vault.tls.ca_file does trust it, and TLS below 1.2 is refused.
func TestVaultTLSFromConfigOnly(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, map[string]any{"data": map[string]any{"ttl": 0, "renewable": false}})
	}))
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_SKIP_VERIFY", "true")
	t.Setenv("VAULT_CACERT", ca)

	tokenCfg := func(caFile string) VaultConfig {
		return VaultConfig{Address: srv.URL, CACertFile: caFile, Auth: AuthConfig{Method: AuthToken, Token: sensitive.New("t")}}
	}
	v, err := NewVault(tokenCfg(""), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Login(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("Login() without vault.tls.ca_file = %v; want a certificate error (VAULT_SKIP_VERIFY and VAULT_CACERT ignored)", err)
	}
	v, err = NewVault(tokenCfg(ca), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Login(t.Context()); err != nil {
		t.Errorf("Login() with vault.tls.ca_file = %v; want it trusted", err)
	}
	tr := v.httpc.Transport.(*http.Transport)
	if tr.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("TLS MinVersion = %x; want at least TLS 1.2", tr.TLSClientConfig.MinVersion)
	}
	if tr.Proxy != nil {
		t.Errorf("transport has a proxy function; want none (no proxy unless configured)")
	}
}

// A Vault that answers with a redirect does not get the token sent on to the Location.
func TestVaultRedirectNotFollowed(t *testing.T) {
	dsrv, decoyHits := decoy(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, dsrv.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	v, err := NewVault(VaultConfig{Address: srv.URL, Auth: AuthConfig{Method: AuthToken, Token: sensitive.New("tok-redirect")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = v.Login(t.Context())
	if err == nil || !strings.Contains(err.Error(), "vault.address") {
		t.Errorf("Login() against a redirecting vault = %v; want an error saying to set vault.address", err)
	}
	if err != nil && strings.Contains(err.Error(), "tok-redirect") {
		t.Errorf("error %q shows the token", err)
	}
	if n := decoyHits(); n != 0 {
		t.Errorf("the redirect target got %d requests; want 0", n)
	}
}
