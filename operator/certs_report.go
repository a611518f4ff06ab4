package operator

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
)

// CertsDomain reads every certificate and returns the certificate domain's contribution to
// `swarmguard report`: the pki.node-certs and pki.down-nodes checks and the days-left chart.
func CertsDomain(ctx context.Context, eng CertsEngine, src pki.Sources, c config.PKIConfig, now time.Time) DomainResult {
	p, err := PKIPolicy(c)
	if err != nil {
		return DomainResult{Err: err}
	}
	o, err := ObserveCerts(ctx, eng, src)
	if err != nil {
		return DomainResult{Err: fmt.Errorf("reading certificates: %w", err)}
	}
	return CertsDomainFrom(o.Inventory, p, now)
}

// CertsDomainFrom is CertsDomain's pure part: the checks and chart from an inventory, a policy and now.
func CertsDomainFrom(inv pki.Inventory, p pki.Policy, now time.Time) DomainResult {
	findings := pki.Evaluate(inv, p, now)
	byNode := map[string][]pki.Finding{}
	for _, f := range findings {
		if f.Node != "" {
			byNode[f.Node] = append(byNode[f.Node], f)
		}
	}
	nodeCerts := report.Check{
		ID: "pki.node-certs", Title: "Every node's certificate is inside its validity window",
		Remediation: "A node renews its certificate by itself between 50% and 80% of its validity while it is " +
			"connected; one in its warn or critical window is not renewing: check that it is up and reaches a " +
			"manager. An expired node must leave and rejoin the swarm. A node on an old root follows a root " +
			"rotation once it is up (`swarmguard rotate ca --wait`).",
		Evidence: []report.Evidence{},
	}
	down := report.Check{
		ID: "pki.down-nodes", Title: "No down node's certificate lapses while it is down",
		Remediation: "Bring the node back before its certificate's not_after, or plan for it to leave and rejoin " +
			"the swarm (`docker swarm leave`, then join with a current token).",
		Evidence: []report.Evidence{},
	}
	var res DomainResult
	worstNode, worstDown := report.StatusPass, report.StatusPass
	unknown, downCount := 0, 0
	for _, n := range inv.Nodes {
		ev := report.Evidence{Subject: n.Hostname + " (" + n.ID + ")", Facts: map[string]string{
			"role": n.Role, "state": n.State, "source": string(n.Source),
		}}
		st := report.StatusPass
		if n.Known {
			ev.Facts["serial"] = n.Cert.Serial
			ev.Facts["not_after"] = n.Cert.NotAfter.UTC().Format(time.RFC3339)
			ev.Facts["days_left"] = strconv.FormatFloat(math.Trunc(n.Cert.NotAfter.Sub(now).Hours()/24*10)/10, 'f', 1, 64)
		} else {
			unknown++
			st = report.StatusInfo
			ev.Note = "not read: " + n.Reason
		}
		if n.IssuerKnown {
			ev.Facts["issuer_current"] = strconv.FormatBool(n.IssuerCurrent)
		}
		downSt := report.StatusPass
		for _, f := range byNode[n.ID] {
			s := SeverityStatus(f.Severity)
			if f.ID == pki.FindingCertLapsesWhileDown {
				downSt = report.Worse(downSt, s)
				continue
			}
			if f.ID == pki.FindingCertUnknown {
				continue
			}
			st = report.Worse(st, s)
			ev.Note = certsJoinNote(ev.Note, f.Message)
		}
		ev.Status = st
		nodeCerts.Evidence = append(nodeCerts.Evidence, ev)
		worstNode = report.Worse(worstNode, st)
		res.CertDays = append(res.CertDays, certDaysBar(n, now, st))

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

func certDaysBar(n pki.NodeCert, now time.Time, st report.CheckStatus) report.CertDaysBar {
	b := report.CertDaysBar{Node: n.Hostname, Status: st}
	if n.Known {
		b.DaysLeft = n.Cert.NotAfter.Sub(now).Hours() / 24
		b.Total = n.Cert.Validity().Hours() / 24
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
