package operator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmguard/swarmguard/swarm"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	return getFrom(t, h, path, "192.0.2.1:1234") // httptest's default client address: another host
}

// getFrom is get from the client address remote ("127.0.0.1:1234": the node itself).
func getFrom(t *testing.T, h http.Handler, path, remote string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
	req.RemoteAddr = remote
	h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestHTTPEndpoints(t *testing.T) {
	s := newFakeStore()
	engineErr := error(nil)
	rt, err := NewRuntime(RuntimeOptions{Store: s, LeaseName: "swarmguard-lease", TTL: testTTL, Node: "n1",
		Tasks:   []Task{{Name: "tokens", Schedule: "@daily", Run: func(context.Context, TaskEnv) error { return nil }}},
		Metrics: NewMetrics(), Engine: func(context.Context) error { return engineErr }})
	if err != nil {
		t.Fatal(err)
	}
	rt.passCtx = t.Context()
	rt.opts.Metrics.InitLoop("tokens")
	type statusBody struct {
		Role    string   `json:"role"`
		Secrets []string `json:"secrets"`
	}
	secretNames := []string{} // none configured until set below
	h := NewHandler(rt.opts.Metrics, rt.Ready, NewStatusHandler(func() any { return statusBody{Role: rt.Lease().Status().Role, Secrets: secretNames} }, BearerToken{}))
	rt.checkReadiness(t.Context())

	if code, body := get(t, h, "/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q; want 200 ok", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "lease not read yet") {
		t.Fatalf("/readyz before the lease is read = %d %q; want 503 naming the lease", code, body)
	}
	other := newTestLease(s, "n0", newFakeClock().Now)
	tick(t, other)
	tick(t, rt.lease)
	if code, body := get(t, h, "/readyz"); code != 200 || !strings.HasPrefix(body, "ready: standby\n") || !strings.Contains(body, "holder: "+other.ID()) {
		t.Fatalf("/readyz as standby = %d %q; want 200 ready: standby naming the holder", code, body)
	}
	// The engine's own words (addresses, paths) stay in the log; /readyz says its cause class.
	engineErr = fmt.Errorf("dial unix /run/private/docker.sock: connect: refused: %w", swarm.ErrUnreachable)
	rt.checkReadiness(t.Context())
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "engine: "+CauseEngineUnreachable) || strings.Contains(body, "/run/private") {
		t.Fatalf("/readyz with the engine down = %d %q; want 503 with the cause class only", code, body)
	}
	engineErr = nil
	rt.checkReadiness(t.Context())

	var ss statusBody
	if code, body := getFrom(t, h, "/status/secrets", "127.0.0.1:1234"); code != 200 || json.Unmarshal([]byte(body), &ss) != nil || ss.Role != RoleStandby || ss.Secrets == nil || len(ss.Secrets) != 0 {
		t.Fatalf("/status/secrets without mappings = %d %q; want 200, standby, an empty list", code, body)
	}
	secretNames = []string{"db"}
	if code, body := getFrom(t, h, "/status/secrets", "127.0.0.1:1234"); code != 200 || json.Unmarshal([]byte(body), &ss) != nil || len(ss.Secrets) != 1 || !strings.Contains(body, "\n  \"secrets\"") {
		t.Fatalf("/status/secrets = %d %q; want the db mapping, indented JSON", code, body)
	}

	code, body := get(t, h, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`swarmguard_lease_holder{node="n1"} 0`, "swarmguard_lease_transitions_total", `swarmguard_reconcile_errors_total{loop="tokens"} 0`,
		"swarmguard_reconcile_duration_seconds", "go_goroutines", "process_cpu_seconds_total", `swarmguard_up{role="standby"} 1`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	probs, err := testutil.GatherAndLint(rt.opts.Metrics.Registry())
	if err != nil || len(probs) > 0 {
		t.Fatalf("metrics lint = %v, %v; want none", probs, err)
	}
}

func TestReadinessText(t *testing.T) {
	tests := []struct {
		name string
		in   Readiness
		want string
	}{
		{"holder", Readiness{Ready: true, Engine: "ok", Config: "ok", Lease: LeaseStatus{Role: RoleHolder, Self: "n1/a", Holder: "n1/a", HolderActor: "operator:n1", HolderWhat: "controller", Seq: "7", SeenFor: 3140 * time.Millisecond}},
			"ready: holder\nrole: holder\nself: n1/a\nholder: n1/a (operator:n1, controller)\nlease seq: 7 (unchanged for 3.1s)\nengine: ok\nconfig: ok\n"},
		{"released", Readiness{Ready: true, Engine: "ok", Config: "ok", Lease: LeaseStatus{Role: RoleStandby, Self: "n2/b"}},
			"ready: standby\nrole: standby\nself: n2/b\nholder: none (released)\nengine: ok\nconfig: ok\n"},
		{"not ready", Readiness{Engine: "unreachable", Config: "a: b\nc: d", Lease: LeaseStatus{Role: RoleUnknown, Self: "n3/c"}},
			"not ready: engine unreachable, configuration invalid, lease not read yet\nrole: unknown\nself: n3/c\nholder: unknown\nengine: unreachable\nconfig: a: b; c: d\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReadinessText(tt.in); got != tt.want {
				t.Errorf("ReadinessText() = %q; want %q", got, tt.want)
			}
		})
	}
}

// /readyz answers from memory: requests cost no engine call; the runtime's own check (every
// ReadinessInterval) is what asks the engine.
func TestReadyzFromMemory(t *testing.T) {
	s := newFakeStore()
	var calls atomic.Int32
	rt, err := NewRuntime(RuntimeOptions{Store: s, LeaseName: "swarmguard-lease", TTL: testTTL, Node: "n1", Metrics: NewMetrics(),
		Engine: func(context.Context) error { calls.Add(1); return nil }})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(rt.opts.Metrics, rt.Ready, nil)
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "engine: "+engineNotChecked) {
		t.Fatalf("/readyz before the first check = %d %q; want 503, engine not checked yet", code, body)
	}
	rt.checkReadiness(t.Context())
	tick(t, rt.lease)
	for range 50 {
		if code, _ := get(t, h, "/readyz"); code != 200 {
			t.Fatalf("/readyz = %d; want 200", code)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("engine calls after 50 /readyz = %d; want 1 (the runtime's own check)", n)
	}
	if code, _ := get(t, h, "/status/secrets"); code != 404 {
		t.Errorf("/status/secrets without a status handler = %d; want 404 (served on http.status_listen instead)", code)
	}
}

// With a token, /status/* answers 401 to a request without it or with another, and never echoes it.
func TestStatusBearerToken(t *testing.T) {
	tok := NewBearerToken([]byte("status-token-0123456789\n"))
	h := NewStatusHandler(func() any { return map[string]string{"role": RoleStandby} }, tok)
	for _, tt := range []struct {
		name, auth string
		want       int
	}{
		{"none", "", 401},
		{"wrong", "Bearer status-token-wrong", 401},
		{"basic", "Basic c3RhdHVzLXRva2Vu", 401},
		{"right", "Bearer status-token-0123456789", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/status/secrets", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			h.ServeHTTP(rec, req)
			if rec.Code != tt.want || strings.Contains(rec.Body.String(), "status-token-0123456789") {
				t.Errorf("GET /status/secrets with %q = %d %q; want %d, the token never in the body", tt.auth, rec.Code, rec.Body.String(), tt.want)
			}
		})
	}
	if fmt.Sprint(tok) != "REDACTED" || fmt.Sprintf("%v %+v %#v", tok, tok, tok) != "REDACTED REDACTED REDACTED" {
		t.Errorf("the token prints as %v; want REDACTED", tok)
	}
}

// The server drops a client that never finishes its headers, or that idles on a kept-alive connection.
func TestHTTPServerTimeouts(t *testing.T) {
	srv := NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Fatalf("NewServer timeouts = %v %v %v %v, max header %d; want all set", srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout, srv.MaxHeaderBytes)
	}
	if srv.ReadHeaderTimeout > 10*time.Second || srv.IdleTimeout > 2*time.Minute {
		t.Errorf("ReadHeaderTimeout %v, IdleTimeout %v; want them short", srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	// Shortened, to watch them act.
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.IdleTimeout = 200*time.Millisecond, 300*time.Millisecond, 200*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(LimitListener(ln, HTTPMaxConnections)) }()
	t.Cleanup(func() { _ = srv.Close() })

	closedWithin := func(c net.Conn, d time.Duration) bool {
		_ = c.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	half, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	_, _ = io.WriteString(half, "GET / HTTP/1.1\r\nHost: x\r\n")
	if !closedWithin(half, 3*time.Second) {
		t.Error("a client with half-sent headers was still connected after 3 s; want it dropped")
	}

	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("first request = %v, %v", resp, err)
	}
	_ = resp.Body.Close()
	if !closedWithin(idle, 3*time.Second) {
		t.Error("an idle kept-alive connection was still open after 3 s; want it closed")
	}
}

// LimitListener serves at most n connections at once; the next one is accepted when one closes.
func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := LimitListener(inner, 2)
	defer ln.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first := <-accepted
	<-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open; want it to wait")
	case <-time.After(200 * time.Millisecond):
	}
	_ = first.Close()
	select {
	case c := <-accepted:
		_ = c.Close()
	case <-time.After(2 * time.Second):
		t.Fatal("the third connection was not accepted after one closed")
	}
}
