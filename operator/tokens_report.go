package operator

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// Report check IDs of the tokens and autolock domains.
const (
	CheckTokensAge      = "tokens.age"
	CheckAutolockEscrow = "autolock.escrow"
)

func tokAge(d time.Duration) string {
	if d >= time.Hour {
		return config.Duration(d.Round(time.Hour)).String()
	}
	return config.Duration(d.Round(time.Second)).String()
}

// TokensDomain is the join tokens' contribution to the compliance report (check tokens.age), from the
// swarm, the ledger and now. ledgerErr is the error reading the ledger, if any.
func TokensDomain(cfg config.TokensConfig, cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, now time.Time) DomainResult {
	ch := report.Check{ID: CheckTokensAge, Title: "Join tokens rotated within their max ages",
		Remediation: "`swarmguard rotate join-token worker|manager|all --reason ...`; the controller rotates each token when " +
			"it is older than tokens.worker.max_age / tokens.manager.max_age."}
	if ledgerErr != nil {
		ch.Status, ch.Summary = report.StatusError, "could not be evaluated: reading the ledger: "+ledgerErr.Error()
		ch.Evidence = []report.Evidence{{Subject: "read error", Status: report.StatusError, Note: ledgerErr.Error()}}
		return DomainResult{Checks: []report.Check{ch}, Err: ledgerErr}
	}
	ch.Status = report.StatusPass
	var parts []string
	for _, f := range TokenFindings(cfg, cl, entries, now) {
		ev := report.Evidence{Subject: f.Kind + " join token", Status: report.StatusPass, Facts: map[string]string{
			"fingerprint": f.Fingerprint, "max_age": f.MaxAge.String(),
		}}
		switch {
		case f.Due && !f.Tracked:
			ev.Status, ev.Note = report.StatusFail, "never rotated by swarmguard and tokens.adopt is false: due now"
		case f.Due:
			ev.Status = report.StatusFail
		case !f.Tracked:
			ev.Status, ev.Note = report.StatusWarn, "not seen by the controller yet: its age is unknown"
		}
		if f.Tracked {
			ev.Facts["age"], ev.Facts["since"] = tokAge(f.Age.D()), f.Since.UTC().Format(time.RFC3339)
			ev.Facts["adopted"] = strconv.FormatBool(f.Adopted)
			if f.Adopted {
				ev.Note = "first seen by swarmguard then; the token is at least this old"
			}
			if f.ChangedOutside {
				ev.Note = strings.TrimPrefix(ev.Note+"; ", "; ") + "changed since the ledger's entry (rotated outside swarmguard, or by a root CA rotation)"
			}
		}
		ev.Facts["status"] = string(ev.Status)
		ch.Evidence = append(ch.Evidence, ev)
		ch.Status = report.Worse(ch.Status, ev.Status)
		switch ev.Status {
		case report.StatusFail:
			if f.Tracked {
				parts = append(parts, fmt.Sprintf("the %s token is %s old, over its max age %s", f.Kind, tokAge(f.Age.D()), f.MaxAge))
			} else {
				parts = append(parts, fmt.Sprintf("the %s token was never rotated by swarmguard", f.Kind))
			}
		case report.StatusWarn:
			parts = append(parts, fmt.Sprintf("the %s token's age is unknown", f.Kind))
		default:
			parts = append(parts, fmt.Sprintf("%s %s of %s", f.Kind, tokAge(f.Age.D()), f.MaxAge))
		}
	}
	ch.Summary = strings.Join(parts, "; ")
	return DomainResult{Checks: []report.Check{ch}}
}

// AutolockEscrowCheck is the escrow check of the compliance report (autolock.escrow): Vault holds the
// swarm's current unlock key, intact, under this swarm's ID.
func AutolockEscrowCheck(f AutolockFinding) report.Check {
	ch := report.Check{ID: CheckAutolockEscrow, Title: "The unlock key is escrowed to Vault and is the swarm's current key",
		Remediation: "`swarmguard escrow unlock-key` writes the current key to " + f.EscrowPath + " (check-and-set, read back); " +
			"under autolock.mode: enforce the controller does it on its own."}
	facts := map[string]string{"escrow_path": f.EscrowPath, "autolock": strconv.FormatBool(f.Enabled)}
	if !f.LastEscrow.IsZero() {
		facts["last_escrow"] = f.LastEscrow.UTC().Format(time.RFC3339)
	}
	if f.KeyFingerprint != "" {
		facts["key_fingerprint"] = f.KeyFingerprint
	}
	ch.Evidence = []report.Evidence{{Subject: "unlock key escrow", Facts: facts}}
	switch {
	case !f.Enabled:
		ch.Status, ch.Summary = report.StatusInfo, "autolock is off: there is no unlock key to escrow"
	case f.EscrowError != "":
		ch.Status, ch.Summary = report.StatusError, "could not be evaluated: reading the escrow: "+f.EscrowError
	case !f.EscrowChecked:
		ch.Status, ch.Summary = report.StatusWarn, "no vault is configured: the unlock key is not escrowed"
	case !f.EscrowFound:
		ch.Status, ch.Summary = report.StatusFail, "vault holds no unlock key at "+f.EscrowPath
	case !f.EscrowMatches:
		ch.Status, ch.Summary = report.StatusFail, "vault holds a key at "+f.EscrowPath+" that is not the swarm's current one (or of another swarm): after a full restart it would not unlock the managers"
	default:
		ch.Status, ch.Summary = report.StatusPass, "vault holds the current unlock key at "+f.EscrowPath
	}
	ch.Evidence[0].Status = ch.Status
	return ch
}

// Domain is autolock's contribution to the compliance report: the escrow check (autolock.enabled and
// autolock.key-age are the report's own).
func (a *Autolock) Domain(ctx context.Context, now time.Time) DomainResult {
	f, err := a.Findings(ctx, now)
	if err != nil {
		ch := report.Check{ID: CheckAutolockEscrow, Title: "The unlock key is escrowed to Vault and is the swarm's current key",
			Status: report.StatusError, Summary: "could not be evaluated: " + err.Error(),
			Evidence: []report.Evidence{{Subject: "read error", Status: report.StatusError, Note: err.Error()}}}
		return DomainResult{Checks: []report.Check{ch}, Err: err}
	}
	return DomainResult{Checks: []report.Check{AutolockEscrowCheck(f)}}
}
