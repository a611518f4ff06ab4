package pki

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"
)

// serveTLS accepts connections on 127.0.0.1 and completes handshakes with
// cert until the test ends.
func serveTLS(t *testing.T, cert tls.Certificate) string {
	t.Helper()
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{
		Certificates: []tls.Certificate{cert}, ClientAuth: tls.VerifyClientCertIfGiven, MinVersion: tls.VersionTLS12,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				_ = c.(*tls.Conn).Handshake()
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = c.Read(make([]byte, 1))
			}()
		}
	}()
	return lis.Addr().String()
}

func TestTLSProber(t *testing.T) {
	ca := newCA(t, p256(t), 1, "swarm-ca", time.Now().Add(-day), time.Now().Add(3650*day))
	other := newCA(t, p256(t), 2, "swarm-ca", time.Now().Add(-day), time.Now().Add(3650*day))
	mgr, mgrLeaf := tlsCert(t, ca, 0x77, "m1", RoleManager)
	wrk, _ := tlsCert(t, ca, 0x78, "w1", RoleWorker) // no "swarm-manager" name
	mgrAddr, wrkAddr := serveTLS(t, mgr), serveTLS(t, wrk)
	roots, _ := trustPool(ca.pem)
	otherRoots, _ := trustPool(other.pem)

	p := &TLSProber{Timeout: 2 * time.Second}
	chain, err := p.Probe(t.Context(), mgrAddr, roots)
	if err != nil {
		t.Fatalf("Probe(manager) = %v", err)
	}
	if SerialHex(chain[0]) != "77" || !chain[0].NotAfter.Equal(mgrLeaf.NotAfter) {
		t.Errorf("Probe(manager) leaf serial %s; want 77", SerialHex(chain[0]))
	}
	tests := []struct {
		name, addr string
		roots      bool
		want       string
	}{
		{"wrong trust root", mgrAddr, false, "certificate signed by unknown authority"},
		{"not a manager certificate", wrkAddr, true, "swarm-manager"},
		{"nothing listening", "127.0.0.1:1", true, "connecting to 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := roots
			if !tt.roots {
				r = otherRoots
			}
			if _, err := p.Probe(t.Context(), tt.addr, r); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Probe = %v; want an error containing %q", err, tt.want)
			}
		})
	}
	if _, err := p.Probe(t.Context(), mgrAddr, nil); err == nil {
		t.Errorf("Probe(nil roots) = nil error")
	}
	// A custom dialer is used when set.
	var dialed string
	p.Dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialed = addr
		var d net.Dialer
		return d.DialContext(ctx, network, mgrAddr)
	}
	if _, err := p.Probe(t.Context(), "10.0.0.1:2377", roots); err != nil || dialed != "10.0.0.1:2377" {
		t.Errorf("Probe via Dial = %v (dialed %q)", err, dialed)
	}
}
