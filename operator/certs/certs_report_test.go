package certs

import (
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
)

func TestCertsDomainFrom(t *testing.T) {
	day := 24 * time.Hour
	known := func(id, state string, left time.Duration) pki.NodeCert {
		na := certsNowT.Add(left)
		return pki.NodeCert{ID: id, Hostname: "host-" + id, Role: "worker", State: state, Known: true, Source: pki.SourceControlAPI,
			Cert: pki.CertFacts{Serial: "AB", NotBefore: na.Add(-90 * day), NotAfter: na}, IssuerKnown: true, IssuerCurrent: true}
	}
	ca := pki.CAInfo{CertFacts: pki.CertFacts{KeyAlgorithm: "ECDSA", KeyBits: 256, NotBefore: certsNowT.Add(-day), NotAfter: certsNowT.Add(7000 * day)}}
	p := pki.Policy{WarnBefore: pki.MustWindow("20%"), CriticalBefore: pki.MustWindow("10%")}

	tests := []struct {
		name                 string
		nodes                []pki.NodeCert
		wantNodes, wantDown  report.CheckStatus
		wantDownSummaryStart string
	}{
		{"healthy", []pki.NodeCert{known("a", "ready", 60*day)}, report.StatusPass, report.StatusPass, "no node is down"},
		{"warn window", []pki.NodeCert{known("a", "ready", 15*day)}, report.StatusWarn, report.StatusPass, "no node is down"},
		{"expired", []pki.NodeCert{known("a", "ready", -time.Hour)}, report.StatusFail, report.StatusPass, "no node is down"},
		{"unknown only", []pki.NodeCert{{ID: "u", Hostname: "w", Source: pki.SourceUnknown, Reason: "r"}}, report.StatusInfo, report.StatusPass, "no node is down"},
		{"down, lapses first", []pki.NodeCert{func() pki.NodeCert {
			n := known("d", "down", 60*day)
			n.DownSince = certsNowT.Add(-70 * day)
			return n
		}()}, report.StatusPass, report.StatusFail, "1 down node(s); at least one"},
		{"down, fine", []pki.NodeCert{known("d", "down", 60*day)}, report.StatusPass, report.StatusPass, "1 down node(s); none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := DomainFrom(pki.Inventory{CA: ca, Nodes: tt.nodes}, p, certsNowT)
			if len(res.Checks) != 2 || res.Checks[0].ID != "pki.node-certs" || res.Checks[1].ID != "pki.down-nodes" {
				t.Fatalf("checks = %+v", res.Checks)
			}
			if got := res.Checks[0].Status; got != tt.wantNodes {
				t.Errorf("pki.node-certs = %s (%s); want %s", got, res.Checks[0].Summary, tt.wantNodes)
			}
			if got := res.Checks[1].Status; got != tt.wantDown || !strings.HasPrefix(res.Checks[1].Summary, tt.wantDownSummaryStart) {
				t.Errorf("pki.down-nodes = %s %q; want %s %q", got, res.Checks[1].Summary, tt.wantDown, tt.wantDownSummaryStart)
			}
			if len(res.CertDays) != len(tt.nodes) {
				t.Errorf("CertDays = %+v", res.CertDays)
			}
		})
	}
}

// `report certs --format junit` and its gate judge the same findings: an expired node certificate is a
// JUnit failure and fails --fail-on fail; a certificate in its warn window is not a failure there; a finding
// about no single node (the cluster's node certificate expiry against the policy) counts as well.
func TestCertsReportJUnitAgreesWithGate(t *testing.T) {
	day := 24 * time.Hour
	ca := pki.CAInfo{CertFacts: pki.CertFacts{KeyAlgorithm: "ECDSA", KeyBits: 256, NotBefore: certsNowT.Add(-day), NotAfter: certsNowT.Add(7000 * day)}}
	node := func(left time.Duration) pki.NodeCert {
		na := certsNowT.Add(left)
		return pki.NodeCert{ID: "a", Hostname: "host-a", Role: "worker", State: "ready", Known: true, Source: pki.SourceControlAPI,
			Cert: pki.CertFacts{Serial: "AB", NotBefore: na.Add(-90 * day), NotAfter: na}, IssuerKnown: true, IssuerCurrent: true}
	}
	for _, tt := range []struct {
		name      string
		left      time.Duration
		expiry    time.Duration // the policy's node_cert_expiry; the cluster's is 2160h
		wantFail  bool
		wantWorst report.CheckStatus
	}{
		{"expired", -time.Hour, 0, true, report.StatusFail},
		{"warn window", 15 * day, 0, false, report.StatusWarn},
		{"cluster expiry off policy", 60 * day, 720 * time.Hour, false, report.StatusWarn},
		{"nothing to say", 60 * day, 2160 * time.Hour, false, report.StatusPass},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := pki.Policy{WarnBefore: pki.MustWindow("20%"), CriticalBefore: pki.MustWindow("10%"), NodeCertExpiry: tt.expiry}
			inv := pki.Inventory{CA: ca, NodeCertExpiry: 2160 * time.Hour, Nodes: []pki.NodeCert{node(tt.left)}}
			cr := ReportFrom(inv, p, certsNowT)
			var b strings.Builder
			if err := cr.Render(&b, report.JUnit); err != nil {
				t.Fatal(err)
			}
			if got := strings.Contains(b.String(), "<failure"); got != tt.wantFail {
				t.Errorf("junit has a failure = %v; want %v:\n%s", got, tt.wantFail, b.String())
			}
			if tt.wantWorst == report.StatusWarn && !strings.Contains(b.String(), "warn: ") {
				t.Errorf("junit does not carry the warning:\n%s", b.String())
			}
			findings := report.StatusPass
			for _, f := range pki.Evaluate(inv, p, certsNowT) {
				findings = report.Worse(findings, SeverityStatus(f.Severity))
			}
			if got := cr.Worst(); got != tt.wantWorst || findings != tt.wantWorst {
				t.Errorf("report certs worst = %s, SeverityStatus(worst finding) = %s; want both %s", got, findings, tt.wantWorst)
			}
			if report.Fails(cr.Worst(), report.FailOnFail) != tt.wantFail {
				t.Errorf("Fails(%s, fail) = %v; want %v", cr.Worst(), !tt.wantFail, tt.wantFail)
			}
			if report.Fails(cr.Worst(), report.FailOnWarn) != (tt.wantWorst != report.StatusPass) {
				t.Errorf("Fails(%s, warn) = %v; want %v", cr.Worst(), !(tt.wantWorst != report.StatusPass), tt.wantWorst != report.StatusPass)
			}
		})
	}
}
