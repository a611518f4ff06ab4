//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
)

type planDoc struct {
	SwarmID string `json:"swarm_id"`
	Domains []struct {
		Domain  string `json:"domain"`
		Error   string `json:"error"`
		Actions []struct {
			Kind    string `json:"kind"`
			Subject string `json:"subject"`
			Reason  string `json:"reason"`
			Change  string `json:"change"`
		} `json:"actions"`
	} `json:"domains"`
}

func (d planDoc) kinds() map[string]int {
	out := map[string]int{}
	for _, dom := range d.Domains {
		for _, a := range dom.Actions {
			out[a.Kind]++
		}
	}
	return out
}

// mentions lists the planned actions that name s.
func (d planDoc) mentions(s string) []string {
	var out []string
	for _, dom := range d.Domains {
		for _, a := range dom.Actions {
			if strings.Contains(a.Subject+" "+a.Change, s) {
				out = append(out, dom.Domain+": "+a.Kind+" "+a.Change)
			}
		}
	}
	return out
}

func ledgerKeys(t *testing.T, f *secretsFixture) map[string]int {
	t.Helper()
	var st struct {
		Ledger []map[string]any `json:"ledger"`
	}
	r := f.mustSG("status", "--format", "json")
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status --format json: %v\n%s", err, r.Stdout)
	}
	out := map[string]int{}
	for _, e := range st.Ledger {
		b, _ := json.Marshal(e)
		out[string(b)]++
	}
	return out
}

func newKinds(before, after map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range after {
		for range n - before[k] {
			var e struct {
				Kind string `json:"kind"`
			}
			_ = json.Unmarshal([]byte(k), &e)
			out[e.Kind]++
		}
	}
	return out
}

func fmtKinds(m map[string]int) string {
	var ks []string
	for k, n := range m {
		ks = append(ks, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(ks)
	return strings.Join(ks, " ")
}

// TestPlanRunOncePromise: `swarmguard plan` lists every domain's pending actions; `run --once` with the
// same configuration then records exactly those (one new ledger entry per planned action, of its kind, none
// other), and a second plan no longer lists the certificate, secret and workload ones.
func TestPlanRunOncePromise(t *testing.T) {
	env := labEnv(t)
	cur := strings.TrimSpace(mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}"))
	expiry := "720h"
	if cur == "720h0m0s" {
		expiry = "2160h"
	}
	t.Cleanup(func() { _, _ = docker(t, env, "", "swarm", "update", "--cert-expiry", cur) })
	f := newSecretsFixture(t, "plan", fmt.Sprintf("tokens: {worker: {max_age: 1s}, manager: {max_age: 1s}}\npki: {mode: enforce, node_cert_expiry: %s}\nworkloads: {mode: enforce}\n", expiry))
	f.put("it-plan-" + f.run)
	svc := f.service("app", "--label", "swarmguard.workloads.enforce=true", "--label", "swarmguard.secrets="+f.name, "swarmguard-testapp:lab")

	r := f.sg(nil, "plan", "--format", "json")
	if r.Code != 4 {
		t.Fatalf("plan with pending actions exited %d; want 4\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	var p1 planDoc
	if err := json.Unmarshal([]byte(r.Stdout), &p1); err != nil {
		t.Fatalf("plan --format json: %v\n%s", err, r.Stdout)
	}
	if p1.SwarmID == "" || len(p1.Domains) != 7 {
		t.Errorf("plan = swarm %q, %d domains; want the swarm's ID and 7 domains", p1.SwarmID, len(p1.Domains))
	}
	for _, d := range p1.Domains {
		if d.Error != "" {
			t.Errorf("plan domain %s: error %s", d.Domain, d.Error)
		}
	}
	planned := p1.kinds()
	// Below API 1.44 (Debian's 20.10) no privileges are settable on a service: the workloads domain plans no
	// action there (it notes why), and run --once records none.
	api := strings.TrimSpace(mustDocker(t, env, "", "version", "-f", "{{.Server.APIVersion}}"))
	want := []string{"join-token-worker", "join-token-manager", "node-cert-expiry", "secret"}
	if apiAtLeast(api, 1, 44) {
		want = append(want, "workload")
		if len(p1.mentions(svc)) == 0 {
			t.Errorf("plan names no action for the opted-in service %s:\n%s", svc, r.Stdout)
		}
	} else if planned["workload"] != 0 {
		t.Errorf("engine API %s: plan has a workload action (nothing is settable below 1.44): %s", api, fmtKinds(planned))
	}
	for _, k := range want {
		if planned[k] == 0 {
			t.Errorf("plan has no %s action: %s", k, fmtKinds(planned))
		}
	}
	if len(p1.mentions(f.name)) == 0 {
		t.Errorf("plan names no action for the mapping %s:\n%s", f.name, r.Stdout)
	}

	text := f.mustSG("run", "--once", "--dry-run")
	if !strings.Contains(text.Stdout, "would set the node certificate expiry") || !strings.Contains(text.Stdout, "would create "+f.name+"-") {
		t.Errorf("run --once --dry-run does not print the plan:\n%s", text.Stdout)
	}

	before := ledgerKeys(t, f)
	f.mustSG("run", "--once")
	got := newKinds(before, ledgerKeys(t, f))
	if fmtKinds(got) != fmtKinds(planned) {
		t.Errorf("run --once recorded %s; the plan had %s", fmtKinds(got), fmtKinds(planned))
	}

	r = f.sg(nil, "plan", "--format", "json")
	var p2 planDoc
	if err := json.Unmarshal([]byte(r.Stdout), &p2); err != nil || (r.Code != 0 && r.Code != 4) {
		t.Fatalf("second plan: exit %d, %v\n%s\n%s", r.Code, err, r.Stdout, r.Stderr)
	}
	left := append(p2.mentions(f.name), p2.mentions(svc)...)
	if p2.kinds()["node-cert-expiry"] > 0 || len(left) > 0 {
		t.Errorf("a second plan still lists %v (node-cert-expiry %d)", left, p2.kinds()["node-cert-expiry"])
	}
	secretScan(t, f.outputs, tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager"))
}
