//go:build integration

package integration

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

// TestEventsHardenStackDeploy: a controller under workloads.mode enforce, its schedule an hour away (only
// events can act), hardens the opted-in service of README's stack file (charts/examples/hardened-stack.yml)
// within seconds of `docker stack deploy`, again after a redeploy dropped the hardening, once per deploy
// (one ok workload ledger entry each, naming the event), and then leaves it alone. Below API 1.44 no
// privileges can be set: the controller judges the event and changes nothing.
func TestEventsHardenStackDeploy(t *testing.T) {
	env := labEnv(t)
	id := rtUniq()
	rtRemoveObjects(t, env, id)
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: 6s}
ledger: {name: sgit-state-%[1]s}
workloads: {mode: enforce, schedule: "@every 1h"}
`, id))
	r := rtStartReplica(t, env, env["DOCKER_HOST"], 1, cfg)
	rtAwaitOneHolder(t, []*rtReplica{r}, 60*time.Second)
	eventually(t, 30*time.Second, "the controller following the engine's events", func() bool {
		return r.metric("swarmguard_event_stream_connected") == "swarmguard_event_stream_connected 1"
	})
	// The take-over passes are over once the full pass of the connection has run: from here only events act.
	eventually(t, 60*time.Second, "the workloads loop's full pass for the new connection", func() bool {
		f := strings.Fields(r.metric(`swarmguard_event_reconciles_total{kind="full",loop="workloads"}`))
		if len(f) != 2 {
			return false
		}
		n, err := strconv.ParseFloat(f[1], 64)
		return err == nil && n >= 1
	})

	stack := "sgev" + id
	file := filepath.Join(repoRoot(), "charts", "examples", "hardened-stack.yml")
	t.Setenv("APP_IMAGE", "swarmguard-testapp:lab") // the stack file's image; the lab has no registry
	deploy := func() time.Time {
		out, err := docker(t, env, "", "stack", "deploy", "--resolve-image", "never", "-c", file, stack)
		if err != nil {
			t.Fatalf("docker stack deploy -c %s: %v: %s", file, err, out)
		}
		return time.Now()
	}
	t.Cleanup(func() { _, _ = docker(t, env, "", "stack", "rm", stack) })
	svc := stack + "_app"
	nnp := func() string {
		out, _ := docker(t, env, "", "service", "inspect", "--format", "{{if .Spec.TaskTemplate.ContainerSpec.Privileges}}{{.Spec.TaskTemplate.ContainerSpec.Privileges.NoNewPrivileges}}{{else}}false{{end}}", svc)
		return strings.TrimSpace(out)
	}
	entries := func() []tokLedgerEntry {
		var outs tokOutputs
		return fdEntries(fdLedger(t, env, &outs, cfg), "workload", "service", svc, "")
	}
	api := strings.TrimSpace(mustDocker(t, env, "", "version", "--format", "{{.Server.APIVersion}}"))
	if !swarm.APIAtLeast(api, swarm.PrivilegesMinAPI) {
		deploy()
		eventually(t, 30*time.Second, "the controller reconciling the deploy's service event", func() bool {
			for _, l := range strings.Split(r.log.String(), "\n") {
				if strings.Contains(l, `"msg":"changed services need nothing"`) && strings.Contains(l, svc) {
					return true
				}
			}
			return false
		})
		if n := nnp(); n != "false" || len(entries()) != 0 {
			t.Fatalf("engine API %s: no-new-privileges %s, %d ledger entries; want nothing set (not settable on this engine)", api, n, len(entries()))
		}
		t.Logf("engine API %s: the deploy's event was judged; nothing set (not settable on this engine)", api)
		return
	}
	for i, what := range []string{"deploy", "redeploy"} {
		t0 := deploy()
		if !poll(15*time.Second, func() bool { return nnp() == "true" }) {
			t.Fatalf("%s: %s has no no-new-privileges 15 s after docker stack deploy", what, svc)
		}
		took := time.Since(t0)
		eventually(t, 2*time.Minute, fmt.Sprintf("%s: %d ledger entries for %s", what, i+1, svc), func() bool { return len(entries()) >= i+1 })
		es := entries()
		if len(es) != i+1 || es[len(es)-1].Result != "ok" || !strings.HasPrefix(es[len(es)-1].Reason, "engine events: ") {
			t.Fatalf("%s: workload ledger entries for %s = %+v; want %d, the last ok with an engine-events reason", what, svc, es, i+1)
		}
		t.Logf("%s: hardened %.1f s after docker stack deploy returned; ledger %s (%s)", what, took.Seconds(), fdResults(es), es[len(es)-1].Reason)
	}
	// Left alone: no further hardening (the controller's own updates came back as events and found the
	// service hardened).
	time.Sleep(10 * time.Second)
	if es := entries(); len(es) != 2 || strings.Count(r.log.String(), `"msg":"hardening service"`) != 2 {
		t.Fatalf("after the two deploys: %d ledger entries, %d hardenings logged; want 2 and 2 (once per deploy, no loop)",
			len(es), strings.Count(r.log.String(), `"msg":"hardening service"`))
	}
}
