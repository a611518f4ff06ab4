package pki

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"sync"
	"testing"
)

// fakeControl answers NodeCertificates with set values and counts calls.
type fakeControl struct {
	certs map[string][]byte
	err   error
	calls int
}

func (f *fakeControl) NodeCertificates(context.Context) (map[string][]byte, error) {
	f.calls++
	return f.certs, f.err
}

// fakeProber answers per address and records the addresses probed.
type fakeProber struct {
	mu     sync.Mutex
	chains map[string][]*x509.Certificate
	errs   map[string]error
	probed []string
}

func (f *fakeProber) Probe(_ context.Context, addr string, roots *x509.CertPool) ([]*x509.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probed = append(f.probed, addr)
	if roots == nil {
		return nil, errors.New("no roots")
	}
	if err := f.errs[addr]; err != nil {
		return nil, err
	}
	return f.chains[addr], nil
}

func TestCollectSources(t *testing.T) {
	ca := newCA(t, p256(t), 0x1001, "swarm-ca", testNow.Add(-400*day), testNow.Add(7000*day))
	nb, na := testNow.Add(-10*day), testNow.Add(80*day)
	m1 := ca.leaf(t, 0x11, "m1", RoleManager, nb, na)
	m2 := ca.leaf(t, 0x12, "m2", RoleManager, nb, na)
	w1 := ca.leaf(t, 0x21, "w1", RoleWorker, nb, na)
	nodes := []NodeInput{
		ca.node("w1", "worker-1", RoleWorker, StateReady),
		ca.node("m2", "manager-2", RoleManager, StateReady),
		ca.node("m1", "manager-1", RoleManager, StateReady),
		ca.node("m3", "manager-3", RoleManager, StateDown),
	}
	cluster := ca.cluster(2160 * 3600e9)

	tests := []struct {
		name       string
		control    *fakeControl
		prober     *fakeProber
		wantSource map[string]Source
		wantSerial map[string]string
		wantReason map[string]string // substring
		wantProbed int
	}{
		{
			name: "control API answers for all but the first manager",
			control: &fakeControl{certs: map[string][]byte{
				"m1": nil, "m2": []byte(pemOf(m2)), "w1": []byte(pemOf(w1)), "m3": []byte(pemOf(m2)),
			}},
			prober:     &fakeProber{chains: map[string][]*x509.Certificate{"manager-1:2377": {m1, ca.cert}}},
			wantSource: map[string]Source{"m1": SourceTLSProbe, "m2": SourceControlAPI, "w1": SourceControlAPI, "m3": SourceControlAPI},
			wantSerial: map[string]string{"m1": "11", "m2": "12", "w1": "21"},
			wantProbed: 1,
		},
		{
			name:    "no control API: managers probed, workers unknown",
			control: &fakeControl{err: ErrNoControlAPI},
			prober: &fakeProber{
				chains: map[string][]*x509.Certificate{"manager-1:2377": {m1}, "manager-2:2377": {m2}},
				errs:   map[string]error{"manager-3:2377": errors.New("connection refused")},
			},
			wantSource: map[string]Source{"m1": SourceTLSProbe, "m2": SourceTLSProbe, "w1": SourceUnknown, "m3": SourceUnknown},
			wantReason: map[string]string{
				"w1": "control API: control API not configured (set pki.control_socket and mount control.sock); tls-probe: workers expose no TLS listener",
				"m3": "tls-probe: connection refused",
			},
			wantProbed: 3,
		},
		{
			name:       "no sources at all",
			wantSource: map[string]Source{"m1": SourceUnknown, "m2": SourceUnknown, "w1": SourceUnknown, "m3": SourceUnknown},
			wantReason: map[string]string{"m1": "tls-probe: not attempted"},
		},
		{
			name:       "garbage from the control API is not used",
			control:    &fakeControl{certs: map[string][]byte{"w1": []byte("junk"), "m1": []byte(pemOf(m1)), "m2": []byte(pemOf(m2)), "m3": []byte(pemOf(m2))}},
			wantSource: map[string]Source{"w1": SourceUnknown, "m1": SourceControlAPI},
			wantReason: map[string]string{"w1": "control API: no PEM certificate found"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var src Sources
			if tt.control != nil {
				src.Control = tt.control
			}
			if tt.prober != nil {
				src.Prober = tt.prober
			}
			inv := Collect(t.Context(), cluster, nodes, src)
			if len(inv.Nodes) != 4 {
				t.Fatalf("Collect: %d nodes; want 4", len(inv.Nodes))
			}
			order := []string{}
			for _, n := range inv.Nodes {
				order = append(order, n.Hostname)
				if want, ok := tt.wantSource[n.ID]; ok && n.Source != want {
					t.Errorf("node %s source = %s; want %s (reason %q)", n.ID, n.Source, want, n.Reason)
				}
				if want, ok := tt.wantSerial[n.ID]; ok && n.Cert.Serial != want {
					t.Errorf("node %s serial = %q; want %q", n.ID, n.Cert.Serial, want)
				}
				if want, ok := tt.wantReason[n.ID]; ok && !strings.Contains(n.Reason, want) {
					t.Errorf("node %s reason = %q; want it to contain %q", n.ID, n.Reason, want)
				}
				if n.Known != (n.Source != SourceUnknown) || (n.Known && n.Reason != "") {
					t.Errorf("node %s: Known=%v Source=%s Reason=%q inconsistent", n.ID, n.Known, n.Source, n.Reason)
				}
				if n.Known && (n.Cert.NotAfter != na || n.Cert.NotBefore != nb) {
					t.Errorf("node %s validity = %s..%s; want %s..%s", n.ID, n.Cert.NotBefore, n.Cert.NotAfter, nb, na)
				}
			}
			if got := strings.Join(order, ","); got != "manager-1,manager-2,manager-3,worker-1" {
				t.Errorf("order = %s; want managers first, by hostname", got)
			}
			if tt.prober != nil && len(tt.prober.probed) != tt.wantProbed {
				t.Errorf("probed %v; want %d probes", tt.prober.probed, tt.wantProbed)
			}
		})
	}
}

func TestCollectUnreadableTrustRoot(t *testing.T) {
	ca := newCA(t, p256(t), 1, "swarm-ca", testNow.Add(-day), testNow.Add(day))
	pr := &fakeProber{}
	inv := Collect(t.Context(), Cluster{TrustRootPEM: "nope"}, []NodeInput{ca.node("m1", "m1", RoleManager, StateReady)}, Sources{Prober: pr})
	if inv.CA.Err == nil {
		t.Fatalf("CA.Err = nil; want an error for an unreadable trust root")
	}
	if len(pr.probed) != 0 {
		t.Errorf("probed %v without a trust root; want none", pr.probed)
	}
	if n := inv.Nodes[0]; n.Known || !strings.Contains(n.Reason, "cannot verify a probe without a trust root") {
		t.Errorf("node = %+v; want unknown, reason naming the trust root", n)
	}
}

func TestIssuerCurrent(t *testing.T) {
	oldCA := newCA(t, p256(t), 1, "swarm-ca", testNow.Add(-400*day), testNow.Add(7000*day))
	newCAx := newCA(t, p256(t), 2, "swarm-ca", testNow.Add(-day), testNow.Add(7000*day)) // same subject, new key
	nb, na := testNow.Add(-day), testNow.Add(89*day)
	fromOld := oldCA.leaf(t, 10, "a", RoleWorker, nb, na)
	fromNew := newCAx.leaf(t, 11, "b", RoleWorker, nb, na)

	// Cluster mid-rotation: trust root old, desired issuer new.
	cluster := oldCA.cluster(0)
	cluster.IssuerSubject, cluster.IssuerPublicKey = newCAx.cert.RawSubject, newCAx.cert.RawSubjectPublicKeyInfo
	cluster.RootRotationInProgress = true

	a := oldCA.node("a", "a", RoleWorker, StateReady)
	b := oldCA.node("b", "b", RoleWorker, StateReady)
	b.IssuerSubject, b.IssuerPublicKey = newCAx.cert.RawSubject, newCAx.cert.RawSubjectPublicKeyInfo
	c := oldCA.node("c", "c", RoleWorker, StateReady) // no cert read: TLSInfo decides
	d := NodeInput{ID: "d", Hostname: "d", Role: RoleWorker}

	inv := Assemble(cluster, []NodeInput{a, b, c, d}, Observed{Control: map[string][]byte{
		"a": []byte(pemOf(fromOld)), "b": []byte(pemOf(fromNew)),
	}})
	want := map[string][2]bool{ // current, known
		"a": {false, true}, // leaf signed by the old key, same subject: not current
		"b": {true, true},
		"c": {false, true}, // TLSInfo says old issuer
		"d": {false, false},
	}
	for _, n := range inv.Nodes {
		if got := [2]bool{n.IssuerCurrent, n.IssuerKnown}; got != want[n.ID] {
			t.Errorf("node %s issuer (current, known) = %v; want %v", n.ID, got, want[n.ID])
		}
	}
}
