package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
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

// A webhook signing key that is configured but unreadable or empty stops `run` and every CLI action under
// the lease before they act (nothing is sent unsigned), with a message naming the key.
func TestWebhookKeyRequired(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty-key")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "no-such-key")
	for name, keyFile := range map[string]string{"missing": missing, "empty": empty} {
		cfg := filepath.Join(dir, name+".yaml")
		body := "listen: 127.0.0.1:0\ndocker: {host: unix://" + filepath.Join(dir, "no.sock") + "}\nnotify:\n  webhooks:\n    - url: http://127.0.0.1:1/hook\n    - url: http://127.0.0.1:1/hook2\n      secret_file: " + keyFile + "\n"
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		a := &app{}
		a.cfg = config.DefaultConfig()
		a.cfg.Notify.Webhooks = []config.Webhook{{URL: "http://x/1"}, {URL: "http://x/2", SecretFile: keyFile}}
		if _, err := a.webhookTargets(); err == nil || !strings.Contains(err.Error(), "notify.webhooks[1].secret_file") {
			t.Errorf("%s key: webhookTargets() = %v; want an error naming notify.webhooks[1].secret_file", name, err)
		}
		for _, args := range [][]string{
			{"rotate", "join-token", "worker", "--config", cfg},
			{"rotate", "unlock-key", "--config", cfg},
			{"remediate", "network", "n", "--config", cfg},
			{"escrow", "unlock-key", "--config", cfg},
			{"run", "--once", "--config", cfg},
			{"config", "check", "--config", cfg},
		} {
			_, out, code := run(t, args...) // config check warns on stderr too
			if !strings.Contains(out, "notify.webhooks[1].secret_file") {
				t.Errorf("%s key: swarmguard %s = exit %d, %q; want the key named", name, strings.Join(args, " "), code, out)
			}
			if args[0] != "config" && code != ExitUsage {
				t.Errorf("%s key: swarmguard %s = exit %d; want %d, refused before the engine is asked", name, strings.Join(args, " "), code, ExitUsage)
			}
		}
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// http.status_listen moves /status/* off listen, and http.status_token_file puts a bearer token in front of
// it; health, readiness and metrics stay on listen, answered while the engine is still awaited.
func TestRunStatusListen(t *testing.T) {
	dir := t.TempDir()
	tokFile := filepath.Join(dir, "status-token")
	if err := os.WriteFile(tokFile, []byte("tok-abc-123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	listen, statusListen := freeAddr(t), freeAddr(t)
	cfg := filepath.Join(dir, "c.yaml")
	body := "listen: " + listen + "\nhttp: {status_listen: " + statusListen + ", status_token_file: " + tokFile + "}\ndocker: {host: unix://" + filepath.Join(dir, "no.sock") + "}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var out, errb bytes.Buffer
	go func() { done <- Main(ctx, []string{"run", "--config", cfg}, strings.NewReader(""), &out, &errb) }()
	defer func() { cancel(); <-done }()

	getCode := func(url, auth string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, _ := getCode("http://"+listen+"/healthz", ""); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no /healthz on %s; stderr: %s", listen, errb.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// /healthz is served before the first engine attempt has failed: until then the engine is "not connected yet".
	code, body := getCode("http://"+listen+"/readyz", "")
	for strings.Contains(body, "engine: not connected yet") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		code, body = getCode("http://"+listen+"/readyz", "")
	}
	if code != 503 || !strings.Contains(body, "engine: engine unreachable") || strings.Contains(body, "no.sock") {
		t.Errorf("/readyz while the engine is awaited = %d %q; want 503 with the cause class, no socket path", code, body)
	}
	if code, _ := getCode("http://"+listen+"/status/secrets", ""); code != 404 {
		t.Errorf("/status/secrets on listen = %d; want 404 (it is on http.status_listen)", code)
	}
	if code, _ := getCode("http://"+statusListen+"/status/secrets", ""); code != 401 {
		t.Errorf("/status/secrets on http.status_listen without the token = %d; want 401", code)
	}
	if code, body := getCode("http://"+statusListen+"/status/secrets", "Bearer tok-abc-123"); code != 200 || !strings.Contains(body, `"secrets"`) {
		t.Errorf("/status/secrets with the token = %d %q; want 200 and the status", code, body)
	}
	if code, _ := getCode("http://"+statusListen+"/metrics", "Bearer tok-abc-123"); code != 404 {
		t.Errorf("/metrics on http.status_listen = %d; want 404 (only /status/* there)", code)
	}
	cancel()
	<-done
	done <- 0
	if strings.Contains(out.String()+errb.String(), "tok-abc-123") {
		t.Error("the status token appears in the output")
	}
}

// TestRunFailsWhenListenerCannotBind: a health listener that cannot bind makes run exit 1 naming the address
// and the key, before it connects to any engine (no holder without a health endpoint). DOCKER_HOST points at
// a socket that does not exist: had run gone on, it would wait for that engine instead of exiting.
func TestRunFailsWhenListenerCannotBind(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	for _, tc := range []struct{ key, yaml string }{
		{"listen", "listen: " + busy.Addr().String() + "\n"},
		{"http.status_listen", "listen: 127.0.0.1:0\nhttp: {status_listen: " + busy.Addr().String() + "}\n"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			cfg := filepath.Join(dir, strings.ReplaceAll(tc.key, ".", "-")+".yaml")
			if err := os.WriteFile(cfg, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(dir, "no-engine.sock"))
			_, stderr, code := run(t, "run", "--config", cfg)
			if code != ExitFailed || !strings.Contains(stderr, "listening on "+busy.Addr().String()) || !strings.Contains(stderr, "set "+tc.key+" to a free address") {
				t.Fatalf("run with %s taken = exit %d, %q; want exit %d naming the address and %s", tc.key, code, stderr, ExitFailed, tc.key)
			}
		})
	}
}
