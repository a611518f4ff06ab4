package pki

import (
	"fmt"
	"sort"
	"time"
)

// Severity of a finding.
type Severity string

// Severities, least to most urgent.
const (
	SeverityInfo     Severity = "info"
	SeverityWarn     Severity = "warn"
	SeverityCritical Severity = "critical"
)

func (s Severity) rank() int {
	switch s {
	case SeverityCritical:
		return 0
	case SeverityWarn:
		return 1
	default:
		return 2
	}
}

// Finding ids: stable, so that alerts, exemptions and dashboards can key on
// them. A finding about one node carries that node's ID in Node; cluster-wide
// findings leave Node empty.
const (
	FindingCertExpired         = "cert-expired"            // critical: the node's certificate has lapsed
	FindingCertCritical        = "cert-critical-window"    // critical: inside critical_before
	FindingCertWarn            = "cert-warn-window"        // warn: inside warn_before
	FindingCertLapsesWhileDown = "cert-lapses-while-down"  // critical: down, and lapses before it is likely back
	FindingCertUnknown         = "cert-unknown"            // info: no source could read it
	FindingCertOldIssuer       = "cert-old-issuer"         // warn (info while a rotation runs)
	FindingNodeCertExpiry      = "node-cert-expiry-policy" // warn: cluster NodeCertExpiry differs from policy
	FindingCAUnreadable        = "ca-unreadable"           // critical
	FindingCAExpired           = "ca-expired"              // critical
	FindingCAExpiring          = "ca-expiring"             // warn: within caExpiryHorizon
	FindingCAMaxAge            = "ca-max-age"              // warn: older than ca.max_age
	FindingCAWeakKey           = "ca-weak-key"             // critical: weaker than RSA 2048 / ECDSA P-256
	FindingCARotation          = "ca-rotation-in-progress" // info
)

// caExpiryHorizon: a root CA that expires within a year is a finding. Swarm's
// own root lasts 20 years and a CA handed in must last at least a year, so a
// root this close to the end was forgotten.
const caExpiryHorizon = 365 * 24 * time.Hour

// DefaultDownFloor is the least time a down node is assumed to stay down
// from now: a node down for a moment still needs a person or a reboot.
const DefaultDownFloor = 24 * time.Hour

// Policy is the certificate policy from the configuration (`pki.*`).
type Policy struct {
	// NodeCertExpiry is pki.node_cert_expiry; 0 means no policy.
	NodeCertExpiry time.Duration
	WarnBefore     Window
	CriticalBefore Window
	// CAMaxAge is pki.ca.max_age; 0 means no age limit.
	CAMaxAge time.Duration
	// DownFloor is the least time a down node is assumed to stay down from
	// now; DefaultDownFloor when zero. See LikelyBack.
	DownFloor time.Duration
}

// DefaultPolicy: warn with 20% of the validity left, critical with 10% (for
// Swarm's default 90 days: 18 and 9 days), no expiry or CA age policy.
func DefaultPolicy() Policy {
	return Policy{WarnBefore: Window{Percent: 20}, CriticalBefore: Window{Percent: 10}}
}

// Finding is one thing that needs attention.
type Finding struct {
	ID       string
	Severity Severity
	Node     string
	Message  string
}

// LikelyBack estimates when a node that has been down since downSince comes
// back. Lacking any other signal we use the Copernican estimate: an outage
// that has lasted d is as likely to last d more as to end sooner, so it ends
// around now+d; never sooner than now+floor, because a node that went down
// just now rarely returns on its own (and an unknown downSince counts as now).
func LikelyBack(downSince, now time.Time, floor time.Duration) time.Time {
	if floor <= 0 {
		floor = DefaultDownFloor
	}
	elapsed := time.Duration(0)
	if !downSince.IsZero() && downSince.Before(now) {
		elapsed = now.Sub(downSince)
	}
	return now.Add(max(elapsed, floor))
}

// Evaluate turns the inventory into findings, as a pure function of inv, p
// and now. Findings are sorted by severity, then id, then node.
func Evaluate(inv Inventory, p Policy, now time.Time) []Finding {
	var out []Finding
	add := func(id string, sev Severity, node, format string, args ...any) {
		out = append(out, Finding{ID: id, Severity: sev, Node: node, Message: fmt.Sprintf(format, args...)})
	}

	// The root CA.
	if inv.CA.Err != nil {
		add(FindingCAUnreadable, SeverityCritical, "", "root CA cannot be read: %v", inv.CA.Err)
	} else {
		ca := inv.CA.CertFacts
		switch left := ca.NotAfter.Sub(now); {
		case left <= 0:
			add(FindingCAExpired, SeverityCritical, "", "root CA %s expired on %s; rotate it (swarmguard rotate ca)", ca.Subject, dateOnly(ca.NotAfter))
		case left <= caExpiryHorizon:
			add(FindingCAExpiring, SeverityWarn, "", "root CA %s expires on %s (%s left, under a year); rotate it (swarmguard rotate ca)", ca.Subject, dateOnly(ca.NotAfter), Days(left))
		}
		if age := now.Sub(ca.NotBefore); p.CAMaxAge > 0 && age > p.CAMaxAge {
			add(FindingCAMaxAge, SeverityWarn, "", "root CA %s is %s old, over pki.ca.max_age %s", ca.Subject, Days(age), Days(p.CAMaxAge))
		}
		if weak, why := WeakKey(ca.KeyAlgorithm, ca.KeyBits); weak {
			add(FindingCAWeakKey, SeverityCritical, "", "root CA key is weak: %s; rotate to an RSA 2048+ or ECDSA P-256+ key", why)
		}
	}
	if inv.RootRotationInProgress {
		add(FindingCARotation, SeverityInfo, "", "root CA rotation in progress")
	}
	if p.NodeCertExpiry > 0 && inv.NodeCertExpiry != p.NodeCertExpiry {
		add(FindingNodeCertExpiry, SeverityWarn, "", "cluster node certificate expiry is %s, policy pki.node_cert_expiry is %s (pki.mode: enforce sets it)",
			durationOrDefault(inv.NodeCertExpiry), p.NodeCertExpiry)
	}

	// Every node.
	for _, n := range inv.Nodes {
		name := n.Hostname
		if !n.Known {
			add(FindingCertUnknown, SeverityInfo, n.ID, "%s: certificate not read: %s", name, n.Reason)
		} else {
			nb, na := n.Cert.NotBefore, n.Cert.NotAfter
			switch {
			case !now.Before(na):
				add(FindingCertExpired, SeverityCritical, n.ID, "%s: certificate expired on %s; the node must leave and rejoin the swarm", name, stamp(na))
			case p.CriticalBefore.Contains(nb, na, now):
				add(FindingCertCritical, SeverityCritical, n.ID, "%s: certificate expires on %s (%s left, critical_before %s)", name, stamp(na), Days(na.Sub(now)), p.CriticalBefore)
			case p.WarnBefore.Contains(nb, na, now):
				add(FindingCertWarn, SeverityWarn, n.ID, "%s: certificate expires on %s (%s left, warn_before %s)", name, stamp(na), Days(na.Sub(now)), p.WarnBefore)
			}
			if isDown(n.State) {
				if back := LikelyBack(n.DownSince, now, p.DownFloor); now.Before(na) && !back.Before(na) {
					add(FindingCertLapsesWhileDown, SeverityCritical, n.ID, "%s: down%s and its certificate lapses on %s, before it is likely back (%s); bring it back before then or it must rejoin",
						name, since(n.DownSince), stamp(na), stamp(back))
				}
			}
		}
		if n.IssuerKnown && !n.IssuerCurrent {
			if inv.RootRotationInProgress {
				add(FindingCertOldIssuer, SeverityInfo, n.ID, "%s: not yet on the new root (rotation in progress)", name)
			} else {
				add(FindingCertOldIssuer, SeverityWarn, n.ID, "%s: certificate issued by an old root CA", name)
			}
		}
	}
	SortFindings(out)
	return out
}

// SortFindings orders findings by severity (critical first), id, node.
func SortFindings(f []Finding) {
	sort.SliceStable(f, func(i, j int) bool {
		if f[i].Severity != f[j].Severity {
			return f[i].Severity.rank() < f[j].Severity.rank()
		}
		if f[i].ID != f[j].ID {
			return f[i].ID < f[j].ID
		}
		return f[i].Node < f[j].Node
	})
}

func isDown(state string) bool { return state == StateDown || state == "disconnected" }

func since(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return " since " + stamp(t)
}

// Days renders a duration in days with one decimal ("12.5d"); under a day it
// is the Go duration, truncated to the minute.
func Days(d time.Duration) string {
	if d < 24*time.Hour && d > -24*time.Hour {
		return d.Truncate(time.Minute).String()
	}
	return fmt.Sprintf("%.1fd", d.Hours()/24)
}

func stamp(t time.Time) string    { return t.UTC().Format(time.RFC3339) }
func dateOnly(t time.Time) string { return t.UTC().Format(time.DateOnly) }

func durationOrDefault(d time.Duration) string {
	if d == 0 {
		return "unset"
	}
	return d.String()
}
