//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// workloadEvidence is the report's evidence of one workload check on one service.
type workloadEvidence struct {
	Status string            `json:"status"`
	Facts  map[string]string `json:"facts"`
	Note   string            `json:"note"`
}

// workloadReport runs `swarmguard report --format json` and returns the workload checks' evidence by
// check ID and subject, and each check's CIS number.
func workloadReport(t *testing.T, env map[string]string) (map[string]map[string]workloadEvidence, map[string]string) {
	t.Helper()
	r := runSG(t, env, nil, "report", "--format", "json")
	if r.Code > 1 {
		t.Fatalf("report exited %d: %s", r.Code, r.Stderr)
	}
	var doc struct {
		Checks []struct {
			ID       string `json:"id"`
			CIS      string `json:"cis"`
			Evidence []struct {
				Subject string `json:"subject"`
				workloadEvidence
			} `json:"evidence"`
		} `json:"checks"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &doc); err != nil {
		t.Fatalf("report JSON: %v", err)
	}
	ev, cis := map[string]map[string]workloadEvidence{}, map[string]string{}
	for _, c := range doc.Checks {
		if !strings.HasPrefix(c.ID, "workloads.") {
			continue
		}
		cis[c.ID], ev[c.ID] = c.CIS, map[string]workloadEvidence{}
		for _, e := range c.Evidence {
			ev[c.ID][e.Subject] = e.workloadEvidence
		}
	}
	return ev, cis
}

// TestWorkloadsSpecChecks creates services that pass and fail each check judged from the spec alone (host
// network 5.10, memory 5.11, CPU 5.12, pids 5.29, published privileged ports 5.8, restart attempts 5.15,
// shared mount propagation 5.20, health check 5.27 from the spec or the image, Docker socket 5.32 apart
// from host directories 5.6) and reads each verdict from the report. Every setting exists on both lab
// engines (20.10, API 1.41, and current), so the test runs the same on both. The services have 0 replicas
// except the host-network one (as `docker service create --network host` makes it): the verdicts come from
// the spec, and a task would only add noise (privileged ports and rshared mounts need a node to allow them).
func TestWorkloadsSpecChecks(t *testing.T) {
	env := labEnv(t)
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1e8)
	ok, bad, hostnet, imgHealth, absent := "wl-ok-"+run, "wl-bad-"+run, "wl-host-"+run, "wl-imghealth-"+run, "wl-absent-"+run
	healthImage := "swarmguard-testapp:health-" + run
	t.Cleanup(func() {
		_, _ = docker(t, env, "", "service", "rm", ok, bad, hostnet, imgHealth, absent)
		_, _ = docker(t, env, "", "image", "rm", healthImage)
	})

	// An image whose config has a HEALTHCHECK, on the manager swarmguard reads (the lab's DOCKER_HOST).
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM swarmguard-testapp:lab\nHEALTHCHECK CMD [\"/testapp\", \"health\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "docker", "-H", env["DOCKER_HOST"], "build", "-q", "-t", healthImage, dir)
	build.Env = append(baseEnv(env), "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", healthImage, err, out)
	}

	mk := func(name, image string, args ...string) {
		a := append([]string{"service", "create", "-d", "--no-resolve-image", "--stop-grace-period", "1s", "--name", name}, args...)
		mustDocker(t, env, "", append(a, image, "sleep")...)
	}
	mk(ok, "swarmguard-testapp:lab", "--replicas", "0", "--limit-memory", "64M", "--limit-cpu", "0.25", "--limit-pids", "100",
		"--restart-condition", "on-failure", "--restart-max-attempts", "5", "--publish", "mode=host,published=18080,target=80",
		"--mount", "type=bind,source=/tmp,target=/x,bind-propagation=rslave", "--mount", "type=bind,source=/etc/ssl,target=/ssl,readonly",
		"--health-cmd", "/testapp health")
	mk(bad, "swarmguard-testapp:lab", "--replicas", "0", "--restart-max-attempts", "10", "--publish", "mode=host,published=80,target=8080",
		"--mount", "type=bind,source=/tmp,target=/x,bind-propagation=rshared", "--mount", "type=bind,source=/var/run/docker.sock,target=/var/run/docker.sock,readonly")
	mk(hostnet, "swarmguard-testapp:lab", "--network", "host", "--restart-condition", "none", "--no-healthcheck")
	mk(imgHealth, healthImage, "--replicas", "0")
	mk(absent, "swarmguard-absent-"+run+":none", "--replicas", "0")

	api := mustDocker(t, env, "", "version", "--format", "{{.Server.APIVersion}}")
	spec := mustDocker(t, env, "", "service", "inspect", "--format", "{{json .Spec.TaskTemplate.Networks}}", hostnet)
	t.Logf("engine API %s: --network host is stored as %s", api, spec)

	ev, cis := workloadReport(t, env)
	for check, want := range map[string]string{"workloads.host-network": "5.10", "workloads.memory": "5.11", "workloads.cpu": "5.12",
		"workloads.pids": "5.29", "workloads.ports": "5.8", "workloads.restart": "5.15", "workloads.propagation": "5.20",
		"workloads.healthcheck": "5.27", "workloads.host-mounts": "5.6", "workloads.docker-socket": "5.32"} {
		if cis[check] != want {
			t.Errorf("check %s has CIS %q; want %s", check, cis[check], want)
		}
	}
	for _, tc := range []struct{ check, svc, want, text string }{
		{"workloads.host-network", hostnet, "fail", "host_network=true"},
		{"workloads.host-network", ok, "pass", "host_network=false"},
		{"workloads.memory", ok, "pass", "memory_limit=64MiB"},
		{"workloads.memory", bad, "fail", "no memory limit"},
		{"workloads.cpu", ok, "pass", "cpu_limit=0.25"},
		{"workloads.cpu", bad, "warn", "no CPU limit"},
		{"workloads.pids", ok, "pass", "pids_limit=100"},
		{"workloads.pids", bad, "warn", "no pids limit"},
		{"workloads.ports", ok, "pass", "18080->80/tcp host"},
		{"workloads.ports", bad, "warn", "below 1024 on the nodes: 80->8080/tcp host"},
		{"workloads.ports", hostnet, "pass", "published_ports=none"},
		{"workloads.restart", ok, "pass", "restart_max_attempts=5"},
		{"workloads.restart", bad, "warn", "up to 10 times"},
		{"workloads.restart", hostnet, "pass", "restart_condition=none"},
		{"workloads.restart", imgHealth, "warn", "without limit"},
		{"workloads.propagation", ok, "pass", "/tmp:/x:rslave"},
		{"workloads.propagation", bad, "warn", "/tmp:/x:rshared"},
		{"workloads.healthcheck", ok, "pass", "spec_healthcheck=command"},
		{"workloads.healthcheck", hostnet, "warn", "spec disables the health check"},
		{"workloads.healthcheck", bad, "warn", "image_healthcheck=none"},
		{"workloads.healthcheck", imgHealth, "pass", "image_healthcheck=command"},
		{"workloads.healthcheck", absent, "warn", "not determinable: no health check in the spec and the manager swarmguard reads does not have the image"},
		{"workloads.host-mounts", ok, "warn", "/etc/ssl (a sensitive host directory, read-only)"},
		{"workloads.host-mounts", bad, "fail", "/var/run/docker.sock (the Docker socket"},
		{"workloads.docker-socket", bad, "fail", "/var/run/docker.sock:/var/run/docker.sock:ro"},
		{"workloads.docker-socket", ok, "pass", "socket_mounts=none"},
	} {
		e, found := ev[tc.check]["service "+tc.svc]
		text := e.Note + " " + factsText(e.Facts)
		if !found || e.Status != tc.want || !strings.Contains(text, tc.text) {
			t.Errorf("%s on %s = %s (%s); want %s with %q", tc.check, tc.svc, e.Status, text, tc.want, tc.text)
		}
	}
}

func factsText(f map[string]string) string {
	var out []string
	for k, v := range f {
		out = append(out, k+"="+v)
	}
	return strings.Join(out, " ")
}
