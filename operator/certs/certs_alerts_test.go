package certs

import (
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/pki"
)

// TestFindingAlerts: a critical finding gives one record when it appears, none while it stays, and one
// again after it cleared; warnings give none.
func TestFindingAlerts(t *testing.T) {
	day := 24 * time.Hour
	ca := pki.CAInfo{CertFacts: pki.CertFacts{KeyAlgorithm: "ECDSA", KeyBits: 256, NotBefore: certsNowT.Add(-day), NotAfter: certsNowT.Add(7000 * day)}}
	node := func(state string, left time.Duration) pki.NodeCert {
		na := certsNowT.Add(left)
		n := pki.NodeCert{ID: "w1", Hostname: "host-w1", Role: "worker", State: state, Known: true, Source: pki.SourceControlAPI,
			Cert: pki.CertFacts{Serial: "AB", NotBefore: na.Add(-time.Hour), NotAfter: na}, IssuerKnown: true, IssuerCurrent: true}
		if state == "down" {
			n.DownSince = certsNowT.Add(-time.Minute)
		}
		return n
	}
	var got []audit.Record
	a := &FindingAlerts{Policy: pki.Policy{WarnBefore: pki.MustWindow("30%"), CriticalBefore: pki.MustWindow("10%")}, Actor: "operator:n1",
		Record: func(r audit.Record) { got = append(got, r) }, Now: func() time.Time { return certsNowT }}
	passes := []struct {
		name string
		node pki.NodeCert
		want []string // kinds of the records this pass adds
	}{
		{"healthy", node("ready", 50*time.Minute), nil},
		{"warn window only", node("ready", 15*time.Minute), nil},
		{"down, lapses within the hour", node("down", 50*time.Minute), []string{pki.FindingCertLapsesWhileDown}},
		{"still down", node("down", 49*time.Minute), nil},
		{"back", node("ready", 48*time.Minute), nil},
		{"down again", node("down", 47*time.Minute), []string{pki.FindingCertLapsesWhileDown}},
	}
	for _, p := range passes {
		before := len(got)
		a.Update(pki.Inventory{CA: ca, Nodes: []pki.NodeCert{p.node}})
		var kinds []string
		for _, r := range got[before:] {
			kinds = append(kinds, r.Kind)
			if r.Event != config.EventFinding || r.Node != "w1" || r.Actor != "operator:n1" || r.Result != "failed" || r.Reason == "" ||
				r.Details["severity"] != "critical" || r.Details["loop"] != "certs" || !r.Time.Equal(certsNowT) {
				t.Errorf("%s: record %+v; want event finding for w1 by operator:n1, failed, critical, with a reason", p.name, r)
			}
		}
		if len(kinds) != len(p.want) || (len(kinds) > 0 && kinds[0] != p.want[0]) {
			t.Errorf("%s: Update recorded %v; want %v", p.name, kinds, p.want)
		}
	}
}
