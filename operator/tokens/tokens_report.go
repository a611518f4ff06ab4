package tokens

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// CheckTokensAge is the report check ID of the join tokens' ages.
const CheckTokensAge = "tokens.age"

func tokAge(d time.Duration) string {
	if d >= time.Hour {
		return config.Duration(d.Round(time.Hour)).String()
	}
	return config.Duration(d.Round(time.Second)).String()
}

// Section is the join tokens' contribution to the compliance report (check tokens.age and the age
// chart), from the swarm, the ledger and now, through Decide. ledgerErr is the error reading the ledger,
// if any.
func Section(cfg config.TokensConfig, cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, now time.Time) report.Section {
	ch := report.Check{ID: CheckTokensAge, Title: "Join tokens rotated within their max ages",
		Remediation: "`swarmguard rotate join-token worker|manager|all --reason ...`; the controller rotates each token when " +
			"it is older than tokens.worker.max_age / tokens.manager.max_age."}
	if ledgerErr != nil {
		ch.Status, ch.Summary = report.StatusError, "could not be evaluated: reading the ledger: "+ledgerErr.Error()
		ch.Evidence = []report.Evidence{{Subject: "read error", Status: report.StatusError, Note: ledgerErr.Error()}}
		return report.Section{Checks: []report.Check{ch}, Err: ledgerErr, Ages: []report.AgeBar{
			{Name: "worker join token", MaxAge: cfg.Worker.MaxAge.D(), Note: "ledger unreadable", Status: report.StatusInfo},
			{Name: "manager join token", MaxAge: cfg.Manager.MaxAge.D(), Note: "ledger unreadable", Status: report.StatusInfo},
		}}
	}
	var ages []report.AgeBar
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
		bar := report.AgeBar{Name: f.Kind + " join token", Age: f.Age.D(), MaxAge: f.MaxAge.D(), Known: f.Tracked, Status: report.AgeStatus(f.Tracked, f.Due, f.MaxAge.D())}
		if !f.Tracked {
			bar.Age, bar.Note = 0, "no ledger entry"
		}
		ages = append(ages, bar)
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
	return report.Section{Checks: []report.Check{ch}, Ages: ages}
}

// SectionGauges are the join-token section's check statuses for one observation (the swarm object and the
// ledger as a tokens pass read them): what that pass refreshes.
func SectionGauges(cfg config.TokensConfig, cl swarm.Cluster, entries []swarm.Entry, now time.Time) []report.Gauge {
	return report.CheckGauges(Section(cfg, cl, entries, nil, now).Checks)
}
