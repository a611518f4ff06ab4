//go:build integration

package integration

// The crash-point harness (issue 12): swarmguard, built with the crashhook tag, is killed with SIGKILL at a
// named step of an action (SG_TEST_CRASH=step; crashpoint.At in the code); the next pass must converge with
// no duplicate action, no unescrowed key, and the ledger must say what happened. Everything is counted from
// outside (the docker CLI, Vault's HTTP API), never from swarmguard's own word. Each case uses its own
// lease and ledger objects with a short TTL, so a killed holder's lease lapses in seconds.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

// fdConfig writes a config with this test's own lease (TTL 4 s) and ledger, plus extra.
func fdConfig(t *testing.T, env map[string]string, run, extra string) string {
	t.Helper()
	t.Cleanup(func() {
		for _, name := range []string{"sgfd-lease-" + run, "sgfd-state-" + run} {
			_, _ = docker(t, env, "", "config", "rm", name)
		}
	})
	p := filepath.Join(t.TempDir(), "fd.yaml")
	body := fmt.Sprintf("lease: {name: sgfd-lease-%[1]s, ttl: 4s}\nledger: {name: sgfd-state-%[1]s}\n%[2]s", run, extra)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fdKill runs swarmguard with the crash hook set to step and checks that it died there.
func fdKill(t *testing.T, env map[string]string, outs *tokOutputs, step string, args ...string) {
	t.Helper()
	r := outs.add(runSG(t, env, []string{"SG_TEST_CRASH=" + step}, args...))
	if r.Code == 0 || !strings.Contains(r.Stderr, "crashpoint: killed at "+step) {
		t.Fatalf("swarmguard %s with SG_TEST_CRASH=%s: exit %d, not killed at the step:\n%s", strings.Join(args, " "), step, r.Code, lastLine(r.Stderr))
	}
}

// fdMust runs swarmguard and fails the test unless it exits 0.
func fdMust(t *testing.T, env map[string]string, outs *tokOutputs, args ...string) result {
	t.Helper()
	r := outs.add(runSG(t, env, nil, args...))
	if r.Code != 0 {
		t.Fatalf("swarmguard %s: exit %d:\n%s", strings.Join(args, " "), r.Code, rtTail(r.Stderr, 15))
	}
	return r
}

// fdLedger is the ledger of cfg, as `status --format json` shows it.
func fdLedger(t *testing.T, env map[string]string, outs *tokOutputs, cfg string) []tokLedgerEntry {
	t.Helper()
	r := fdMust(t, env, outs, "status", "--format", "json", "--config", cfg)
	var st struct {
		Ledger []tokLedgerEntry `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status JSON: %v", err)
	}
	return st.Ledger
}

func fdCount(entries []tokLedgerEntry, kind, result string) int {
	n := 0
	for _, e := range entries {
		if e.Kind == kind && e.Result == result {
			n++
		}
	}
	return n
}

// TestFaultDrillsJoinToken: killed after the rotation (before the ledger and the publish) and after the
// publish (before the ledger); the next `run --once`, with the token past its max age, adopts the token
// it finds (changed outside the ledger) instead of rotating again, and Vault holds the current tokens.
// Also: a 10 KiB --reason is accepted and stored cut.
func TestFaultDrillsJoinToken(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	run := fmt.Sprint(time.Now().UnixNano() % 1e8)
	path := "secret/sgfd-" + run + "/join-tokens"
	cfg := fdConfig(t, env, run, fmt.Sprintf("tokens:\n  worker: {max_age: 1s}\n  publish: {vault_path: %q}\nautolock: {mode: \"off\"}\n", path))
	long := strings.Repeat("drill ", 1800) // 10.5 KiB
	fdMust(t, env, &outs, "rotate", "join-token", "worker", "--config", cfg, "--reason", long)
	led := fdLedger(t, env, &outs, cfg)
	e, ok := tokFindEntry(led, "join-token-worker", "", "ok")
	if !ok || len(e.Reason) > 256 || !strings.HasPrefix(long, strings.TrimSuffix(e.Reason, "…")) || !strings.Contains(e.Details["cut"], "reason") {
		t.Errorf("the 10 KiB reason is stored as %d bytes (cut %q); want at most 256, its start, the cut named", len(e.Reason), e.Details["cut"])
	}
	// tokens.after-rotate: before the ledger and the publish. tokens.after-publish: the ledger is written
	// before the publish, so the rotation is recorded and the next pass decides by its age (1 s: due again).
	for _, step := range []string{"tokens.after-rotate", "tokens.after-publish"} {
		w0 := tokJoinToken(t, env, "worker")
		fdKill(t, env, &outs, step, "rotate", "join-token", "worker", "--config", cfg, "--reason", "drill "+step)
		w1 := tokJoinToken(t, env, "worker")
		if w1 == w0 {
			t.Fatalf("%s: the killed rotation did not rotate the worker token", step)
		}
		before := fdLedger(t, env, &outs, cfg)
		recorded := false
		if e, ok := tokFindEntry(before, "join-token-worker", "", "ok"); ok && e.Details["fingerprint"] == tokSHA(w1) {
			recorded = true
		}
		okBefore := fdCount(before, "join-token-worker", "ok")
		fdMust(t, env, &outs, "run", "--once", "--config", cfg)
		w2 := tokJoinToken(t, env, "worker")
		led := fdLedger(t, env, &outs, cfg)
		a, _ := tokFindEntry(led, "join-token-worker", "", "")
		rec := tokVaultRead(t, env, path)
		t.Logf("kill point %s: recorded before the kill: %v; next pass rotated: %v; newest worker entry %s (%s); vault holds the current token: %v",
			step, recorded, w2 != w1, a.Result, a.Reason, rec != nil && rec["worker"] == w2)
		if rec == nil || rec["worker"] != w2 {
			t.Errorf("%s: vault at %s does not hold the current worker token after the next pass", step, path)
		}
		if step == "tokens.after-publish" {
			if !recorded {
				t.Errorf("%s: the ledger has no ok entry of the rotation the process finished before it died", step)
			}
			continue // recorded: the next pass's rotation (1 s max age) is by policy, not a duplicate
		}
		if recorded {
			t.Errorf("%s: the ledger recorded the rotation although the process died before the record", step)
		}
		if w2 != w1 {
			t.Errorf("%s: the next pass rotated the worker token again (a duplicate rotation)", step)
		}
		if a.Result != "adopted" || !strings.Contains(a.Reason, "changed outside the ledger") || a.Details["fingerprint"] != tokSHA(w1) {
			t.Errorf("%s: newest worker entry = %s %q; want adopted, changed outside the ledger, the token's fingerprint", step, a.Result, a.Reason)
		}
		if n := fdCount(led, "join-token-worker", "ok"); n != okBefore {
			t.Errorf("%s: ok worker entries %d -> %d; want no new rotation recorded", step, okBefore, n)
		}
	}
	secretScan(t, outs, tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager"))
}

// TestFaultDrillsUnlockKey: killed after the rotation (before the escrow) and after the escrow (before the
// ledger); the next `run --once` under enforce, with the key past its max age, adopts the key and escrows
// it (or finds it escrowed): one rotation per kill, and Vault always ends holding the swarm's key.
func TestFaultDrillsUnlockKey(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	alEnableAutolock(t, env)
	run := fmt.Sprint(time.Now().UnixNano() % 1e8)
	cfg := fdConfig(t, env, run, "autolock: {mode: enforce, rotate: {max_age: 1s}}\ntokens: {adopt: true}\n")
	path := "secret/swarmguard/" + alSwarmID(t, env) + "/unlock-key"
	fdMust(t, env, &outs, "rotate", "unlock-key", "--config", cfg, "--reason", "drill baseline")
	var keys []string
	for _, step := range []string{"unlock-key.after-rotate", "unlock-key.after-escrow"} {
		k0 := tokUnlockKey(t, env["DOCKER_HOST"])
		fdKill(t, env, &outs, step, "rotate", "unlock-key", "--config", cfg, "--reason", "drill "+step)
		k1 := tokUnlockKey(t, env["DOCKER_HOST"])
		keys = append(keys, k0, k1)
		if k1 == k0 {
			t.Fatalf("%s: the killed rotation did not rotate the key", step)
		}
		escrowedAtKill := tokVaultRead(t, env, path)["fingerprint"] == tokSHA(k1)
		fdMust(t, env, &outs, "run", "--once", "--config", cfg)
		k2 := tokUnlockKey(t, env["DOCKER_HOST"])
		keys = append(keys, k2)
		rec := tokVaultRead(t, env, path)
		led := fdLedger(t, env, &outs, cfg)
		a, _ := tokFindEntry(led, "unlock-key", "", "")
		t.Logf("kill point %s: escrowed at the kill: %v; next pass rotated again: %v; newest unlock-key entry %s (%s); vault holds the current key: %v",
			step, escrowedAtKill, k2 != k1, a.Result, a.Reason, rec != nil && tokSHA(rec["key"]) == tokSHA(k2))
		if k2 != k1 {
			t.Errorf("%s: the next pass rotated the unlock key again: the key in between was never escrowed", step)
		}
		if rec == nil || rec["fingerprint"] != tokSHA(k2) || tokSHA(rec["key"]) != tokSHA(k2) {
			t.Errorf("%s: vault does not hold the swarm's current unlock key after the next pass (an unescrowed key)", step)
		}
		if a.Result != "adopted" || !strings.Contains(a.Reason, "changed outside the ledger") {
			t.Errorf("%s: newest unlock-key entry = %s %q; want adopted, changed outside the ledger", step, a.Result, a.Reason)
		}
		if step == "unlock-key.after-escrow" && !escrowedAtKill {
			t.Errorf("%s: vault did not hold the new key when the process died after the escrow step", step)
		}
	}
	secretScan(t, outs, keys...)
}

// TestFaultDrillsRootCA: killed after the rotation started (before the ledger); the rotation completes in
// the swarm, and the next `run --once` under pki enforce does not start another (ForceRotate, from docker
// info, moves once).
func TestFaultDrillsRootCA(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	run := fmt.Sprint(time.Now().UnixNano() % 1e8)
	extra := "pki:\n  mode: enforce\n  ca: {max_age: 8760h}\n"
	if socks := strings.Fields(env["LAB_CONTROL_SOCKETS"]); len(socks) > 0 {
		extra += "  control_socket: " + socks[0] + "\n"
	}
	extra += "autolock: {mode: \"off\"}\n"
	cfg := fdConfig(t, env, run, extra)
	force := func() string {
		return mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.Spec.CAConfig.ForceRotate}}")
	}
	inProgress := func() bool {
		out, err := docker(t, env, "", "info", "-f", "{{.Swarm.Cluster.RootRotationInProgress}}")
		return err != nil || out != "false"
	}
	f0 := force()
	fdKill(t, env, &outs, "ca.after-start", "rotate", "ca", "--config", cfg, "--reason", "drill ca.after-start")
	f1 := force()
	if f1 == f0 {
		t.Fatalf("the killed CA rotation did not bump ForceRotate (%s)", f0)
	}
	eventually(t, 2*time.Minute, "the root CA rotation to complete", func() bool { return !inProgress() })
	fdMust(t, env, &outs, "run", "--once", "--config", cfg)
	f2 := force()
	led := fdLedger(t, env, &outs, cfg)
	t.Logf("kill point ca.after-start: ForceRotate %s -> %s at the kill, %s after the next pass; ca entries in the ledger: %d ok, %d adopted",
		f0, f1, f2, fdCount(led, "ca", "ok"), fdCount(led, "ca", "adopted"))
	if f2 != f1 {
		t.Errorf("the next pass started another root CA rotation (ForceRotate %s -> %s)", f1, f2)
	}
	// The audit trail shows the rotation the killed process never recorded: the next pass adopts it, once.
	if e, ok := tokFindEntry(led, "ca", "", "adopted"); !ok || e.Details["force_rotate"] != f1 || fdCount(led, "ca", "adopted") != 1 {
		t.Errorf("ledger ca entries after the next pass: %d adopted, newest %+v; want one adopted entry naming ForceRotate %s",
			fdCount(led, "ca", "adopted"), e, f1)
	}
	fdMust(t, env, &outs, "run", "--once", "--config", cfg)
	if n := fdCount(fdLedger(t, env, &outs, cfg), "ca", "adopted"); n != 1 {
		t.Errorf("a second pass adopted the rotation again: %d adopted entries; want 1", n)
	}
	eventually(t, 2*time.Minute, "no root CA rotation in progress", func() bool { return !inProgress() })
}

// TestFaultDrillsNetworkRemediation: killed after the twin is attached to the service, and after the old
// network is detached; the next `remediate --apply` resumes: one twin, the service on it only, the old
// network removed, the ledger's network entry ok.
func TestFaultDrillsNetworkRemediation(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	for _, step := range []string{"network.after-attach", "network.after-detach"} {
		run := fmt.Sprint(time.Now().UnixNano() % 1e8)
		cfg := fdConfig(t, env, run, "autolock: {mode: \"off\"}\n")
		plain, svc := "sgfd-net-"+run, "sgfd-app-"+run
		twin := plain + "-enc"
		t.Cleanup(func() {
			_, _ = docker(t, env, "", "service", "rm", svc)
			nwRemove(t, env, plain, twin)
		})
		mustDocker(t, env, "", "network", "create", "-d", "overlay", plain)
		mustDocker(t, env, "", "service", "create", "-d", "--name", svc, "--replicas", "1", "--no-resolve-image",
			"--stop-grace-period", "1s", "--endpoint-mode", "dnsrr", "--network", plain, "swarmguard-testapp:lab", "sleep")
		eventually(t, 90*time.Second, "a running task of "+svc, func() bool {
			out, err := docker(t, env, "", "service", "ps", svc, "--filter", "desired-state=running", "--format", "{{.CurrentState}}")
			return err == nil && strings.Contains(out, "Running")
		})
		fdKill(t, env, &outs, step, "remediate", "network", plain, "--apply", "--config", cfg, "--reason", "drill "+step)
		fdMust(t, env, &outs, "remediate", "network", plain, "--apply", "--config", cfg, "--reason", "drill resume")
		twins := mustDocker(t, env, "", "network", "ls", "-q", "--filter", "label=swarmguard.twin-of="+plain)
		nets := mustDocker(t, env, "", "service", "inspect", svc, "-f", "{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}")
		twinID := mustDocker(t, env, "", "network", "inspect", twin, "-f", "{{.ID}}")
		_, oldErr := docker(t, env, "", "network", "inspect", plain)
		led := fdLedger(t, env, &outs, cfg)
		n, _ := tokFindEntry(led, "network", "", "")
		t.Logf("kill point %s: twins %d; service networks %q (twin %s); old network gone: %v; newest network entry %s, services %q",
			step, len(strings.Fields(twins)), strings.TrimSpace(nets), twinID[:12], oldErr != nil, n.Result, n.Details["services"])
		if len(strings.Fields(twins)) != 1 {
			t.Errorf("%s: %d twin networks of %s; want exactly 1 (no duplicate)", step, len(strings.Fields(twins)), plain)
		}
		if f := strings.Fields(nets); len(f) != 1 || !strings.HasPrefix(twinID, f[0]) && f[0] != twinID {
			t.Errorf("%s: service on %v; want the twin %s only", step, f, twinID)
		}
		if oldErr == nil {
			t.Errorf("%s: the old network %s is still there after the resumed remediation", step, plain)
		}
		if n.Result != "ok" || n.Details["removed_old"] != "true" {
			t.Errorf("%s: newest network entry = %+v; want ok, removed_old true", step, n)
		}
	}
}

// TestFaultDrillsLeaseDeleted: two controllers; the lease object is deleted while one holds it. Polled from
// outside (each replica's /readyz) every 100 ms: never two holders, and one holder again after a TTL or two.
func TestFaultDrillsLeaseDeleted(t *testing.T) {
	env := labEnv(t)
	hosts, nodes := rtManagerSockets(t, env, 2)
	run := fmt.Sprint(time.Now().UnixNano() % 1e8)
	const ttl = 6 * time.Second
	cfg := fdConfig(t, env, run, "autolock: {mode: \"off\"}\ntokens: {adopt: true}\n")
	cfg2 := filepath.Join(filepath.Dir(cfg), "fd-ttl.yaml")
	b, _ := os.ReadFile(cfg)
	if err := os.WriteFile(cfg2, []byte(strings.Replace(string(b), "ttl: 4s", "ttl: 6s", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	a := rtStartReplica(t, env, hosts[0], nodes[0], cfg2)
	bb := rtStartReplica(t, env, hosts[1], nodes[1], cfg2)
	holders := func() int {
		n := 0
		for _, r := range []*rtReplica{a, bb} {
			if r.role() == "holder" {
				n++
			}
		}
		return n
	}
	eventually(t, 4*ttl, "one holder", func() bool { return holders() == 1 })
	if _, err := docker(t, env, "", "config", "rm", "sgfd-lease-"+run); err != nil {
		t.Fatalf("removing the lease object: %v", err)
	}
	deleted := time.Now()
	both, none, samples := 0, 0, 0
	var back time.Duration
	for time.Since(deleted) < 4*ttl {
		n := holders()
		samples++
		switch n {
		case 2:
			both++
		case 0:
			none++
		case 1:
			if back == 0 && none > 0 {
				back = time.Since(deleted)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("lease deleted while held: %d samples over %s, two holders in %d, none in %d; a holder again %s after the delete (TTL %s)",
		samples, 4*ttl, both, none, back.Round(100*time.Millisecond), ttl)
	if both != 0 {
		t.Errorf("two replicas said holder at once in %d of %d samples", both, samples)
	}
	if holders() != 1 {
		t.Errorf("after %s: %d holders; want 1", 4*ttl, holders())
	}
	if none == 0 {
		t.Errorf("no sample without a holder after the delete: the old holder kept acting, or the new one acted before a TTL")
	}
}

// TestFaultDrillsLedgerFailures: on the real engine, 60 failures of a kind (each its own error) and then the
// same failure 60 times after its last ok entry: the ok entry (the credential's clock) survives, what
// `status` shows agrees, the repeats are one entry with a count, and the object stays within its budget
// (read from outside with docker config inspect).
func TestFaultDrillsLedgerFailures(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	run := fmt.Sprint(time.Now().UnixNano() % 1e8)
	cfg := fdConfig(t, env, run, "autolock: {mode: \"off\"}\n")
	c, err := swarm.New(swarm.Options{Host: env["DOCKER_HOST"], APITimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	l := c.NewLedger("sgfd-state-"+run, swarm.DefaultLedgerMaxPerKind)
	at := time.Now().Add(-2 * time.Hour)
	if _, err := l.Append(t.Context(), swarm.Entry{Kind: swarm.KindUnlockKeyEscrow, At: at, Actor: "drill", Result: swarm.ResultOK,
		Details: map[string]string{"fingerprint": "f-ok"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 60 {
		if _, err := l.Append(t.Context(), swarm.Entry{Kind: swarm.KindUnlockKeyEscrow, At: at.Add(time.Duration(i+1) * time.Minute), Actor: "drill",
			Result: swarm.ResultFailed, Details: map[string]string{"error": fmt.Sprintf("attempt %d: vault sealed", i)}}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	for i := range 60 {
		if _, err := l.Append(t.Context(), swarm.Entry{Kind: swarm.KindUnlockKeyEscrow, At: at.Add(time.Duration(61+i) * time.Minute), Actor: "drill",
			Result: swarm.ResultFailed, Details: map[string]string{"error": "vault sealed"}}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	led := fdLedger(t, env, &outs, cfg)
	ok, found := tokFindEntry(led, "unlock-key-escrow", "", "ok")
	newest, _ := tokFindEntry(led, "unlock-key-escrow", "", "")
	labels := mustDocker(t, env, "", "config", "inspect", "sgfd-state-"+run, "-f", "{{json .Spec.Labels}}")
	var lb map[string]string
	if err := json.Unmarshal([]byte(labels), &lb); err != nil {
		t.Fatal(err)
	}
	size := 0
	for k, v := range lb {
		size += len(k) + len(v)
	}
	t.Logf("120 failures after an ok entry: %d entries kept, the ok entry kept: %v, newest repeats %s; %d labels, %d bytes",
		len(led), found, newest.Details["repeats"], len(lb), size)
	if !found || ok.Details["fingerprint"] != "f-ok" {
		t.Errorf("the kind's ok entry was evicted by failures: %+v", ok)
	}
	if newest.Details["repeats"] != "60" || newest.Details["error"] != "vault sealed" {
		t.Errorf("newest entry = %+v; want the 60 identical failures as one, repeats 60", newest)
	}
	// The history keeps the newest 50 (the ok entry trimmed from it, oldest first); the ok entry is kept as
	// state, apart from the history, and status shows both.
	if len(led) != swarm.DefaultLedgerMaxPerKind+1 || size > swarm.LedgerByteBudget+swarm.StateByteBudget {
		t.Errorf("%d entries, %d bytes; want %d entries (history and state), at most %d bytes", len(led), size, swarm.DefaultLedgerMaxPerKind+1, swarm.LedgerByteBudget+swarm.StateByteBudget)
	}
}
