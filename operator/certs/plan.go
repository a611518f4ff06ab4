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
	return decideNodeCertExpiry(c, ca, entries).Plan()
}

// NodeCertPlan is the certificate pass's plan (Plan() is what is shown) and, for its action, what
// ApplyNodeCertExpiry does: the pass decides once and acts on this value.
type NodeCertPlan struct {
	notes []string
	steps []nodeCertStep
}

// nodeCertStep is one action and its change: set the expiry to want, or (adopt) record want, found set,
// as adopted.
type nodeCertStep struct {
	action operator.Action
	adopt  bool
	want   time.Duration
}

// Plan is the plan as every dry run and `swarmguard plan` show it.
func (np NodeCertPlan) Plan() operator.Plan {
	p := operator.Plan{Domain: Domain, Notes: np.notes}
	for _, s := range np.steps {
		p.Actions = append(p.Actions, s.action)
	}
	return p
}

func decideNodeCertExpiry(c config.PKIConfig, ca swarm.CAState, entries []swarm.Entry) NodeCertPlan {
	var np NodeCertPlan
	note := func(format string, args ...any) { np.notes = append(np.notes, fmt.Sprintf(format, args...)) }
	want := c.NodeCertExpiry.D()
	switch {
	case want == 0:
		note("pki.node_cert_expiry not set: the cluster's %s is left as it is", ca.NodeCertExpiry)
	case ca.NodeCertExpiry == want && (c.Mode != config.ModeEnforce || nodeCertExpiryRecorded(entries, want)):
		note("node certificate expiry is %s, as pki.node_cert_expiry wants", want)
	case ca.NodeCertExpiry == want:
		np.steps = append(np.steps, nodeCertStep{action: operator.Action{Kind: swarm.KindNodeCertExpiry, Subject: "cluster CA configuration",
			Change: fmt.Sprintf("record the node certificate expiry %s found with no ledger entry as adopted", want),
			Reason: "node certificate expiry found at pki.node_cert_expiry with no ledger entry"}, adopt: true, want: want})
	case c.Mode != config.ModeEnforce:
		note("node certificate expiry is %s, pki.node_cert_expiry wants %s (pki.mode %s: not changed)", ca.NodeCertExpiry, want, c.Mode)
	default:
		reason := "pki.mode enforce: pki.node_cert_expiry " + want.String()
		np.steps = append(np.steps, nodeCertStep{action: operator.Action{Kind: swarm.KindNodeCertExpiry, Subject: "cluster CA configuration",
			Change: fmt.Sprintf("set the node certificate expiry from %s to %s", ca.NodeCertExpiry, want), Reason: reason}, want: want})
	}
	return np
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
	return decideCA(c, ca, root, entries, now).Plan()
}

// CAPlan is a root CA plan (Plan() is what is shown) and, for each of its actions in order, what ApplyCA
// does: the scheduled pass and `rotate ca` decide once and act on this value.
type CAPlan struct {
	notes []string
	steps []caStep
	// ca and root are what was observed; decision is DecideCA's (zero for a manual rotation).
	ca       swarm.CAState
	root     *x509.Certificate
	decision CADecision
	maxAge   time.Duration
}

// caStep is one action of a root CA plan and what ApplyCA does for it.
type caStep struct {
	action operator.Action
	do     caOp
	// n is the rotation counter an adoption records.
	n uint64
	// opts are a start's options (a CA handed in, --force).
	opts swarm.RotateCAOptions
}

type caOp int

const (
	caAdopt  caOp = iota + 1 // record a rotation the ledger does not know as adopted
	caStart                  // start a rotation (or attach to one started meanwhile)
	caFollow                 // follow the rotation to its end and record the outcome
)

// Plan is the plan as every dry run and `swarmguard plan` show it.
func (cp CAPlan) Plan() operator.Plan {
	p := operator.Plan{Domain: DomainCA, Notes: cp.notes}
	for _, s := range cp.steps {
		p.Actions = append(p.Actions, s.action)
	}
	return p
}

func (cp *CAPlan) add(s caStep, kind, subject, change, reason string) {
	s.action = operator.Action{Kind: kind, Subject: subject, Change: change, Reason: reason}
	cp.steps = append(cp.steps, s)
}

func (cp *CAPlan) note(format string, args ...any) {
	cp.notes = append(cp.notes, fmt.Sprintf(format, args...))
}

// follows says whether the plan follows a rotation to its end.
func (cp CAPlan) follows() bool {
	for _, s := range cp.steps {
		if s.do == caFollow {
			return true
		}
	}
	return false
}

func decideCA(c config.PKIConfig, ca swarm.CAState, root *x509.Certificate, entries []swarm.Entry, now time.Time) CAPlan {
	maxAge := c.CA.MaxAge.D()
	cp := CAPlan{ca: ca, root: root, maxAge: maxAge}
	if n, ok := UnrecordedCARotation(ca, entries); ok {
		cp.add(caStep{do: caAdopt, n: n}, swarm.KindCA, fmt.Sprintf("root CA rotation %d", n), fmt.Sprintf("record root CA rotation %d as adopted", n),
			fmt.Sprintf("root CA rotation %d changed outside the ledger (started by a process that stopped before recording it, or by hand)", n))
	}
	d := DecideCA(CAObservation{Root: root, InProgress: ca.RootRotationInProgress, Entries: entries}, maxAge, now)
	cp.decision = d
	switch {
	case maxAge == 0:
		cp.note("pki.ca.max_age not set: the root CA is not rotated by schedule (age %s)", config.Duration(d.Age.Truncate(time.Second)))
	case !d.Rotate:
		cp.note("root CA rotation not due: %s", d.Why)
	case c.Mode != config.ModeEnforce:
		cp.note("root CA older than pki.ca.max_age (pki.mode %s: not rotated): %s", c.Mode, d.Why)
	default:
		cp.add(caStep{do: caStart}, swarm.KindCA, "root CA serial "+pki.SerialHex(root), fmt.Sprintf("rotate the root CA to a new swarm-generated root (ForceRotate %d -> %d)", ca.ForceRotate, ca.ForceRotate+1), d.Why)
		cp.add(caStep{do: caFollow}, swarm.KindCA, "root CA rotation", "follow the rotation until every node is on the new root", "a rotation is recorded when it completes (or fails to)")
	}
	return cp
}

// PlanCA reads the root CA and the ledger (reads only) and returns the root CA pass's plan as of now.
func PlanCA(ctx context.Context, eng Engine, ledger operator.LedgerStore, c config.PKIConfig, now time.Time) operator.Plan {
	cp, err := DecideCAPass(ctx, eng, ledger, c, now)
	if err != nil {
		return operator.Failed(DomainCA, err)
	}
	return cp.Plan()
}

// PlanStartCA is the plan of a manual root CA rotation (`rotate ca`) from the CA state before it: start it
// (kind ca) and follow it to completion (kind ca); with one in progress and no opts.Force, attach to it and
// follow it (kind ca). It is pure.
func PlanStartCA(before swarm.CAState, opts swarm.RotateCAOptions, reason string) operator.Plan {
	return planStartCA(before, opts, reason).Plan()
}

func planStartCA(before swarm.CAState, opts swarm.RotateCAOptions, reason string) CAPlan {
	cp := CAPlan{ca: before}
	switch {
	case before.RootRotationInProgress && !opts.Force:
		cp.note("a root CA rotation is in progress: it is attached to, not restarted (--force would restart it)")
	case opts.CertPEM != "":
		cp.add(caStep{do: caStart, opts: opts}, swarm.KindCA, "root CA", fmt.Sprintf("rotate the root CA to the certificate handed in (ForceRotate %d -> %d)", before.ForceRotate, before.ForceRotate+1), reason)
	default:
		cp.add(caStep{do: caStart, opts: opts}, swarm.KindCA, "root CA", fmt.Sprintf("rotate the root CA to a new swarm-generated root (ForceRotate %d -> %d)", before.ForceRotate, before.ForceRotate+1), reason)
	}
	cp.add(caStep{do: caFollow}, swarm.KindCA, "root CA rotation", "follow the rotation until every node is on the new root (with --wait)", "a rotation is recorded when it completes (or fails to)")
	return cp
}
