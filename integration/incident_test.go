//go:build integration

package integration

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests prove issue 17 on the lab: join windows that close by time and by joins (a real node joins
// with the window's token, and a join with it is refused after the close), and the ordered incident
// response: a dry run that changes no object version, a whole run, a kill in the middle and the resumed run.

// incConfig is a config for these tests: long token max ages (only windows rotate), a short lease TTL so a
// killed holder's lease lapses quickly.
func incConfig(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "swarmguard.yaml")
	body := "tokens: {worker: {max_age: 8760h}, manager: {max_age: 8760h}}\nlease: {ttl: 4s, wait: 60s}\n"
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// incWindow is a window as `join-window open` and `status` show it.
type incWindow struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	OpenedAt string `json:"opened_at"`
	ClosesAt string `json:"closes_at"`
	Nodes    int    `json:"nodes"`
	Joined   int    `json:"joined"`
	Actor    string `json:"actor"`
	Reason   string `json:"reason"`
	Masked   string `json:"masked"`
	Token    string `json:"token"`
}

func incStatus(t *testing.T, env map[string]string, outs *tokOutputs, cfg string) ([]incWindow, []tokLedgerEntry) {
	t.Helper()
	r := outs.add(runSG(t, env, nil, "--config", cfg, "status", "--format", "json"))
	if r.Code != 0 {
		t.Fatalf("status exited %d: %s", r.Code, r.Stderr)
	}
	var st struct {
		JoinWindows []incWindow      `json:"join_windows"`
		Ledger      []tokLedgerEntry `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status JSON: %v", err)
	}
	return st.JoinWindows, st.Ledger
}

func incOpenWindow(t *testing.T, env map[string]string, outs *tokOutputs, cfg string, args ...string) incWindow {
	t.Helper()
	r := outs.add(runSG(t, env, nil, append([]string{"--config", cfg, "join-window", "open", "worker", "--format", "json"}, args...)...))
	if r.Code != 0 {
		t.Fatalf("join-window open exited %d: %s", r.Code, r.Stderr)
	}
	var w incWindow
	if err := json.Unmarshal([]byte(r.Stdout), &w); err != nil {
		t.Fatalf("join-window open JSON: %v", err)
	}
	// A test that failed half-way leaves no window open for the next (exit 1 when it closed already).
	t.Cleanup(func() { runSG(t, env, nil, "--config", cfg, "join-window", "close", w.ID, "--reason", "test clean-up") })
	if w.ID == "" || w.Kind != "worker" || w.ClosesAt == "" || w.Token != "" || !strings.Contains(w.Masked, "sha256:") {
		t.Fatalf("join-window open = %+v; want an ID, kind worker, closes_at, the token masked", w)
	}
	return w
}

func incRunOnce(t *testing.T, env map[string]string, outs *tokOutputs, cfg string) {
	t.Helper()
	r := outs.add(runSG(t, env, nil, "--config", cfg, "run", "--once"))
	if r.Code != 0 {
		t.Fatalf("run --once exited %d: %s", r.Code, rtTail(r.Stderr, 5))
	}
}

// incClosed finds the rotation that closed window id and the window's close entry.
func incClosed(entries []tokLedgerEntry, id string) (rot, closed tokLedgerEntry, ok bool) {
	var okR, okC bool
	for _, e := range entries {
		if e.Kind == "join-token-worker" && e.Result == "ok" && e.Details["window"] == id {
			rot, okR = e, true
		}
		if e.Kind == "join-window" && e.Details["window"] == id && e.Details["action"] == "close" {
			closed, okC = e, true
		}
	}
	return rot, closed, okR && okC
}

// TestJoinWindowLab: a window that closes by time, one that closes after a real lab node joined with its
// token, and a join with that token refused after the close.
func TestJoinWindowLab(t *testing.T) {
	env := labEnv(t)
	cfg := incConfig(t)
	var outs tokOutputs
	w0 := tokJoinToken(t, env, "worker")
	tokens := []string{w0}

	t.Run("closes by time", func(t *testing.T) {
		reason := fmt.Sprintf("it-window-ttl-%d", time.Now().UnixNano())
		// Published for provisioning tools, and republished when the window's rotation replaces it.
		path := fmt.Sprintf("secret/it-jw-%d/join-tokens", time.Now().UnixNano())
		cfg := filepath.Join(t.TempDir(), "publish.yaml")
		body := fmt.Sprintf("tokens: {worker: {max_age: 8760h}, manager: {max_age: 8760h}, publish: {vault_path: %s}}\n"+
			"lease: {ttl: 4s, wait: 60s}\nvault: {address: %q, auth: {method: token}}\n", path, env["VAULT_ADDR"])
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		w := incOpenWindow(t, env, &outs, cfg, "--ttl", "3s", "--reason", reason, "--publish")
		if got := tokVaultRead(t, env, path); got["worker"] != w0 {
			t.Errorf("--publish did not write the window's worker token to %s", path)
		}
		if tokJoinToken(t, env, "worker") != w0 {
			t.Fatalf("opening the window rotated the token it hands out")
		}
		open, _ := incStatus(t, env, &outs, cfg)
		if len(open) != 1 || open[0].ID != w.ID || open[0].Reason != reason || !strings.HasPrefix(open[0].Actor, "cli:") {
			t.Fatalf("status join_windows = %+v; want window %s", open, w.ID)
		}
		closes, err := time.Parse(time.RFC3339Nano, w.ClosesAt)
		if err != nil {
			t.Fatalf("closes_at %q: %v", w.ClosesAt, err)
		}
		// A pass before the window closes keeps the token.
		if time.Until(closes) > 2*time.Second {
			incRunOnce(t, env, &outs, cfg)
			if time.Now().Before(closes) && tokJoinToken(t, env, "worker") != w0 {
				t.Fatalf("a pass inside the window rotated its token")
			}
		}
		eventually(t, 10*time.Second, "the window's time to pass", func() bool { return time.Now().After(closes) })
		incRunOnce(t, env, &outs, cfg)
		w1 := tokJoinToken(t, env, "worker")
		tokens = append(tokens, w1)
		if w1 == w0 {
			t.Fatalf("the window's token was not rotated after it closed")
		}
		if got := tokVaultRead(t, env, path); got["worker"] != w1 {
			t.Errorf("the window's rotation did not republish the worker token to %s", path)
		}
		open, entries := incStatus(t, env, &outs, cfg)
		if len(open) != 0 {
			t.Errorf("status still lists open windows: %+v", open)
		}
		rot, closed, ok := incClosed(entries, w.ID)
		if !ok || !strings.Contains(rot.Reason, w.ID) || rot.Details["new_fingerprint"] != tokSHA(w1) || closed.Details["closed_by"] != "ttl" {
			t.Errorf("ledger: rotation %+v, close %+v; want the rotation naming window %s and its close by ttl", rot, closed, w.ID)
		}
	})

	t.Run("closes after a node joined; the old token is refused", func(t *testing.T) {
		wa := tokJoinToken(t, env, "worker")
		w := incOpenWindow(t, env, &outs, cfg, "--ttl", "10m", "--nodes", "1", "--reason", "it-window-nodes")
		// The lab joins a new worker with the swarm's current token: the window's.
		out := lab(t, env, "node", "add", "worker")
		n := strings.Fields(lastLine(out))[0]
		t.Cleanup(func() { lab(t, env, "node", "remove", n) })
		open, _ := incStatus(t, env, &outs, cfg)
		if len(open) != 1 || open[0].Joined != 1 || open[0].Nodes != 1 {
			t.Fatalf("status join_windows = %+v; want window %s with 1 of 1 joined", open, w.ID)
		}
		incRunOnce(t, env, &outs, cfg)
		wb := tokJoinToken(t, env, "worker")
		tokens = append(tokens, wa, wb)
		if wb == wa {
			t.Fatalf("the window's token was not rotated after its node joined")
		}
		_, entries := incStatus(t, env, &outs, cfg)
		rot, closed, ok := incClosed(entries, w.ID)
		if !ok || closed.Details["closed_by"] != "nodes" || rot.Details["old_fingerprint"] != tokSHA(wa) {
			t.Errorf("ledger: rotation %+v, close %+v; want the window closed by nodes and its token rotated", rot, closed)
		}
		// A fresh node with the window's token is refused now.
		sock, ip := tokBareNode(t, env)
		start := time.Now()
		jout, err := tokQuiet(t, sock, "", "swarm", "join", "--token", wa, "--advertise-addr", ip, tokManagerAddr(t, env))
		outs = append(outs, jout)
		secretScan(t, []string{jout}, tokens...)
		if err == nil {
			t.Fatalf("a node joined with the closed window's token")
		}
		t.Logf("join with the closed window's token refused after %s", time.Since(start).Round(time.Millisecond))
		if !strings.Contains(jout, "valid join token is necessary") {
			t.Errorf("the join failed for another reason: %s", jout)
		}
	})
	secretScan(t, outs, tokens...)
}

// incResult is `incident --format json`.
type incResult struct {
	ID    string `json:"id"`
	Steps []struct {
		Kind   string `json:"kind"`
		Status string `json:"status"`
		Detail string `json:"detail"`
	} `json:"steps"`
}

func (r incResult) statuses() string {
	var out []string
	for _, s := range r.Steps {
		out = append(out, s.Kind+"="+s.Status)
	}
	return strings.Join(out, ",")
}

// incVersions are the object versions a dry run must not move: the swarm, the ledger, the lease, and the
// number of secrets.
func incVersions(t *testing.T, env map[string]string) string {
	t.Helper()
	sw := mustDocker(t, env, "", "info", "--format", "{{.Swarm.Cluster.Version.Index}}")
	objs, _ := docker(t, env, "", "config", "inspect", "--format", "{{.Spec.Name}}={{.Version.Index}}", "swarmguard-state", "swarmguard-lease")
	secs := mustDocker(t, env, "", "secret", "ls", "-q")
	return fmt.Sprintf("swarm=%s %s secrets=%d", sw, strings.ReplaceAll(objs, "\n", " "), len(strings.Fields(secs)))
}

// TestIncidentLab: a dry run changes no object version; a whole run rotates the tokens, then the root CA
// (in that order in the ledger) and reports; a run killed in the middle of its CA step resumes with the same
// ID, skipping what was done, and finishes.
func TestIncidentLab(t *testing.T) {
	env := labEnv(t)
	cfg := incConfig(t)
	var outs tokOutputs
	scope := []string{"--config", cfg, "incident", "--scope", "tokens,unlock-key,ca", "--format", "json"}

	v0 := incVersions(t, env)
	r := outs.add(runSG(t, env, nil, append(scope, "--dry-run", "--reason", "it-incident-dry")...))
	if r.Code != 0 {
		t.Fatalf("incident --dry-run exited %d: %s", r.Code, r.Stderr)
	}
	var plan incResult
	if err := json.Unmarshal([]byte(r.Stdout), &plan); err != nil {
		t.Fatalf("dry run JSON: %v", err)
	}
	if got := plan.statuses(); !strings.HasPrefix(got, "join-token-worker=planned,join-token-manager=planned,unlock-key=") ||
		!strings.HasSuffix(got, ",ca=planned,report=planned") {
		t.Errorf("dry run plan = %s", got)
	}
	if v1 := incVersions(t, env); v1 != v0 {
		t.Errorf("incident --dry-run changed object versions: %s -> %s", v0, v1)
	}

	t.Run("whole run", func(t *testing.T) {
		// A leaked secret, synced into a running service, changed at the source before the incident.
		f := newSecretsFixture(t, "inc", "tokens: {worker: {max_age: 8760h}, manager: {max_age: 8760h}}\nlease: {ttl: 4s, wait: 60s}\n")
		v1, v2 := "it-inc-one-"+f.run, "it-inc-two-"+f.run
		f.put(v1)
		svc := f.service("a", "--label", "swarmguard.secrets="+f.name, "--label", "swarmguard.secrets."+f.name+".target=db_password",
			"swarmguard-testapp:lab", "print", "/run/secrets/db_password")
		f.mustSG("rotate", "secret", f.name, "--reason", "first sync")
		f.prints(svc, "/run/secrets/db_password", v1)
		f.put(v2)

		// Autolock on, so the unlock key is rotated and escrowed (off again at the end).
		alEnableAutolock(t, env)
		k0 := tokUnlockKey(t, env["DOCKER_HOST"])

		w0, m0 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
		root0 := mustDocker(t, env, "", "info", "--format", "{{.Swarm.Cluster.TLSInfo.TrustRoot}}")
		start := time.Now()
		r := f.sg(nil, "incident", "--secret", f.name, "--format", "json", "--reason", "it-incident-whole")
		outs = append(outs, r.Stdout, r.Stderr)
		if r.Code != 0 {
			t.Fatalf("incident exited %d: %s", r.Code, rtTail(r.Stderr, 8))
		}
		f.prints(svc, "/run/secrets/db_password", v2)
		t.Logf("whole incident took %s", time.Since(start).Round(time.Millisecond))
		var res incResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatalf("incident JSON: %v", err)
		}
		if got := res.statuses(); got != "join-token-worker=done,join-token-manager=done,unlock-key=done,ca=done,secret=done,report=done" {
			t.Errorf("incident steps = %s", got)
		}
		k1 := tokUnlockKey(t, env["DOCKER_HOST"])
		if k1 == k0 {
			t.Errorf("the unlock key was not rotated")
		}
		if esc := tokVaultRead(t, env, "secret/swarmguard/"+alSwarmID(t, env)+"/unlock-key"); esc["key"] != k1 {
			t.Errorf("the new unlock key is not the one escrowed in vault")
		}
		w1, m1 := tokJoinToken(t, env, "worker"), tokJoinToken(t, env, "manager")
		root1 := mustDocker(t, env, "", "info", "--format", "{{.Swarm.Cluster.TLSInfo.TrustRoot}}")
		if w1 == w0 || m1 == m0 || root1 == root0 {
			t.Errorf("after the incident: worker changed %v, manager changed %v, root CA changed %v; want all", w1 != w0, m1 != m0, root1 != root0)
		}
		if !strings.Contains(r.Stderr, "[1/6] join-token-worker: started") || !strings.Contains(r.Stderr, "[4/6] ca: done") ||
			!strings.Contains(r.Stderr, "[5/6] secret:"+f.name+": done") {
			t.Errorf("no progress per step on stderr:\n%s", rtTail(r.Stderr, 12))
		}
		// The ledger: each step under the incident's ID, in order; the CA rotation after the tokens.
		_, entries := incStatus(t, env, &outs, cfg)
		var steps []string
		for _, e := range entries {
			if e.Kind == "incident" && e.Details["incident"] == res.ID {
				steps = append(steps, e.Details["step"])
			}
		}
		if got := strings.Join(steps, ","); got != "join-token-worker,join-token-manager,unlock-key,ca,secret:"+f.name+",report" {
			t.Errorf("incident entries in the ledger = %s", got)
		}
		tok, _ := tokFindEntry(entries, "join-token-worker", "incident "+res.ID+": it-incident-whole", "ok")
		ca, _ := tokFindEntry(entries, "ca", "incident "+res.ID+": it-incident-whole", "ok")
		sec, _ := tokFindEntry(entries, "secret", "incident "+res.ID+": it-incident-whole", "ok")
		if tok.At == "" || ca.At == "" || sec.At == "" || ca.At < tok.At || sec.At < ca.At {
			t.Errorf("the worker rotation (%s), the CA rotation (%s) and the secret (%s) are not all recorded in that order", tok.At, ca.At, sec.At)
		}
		secretScan(t, outs, w0, w1, m0, m1, k0, k1)
	})

	t.Run("killed in the middle and resumed", func(t *testing.T) {
		w0 := tokJoinToken(t, env, "worker")
		id := fmt.Sprintf("it-inc-%d", time.Now().UnixNano())
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, swarmguardBin(t), append(scope, "--id", id, "--reason", "it-incident-kill")...)
		cmd.Env = baseEnv(env)
		cmd.Stdout = io.Discard
		errPipe, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill it the moment its CA step starts: the tokens are done, the rotation is under way.
		var seen []string
		killed := false
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			seen = append(seen, sc.Text())
			if strings.Contains(sc.Text(), "ca: started") {
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
				break
			}
		}
		_ = cmd.Wait()
		outs = append(outs, strings.Join(seen, "\n"))
		if !killed {
			t.Fatalf("the incident never reached its CA step:\n%s", strings.Join(seen, "\n"))
		}
		w1 := tokJoinToken(t, env, "worker")
		if w1 == w0 {
			t.Fatalf("the killed run had not rotated the worker token before its CA step")
		}
		start := time.Now()
		r := outs.add(runSG(t, env, nil, append(scope, "--id", id, "--reason", "it-incident-kill")...))
		if r.Code != 0 {
			t.Fatalf("the resumed incident exited %d: %s", r.Code, rtTail(r.Stderr, 8))
		}
		t.Logf("resumed incident took %s (the killed holder's lease lapses first)", time.Since(start).Round(time.Millisecond))
		var res incResult
		if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
			t.Fatalf("incident JSON: %v", err)
		}
		if got := res.statuses(); !strings.HasPrefix(got, "join-token-worker=skipped,join-token-manager=skipped,unlock-key=skipped,") ||
			!strings.HasSuffix(got, ",ca=done,report=done") {
			t.Errorf("resumed incident steps = %s; want the done steps skipped, the CA and the report done", got)
		}
		if !strings.Contains(res.Steps[0].Detail, "already done in "+id) {
			t.Errorf("a skipped step does not say it was done: %q", res.Steps[0].Detail)
		}
		if p := mustDocker(t, env, "", "info", "--format", "{{.Swarm.Cluster.RootRotationInProgress}}"); p != "false" {
			t.Errorf("root rotation in progress after the resumed incident: %s", p)
		}
		_, entries := incStatus(t, env, &outs, cfg)
		// The tokens were rotated once, by the killed run (the root CA rotation renews them too, on this
		// engine the whole token: so the ledger, not the token, tells).
		n := map[string]int{}
		for _, e := range entries {
			if strings.HasPrefix(e.Kind, "join-token-") && e.Result == "ok" && e.Reason == "incident "+id+": it-incident-kill" {
				n[e.Kind]++
			}
		}
		if n["join-token-worker"] != 1 || n["join-token-manager"] != 1 {
			t.Errorf("token rotations under incident %s = %v; want one of each", id, n)
		}
		secretScan(t, outs, w0, w1)
	})
}
