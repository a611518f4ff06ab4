package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// Domain names of the certificate passes in plans: the node certificates' expiry, and the root CA.
const (
	Domain   = "certs"
	DomainCA = "ca"
)

// PlanNodeCertExpiry is the certificate pass's plan: under pki.mode enforce, set the cluster's node
// certificate expiry to pki.node_cert_expiry when the two differ (one ledger entry, kind node-cert-expiry),
// or, when they agree and the ledger has no entry saying so (a holder stopped between the change and its
// record, a change by hand), record it once as adopted. It is pure: entries is the ledger as read.
func PlanNodeCertExpiry(c config.PKIConfig, ca swarm.CAState, entries []swarm.Entry) operator.Plan {
	p := operator.Plan{Domain: Domain}
	want := c.NodeCertExpiry.D()
	switch {
	case want == 0:
		p.Note("pki.node_cert_expiry not set: the cluster's %s is left as it is", ca.NodeCertExpiry)
	case ca.NodeCertExpiry == want && (c.Mode != config.ModeEnforce || nodeCertExpiryRecorded(entries, want)):
		p.Note("node certificate expiry is %s, as pki.node_cert_expiry wants", want)
	case ca.NodeCertExpiry == want:
		p.Add(swarm.KindNodeCertExpiry, "cluster CA configuration", fmt.Sprintf("record the node certificate expiry %s found with no ledger entry as adopted", want),
			"node certificate expiry found at pki.node_cert_expiry with no ledger entry")
	case c.Mode != config.ModeEnforce:
		p.Note("node certificate expiry is %s, pki.node_cert_expiry wants %s (pki.mode %s: not changed)", ca.NodeCertExpiry, want, c.Mode)
	default:
		reason := "pki.mode enforce: pki.node_cert_expiry " + want.String()
		p.Add(swarm.KindNodeCertExpiry, "cluster CA configuration", fmt.Sprintf("set the node certificate expiry from %s to %s", ca.NodeCertExpiry, want), reason)
	}
	return p
}

// nodeCertExpiryRecorded: the ledger's newest node-cert-expiry entry (ok or adopted) says want.
func nodeCertExpiryRecorded(entries []swarm.Entry, want time.Duration) bool {
	e, ok := swarm.Latest(entries, swarm.KindNodeCertExpiry, swarm.ResultOK, swarm.ResultAdopted)
	return ok && e.Details["to"] == want.String()
}

// PlanNodeCerts reads the CA configuration and the ledger (reads only) and returns the certificate pass's plan.
func PlanNodeCerts(ctx context.Context, eng Engine, ledger operator.LedgerStore, c config.PKIConfig) operator.Plan {
	if _, err := PKIPolicy(c); err != nil {
		return operator.Failed(Domain, err)
	}
	ca, err := eng.CA(ctx)
	if err != nil {
		return operator.Failed(Domain, fmt.Errorf("reading the root CA: %w", err))
	}
	entries, err := ledger.Entries(ctx)
	if err != nil {
		return operator.Failed(Domain, fmt.Errorf("reading the ledger: %w", err))
	}
	return PlanNodeCertExpiry(c, ca, entries)
}

// PlanCAFrom is the root CA pass's plan, in the order the pass records: a rotation the ledger does not know
// is adopted (kind ca, whatever the mode: the audit trail says it happened); then, under pki.mode enforce
// when DecideCA says the root is due, a rotation is started (kind ca) and followed to completion (kind ca).
// root is the trust root's certificate. It is pure.
func PlanCAFrom(c config.PKIConfig, ca swarm.CAState, root *x509.Certificate, entries []swarm.Entry, now time.Time) operator.Plan {
	p := operator.Plan{Domain: DomainCA}
	if n, ok := UnrecordedCARotation(ca, entries); ok {
		p.Add(swarm.KindCA, fmt.Sprintf("root CA rotation %d", n), fmt.Sprintf("record root CA rotation %d as adopted", n),
			fmt.Sprintf("root CA rotation %d changed outside the ledger (started by a process that stopped before recording it, or by hand)", n))
	}
	maxAge := c.CA.MaxAge.D()
	d := DecideCA(CAObservation{Root: root, InProgress: ca.RootRotationInProgress, Entries: entries}, maxAge, now)
	switch {
	case maxAge == 0:
		p.Note("pki.ca.max_age not set: the root CA is not rotated by schedule (age %s)", config.Duration(d.Age.Truncate(time.Second)))
	case !d.Rotate:
		p.Note("root CA rotation not due: %s", d.Why)
	case c.Mode != config.ModeEnforce:
		p.Note("root CA older than pki.ca.max_age (pki.mode %s: not rotated): %s", c.Mode, d.Why)
	default:
		p.Add(swarm.KindCA, "root CA serial "+pki.SerialHex(root), fmt.Sprintf("rotate the root CA to a new swarm-generated root (ForceRotate %d -> %d)", ca.ForceRotate, ca.ForceRotate+1), d.Why)
		p.Add(swarm.KindCA, "root CA rotation", "follow the rotation until every node is on the new root", "a rotation is recorded when it completes (or fails to)")
	}
	return p
}

// PlanCA reads the root CA and the ledger (reads only) and returns the root CA pass's plan as of now.
func PlanCA(ctx context.Context, eng Engine, ledger operator.LedgerStore, c config.PKIConfig, now time.Time) operator.Plan {
	ca, err := eng.CA(ctx)
	if err != nil {
		return operator.Failed(DomainCA, fmt.Errorf("reading the root CA: %w", err))
	}
	root, err := pki.ParseCertificate([]byte(ca.TrustRootPEM))
	if err != nil {
		return operator.Failed(DomainCA, fmt.Errorf("reading the trust root: %w", err))
	}
	entries, err := ledger.Entries(ctx)
	if err != nil {
		return operator.Failed(DomainCA, fmt.Errorf("reading the ledger: %w", err))
	}
	return PlanCAFrom(c, ca, root, entries, now)
}

// PlanStartCA is the plan of a manual root CA rotation (`rotate ca`) from the CA state before it: start it
// (kind ca) and follow it to completion (kind ca); with one in progress and no opts.Force, attach to it and
// follow it (kind ca). It is pure.
func PlanStartCA(before swarm.CAState, opts swarm.RotateCAOptions, reason string) operator.Plan {
	p := operator.Plan{Domain: DomainCA}
	switch {
	case before.RootRotationInProgress && !opts.Force:
		p.Note("a root CA rotation is in progress: it is attached to, not restarted (--force would restart it)")
	case opts.CertPEM != "":
		p.Add(swarm.KindCA, "root CA", fmt.Sprintf("rotate the root CA to the certificate handed in (ForceRotate %d -> %d)", before.ForceRotate, before.ForceRotate+1), reason)
	default:
		p.Add(swarm.KindCA, "root CA", fmt.Sprintf("rotate the root CA to a new swarm-generated root (ForceRotate %d -> %d)", before.ForceRotate, before.ForceRotate+1), reason)
	}
	p.Add(swarm.KindCA, "root CA rotation", "follow the rotation until every node is on the new root (with --wait)", "a rotation is recorded when it completes (or fails to)")
	return p
}
