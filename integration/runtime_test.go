//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
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

// rtManagerSockets are the lab's manager sockets with their node numbers; the test fails when there are
// fewer than need.
func rtManagerSockets(t *testing.T, env map[string]string, need int) (hosts []string, nodes []int) {
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
	if len(hosts) < need {
		t.Fatalf("the lab has %d managers; this test needs %d", len(hosts), need)
	}
	return hosts, nodes
}

// rtRemoveObjects removes a test's lease and ledger objects (sgit-lease-<id>, sgit-state-<id>) when it ends,
// after its replicas have stopped (cleanups run last-registered first).
func rtRemoveObjects(t *testing.T, env map[string]string, id string) {
	t.Helper()
	t.Cleanup(func() {
		for _, name := range []string{"sgit-lease-" + id, "sgit-state-" + id} {
			_, _ = docker(t, env, "", "config", "rm", name)
		}
	})
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
		// SWARMGUARD_TEST_KEEP_LOGS=1 keeps the replicas' logs of passing tests too (to study timings).
		full := filepath.Join(os.TempDir(), fmt.Sprintf("%s-n%d-%d.log", strings.ReplaceAll(t.Name(), "/", "_"), r.node, r.port))
		if t.Failed() || os.Getenv("SWARMGUARD_TEST_KEEP_LOGS") != "" {
			_ = os.WriteFile(full, []byte(r.log.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("--- log of the replica on n%d (last 60 lines; all of it in %s) ---\n%s", r.node, full, rtTail(r.log.String(), 60))
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
	hosts, nodes := rtManagerSockets(t, env, 3)
	id := rtUniq()
	rtRemoveObjects(t, env, id)
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
	hosts, nodes := rtManagerSockets(t, env, 3)
	id := rtUniq()
	rtRemoveObjects(t, env, id)
	// The default TTL, above the lab's raft re-election time (12 to over 30 s after the leader's dockerd
	// stops, longer on a loaded machine).
	const ttl = 30 * time.Second
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: %[2]s}
ledger: {name: sgit-state-%[1]s}
docker: {api_timeout: 5s}
tokens:
  schedule: "@every 1s"
  worker: {max_age: %[3]s}
  manager: {max_age: 8760h}
`, id, ttl, rtFailoverMaxAge))
	var rs []*rtReplica
	for i := 0; i < 3; i++ {
		rs = append(rs, rtStartReplica(t, env, hosts[i], nodes[i], cfg))
	}
	holder := rtAwaitOneHolder(t, rs, ttl+30*time.Second) // the creator of the lease acts after a full TTL
	var others []*rtReplica
	for _, r := range rs {
		if r != holder {
			others = append(others, r)
		}
	}

	_, tokens := rtFailover{holderNode: holder.node, observer: others[0].host, cfg: cfg, lease: "sgit-lease-" + id, ttl: ttl,
		nextHolder: func() (string, string, bool) {
			for _, r := range others {
				if r.role() == "holder" {
					return r.host, strings.SplitN(r.self(), "/", 2)[0], true
				}
			}
			return "", "", false
		},
		sawSeq: func(seq string) bool {
			for _, r := range others {
				if _, body, err := r.get("/readyz"); err != nil || !strings.Contains(body, "\nlease seq: "+seq+" ") {
					return false
				}
			}
			return true
		},
	}.run(t, env)
	secretScan(t, []string{holder.log.String(), others[0].log.String(), others[1].log.String()}, tokens...)
}

// rtFailoverMaxAge is the worker token's max age in the failover tests: longer than a renewal interval
// (TTL/3) plus the time a stop takes, so the holder does not rotate again between its rotation and the
// stop, and shorter than the TTL, so the next rotation falls due while no one may act.
const rtFailoverMaxAge = 20 * time.Second

// rtFailover is a failover scenario: the lease holder's dockerd stops right after it rotated the worker
// token, and the next rotation falls due before another replica may take over.
type rtFailover struct {
	holderNode int
	observer   string // a manager's socket that stays up
	cfg, lease string // a config file with the replicas' lease and ledger, and the lease's name
	ttl        time.Duration
	// nextHolder returns the host and node ID of a replica other than the stopped one that holds the lease.
	nextHolder func() (host, nodeID string, ok bool)
	// sawSeq says whether every other replica has read the lease at this sequence number (their /readyz).
	sawSeq func(seq string) bool
}

// run waits for the holder to rotate the worker token (the next rotation falls due rtFailoverMaxAge later)
// and then for a lease renewal that every standby has read, stops the holder's dockerd at once, waits for
// another replica to hold the lease within TTL + 10 s, and checks that the rotation that fell due meanwhile
// happened exactly once, by the new holder: one ledger entry, and the swarm's token is the one it recorded.
// It returns the new holder's host and the tokens seen.
//
// The window, and why it can start later than the stop: a standby's expiry clock starts when it first reads
// the holder's last renewal (DESIGN.md decision 2: no clocks compared across nodes). Stopping right after a
// renewal every standby has read makes that moment known. When the stopped node was also the raft leader,
// nobody can read or write anything until the others elect a new one (12 s to over 30 s in this lab), so
// the window is then 10 s from the first answer if that is later; and if the holder still managed to renew
// while its engine stopped, the standbys see that renewal only when the swarm answers again, so the window
// is TTL + 10 s from then. The test logs which case it met.
func (f rtFailover) run(t *testing.T, env map[string]string) (string, []string) {
	t.Helper()
	maxAge := rtFailoverMaxAge
	tok0 := mustDocker(t, env, f.observer, "swarm", "join-token", "-q", "worker")
	var tok1 string
	eventually(t, maxAge+20*time.Second, "a worker token rotation by the holder", func() bool {
		tok1, _ = docker(t, env, f.observer, "swarm", "join-token", "-q", "worker")
		return tok1 != "" && tok1 != tok0
	})
	rotated := time.Now()
	before, ok := rtLeaseLabels(t, env, f.observer, f.lease)
	if !ok {
		t.Fatalf("lease %s unreadable through %s", f.lease, f.observer)
	}
	var renewed rtLeaseState
	eventually(t, f.ttl/3+10*time.Second, "a renewal of the lease", func() bool {
		renewed, ok = rtLeaseLabels(t, env, f.observer, f.lease)
		return ok && renewed.seq != before.seq
	})
	renewedAt := time.Now()
	if renewed.holder != before.holder {
		t.Fatalf("the lease changed hands before the stop: %s, then %s", before.holder, renewed.holder)
	}
	eventually(t, 10*time.Second, "every standby to read lease seq "+renewed.seq, func() bool { return f.sawSeq(renewed.seq) })

	stoppedHost := env["LAB_NAME"] + "-n" + fmt.Sprint(f.holderNode)
	wasRaftLeader := strings.Contains(mustDocker(t, env, f.observer, "node", "ls", "--filter", "name="+stoppedHost, "--format", "{{.Hostname}} {{.ManagerStatus}}"), stoppedHost+" Leader")
	lab(t, env, "node", "stop", fmt.Sprint(f.holderNode))
	stopped := time.Now()
	t.Cleanup(func() { lab(t, env, "node", "start", fmt.Sprint(f.holderNode)) })

	var after rtLeaseState
	eventually(t, 3*time.Minute, "the swarm to answer after the stop", func() bool {
		after, ok = rtLeaseLabels(t, env, f.observer, f.lease)
		return ok
	})
	answered := time.Now()
	deadline := stopped.Add(f.ttl + 10*time.Second)
	switch {
	case after.holder == renewed.holder && after.seq != renewed.seq:
		deadline = answered.Add(f.ttl + 10*time.Second)
		t.Logf("the holder renewed the lease (seq %s to %s) while its engine stopped; the swarm answered %s after the stop (raft leader stopped: %v): window TTL + 10 s from then",
			renewed.seq, after.seq, answered.Sub(stopped).Round(100*time.Millisecond), wasRaftLeader)
	case answered.Add(10 * time.Second).After(deadline):
		deadline = answered.Add(10 * time.Second)
		t.Logf("the swarm answered only %s after the stop (raft leader stopped: %v): window 10 s from then",
			answered.Sub(stopped).Round(100*time.Millisecond), wasRaftLeader)
	}
	var nextHost, nextNode string
	eventually(t, time.Until(deadline), "another replica holding the lease", func() bool {
		nextHost, nextNode, ok = f.nextHolder()
		return ok
	})
	tookOver := time.Now()
	t.Logf("n%d's dockerd stopped %s after its replica rotated the token and %s after a renewal (raft leader: %v); the swarm answered %s after the stop; the next rotation fell due %s after the stop; another replica took the lease %s after the stop (TTL %s)",
		f.holderNode, stopped.Sub(rotated).Round(10*time.Millisecond), stopped.Sub(renewedAt).Round(10*time.Millisecond), wasRaftLeader, answered.Sub(stopped).Round(100*time.Millisecond),
		rotated.Add(maxAge).Sub(stopped).Round(100*time.Millisecond), tookOver.Sub(stopped).Round(100*time.Millisecond), f.ttl)
	if !rotated.Add(maxAge).Before(tookOver) {
		t.Logf("note: the rotation fell due after the takeover, not inside the failover window")
	}

	rotations := func() []rtLedgerEntry {
		var out []rtLedgerEntry
		for _, e := range rtReadLedger(t, env, nextHost, f.cfg) {
			if e.Kind == "join-token-worker" && e.Result == "ok" && !e.At.Before(stopped) {
				out = append(out, e)
			}
		}
		return out
	}
	var rots []rtLedgerEntry
	eventually(t, maxAge+30*time.Second, "the rotation that fell due during the failover", func() bool {
		rots = rotations()
		return len(rots) > 0
	})
	first := rots[0].At
	// Give a second rotation for the same due time every chance to show up; a legitimate next one comes
	// only maxAge after the first.
	for time.Since(first) < maxAge/2 {
		time.Sleep(100 * time.Millisecond)
	}
	tok2 := mustDocker(t, env, nextHost, "swarm", "join-token", "-q", "worker")
	rots = rots[:0]
	for _, e := range rotations() {
		if e.At.Before(first.Add(maxAge / 2)) {
			rots = append(rots, e)
		}
	}
	if len(rots) != 1 {
		t.Fatalf("worker token rotations in the %s after the first one after the stop = %d; want exactly 1: %+v", maxAge/2, len(rots), rots)
	}
	if tok2 == tok1 || rtFingerprint(tok2) != rots[0].Details["new_fingerprint"] {
		t.Fatalf("the swarm's worker token (sha256 %s) is not the one the ledger recorded (%s)", rtFingerprint(tok2)[:12], rots[0].Details["new_fingerprint"])
	}
	if rots[0].Actor != "operator:"+nextNode {
		t.Fatalf("rotation by %s; want the new holder operator:%s", rots[0].Actor, nextNode)
	}
	return nextHost, []string{tok0, tok1, tok2}
}

// rtLeaseState is the lease object's holder and sequence number, read with docker config inspect.
type rtLeaseState struct{ holder, seq string }

// rtLeaseLabels reads the lease object through host, giving up after 5 s (a manager without a raft leader
// holds a request much longer); ok is false when the swarm did not answer.
func rtLeaseLabels(t *testing.T, env map[string]string, host, lease string) (rtLeaseState, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "-H", host, "config", "inspect", lease, "--format",
		`{{index .Spec.Labels "swarmguard.lease.holder"}}|{{index .Spec.Labels "swarmguard.lease.seq"}}`).Output()
	holder, seq, found := strings.Cut(strings.TrimSpace(string(out)), "|")
	if err != nil || !found || seq == "" {
		return rtLeaseState{}, false
	}
	return rtLeaseState{holder: holder, seq: seq}, true
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
	hosts, nodes := rtManagerSockets(t, env, 3)
	const cycles = 50
	const maxAge = 2 * time.Second
	id := rtUniq()
	rtRemoveObjects(t, env, id)
	cfg := rtRuntimeConfig(t, fmt.Sprintf(`lease: {name: sgit-lease-%[1]s, ttl: 2s}
ledger: {name: sgit-state-%[1]s, max_per_kind: 62}
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
	hosts, nodes := rtManagerSockets(t, env, 2)
	id := rtUniq()
	rtRemoveObjects(t, env, id)
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

// rtEnsureStackSecrets creates the Docker secrets the stack takes (Vault AppRole credentials, the HMAC key)
// with placeholder values when they do not exist: the configurations deployed here use neither.
func rtEnsureStackSecrets(t *testing.T, env map[string]string) {
	t.Helper()
	for _, name := range []string{"swarmguard_vault_role_id", "swarmguard_vault_secret_id", "swarmguard_hmac_key"} {
		if _, err := docker(t, env, "", "secret", "inspect", name); err == nil {
			continue
		}
		cmd := exec.Command("docker", "-H", env["DOCKER_HOST"], "secret", "create", name, "-")
		cmd.Stdin = strings.NewReader("placeholder-" + rtUniq() + rtUniq())
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("creating secret %s: %v\n%s", name, err, out)
		}
	}
}

// rtDeployStack builds the FROM-scratch image on the lab, loads it into every node and deploys
// charts/swarmguard/stack.yml as stack name with the given configuration (a copy of the stack file next to
// it), removing the stack when the test ends. It returns the service name.
func rtDeployStack(t *testing.T, env map[string]string, name, config string) string {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(dir, "image", "swarmguard"), "./cmd/swarmguard")
	build.Dir, build.Env = repoRoot(), append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the static binary: %v\n%s", err, out)
	}
	for src, dst := range map[string]string{
		filepath.Join(repoRoot(), "charts/swarmguard/Dockerfile"): filepath.Join(dir, "image", "Dockerfile"),
		"/etc/ssl/certs/ca-certificates.crt":                      filepath.Join(dir, "image", "ca-certificates.crt"),
		filepath.Join(repoRoot(), "charts/swarmguard/stack.yml"):  filepath.Join(dir, "stack.yml"),
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	img := exec.CommandContext(ctx, "docker", "-H", env["DOCKER_HOST"], "build", "-q", "-t", "swarmguard:dev", filepath.Join(dir, "image"))
	img.Env = append(baseEnv(env), "DOCKER_BUILDKIT=0")
	if out, err := img.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	lab(t, env, "load-image", "swarmguard:dev")
	rtEnsureStackSecrets(t, env)
	deploy := exec.CommandContext(ctx, "docker", "-H", env["DOCKER_HOST"], "stack", "deploy", "--resolve-image", "never", "-c", filepath.Join(dir, "stack.yml"), name)
	deploy.Env = append(baseEnv(env), "SWARMGUARD_IMAGE=swarmguard:dev", "SWARMGUARD_CONFIG_HASH="+rtFingerprint(config)[:12])
	if out, err := deploy.CombinedOutput(); err != nil {
		t.Fatalf("docker stack deploy: %v\n%s", err, out)
	}
	// as `make deploy` does: the stack file cannot set no-new-privileges, the Engine API (1.44+) can
	for _, svc := range []string{name + "_swarmguard", name + "_beacon"} {
		nnp := exec.CommandContext(ctx, filepath.Join(repoRoot(), "charts/swarmguard/no-new-privileges"), svc)
		nnp.Env = baseEnv(env)
		out, err := nnp.CombinedOutput()
		var ee *exec.ExitError
		if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 3) {
			t.Fatalf("charts/swarmguard/no-new-privileges: %v\n%s", err, out)
		}
		t.Logf("%s", bytes.TrimSpace(out))
		if err == nil && bytes.Contains(out, []byte(" updated (")) {
			// the update rolls every replica; the tests start from the rolled ones
			eventually(t, 5*time.Minute, "the no-new-privileges update of "+svc+" to complete", func() bool {
				st, err := docker(t, env, "", "service", "inspect", "--format", "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", svc)
				return err == nil && st == "completed"
			})
		}
	}
	t.Cleanup(func() {
		_, _ = docker(t, env, "", "stack", "rm", name)
		eventually(t, 90*time.Second, "stack "+name+" removed", func() bool {
			out, err := docker(t, env, "", "ps", "-q", "--filter", "label=com.docker.stack.namespace="+name)
			svc, err2 := docker(t, env, "", "service", "ls", "-q", "--filter", "label=com.docker.stack.namespace="+name)
			return err == nil && err2 == nil && out == "" && svc == ""
		})
	})
	return name + "_swarmguard"
}

// rtTask is one running container of the stack on a manager.
type rtTask struct {
	host, id string
	node     int
}

func (k rtTask) readyz(t *testing.T, env map[string]string) string {
	first, _, _ := strings.Cut(k.readyzBody(t, env), "\n")
	return strings.TrimPrefix(first, "ready: ")
}

// readyzBody is the container's whole /readyz body ("" when it does not answer).
func (k rtTask) readyzBody(t *testing.T, env map[string]string) string {
	out, err := docker(t, env, k.host, "exec", k.id, "/swarmguard", "health", "--url", "http://127.0.0.1:9323/readyz")
	if err != nil {
		return ""
	}
	return out
}

// metrics reads the container's /metrics from inside its network namespace (the image has no curl, and
// `swarmguard health` prints only the start of a body).
func (k rtTask) metrics(t *testing.T, env map[string]string) string {
	pid, err := docker(t, env, k.host, "inspect", "--format", "{{.State.Pid}}", k.id)
	if err != nil {
		return ""
	}
	out, err := exec.Command("nsenter", "-t", pid, "-n", "curl", "-s", "-m", "5", "http://127.0.0.1:9323/metrics").Output()
	if err != nil {
		return ""
	}
	return string(out)
}

// TestRuntimeStack deploys the real stack (3 managers): every replica runs and is healthy, exactly one holds
// the lease (lease object, logs, metrics and /readyz agree), the others stand by; stopping the holder's
// dockerd hands the lease to another replica within TTL + 10 s, which performs the join-token rotation that
// fell due meanwhile exactly once.
func TestRuntimeStack(t *testing.T) {
	env := labEnv(t)
	hosts, nodes := rtManagerSockets(t, env, 3)
	if out, _ := docker(t, env, "", "stack", "ls", "--format", "{{.Name}}"); strings.Contains(out, "swarmguard") {
		t.Fatalf("a swarmguard stack is deployed on the lab (%q); this test needs the lab to itself", out)
	}
	id := rtUniq()
	rtRemoveObjects(t, env, id)
	// The default TTL, well above the lab's raft re-election time (12 to 18 s after the leader's dockerd
	// stops, LAB.md, longer on a loaded machine): when the holder runs on the raft leader no one can write
	// the lease before a new leader exists, so a TTL near that time could not meet "TTL + 10 s" whatever
	// the lease does.
	const ttl = 30 * time.Second
	config := fmt.Sprintf(`log: {level: debug, format: json}
listen: ":9323"
lease: {name: sgit-lease-%[1]s, ttl: %[2]s}
ledger: {name: sgit-state-%[1]s}
docker: {api_timeout: 5s}
tokens:
  schedule: "@every 1s"
  worker: {max_age: %[3]s}
  manager: {max_age: 8760h}
`, id, ttl, rtFailoverMaxAge)
	cfgFile := rtRuntimeConfig(t, config)
	svc := rtDeployStack(t, env, "sgrt", config)

	tasks := map[string]rtTask{}
	eventually(t, 3*time.Minute, "a healthy swarmguard container on every manager", func() bool {
		for i, h := range hosts {
			ids, err := docker(t, env, h, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc, "--filter", "health=healthy")
			if err != nil || ids == "" {
				return false
			}
			tasks[h] = rtTask{host: h, id: strings.Fields(ids)[0], node: nodes[i]}
		}
		return true
	})
	var holder rtTask
	eventually(t, time.Minute, "one holder and two standbys", func() bool {
		holders, standbys := 0, 0
		for _, k := range tasks {
			switch k.readyz(t, env) {
			case "holder":
				holders++
				holder = k
			case "standby":
				standbys++
			}
		}
		return holders == 1 && standbys == len(tasks)-1
	})
	holderNode := mustDocker(t, env, holder.host, "info", "--format", "{{.Swarm.NodeID}}")
	if l := rtReadLease(t, env, hosts[0], cfgFile); l.Node != holderNode || l.Actor != "operator:"+holderNode {
		t.Fatalf("lease object %+v; want held by the replica on n%d (%s)", l, holder.node, holderNode)
	}
	pt := rtPromtool(t)
	for _, k := range tasks {
		nodeID := mustDocker(t, env, k.host, "info", "--format", "{{.Swarm.NodeID}}")
		want := "0"
		if k == holder {
			want = "1"
		}
		m := k.metrics(t, env)
		if !strings.Contains(m, fmt.Sprintf("swarmguard_lease_holder{node=%q} %s\n", nodeID, want)) {
			t.Errorf("n%d metrics: want swarmguard_lease_holder{node=%q} %s", k.node, nodeID, want)
		}
		check := exec.Command(pt, "check", "metrics")
		check.Stdin = strings.NewReader(m)
		if out, err := check.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on n%d: %v\n%s", k.node, err, out)
		}
		logs, _ := docker(t, env, k.host, "logs", k.id)
		msg := `"msg":"standby: another replica holds the lease"`
		if k == holder {
			msg = `"msg":"holder: this replica acts"`
		}
		if !strings.Contains(logs, msg) {
			t.Errorf("n%d logs lack %s", k.node, msg)
		}
	}
	t.Logf("stack: 3 healthy replicas, holder on n%d", holder.node)

	// Failover: the holder's dockerd stops right after it rotated the worker token; the next rotation falls
	// due while no one may act yet, and the new holder does it, once.
	observer := hosts[0]
	if observer == holder.host {
		observer = hosts[1]
	}
	rtFailover{holderNode: holder.node, observer: observer, cfg: cfgFile, lease: "sgit-lease-" + id, ttl: ttl,
		nextHolder: func() (string, string, bool) {
			for _, k := range tasks {
				if k != holder && k.readyz(t, env) == "holder" {
					return k.host, mustDocker(t, env, k.host, "info", "--format", "{{.Swarm.NodeID}}"), true
				}
			}
			return "", "", false
		},
		sawSeq: func(seq string) bool {
			for _, k := range tasks {
				if k != holder && !strings.Contains(k.readyzBody(t, env), "\nlease seq: "+seq+" ") {
					return false
				}
			}
			return true
		},
	}.run(t, env)
}
