package operator

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmguard/swarmguard/swarm"
)

func TestLedgerMetricsSuccessIgnoresFailedAndAdopted(t *testing.T) {
	ok := time.Unix(1000, 0)
	entries := []swarm.Entry{
		{Kind: swarm.KindJoinTokenWorker, At: ok, Result: swarm.ResultOK},
		{Kind: swarm.KindJoinTokenWorker, At: ok.Add(time.Hour), Result: swarm.ResultFailed},
		{Kind: swarm.KindUnlockKey, At: ok, Result: swarm.ResultAdopted},
	}
	m := NewMetrics()
	ledgerMetrics(m, entries)
	if got := testutil.ToFloat64(m.lastAction.WithLabelValues(swarm.KindJoinTokenWorker)); got != 4600 {
		t.Errorf("last attempt of %s = %v; want 4600 (the failed entry)", swarm.KindJoinTokenWorker, got)
	}
	if got := testutil.ToFloat64(m.lastSuccess.WithLabelValues(swarm.KindJoinTokenWorker)); got != 1000 {
		t.Errorf("last success of %s = %v; want 1000 (the ok entry, not the failed one)", swarm.KindJoinTokenWorker, got)
	}
	want := `
# HELP swarmguard_last_success_timestamp_seconds Unix time of the last successful action (result ok) recorded in the ledger, by ledger kind.
# TYPE swarmguard_last_success_timestamp_seconds gauge
swarmguard_last_success_timestamp_seconds{kind="join-token-worker"} 1000
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), MetricLastSuccess); err != nil {
		t.Errorf("an adopted unlock key must not count as a success: %v", err)
	}
}

func TestCredentialAges(t *testing.T) {
	c := NewCredentialAges()
	c.Set(swarm.KindJoinTokenWorker, CredentialAge{Known: true, Age: time.Hour, MaxAge: 720 * time.Hour})
	c.Set(swarm.KindCA, CredentialAge{MaxAge: 0}) // clock unknown: max age only
	var nilAges *CredentialAges
	nilAges.Set(swarm.KindCA, CredentialAge{Known: true}) // the CLI's domains have none: no panic
	want := `
# HELP swarmguard_credential_age_seconds Age of a credential by ledger kind (join-token-worker, join-token-manager, unlock-key, ca): since its last rotation or adoption, or, for the root CA, its NotBefore.
# TYPE swarmguard_credential_age_seconds gauge
swarmguard_credential_age_seconds{kind="join-token-worker"} 3600
# HELP swarmguard_credential_max_age_seconds The policy's max age of a credential by ledger kind; 0 when it is not rotated by schedule.
# TYPE swarmguard_credential_max_age_seconds gauge
swarmguard_credential_max_age_seconds{kind="ca"} 0
swarmguard_credential_max_age_seconds{kind="join-token-worker"} 2.592e+06
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
