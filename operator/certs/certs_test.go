package certs

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/internal/testpki"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

var certsNowT = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// fakeCertsEngine serves CA states in sequence (the last repeats) and records writes.
type fakeCertsEngine struct {
	mu        sync.Mutex
	states    []swarm.CAState
	nodes     [][]swarm.Node
	reads     int
	setExpiry []time.Duration
	rotations []swarm.RotateCAOptions
	rotateRes swarm.RotateCAResult
}

func (f *fakeCertsEngine) CA(context.Context) (swarm.CAState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.reads, len(f.states)-1)
	f.reads++
	return f.states[i], nil
}

func (f *fakeCertsEngine) Nodes(context.Context) ([]swarm.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := min(f.reads-1, len(f.nodes)-1)
	return f.nodes[max(i, 0)], nil
}

func (f *fakeCertsEngine) SetNodeCertExpiry(_ context.Context, d time.Duration) (time.Duration, bool, error) {
	f.setExpiry = append(f.setExpiry, d)
	return f.states[0].NodeCertExpiry, true, nil
}

func (f *fakeCertsEngine) RotateCA(_ context.Context, o swarm.RotateCAOptions) (swarm.RotateCAResult, error) {
	f.rotations = append(f.rotations, o)
	return f.rotateRes, nil
}

func certsPKIConf(mode string) config.PKIConfig {
	c := config.DefaultConfig().PKI
	c.Mode = mode
	return c
}

func TestEnforceNodeCertExpiry(t *testing.T) {
	tests := []struct {
		name      string
		mode      string
		current   time.Duration
		dryRun    bool
		recorded  string // the "to" of a node-cert-expiry entry already in the ledger
		wantSet   bool
		wantEntry bool
		wantOut   string
	}{
		{"audit leaves it", config.ModeAudit, 90 * time.Hour, false, "", false, false, ""},
		// The change itself is in the ledger entry (from, to) and the log: the act prints nothing.
		{"enforce sets it", config.ModeEnforce, 90 * time.Hour, false, "", true, true, ""},
		{"enforce, already set and recorded", config.ModeEnforce, 24 * time.Hour, false, "24h0m0s", false, false, ""},
		{"enforce, already set, another value recorded", config.ModeEnforce, 24 * time.Hour, false, "90h0m0s", false, true, ""},
		{"enforce, already set, not recorded", config.ModeEnforce, 24 * time.Hour, false, "", false, true, ""},
		{"audit, already set, not recorded", config.ModeAudit, 24 * time.Hour, false, "", false, false, ""},
		{"enforce, dry run", config.ModeEnforce, 90 * time.Hour, true, "", false, false, "would set the node certificate expiry from 90h0m0s to 24h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := certsPKIConf(tt.mode)
			c.NodeCertExpiry = config.Duration(24 * time.Hour)
			eng := &fakeCertsEngine{states: []swarm.CAState{{NodeCertExpiry: tt.current}}}
			led := ledgertest.New()
			before := 0
			if tt.recorded != "" {
				if _, err := led.Append(t.Context(), swarm.Entry{Kind: swarm.KindNodeCertExpiry, At: certsNowT.Add(-time.Hour), Result: swarm.ResultOK,
					Details: map[string]string{"to": tt.recorded}}); err != nil {
					t.Fatal(err)
				}
				before = 1
			}
			var out bytes.Buffer
			env := operator.TaskEnv{DryRun: tt.dryRun, Actor: "test", Out: &out, Now: func() time.Time { return certsNowT }}
			if err := EnforceNodeCertExpiry(t.Context(), eng, led, c, eng.states[0], env); err != nil {
				t.Fatal(err)
			}
			if got := len(eng.setExpiry) > 0; got != tt.wantSet {
				t.Errorf("set = %v; want %v", eng.setExpiry, tt.wantSet)
			}
			all := led.All()
			if got := len(all) > before; got != tt.wantEntry {
				t.Errorf("ledger = %+v; want a new entry %v", all, tt.wantEntry)
			}
			if tt.wantEntry {
				e := all[len(all)-1]
				wantResult, wantFrom := swarm.ResultOK, "90h0m0s"
				if !tt.wantSet {
					wantResult, wantFrom = swarm.ResultAdopted, "" // found as wanted, not in the ledger: recorded once
				}
				if e.Kind != swarm.KindNodeCertExpiry || e.Result != wantResult || e.Details["to"] != "24h0m0s" || e.Details["from"] != wantFrom || !e.At.Equal(certsNowT) {
					t.Errorf("ledger entry = %+v; want %s to 24h0m0s from %q", e, wantResult, wantFrom)
				}
				// A second pass finds the entry: nothing more is recorded.
				eng.states[0].NodeCertExpiry = 24 * time.Hour
				if err := EnforceNodeCertExpiry(t.Context(), eng, led, c, eng.states[0], env); err != nil {
					t.Fatal(err)
				}
				if n := len(led.All()); n != len(all) {
					t.Errorf("a second pass recorded again: %d entries, want %d", n, len(all))
				}
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("out = %q; want %q", out.String(), tt.wantOut)
			}
			if !tt.dryRun && out.Len() > 0 {
				t.Errorf("out = %q; the act prints nothing (only a dry run prints its plan)", out.String())
			}
		})
	}
}

func TestEnforceStaleLeaderDoesNothing(t *testing.T) {
	c := certsPKIConf(config.ModeEnforce)
	c.NodeCertExpiry = config.Duration(24 * time.Hour)
	eng := &fakeCertsEngine{states: []swarm.CAState{{NodeCertExpiry: time.Hour}}}
	lost := errors.New("lease lost")
	err := EnforceNodeCertExpiry(t.Context(), eng, ledgertest.New(), c, eng.states[0], operator.TaskEnv{Guard: operator.CheckOnly(func(context.Context) error { return lost })})
	if !errors.Is(err, lost) || len(eng.setExpiry) != 0 {
		t.Errorf("EnforceNodeCertExpiry with lost lease = %v, set %v; want the lease error and no write", err, eng.setExpiry)
	}
}

func TestCARotationDue(t *testing.T) {
	y := 8760 * time.Hour
	tests := []struct {
		age, max   time.Duration
		inProgress bool
		want       bool
	}{
		{y - time.Second, y, false, false},
		{y, y, false, true}, // due at its max age, as the report says
		{y + time.Second, y, false, true},
		{y + time.Second, y, true, false},
		{10 * y, 0, false, false},
	}
	for _, tt := range tests {
		if got := CARotationDue(tt.age, tt.max, tt.inProgress); got != tt.want {
			t.Errorf("CARotationDue(%v, %v, %v) = %v; want %v", tt.age, tt.max, tt.inProgress, got, tt.want)
		}
	}
}

func TestScheduledCARotation(t *testing.T) {
	old := testpki.NewRoot(t, 1, certsNowT.Add(-400*24*time.Hour))
	young := testpki.NewRoot(t, 2, certsNowT.Add(-10*24*time.Hour))
	tests := []struct {
		name        string
		mode        string
		maxAge      time.Duration
		state       swarm.CAState
		wantStarted bool
	}{
		{"off without max_age", config.ModeEnforce, 0, swarm.CAState{TrustRootPEM: old.PEM}, false},
		{"young root", config.ModeEnforce, 8760 * time.Hour, swarm.CAState{TrustRootPEM: young.PEM}, false},
		{"old root, audit", config.ModeAudit, 8760 * time.Hour, swarm.CAState{TrustRootPEM: old.PEM}, false},
		{"old root, enforce", config.ModeEnforce, 8760 * time.Hour, swarm.CAState{TrustRootPEM: old.PEM, ForceRotate: 3}, true},
		{"old root, rotation running", config.ModeEnforce, 8760 * time.Hour, swarm.CAState{TrustRootPEM: old.PEM, RootRotationInProgress: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := certsPKIConf(tt.mode)
			c.CA.MaxAge = config.Duration(tt.maxAge)
			eng := &fakeCertsEngine{states: []swarm.CAState{tt.state}, rotateRes: swarm.RotateCAResult{Started: true, ForceRotate: 4}}
			led := ledgertest.New()
			start, err := ScheduledCARotation(t.Context(), eng, led, c, operator.TaskEnv{Actor: "node1", Now: func() time.Time { return certsNowT }})
			if err != nil {
				t.Fatal(err)
			}
			if start.Started != tt.wantStarted || (len(eng.rotations) > 0) != tt.wantStarted {
				t.Errorf("started = %v, rotations %d; want %v", start.Started, len(eng.rotations), tt.wantStarted)
			}
			if tt.wantStarted {
				all := led.All()
				e := all[len(all)-1]
				if len(all) != 2 || all[0].Result != swarm.ResultAdopted || all[0].Details["force_rotate"] != "3" {
					t.Errorf("ledger = %+v; want the unrecorded rotation 3 adopted, then the new one", all)
				}
				if e.Kind != swarm.KindCA || e.Details["action"] != "started" || e.Details["force_rotate"] != "4" || e.Details["old_root_serial"] != "1" || !strings.HasPrefix(e.Reason, "scheduled:") {
					t.Errorf("ledger entry = %+v", e)
				}
			}
		})
	}
}

// A root CA rotation the ledger has no entry for (a process killed between starting it and recording it, or
// `docker swarm ca --rotate`) is recorded once as adopted and never started again.
func TestUnrecordedCARotationAdopted(t *testing.T) {
	young := testpki.NewRoot(t, 2, certsNowT.Add(-time.Hour))
	started := swarm.Entry{Kind: swarm.KindCA, Result: swarm.ResultOK, Details: map[string]string{"action": "started", "force_rotate": "7"}}
	completed := swarm.Entry{Kind: swarm.KindCA, Result: swarm.ResultOK, Details: map[string]string{"action": "completed"}}
	for _, tc := range []struct {
		name    string
		force   uint64
		entries []swarm.Entry
		want    bool
	}{
		{"never rotated", 0, nil, false},
		{"rotated, no ca entry", 7, nil, true},
		{"the start is recorded", 7, []swarm.Entry{started, completed}, false},
		{"a later counter than the ledger's", 8, []swarm.Entry{started, completed}, true},
		{"a completion alone names no counter", 7, []swarm.Entry{completed}, true},
		{"another kind naming the counter", 7, []swarm.Entry{{Kind: swarm.KindNetwork, Details: map[string]string{"force_rotate": "7"}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, got := UnrecordedCARotation(swarm.CAState{ForceRotate: tc.force}, tc.entries)
			if got != tc.want || (got && n != tc.force) {
				t.Fatalf("UnrecordedCARotation(%d) = %d, %v; want %v", tc.force, n, got, tc.want)
			}
		})
	}

	c := certsPKIConf(config.ModeEnforce)
	c.CA.MaxAge = config.Duration(8760 * time.Hour)
	eng := &fakeCertsEngine{states: []swarm.CAState{{TrustRootPEM: young.PEM, ForceRotate: 8}}}
	led := ledgertest.New(started, completed)
	env := operator.TaskEnv{Actor: "node1", Now: func() time.Time { return certsNowT }}
	var out strings.Builder
	dry := env
	dry.DryRun, dry.Out = true, &out
	if _, err := ScheduledCARotation(t.Context(), eng, led, c, dry); err != nil {
		t.Fatal(err)
	}
	if len(led.All()) != 2 || !strings.Contains(out.String(), "would record root CA rotation 8 as adopted") {
		t.Fatalf("dry run: ledger %+v, output %q; want nothing written and the adoption announced", led.All(), out.String())
	}
	for pass := range 2 {
		start, err := ScheduledCARotation(t.Context(), eng, led, c, env)
		if err != nil {
			t.Fatal(err)
		}
		all := led.All()
		if start.Started || len(eng.rotations) != 0 || len(all) != 3 {
			t.Fatalf("pass %d: started %v, %d rotations, ledger %+v; want no rotation and one adopted entry", pass, start.Started, len(eng.rotations), all)
		}
		if e := all[2]; e.Result != swarm.ResultAdopted || e.Details["force_rotate"] != "8" || e.Details["root_serial"] != "2" ||
			!strings.Contains(e.Reason, "changed outside the ledger") {
			t.Errorf("pass %d: adopted entry = %+v", pass, e)
		}
	}
}

func TestStartCARotationAttaches(t *testing.T) {
	root := testpki.NewRoot(t, 1, certsNowT)
	running := swarm.CAState{TrustRootPEM: root.PEM, RootRotationInProgress: true, ForceRotate: 7}
	eng := &fakeCertsEngine{states: []swarm.CAState{running}}
	led := ledgertest.New()
	s, err := StartCARotation(t.Context(), eng, led, swarm.RotateCAOptions{}, operator.TaskEnv{})
	if err != nil || !s.Attached || s.Started || len(eng.rotations) != 0 || len(led.All()) != 0 || s.ForceRotate != 7 {
		t.Errorf("StartCARotation(in progress) = %+v, %v, rotations %d; want attached, no write", s, err, len(eng.rotations))
	}
	// --force restarts it.
	eng.rotateRes = swarm.RotateCAResult{Started: true, ForceRotate: 8}
	s, err = StartCARotation(t.Context(), eng, led, swarm.RotateCAOptions{Force: true}, operator.TaskEnv{})
	if err != nil || !s.Started || s.Attached || len(eng.rotations) != 1 || len(led.All()) != 1 {
		t.Errorf("StartCARotation(force) = %+v, %v; want started", s, err)
	}
	// Lost the race to another writer: attach, record nothing.
	eng = &fakeCertsEngine{states: []swarm.CAState{{TrustRootPEM: root.PEM}}, rotateRes: swarm.RotateCAResult{Started: false, ForceRotate: 9}}
	led = ledgertest.New()
	s, err = StartCARotation(t.Context(), eng, led, swarm.RotateCAOptions{}, operator.TaskEnv{})
	if err != nil || !s.Attached || len(led.All()) != 0 {
		t.Errorf("StartCARotation(raced) = %+v, %v; want attached", s, err)
	}
	// Dry run changes nothing.
	var out bytes.Buffer
	eng = &fakeCertsEngine{states: []swarm.CAState{{TrustRootPEM: root.PEM, ForceRotate: 2}}}
	s, err = StartCARotation(t.Context(), eng, ledgertest.New(), swarm.RotateCAOptions{}, operator.TaskEnv{DryRun: true, Out: &out})
	if err != nil || len(eng.rotations) != 0 || out.Len() != 0 || s.Plan == nil {
		t.Fatalf("StartCARotation(dry run) = %+v, %v, out %q; want no change, nothing printed, the plan returned", s, err, out.String())
	}
	// The caller prints the plan it returned.
	if err := operator.WritePlans(&out, *s.Plan); err != nil || !strings.Contains(out.String(), "ForceRotate 2 -> 3") {
		t.Errorf("StartCARotation(dry run) plan = %q, %v; want ForceRotate 2 -> 3", out.String(), err)
	}
}

func certsRotationNodes(newRoot testpki.Root, oldRoot testpki.Root, onNew map[string]bool, down map[string]bool) []swarm.Node {
	var out []swarm.Node
	for _, id := range []string{"m1", "m2", "w1"} {
		n := swarm.Node{ID: id, Hostname: "host-" + id, Role: "worker", State: "ready", TrustRootPEM: oldRoot.PEM,
			IssuerSubject: oldRoot.Subject, IssuerPublicKey: oldRoot.PublicKey}
		if onNew[id] {
			n.IssuerSubject, n.IssuerPublicKey = newRoot.Subject, newRoot.PublicKey
		}
		if down[id] {
			n.State = "down"
		}
		out = append(out, n)
	}
	return out
}

func TestWaitCARotation(t *testing.T) {
	oldR := testpki.NewRoot(t, 1, certsNowT)
	newR := testpki.NewRoot(t, 2, certsNowT)
	running := swarm.CAState{TrustRootPEM: oldR.PEM, IssuerSubject: newR.Subject, IssuerPublicKey: newR.PublicKey, RootRotationInProgress: true}
	done := swarm.CAState{TrustRootPEM: newR.PEM, IssuerSubject: newR.Subject, IssuerPublicKey: newR.PublicKey}
	trustNew := func(ns []swarm.Node) []swarm.Node {
		for i := range ns {
			ns[i].TrustRootPEM = newR.PEM
		}
		return ns
	}

	t.Run("completes", func(t *testing.T) {
		eng := &fakeCertsEngine{
			states: []swarm.CAState{running, running, done},
			nodes: [][]swarm.Node{
				certsRotationNodes(newR, oldR, nil, nil),
				certsRotationNodes(newR, oldR, map[string]bool{"m1": true, "m2": true}, nil),
				trustNew(certsRotationNodes(newR, oldR, map[string]bool{"m1": true, "m2": true, "w1": true}, nil)),
			},
		}
		var seen []int
		p, err := WaitCARotation(t.Context(), eng, WaitCAOptions{OldRootPEM: oldR.PEM, Poll: time.Millisecond,
			OnProgress: func(p pki.RotationProgress) { seen = append(seen, p.OnNewRoot) }})
		if err != nil || !p.Done || p.OnNewRoot != 3 {
			t.Fatalf("WaitCARotation = %+v, %v; want done with 3/3", p, err)
		}
		if want := []int{0, 2, 3}; len(seen) != 3 || seen[0] != want[0] || seen[1] != want[1] || seen[2] != want[2] {
			t.Errorf("progress reports = %v; want %v", seen, want)
		}
	})

	t.Run("times out naming the down node, with a stall warning", func(t *testing.T) {
		eng := &fakeCertsEngine{
			states: []swarm.CAState{running},
			nodes:  [][]swarm.Node{certsRotationNodes(newR, oldR, map[string]bool{"m1": true, "m2": true}, map[string]bool{"w1": true})},
		}
		var stalls int
		p, err := WaitCARotation(t.Context(), eng, WaitCAOptions{OldRootPEM: oldR.PEM, Poll: time.Millisecond, Timeout: 80 * time.Millisecond,
			StallAfter: 20 * time.Millisecond, OnStall: func(pki.RotationProgress, time.Duration) { stalls++ }})
		if !errors.Is(err, ErrRotationTimeout) {
			t.Fatalf("WaitCARotation = %v; want ErrRotationTimeout", err)
		}
		if !strings.Contains(err.Error(), "host-w1 (w1, worker, down)") || strings.Contains(err.Error(), "host-m1") {
			t.Errorf("error = %q; want it to name host-w1 as down and only it", err)
		}
		if stalls != 1 {
			t.Errorf("stall warnings = %d; want exactly 1", stalls)
		}
		led := ledgertest.New()
		if err := RecordCAWait(t.Context(), led, operator.TaskEnv{Actor: "a"}, p, err); err != nil {
			t.Fatal(err)
		}
		if e := led.All()[0]; e.Result != swarm.ResultFailed || e.Details["pending"] != "w1" {
			t.Errorf("ledger entry = %+v; want failed with w1 pending", e)
		}
	})

	t.Run("a rotation not yet visible is not done", func(t *testing.T) {
		idle := swarm.CAState{TrustRootPEM: oldR.PEM, IssuerSubject: oldR.Subject, IssuerPublicKey: oldR.PublicKey}
		eng := &fakeCertsEngine{states: []swarm.CAState{idle}, nodes: [][]swarm.Node{certsRotationNodes(newR, oldR, nil, nil)}}
		_, err := WaitCARotation(t.Context(), eng, WaitCAOptions{OldRootPEM: oldR.PEM, Poll: time.Millisecond, Timeout: 20 * time.Millisecond})
		if !errors.Is(err, ErrRotationTimeout) {
			t.Errorf("WaitCARotation(unchanged root) = %v; want a timeout, not done", err)
		}
	})
}

func TestCertsGate(t *testing.T) {
	tests := []struct {
		failOn string
		worst  pki.Severity
		want   bool
	}{
		{"", pki.SeverityCritical, false},
		{"warn", pki.SeverityWarn, true},
		{"warn", pki.SeverityInfo, false},
		{"fail", pki.SeverityWarn, false},
		{"fail", pki.SeverityCritical, true},
		{"warn", "", false},
	}
	for _, tt := range tests {
		if got := report.Fails(SeverityStatus(tt.worst), tt.failOn); got != tt.want {
			t.Errorf("report.Fails(SeverityStatus(%q), %q) = %v; want %v", tt.worst, tt.failOn, got, tt.want)
		}
	}
}

func TestPKIPolicy(t *testing.T) {
	c := config.DefaultConfig().PKI
	c.CA.MaxAge = config.Duration(8760 * time.Hour)
	p, err := PKIPolicy(c)
	if err != nil || p.WarnBefore.Percent != 30 || p.CriticalBefore.Percent != 10 || p.NodeCertExpiry != 2160*time.Hour || p.CAMaxAge != 8760*time.Hour {
		t.Errorf("PKIPolicy(defaults) = %+v, %v", p, err)
	}
	c.WarnBefore = "soon"
	if _, err := PKIPolicy(c); err == nil || !strings.HasPrefix(err.Error(), "pki.warn_before:") {
		t.Errorf("PKIPolicy(bad warn) = %v; want an error naming pki.warn_before", err)
	}
}

func TestPKINodesDownSince(t *testing.T) {
	at := certsNowT.Add(-time.Hour)
	in := PKINodes([]swarm.Node{{ID: "a", State: "down", UpdatedAt: at, ManagerAddr: "10.0.0.1:2377"}})
	if in[0].StatusChangedAt != at || in[0].ManagerAddr != "10.0.0.1:2377" || !in[0].Down() {
		t.Errorf("PKINodes = %+v", in[0])
	}
}

// A root put in by hand after the ledger's newest rotation (docker swarm ca --rotate --ca-cert with an old
// certificate) is as old as its NotBefore: the ledger's date belongs to the root that rotation ended on.
func TestCAAgeLedgerDateOnlyForItsRoot(t *testing.T) {
	now := certsNowT
	maxAge := 8760 * time.Hour
	handIn := testpki.NewRoot(t, 0x51, now.Add(-400*24*time.Hour))
	cert, err := pki.ParseCertificate([]byte(handIn.PEM))
	if err != nil {
		t.Fatal(err)
	}
	completed := func(serial string) []swarm.Entry {
		e := swarm.Entry{Kind: swarm.KindCA, At: now.Add(-2 * time.Minute), Result: swarm.ResultOK, Details: map[string]string{"action": "completed"}}
		if serial != "" {
			e.Details[DetailRootSerial] = serial
		}
		return []swarm.Entry{e}
	}
	c := config.CAConfig{MaxAge: config.Duration(maxAge)}
	for _, tc := range []struct {
		name      string
		entries   []swarm.Entry
		wantFail  bool
		wantSince string
	}{
		{"the ledger's rotation ended on another root", completed("ab12"), true, "not this one"},
		{"the ledger's rotation ended on this root", completed("51"), false, "ledger kind ca"},
		{"an entry naming no root (older ledgers) dates the root", completed(""), false, "ledger kind ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := DecideCA(CAObservation{Root: cert, Entries: tc.entries}, maxAge, now)
			check := checkCAAge(swarm.Cluster{TrustRootPEM: handIn.PEM}, tc.entries, nil, c, now)
			if d.Rotate != tc.wantFail || (check.Status == report.StatusFail) != tc.wantFail || !strings.Contains(d.SinceSource, tc.wantSince) {
				t.Errorf("controller rotate %v (age %s from %q), report %s (%s); want %v, from %q", d.Rotate, d.Age, d.SinceSource,
					check.Status, check.Summary, tc.wantFail, tc.wantSince)
			}
		})
	}
}

func TestResumeCARotation(t *testing.T) {
	old, cur := testpki.NewRoot(t, 10, certsNowT), testpki.NewRoot(t, 11, certsNowT)
	tests := []struct {
		name       string
		ca         swarm.CAState
		started    uint64
		wantOK     bool
		wantBefore bool // the follow waits for the root to change
	}{
		{"finished meanwhile", swarm.CAState{TrustRootPEM: cur.PEM, ForceRotate: 3}, 3, true, false},
		{"in progress", swarm.CAState{TrustRootPEM: old.PEM, ForceRotate: 3, RootRotationInProgress: true}, 3, true, true},
		{"a newer rotation since", swarm.CAState{TrustRootPEM: cur.PEM, ForceRotate: 5}, 3, true, false},
		{"the swarm has no such rotation", swarm.CAState{TrustRootPEM: old.PEM, ForceRotate: 2}, 3, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := &fakeCertsEngine{states: []swarm.CAState{tt.ca}}
			start, ok, err := ResumeCARotation(t.Context(), eng, tt.started, "A", operator.TaskEnv{}) // serial 10 of the old root
			if err != nil || ok != tt.wantOK {
				t.Fatalf("ResumeCARotation = %+v, %v, %v; want ok %v", start, ok, err, tt.wantOK)
			}
			if len(eng.rotations) != 0 {
				t.Errorf("rotations started: %d; want none", len(eng.rotations))
			}
			if ok && (!start.Resumed || !start.Attached || start.ForceRotate != tt.ca.ForceRotate) {
				t.Errorf("start = %+v; want resumed, attached, ForceRotate %d", start, tt.ca.ForceRotate)
			}
			if got := start.Before.TrustRootPEM != ""; got != tt.wantBefore {
				t.Errorf("follow waits for the root to change = %v; want %v", got, tt.wantBefore)
			}
		})
	}
}

// TestFollowRepublishesOnlyAsHolder: republishing the join tokens at a rotation's end writes Vault, so it
// re-checks the lease first like every mutating step: a follower that is no longer the holder (`rotate ca
// --wait` after its lease was released, a controller whose hold lapsed) could otherwise publish tokens it
// read before the holder rotated and published newer ones (issue 21, suspected item).
func TestFollowRepublishesOnlyAsHolder(t *testing.T) {
	newR := testpki.NewRoot(t, 2, certsNowT)
	done := swarm.CAState{TrustRootPEM: newR.PEM, IssuerSubject: newR.Subject, IssuerPublicKey: newR.PublicKey}
	nodes := certsRotationNodes(newR, newR, map[string]bool{"m1": true, "m2": true, "w1": true}, nil)
	for i := range nodes {
		nodes[i].TrustRootPEM = newR.PEM
	}
	for _, holder := range []bool{true, false} {
		eng := &fakeCertsEngine{states: []swarm.CAState{done}, nodes: [][]swarm.Node{nodes}}
		var republished int
		lost := errors.New("lease held by another")
		env := operator.TaskEnv{Actor: "a", Guard: operator.CheckOnly(func(context.Context) error {
			if holder {
				return nil
			}
			return lost
		})}
		err := FollowCARotation(t.Context(), eng, ledgertest.New(), CARotationStart{Attached: true}, FollowOptions{Poll: time.Millisecond,
			Republish: func(_ context.Context, renv operator.TaskEnv) error {
				republished++
				if renv.Actor != env.Actor || renv.Guard == nil { // the pass's env: its actor, its guard
					t.Errorf("Republish got env actor %q, guard %v; want the pass's, %q and its guard", renv.Actor, renv.Guard != nil, env.Actor)
				}
				return nil
			}}, env)
		switch {
		case holder && (err != nil || republished != 1):
			t.Errorf("FollowCARotation as the holder = %v, republished %d; want nil, 1", err, republished)
		case !holder && (!errors.Is(err, lost) || republished != 0):
			t.Errorf("FollowCARotation no longer the holder = %v, republished %d; want the lease error, 0", err, republished)
		}
	}
}
