package operator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil))
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
	h := NewHandler(rt.opts.Metrics, rt.Ready, func() any { return statusBody{Role: rt.Lease().Status().Role, Secrets: secretNames} })

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
	engineErr = errors.New("docker daemon unreachable")
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "engine: docker daemon unreachable") {
		t.Fatalf("/readyz with the engine down = %d %q; want 503", code, body)
	}
	engineErr = nil

	var ss statusBody
	if code, body := get(t, h, "/status/secrets"); code != 200 || json.Unmarshal([]byte(body), &ss) != nil || ss.Role != RoleStandby || ss.Secrets == nil || len(ss.Secrets) != 0 {
		t.Fatalf("/status/secrets without mappings = %d %q; want 200, standby, an empty list", code, body)
	}
	secretNames = []string{"db"}
	if code, body := get(t, h, "/status/secrets"); code != 200 || json.Unmarshal([]byte(body), &ss) != nil || len(ss.Secrets) != 1 || !strings.Contains(body, "\n  \"secrets\"") {
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
