package certs

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/internal/testpki"
	"github.com/swarmguard/swarmguard/swarm"
)

func ledgerKinds(l *ledgertest.Ledger) []string {
	var out []string
	for _, e := range l.All() {
		out = append(out, e.Kind)
	}
	return out
}

func TestPlanNodeCertExpiryIsWhatThePassDoes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    string
		want    time.Duration
		current time.Duration
		kinds   []string
	}{
		{"not set", config.ModeEnforce, 0, 90 * time.Hour, nil},
		{"already so, not in the ledger: adopted once", config.ModeEnforce, 24 * time.Hour, 24 * time.Hour, []string{swarm.KindNodeCertExpiry}},
		{"already so, audit", config.ModeAudit, 24 * time.Hour, 24 * time.Hour, nil},
		{"audit", config.ModeAudit, 24 * time.Hour, 90 * time.Hour, nil},
		{"enforce", config.ModeEnforce, 24 * time.Hour, 90 * time.Hour, []string{swarm.KindNodeCertExpiry}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := certsPKIConf(tc.mode)
			c.NodeCertExpiry = config.Duration(tc.want)
			eng := &fakeCertsEngine{states: []swarm.CAState{{NodeCertExpiry: tc.current}}}
			led := ledgertest.New()
			p := PlanNodeCerts(t.Context(), eng, led, c)
			if p.Err != nil || !slices.Equal(domaintest.Kinds(p), tc.kinds) {
				t.Fatalf("PlanNodeCerts = %v, %v; want %v", domaintest.Kinds(p), p.Err, tc.kinds)
			}
			if err := EnforceNodeCertExpiry(t.Context(), eng, led, c, eng.states[0], operator.TaskEnv{Actor: "t", Now: func() time.Time { return certsNowT }}); err != nil {
				t.Fatal(err)
			}
			if got := ledgerKinds(led); !slices.Equal(got, tc.kinds) {
				t.Errorf("EnforceNodeCertExpiry recorded %v; the plan had %v", got, tc.kinds)
			}
			if len(p.Actions) > 0 && tc.current != tc.want && !strings.Contains(p.Actions[0].Change, "from 90h0m0s to 24h0m0s") {
				t.Errorf("change = %q; want from and to", p.Actions[0].Change)
			}
		})
	}
}

// TestPlanCAIsWhatThePassDoes: the CA plan's adoption and start are the entries the scheduled pass writes
// before it follows the rotation (the follow's own entry is the plan's last action).
func TestPlanCAIsWhatThePassDoes(t *testing.T) {
	old := testpki.NewRoot(t, 1, certsNowT.Add(-400*24*time.Hour))
	young := testpki.NewRoot(t, 2, certsNowT.Add(-10*24*time.Hour))
	for _, tc := range []struct {
		name   string
		mode   string
		maxAge time.Duration
		state  swarm.CAState
		kinds  []string
		starts bool
	}{
		{"never rotated, no max age", config.ModeEnforce, 0, swarm.CAState{TrustRootPEM: old.PEM}, nil, false},
		{"rotated by hand: adopted even without max age", config.ModeAudit, 0, swarm.CAState{TrustRootPEM: young.PEM, ForceRotate: 2}, []string{swarm.KindCA}, false},
		{"young root", config.ModeEnforce, 8760 * time.Hour, swarm.CAState{TrustRootPEM: young.PEM}, nil, false},
		{"old root, audit", config.ModeAudit, 8760 * time.Hour, swarm.CAState{TrustRootPEM: old.PEM}, nil, false},
		{"old root, enforce: adopt, start, follow", config.ModeEnforce, 8760 * time.Hour, swarm.CAState{TrustRootPEM: old.PEM, ForceRotate: 3},
			[]string{swarm.KindCA, swarm.KindCA, swarm.KindCA}, true},
		{"old root, rotation running", config.ModeEnforce, 8760 * time.Hour, swarm.CAState{TrustRootPEM: old.PEM, RootRotationInProgress: true}, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := certsPKIConf(tc.mode)
			c.CA.MaxAge = config.Duration(tc.maxAge)
			eng := &fakeCertsEngine{states: []swarm.CAState{tc.state}, rotateRes: swarm.RotateCAResult{Started: true, ForceRotate: tc.state.ForceRotate + 1}}
			led := ledgertest.New()
			p := PlanCA(t.Context(), eng, led, c, certsNowT)
			if p.Err != nil || !slices.Equal(domaintest.Kinds(p), tc.kinds) {
				t.Fatalf("PlanCA = %v, %v; want %v", domaintest.Kinds(p), p.Err, tc.kinds)
			}
			start, err := ScheduledCARotation(t.Context(), eng, led, c, operator.TaskEnv{Actor: "n", Now: func() time.Time { return certsNowT }})
			if err != nil {
				t.Fatal(err)
			}
			want := tc.kinds
			if start.Started {
				want = want[:len(want)-1] // the follow records when the rotation ends
			}
			if start.Started != tc.starts || !slices.Equal(ledgerKinds(led), want) {
				t.Errorf("pass recorded %v, started %v; the plan had %v", ledgerKinds(led), start.Started, tc.kinds)
			}
		})
	}
}

func TestPlanStartCA(t *testing.T) {
	if p := PlanStartCA(swarm.CAState{ForceRotate: 4}, swarm.RotateCAOptions{CertPEM: "x"}, "r"); len(p.Actions) != 2 || !strings.Contains(p.Actions[0].Change, "certificate handed in (ForceRotate 4 -> 5)") {
		t.Errorf("PlanStartCA(handed in) = %+v", p.Actions)
	}
	if p := PlanStartCA(swarm.CAState{RootRotationInProgress: true}, swarm.RotateCAOptions{}, "r"); len(p.Actions) != 1 || len(p.Notes) != 1 {
		t.Errorf("PlanStartCA(in progress) = %+v; want only the follow, and a note", p)
	}
}

// TestNodeCertApplyDoesOnlyThePlan: ApplyNodeCertExpiry acts on the plan value it is given: the engine write
// and the ledger entries are the plan's action (same kind), and a plan whose action was taken does nothing,
// although the cluster it was decided from still calls for it.
func TestNodeCertApplyDoesOnlyThePlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		current time.Duration
		wantSet bool
		result  string
	}{
		{"differs: set", 90 * time.Hour, true, swarm.ResultOK},
		{"found as wanted, not recorded: adopted", 24 * time.Hour, false, swarm.ResultAdopted},
	} {
		for _, strip := range []bool{false, true} {
			c := certsPKIConf(config.ModeEnforce)
			c.NodeCertExpiry = config.Duration(24 * time.Hour)
			eng := &fakeCertsEngine{states: []swarm.CAState{{NodeCertExpiry: tc.current}}}
			led := ledgertest.New()
			np := decideNodeCertExpiry(c, eng.states[0], nil)
			if len(np.steps) != 1 {
				t.Fatalf("%s: plan = %+v; want one action", tc.name, np.Plan())
			}
			if strip {
				np.steps = nil
			}
			p := np.Plan()
			var out strings.Builder
			env := operator.TaskEnv{Actor: "t", Out: &out, Now: func() time.Time { return certsNowT }}
			if err := ApplyNodeCertExpiry(t.Context(), eng, led, np, env); err != nil {
				t.Fatal(err)
			}
			wantSet := tc.wantSet && !strip
			if got := len(eng.setExpiry) > 0; got != wantSet {
				t.Errorf("%s, strip %v: engine writes %v; want a write %v", tc.name, strip, eng.setExpiry, wantSet)
			}
			if got := ledgerKinds(led); !slices.Equal(got, domaintest.Kinds(p)) {
				t.Errorf("%s, strip %v: recorded %v; the plan had %v", tc.name, strip, got, domaintest.Kinds(p))
			}
			if all := led.All(); !strip && (len(all) != 1 || all[0].Result != tc.result) {
				t.Errorf("%s: ledger = %+v; want one %s entry", tc.name, all, tc.result)
			}
			if out.Len() != 0 {
				t.Errorf("%s: the act printed %q; it prints nothing", tc.name, out.String())
			}
		}
	}
}

// TestCAApplyDoesOnlyThePlan: ApplyCA acts on the plan value it is given, in order: the adoption of a
// rotation done outside the ledger, the start (one engine write) and the follow to the end each record one
// ca entry, as the plan lists them; a plan cut short does only what is left. The follow prints nothing: it
// tells its progress to the caller.
func TestCAApplyDoesOnlyThePlan(t *testing.T) {
	old := testpki.NewRoot(t, 1, certsNowT.Add(-400*24*time.Hour))
	newR := testpki.NewRoot(t, 2, certsNowT)
	before := swarm.CAState{TrustRootPEM: old.PEM, ForceRotate: 3}
	done := swarm.CAState{TrustRootPEM: newR.PEM, IssuerSubject: newR.Subject, IssuerPublicKey: newR.PublicKey, ForceRotate: 4}
	nodes := certsRotationNodes(newR, old, map[string]bool{"m1": true, "m2": true, "w1": true}, nil)
	for i := range nodes {
		nodes[i].TrustRootPEM = newR.PEM
	}
	for _, tc := range []struct {
		name     string
		keep     int // the plan's first keep actions are applied
		wantRots int
		wantDone bool
	}{
		{"whole plan: adopt, start, follow", 3, 1, true},
		{"adoption and start only", 2, 1, false},
		{"adoption only", 1, 0, false},
		{"nothing", 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := certsPKIConf(config.ModeEnforce)
			c.CA.MaxAge = config.Duration(8760 * time.Hour)
			eng := &fakeCertsEngine{states: []swarm.CAState{before, before, done}, nodes: [][]swarm.Node{nodes},
				rotateRes: swarm.RotateCAResult{Started: true, ForceRotate: 4}}
			led := ledgertest.New()
			cp, err := DecideCAPass(t.Context(), eng, led, c, certsNowT)
			if err != nil {
				t.Fatal(err)
			}
			if got := domaintest.Kinds(cp.Plan()); len(got) != 3 {
				t.Fatalf("plan = %v; want adopt, start, follow", got)
			}
			cp.steps = cp.steps[:tc.keep]
			p := cp.Plan()
			var out strings.Builder
			var events []CAFollowEvent
			env := operator.TaskEnv{Actor: "t", Out: &out, Now: func() time.Time { return certsNowT }}
			err = ApplyCA(t.Context(), eng, led, cp, FollowOptions{Poll: time.Millisecond, Progress: func(ev CAFollowEvent) { events = append(events, ev) }}, env)
			if err != nil {
				t.Fatal(err)
			}
			if len(eng.rotations) != tc.wantRots {
				t.Errorf("engine rotations %d; the plan %v calls for %d", len(eng.rotations), p.Actions, tc.wantRots)
			}
			if got := ledgerKinds(led); !slices.Equal(got, domaintest.Kinds(p)) {
				t.Errorf("recorded %v; the plan had %v", got, domaintest.Kinds(p))
			}
			var actions []string
			for _, e := range led.All() {
				actions = append(actions, e.Details["action"])
			}
			want := []string{"adopted", "started", "completed"}[:tc.keep]
			if !slices.Equal(actions, want) {
				t.Errorf("recorded actions %v; want %v", actions, want)
			}
			gotDone := len(events) > 0 && events[len(events)-1].Done
			if gotDone != tc.wantDone || out.Len() != 0 {
				t.Errorf("follow events %+v, printed %q; want done %v and nothing printed", events, out.String(), tc.wantDone)
			}
		})
	}
}
