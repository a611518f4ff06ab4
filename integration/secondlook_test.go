//go:build integration

package integration

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// These tests prove issue 21's findings 5 and 6 on the lab, where the engine's behaviour is the point: a root
// CA rotation with a node down never finishes, and completes once the node is back (LAB.md).

// slWorker is the lab's worker and its lab node number; the test stops it, so every cleanup starts it again.
func slWorker(t *testing.T, env map[string]string, c *swarm.Client) (swarm.Node, string) {
	t.Helper()
	nodes, err := c.Nodes(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Role == "worker" {
			return n, n.Hostname[strings.LastIndex(n.Hostname, "-n")+2:]
		}
	}
	t.Fatal("no worker in the lab")
	return swarm.Node{}, ""
}

// slStopNode stops a lab node and waits until the managers see it down; the node is started again when the
// test ends (the returned func starts it earlier).
func slStopNode(t *testing.T, env map[string]string, c *swarm.Client, n swarm.Node, num string) func() {
	t.Helper()
	lab(t, env, "node", "stop", num)
	started := false
	start := func() {
		if !started {
			started = true
			lab(t, env, "node", "start", num)
		}
	}
	t.Cleanup(func() {
		start()
		// Leave no rotation stalled for the next test.
		poll(2*time.Minute, func() bool { ca, err := c.CA(context.Background()); return err == nil && !ca.RootRotationInProgress })
	})
	eventually(t, 90*time.Second, n.Hostname+" to be down", func() bool {
		ns, err := c.Nodes(t.Context())
		if err != nil {
			return false
		}
		for _, x := range ns {
			if x.ID == n.ID {
				return x.State == "down"
			}
		}
		return false
	})
	return start
}

// slRotationDone waits until no root CA rotation is in progress.
func slRotationDone(t *testing.T, c *swarm.Client, within time.Duration, what string) swarm.CAState {
	t.Helper()
	var ca swarm.CAState
	eventually(t, within, what, func() bool {
		var err error
		ca, err = c.CA(t.Context())
		return err == nil && !ca.RootRotationInProgress
	})
	return ca
}

var slIncidentID = regexp.MustCompile(`inc-[0-9a-z-]+`)

// TestIncidentResumeAfterCARotationCompleted (issue 21, finding 6): the incident's CA step times out with the
// worker down; the worker returns and the swarm finishes that rotation by itself; the incident resumed with
// --id (as its error says) follows the rotation it started, finds it finished, records it and starts no
// other one: ForceRotate is unchanged and every node renewed once.
func TestIncidentResumeAfterCARotationCompleted(t *testing.T) {
	env := labEnv(t)
	c := certsClient(t, env)
	ledgerName := "sgit-state-" + rtUniq()
	cfg := certsConfig(t, env, ledgerName, "")
	t.Cleanup(func() { _ = certsRemoveConfig(c, ledgerName) })
	slRotationDone(t, c, 2*time.Minute, "no root CA rotation in progress before the test")
	worker, num := slWorker(t, env, c)
	start := slStopNode(t, env, c, worker, num)

	r := runSG(t, env, nil, "--config", cfg, "incident", "--scope", "ca", "--ca-timeout", "5s", "--reason", "integration: CA step times out")
	t.Logf("incident with the worker down: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	if r.Code == 0 {
		t.Fatal("the incident's CA step did not time out with the worker down")
	}
	id := slIncidentID.FindString(r.Stderr)
	if id == "" {
		t.Fatalf("the incident printed no ID:\n%s", r.Stderr)
	}
	mid, err := c.CA(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !mid.RootRotationInProgress {
		t.Fatal("no root CA rotation in progress after the CA step timed out with the worker down")
	}
	start()
	done := slRotationDone(t, c, 2*time.Minute, "the swarm to finish the rotation once the worker is back")
	if done.ForceRotate != mid.ForceRotate {
		t.Fatalf("ForceRotate moved from %d to %d while the swarm finished the rotation", mid.ForceRotate, done.ForceRotate)
	}

	r = runSG(t, env, nil, "--config", cfg, "incident", "--id", id, "--scope", "ca", "--ca-timeout", "60s", "--reason", "integration: resume")
	t.Logf("incident resumed: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	after, err := c.CA(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if after.ForceRotate != done.ForceRotate {
		t.Errorf("resuming %s after the swarm finished its rotation started another one (ForceRotate %d -> %d)", id, done.ForceRotate, after.ForceRotate)
	}
	if r.Code != 0 {
		t.Fatalf("resuming %s exited %d", id, r.Code)
	}
	if !strings.Contains(r.Stdout+r.Stderr, "followed the rotation this incident started") {
		t.Errorf("the resumed CA step does not say it followed the rotation it started:\n%s%s", r.Stdout, r.Stderr)
	}
	entries, err := c.NewLedger(ledgerName, 50).Entries(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Kind == swarm.KindCA {
			actions = append(actions, e.Details["action"]+":"+e.Result)
		}
	}
	if got := strings.Join(actions, ","); got != "started:ok,wait-failed:failed,completed:ok" {
		t.Errorf("ledger ca entries = %s; want started:ok,wait-failed:failed,completed:ok (one rotation, its completion recorded on resume)", got)
	}
}

// slOldCA is a self-signed root CA whose NotBefore is age ago, valid long enough for swarm (a year at least).
func slOldCA(t *testing.T, age time.Duration) (string, sensitive.Value) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: "swarm-ca"},
		NotBefore: now.Add(-age), NotAfter: now.Add(800 * 24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		sensitive.New(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})))
}

// TestRunSIGTERMDuringStalledScheduledCAFollow (issue 21, finding 5): the controller's scheduled CA pass
// (not its take-over pass) starts a root CA rotation with the worker down and follows it; SIGTERM makes the
// controller exit within the stop grace, the lease released. The root is dated so that it falls due some 30 s
// after the controller starts: the take-over pass finds nothing due, a later scheduled pass rotates.
func TestRunSIGTERMDuringStalledScheduledCAFollow(t *testing.T) {
	const stopWithin = 10 * time.Second // the stack's stop_grace_period leaves the process 10 s (docs/operations.md)
	env := labEnv(t)
	c := certsClient(t, env)
	id := rtUniq()
	rtRemoveObjects(t, env, id)
	slRotationDone(t, c, 2*time.Minute, "no root CA rotation in progress before the test")

	// A root three days old, handed in and taken up by every node.
	certPEM, keyPEM := slOldCA(t, 72*time.Hour)
	if _, err := c.RotateCA(t.Context(), swarm.RotateCAOptions{CertPEM: certPEM, KeyPEM: keyPEM}); err != nil {
		t.Fatalf("handing in a 3-day-old root CA: %v", err)
	}
	handed := slRotationDone(t, c, 2*time.Minute, "the handed-in root CA rotation to complete")

	worker, num := slWorker(t, env, c)
	slStopNode(t, env, c, worker, num)

	// The ledger dates the root: its newest ok ca entry, 48 h minus 30 s ago (after the root's NotBefore).
	dueAt := time.Now().Add(30 * time.Second)
	ledger := c.NewLedger("sgit-state-"+id, 50)
	if _, err := ledger.Append(t.Context(), swarm.Entry{Kind: swarm.KindCA, At: dueAt.Add(-48 * time.Hour).UTC(), Actor: "integration",
		Reason: "integration: dates the root", Result: swarm.ResultOK,
		Details: map[string]string{"action": "completed", "force_rotate": strconv.FormatUint(handed.ForceRotate, 10)}}); err != nil {
		t.Fatal(err)
	}
	cfg := rtRuntimeConfig(t, fmt.Sprintf("lease: {name: sgit-lease-%s, ttl: 4s}\nledger: {name: sgit-state-%s}\n"+
		"tokens: {worker: {max_age: 8760h}, manager: {max_age: 8760h}}\n"+
		"pki: {mode: enforce, ca: {max_age: 48h, schedule: \"@every 3s\"}}\n", id, id))
	rep := rtStartReplica(t, env, env["DOCKER_HOST"], 1, cfg)
	eventually(t, 60*time.Second, "the controller to hold the lease", func() bool { return rep.role() == "holder" })
	if time.Now().After(dueAt.Add(-5 * time.Second)) {
		t.Fatalf("the controller took the lease too late (%s before the root is due) to tell a take-over pass from a scheduled one", time.Until(dueAt).Truncate(time.Second))
	}
	if ca, err := c.CA(t.Context()); err != nil || ca.RootRotationInProgress {
		t.Fatalf("a rotation is in progress before the root is due (%v): the take-over pass rotated", err)
	}
	eventually(t, 90*time.Second, "the controller's scheduled pass to start a root CA rotation", func() bool {
		ca, err := c.CA(t.Context())
		return err == nil && ca.RootRotationInProgress && ca.ForceRotate > handed.ForceRotate
	})
	if time.Now().Before(dueAt) {
		t.Fatalf("the rotation started %s before the root was due", time.Until(dueAt))
	}
	time.Sleep(5 * time.Second) // the pass follows the stalled rotation

	sent := time.Now()
	if err := rep.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-rep.done:
	case <-time.After(40 * time.Second):
		t.Fatalf("the controller still runs %s after SIGTERM: its scheduled CA pass was never cancelled", time.Since(sent).Truncate(time.Second))
	}
	took := time.Since(sent)
	t.Logf("SIGTERM to exit: %s, exit code %d", took.Truncate(time.Millisecond), rep.code)
	if took > stopWithin {
		t.Errorf("the controller took %s to stop after SIGTERM; want within %s", took.Truncate(time.Millisecond), stopWithin)
	}
	if rep.code != 0 {
		t.Errorf("exit code after SIGTERM = %d; want 0", rep.code)
	}
	if l := rtReadLease(t, env, env["DOCKER_HOST"], cfg); l.Holder != "" {
		t.Errorf("the lease is still held after the controller stopped: %+v", l)
	}
	log := rep.log.String()
	if !strings.Contains(log, "pass cancelled: the stop grace ran out") {
		t.Errorf("the controller's log does not say the pass was cancelled at the stop deadline")
	}
}
