package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunRefuses(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "no-such-key")
	cfg := filepath.Join(dir, "c.yaml")
	if err := os.WriteFile(cfg, []byte("listen: 127.0.0.1:0\nsecrets:\n  hmac_key_file: "+missing+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"dry-run without once", []string{"run", "--dry-run"}, "--dry-run needs --once"},
		{"unreadable file", []string{"run", "--config", cfg}, "secrets.hmac_key_file: cannot read " + missing},
		{"unreadable file, once", []string{"run", "--once", "--config", cfg}, "secrets.hmac_key_file: cannot read"},
		{"stray argument", []string{"run", "now"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, tt.args...)
			if code != ExitUsage || !strings.Contains(stderr, tt.want) {
				t.Fatalf("swarmguard %s = exit %d, %q; want exit %d containing %q", strings.Join(tt.args, " "), code, stderr, ExitUsage, tt.want)
			}
		})
	}
}

func TestHealth(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	defer ok.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: engine unreachable\n"))
	}))
	defer bad.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	tests := []struct {
		name        string
		url         string
		code        int
		out, errOut string
	}{
		{"healthy", ok.URL + "/healthz", ExitOK, "ok\n", ""},
		{"unhealthy", bad.URL + "/readyz", ExitFailed, "", "503 Service Unavailable: not ready: engine unreachable"},
		{"nothing listening", down.URL + "/healthz", ExitFailed, "", "is swarmguard run listening there?"},
		{"not a URL", "127.0.0.1:9323", ExitUsage, "", "is not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// health reads no configuration: a broken one in the environment does not matter.
			t.Setenv("SWARMGUARD_CONFIG", filepath.Join(t.TempDir(), "missing.yaml"))
			var out, errb bytes.Buffer
			code := Main(t.Context(), []string{"health", "--url", tt.url, "--timeout", "2s"}, strings.NewReader(""), &out, &errb)
			stdout, stderr := out.String(), errb.String()
			if code != tt.code || stdout != tt.out || !strings.Contains(stderr, tt.errOut) {
				t.Fatalf("health --url %s = exit %d, %q, %q; want exit %d, %q, containing %q", tt.url, code, stdout, stderr, tt.code, tt.out, tt.errOut)
			}
		})
	}
}
