package main

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/incident"
	"github.com/swarmguard/swarmguard/swarm"
)

// caSwarm behaves as the engine does for a root CA rotation (LAB.md): ForceRotate++ starts one; the nodes
// that are up take certificates from the new root within a read; with a node down the rotation never
// finishes, and it completes once that node is back. Roots are named by their generation ("root-N").
type caSwarm struct {
	mu          sync.Mutex
	gen, target int
	forceRotate uint64
	inProgress  bool
	nodes       []int // each node's root generation
	down        map[int]bool
	rotations   int
}

func newCASwarm(nodes int) *caSwarm {
	return &caSwarm{gen: 1, nodes: make([]int, nodes), down: map[int]bool{}}
}

func root(gen int) string { return "root-" + string(rune('0'+gen)) }

// step is the swarm's own work between two reads.
func (f *caSwarm) step() {
	if !f.inProgress {
		return
	}
	all := true
	for i := range f.nodes {
		if f.down[i] {
			all = false
			continue
		}
		f.nodes[i] = f.target
	}
	if all {
		f.gen, f.inProgress = f.target, false
	}
}

func (f *caSwarm) CA(context.Context) (swarm.CAState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.step()
	issuer := f.gen
	if f.inProgress {
		issuer = f.target
	}
	return swarm.CAState{TrustRootPEM: root(f.gen), IssuerSubject: []byte(root(issuer)), IssuerPublicKey: []byte("key-" + root(issuer)),
		RootRotationInProgress: f.inProgress, ForceRotate: f.forceRotate}, nil
}

func (f *caSwarm) Nodes(context.Context) ([]swarm.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.Node
	for i, g := range f.nodes {
		st := "ready"
		if f.down[i] {
			st = "down"
		}
		trust := f.gen
		if g > f.gen {
			trust = g
		}
		out = append(out, swarm.Node{ID: "n" + string(rune('1'+i)), Role: "manager", State: st, TrustRootPEM: root(trust),
			IssuerSubject: []byte(root(g)), IssuerPublicKey: []byte("key-" + root(g))})
	}
	return out, nil
}

func (f *caSwarm) SetNodeCertExpiry(context.Context, time.Duration) (time.Duration, bool, error) {
	return 0, false, nil
}

func (f *caSwarm) RotateCA(_ context.Context, o swarm.RotateCAOptions) (swarm.RotateCAResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inProgress && !o.Force {
		return swarm.RotateCAResult{ForceRotate: f.forceRotate}, nil
	}
	f.forceRotate++
	f.rotations++
	f.inProgress, f.target = true, f.gen+1
	return swarm.RotateCAResult{Started: true, ForceRotate: f.forceRotate}, nil
}

func (f *caSwarm) setDown(i int, down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down[i] = down
}

// memLedger is the ledger in memory.
type memLedger struct {
	mu      sync.Mutex
	entries []swarm.Entry
}

func (l *memLedger) Entries(context.Context) ([]swarm.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]swarm.Entry(nil), l.entries...), nil
}

func (l *memLedger) Append(_ context.Context, es ...swarm.Entry) ([]swarm.Entry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.entries = append(l.entries, es...)
	return append([]swarm.Entry(nil), l.entries...), nil
}

// An incident whose CA step timed out (a node down) and whose rotation the swarm then finished is resumed
// with --id: the rotation it started is done, so it records that and starts no other one (issue 21,
// finding 6). While the rotation still runs, the resumed step follows it.
func TestIncidentResumeDoesNotRotateCAAgain(t *testing.T) {
	for _, finished := range []bool{true, false} {
		name := "finished meanwhile"
		if !finished {
			name = "still in progress"
		}
		t.Run(name, func(t *testing.T) {
			eng := newCASwarm(4)
			led := &memLedger{}
			var republished int
			republish := func(context.Context, operator.TaskEnv) error { republished++; return nil }
			report := incident.Action{Do: func(context.Context, incident.Step, operator.TaskEnv) (incident.Outcome, error) {
				return incident.Outcome{Detail: "report"}, nil
			}}
			resp := func(reason string) *incident.Response {
				return &incident.Response{ID: "inc-ca", Reason: reason, Ledger: led, Actions: map[string]incident.Action{
					incident.KindCA:     incidentCA(eng, led, republish, 50*time.Millisecond),
					incident.KindReport: report,
				}}
			}
			env := operator.TaskEnv{Actor: "ops", Now: time.Now, Out: io.Discard}
			steps := incident.Plan([]string{incident.ScopeCA}, nil)

			eng.setDown(3, true)
			if _, err := resp("leak").Run(t.Context(), steps, env); err == nil {
				t.Fatal("first run with a node down = nil; want the CA step to time out")
			}
			if eng.forceRotate != 1 {
				t.Fatalf("ForceRotate after the first run = %d; want 1", eng.forceRotate)
			}
			if finished {
				eng.setDown(3, false)
				if ca, _ := eng.CA(t.Context()); ca.RootRotationInProgress {
					t.Fatal("the swarm did not finish the rotation once the node was back")
				}
			} else {
				go func() { time.Sleep(20 * time.Millisecond); eng.setDown(3, false) }()
			}
			// The resume follows up to 60 s (as the acceptance's); the node returns within milliseconds.
			resumed := &incident.Response{ID: "inc-ca", Reason: "resume", Ledger: led, Actions: map[string]incident.Action{
				incident.KindCA:     incidentCA(eng, led, republish, time.Minute),
				incident.KindReport: report,
			}}
			out, err := resumed.Run(t.Context(), steps, env)
			if err != nil {
				t.Fatalf("resumed Run = %v; want nil", err)
			}
			if eng.forceRotate != 1 || eng.rotations != 1 {
				t.Errorf("resuming inc-ca: ForceRotate 1 -> %d (%d rotations started); want no second rotation", eng.forceRotate, eng.rotations)
			}
			if out[0].Status != incident.StatusDone {
				t.Errorf("resumed CA step = %+v; want done", out[0])
			}
			if republished != 1 {
				t.Errorf("tokens republished %d times; want once, at the rotation's end", republished)
			}
			var completed int
			for _, e := range led.entries {
				if e.Kind == swarm.KindCA && e.Details["action"] == "completed" {
					completed++
					if !strings.HasPrefix(e.Reason, "incident inc-ca: ") {
						t.Errorf("completed entry reason = %q; want the incident's", e.Reason)
					}
				}
			}
			if completed != 1 {
				t.Errorf("ca completed entries = %d; want 1", completed)
			}
		})
	}
}
