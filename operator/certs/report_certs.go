package certs

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
)

// ReportTitle heads `swarmguard report certs`.
const ReportTitle = "swarmguard certificate report"

// ReportFrom is `report certs` as of now, a pure function of the inventory and the policy: the root CA and
// the policy as header lines, every node's certificate as a listing, and the checks every finding of
// pki.Evaluate lands in (pki.node-certs and pki.down-nodes, which the compliance report derives the same
// way, and pki.cluster for the findings about the root CA and the cluster's settings), all on the report
// package's one status scale. So its worst status, the fail_on gate, is the worst finding's
// (SeverityStatus) in every format. The JSON document keeps the certificate fields (ca, node_cert_expiry,
// nodes, findings) beside the checks.
func ReportFrom(inv pki.Inventory, p pki.Policy, now time.Time) report.Report {
	now = now.UTC()
	findings := pki.Evaluate(inv, p, now)
	sec := DomainFrom(inv, p, now)
	sec.Checks = append(sec.Checks, clusterCheck(inv, findings))
	r := report.New(now, "", sec)
	r.Benchmark = ""
	r.Title = ReportTitle
	r.Facts = []report.Fact{
		{Label: "Root CA", Value: caLine(inv.CA, now)},
		{Label: "Node certificate expiry", Value: inv.NodeCertExpiry.String()},
		{Label: "Root rotation in progress", Value: yesNo(inv.RootRotationInProgress)},
		{Label: "Policy", Value: policyLine(p)},
	}
	byNode := map[string][]pki.Finding{}
	for _, f := range findings {
		if f.Node != "" {
			byNode[f.Node] = append(byNode[f.Node], f)
		}
	}
	nodes := report.Listing{Title: "Nodes", Header: []string{"ID", "HOSTNAME", "ROLE", "STATE", "AVAILABILITY", "SERIAL", "NOT AFTER", "LEFT", "ISSUER", "SOURCE"}}
	doc := certsDocument{
		NodeCertExpiry:         inv.NodeCertExpiry.String(),
		RootRotationInProgress: inv.RootRotationInProgress,
		Policy:                 certsPolicy{WarnBefore: p.WarnBefore.String(), CriticalBefore: p.CriticalBefore.String()},
		Nodes:                  []certsNode{},
		Findings:               []certsFinding{},
	}
	if p.NodeCertExpiry > 0 {
		doc.Policy.NodeCertExpiry = p.NodeCertExpiry.String()
	}
	if p.CAMaxAge > 0 {
		doc.Policy.CAMaxAge = p.CAMaxAge.String()
	}
	if inv.CA.Err != nil {
		doc.CA.Error = inv.CA.Err.Error()
	} else {
		ca := inv.CA.CertFacts
		doc.CA = certsCA{Subject: ca.Subject, Serial: ca.Serial, NotBefore: stamp(ca.NotBefore), NotAfter: stamp(ca.NotAfter),
			KeyAlgorithm: ca.KeyAlgorithm, KeyBits: ca.KeyBits, Age: now.Sub(ca.NotBefore).Truncate(time.Second).String(),
			DaysLeft: daysLeft(ca.NotAfter, now)}
	}
	for _, n := range inv.Nodes {
		st := nodeCertStatus(n, byNode[n.ID])
		serial, notAfter, left := "-", "-", "-"
		jn := certsNode{ID: n.ID, Hostname: n.Hostname, Role: n.Role, State: n.State, Availability: n.Availability,
			Status: st, Source: n.Source, Reason: n.Reason}
		if n.Known {
			serial, notAfter, left = n.Cert.Serial, stamp(n.Cert.NotAfter), pki.Days(n.Cert.NotAfter.Sub(now))
			s, nb, na, dl := n.Cert.Serial, stamp(n.Cert.NotBefore), stamp(n.Cert.NotAfter), daysLeft(n.Cert.NotAfter, now)
			jn.Serial, jn.NotBefore, jn.NotAfter, jn.DaysLeft = &s, &nb, &na, &dl
		} else {
			nodes.Notes = append(nodes.Notes, fmt.Sprintf("%s (%s): %s", n.Hostname, n.ID, n.Reason))
		}
		if n.IssuerKnown {
			cur := n.IssuerCurrent
			jn.IssuerCurrent = &cur
		}
		if !n.DownSince.IsZero() {
			jn.DownSince = stamp(n.DownSince)
		}
		nodes.Rows = append(nodes.Rows, report.Row{Status: st, Cells: []string{n.ID, n.Hostname, n.Role, n.State, n.Availability,
			serial, notAfter, left, issuerText(n), string(n.Source)}})
		doc.Nodes = append(doc.Nodes, jn)
	}
	for _, f := range findings {
		doc.Findings = append(doc.Findings, certsFinding{ID: f.ID, Status: SeverityStatus(f.Severity), Node: f.Node, Message: f.Message})
	}
	r.Listings = []report.Listing{nodes}
	r.Document = doc
	return r
}

// clusterCheck is pki.cluster: the findings of pki.Evaluate about no single node (the root CA's expiry,
// age, key, a rotation in progress; the cluster's node certificate expiry against the policy).
func clusterCheck(inv pki.Inventory, findings []pki.Finding) report.Check {
	c := report.Check{ID: "pki.cluster", Title: "The root CA and the cluster's certificate settings need no attention",
		Status: report.StatusPass,
		Remediation: "Rotate a root CA that is expired, expiring within a year, over pki.ca.max_age or weak " +
			"(`swarmguard rotate ca --reason ...`); set the cluster's node certificate expiry to pki.node_cert_expiry " +
			"(`docker swarm update --cert-expiry`, or pki.mode: enforce).",
		Evidence: []report.Evidence{}}
	var ids []string
	for _, f := range findings {
		if f.Node != "" {
			continue
		}
		st := SeverityStatus(f.Severity)
		c.Evidence = append(c.Evidence, report.Evidence{Subject: f.ID, Status: st, Note: f.Message})
		c.Status = report.Worse(c.Status, st)
		ids = append(ids, f.ID)
	}
	if len(ids) == 0 {
		ca := inv.CA.CertFacts
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "root CA " + ca.Subject, Status: report.StatusPass,
			Facts: map[string]string{"serial": ca.Serial, "not_after": stamp(ca.NotAfter), "node_cert_expiry": inv.NodeCertExpiry.String()}})
		c.Summary = "the root CA and the cluster's node certificate expiry are as the policy wants"
		return c
	}
	c.Summary = fmt.Sprintf("%d finding(s): %s", len(ids), strings.Join(ids, ", "))
	return c
}

// certsDocument is the JSON of `report certs` beside the report's own fields. Certificate fields of a
// node are null when its certificate could not be read (reason says why): never a guess.
type certsDocument struct {
	CA                     certsCA        `json:"ca"`
	NodeCertExpiry         string         `json:"node_cert_expiry"`
	RootRotationInProgress bool           `json:"root_rotation_in_progress"`
	Policy                 certsPolicy    `json:"policy"`
	Nodes                  []certsNode    `json:"nodes"`
	Findings               []certsFinding `json:"findings"`
}

type certsCA struct {
	Subject      string  `json:"subject"`
	Serial       string  `json:"serial"`
	NotBefore    string  `json:"not_before"`
	NotAfter     string  `json:"not_after"`
	KeyAlgorithm string  `json:"key_algorithm"`
	KeyBits      int     `json:"key_bits"`
	Age          string  `json:"age"`
	DaysLeft     float64 `json:"days_left"`
	Error        string  `json:"error,omitempty"`
}

type certsPolicy struct {
	NodeCertExpiry string `json:"node_cert_expiry,omitempty"`
	WarnBefore     string `json:"warn_before"`
	CriticalBefore string `json:"critical_before"`
	CAMaxAge       string `json:"ca_max_age,omitempty"`
}

type certsNode struct {
	ID            string             `json:"id"`
	Hostname      string             `json:"hostname"`
	Role          string             `json:"role"`
	State         string             `json:"state"`
	Availability  string             `json:"availability"`
	Status        report.CheckStatus `json:"status"`
	Serial        *string            `json:"serial"`
	NotBefore     *string            `json:"not_before"`
	NotAfter      *string            `json:"not_after"`
	DaysLeft      *float64           `json:"days_left"`
	IssuerCurrent *bool              `json:"issuer_current"`
	Source        pki.Source         `json:"source"`
	Reason        string             `json:"reason,omitempty"`
	DownSince     string             `json:"down_since,omitempty"`
}

type certsFinding struct {
	ID      string             `json:"id"`
	Status  report.CheckStatus `json:"status"`
	Node    string             `json:"node"`
	Message string             `json:"message"`
}

// daysLeft is the time from now to t in days, truncated to two decimals.
func daysLeft(t, now time.Time) float64 {
	return math.Trunc(t.Sub(now).Hours()/24*100) / 100
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func issuerText(n pki.NodeCert) string {
	switch {
	case !n.IssuerKnown:
		return "unknown"
	case n.IssuerCurrent:
		return "current"
	default:
		return "old"
	}
}

func caLine(ca pki.CAInfo, now time.Time) string {
	if ca.Err != nil {
		return "unreadable: " + ca.Err.Error()
	}
	f := ca.CertFacts
	return fmt.Sprintf("%s  serial %s  %s %d  valid %s to %s  (age %s, %s left)",
		f.Subject, f.Serial, f.KeyAlgorithm, f.KeyBits, stamp(f.NotBefore), stamp(f.NotAfter),
		pki.Days(now.Sub(f.NotBefore)), pki.Days(f.NotAfter.Sub(now)))
}

func policyLine(p pki.Policy) string {
	s := fmt.Sprintf("warn_before %s, critical_before %s", p.WarnBefore, p.CriticalBefore)
	if p.NodeCertExpiry > 0 {
		s += ", node_cert_expiry " + p.NodeCertExpiry.String()
	}
	if p.CAMaxAge > 0 {
		s += ", ca.max_age " + p.CAMaxAge.String()
	}
	return s
}
