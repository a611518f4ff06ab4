package operator

import (
	"context"
	"maps"
	"time"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/swarm"
)

// Ledger detail keys of the credential entries. They hold fingerprints (hex SHA-256), never values.
const (
	DetailFingerprint    = "fingerprint" // the credential in force after the entry
	DetailOldFingerprint = "old_fingerprint"
	DetailNewFingerprint = "new_fingerprint"
	// DetailSecretFingerprint is the fingerprint of a join token's secret part alone (its last '-' field).
	// A root CA rotation changes a token's CA-digest part but not its secret; comparing this one tells a
	// rotation of the secret from a new CA digest.
	DetailSecretFingerprint = "secret_fingerprint"
	DetailSwarmID           = "swarm_id"
	DetailError             = "error"
	DetailVaultPath         = "vault_path"
	DetailVaultVersion      = "vault_version"
	DetailAction            = "action"
	// DetailLedgerError is set on an audit record whose ledger write failed (the action still happened).
	DetailLedgerError = "ledger_error"
)

// LedgerRecordTimeout bounds recording a rotation that already happened, after its pass's context ended.
const LedgerRecordTimeout = 30 * time.Second

// CredentialClock is what the ledger says of a credential's age.
type CredentialClock struct {
	// Tracked is true when the ledger has an entry that started the clock (a rotation or an adoption).
	Tracked bool
	// Adopted is true when the clock was started by adoption, not by a rotation of ours.
	Adopted bool
	// Since is when the clock started; zero when not tracked.
	Since time.Time
	// Age is now - Since; zero when not tracked.
	Age time.Duration
	// Fingerprint is the credential's fingerprint the entry recorded.
	Fingerprint string
	// SecretFingerprint is the fingerprint of a join token's secret part the entry recorded (empty for
	// other credentials and for entries written before it was recorded).
	SecretFingerprint string
}

// ReadClock reads the clock of a ledger kind: its newest successful rotation or adoption.
func ReadClock(entries []swarm.Entry, kind string, now time.Time) CredentialClock {
	e, ok := swarm.Latest(entries, kind, swarm.ResultOK, swarm.ResultAdopted)
	if !ok {
		return CredentialClock{}
	}
	fp := e.Details[DetailFingerprint]
	if fp == "" {
		fp = e.Details[DetailNewFingerprint]
	}
	return CredentialClock{Tracked: true, Adopted: e.Result == swarm.ResultAdopted, Since: e.At, Age: max(now.Sub(e.At), 0), Fingerprint: fp,
		SecretFingerprint: e.Details[DetailSecretFingerprint]}
}

// maxErrDetail bounds an error text kept in a ledger label.
const maxErrDetail = 200

// ShortErr is an error's text, bounded, for a ledger detail.
func ShortErr(err error) string {
	s := err.Error()
	if len(s) > maxErrDetail {
		s = s[:maxErrDetail] + "…"
	}
	return s
}

// Record writes a pass's ledger entries in one Append and audits each of them (log and webhooks) whether or
// not the write succeeded: a domain's act step collects what it did and records it once, at the end of its
// action, and the audit record is the trail, the ledger only the bounded state. A failed write is named in
// each record's details (ledger_error) and returned. The write goes on even when the pass's context ended
// meanwhile (the lease lapsed during a stall): a record of what was done is always right, and a lost one would
// make the next holder act again for the same due time. Nothing is written for no entries.
//
// A domain that does many actions in one pass (the secret sync) audits each with audit.Action as it happens
// and writes them all with RecordAudited at the end instead.
func Record(ctx context.Context, ledger LedgerStore, entries ...swarm.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	err := RecordAudited(ctx, ledger, entries...)
	d := audit.ActionDuration(ctx)
	for _, e := range entries {
		if err != nil {
			e.Details = maps.Clone(e.Details)
			if e.Details == nil {
				e.Details = map[string]string{}
			}
			e.Details[DetailLedgerError] = ShortErr(err)
		}
		audit.Action(ctx, e, d)
	}
	return err
}

// RecordAudited writes entries already audited one by one (audit.Action) in one Append, with Record's
// context rules. Nothing is written for no entries.
func RecordAudited(ctx context.Context, ledger LedgerStore, entries ...swarm.Entry) error {
	if len(entries) == 0 || ledger == nil {
		return nil
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), LedgerRecordTimeout)
	defer cancel()
	_, err := ledger.Append(lctx, entries...)
	return err
}
