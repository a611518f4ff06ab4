package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
)

// fakeVault is a tiny Vault HTTP API: a KV v2 mount at secret/, a KV v1
// mount at kv1/, a path the token may not read (secret/denied/*), AppRole
// login and token lookup, renewal and revocation.
type fakeVault struct {
	mu       sync.Mutex
	v2       map[string][]map[string]any // path under the mount -> versions (index+1 = version)
	v1       map[string]map[string]any
	roleID   string
	secretID string
	ttl      int // seconds, for logins
	logins   atomic.Int32
	renews   atomic.Int32
	mountReq atomic.Int32
	requests []string
	issued   map[string]time.Time
	revoked  map[string]bool
}

func newFakeVault(t *testing.T) (*fakeVault, *httptest.Server) {
	fv := &fakeVault{v2: map[string][]map[string]any{}, v1: map[string]map[string]any{}, roleID: "role-1", secretID: "sid-1", ttl: 3600, issued: map[string]time.Time{}, revoked: map[string]bool{}}
	srv := httptest.NewServer(fv)
	t.Cleanup(srv.Close)
	return fv, srv
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (fv *fakeVault) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fv.mu.Lock()
	defer fv.mu.Unlock()
	p := strings.TrimPrefix(r.URL.Path, "/v1/")
	fv.requests = append(fv.requests, r.Method+" "+p)
	body := map[string]any{}
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		_ = json.Unmarshal(b, &body)
	}
	tok := r.Header.Get("X-Vault-Token")
	deny := func() { writeJSON(w, 403, map[string]any{"errors": []string{"permission denied"}}) }
	switch {
	case p == "auth/approle/login":
		if body["role_id"] != fv.roleID || body["secret_id"] != fv.secretID {
			writeJSON(w, 400, map[string]any{"errors": []string{"invalid role or secret ID"}})
			return
		}
		n := fv.logins.Add(1)
		fv.issued[fmt.Sprintf("tok-%d", n)] = time.Now()
		writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": fmt.Sprintf("tok-%d", n), "lease_duration": fv.ttl, "renewable": true, "policies": []string{"swarmguard"}}})
		return
	case tok == "" || fv.revoked[tok]:
		deny()
		return
	case p == "auth/token/revoke-self":
		fv.revoked[tok] = true
		w.WriteHeader(http.StatusNoContent)
		return
	case p == "auth/token/lookup-self":
		writeJSON(w, 200, map[string]any{"data": map[string]any{"ttl": fv.ttl, "renewable": fv.ttl > 0, "policies": []string{"default"}}})
		return
	case p == "auth/token/renew-self":
		// Renewal is capped by a max TTL of 2*ttl from the login.
		fv.renews.Add(1)
		left := 2*fv.ttl - int(time.Since(fv.issued[tok]).Seconds())
		writeJSON(w, 200, map[string]any{"auth": map[string]any{"client_token": tok, "lease_duration": max(min(left, fv.ttl), 0), "renewable": true}})
		return
	case strings.HasPrefix(p, "sys/internal/ui/mounts/"):
		fv.mountReq.Add(1)
		rest := strings.TrimPrefix(p, "sys/internal/ui/mounts/")
		switch {
		case strings.HasPrefix(rest, "secret/"):
			writeJSON(w, 200, map[string]any{"data": map[string]any{"path": "secret/", "type": "kv", "options": map[string]any{"version": "2"}}})
		case strings.HasPrefix(rest, "kv1/"):
			writeJSON(w, 200, map[string]any{"data": map[string]any{"path": "kv1/", "type": "kv", "options": nil}})
		case strings.HasPrefix(rest, "pki/"):
			writeJSON(w, 200, map[string]any{"data": map[string]any{"path": "pki/", "type": "pki"}})
		case strings.HasPrefix(rest, "sealed/"):
			writeJSON(w, 503, map[string]any{"errors": []string{"Vault is sealed"}})
		default:
			deny() // Vault answers 403 for a path under no mount
		}
		return
	case strings.HasPrefix(p, "secret/data/denied"):
		deny()
		return
	case strings.HasPrefix(p, "secret/data/"):
		key := strings.TrimPrefix(p, "secret/data/")
		vs := fv.v2[key]
		if r.Method == http.MethodPost || r.Method == http.MethodPut {
			if opts, ok := body["options"].(map[string]any); ok {
				if cas, ok := opts["cas"].(float64); ok && int(cas) != len(vs) {
					writeJSON(w, 400, map[string]any{"errors": []string{"check-and-set parameter did not match the current version"}})
					return
				}
			}
			data, _ := body["data"].(map[string]any)
			fv.v2[key] = append(vs, data)
			writeJSON(w, 200, map[string]any{"data": map[string]any{"version": len(fv.v2[key])}})
			return
		}
		n := len(vs)
		if q := r.URL.Query().Get("version"); q != "" {
			fmt.Sscan(q, &n)
		}
		if n == 0 || n > len(vs) {
			writeJSON(w, 404, map[string]any{"errors": []string{}})
			return
		}
		md := map[string]any{"version": n, "created_time": "2026-01-02T03:04:05.123456Z", "custom_metadata": map[string]any{"owner": "team-a"}}
		if vs[n-1] == nil { // deleted
			writeJSON(w, 404, map[string]any{"data": map[string]any{"data": nil, "metadata": md}})
			return
		}
		writeJSON(w, 200, map[string]any{"data": map[string]any{"data": vs[n-1], "metadata": md}})
		return
	case strings.HasPrefix(p, "secret/metadata/"):
		key := strings.TrimPrefix(p, "secret/metadata/")
		vs := fv.v2[key]
		if len(vs) == 0 {
			writeJSON(w, 404, map[string]any{"errors": []string{}})
			return
		}
		versions := map[string]any{}
		for i := range vs {
			versions[fmt.Sprint(i+1)] = map[string]any{"created_time": "2026-01-02T03:04:05Z", "deletion_time": "", "destroyed": false}
		}
		writeJSON(w, 200, map[string]any{"data": map[string]any{"current_version": len(vs), "oldest_version": 1, "versions": versions,
			"created_time": "2026-01-01T00:00:00Z", "updated_time": "2026-01-02T03:04:05Z", "custom_metadata": map[string]any{"owner": "team-a"}}})
		return
	case strings.HasPrefix(p, "kv1/"):
		d, ok := fv.v1[strings.TrimPrefix(p, "kv1/")]
		if !ok {
			writeJSON(w, 404, map[string]any{"errors": []string{}})
			return
		}
		writeJSON(w, 200, map[string]any{"data": d})
		return
	}
	writeJSON(w, 404, map[string]any{"errors": []string{}})
}

func tokenVault(t *testing.T, addr string) *Vault {
	t.Helper()
	v, err := NewVault(VaultConfig{Address: addr, Auth: AuthConfig{Method: AuthToken, Token: sensitive.New("root-token")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Login(t.Context()); err != nil {
		t.Fatalf("Login() = %v", err)
	}
	return v
}

func TestKVReadV1V2(t *testing.T) {
	fv, srv := newFakeVault(t)
	fv.v2["apps/db"] = []map[string]any{{"password": "one"}, {"password": "two", "port": 5432, "tls": true}}
	fv.v1["legacy/db"] = map[string]any{"password": "old"}
	kv := tokenVault(t, srv.URL).KV()

	v, err := kv.Read(t.Context(), "secret/apps/db")
	if err != nil {
		t.Fatalf("Read(secret/apps/db) = %v", err)
	}
	pw, _ := v.Field("password")
	port, _ := v.Field("port")
	tls, _ := v.Field("tls")
	if v.KVVersion != 2 || v.Version != 2 || v.Mount != "secret/" || pw.Reveal() != "two" || port.Reveal() != "5432" || tls.Reveal() != "true" {
		t.Errorf("Read(secret/apps/db) = %v (port %s tls %s); want kv v2 version 2", v, port.Reveal(), tls.Reveal())
	}
	if v.CustomMetadata["owner"] != "team-a" || v.CreatedTime.IsZero() {
		t.Errorf("metadata = %v %v; want owner and created time", v.CustomMetadata, v.CreatedTime)
	}
	v1, err := kv.ReadVersion(t.Context(), "/secret/apps/db/", 1)
	if pw, _ := v1.Field("password"); err != nil || pw.Reveal() != "one" || v1.Version != 1 {
		t.Errorf("ReadVersion(1) = %v, %v; want version 1", v1, err)
	}
	l, err := kv.Read(t.Context(), "kv1/legacy/db")
	if pw, _ := l.Field("password"); err != nil || l.KVVersion != 1 || l.Version != 0 || pw.Reveal() != "old" {
		t.Errorf("Read(kv1/legacy/db) = %v, %v; want kv v1, version 0", l, err)
	}
	// Detection is cached per mount: 2 mounts, 2 detections, however many reads.
	for range 5 {
		_, _ = kv.Read(t.Context(), "secret/apps/db")
	}
	if n := fv.mountReq.Load(); n != 2 {
		t.Errorf("mount detections = %d; want 2", n)
	}
	md, err := kv.Metadata(t.Context(), "secret/apps/db")
	if err != nil || md.CurrentVersion != 2 || len(md.Versions) != 2 || md.Versions[1].Version != 2 || md.CustomMetadata["owner"] != "team-a" {
		t.Errorf("Metadata() = %+v, %v; want 2 versions", md, err)
	}
}

// Reads started together, as the sync's pool starts them, ask Vault for their mount once, not once each.
func TestKVConcurrentReadsDetectTheMountOnce(t *testing.T) {
	fv, srv := newFakeVault(t)
	for i := range 16 {
		fv.v2[fmt.Sprintf("apps/s%d", i)] = []map[string]any{{"v": "x"}}
	}
	kv := tokenVault(t, srv.URL).KV()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range 16 {
		wg.Go(func() { _, errs[i] = kv.Read(t.Context(), fmt.Sprintf("secret/apps/s%d", i)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("reads: %v", err)
	}
	if n := fv.mountReq.Load(); n != 1 {
		t.Errorf("mount detections for 16 concurrent reads under secret/ = %d; want 1", n)
	}
}

func TestKVErrors(t *testing.T) {
	fv, srv := newFakeVault(t)
	fv.v2["apps/gone"] = []map[string]any{nil}
	kv := tokenVault(t, srv.URL).KV()
	tests := []struct {
		path string
		want error
		msg  string
	}{
		{"secret/apps/missing", ErrNotFound, `reading "secret/apps/missing" from vault: not found`},
		{"secret/apps/gone", ErrNotFound, "deleted or destroyed"},
		{"secret/denied/x", ErrPermissionDenied, `"secret/data/denied/x": permission denied: the vault token may not do this; attach the policy in configs/vault-policy.hcl`},
		{"nomount/x", ErrPermissionDenied, `sys/internal/ui/mounts/nomount/x`},
		{"sealed/x", ErrUnreachable, "vault answered 503: Vault is sealed"},
		{"pki/x", ErrInvalid, `not a kv secrets engine`},
		{"kv1/absent", ErrNotFound, "not found"},
		{"", ErrInvalid, "empty vault path"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			_, err := kv.Read(t.Context(), tt.path)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Read(%q) = %v; want %v containing %q", tt.path, err, tt.want, tt.msg)
			}
		})
	}
	srv.Close()
	kv2 := newKV(kv.logical) // no cached mounts
	_, err := kv2.Read(t.Context(), "secret/apps/db")
	if !errors.Is(err, ErrUnreachable) {
		t.Errorf("Read with vault down = %v; want ErrUnreachable", err)
	}
}

func TestKVWriteCAS(t *testing.T) {
	fv, srv := newFakeVault(t)
	kv := tokenVault(t, srv.URL).KV()
	data := map[string]string{"key": "unlock-key-value", "swarm_id": "abc", "time": "2026-01-01T00:00:00Z", "fingerprint": "12ab"}
	ver, err := kv.WriteCAS(t.Context(), "secret/swarmguard/abc/unlock-key", data, 0)
	if err != nil || ver != 1 {
		t.Fatalf("WriteCAS(cas 0) = %d, %v; want version 1", ver, err)
	}
	if _, err := kv.WriteCAS(t.Context(), "secret/swarmguard/abc/unlock-key", data, 0); !errors.Is(err, ErrConflict) {
		t.Errorf("WriteCAS(stale cas) = %v; want ErrConflict", err)
	}
	if ver, err := kv.WriteCAS(t.Context(), "secret/swarmguard/abc/unlock-key", data, 1); err != nil || ver != 2 {
		t.Errorf("WriteCAS(cas 1) = %d, %v; want version 2", ver, err)
	}
	if _, err := kv.WriteCAS(t.Context(), "kv1/x", data, 0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "needs kv v2") {
		t.Errorf("WriteCAS on kv v1 = %v; want ErrInvalid", err)
	}
	for _, r := range fv.requests {
		if strings.Contains(r, "unlock-key-value") {
			t.Errorf("request line carries the value: %s", r)
		}
	}
}

func TestAppRoleLoginAndRelogin(t *testing.T) {
	fv, srv := newFakeVault(t)
	dir := t.TempDir()
	role, sid := filepath.Join(dir, "role_id"), filepath.Join(dir, "secret_id")
	os.WriteFile(role, []byte("role-1\n"), 0o600)
	os.WriteFile(sid, []byte("sid-1"), 0o600)
	fv.ttl = 2 // short: the watcher gives up near the end and Run logs in again
	v, err := NewVault(VaultConfig{Address: srv.URL, Auth: AuthConfig{Method: AuthAppRole, RoleIDFile: role, SecretIDFile: sid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Login(t.Context()); err != nil {
		t.Fatalf("Login() = %v", err)
	}
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(t.Context())
	go func() { _ = v.Run(ctx); close(done) }()
	deadline := time.Now().Add(15 * time.Second)
	for v.Stats().Relogins < 1 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if st := v.Stats(); st.Relogins < 1 || fv.logins.Load() < 2 || st.Renewals < 1 {
		t.Fatalf("after a 2s TTL: stats %+v, logins %d; want at least one renewal and one re-login", st, fv.logins.Load())
	}
	// A bad secret ID says which files to check.
	os.WriteFile(sid, []byte("wrong"), 0o600)
	if err := v.Login(t.Context()); err == nil || !strings.Contains(err.Error(), "secret_id_file") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("Login(bad secret id) = %v; want a message naming the files, not the value", err)
	}
}

func TestRevokeEndsOnlyTheTokenItLoggedInFor(t *testing.T) {
	fv, srv := newFakeVault(t)
	fv.v2["apps/db"] = []map[string]any{{"password": "pw"}}
	dir := t.TempDir()
	role, sid := filepath.Join(dir, "role_id"), filepath.Join(dir, "secret_id")
	os.WriteFile(role, []byte("role-1"), 0o600)
	os.WriteFile(sid, []byte("sid-1"), 0o600)
	v, err := NewVault(VaultConfig{Address: srv.URL, Auth: AuthConfig{Method: AuthAppRole, RoleIDFile: role, SecretIDFile: sid}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Revoke(t.Context()); err != nil || len(fv.revoked) != 0 {
		t.Fatalf("Revoke before any login = %v, revoked %v; want nothing sent", err, fv.revoked)
	}
	if err := v.Login(t.Context()); err != nil {
		t.Fatalf("Login() = %v", err)
	}
	if err := v.Revoke(t.Context()); err != nil {
		t.Fatalf("Revoke() = %v", err)
	}
	if !fv.revoked["tok-1"] || len(fv.revoked) != 1 {
		t.Fatalf("revoked = %v; want the AppRole token tok-1", fv.revoked)
	}
	if _, err := v.KV().Read(t.Context(), "secret/apps/db"); err == nil {
		t.Error("read after Revoke succeeded; want the client logged out")
	}
	if err := v.Revoke(t.Context()); err != nil || len(fv.revoked) != 1 {
		t.Errorf("second Revoke = %v, revoked %v; want nothing more sent", err, fv.revoked)
	}
	// Logging in again works, with a new token.
	if err := v.Login(t.Context()); err != nil {
		t.Fatalf("Login after Revoke = %v", err)
	}
	if _, err := v.KV().Read(t.Context(), "secret/apps/db"); err != nil {
		t.Errorf("read after a new login = %v", err)
	}

	// A token the operator handed in is theirs: never revoked.
	tv := tokenVault(t, srv.URL)
	if err := tv.Revoke(t.Context()); err != nil {
		t.Fatalf("Revoke(token method) = %v", err)
	}
	if len(fv.revoked) != 1 {
		t.Errorf("revoked = %v after Revoke of an operator's token; want it untouched", fv.revoked)
	}
	if _, err := tv.KV().Read(t.Context(), "secret/apps/db"); err != nil {
		t.Errorf("read with the operator's token after Revoke = %v; want it still working", err)
	}

	// Vault down: the error says so, and the client stays logged in (the token may still be live).
	srv.Close()
	if err := v.Revoke(t.Context()); !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "auth/token/revoke-self") {
		t.Errorf("Revoke with vault down = %v; want ErrUnreachable naming auth/token/revoke-self", err)
	}
}

func TestVaultConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  VaultConfig
		want string
	}{
		{VaultConfig{Address: "https://v:8200", Auth: AuthConfig{Method: "token", TokenFile: "/t"}}, ""},
		{VaultConfig{Address: "v:8200", Auth: AuthConfig{Method: "token", TokenFile: "/t"}}, `address: "v:8200" is not an http:// or https:// URL`},
		{VaultConfig{Address: "http://v", Auth: AuthConfig{Method: "token"}}, "auth.token_file: is empty and no VAULT_TOKEN is set"},
		{VaultConfig{Address: "http://v", Auth: AuthConfig{Method: "approle"}}, "auth.role_id_file: is required"},
		{VaultConfig{Address: "http://v", Auth: AuthConfig{Method: "ldap"}}, `auth.method: "ldap" is not one of token, approle`},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("Validate(%+v) = %v; want %q", tt.cfg, err, tt.want)
		}
	}
}
