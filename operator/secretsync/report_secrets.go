package secretsync

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// CheckSecretsSync is the report's secret-sync check.
const CheckSecretsSync = "secrets.sync"

// SecretsDomainFrom judges the Vault-to-Docker secret sync for the report, per mapping, from a dry-run pass
// (what a sync would do now: a version to create or services to repoint means the swarm lags Vault) and
// the ledger (kind secret: the last sync and whether it failed). Values never appear: the pass carries
// names, versions and HMAC-derived names only.
func SecretsDomainFrom(results []Result, entries []swarm.Entry, ledgerErr error, now time.Time) report.Section {
	ch := report.Check{ID: CheckSecretsSync, Title: "Synced secrets are fresh and without failures",
		Remediation: "`swarmguard secrets plan` shows what a sync would do; `swarmguard rotate secret NAME` syncs now. " +
			"A failed rollout keeps the services on the old version: fix the service (its logs, its update config) and sync again."}
	if len(results) == 0 {
		ch.Status, ch.Summary = report.StatusInfo, "no secret mappings are configured (secrets.mappings)"
		ch.Evidence = []report.Evidence{{Subject: "secrets.mappings", Note: "none"}}
		return report.Section{Checks: []report.Check{ch}}
	}
	ch.Status = report.StatusPass
	var stale, failed, errored []string
	sort.SliceStable(results, func(i, j int) bool { return results[i].Mapping < results[j].Mapping })
	for _, r := range results {
		e := report.Evidence{Subject: "mapping " + r.Mapping, Status: report.StatusPass, Facts: map[string]string{}}
		if r.VaultVersion > 0 {
			e.Facts["vault_version"] = strconv.Itoa(r.VaultVersion)
		}
		if p := r.Plan; p != nil {
			e.Facts["source"] = p.Source
			e.Facts["wanted"] = p.Wanted.Name
			if p.Current != nil {
				e.Facts["current"] = p.Current.Name
				e.Facts["current_vault_version"] = strconv.Itoa(p.Current.VaultVersion)
			} else {
				e.Facts["current"] = "none"
			}
			e.Facts["dependents"] = report.ListOrNone(p.Dependents)
		}
		last, lastOK := lastSecretEntry(entries, r.Mapping, "")
		okEntry, hasOK := lastSecretEntry(entries, r.Mapping, swarm.ResultOK)
		if hasOK {
			e.Facts["last_sync"] = okEntry.At.UTC().Format(time.RFC3339)
			e.Facts["last_sync_age"] = report.RoundAge(now.Sub(okEntry.At))
		}
		switch {
		case r.Outcome == OutcomeError || r.Err != nil && r.Outcome != OutcomeFailed:
			e.Status, e.Note = report.StatusError, "could not be read: "+firstNonEmpty(r.Error, errText(r.Err))
			errored = append(errored, r.Mapping)
		case lastOK && last.Result == swarm.ResultFailed:
			e.Status = report.StatusFail
			e.Facts["failed_at"] = last.At.UTC().Format(time.RFC3339)
			e.Note = "the last sync failed"
			if msg := last.Details["error"]; msg != "" {
				e.Note += ": " + msg
			}
			if s := last.Details["failed_service"]; s != "" {
				e.Facts["failed_service"] = s
			}
			failed = append(failed, r.Mapping)
		case r.Plan != nil && (r.Plan.Create != nil || len(r.Plan.Updates) > 0):
			e.Status = report.StatusWarn
			e.Note = "the swarm lags Vault: a sync would "
			if r.Plan.Create != nil {
				e.Note += "create " + r.Plan.Create.Name
			}
			if len(r.Plan.Updates) > 0 {
				if r.Plan.Create != nil {
					e.Note += " and "
				}
				e.Note += fmt.Sprintf("repoint %d service(s)", len(r.Plan.Updates))
			}
			stale = append(stale, r.Mapping)
		default:
			e.Note = "in sync with Vault"
		}
		ch.Evidence = append(ch.Evidence, e)
	}
	var parts []string
	switch {
	case len(errored) > 0:
		ch.Status = report.StatusError
		parts = append(parts, "could not be evaluated for "+strings.Join(errored, ", "))
	case len(failed) > 0:
		ch.Status = report.StatusFail
	case len(stale) > 0:
		ch.Status = report.StatusWarn
	}
	if len(failed) > 0 {
		parts = append(parts, "last sync failed: "+strings.Join(failed, ", "))
	}
	if len(stale) > 0 {
		parts = append(parts, "behind Vault: "+strings.Join(stale, ", "))
	}
	if len(parts) == 0 {
		parts = append(parts, fmt.Sprintf("%d mapping(s), each in sync with Vault", len(results)))
	}
	ch.Summary = strings.Join(parts, "; ")
	if ledgerErr != nil {
		ch.Evidence = append(ch.Evidence, report.Evidence{Subject: "ledger", Status: report.StatusWarn, Note: "unreadable, last syncs unknown: " + ledgerErr.Error()})
	}
	return report.Section{Checks: []report.Check{ch}}
}

// lastSecretEntry is the newest ledger entry of a mapping (of a result, when given).
func lastSecretEntry(entries []swarm.Entry, mapping, result string) (swarm.Entry, bool) {
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Kind != swarm.KindSecret || e.Details["secret"] != mapping {
			continue
		}
		if result == "" || e.Result == result {
			return e, true
		}
	}
	return swarm.Entry{}, false
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if x != "" {
			return x
		}
	}
	return ""
}

// Section is the secret sync's part of the compliance report (secrets.sync): from a dry-run pass's results
// (passErr: the pass could not run, Vault or the engine unreachable), the ledger and now.
func Section(results []Result, passErr error, entries []swarm.Entry, ledgerErr error, now time.Time) report.Section {
	if passErr != nil {
		ch := report.Check{ID: CheckSecretsSync, Title: "Synced secrets are fresh and without failures"}
		return report.Section{Checks: []report.Check{ch.Errored(passErr)}, Err: passErr}
	}
	return SecretsDomainFrom(results, entries, ledgerErr, now)
}

// SectionGauges are the secret sync section's check statuses for each mapping's latest result and the
// ledger: what the sync refreshes after a pass.
func SectionGauges(results []Result, entries []swarm.Entry, ledgerErr error, now time.Time) []report.Gauge {
	return report.CheckGauges(Section(results, nil, entries, ledgerErr, now).Checks)
}
