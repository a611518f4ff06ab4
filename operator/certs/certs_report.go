package certs

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// Inventory reads every certificate for the report (the same read as the controller's pass).
func Inventory(ctx context.Context, eng Engine, src pki.Sources) (pki.Inventory, error) {
	o, err := ObserveCerts(ctx, eng, src)
	if err != nil {
		return pki.Inventory{}, fmt.Errorf("reading certificates: %w", err)
	}
	return o.Inventory, nil
}

// Section is the certificate domain's part of the compliance report: CIS 7.7 (node certificate expiry),
// 7.8 (the root CA's age, from DecideCA), the CA key strength, every node's certificate and the down nodes
// (from pki.Evaluate, as the controller's pass logs them), the days-left chart and the CA's age bar.
// invErr is the error reading the inventory, if any.
func Section(cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, inv pki.Inventory, invErr error, c config.PKIConfig, now time.Time) report.Section {
	sec := report.Section{Checks: []report.Check{
		checkNodeCertExpiry(cl, c),
		checkCAAge(cl, entries, ledgerErr, c.CA, now),
		checkCAKeyStrength(cl),
	}}
	if ca, err := pki.ParseCertificate([]byte(cl.TrustRootPEM)); err == nil {
		d := DecideCA(CAObservation{Root: ca, InProgress: cl.RootRotationInProgress, Entries: entries, LedgerErr: ledgerErr}, c.CA.MaxAge.D(), now)
		sec.Ages = []report.AgeBar{{Name: "root CA", Age: d.Age, MaxAge: d.MaxAge, Known: true, Status: report.AgeStatus(true, d.Overdue, d.MaxAge)}}
	}
	p, err := PKIPolicy(c)
	if err == nil {
		err = invErr
	}
	if err != nil {
		sec.Err, sec.CertDaysNote = err, "certificate inventory not read: "+err.Error()
		sec.Checks = append(sec.Checks, nodeCertsCheck().Errored(err), downNodesCheck().Errored(err))
		return sec
	}
	nodes := DomainFrom(inv, p, now)
	sec.Checks = append(sec.Checks, nodes.Checks...)
	sec.CertDays, sec.CertDaysNote = nodes.CertDays, nodes.CertDaysNote
	if sec.CertDays == nil {
		sec.CertDays = []report.CertDaysBar{}
	}
	return sec
}

// DomainFrom is CertsDomain's pure part: the checks and chart from an inventory, a policy and now.
func DomainFrom(inv pki.Inventory, p pki.Policy, now time.Time) report.Section {
	findings := pki.Evaluate(inv, p, now)
	byNode := map[string][]pki.Finding{}
	for _, f := range findings {
		if f.Node != "" {
			byNode[f.Node] = append(byNode[f.Node], f)
		}
	}
	nodeCerts, down := nodeCertsCheck(), downNodesCheck()
	var res report.Section
	worstNode, worstDown := report.StatusPass, report.StatusPass
	unknown, downCount := 0, 0
	for _, n := range inv.Nodes {
		ev := report.Evidence{Subject: n.Hostname + " (" + n.ID + ")", Facts: map[string]string{
			"role": n.Role, "state": n.State, "source": string(n.Source),
		}}
		st := nodeCertStatus(n, byNode[n.ID])
		if n.Known {
			ev.Facts["serial"] = n.Cert.Serial
			ev.Facts["not_after"] = n.Cert.NotAfter.UTC().Format(time.RFC3339)
			ev.Facts["days_left"] = strconv.FormatFloat(math.Trunc(n.Cert.NotAfter.Sub(now).Hours()/24*10)/10, 'f', 1, 64)
		} else {
			unknown++
			ev.Note = "not read: " + n.Reason
		}
		if n.IssuerKnown {
			ev.Facts["issuer_current"] = strconv.FormatBool(n.IssuerCurrent)
		}
		downSt := report.StatusPass
		for _, f := range byNode[n.ID] {
			switch f.ID {
			case pki.FindingCertLapsesWhileDown:
				downSt = report.Worse(downSt, SeverityStatus(f.Severity))
			case pki.FindingCertUnknown:
			default:
				ev.Note = certsJoinNote(ev.Note, f.Message)
			}
		}
		ev.Status = st
		nodeCerts.Evidence = append(nodeCerts.Evidence, ev)
		worstNode = report.Worse(worstNode, st)
		res.CertDays = append(res.CertDays, certDaysBar(n, p, now, st))

		if n.State == pki.StateDown || n.State == "disconnected" {
			downCount++
			dev := report.Evidence{Subject: ev.Subject, Status: downSt, Facts: map[string]string{"state": n.State}}
			if !n.DownSince.IsZero() {
				dev.Facts["down_since"] = n.DownSince.UTC().Format(time.RFC3339)
			}
			if n.Known {
				dev.Facts["not_after"] = n.Cert.NotAfter.UTC().Format(time.RFC3339)
				dev.Facts["likely_back"] = pki.LikelyBack(n.DownSince, now, p.DownFloor).UTC().Format(time.RFC3339)
			} else {
				dev.Status, dev.Note = report.StatusInfo, "certificate not read: "+n.Reason
				downSt = report.Worse(downSt, report.StatusInfo)
			}
			for _, f := range byNode[n.ID] {
				if f.ID == pki.FindingCertLapsesWhileDown {
					dev.Note = f.Message
				}
			}
			down.Evidence = append(down.Evidence, dev)
			worstDown = report.Worse(worstDown, downSt)
		}
	}
	nodeCerts.Status = worstNode
	switch worstNode {
	case report.StatusPass:
		nodeCerts.Summary = fmt.Sprintf("all %d node certificates are outside their warn windows", len(inv.Nodes))
	case report.StatusInfo:
		nodeCerts.Summary = fmt.Sprintf("%d of %d node certificates could not be read; the others are fine", unknown, len(inv.Nodes))
	default:
		nodeCerts.Summary = fmt.Sprintf("%d of %d nodes need attention", certsCountNot(nodeCerts.Evidence, report.StatusPass, report.StatusInfo), len(inv.Nodes))
	}
	down.Status = worstDown
	switch {
	case downCount == 0:
		down.Summary = "no node is down"
	case worstDown == report.StatusFail:
		down.Summary = fmt.Sprintf("%d down node(s); at least one certificate lapses before the node is likely back", downCount)
	default:
		down.Summary = fmt.Sprintf("%d down node(s); none lapses before it is likely back", downCount)
	}
	res.Checks = []report.Check{nodeCerts, down}
	if unknown > 0 {
		res.CertDaysNote = fmt.Sprintf("%d node certificate(s) could not be read (see pki.node-certs)", unknown)
	}
	return res
}

// nodeCertStatus is a node's verdict in pki.node-certs, from its own findings: the worst of them on the
// report's scale, info when its certificate could not be read and nothing worse is known. A lapse while
// down is pki.down-nodes' to judge.
func nodeCertStatus(n pki.NodeCert, findings []pki.Finding) report.CheckStatus {
	st := report.StatusPass
	if !n.Known {
		st = report.StatusInfo
	}
	for _, f := range findings {
		if f.ID == pki.FindingCertLapsesWhileDown || f.ID == pki.FindingCertUnknown {
			continue
		}
		st = report.Worse(st, SeverityStatus(f.Severity))
	}
	return st
}

func certDaysBar(n pki.NodeCert, p pki.Policy, now time.Time, st report.CheckStatus) report.CertDaysBar {
	b := report.CertDaysBar{Node: n.Hostname, Status: st}
	if n.Known {
		nb, na := n.Cert.NotBefore, n.Cert.NotAfter
		b.DaysLeft = na.Sub(now).Hours() / 24
		b.Total = n.Cert.Validity().Hours() / 24
		b.WarnDays = p.WarnBefore.Lead(nb, na).Hours() / 24
		b.CriticalDays = p.CriticalBefore.Lead(nb, na).Hours() / 24
	}
	return b
}

func certsJoinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func certsCountNot(ev []report.Evidence, ok ...report.CheckStatus) int {
	n := 0
next:
	for _, e := range ev {
		for _, s := range ok {
			if e.Status == s {
				continue next
			}
		}
		n++
	}
	return n
}

// nodeCertsCheck is pki.node-certs without a verdict.
func nodeCertsCheck() report.Check {
	return report.Check{
		ID: "pki.node-certs", Title: "Every node's certificate is inside its validity window",
		Remediation: "A node renews its certificate by itself between 50% and 80% of its validity while it is " +
			"connected; one in its warn or critical window is not renewing: check that it is up and reaches a " +
			"manager. An expired node must leave and rejoin the swarm. A node on an old root follows a root " +
			"rotation once it is up (`swarmguard rotate ca --wait`).",
		Evidence: []report.Evidence{},
	}
}

// downNodesCheck is pki.down-nodes without a verdict.
func downNodesCheck() report.Check {
	return report.Check{
		ID: "pki.down-nodes", Title: "No down node's certificate lapses while it is down",
		Remediation: "Bring the node back before its certificate's not_after, or plan for it to leave and rejoin " +
			"the swarm (`docker swarm leave`, then join with a current token).",
		Evidence: []report.Evidence{},
	}
}

// SectionGauges are the certificate section's check statuses for one observation (the CA state, the ledger
// and the inventory as a certs pass read them): what that pass refreshes.
func SectionGauges(cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, inv pki.Inventory, c config.PKIConfig, now time.Time) []report.Gauge {
	return report.CheckGauges(Section(cl, entries, ledgerErr, inv, nil, c, now).Checks)
}
