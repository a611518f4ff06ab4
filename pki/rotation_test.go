package pki

import (
	"slices"
	"testing"
)

func TestProgress(t *testing.T) {
	oldCA := newCA(t, p256(t), 1, "swarm-ca", testNow.Add(-400*day), testNow.Add(7000*day))
	newCAx := newCA(t, p256(t), 2, "swarm-ca", testNow.Add(-day), testNow.Add(7000*day))
	onNew := func(n NodeInput) NodeInput {
		n.IssuerSubject, n.IssuerPublicKey = newCAx.cert.RawSubject, newCAx.cert.RawSubjectPublicKeyInfo
		return n
	}
	trustsNew := func(n NodeInput) NodeInput { n.TrustRootPEM = newCAx.pem; return n }

	// Mid-rotation the cluster still trusts the old root and wants the new issuer.
	mid := oldCA.cluster(0)
	mid.IssuerSubject, mid.IssuerPublicKey = newCAx.cert.RawSubject, newCAx.cert.RawSubjectPublicKeyInfo
	mid.RootRotationInProgress = true
	// After it, the cluster's trust root is the new one.
	after := newCAx.cluster(0)

	m1 := oldCA.node("m1", "manager-1", RoleManager, StateReady)
	w1 := oldCA.node("w1", "worker-1", RoleWorker, StateDown)
	w2 := oldCA.node("w2", "worker-2", RoleWorker, StateReady)

	tests := []struct {
		name        string
		c           Cluster
		nodes       []NodeInput
		onNewRoot   int
		trustsRoot  int
		pending     []string
		pendingDown []bool
		done        bool
	}{
		{"just started", mid, []NodeInput{m1, w1, w2}, 0, 3, []string{"m1", "w1", "w2"}, []bool{false, true, false}, false},
		{"one worker down holds it", mid, []NodeInput{onNew(m1), w1, onNew(w2)}, 2, 3, []string{"w1"}, []bool{true}, false},
		{"swarm done, a node still trusts the old root", after, []NodeInput{trustsNew(onNew(m1)), onNew(w1), trustsNew(onNew(w2))}, 3, 2, []string{"w1"}, []bool{true}, false},
		{"complete", after, []NodeInput{trustsNew(onNew(m1)), trustsNew(onNew(w1)), trustsNew(onNew(w2))}, 3, 3, nil, nil, true},
		{"no rotation, nothing pending", oldCA.cluster(0), []NodeInput{m1, w2}, 2, 2, nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Progress(tt.c, tt.nodes)
			var pend []string
			var down []bool
			for _, n := range p.Pending {
				pend = append(pend, n.ID)
				down = append(down, n.Down)
			}
			if p.OnNewRoot != tt.onNewRoot || p.TrustsRoot != tt.trustsRoot || p.Total != len(tt.nodes) ||
				!slices.Equal(pend, tt.pending) || !slices.Equal(down, tt.pendingDown) || p.Done != tt.done {
				t.Errorf("Progress = on %d, trusts %d of %d, pending %v down %v, done %v; want on %d, trusts %d, pending %v down %v, done %v",
					p.OnNewRoot, p.TrustsRoot, p.Total, pend, down, p.Done, tt.onNewRoot, tt.trustsRoot, tt.pending, tt.pendingDown, tt.done)
			}
		})
	}
}

func TestMoved(t *testing.T) {
	a := RotationProgress{InProgress: true, Total: 4, OnNewRoot: 2, TrustsRoot: 4}
	if Moved(a, a) {
		t.Errorf("Moved(a, a) = true; want false")
	}
	b := a
	b.OnNewRoot = 3
	if !Moved(a, b) {
		t.Errorf("Moved(2 on new, 3 on new) = false; want true")
	}
}
