package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/swarmguard/swarmguard/operator/config"
)

// tokenVaultServer answers the Vault token endpoints swarmguard uses: AppRole login, lookup-self,
// renew-self and revoke-self. It records what it was asked.
type tokenVaultServer struct {
	mu      sync.Mutex
	logins  int
	revoked []string
	down    bool
}

func (s *tokenVaultServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	tok := r.Header.Get("X-Vault-Token")
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/v1/auth/approle/login":
		s.logins++
		_ = json.NewEncoder(w).Encode(map[string]any{"auth": map[string]any{
			"client_token": fmt.Sprintf("approle-tok-%d", s.logins), "lease_duration": 3600, "renewable": true}})
	case "/v1/auth/token/lookup-self":
		_ = json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"ttl": 0, "renewable": false}})
	case "/v1/auth/token/revoke-self":
		s.revoked = append(s.revoked, tok)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func vaultTestApp(t *testing.T, addr, method string) (*app, *bytes.Buffer) {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{"role_id": "role-1", "secret_id": "sid-1", "token": "operators-own-token"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	a := &app{log: slog.New(slog.NewJSONHandler(&logs, nil))}
	a.cfg.Vault = config.VaultConfig{Address: addr, Auth: config.VaultAuthConfig{Method: method,
		RoleIDFile: filepath.Join(dir, "role_id"), SecretIDFile: filepath.Join(dir, "secret_id"), TokenFile: filepath.Join(dir, "token")}}
	return a, &logs
}

// One process holds one Vault token: every caller shares the login, and the exit revokes a token
// swarmguard logged in for, never the operator's own.
func TestVaultSharedAndRevokedAtExit(t *testing.T) {
	fv := &tokenVaultServer{}
	srv := httptest.NewServer(fv)
	defer srv.Close()

	a, _ := vaultTestApp(t, srv.URL, "approle")
	v1, err := a.vault(t.Context())
	if err != nil {
		t.Fatalf("vault() = %v", err)
	}
	v2, err := a.vault(t.Context())
	if err != nil || v1 != v2 {
		t.Fatalf("second vault() = %p, %v; want the same client %p", v2, err, v1)
	}
	if fv.logins != 1 {
		t.Errorf("logins = %d; want 1 shared by both callers", fv.logins)
	}
	a.closeVault()
	if len(fv.revoked) != 1 || fv.revoked[0] != "approle-tok-1" {
		t.Errorf("revoked at exit = %v; want [approle-tok-1]", fv.revoked)
	}
	a.closeVault() // idempotent: nothing left to revoke
	if len(fv.revoked) != 1 {
		t.Errorf("revoked after a second close = %v; want no second revocation", fv.revoked)
	}

	// The operator's own token is checked, used, and left alone at exit.
	a, _ = vaultTestApp(t, srv.URL, "token")
	if _, err := a.vault(t.Context()); err != nil {
		t.Fatalf("vault(token) = %v", err)
	}
	a.closeVault()
	if len(fv.revoked) != 1 {
		t.Errorf("revoked = %v after exit with an operator's token; want it untouched", fv.revoked)
	}
}

func TestVaultRevokeFailureIsLoggedNotFatal(t *testing.T) {
	fv := &tokenVaultServer{}
	srv := httptest.NewServer(fv)
	defer srv.Close()
	a, logs := vaultTestApp(t, srv.URL, "approle")
	if _, err := a.vault(t.Context()); err != nil {
		t.Fatalf("vault() = %v", err)
	}
	fv.mu.Lock()
	fv.down = true
	fv.mu.Unlock()
	a.closeVault()
	out := logs.String()
	if !strings.Contains(out, "could not revoke swarmguard's vault token") || !strings.Contains(out, "auth/token/revoke-self") {
		t.Errorf("logs after a failed revocation = %s; want a warning naming auth/token/revoke-self", out)
	}
	if strings.Contains(out, "approle-tok-1") || strings.Contains(out, "sid-1") {
		t.Errorf("logs carry the token or the secret ID: %s", out)
	}
}

// A failed login is not kept: the next call logs in again.
func TestVaultFailedLoginNotCached(t *testing.T) {
	fv := &tokenVaultServer{down: true}
	srv := httptest.NewServer(fv)
	defer srv.Close()
	a, _ := vaultTestApp(t, srv.URL, "approle")
	if _, err := a.vault(t.Context()); err == nil || exitCode(err) != ExitFailed {
		t.Fatalf("vault() with vault down = %v; want exit %d", err, ExitFailed)
	}
	fv.mu.Lock()
	fv.down = false
	fv.mu.Unlock()
	if _, err := a.vault(t.Context()); err != nil {
		t.Fatalf("vault() once vault answers = %v", err)
	}
	a.closeVault()
	if len(fv.revoked) != 1 {
		t.Errorf("revoked = %v; want the one token of the successful login", fv.revoked)
	}
}

// Of the VAULT_* variables only VAULT_ADDR and VAULT_TOKEN are read, and only where the file leaves
// vault.address or vault.auth.token_file empty; VAULT_NAMESPACE and the rest are never read.
func TestVaultConfigEnvironment(t *testing.T) {
	t.Setenv("VAULT_ADDR", "http://env-vault:8200")
	t.Setenv("VAULT_TOKEN", "env-token")
	t.Setenv("VAULT_NAMESPACE", "env-ns")
	tests := []struct {
		name      string
		cfg       config.VaultConfig
		wantAddr  string
		wantToken bool
	}{
		{"file sets nothing: env address and token", config.VaultConfig{Auth: config.VaultAuthConfig{Method: "token"}}, "http://env-vault:8200", true},
		{"file sets the address: env address ignored", config.VaultConfig{Address: "https://file-vault:8200", Auth: config.VaultAuthConfig{Method: "token"}}, "https://file-vault:8200", true},
		{"file sets a token file: VAULT_TOKEN ignored", config.VaultConfig{Address: "https://file-vault:8200", Auth: config.VaultAuthConfig{Method: "token", TokenFile: "/run/secrets/t"}}, "https://file-vault:8200", false},
		{"approle: VAULT_TOKEN ignored", config.VaultConfig{Address: "https://file-vault:8200", Auth: config.VaultAuthConfig{Method: "approle", RoleIDFile: "/r", SecretIDFile: "/s"}}, "https://file-vault:8200", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{}
			a.cfg.Vault = tt.cfg
			c, err := a.vaultConfig()
			if err != nil {
				t.Fatalf("vaultConfig() = %v", err)
			}
			if c.Address != tt.wantAddr {
				t.Errorf("vaultConfig().Address = %q; want %q", c.Address, tt.wantAddr)
			}
			if got := !c.Auth.Token.IsZero(); got != tt.wantToken {
				t.Errorf("vaultConfig() took VAULT_TOKEN = %v; want %v", got, tt.wantToken)
			}
			if c.Namespace != "" {
				t.Errorf("vaultConfig().Namespace = %q; want empty (VAULT_NAMESPACE is not read)", c.Namespace)
			}
		})
	}
}
