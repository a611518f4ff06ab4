package secretsync

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestSecretsDomainFrom(t *testing.T) {
	v1 := Version{Name: "db-11111111", VaultVersion: 1}
	v2 := Version{Name: "db-22222222", VaultVersion: 2}
	fresh := Result{Mapping: "db", Outcome: OutcomeUnchanged, VaultVersion: 2,
		Plan: &Plan{Mapping: "db", Source: "secret/apps/db#password", Current: &v2, Wanted: v2, Dependents: []string{"api"}}}
	stale := Result{Mapping: "db", Outcome: OutcomePlanned, VaultVersion: 2,
		Plan: &Plan{Mapping: "db", Current: &v1, Wanted: v2, Create: &v2, Updates: []ServiceUpdate{{ServiceName: "api"}}}}
	broken := Result{Mapping: "db", Outcome: OutcomeError, Err: errors.New("vault: permission denied"), Error: "vault: permission denied"}
	okEntry := swarm.Entry{Kind: swarm.KindSecret, At: fixedNow.Add(-time.Hour), Result: swarm.ResultOK, Details: map[string]string{"secret": "db"}}
	failEntry := swarm.Entry{Kind: swarm.KindSecret, At: fixedNow.Add(-time.Minute), Result: swarm.ResultFailed,
		Details: map[string]string{"secret": "db", "error": "rollout of service api ended rollback_completed", "failed_service": "api"}}
	for _, tc := range []struct {
		name    string
		results []Result
		entries []swarm.Entry
		want    report.CheckStatus
		text    string
	}{
		{"no mappings", nil, nil, report.StatusInfo, "no secret mappings"},
		{"in sync", []Result{fresh}, []swarm.Entry{okEntry}, report.StatusPass, "each in sync"},
		{"behind vault", []Result{stale}, []swarm.Entry{okEntry}, report.StatusWarn, "behind Vault: db"},
		{"last sync failed", []Result{stale}, []swarm.Entry{okEntry, failEntry}, report.StatusFail, "last sync failed: db"},
		{"failure then success", []Result{fresh}, []swarm.Entry{failEntry, okEntry}, report.StatusPass, "each in sync"},
		{"vault unreadable", []Result{broken}, nil, report.StatusError, "could not be evaluated for db"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := SecretsDomainFrom(tc.results, tc.entries, nil, fixedNow)
			if len(d.Checks) != 1 {
				t.Fatalf("SecretsDomainFrom gave %d checks", len(d.Checks))
			}
			c := d.Checks[0]
			if c.Status != tc.want || !strings.Contains(c.Summary, tc.text) {
				t.Errorf("SecretsDomainFrom = %s %q; want %s containing %q", c.Status, c.Summary, tc.want, tc.text)
			}
		})
	}
}

// fixedNow is the report time of the tests.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
