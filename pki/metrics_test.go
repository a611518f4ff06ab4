package pki

import "testing"

func TestMetrics(t *testing.T) {
	inv := Inventory{
		CA:                     goodCA(),
		RootRotationInProgress: true,
		Nodes: []NodeCert{
			knownNode("n1", StateReady, testNow.Add(-day), testNow.Add(day)),
			{ID: "n2", Role: RoleWorker, Source: SourceUnknown},
			{ID: "n3", Role: RoleManager, Known: true, Cert: CertFacts{NotBefore: testNow, NotAfter: testNow.Add(day)}},
		},
	}
	m := inv.Metrics()
	if !m.CAKnown || m.CANotAfter != float64(goodCA().NotAfter.Unix()) || m.RotationInProgress != 1 {
		t.Errorf("Metrics CA = %+v", m)
	}
	if len(m.Certs) != 2 {
		t.Fatalf("Metrics certs = %+v; want 2 (unknown node omitted)", m.Certs)
	}
	if c := m.Certs[0]; c.Node != "host-n1" || c.Role != RoleWorker || c.NotAfter != float64(testNow.Add(day).Unix()) || c.NotBefore != float64(testNow.Add(-day).Unix()) {
		t.Errorf("Metrics n1 = %+v", c)
	}
	if c := m.Certs[1]; c.Node != "n3" {
		t.Errorf("Metrics n3 without hostname labelled %q; want the ID", c.Node)
	}
	if m := (Inventory{CA: CAInfo{Err: ErrNoCertificate}}).Metrics(); m.CAKnown || m.RotationInProgress != 0 {
		t.Errorf("Metrics(unreadable CA) = %+v", m)
	}
}
