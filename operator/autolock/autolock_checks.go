package autolock

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// checkAutolock is CIS 7.5.
func checkAutolock(cl swarm.Cluster) report.Check {
	c := report.Check{ID: "autolock.enabled", CIS: "7.5", Title: "Managers run in autolock mode",
		Remediation: "`docker swarm update --autolock=true` (or autolock.mode: enforce), and keep the unlock key in a safe " +
			"place (swarmguard escrows it to Vault)."}
	c.Evidence = []report.Evidence{{Subject: "swarm", Facts: map[string]string{"autolock": strconv.FormatBool(cl.AutoLock)}}}
	if cl.AutoLock {
		c.Status, c.Summary = report.StatusPass, "autolock is on"
	} else {
		c.Status, c.Summary = report.StatusFail, "autolock is off: a stolen manager disk holds the Raft keys in clear"
	}
	return c
}

// checkUnlockKeyAge is CIS 7.6, derived from the controller's own decision (DecideCurrentKey, given the
// current key's fingerprint): the key fails exactly when the controller would rotate it (at its max age or
// beyond), and a key changed outside the ledger says that the controller adopts it, as the controller does.
func checkUnlockKeyAge(cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, keyFingerprint string, c config.AutolockConfig, now time.Time) report.Check {
	ch := report.Check{ID: "autolock.key-age", CIS: "7.6", Title: "The unlock key is rotated within its max age",
		Remediation: "`swarmguard rotate unlock-key --reason ...` (it escrows the new key and records the rotation), " +
			"and set autolock.rotate.max_age so the controller rotates it on schedule."}
	maxAge := c.Rotate.MaxAge.D()
	ch.Evidence = []report.Evidence{{Subject: "policy", Facts: map[string]string{"autolock.rotate.max_age": report.DurationOrNone(maxAge), "autolock": strconv.FormatBool(cl.AutoLock)}}}
	if !cl.AutoLock {
		ch.Status, ch.Summary = report.StatusFail, "autolock is off: there is no unlock key to rotate"
		return ch
	}
	if ledgerErr != nil {
		return ch.Errored(fmt.Errorf("reading the ledger: %w", ledgerErr))
	}
	return keyAgeVerdict(ch, entries, DecideCurrentKey(entries, maxAge, keyFingerprint, now))
}

// keyAgeVerdict is the report's reading of an unlock-key decision.
func keyAgeVerdict(ch report.Check, entries []swarm.Entry, d UnlockKeyDecision) report.Check {
	const what, kind = "unlock key", swarm.KindUnlockKey
	e, ok := swarm.Latest(entries, kind, swarm.ResultOK, swarm.ResultAdopted)
	if !ok || !d.Clock.Tracked {
		ch.Status, ch.Summary = report.StatusWarn, "no rotation of the "+what+" is recorded in the ledger: its age is unknown"
		ch.Evidence = append(ch.Evidence, report.Evidence{Subject: "ledger kind " + kind, Status: report.StatusWarn, Note: "no entry"})
		return ch
	}
	age := report.RoundAge(d.Clock.Age)
	facts := map[string]string{"at": e.At.UTC().Format(time.RFC3339), "result": e.Result, "actor": e.Actor, "age": age}
	note := ""
	if d.Clock.Adopted {
		note = "first seen by swarmguard then; the " + what + " is at least this old"
	}
	ch.Evidence = append(ch.Evidence, report.Evidence{Subject: "ledger kind " + kind, Facts: facts, Note: note})
	switch {
	case d.ChangedOutside:
		ch.Evidence[len(ch.Evidence)-1].Note = "the swarm's current key is not the one this entry recorded"
		ch.Status, ch.Summary = report.StatusWarn, what+" changed outside the ledger (by hand, or by a holder stopped before recording): "+
			"the controller adopts it and escrows it, not rotates it; its clock starts at the next pass"
	case d.MaxAge <= 0:
		ch.Status, ch.Summary = report.StatusWarn, fmt.Sprintf("%s age %s; no max age is configured", what, age)
	case d.Due:
		ch.Status, ch.Summary = report.StatusFail, fmt.Sprintf("%s is %s old, at or over its max age %s", what, age, report.DurationOrNone(d.MaxAge))
	default:
		ch.Status, ch.Summary = report.StatusPass, fmt.Sprintf("%s is %s old, within %s", what, age, report.DurationOrNone(d.MaxAge))
	}
	return ch
}

// CheckAutolockEscrow is the report check ID of the unlock-key escrow.
const CheckAutolockEscrow = "autolock.escrow"

// EscrowCheck is the escrow check of the compliance report (autolock.escrow): Vault holds the
// swarm's current unlock key, intact, under this swarm's ID.
func EscrowCheck(f Finding) report.Check {
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

// Observation is what the autolock domain reads beyond the swarm object and the ledger: the current
// unlock key's fingerprint (empty when autolock is off) and what Vault holds at the escrow path. Err is
// the error reading the key.
type Observation struct {
	KeyFingerprint string
	Escrow         EscrowObservation
	Err            error
}

// Observe reads the unlock key and the escrow for the report.
func (a *Autolock) Observe(ctx context.Context, cl swarm.Cluster) Observation {
	o := Observation{Escrow: EscrowObservation{Path: a.Config.EscrowPath(cl.ID)}}
	if !cl.AutoLock {
		return o
	}
	key, err := a.Engine.UnlockKey(ctx)
	if err != nil {
		o.Err = err
		return o
	}
	o.KeyFingerprint = key.Fingerprint()
	if a.Escrow != nil {
		o.Escrow = a.observeEscrow(ctx, cl.ID, key)
	}
	return o
}

// Section is autolock's part of the compliance report: CIS 7.5 (autolock on), 7.6 (the unlock key's age,
// from DecideCurrentKey, the controller's own decision), the escrow check and the key's age bar.
func Section(cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, o Observation, c config.AutolockConfig, now time.Time) report.Section {
	sec := report.Section{Checks: []report.Check{checkAutolock(cl), checkUnlockKeyAge(cl, entries, ledgerErr, o.KeyFingerprint, c, now)}}
	bar := report.AgeBar{Name: "unlock key", MaxAge: c.Rotate.MaxAge.D()}
	switch {
	case !cl.AutoLock:
		bar.Note = "autolock off"
	case ledgerErr != nil:
		bar.Note, bar.Status = "ledger unreadable", report.StatusInfo
	default:
		d := DecideCurrentKey(entries, c.Rotate.MaxAge.D(), o.KeyFingerprint, now)
		bar.Known, bar.Age, bar.Status = d.Clock.Tracked, d.Clock.Age, report.AgeStatus(d.Clock.Tracked, d.Due, d.MaxAge)
		if !d.Clock.Tracked {
			bar.Note = "no ledger entry"
		}
	}
	sec.Ages = []report.AgeBar{bar}
	escrow := report.Check{ID: CheckAutolockEscrow, Title: "The unlock key is escrowed to Vault and is the swarm's current key"}
	switch {
	case o.Err != nil:
		sec.Err = o.Err
		sec.Checks = append(sec.Checks, escrow.Errored(o.Err))
	case ledgerErr != nil:
		sec.Err = ledgerErr
		sec.Checks = append(sec.Checks, escrow.Errored(fmt.Errorf("reading the ledger: %w", ledgerErr)))
	default:
		sec.Checks = append(sec.Checks, EscrowCheck(Findings(c, cl, o.KeyFingerprint, entries, o.Escrow, now)))
	}
	return sec
}

// SectionGauges are autolock's section's check statuses for one observation (the swarm object, the ledger,
// the key's fingerprint and the escrow as an autolock pass read them): what that pass refreshes.
func SectionGauges(cl swarm.Cluster, entries []swarm.Entry, o Observation, c config.AutolockConfig, now time.Time) []report.Gauge {
	return report.CheckGauges(Section(cl, entries, nil, o, c, now).Checks)
}
