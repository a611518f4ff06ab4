package pki

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/guard"
)

// panickyProber panics probing one address, with secret-looking text in the panic.
type panickyProber struct {
	fakeProber
	addr string
}

func (p *panickyProber) Probe(ctx context.Context, addr string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	if addr == p.addr {
		panic("probe of " + addr + " with SWMTKN-1-secret")
	}
	return p.fakeProber.Probe(ctx, addr, roots)
}

// TestCollectProbePanicFailsThatNode: a panic in one manager's probe goroutine makes that node's
// certificate unknown, with a reason matching guard.ErrPanic and without the panic's value; the other
// managers are still probed, and the process lives.
func TestCollectProbePanicFailsThatNode(t *testing.T) {
	ca := newCA(t, p256(t), 0x1001, "swarm-ca", testNow.Add(-400*day), testNow.Add(7000*day))
	nb, na := testNow.Add(-10*day), testNow.Add(80*day)
	m1 := ca.leaf(t, 0x11, "m1", RoleManager, nb, na)
	nodes := []NodeInput{ca.node("m1", "manager-1", RoleManager, StateReady), ca.node("m2", "manager-2", RoleManager, StateReady)}
	pr := &panickyProber{fakeProber: fakeProber{chains: map[string][]*x509.Certificate{"manager-1:2377": {m1, ca.cert}}}, addr: "manager-2:2377"}
	obsErr := func(inv Inventory, id string) (Source, string) {
		for _, n := range inv.Nodes {
			if n.ID == id {
				return n.Source, n.Reason
			}
		}
		return "", "absent"
	}
	inv := Collect(t.Context(), ca.cluster(2160*3600e9), nodes, Sources{Prober: pr})
	if src, _ := obsErr(inv, "m1"); src != SourceTLSProbe {
		t.Errorf("m1 source = %s; want %s (its probe did not panic)", src, SourceTLSProbe)
	}
	src, reason := obsErr(inv, "m2")
	if src != SourceUnknown || !strings.Contains(reason, guard.ErrPanic.Error()) || strings.Contains(reason, "SWMTKN") {
		t.Errorf("m2 = %s, reason %q; want unknown, a recovered panic named, not its value", src, reason)
	}
}
