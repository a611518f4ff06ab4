package certs

import (
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// checkNodeCertExpiry is CIS 7.7: the cluster's node certificate validity within the policy.
func checkNodeCertExpiry(cl swarm.Cluster, p config.PKIConfig) report.Check {
	c := report.Check{ID: "pki.node-cert-expiry", CIS: "7.7", Title: "Node certificates are rotated within the policy's validity",
		Remediation: "`docker swarm update --cert-expiry <duration>` (or pki.mode: enforce with pki.node_cert_expiry); " +
			"nodes renew between 50% and 80% of the validity, so a shorter expiry rotates them more often."}
	want := p.NodeCertExpiry.D()
	got := cl.NodeCertExpiry
	c.Evidence = []report.Evidence{{Subject: "swarm", Facts: map[string]string{"node_cert_expiry": report.DurationOrNone(got), "pki.node_cert_expiry": report.DurationOrNone(want)}}}
	switch {
	case got <= 0:
		c.Status, c.Summary = report.StatusWarn, "the cluster reports no node certificate expiry"
	case want <= 0:
		c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("node certificates are valid for %s; no policy (pki.node_cert_expiry) to compare with", report.DurationOrNone(got))
	case got > want:
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("node certificates are valid for %s, longer than the policy's %s", report.DurationOrNone(got), report.DurationOrNone(want))
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("node certificates are valid for %s, within the policy's %s", report.DurationOrNone(got), report.DurationOrNone(want))
	}
	return c
}

// CAObservation is what the CA policy reads: the root CA, whether a rotation is in progress, and the
// ledger (its newest successful CA entry moves the clock past the root's NotBefore). LedgerErr says the
// ledger could not be read; the decision then counts from NotBefore alone and says so.
type CAObservation struct {
	Root       *x509.Certificate
	InProgress bool
	Entries    []swarm.Entry
	LedgerErr  error
}

// CADecision is what the CA policy says of the root CA.
type CADecision struct {
	// Since is when the root's clock started: the later of its NotBefore and the newest CA entry of the
	// ledger; SinceSource names which.
	Since       time.Time
	SinceSource string
	// LedgerRotatedAt is the newest CA entry of the ledger (zero when none, or the ledger is unreadable).
	LedgerRotatedAt time.Time
	Age             time.Duration
	MaxAge          time.Duration // 0: no max age
	// Overdue: the root is at or over its max age.
	Overdue bool
	// Rotate: start a rotation now (overdue and none in progress: starting one again would restart it).
	Rotate bool
	Why    string
}

// DecideCA is the CA age policy, one pure function for the controller's scheduled rotation and the
// report's pki.ca-age: the age counts from the later of the root's NotBefore and the ledger's newest CA
// rotation, and the root is due at its max age (>=), as the other credentials are.
func DecideCA(o CAObservation, maxAge time.Duration, now time.Time) CADecision {
	d := CADecision{Since: o.Root.NotBefore, SinceSource: "CA certificate NotBefore", MaxAge: maxAge}
	if o.LedgerErr == nil {
		// The ledger's newest rotation dates the root unless it names another root as the one it ended on
		// (a root handed in by hand since, with an old NotBefore, is as old as its NotBefore says).
		if e, ok := swarm.Latest(o.Entries, swarm.KindCA, swarm.ResultOK); ok {
			d.LedgerRotatedAt = e.At
			serial := e.Details[DetailRootSerial]
			switch {
			case serial != "" && o.Root != nil && serial != pki.SerialHex(o.Root):
				d.SinceSource = "CA certificate NotBefore (the ledger's newest rotation ended on root serial " + serial + ", not this one)"
			case e.At.After(d.Since):
				d.Since, d.SinceSource = e.At, "ledger kind ca"
			}
		}
	}
	d.Age = max(now.Sub(d.Since), 0)
	d.Overdue = maxAge > 0 && d.Age >= maxAge
	d.Rotate = d.Overdue && !o.InProgress
	switch {
	case maxAge <= 0:
		d.Why = "no pki.ca.max_age: the root CA is not rotated by schedule"
	case d.Rotate:
		d.Why = fmt.Sprintf("root CA %s old, at or over pki.ca.max_age %s", d.Age.Truncate(time.Hour), maxAge)
	case d.Overdue:
		d.Why = "root CA over pki.ca.max_age, but a rotation is in progress"
	default:
		d.Why = fmt.Sprintf("root CA not due: %s of %s left", (maxAge - d.Age).Truncate(time.Second), maxAge)
	}
	return d
}

// checkCAAge is CIS 7.8: the root CA's age, read from DecideCA, the decision the controller acts on.
func checkCAAge(cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, p config.CAConfig, now time.Time) report.Check {
	c := report.Check{ID: "pki.ca-age", CIS: "7.8", Title: "The root CA is rotated within its max age",
		Remediation: "`swarmguard rotate ca --reason ...` (or `docker swarm ca --rotate`), and set pki.ca.max_age so the " +
			"controller rotates it on schedule."}
	maxAge := p.MaxAge.D()
	ca, err := pki.ParseCertificate([]byte(cl.TrustRootPEM))
	if err != nil {
		return c.Errored(fmt.Errorf("reading the swarm's root CA: %w", err))
	}
	d := DecideCA(CAObservation{Root: ca, InProgress: cl.RootRotationInProgress, Entries: entries, LedgerErr: ledgerErr}, maxAge, now)
	facts := map[string]string{"not_before": ca.NotBefore.UTC().Format(time.RFC3339), "not_after": ca.NotAfter.UTC().Format(time.RFC3339),
		"serial": ca.SerialNumber.Text(16), "pki.ca.max_age": report.DurationOrNone(maxAge),
		"root_rotation_in_progress": strconv.FormatBool(cl.RootRotationInProgress)}
	if !d.LedgerRotatedAt.IsZero() {
		facts["ledger_rotated_at"] = d.LedgerRotatedAt.UTC().Format(time.RFC3339)
	}
	if ledgerErr != nil {
		facts["ledger"] = "unreadable: " + ledgerErr.Error()
	}
	facts["age"], facts["age_from"] = report.RoundAge(d.Age), d.SinceSource
	c.Evidence = []report.Evidence{{Subject: "root CA " + ca.Subject.CommonName, Facts: facts}}
	switch {
	case maxAge <= 0:
		c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("root CA is %s old; no max age (pki.ca.max_age) is configured", report.RoundAge(d.Age))
	case d.Overdue:
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("root CA is %s old, at or over its max age %s", report.RoundAge(d.Age), report.DurationOrNone(maxAge))
		if cl.RootRotationInProgress {
			c.Evidence[0].Note = "a rotation is in progress: the controller follows it rather than starting another"
		}
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("root CA is %s old, within %s", report.RoundAge(d.Age), report.DurationOrNone(maxAge))
	}
	return c
}

// checkCAKeyStrength checks the root CA's public key with pki's own rule (pki.KeyInfo, pki.WeakKey): weaker
// than RSA 2048 or ECDSA P-256 fails, and so does an algorithm pki does not know (what cannot be judged
// cannot be vouched for).
func checkCAKeyStrength(cl swarm.Cluster) report.Check {
	c := report.Check{ID: "pki.ca-key-strength", Title: "The root CA key is strong enough",
		Remediation: "Rotate to a CA with an ECDSA P-256 (or larger) or RSA 2048-bit (or larger) key: `docker swarm ca --rotate` " +
			"makes a P-256 key; a CA handed in with --ca-cert/--ca-key must meet the same bar."}
	ca, err := pki.ParseCertificate([]byte(cl.TrustRootPEM))
	if err != nil {
		return c.Errored(fmt.Errorf("reading the swarm's root CA: %w", err))
	}
	return keyStrengthVerdict(c, ca)
}

func keyStrengthVerdict(c report.Check, ca *x509.Certificate) report.Check {
	algo, bits := pki.KeyInfo(ca)
	c.Evidence = []report.Evidence{{Subject: "root CA " + ca.Subject.CommonName, Facts: map[string]string{
		"key_algorithm": algo, "key_bits": strconv.Itoa(bits), "signature_algorithm": ca.SignatureAlgorithm.String()}}}
	if weak, why := pki.WeakKey(algo, bits); weak {
		c.Status, c.Summary = report.StatusFail, "the key is too weak: "+why
	} else {
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%s %d-bit key", algo, bits)
	}
	return c
}
