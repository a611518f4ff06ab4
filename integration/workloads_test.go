//go:build integration

package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

// TestWorkloads judges real services (an unhardened one, a hardened one, an exempted one, one with 0
// replicas) and enforces no-new-privileges on the opted-in ones under workloads.mode enforce. On an engine
// below API 1.44 (LAB_ENGINE=20.10) the privileges are "not settable on this engine" and nothing changes.
func TestWorkloads(t *testing.T) {
	env := labEnv(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1e8)
	bad, good, ex, zero := "wl-bad-"+run, "wl-good-"+run, "wl-ex-"+run, "wl-zero-"+run
	t.Cleanup(func() { _, _ = docker(t, env, "", "service", "rm", bad, good, ex, zero) })
	mk := func(name string, args ...string) {
		a := append([]string{"service", "create", "-d", "--no-resolve-image", "--stop-grace-period", "1s", "--name", name}, args...)
		mustDocker(t, env, "", append(a, "swarmguard-testapp:lab", "sleep")...)
	}
	mk(bad, "--cap-add", "SYS_ADMIN", "--mount", "type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock")
	mk(good, "--user", "65534:65534", "--cap-drop", "ALL", "--read-only", "--limit-cpu", "0.25", "--limit-memory", "64M",
		"--limit-pids", "100", "--label", "swarmguard.workloads.enforce=true")
	mk(ex, "--cap-add", "NET_ADMIN", "--label", "swarmguard.workloads.exempt=capabilities", "--label", "swarmguard.workloads.exempt.reason=a router")
	mk(zero, "--replicas", "0", "--label", "swarmguard.workloads.enforce=true")

	ev, _ := workloadReport(t, env)
	status := func(check, svc string) (string, string) {
		e, ok := ev[check]["service "+svc]
		if !ok {
			t.Fatalf("%s has no evidence for service %s", check, svc)
		}
		return e.Status, e.Note
	}
	for _, tc := range []struct{ check, svc, want string }{
		{"workloads.user", bad, "fail"}, {"workloads.user", good, "pass"},
		{"workloads.capabilities", bad, "fail"}, {"workloads.capabilities", good, "pass"}, {"workloads.capabilities", ex, "info"},
		{"workloads.docker-socket", bad, "fail"}, {"workloads.docker-socket", good, "pass"}, {"workloads.host-mounts", bad, "fail"},
		{"workloads.limits", bad, "fail"}, {"workloads.limits", good, "pass"},
		{"workloads.memory", bad, "fail"}, {"workloads.memory", good, "pass"}, {"workloads.memory", zero, "fail"},
		{"workloads.pids", bad, "warn"}, {"workloads.pids", good, "pass"},
		{"workloads.read-only", bad, "warn"}, {"workloads.read-only", good, "pass"},
		{"workloads.image-pinned", good, "warn"},
	} {
		if got, note := status(tc.check, tc.svc); got != tc.want {
			t.Errorf("%s on %s = %s (%s); want %s", tc.check, tc.svc, got, note, tc.want)
		}
	}
	api := mustDocker(t, env, "", "version", "--format", "{{.Server.APIVersion}}")
	newEngine := swarm.APIAtLeast(api, swarm.PrivilegesMinAPI)
	st, note := status("workloads.privileges", good)
	t.Logf("engine API %s: workloads.privileges on %s = %s (%s)", api, good, st, note)
	if !newEngine && (st != "info" || !strings.Contains(note, "not settable on this engine")) {
		t.Errorf("workloads.privileges on API %s = %s (%s); want info, not settable on this engine", api, st, note)
	}

	cfg := filepath.Join(t.TempDir(), "swarmguard.yaml")
	if err := os.WriteFile(cfg, []byte("workloads: {mode: enforce}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := runSG(t, env, nil, "run", "--once", "--config", cfg)
	t.Logf("run --once:\n%s", grepLines(r.Stdout, "workloads"))
	if r.Code != 0 {
		t.Fatalf("run --once exited %d: %s", r.Code, r.Stderr)
	}
	nnp := func(svc string) string {
		return mustDocker(t, env, "", "service", "inspect", "--format", "{{if .Spec.TaskTemplate.ContainerSpec.Privileges}}{{.Spec.TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges}}{{else}}false{{end}}", svc)
	}
	if newEngine {
		for _, s := range []string{good, zero} {
			if got := nnp(s); got != "true" {
				t.Errorf("NoNewPrivileges of opted-in %s after run --once = %s; want true", s, got)
			}
		}
		if got := nnp(bad); got != "false" {
			t.Errorf("NoNewPrivileges of %s (not opted in) = %s; want false", bad, got)
		}
		eventually(t, 90*time.Second, good+" running again", func() bool {
			out, _ := docker(t, env, "", "service", "ps", good, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
			return strings.HasPrefix(out, "Running")
		})
	} else {
		if !strings.Contains(r.Stdout, "not settable on this engine") {
			t.Errorf("run --once on API %s printed %q; want \"not settable on this engine\"", api, grepLines(r.Stdout, "workloads"))
		}
		if v := mustDocker(t, env, "", "service", "inspect", "--format", "{{.Version.Index}}", good); v == "" {
			t.Errorf("service %s unreadable", good)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
