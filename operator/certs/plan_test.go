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
			start, err := scheduledCARotation(t.Context(), eng, led, c, operator.TaskEnv{Actor: "n", Now: func() time.Time { return certsNowT }}, operator.NewCredentialAges())
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
