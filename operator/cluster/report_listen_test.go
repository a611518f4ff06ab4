package cluster

import (
	"context"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/operator/internal/testpki"
	"github.com/swarmguard/swarmguard/swarm"
)

type panickyProber struct{ addr string }

func (p panickyProber) Probe(_ context.Context, addr string, _ *x509.CertPool) ([]*x509.Certificate, error) {
	if addr == p.addr {
		panic("probing with SWMTKN-1-secret")
	}
	return nil, nil
}

// TestProbeListenAddrsPanicFailsThatProbe: a panic in one probe goroutine of CIS 7.2's listen check becomes
// that probe's error (a recovered panic, not its value); the other probes answer, and the process lives.
func TestProbeListenAddrsPanicFailsThatProbe(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "n1", Hostname: "m1", Role: "manager", Addr: "10.0.0.11", ManagerAddr: "10.0.0.11:2377"},
		{ID: "n2", Hostname: "m2", Role: "manager", Addr: "10.0.0.12", ManagerAddr: "10.0.0.12:2377"},
		{ID: "n3", Hostname: "m3", Role: "manager", Addr: "10.0.0.13", ManagerAddr: "10.0.0.13:2377"},
	}
	in := ReportInput{Nodes: nodes, Cluster: swarm.Cluster{TrustRootPEM: testpki.CAPEM(t, time.Now().Add(-time.Hour))},
		Tunnels: []swarm.TunnelEndpoint{{HostIP: "10.1.0.12"}, {HostIP: "10.1.0.13"}}}
	got := probeListenAddrs(t.Context(), panickyProber{addr: "10.1.0.12:2377"}, in)
	if len(got) != 2 {
		t.Fatalf("probeListenAddrs = %+v; want two probes", got)
	}
	for _, p := range got {
		switch p.Addr {
		case "10.1.0.12:2377":
			if !strings.Contains(p.Err, guard.ErrPanic.Error()) || strings.Contains(p.Err, "SWMTKN") {
				t.Errorf("panicking probe = %+v; want a recovered panic named, not its value", p)
			}
		case "10.1.0.13:2377":
			if p.Err != "" {
				t.Errorf("other probe = %+v; want no error", p)
			}
		}
	}
}
