//go:build integration

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"image/png"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// The compliance report's integration tests. Each CIS Docker Benchmark section 7 check is shown passing and
// failing on a real lab configuration where the engine allows it; where it does not, the test says so and
// the unit tests in operator/report_test.go cover that case.

// crReport is the report's JSON document.
type crReport struct {
	GeneratedAt string         `json:"generated_at"`
	SwarmID     string         `json:"swarm_id"`
	Summary     map[string]int `json:"summary"`
	Checks      []crCheck      `json:"checks"`
}

type crCheck struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	CIS         string `json:"cis"`
	Status      string `json:"status"`
	Summary     string `json:"summary"`
	Remediation string `json:"remediation"`
	Evidence    []struct {
		Subject string            `json:"subject"`
		Status  string            `json:"status"`
		Facts   map[string]string `json:"facts"`
		Note    string            `json:"note"`
	} `json:"evidence"`
}

func (r crReport) check(t testing.TB, id string) crCheck {
	t.Helper()
	for _, c := range r.Checks {
		if c.ID == id || (c.CIS != "" && c.CIS == id) {
			return c
		}
	}
	t.Fatalf("report has no check %s", id)
	return crCheck{}
}

func (c crCheck) evidenceJSON() string {
	b, _ := json.Marshal(c.Evidence)
	return string(b)
}

// crConfig writes a configuration file; ingress is exempt (with its reason: the config list) so that the
// tests judge the networks they make.
// The first manager's swarmkit control socket lets the certificates domain read every node's certificate.
func crConfig(t testing.TB, env map[string]string, extra string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "swarmguard.yaml")
	body := "networks:\n  exempt: [ingress]\n"
	if socks := strings.Fields(env["LAB_CONTROL_SOCKETS"]); len(socks) > 0 && !strings.Contains(extra, "pki:") {
		body += "pki:\n  control_socket: " + socks[0] + "\n"
	}
	body += extra
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// crRun runs `swarmguard report --format json` and parses it; host "" is the lab's DOCKER_HOST.
func crRun(t testing.TB, env map[string]string, host string, extraEnv []string, args ...string) (crReport, result) {
	t.Helper()
	e := env
	if host != "" {
		e = map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		e["DOCKER_HOST"] = host
	}
	res := runSG(t, e, extraEnv, append([]string{"report", "--format", "json"}, args...)...)
	var r crReport
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("report output is not JSON (exit %d): %v\nstdout: %s\nstderr: %s", res.Code, err, res.Stdout, res.Stderr)
	}
	return r, res
}

func crWant(t testing.TB, r crReport, id, want string) crCheck {
	t.Helper()
	c := r.check(t, id)
	if c.Status != want {
		t.Errorf("check %s (CIS %s) = %s (%s); want %s\nevidence: %s", c.ID, c.CIS, c.Status, c.Summary, want, c.evidenceJSON())
	}
	return c
}

func crName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1e8) }

// TestCIS71ManagerCount: the lab's 3 managers pass; 4 (the worker promoted) warn; 8 (four more lab nodes
// joined as managers) fail; a swarm of one bare lab node warns (no fault tolerance). The lab's own managers
// are never demoted: demoting and promoting managers in quick succession can leave one that believes it is a
// manager outside the raft member list (seen on this engine), which would break later tests.
func TestCIS71ManagerCount(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "")
	r, _ := crRun(t, env, "", nil, "--config", cfg)
	crWant(t, r, "7.1", "pass")

	managers := strings.Fields(mustDocker(t, env, "", "node", "ls", "-q", "--filter", "role=manager"))
	workers := strings.Fields(mustDocker(t, env, "", "node", "ls", "-q", "--filter", "role=worker"))
	if len(managers) != 3 || len(workers) == 0 {
		t.Fatalf("the lab should start with 3 managers and a worker: %v %v", managers, workers)
	}
	initial := strings.Fields(mustDocker(t, env, "", "node", "ls", "-q"))
	var added []string
	t.Cleanup(func() {
		for i := len(added) - 1; i >= 0; i-- {
			lab(t, env, "node", "remove", added[i])
		}
		// a join that half-happened leaves a node object behind: remove whatever was not there before, or a
		// later root rotation waits for it forever
		for _, id := range strings.Fields(mustDocker(t, env, "", "node", "ls", "-q")) {
			if !slices.Contains(initial, id) {
				_, _ = docker(t, env, "", "node", "demote", id)
				_, _ = docker(t, env, "", "node", "rm", "--force", id)
			}
		}
		crRetryDocker(t, env, "node", "demote", workers[0])
		eventually(t, 60*time.Second, "the promoted worker to be a worker again", func() bool {
			out, err := docker(t, env, "", "node", "inspect", workers[0], "--format", "{{.Spec.Role}} {{if .ManagerStatus}}manager{{end}}")
			return err == nil && out == "worker"
		})
	})

	// four managers: even
	crRetryDocker(t, env, "node", "promote", workers[0])
	eventually(t, 60*time.Second, "4 reachable managers", func() bool {
		out, err := docker(t, env, "", "node", "ls", "--filter", "role=manager", "--format", "{{.ManagerStatus}}")
		return err == nil && strings.Count(out, "Reachable")+strings.Count(out, "Leader") == 4
	})
	r, _ = crRun(t, env, "", nil, "--config", cfg)
	c := crWant(t, r, "7.1", "warn")
	if !strings.Contains(c.Summary, "4 managers") {
		t.Errorf("7.1 summary = %q; want 4 managers", c.Summary)
	}

	// eight managers: more than 7
	for i := 0; i < 4; i++ {
		out := lab(t, env, "node", "add", "manager")
		added = append(added, strings.Fields(crLastLine(out))[0])
	}
	eventually(t, 90*time.Second, "8 reachable managers", func() bool {
		out, err := docker(t, env, "", "node", "ls", "--filter", "role=manager", "--format", "{{.ManagerStatus}}")
		return err == nil && strings.Count(out, "Reachable")+strings.Count(out, "Leader") >= 8
	})
	r, _ = crRun(t, env, "", nil, "--config", cfg)
	// a join can leave a second node object behind (seen: 9 managers after 4 joins + 1 promotion): count what
	// the engine lists
	list := mustDocker(t, env, "", "node", "ls", "--filter", "role=manager", "--format", "{{.ID}} {{.Hostname}} {{.Status}} {{.ManagerStatus}}")
	managerCount := len(strings.Split(strings.TrimSpace(list), "\n"))
	c = crWant(t, r, "7.1", "fail")
	if want := fmt.Sprintf("%d managers: more than 7", managerCount); !strings.Contains(c.Summary, want) {
		t.Errorf("7.1 summary = %q; want %q; managers:\n%s", c.Summary, want, list)
	}

	// one manager: a swarm of a single bare lab node
	out := lab(t, env, "node", "add", "bare")
	f := strings.Fields(crLastLine(out))
	t.Cleanup(func() { lab(t, env, "node", "remove", f[0]) })
	mustDocker(t, env, f[1], "swarm", "init", "--advertise-addr", f[2])
	r, _ = crRun(t, env, f[1], nil, "--config", cfg)
	c = crWant(t, r, "7.1", "warn")
	if !strings.Contains(c.Summary, "1 manager: no fault tolerance") {
		t.Errorf("7.1 summary = %q; want 1 manager", c.Summary)
	}
}

// crRetryDocker runs a docker command on the lab until it succeeds: raft refuses a membership change while
// the previous one settles ("this would result in a loss of quorum").
func crRetryDocker(t testing.TB, env map[string]string, args ...string) {
	t.Helper()
	var out string
	var err error
	poll(60*time.Second, func() bool {
		out, err = docker(t, env, "", args...)
		return err == nil
	})
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestCIS72And79SeparateSwarm: the lab's managers listen on 0.0.0.0:2377 (read from the engine's
// docker-state.json on this host) and every node carries overlay traffic on its management address (its
// ingress tunnel endpoint), so 7.2 and 7.9 fail there. Then three bare lab nodes make a swarm of their own,
// each with --data-path-addr on a second address: A (--listen-addr A:2377), B (default listen 0.0.0.0) and C
// (--listen-addr C:2377). 7.9 passes; 7.2 fails naming B, which answers a TLS probe of port 2377 on its
// data-path address; once B has left, 7.2 passes (A from its state file, C from the refused probe).
// crDecidedForEveryNode says whether a check's per-node evidence has a verdict (pass or fail) for every node.
func crDecidedForEveryNode(c crCheck) bool {
	n := 0
	for _, e := range c.Evidence {
		if strings.HasPrefix(e.Subject, "node ") {
			if e.Status != "pass" && e.Status != "fail" {
				return false
			}
			n++
		}
	}
	return n > 0
}

// crBeacon runs a global service on an attachable overlay network of the swarm of host ("" for the lab's),
// like the stack's beacon, and removes both when the test ends.
func crBeacon(t *testing.T, env map[string]string, host string) {
	t.Helper()
	name := crName("beacon")
	mustDocker(t, env, host, "network", "create", "--driver", "overlay", name)
	mustDocker(t, env, host, "service", "create", "--detach", "--no-resolve-image", "--name", name, "--mode", "global",
		"--network", name, "--stop-grace-period", "1s", "swarmguard-testapp:lab", "sleep")
	t.Cleanup(func() {
		_, _ = docker(t, env, host, "service", "rm", name)
		poll(60*time.Second, func() bool {
			_, err := docker(t, env, host, "network", "rm", name)
			return err == nil
		})
	})
}

func TestCIS72And79SeparateSwarm(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "")
	// A task on every node on an overlay network, as the stack's beacon service: engines 29+ show a node's
	// data-path address only through its tasks' tunnel endpoints (20.10 also through its ingress sandbox).
	crBeacon(t, env, "")
	var r crReport
	eventually(t, 60*time.Second, "7.9 to be decided for every node", func() bool {
		r, _ = crRun(t, env, "", nil, "--config", cfg)
		return crDecidedForEveryNode(r.check(t, "7.9"))
	})
	c := crWant(t, r, "7.2", "fail")
	if !strings.Contains(c.evidenceJSON(), "0.0.0.0:2377") || !strings.Contains(c.evidenceJSON(), "docker-state.json") {
		t.Errorf("7.2 evidence does not show the wildcard listen address and its source: %s", c.evidenceJSON())
	}
	c = crWant(t, r, "7.9", "fail")
	for _, h := range strings.Fields(mustDocker(t, env, "", "node", "ls", "--format", "{{.Hostname}}")) {
		if !strings.Contains(c.Summary, h) {
			t.Errorf("7.9 summary %q does not name node %s", c.Summary, h)
		}
	}
	if !strings.Contains(c.evidenceJSON(), "tunnel endpoint") {
		t.Errorf("7.9 evidence does not come from the overlay tunnel endpoints: %s", c.evidenceJSON())
	}

	type bare struct{ n, host, ip, dataIP, id string }
	var nodes []*bare
	for i := 0; i < 3; i++ {
		out := lab(t, env, "node", "add", "bare")
		f := strings.Fields(crLastLine(out)) // N url ip
		if len(f) < 3 {
			t.Fatalf("lab node add printed %q", out)
		}
		b := &bare{n: f[0], host: f[1], ip: f[2]}
		t.Cleanup(func() { lab(t, env, "node", "remove", b.n) })
		octets := strings.Split(b.ip, ".")
		b.dataIP = strings.Join(octets[:3], ".") + ".2" + fmt.Sprintf("%02d", atoiOr(octets[3], 0)%100)
		ns := env["LAB_NAME"] + "-n" + b.n
		if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "addr", "add", b.dataIP+"/24", "dev", "eth0").CombinedOutput(); err != nil {
			t.Fatalf("adding %s to %s: %v\n%s", b.dataIP, ns, err, out)
		}
		nodes = append(nodes, b)
	}
	a, b, cc := nodes[0], nodes[1], nodes[2]
	mustDocker(t, env, a.host, "swarm", "init", "--listen-addr", a.ip+":2377", "--advertise-addr", a.ip, "--data-path-addr", a.dataIP)
	token := mustDocker(t, env, a.host, "swarm", "join-token", "-q", "manager")
	mustDocker(t, env, b.host, "swarm", "join", "--token", token, "--advertise-addr", b.ip, "--data-path-addr", b.dataIP, a.ip+":2377")
	mustDocker(t, env, cc.host, "swarm", "join", "--token", token, "--listen-addr", cc.ip+":2377", "--advertise-addr", cc.ip,
		"--data-path-addr", cc.dataIP, a.ip+":2377")
	b.id = mustDocker(t, env, b.host, "info", "-f", "{{.Swarm.NodeID}}")
	crBeacon(t, env, a.host)

	// every node's beacon task endpoint (and on 20.10 its ingress sandbox) reaches A by gossip
	eventually(t, 90*time.Second, "7.9 to pass on the three-node swarm", func() bool {
		r, _ = crRun(t, env, a.host, nil, "--config", cfg)
		return r.check(t, "7.9").Status == "pass"
	})
	c = crWant(t, r, "7.9", "pass")
	for _, n := range nodes {
		if !strings.Contains(c.evidenceJSON(), n.dataIP) {
			t.Errorf("7.9 evidence does not show the data-path address %s: %s", n.dataIP, c.evidenceJSON())
		}
	}
	crWant(t, r, "7.1", "pass")
	c = crWant(t, r, "7.2", "fail")
	if !strings.Contains(c.evidenceJSON(), b.dataIP+":2377 answered as "+b.id) || !strings.Contains(c.evidenceJSON(), cc.dataIP+":2377 refused") {
		t.Errorf("7.2 evidence does not show B answering and C refusing on their data-path addresses: %s", c.evidenceJSON())
	}
	if !strings.Contains(c.evidenceJSON(), a.ip+":2377") {
		t.Errorf("7.2 evidence does not show A's listen address from its state file: %s", c.evidenceJSON())
	}

	// B leaves: the two managers left are bound to their addresses
	mustDocker(t, env, a.host, "node", "demote", b.id)
	// A leave straight after the demotion can time out in the engine while B's manager role is still
	// stopping (seen under load on 20.10: "context deadline exceeded"): wait for B to be a worker, and take
	// a leave that timed out as done once B's engine says it is out of the swarm.
	eventually(t, 60*time.Second, "B to be a worker after its demotion", func() bool {
		out, err := docker(t, env, b.host, "info", "-f", "{{.Swarm.ControlAvailable}}")
		return err == nil && strings.TrimSpace(out) == "false"
	})
	eventually(t, 90*time.Second, "B to leave its swarm", func() bool {
		if _, err := docker(t, env, b.host, "swarm", "leave", "--force"); err == nil {
			return true
		}
		out, err := docker(t, env, b.host, "info", "-f", "{{.Swarm.LocalNodeState}}")
		return err == nil && strings.TrimSpace(out) == "inactive"
	})
	eventually(t, 60*time.Second, "B to be removable", func() bool {
		_, err := docker(t, env, a.host, "node", "rm", "--force", b.id)
		return err == nil
	})
	eventually(t, 90*time.Second, "7.2 to pass without B", func() bool {
		r, _ = crRun(t, env, a.host, nil, "--config", cfg)
		return r.check(t, "7.2").Status == "pass"
	})
	c = crWant(t, r, "7.2", "pass")
	if !strings.Contains(c.evidenceJSON(), cc.dataIP+":2377 refused") {
		t.Errorf("7.2 evidence does not show the refused probe of C: %s", c.evidenceJSON())
	}
	crWant(t, r, "7.9", "pass")
	crWant(t, r, "7.1", "warn") // two managers: an even count
}

func atoiOr(s string, d int) int {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		return d
	}
	return n
}

// TestCIS74SecretsInEnvironment: a service given DB_PASSWORD in its environment fails 7.4, naming the
// variable and never its value; once the variable is gone the check passes.
func TestCIS74SecretsInEnvironment(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "")
	value := "pw-" + crName("s3cr3t")
	svc := crName("cis74")
	mustDocker(t, env, "", "service", "create", "-d", "--name", svc, "--no-resolve-image", "--stop-grace-period", "1s",
		"--env", "DB_PASSWORD="+value, "--env", "LOG_LEVEL=debug", "swarmguard-testapp:lab", "sleep")
	t.Cleanup(func() { _, _ = docker(t, env, "", "service", "rm", svc) })

	r, res := crRun(t, env, "", nil, "--config", cfg)
	c := crWant(t, r, "7.4", "fail")
	if !strings.Contains(c.evidenceJSON(), "DB_PASSWORD") || !strings.Contains(c.evidenceJSON(), svc) {
		t.Errorf("7.4 evidence does not name %s and DB_PASSWORD: %s", svc, c.evidenceJSON())
	}
	if strings.Contains(c.evidenceJSON(), "LOG_LEVEL") {
		t.Errorf("7.4 evidence names LOG_LEVEL, which is no credential")
	}
	outputs := []string{res.Stdout, res.Stderr}
	for _, f := range []string{"table", "markdown", "html", "junit"} {
		o := runSG(t, env, nil, "report", "--config", cfg, "--format", f)
		outputs = append(outputs, o.Stdout, o.Stderr)
	}
	secretScan(t, outputs, value)

	mustDocker(t, env, "", "service", "update", "-d", "--no-resolve-image", "--env-rm", "DB_PASSWORD", svc)
	r, _ = crRun(t, env, "", nil, "--config", cfg)
	crWant(t, r, "7.4", "pass")
}

// TestCIS75And76Autolock: autolock off fails 7.5 and 7.6; on, 7.5 passes and 7.6 follows the ledger's
// unlock-key entry against autolock.rotate.max_age.
func TestCIS75And76Autolock(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "")
	mustDocker(t, env, "", "swarm", "update", "--autolock=false")
	r, _ := crRun(t, env, "", nil, "--config", cfg)
	crWant(t, r, "7.5", "fail")
	crWant(t, r, "7.6", "fail")

	out := mustDocker(t, env, "", "swarm", "update", "--autolock=true")
	t.Cleanup(func() { _, _ = docker(t, env, "", "swarm", "update", "--autolock=false") })
	key := ""
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), "SWMKEY-") {
			key = strings.TrimSpace(l)
		}
	}
	r, res := crRun(t, env, "", nil, "--config", cfg)
	crWant(t, r, "7.5", "pass")
	secretScan(t, []string{res.Stdout, res.Stderr}, key)

	// The unlock key was last rotated 10 days ago, by the ledger.
	c, err := swarm.New(swarm.Options{Host: env["DOCKER_HOST"]})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if key == "" {
		t.Fatalf("swarm update --autolock printed no unlock key:\n%s", out)
	}
	set := func(fingerprint string) {
		t.Helper()
		if _, err := c.NewLedger("", 0).Append(ctx, swarm.Entry{Kind: swarm.KindUnlockKey, At: time.Now().Add(-240 * time.Hour).UTC(),
			Actor: "integration:TestCIS75And76Autolock", Reason: "test: key set 10 days ago", Result: swarm.ResultOK,
			Details: map[string]string{"fingerprint": fingerprint}}); err != nil {
			t.Fatal(err)
		}
	}
	set(sensitive.New(key).Fingerprint())
	r, _ = crRun(t, env, "", []string{"SWARMGUARD_AUTOLOCK_ROTATE_MAX_AGE=720h"}, "--config", cfg)
	crWant(t, r, "7.6", "pass")
	r, _ = crRun(t, env, "", []string{"SWARMGUARD_AUTOLOCK_ROTATE_MAX_AGE=48h"}, "--config", cfg)
	c76 := crWant(t, r, "7.6", "fail")
	if !strings.Contains(c76.Summary, "over its max age 48h") {
		t.Errorf("7.6 summary = %q", c76.Summary)
	}
	// The ledger's last rotation recorded another key: the swarm's key changed outside the ledger. The
	// controller adopts it (no rotation); 7.6 says so instead of failing.
	set("another key's fingerprint")
	r, _ = crRun(t, env, "", []string{"SWARMGUARD_AUTOLOCK_ROTATE_MAX_AGE=48h"}, "--config", cfg)
	if c76 = crWant(t, r, "7.6", "warn"); !strings.Contains(c76.Summary, "adopts it") {
		t.Errorf("7.6 summary for a key changed outside the ledger = %q", c76.Summary)
	}
}

// TestCIS77CertExpiry: the cluster's node certificate expiry against pki.node_cert_expiry (default 2160h).
func TestCIS77CertExpiry(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "")
	t.Cleanup(func() { _, _ = docker(t, env, "", "swarm", "update", "--cert-expiry", "2160h") })
	mustDocker(t, env, "", "swarm", "update", "--cert-expiry", "4320h")
	r, _ := crRun(t, env, "", nil, "--config", cfg)
	c := crWant(t, r, "7.7", "fail")
	if !strings.Contains(c.evidenceJSON(), "4320h") {
		t.Errorf("7.7 evidence does not show 4320h: %s", c.evidenceJSON())
	}
	mustDocker(t, env, "", "swarm", "update", "--cert-expiry", "720h")
	r, _ = crRun(t, env, "", nil, "--config", cfg)
	crWant(t, r, "7.7", "pass")
}

// TestCIS78CAAge: a root CA handed in with a NotBefore 400 days ago fails against pki.ca.max_age 8760h; after
// `docker swarm ca --rotate` (a fresh CA) it passes.
func TestCIS78CAAge(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "pki:\n  control_socket: "+strings.Fields(env["LAB_CONTROL_SOCKETS"])[0]+"\n  ca:\n    max_age: 8760h\n")
	dir := t.TempDir()
	certPEM, keyPEM := crOldCA(t, time.Now().Add(-400*24*time.Hour))
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := mustDocker(t, env, "", "node", "ls", "--format", "{{.Hostname}} {{.Status}}"); strings.Contains(out, "Down") || strings.Contains(out, "Unknown") {
		t.Fatalf("a root rotation never finishes with a node down (LAB.md); nodes:\n%s", out)
	}
	crRotateCA(t, env, "--ca-cert", certFile, "--ca-key", keyFile)
	r, _ := crRun(t, env, "", nil, "--config", cfg)
	c := crWant(t, r, "7.8", "fail")
	if !strings.Contains(c.Summary, "over its max age 8760h") {
		t.Errorf("7.8 summary = %q", c.Summary)
	}
	crRotateCA(t, env)
	r, _ = crRun(t, env, "", nil, "--config", cfg)
	crWant(t, r, "7.8", "pass")
	crWant(t, r, "pki.ca-key-strength", "pass")
}

// crRotateCA starts a root rotation and follows it to the end by polling (LAB.md: about 3.5 s with every
// node up).
func crRotateCA(t testing.TB, env map[string]string, args ...string) {
	t.Helper()
	mustDocker(t, env, "", append([]string{"swarm", "ca", "--rotate", "-d", "-q"}, args...)...)
	eventually(t, 90*time.Second, "the root rotation to finish", func() bool {
		out, err := docker(t, env, "", "info", "-f", "{{.Swarm.Cluster.RootRotationInProgress}}")
		return err == nil && out == "false"
	})
}

// crOldCA makes a root CA (P-256) valid from notBefore for 5 years (the engine wants a year left at least).
func crOldCA(t testing.TB, notBefore time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "swarm-ca"},
		NotBefore: notBefore, NotAfter: notBefore.Add(5 * 365 * 24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
}

// TestReportFormatsAndGate: every format renders; --fail-on fail exits 1 with a failing check, --fail-on none 0.
func TestReportFormatsAndGate(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "")
	r, res := crRun(t, env, "", nil, "--config", cfg)
	if r.SwarmID == "" || r.GeneratedAt == "" || len(r.Summary) != 5 {
		t.Errorf("JSON head = %q %q %v", r.SwarmID, r.GeneratedAt, r.Summary)
	}
	cis := map[string]bool{}
	for _, c := range r.Checks {
		if c.ID == "" || c.Title == "" || c.Status == "" || c.Remediation == "" {
			t.Errorf("check %+v lacks id, title, status or remediation", c)
		}
		cis[c.CIS] = true
		if strings.Contains(c.Summary, "not available in this build") {
			t.Errorf("check %s: %s (every domain is in this build)", c.ID, c.Summary)
		}
	}
	for _, id := range []string{"tokens.age", "autolock.escrow", "pki.node-certs", "pki.down-nodes", "secrets.sync"} {
		r.check(t, id)
	}
	for i := 1; i <= 9; i++ {
		if !cis[fmt.Sprintf("7.%d", i)] {
			t.Errorf("no check for CIS 7.%d", i)
		}
	}
	// the lab fails 7.2 (listen on 0.0.0.0), so the gate trips
	if res.Code != 0 {
		t.Errorf("report without a gate exited %d; want 0 (no check errored): %s", res.Code, res.Stderr)
	}
	if g := runSG(t, env, nil, "report", "--config", cfg, "--fail-on", "fail"); g.Code != 1 {
		t.Errorf("--fail-on fail exited %d; want 1", g.Code)
	}
	if g := runSG(t, env, nil, "report", "--config", cfg, "--fail-on", "none"); g.Code != 0 {
		t.Errorf("--fail-on none exited %d; want 0", g.Code)
	}
	if g := runSG(t, env, nil, "report", "--config", cfg, "--fail-on", "bogus"); g.Code != 2 {
		t.Errorf("--fail-on bogus exited %d; want 2", g.Code)
	}
	j := runSG(t, env, nil, "report", "--config", cfg, "--format", "junit")
	var suites struct {
		Tests int `xml:"tests,attr"`
		Fails int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal([]byte(j.Stdout), &suites); err != nil || suites.Tests != len(r.Checks) || suites.Fails != r.Summary["fail"] {
		t.Errorf("junit = %+v (%v); want %d tests, %d failures", suites, err, len(r.Checks), r.Summary["fail"])
	}
	md := runSG(t, env, nil, "report", "--config", cfg, "--format", "markdown")
	if !strings.HasPrefix(md.Stdout, "# swarmguard compliance report") || !strings.Contains(md.Stdout, "(CIS 7.3)") {
		t.Errorf("markdown report head: %.200s", md.Stdout)
	}
	out := filepath.Join(t.TempDir(), "r.json")
	if o := runSG(t, env, nil, "report", "--config", cfg, "--format", "json", "--output", out); o.Code != 0 {
		t.Fatalf("--output exited %d: %s", o.Code, o.Stderr)
	}
	if b, err := os.ReadFile(out); err != nil || !json.Valid(b) {
		t.Errorf("--output file: %v, valid JSON %v", err, json.Valid(b))
	}
}

// TestReportHTMLChromium renders the HTML report in headless Chromium: the screenshot is not blank and the
// page logs no console message (the report has no script and no external asset; a failed load would log).
func TestReportHTMLChromium(t *testing.T) {
	env := labEnv(t)
	cfg := crConfig(t, env, "")
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not installed (apt-get install -y --no-install-recommends chromium): %v", err)
	}
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	if o := runSG(t, env, nil, "report", "--config", cfg, "--format", "html", "--output", page); o.Code != 0 {
		t.Fatalf("html report exited %d: %s", o.Code, o.Stderr)
	}
	html, _ := os.ReadFile(page)
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "url("} {
		if strings.Contains(string(html), bad) {
			t.Errorf("HTML report holds %q: not self-contained", bad)
		}
	}
	// both charts are drawn: certificate days left per node (the control socket gives every node's
	// certificate) and the credential ages
	if n := strings.Count(string(html), "<svg"); n != 2 || !strings.Contains(string(html), " days</text>") {
		t.Errorf("HTML report has %d charts (want 2, one with days-left bars)", n)
	}
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+filepath.Join(dir, "profile"),
		"--enable-logging=stderr", "--v=0", "--window-size=1200,2000", "--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "CONSOLE") || strings.Contains(l, "Uncaught") || strings.Contains(l, "Failed to load resource") {
			t.Errorf("console message while rendering the report: %s", l)
		}
	}
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	nonWhite, colored := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				nonWhite++
			}
			if max3(r, g, bl)-min3(r, g, bl) > 0x3000 {
				colored++ // badges and chart bars
			}
		}
	}
	total := b.Dx() * b.Dy()
	t.Logf("screenshot %dx%d: %d non-white pixels (%.1f%%), %d colored", b.Dx(), b.Dy(), nonWhite, 100*float64(nonWhite)/float64(total), colored)
	if nonWhite < total/100 {
		t.Errorf("screenshot is blank: %d of %d pixels are not white", nonWhite, total)
	}
	if colored == 0 {
		t.Errorf("screenshot has no colored pixel: no status badge or chart bar was drawn")
	}
}

func max3(a, b, c uint32) uint32 { return max(a, max(b, c)) }
func min3(a, b, c uint32) uint32 { return min(a, min(b, c)) }

func crLastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// TestReportSecretsSync: the report's secrets.sync check from a dry-run pass against the lab's Vault: a
// mapping whose Vault value has no Docker secret yet is behind (warn); after a sync it passes; no value
// appears in any output.
func TestReportSecretsSync(t *testing.T) {
	f := newSecretsFixture(t, "rep", "networks:\n  exempt: [ingress]\n")
	f.put("rep-" + crName("value"))
	res := f.sg(nil, "report", "--format", "json")
	var r crReport
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("report: %v\n%s\n%s", err, res.Stdout, res.Stderr)
	}
	c := crWant(t, r, "secrets.sync", "warn")
	if !strings.Contains(c.Summary, "behind Vault: "+f.name) {
		t.Errorf("secrets.sync summary = %q", c.Summary)
	}
	f.mustSG("rotate", "secret", f.name, "--reason", "report test")
	res = f.sg(nil, "report", "--format", "json")
	r = crReport{}
	if err := json.Unmarshal([]byte(res.Stdout), &r); err != nil {
		t.Fatalf("report: %v\n%s", err, res.Stdout)
	}
	c = crWant(t, r, "secrets.sync", "pass")
	if !strings.Contains(c.evidenceJSON(), "last_sync") {
		t.Errorf("secrets.sync evidence lacks the last sync from the ledger: %s", c.evidenceJSON())
	}
	f.mu.Lock()
	outputs := append([]string(nil), f.outputs...)
	f.mu.Unlock()
	secretScan(t, outputs, f.values...)
}
