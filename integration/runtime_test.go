//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run `swarmguard run` as processes, one per manager, each with DOCKER_HOST at that manager's
// own socket: exactly what a replica of the global service sees. Each test uses its own lease and ledger
// objects, so it never sees another test's (or a deployed stack's) state.

// rtReplica is one `swarmguard run` process.
type rtReplica struct {
	t    *testing.T
	host string // the manager's socket
	node int    // lab node number (n1 = 1)
	port int
	cmd  *exec.Cmd
	log  *rtLockedBuffer
	done chan struct{}
	code int
}

type rtLockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *rtLockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *rtLockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// rtUniq is a short random suffix for object names.
func rtUniq() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func rtFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

var rtNodeNum = regexp.MustCompile(`/n(\d+)\.sock$`)

// rtManagerSockets are the lab's manager sockets with their node numbers.
func rtManagerSockets(t *testing.T, env map[string]string) (hosts []string, nodes []int) {
	t.Helper()
	for _, h := range strings.Fields(env["LAB_NODES"]) {
		out, err := docker(t, env, h, "info", "--format", "{{.Swarm.ControlAvailable}}")
		if err != nil || out != "true" {
			continue
		}
		m := rtNodeNum.FindStringSubmatch(h)
		if m == nil {
			t.Fatalf("cannot tell the node number of %s", h)
		}
		var n int
		fmt.Sscan(m[1], &n)
		hosts = append(hosts, h)
		nodes = append(nodes, n)
	}
	return hosts, nodes
}

// rtRuntimeConfig writes a configuration for the replicas of one test.
func rtRuntimeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func rtStartReplica(t *testing.T, env map[string]string, host string, node int, config string) *rtReplica {
	t.Helper()
	r := &rtReplica{t: t, host: host, node: node, port: rtFreePort(t), log: &rtLockedBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(swarmguardBin(t), "run", "--config", config, "--log-format", "json", "--log-level", "debug")
	r.cmd.Env = append(baseEnv(env), "DOCKER_HOST="+host, fmt.Sprintf("SWARMGUARD_LISTEN=127.0.0.1:%d", r.port))
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting swarmguard run on %s: %v", host, err)
	}
	go func() {
		err := r.cmd.Wait()
		r.code = r.cmd.ProcessState.ExitCode()
		_ = err
		close(r.done)
	}()
	t.Cleanup(func() {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(15 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("--- log of the replica on n%d (last 60 lines) ---\n%s", r.node, rtTail(r.log.String(), 60))
		}
	})
	return r
}

func rtTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (r *rtReplica) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

func (r *rtReplica) get(path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://127.0.0.1:%d%s", r.port, path), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// role is the replica's role as its /readyz says ("" when it does not answer).
func (r *rtReplica) role() string {
	code, body, err := r.get("/readyz")
	if err != nil || code != 200 {
		return ""
	}
	first, _, _ := strings.Cut(body, "\n")
	return strings.TrimPrefix(first, "ready: ")
}

// self is the replica's holder ID (node ID / instance) from /readyz.
func (r *rtReplica) self() string {
	_, body, err := r.get("/readyz")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(body, "\n") {
		if s, ok := strings.CutPrefix(l, "self: "); ok {
			return s
		}
	}
	return ""
}

func (r *rtReplica) metric(name string) string {
	_, body, _ := r.get("/metrics")
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, name) {
			return l
		}
	}
	return ""
}

// rtLeaseJSON is `swarmguard lease --format json`.
type rtLeaseJSON struct {
	Exists  bool   `json:"exists"`
	Holder  string `json:"holder"`
	Node    string `json:"node"`
	Actor   string `json:"actor"`
	TTL     string `json:"ttl"`
	Request string `json:"request"`
}

func rtReadLease(t *testing.T, env map[string]string, host, config string) rtLeaseJSON {
	t.Helper()
	r := runSG(t, env, []string{"DOCKER_HOST=" + host}, "lease", "--config", config, "--format", "json")
	if r.Code != 0 {
		t.Fatalf("swarmguard lease: exit %d: %s", r.Code, r.Stderr)
	}
	var l rtLeaseJSON
	if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
		t.Fatalf("swarmguard lease output %q: %v", r.Stdout, err)
	}
	return l
}

// rtLedgerEntry is one entry of `swarmguard status --format json`.
type rtLedgerEntry struct {
	Kind    string            `json:"kind"`
	At      time.Time         `json:"at"`
	Actor   string            `json:"actor"`
	Result  string            `json:"result"`
	Details map[string]string `json:"details"`
}

func rtReadLedger(t *testing.T, env map[string]string, host, config string) []rtLedgerEntry {
	t.Helper()
	r := runSG(t, env, []string{"DOCKER_HOST=" + host}, "status", "--config", config, "--format", "json")
	if r.Code != 0 {
		t.Fatalf("swarmguard status: exit %d: %s", r.Code, r.Stderr)
	}
	var st struct {
		Ledger []rtLedgerEntry `json:"ledger"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("swarmguard status output: %v", err)
	}
	return st.Ledger
}

// rtPromtool makes sure promtool is installed (Debian's prometheus package) and returns its path.
func rtPromtool(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("promtool"); err == nil {
		return p
	}
	install := func() error {
		return exec.Command("apt-get", "install", "-y", "--no-install-recommends", "prometheus").Run()
	}
	if install() != nil {
		_ = exec.Command("apt-get", "update").Run()
		if err := install(); err != nil {
			t.Fatalf("installing promtool (apt-get install prometheus): %v", err)
		}
	}
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool not found after installing the prometheus package")
	}
	return p
}

// rtAwaitOneHolder waits until exactly one replica says holder and the others standby, and returns the holder.
func rtAwaitOneHolder(t *testing.T, rs []*rtReplica, within time.Duration) *rtReplica {
	t.Helper()
	var holder *rtReplica
	var last []string
	eventually(t, within, "exactly one holder and the others standby", func() bool {
		holder, last = nil, nil
		holders := 0
		for _, r := range rs {
			if !r.running() {
				continue
			}
			role := r.role()
			last = append(last, fmt.Sprintf("n%d=%s", r.node, role))
			switch role {
			case "holder":
				holders++
				holder = r
			case "standby":
			default:
				return false
			}
		}
		return holders == 1
	})
	t.Logf("roles: %s", strings.Join(last, " "))
	return holder
}

func TestRuntimeReplicasOneHolderMetricsSIGTERM(t *testing.T) {
	env := labEnv(t)
	hosts, nodes := rtManagerSockets(t, env)
	if len(hosts) < 3 {
		t.Fatalf("the lab has %d managers; this test needs 3", len(hosts))
	}
	id := rtUniq()
	const ttl = 6 * time.Second
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: %[2]s}
ledger: {name: sgit-state-%[1]s}
tokens: {schedule: "@every 1h"}
`, id, ttl))
	var rs []*rtReplica
	for i := 0; i < 3; i++ {
		rs = append(rs, rtStartReplica(t, env, hosts[i], nodes[i], cfg))
	}
	holder := rtAwaitOneHolder(t, rs, 30*time.Second)

	// status (the lease object), logs and metrics agree.
	l := rtReadLease(t, env, hosts[0], cfg)
	if l.Holder != holder.self() || !strings.HasPrefix(l.Actor, "operator:") || l.TTL != "6s" {
		t.Fatalf("lease object = %+v; want holder %s (the replica on n%d), actor operator:…, ttl 6s", l, holder.self(), holder.node)
	}
	for _, r := range rs {
		want := "0"
		if r == holder {
			want = "1"
		}
		nodeID, _, _ := strings.Cut(r.self(), "/")
		if m := r.metric("swarmguard_lease_holder{"); m != fmt.Sprintf(`swarmguard_lease_holder{node="%s"} %s`, nodeID, want) {
			t.Errorf("n%d: %q; want swarmguard_lease_holder{node=%q} %s", r.node, m, nodeID, want)
		}
		log := r.log.String()
		if r == holder && !strings.Contains(log, `"msg":"holder: this replica acts"`) {
			t.Errorf("holder n%d never logged that it acts", r.node)
		}
		if r != holder && !strings.Contains(log, `"msg":"standby: another replica holds the lease"`) {
			t.Errorf("standby n%d never logged standby", r.node)
		}
	}

	// /metrics is promtool-clean and holds the lease and loop metrics.
	pt := rtPromtool(t)
	for _, r := range rs {
		_, body, err := r.get("/metrics")
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(pt, "check", "metrics")
		cmd.Stdin = strings.NewReader(body)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on n%d: %v\n%s", r.node, err, out)
		}
		for _, want := range []string{"swarmguard_lease_holder{", "swarmguard_lease_transitions_total", "swarmguard_reconcile_errors_total{loop=\"tokens\"}",
			"swarmguard_up{", "process_cpu_seconds_total", "go_goroutines"} {
			if !strings.Contains(body, want) {
				t.Errorf("n%d /metrics lacks %s", r.node, want)
			}
		}
		if r == holder && !strings.Contains(body, `swarmguard_reconcile_duration_seconds_count{loop="tokens"}`) {
			t.Errorf("holder /metrics has no tokens pass recorded")
		}
	}
	if code, body, _ := holder.get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	h := runSG(t, env, nil, "health", "--url", fmt.Sprintf("http://127.0.0.1:%d/healthz", holder.port))
	if h.Code != 0 {
		t.Fatalf("swarmguard health = exit %d: %s", h.Code, h.Stderr)
	}

	// SIGTERM: exit 0 within 10 s, the lease released, another replica takes it at its next tick (a sixth of
	// the TTL), long before the TTL would have run out.
	start := time.Now()
	if err := holder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-holder.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("the holder still runs 10 s after SIGTERM")
	}
	exitAfter := time.Since(start)
	if holder.code != 0 {
		t.Fatalf("exit code after SIGTERM = %d; want 0", holder.code)
	}
	if !strings.Contains(holder.log.String(), `"msg":"released lease"`) {
		t.Fatalf("the holder did not log the release")
	}
	next := rtAwaitOneHolder(t, rs, ttl/2)
	took := time.Since(start)
	t.Logf("SIGTERM: exit after %s; n%d took the lease %s after the signal (TTL %s)", exitAfter.Round(time.Millisecond), next.node, took.Round(time.Millisecond), ttl)
	if took >= ttl {
		t.Fatalf("takeover took %s; want less than the TTL %s (released, not expired)", took, ttl)
	}
}

func TestRuntimeFailoverRotatesOnce(t *testing.T) {
	env := labEnv(t)
	hosts, nodes := rtManagerSockets(t, env)
	if len(hosts) < 3 {
		t.Fatalf("the lab has %d managers; this test needs 3", len(hosts))
	}
	id := rtUniq()
	const ttl = 10 * time.Second
	// Due 8 s after the adoption: while the holder's engine is down and no one may act yet (TTL 10 s).
	const maxAge = 8 * time.Second
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: %[2]s}
ledger: {name: sgit-state-%[1]s}
docker: {api_timeout: 5s}
tokens:
  schedule: "@every 1s"
  worker: {max_age: %[3]s}
  manager: {max_age: 8760h}
`, id, ttl, maxAge))
	var rs []*rtReplica
	for i := 0; i < 3; i++ {
		rs = append(rs, rtStartReplica(t, env, hosts[i], nodes[i], cfg))
	}
	holder := rtAwaitOneHolder(t, rs, 30*time.Second)
	var others []*rtReplica
	for _, r := range rs {
		if r != holder {
			others = append(others, r)
		}
	}
	observer := others[0].host

	// The holder adopts the worker token (its clock starts); the rotation falls due maxAge later.
	var adoptedAt time.Time
	eventually(t, 20*time.Second, "the worker token's adoption in the ledger", func() bool {
		for _, e := range rtReadLedger(t, env, observer, cfg) {
			if e.Kind == "join-token-worker" && e.Result == "adopted" {
				adoptedAt = e.At
				return true
			}
		}
		return false
	})
	tokenBefore := mustDocker(t, env, observer, "swarm", "join-token", "-q", "worker")

	// Stop the holder's dockerd: its replica can no longer renew or act.
	stopped := time.Now()
	lab(t, env, "node", "stop", fmt.Sprint(holder.node))
	t.Cleanup(func() { lab(t, env, "node", "start", fmt.Sprint(holder.node)) })
	t.Logf("stopped n%d (the holder's engine) %s after the adoption; the rotation is due %s after it", holder.node, stopped.Sub(adoptedAt).Round(time.Second), maxAge)

	next := rtAwaitOneHolder(t, others, ttl+10*time.Second)
	t.Logf("n%d took the lease %s after the stop (TTL %s)", next.node, time.Since(stopped).Round(100*time.Millisecond), ttl)

	// The due rotation happens, once.
	var rotations []rtLedgerEntry
	eventually(t, maxAge+30*time.Second, "the due worker token rotation", func() bool {
		rotations = rotations[:0]
		for _, e := range rtReadLedger(t, env, next.host, cfg) {
			if e.Kind == "join-token-worker" && e.Result == "ok" {
				rotations = append(rotations, e)
			}
		}
		return len(rotations) > 0
	})
	// Give a second rotation every chance to show up (less than maxAge, so a legitimate next one cannot).
	rotatedAt := rotations[0].At
	for time.Since(rotatedAt) < maxAge/2 {
		time.Sleep(500 * time.Millisecond)
	}
	rotations = rotations[:0]
	for _, e := range rtReadLedger(t, env, next.host, cfg) {
		if e.Kind == "join-token-worker" && e.Result == "ok" {
			rotations = append(rotations, e)
		}
	}
	tokenAfter := mustDocker(t, env, next.host, "swarm", "join-token", "-q", "worker")
	if len(rotations) != 1 {
		t.Fatalf("worker token rotations in the ledger = %d; want exactly 1: %+v", len(rotations), rotations)
	}
	if tokenAfter == tokenBefore || rtFingerprint(tokenAfter) != rotations[0].Details["new_fingerprint"] {
		t.Fatalf("the swarm's worker token (sha256 %s) is not the one the ledger recorded (%s)", rtFingerprint(tokenAfter)[:12], rotations[0].Details["new_fingerprint"])
	}
	if rotations[0].At.Before(stopped) {
		t.Fatalf("the rotation happened at %s, before the holder's engine stopped at %s", rotations[0].At, stopped)
	}
	if rotations[0].Actor != "operator:"+strings.SplitN(next.self(), "/", 2)[0] {
		t.Fatalf("rotation by %s; want the new holder operator:%s", rotations[0].Actor, next.self())
	}
	secretScan(t, []string{holder.log.String(), next.log.String(), others[1].log.String()}, tokenBefore, tokenAfter)
}

func rtFingerprint(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestRuntimeRaceRotations runs two replicas with a 2 s TTL through 50 rotations of the worker token (due
// every 2 s) while the holder is frozen (SIGSTOP) at random moments for up to 3.5 s, so the lease keeps
// changing hands and stale holders keep waking up. Rotations are counted from outside, by polling the
// swarm's worker token: every rotation must be one ledger entry, and no two for one due time.
func TestRuntimeRaceRotations(t *testing.T) {
	env := labEnv(t)
	hosts, nodes := rtManagerSockets(t, env)
	if len(hosts) < 3 {
		t.Fatalf("the lab has %d managers; this test needs 3", len(hosts))
	}
	const cycles = 50
	const maxAge = 2 * time.Second
	id := rtUniq()
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: 2s}
ledger: {name: sgit-state-%[1]s, max_per_kind: 200}
docker: {api_timeout: 5s}
tokens:
  schedule: "@every 1s"
  worker: {max_age: %[2]s}
  manager: {max_age: 8760h}
`, id, maxAge))
	rs := []*rtReplica{rtStartReplica(t, env, hosts[0], nodes[0], cfg), rtStartReplica(t, env, hosts[1], nodes[1], cfg)}
	observer := hosts[2]
	rtAwaitOneHolder(t, rs, 30*time.Second)

	// Watch the worker token from outside.
	var mu sync.Mutex
	seen := []string{mustDocker(t, env, observer, "swarm", "join-token", "-q", "worker")}
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		for {
			select {
			case <-stopWatch:
				return
			default:
			}
			out, err := exec.Command("docker", "-H", observer, "swarm", "join-token", "-q", "worker").Output()
			if err == nil {
				tok := strings.TrimSpace(string(out))
				mu.Lock()
				if tok != "" && tok != seen[len(seen)-1] {
					seen = append(seen, tok)
				}
				mu.Unlock()
			}
		}
	}()
	changes := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) - 1 }

	// Chaos: freeze the current holder at random moments.
	stopChaos := make(chan struct{})
	chaosDone := make(chan struct{})
	var freezes int
	go func() {
		defer close(chaosDone)
		for {
			select {
			case <-stopChaos:
				return
			case <-time.After(rtRandDuration(500*time.Millisecond, 3*time.Second)):
			}
			for _, r := range rs {
				if r.role() == "holder" {
					_ = r.cmd.Process.Signal(syscall.SIGSTOP)
					time.Sleep(rtRandDuration(300*time.Millisecond, 3500*time.Millisecond))
					_ = r.cmd.Process.Signal(syscall.SIGCONT)
					freezes++
					break
				}
			}
		}
	}()
	start := time.Now()
	eventually(t, cycles*8*time.Second, fmt.Sprintf("%d rotations seen from outside", cycles), func() bool { return changes() >= cycles })
	close(stopChaos)
	<-chaosDone
	for _, r := range rs {
		_ = r.cmd.Process.Signal(syscall.SIGCONT)
	}
	// Stop both replicas (a stale holder that woke last has had its chance), then the watcher.
	for _, r := range rs {
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		<-r.done
	}
	close(stopWatch)
	<-watched
	final := mustDocker(t, env, observer, "swarm", "join-token", "-q", "worker")
	mu.Lock()
	if final != seen[len(seen)-1] {
		seen = append(seen, final)
	}
	observed := append([]string(nil), seen[1:]...)
	mu.Unlock()

	var rotations []rtLedgerEntry
	for _, e := range rtReadLedger(t, env, observer, cfg) {
		if e.Kind == "join-token-worker" && e.Result == "ok" {
			rotations = append(rotations, e)
		}
	}
	t.Logf("%d rotations observed from outside, %d in the ledger, %d freezes of the holder, in %s", len(observed), len(rotations), freezes, time.Since(start).Round(time.Second))
	if len(observed) != len(rotations) {
		t.Errorf("token changes seen from outside = %d; ledger rotations = %d; want equal", len(observed), len(rotations))
	}
	inLedger := map[string]bool{}
	for i, e := range rotations {
		inLedger[e.Details["new_fingerprint"]] = true
		if i > 0 {
			if gap := e.At.Sub(rotations[i-1].At); gap < maxAge-100*time.Millisecond {
				t.Errorf("rotations %d and %d are %s apart (by %s, then %s); want at least max_age %s: two rotations for one due time", i-1, i, gap, rotations[i-1].Actor, e.Actor, maxAge)
			}
		}
	}
	for i, tok := range observed {
		if !inLedger[rtFingerprint(tok)] {
			t.Errorf("token change %d (sha256 %s) seen from outside has no ledger entry: a rotation nobody recorded", i, rtFingerprint(tok)[:12])
		}
	}
	actors := map[string]int{}
	for _, e := range rotations {
		actors[e.Actor]++
	}
	t.Logf("rotations by actor: %v", actors)
	if len(actors) < 2 {
		t.Errorf("every rotation was done by one replica (%v); the lease never changed hands", actors)
	}
	var logs []string
	for _, r := range rs {
		logs = append(logs, r.log.String())
	}
	secretScan(t, logs, observed...)
}

func rtRandDuration(lo, hi time.Duration) time.Duration {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	var n uint64
	for _, x := range b {
		n = n<<8 | uint64(x)
	}
	return lo + time.Duration(n%uint64(hi-lo))
}

// TestRuntimeCLIWaitsForLease: a CLI rotate takes the lease from a running controller (which hands it over
// between passes) and gives it back; against a holder that never lets go it fails saying who holds it.
func TestRuntimeCLIWaitsForLease(t *testing.T) {
	env := labEnv(t)
	hosts, nodes := rtManagerSockets(t, env)
	id := rtUniq()
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: 6s, wait: 30s}
ledger: {name: sgit-state-%[1]s}
tokens: {schedule: "@every 1h"}
`, id))
	r := rtStartReplica(t, env, hosts[0], nodes[0], cfg)
	rtAwaitOneHolder(t, []*rtReplica{r}, 30*time.Second)
	start := time.Now()
	res := runSG(t, env, []string{"DOCKER_HOST=" + hosts[1]}, "rotate", "join-token", "worker", "--config", cfg, "--reason", "integration: CLI under the lease")
	if res.Code != 0 {
		t.Fatalf("rotate with the controller running: exit %d\n%s", res.Code, res.Stderr)
	}
	t.Logf("rotate took the lease from the controller and finished in %s", time.Since(start).Round(100*time.Millisecond))
	if !strings.Contains(r.log.String(), `"msg":"handed lease over"`) {
		t.Fatalf("the controller did not log the hand-over")
	}
	rtAwaitOneHolder(t, []*rtReplica{r}, 10*time.Second)
	var cli []rtLedgerEntry
	for _, e := range rtReadLedger(t, env, hosts[0], cfg) {
		if e.Kind == "join-token-worker" && e.Result == "ok" && strings.HasPrefix(e.Actor, "cli:") {
			cli = append(cli, e)
		}
	}
	if len(cli) != 1 {
		t.Fatalf("CLI rotations in the ledger = %d; want 1", len(cli))
	}
	if !strings.Contains(res.Stderr, `"event":"action"`) {
		t.Errorf("the CLI wrote no audit record of its action:\n%s", res.Stderr)
	}

	// A holder that never hands over (a stuck process's record, long TTL): the CLI gives up after lease.wait.
	stuck := fmt.Sprintf("sgit-lease-stuck-%s", id)
	data := filepath.Join(t.TempDir(), "lease")
	if err := os.WriteFile(data, []byte("stuck lease\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, env, hosts[0], "config", "create",
		"--label", "swarmguard.lease.schema=1", "--label", "swarmguard.lease.holder=deadbeef/stuck", "--label", "swarmguard.lease.seq=1",
		"--label", "swarmguard.lease.ttl=1h", "--label", "swarmguard.lease.actor=operator:deadbeef", "--label", "swarmguard.lease.what=controller",
		stuck, data)
	t.Cleanup(func() { _, _ = docker(t, env, hosts[0], "config", "rm", stuck) })
	res = runSG(t, env, []string{"DOCKER_HOST=" + hosts[1], "SWARMGUARD_LEASE_NAME=" + stuck, "SWARMGUARD_LEASE_WAIT=2s"},
		"rotate", "join-token", "worker", "--config", cfg)
	if res.Code != 1 || !strings.Contains(res.Stderr, "deadbeef/stuck") || !strings.Contains(res.Stderr, "operator:deadbeef") {
		t.Fatalf("rotate against a stuck holder = exit %d, %q; want exit 1 naming deadbeef/stuck and its actor", res.Code, res.Stderr)
	}
}
