//go:build integration

package integration

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests prove issue 3 (join tokens and autolock) on the lab: they run the real binary against real
// dockerd nodes and a real Vault. Tokens and keys are secrets even here: no helper in this file logs a
// command line that carries one, or the output of a command that prints one, and every test ends with a
// scan of everything swarmguard printed for every token and key it saw.

// tokQuiet runs the docker CLI against host with stdin, and never logs its arguments or its output (they
// may carry a token or a key): the caller decides what to check and scan.
func tokQuiet(t testing.TB, host, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", host}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// tokSecret reads one secret value with the docker CLI (join-token -q, unlock-key -q), failing without
// printing what came back.
func tokSecret(t testing.TB, host string, args ...string) string {
	t.Helper()
	out, err := tokQuiet(t, host, "", args...)
	if err != nil || out == "" || strings.Contains(out, " ") {
		t.Fatalf("docker %s on %s failed (%v); output withheld: it may hold a secret", args[0], host, err)
	}
	return out
}

func tokJoinToken(t testing.TB, env map[string]string, kind string) string {
	return tokSecret(t, env["DOCKER_HOST"], "swarm", "join-token", "-q", kind)
}

func tokUnlockKey(t testing.TB, host string) string {
	return tokSecret(t, host, "swarm", "unlock-key", "-q")
}

func tokSHA(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tokOutputs collects everything a test captured, for the final secret scan.
type tokOutputs []string

func (o *tokOutputs) add(r result) result {
	*o = append(*o, r.Stdout, r.Stderr)
	return r
}

// tokLedgerEntry is a ledger entry as `swarmguard status --format json` shows it.
type tokLedgerEntry struct {
	Kind    string            `json:"kind"`
	At      string            `json:"at"`
	Actor   string            `json:"actor"`
	Reason  string            `json:"reason"`
	Result  string            `json:"result"`
	Details map[string]string `json:"details"`
}

func tokLedger(t testing.TB, env map[string]string, outs *tokOutputs) []tokLedgerEntry {
	t.Helper()
	r := outs.add(runSG(t, env, nil, "status", "--format", "json"))
	if r.Code != 0 {
		t.Fatalf("status exited %d: %s", r.Code, r.Stderr)
	}
	var st struct {
		Ledger []tokLedgerEntry `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status JSON: %v", err)
	}
	return st.Ledger
}

func tokFindEntry(entries []tokLedgerEntry, kind, reason, result string) (tokLedgerEntry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Kind == kind && (reason == "" || e.Reason == reason) && (result == "" || e.Result == result) {
			return e, true
		}
	}
	return tokLedgerEntry{}, false
}

// tokBareNode adds a fresh dockerd that is in no swarm, removed again at the end of the test.
func tokBareNode(t *testing.T, env map[string]string) (sock, ip string) {
	t.Helper()
	out := lab(t, env, "node", "add", "bare")
	f := strings.Fields(lastLine(out))
	if len(f) != 3 {
		t.Fatalf("lab node add bare printed %q; want \"N SOCKET IP\"", out)
	}
	n := f[0]
	t.Cleanup(func() { lab(t, env, "node", "remove", n) })
	return f[1], f[2]
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// tokManagerAddr is one manager's swarm address (host:2377).
func tokManagerAddr(t testing.TB, env map[string]string) string {
	f := strings.Fields(env["LAB_MANAGER_ADDRS"])
	if len(f) == 0 {
		t.Fatalf("lab env has no LAB_MANAGER_ADDRS")
	}
	return f[0]
}

type tokRotateJSON struct {
	Rotated []struct {
		Kind           string `json:"kind"`
		Fingerprint    string `json:"fingerprint"`
		OldFingerprint string `json:"old_fingerprint"`
		Masked         string `json:"masked"`
		At             string `json:"at"`
		Token          string `json:"token"`
		Key            string `json:"key"`
	} `json:"rotated"`
	Escrow *struct {
		Path        string `json:"path"`
		Version     int    `json:"version"`
		Fingerprint string `json:"fingerprint"`
		Verified    bool   `json:"verified"`
	} `json:"escrow"`
	Fingerprint string `json:"fingerprint"`
}

func tokParse(t testing.TB, r result) tokRotateJSON {
	t.Helper()
	var out tokRotateJSON
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	return out
}

func TestTokensRotateWorker(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	w0, m0 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	reason := fmt.Sprintf("it-worker-%d", time.Now().UnixNano())

	start := time.Now()
	r := outs.add(runSG(t, env, nil, "rotate", "join-token", "worker", "--reason", reason, "--format", "json"))
	if r.Code != 0 {
		t.Fatalf("rotate join-token worker exited %d: %s", r.Code, r.Stderr)
	}
	t.Logf("rotate join-token worker took %s", time.Since(start).Round(time.Millisecond))
	w1, m1 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	if w1 == w0 {
		t.Fatalf("the worker token did not change")
	}
	if m1 != m0 {
		t.Errorf("the manager token changed on a worker rotation")
	}
	got := tokParse(t, r)
	if len(got.Rotated) != 1 || got.Rotated[0].Kind != "worker" || got.Rotated[0].Fingerprint != tokSHA(w1) ||
		got.Rotated[0].OldFingerprint != tokSHA(w0) || got.Rotated[0].Token != "" || got.Rotated[0].At == "" {
		t.Errorf("rotate output = %+v; want one worker rotation with the new token's fingerprint and no token", got.Rotated)
	}

	e, ok := tokFindEntry(tokLedger(t, env, &outs), "join-token-worker", reason, "ok")
	if !ok {
		t.Fatalf("the ledger has no join-token-worker entry with reason %q", reason)
	}
	if e.Details["old_fingerprint"] != tokSHA(w0) || e.Details["new_fingerprint"] != tokSHA(w1) || !strings.HasPrefix(e.Actor, "cli:") {
		t.Errorf("ledger entry = actor %q details %v; want the CLI actor and the old and new fingerprints", e.Actor, e.Details)
	}

	// A fresh node joins with the new token...
	mgr := tokManagerAddr(t, env)
	sockA, ipA := tokBareNode(t, env)
	start = time.Now()
	out, err := tokQuiet(t, sockA, "", "swarm", "join", "--token", w1, "--advertise-addr", ipA, mgr)
	outs = append(outs, out)
	if err != nil {
		secretScan(t, []string{out}, w0, w1, m0, m1)
		t.Fatalf("a fresh node could not join with the new worker token: %v: %s", err, out)
	}
	t.Logf("joined with the new worker token in %s", time.Since(start).Round(time.Millisecond))
	if st, _ := tokQuiet(t, sockA, "", "info", "-f", "{{.Swarm.LocalNodeState}}"); st != "active" {
		t.Errorf("the node that joined with the new token is %q; want active", st)
	}

	// ...and a second fresh node cannot join with the old one.
	sockB, ipB := tokBareNode(t, env)
	start = time.Now()
	out, err = tokQuiet(t, sockB, "", "swarm", "join", "--token", w0, "--advertise-addr", ipB, mgr)
	outs = append(outs, out)
	secretScan(t, []string{out}, w0, w1, m0, m1)
	if err == nil {
		t.Fatalf("a fresh node joined with the old worker token")
	}
	t.Logf("joining with the old worker token failed after %s: %s", time.Since(start).Round(time.Millisecond), out)
	if !strings.Contains(out, "valid join token is necessary") {
		t.Errorf("joining with the old token failed for another reason: %s", out)
	}
	if st, _ := tokQuiet(t, sockB, "", "info", "-f", "{{.Swarm.LocalNodeState}}"); st == "active" {
		t.Errorf("the node with the old token is active in the swarm")
	}
	if m2 := tokJoinToken(t, env, "manager"); m2 != m0 {
		t.Errorf("the manager token changed")
	}
	secretScan(t, outs, w0, w1, m0, m1)
}

func TestTokensDryRunAndMasking(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	w0, m0 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	r := outs.add(runSG(t, env, nil, "rotate", "join-token", "all", "--dry-run"))
	if r.Code != 0 || !strings.Contains(r.Stdout, "would rotate the worker join token") || !strings.Contains(r.Stdout, "would rotate the manager join token") {
		t.Errorf("dry run exited %d, printed %q; want both planned", r.Code, r.Stdout)
	}
	if tokJoinToken(t, env, "worker") != w0 || tokJoinToken(t, env, "manager") != m0 {
		t.Fatalf("a dry run changed a token")
	}
	r = outs.add(runSG(t, env, nil, "rotate", "join-token", "all", "--reason", "it-masking"))
	w1, m1 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	if r.Code != 0 || w1 == w0 || m1 == m0 {
		t.Fatalf("rotate join-token all exited %d, worker changed %v, manager changed %v", r.Code, w1 != w0, m1 != m0)
	}
	for _, fp := range []string{tokSHA(w1)[:12], tokSHA(m1)[:12], w1[len(w1)-4:], m1[len(m1)-4:]} {
		if !strings.Contains(r.Stdout, fp) {
			t.Errorf("table output %q lacks the masked token part %q", r.Stdout, fp)
		}
	}
	secretScan(t, outs, w0, w1, m0, m1)

	// --show prints the token, and only then.
	r = runSG(t, env, nil, "rotate", "join-token", "worker", "--show", "--format", "json", "--reason", "it-show")
	w2 := tokJoinToken(t, env, "worker")
	if got := tokParse(t, r); r.Code != 0 || len(got.Rotated) != 1 || got.Rotated[0].Token != w2 {
		t.Errorf("--show output does not hold the new token (exit %d)", r.Code)
	}
	secretScan(t, []string{r.Stderr}, w2)
	secretScan(t, outs, w2)
}

func TestTokensRunOnceMaxAge(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	dir := t.TempDir()
	writeCfg := func(name, workerMax string) string {
		p := filepath.Join(dir, name)
		body := fmt.Sprintf("tokens:\n  worker: {max_age: %s}\n  manager: {max_age: 720h}\nautolock: {mode: \"off\"}\n", workerMax)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	short, long := writeCfg("short.yaml", "1s"), writeCfg("long.yaml", "720h")

	r := outs.add(runSG(t, env, nil, "rotate", "join-token", "all", "--reason", "it-run-once"))
	if r.Code != 0 {
		t.Fatalf("rotate exited %d: %s", r.Code, r.Stderr)
	}
	w1, m1 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	time.Sleep(1100 * time.Millisecond) // the 1s max age must pass; the schedule itself is not waited for

	r = outs.add(runSG(t, env, nil, "run", "--once", "--config", short))
	w2, m2 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	if w2 == w1 {
		t.Fatalf("run --once with worker.max_age 1s did not rotate the worker token (exit %d): %s", r.Code, r.Stderr)
	}
	if m2 != m1 {
		t.Errorf("run --once rotated the manager token, which is 720h from due")
	}
	if r.Code != 0 {
		t.Errorf("run --once exited %d: %s", r.Code, r.Stderr)
	}
	e, ok := tokFindEntry(tokLedger(t, env, &outs), "join-token-worker", "", "ok")
	if !ok || !strings.HasPrefix(e.Reason, "scheduled: worker token older than 1s") || e.Details["new_fingerprint"] != tokSHA(w2) {
		t.Errorf("newest join-token-worker entry = %+v; want the scheduled rotation to the current token", e)
	}

	r = outs.add(runSG(t, env, nil, "run", "--once", "--config", long))
	if w3 := tokJoinToken(t, env, "worker"); w3 != w2 || r.Code != 0 {
		t.Errorf("run --once with worker.max_age 720h: exit %d, worker token changed %v; want 0 and unchanged", r.Code, w3 != w2)
	}
	secretScan(t, outs, w1, w2, m1, m2)
}

// tokVaultRead reads a KV v2 secret straight from the lab's Vault (path as `vault kv get` takes it, on the
// secret/ mount), or nil when there is none.
func tokVaultRead(t testing.TB, env map[string]string, path string) map[string]string {
	t.Helper()
	api := env["VAULT_ADDR"] + "/v1/secret/data/" + strings.TrimPrefix(path, "secret/")
	req, _ := http.NewRequest(http.MethodGet, api, nil)
	req.Header.Set("X-Vault-Token", env["VAULT_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("reading %s from vault: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil
	}
	var body struct {
		Data struct {
			Data map[string]string `json:"data"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		t.Fatalf("reading %s from vault: status %d", path, resp.StatusCode)
	}
	return body.Data.Data
}

func TestTokensPublishToVault(t *testing.T) {
	env := labEnv(t)
	var outs tokOutputs
	path := fmt.Sprintf("secret/swarm/join-tokens-it-%d", time.Now().UnixNano())
	cfg := filepath.Join(t.TempDir(), "publish.yaml")
	body := fmt.Sprintf("tokens:\n  publish: {vault_path: %q}\nautolock: {mode: \"off\"}\n", path)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	id := mustDocker(t, env, "", "info", "-f", "{{.Swarm.Cluster.ID}}")

	r := outs.add(runSG(t, env, nil, "rotate", "join-token", "worker", "--config", cfg, "--reason", "it-publish"))
	if r.Code != 0 {
		t.Fatalf("rotate with publishing exited %d: %s", r.Code, r.Stderr)
	}
	w1, m1 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
	rec := tokVaultRead(t, env, path)
	if rec == nil || rec["worker"] != w1 || rec["manager"] != m1 || rec["swarm_id"] != id ||
		rec["worker_fingerprint"] != tokSHA(w1) || rec["manager_fingerprint"] != tokSHA(m1) {
		t.Fatalf("vault at %s does not hold the current tokens after the rotation", path)
	}

	// A token changed behind swarmguard's back (as the CA digest does after a root CA rotation): the next
	// pass republishes the current tokens.
	if _, err := tokQuiet(t, env["DOCKER_HOST"], "", "swarm", "join-token", "--rotate", "-q", "manager"); err != nil {
		t.Fatalf("rotating the manager token with the docker CLI failed: %v", err)
	}
	m2 := tokJoinToken(t, env, "manager")
	r = outs.add(runSG(t, env, nil, "run", "--once", "--config", cfg))
	if r.Code != 0 {
		t.Errorf("run --once exited %d: %s", r.Code, r.Stderr)
	}
	if rec = tokVaultRead(t, env, path); rec == nil || rec["manager"] != m2 || rec["worker"] != w1 {
		t.Errorf("run --once did not republish the changed manager token")
	}
	secretScan(t, outs, w1, m1, m2)
}
