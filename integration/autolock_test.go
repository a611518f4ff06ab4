//go:build integration

package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// alManagers returns the sockets of the lab's managers, the one DOCKER_HOST names first.
func alManagers(t testing.TB, env map[string]string) []string {
	t.Helper()
	var out []string
	for _, sock := range strings.Fields(env["LAB_NODES"]) {
		role, err := tokQuiet(t, sock, "", "info", "-f", "{{.Swarm.ControlAvailable}}")
		if err == nil && role == "true" {
			if sock == env["DOCKER_HOST"] {
				out = append([]string{sock}, out...)
			} else {
				out = append(out, sock)
			}
		}
	}
	if len(out) < 2 {
		t.Fatalf("the lab has %d reachable managers; these tests need at least 2", len(out))
	}
	return out
}

func alNodeNumber(sock string) string {
	base := filepath.Base(strings.TrimPrefix(sock, "unix://"))
	return strings.TrimSuffix(strings.TrimPrefix(base, "n"), ".sock")
}

func alState(t testing.TB, sock string) string {
	st, err := tokQuiet(t, sock, "", "info", "-f", "{{.Swarm.LocalNodeState}}")
	if err != nil {
		return "down"
	}
	return st
}

// alEnableAutolock turns autolock on with the docker CLI (whose output holds the key, so it is not shown)
// and makes sure the test leaves the lab as it found it: every manager started and unlocked, autolock
// off, Vault running.
func alEnableAutolock(t *testing.T, env map[string]string) {
	t.Helper()
	alRestoreAtEnd(t, env)
	if _, err := tokQuiet(t, env["DOCKER_HOST"], "", "swarm", "update", "--autolock=true"); err != nil {
		t.Fatalf("turning autolock on failed: %v", err)
	}
}

func alRestoreAtEnd(t *testing.T, env map[string]string) {
	t.Helper()
	t.Cleanup(func() {
		host := env["DOCKER_HOST"]
		key, _ := tokQuiet(t, host, "", "swarm", "unlock-key", "-q")
		for _, sock := range strings.Fields(env["LAB_NODES"]) {
			st := alState(t, sock)
			if st == "down" {
				lab(t, env, "node", "start", alNodeNumber(sock))
				st = alState(t, sock)
			}
			if st == "locked" && key != "" {
				if _, err := tokQuiet(t, sock, key+"\n", "swarm", "unlock"); err != nil {
					t.Errorf("cleanup: unlocking %s failed", sock)
				}
			}
		}
		if _, err := tokQuiet(t, host, "", "swarm", "update", "--autolock=false"); err != nil {
			t.Errorf("cleanup: turning autolock off failed: %v", err)
		}
		// Every manager reachable again, so the next test starts from a whole swarm.
		eventually(t, 90*time.Second, "every manager reachable", func() bool {
			out, err := docker(t, env, "", "node", "ls", "--filter", "role=manager", "--format", "{{.ManagerStatus}}")
			return err == nil && !strings.Contains(out, "Unreachable") && out != ""
		})
	})
}

// alVaultBackAtEnd restarts the lab's Vault at the end if a test stopped it.
func alVaultBackAtEnd(t *testing.T, env map[string]string) {
	t.Cleanup(func() {
		resp, err := http.Get(env["VAULT_ADDR"] + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			return
		}
		lab(t, env, "vault", "start")
	})
}

func alSwarmID(t testing.TB, env map[string]string) string {
	return mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.ID}}")
}

func TestUnlockKeyRotateEscrowRestart(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	alEnableAutolock(t, env)
	mgrs := alManagers(t, env)
	k0 := tokUnlockKey(t, mgrs[0])
	id := alSwarmID(t, env)

	reason := fmt.Sprintf("it-unlock-%d", time.Now().UnixNano())
	start := time.Now()
	r := outs.add(runSG(t, env, nil, "rotate", "unlock-key", "--reason", reason, "--format", "json"))
	if r.Code != 0 {
		secretScan(t, outs, k0)
		t.Fatalf("rotate unlock-key exited %d: %s", r.Code, r.Stderr)
	}
	t.Logf("rotate unlock-key with escrow took %s", time.Since(start).Round(time.Millisecond))
	k1 := tokUnlockKey(t, mgrs[0])
	if k1 == k0 {
		t.Fatalf("the unlock key did not change")
	}
	got := tokParse(t, r)
	if len(got.Rotated) != 1 || got.Rotated[0].Kind != "unlock-key" || got.Rotated[0].Fingerprint != tokSHA(k1) || got.Rotated[0].Key != "" {
		t.Errorf("rotate output = %+v; want the new key's fingerprint and no key", got.Rotated)
	}
	wantPath := "secret/swarmguard/" + id + "/unlock-key"
	if got.Escrow == nil || !got.Escrow.Verified || got.Escrow.Path != wantPath || got.Escrow.Fingerprint != tokSHA(k1) {
		t.Fatalf("escrow = %+v; want verified at %s", got.Escrow, wantPath)
	}

	// Vault holds the key at the escrow path, with its swarm ID and fingerprint.
	rec := tokVaultRead(t, env, wantPath)
	if rec == nil || rec["key"] != k1 || rec["swarm_id"] != id || rec["fingerprint"] != tokSHA(k1) || rec["time"] == "" {
		t.Fatalf("vault at %s does not hold the new key with swarm_id, fingerprint and time", wantPath)
	}
	ledger := tokLedger(t, env, &outs)
	if e, ok := tokFindEntry(ledger, "unlock-key", reason, "ok"); !ok || e.Details["old_fingerprint"] != tokSHA(k0) || e.Details["new_fingerprint"] != tokSHA(k1) {
		t.Errorf("ledger unlock-key entry = %+v, %v; want old and new fingerprints", e, ok)
	}
	if _, ok := tokFindEntry(ledger, "unlock-key-escrow", reason, "ok"); !ok {
		t.Errorf("the ledger has no unlock-key-escrow entry")
	}

	// Restarting one manager's dockerd leaves it locked...
	victim := mgrs[len(mgrs)-1]
	n := alNodeNumber(victim)
	lab(t, env, "node", "stop", n)
	lab(t, env, "node", "start", n)
	eventually(t, 60*time.Second, "the restarted manager to report its state", func() bool { return alState(t, victim) != "down" })
	if st := alState(t, victim); st != "locked" {
		t.Fatalf("the restarted manager is %q; want locked", st)
	}
	// ...and the key read back from Vault unlocks it.
	fromVault := tokVaultRead(t, env, wantPath)["key"]
	out, err := tokQuiet(t, victim, fromVault+"\n", "swarm", "unlock")
	outs = append(outs, out)
	if err != nil {
		secretScan(t, outs, k0, k1)
		t.Fatalf("unlocking with the key from vault failed: %v: %s", err, out)
	}
	eventually(t, 60*time.Second, "the unlocked manager to be active", func() bool { return alState(t, victim) == "active" })
	secretScan(t, outs, k0, k1)
}

func TestEscrowVaultDown(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	alEnableAutolock(t, env)
	alVaultBackAtEnd(t, env)
	mgrs := alManagers(t, env)
	k0 := tokUnlockKey(t, mgrs[0])
	id := alSwarmID(t, env)

	lab(t, env, "vault", "stop")
	r := outs.add(runSG(t, env, nil, "rotate", "unlock-key", "--reason", "it-vault-down"))
	k1 := tokUnlockKey(t, mgrs[0])
	secretScan(t, outs, k0, k1)
	if r.Code != 1 {
		t.Fatalf("rotate unlock-key with vault stopped exited %d; want 1: %s", r.Code, r.Stderr)
	}
	if k1 == k0 {
		t.Fatalf("the unlock key was not rotated")
	}
	for _, want := range []string{"is safe in the swarm", "swarmguard escrow unlock-key"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr does not say %q: %s", want, r.Stderr)
		}
	}
	t.Logf("with vault down: %s", lastLine(r.Stderr))

	// Dev-mode Vault starts empty: escrow writes the current key there.
	lab(t, env, "vault", "start")
	r = outs.add(runSG(t, env, nil, "escrow", "unlock-key", "--format", "json"))
	if r.Code != 0 {
		secretScan(t, outs, k0, k1)
		t.Fatalf("escrow unlock-key exited %d: %s", r.Code, r.Stderr)
	}
	got := tokParse(t, r)
	path := "secret/swarmguard/" + id + "/unlock-key"
	if got.Escrow == nil || !got.Escrow.Verified || got.Escrow.Fingerprint != tokSHA(k1) || got.Fingerprint != tokSHA(k1) || got.Escrow.Path != path {
		t.Errorf("escrow output = %+v; want the current key's fingerprint, verified", got.Escrow)
	}
	rec := tokVaultRead(t, env, path)
	if rec == nil || rec["fingerprint"] != tokSHA(k1) || tokSHA(rec["key"]) != tokSHA(k1) || rec["swarm_id"] != id {
		t.Errorf("vault at %s does not hold the current key with a matching fingerprint", path)
	}
	// A second escrow finds the work done.
	r = outs.add(runSG(t, env, nil, "escrow", "unlock-key", "--format", "json"))
	if r.Code != 0 || !strings.Contains(r.Stdout, `"unchanged": true`) {
		t.Errorf("a second escrow exited %d and wrote again: %s", r.Code, r.Stdout)
	}
	ledger := tokLedger(t, env, &outs)
	if _, ok := tokFindEntry(ledger, "unlock-key-escrow", "it-vault-down", "failed"); !ok {
		t.Errorf("the ledger has no failed unlock-key-escrow entry for the vault-down rotation")
	}
	if e, ok := tokFindEntry(ledger, "unlock-key-escrow", "manual escrow", "ok"); !ok || e.Details["fingerprint"] != tokSHA(k1) {
		t.Errorf("the ledger has no successful escrow of the current key")
	}
	secretScan(t, outs, k0, k1)
}

func TestUnlockKeyRefusals(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	alRestoreAtEnd(t, env)
	// Autolock off: refused, nothing changes.
	r := outs.add(runSG(t, env, nil, "rotate", "unlock-key"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "autolock is off") {
		t.Errorf("rotate unlock-key with autolock off exited %d: %s; want 1 and a clear refusal", r.Code, r.Stderr)
	}
	// A manager down: refused without --force.
	alEnableAutolock(t, env)
	mgrs := alManagers(t, env)
	k0 := tokUnlockKey(t, mgrs[0])
	victim := mgrs[len(mgrs)-1]
	lab(t, env, "node", "stop", alNodeNumber(victim))
	eventually(t, 60*time.Second, "the stopped manager to be unreachable", func() bool {
		out, err := docker(t, env, "", "node", "ls", "--filter", "role=manager", "--format", "{{.ManagerStatus}}")
		return err == nil && strings.Contains(out, "Unreachable")
	})
	r = outs.add(runSG(t, env, nil, "rotate", "unlock-key"))
	if r.Code != 1 || !strings.Contains(r.Stderr, "not reachable") || !strings.Contains(r.Stderr, "--force") {
		t.Errorf("rotate unlock-key with a manager down exited %d: %s; want 1 naming --force", r.Code, r.Stderr)
	}
	if k := tokUnlockKey(t, mgrs[0]); k != k0 {
		t.Errorf("the key changed although the rotation was refused")
	}
	secretScan(t, outs, k0)
}

func TestAutolockEnforceRunOnce(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	alRestoreAtEnd(t, env)
	cfg := filepath.Join(t.TempDir(), "enforce.yaml")
	if err := os.WriteFile(cfg, []byte("autolock: {mode: enforce}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if on := mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}"); on != "false" {
		t.Fatalf("autolock is %s before the test; want false", on)
	}
	r := outs.add(runSG(t, env, nil, "run", "--once", "--config", cfg))
	if on := mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}"); on != "true" {
		t.Fatalf("run --once under autolock.mode enforce left autolock %s (exit %d): %s", on, r.Code, r.Stderr)
	}
	key := tokUnlockKey(t, env["DOCKER_HOST"])
	secretScan(t, outs, key)
	if r.Code != 0 {
		t.Errorf("run --once exited %d: %s", r.Code, r.Stderr)
	}
	rec := tokVaultRead(t, env, "secret/swarmguard/"+alSwarmID(t, env)+"/unlock-key")
	if rec == nil || rec["fingerprint"] != tokSHA(key) || tokSHA(rec["key"]) != tokSHA(key) {
		t.Errorf("vault does not hold the first unlock key after autolock was turned on")
	}
	ledger := tokLedger(t, env, &outs)
	if e, ok := tokFindEntry(ledger, "unlock-key", "", "ok"); !ok || e.Details["action"] != "enable-autolock" {
		t.Errorf("newest unlock-key entry = %+v; want the enable-autolock action", e)
	}
	// A second pass finds nothing to do: the key is fresh and escrowed.
	r = outs.add(runSG(t, env, nil, "run", "--once", "--config", cfg))
	if k := tokUnlockKey(t, env["DOCKER_HOST"]); k != key || r.Code != 0 {
		t.Errorf("a second run --once exited %d, key changed %v; want 0 and unchanged", r.Code, k != key)
	}
	secretScan(t, outs, key)
}

// TestUnlockKeyWarnsVaultInSwarm: a Vault address that names a service of this swarm, or a node's address
// with a port a service publishes, draws the warning (the dry run checks everything before it would act);
// the lab's real Vault, outside the swarm, does not.
func TestUnlockKeyWarnsVaultInSwarm(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	alEnableAutolock(t, env)
	k0 := tokUnlockKey(t, env["DOCKER_HOST"])
	name := fmt.Sprintf("sgtokvault%d", time.Now().UnixNano()%100000)
	mustDocker(t, env, "", "service", "create", "--detach", "--no-resolve-image", "--name", name,
		"--publish", "published=18202,target=8200", "--stop-grace-period", "1s", "swarmguard-testapp:lab", "sleep")
	t.Cleanup(func() { _, _ = docker(t, env, "", "service", "rm", name) })
	node := strings.Split(strings.Fields(env["LAB_MANAGER_ADDRS"])[1], ":")[0]

	cases := []struct {
		name, addr string
		warn       bool
	}{
		{name: "service name", addr: "http://" + name + ":8200", warn: true},
		{name: "node address and published port", addr: "http://" + node + ":18202", warn: true},
		{name: "the lab's vault outside the swarm", addr: env["VAULT_ADDR"], warn: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := outs.add(runSG(t, env, []string{"VAULT_ADDR=" + tc.addr}, "rotate", "unlock-key", "--dry-run", "--log-format", "json"))
			warned := strings.Contains(r.Stderr, "vault escrow target may run in this swarm")
			if warned != tc.warn {
				t.Errorf("VAULT_ADDR=%s: warned %v; want %v (exit %d): %s", tc.addr, warned, tc.warn, r.Code, r.Stderr)
			}
			if r.Code != 0 || !strings.Contains(r.Stdout, "would rotate the unlock key") {
				t.Errorf("dry run exited %d: %s", r.Code, r.Stdout)
			}
		})
	}
	if k := tokUnlockKey(t, env["DOCKER_HOST"]); k != k0 {
		t.Errorf("a dry run changed the unlock key")
	}
	secretScan(t, outs, k0)
}
