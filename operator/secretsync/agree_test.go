package secretsync

import (
	"errors"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestSecretSyncAgreeWithReport holds the sync pass's own outcome for a mapping (what the controller
// would do: nothing, create and roll out, or fail) and the report's secrets.sync verdict side by side,
// with and without a ledger entry and around a failed rollout.
func TestSecretSyncAgreeWithReport(t *testing.T) {
	v1 := Version{Name: "db-11111111", VaultVersion: 1}
	v2 := Version{Name: "db-22222222", VaultVersion: 2}
	fresh := Result{Mapping: "db", Outcome: OutcomeUnchanged, VaultVersion: 2,
		Plan: &Plan{Mapping: "db", Current: &v2, Wanted: v2}}
	behind := Result{Mapping: "db", Outcome: OutcomePlanned, VaultVersion: 2,
		Plan: &Plan{Mapping: "db", Current: &v1, Wanted: v2, Create: &v2}}
	broken := Result{Mapping: "db", Outcome: OutcomeError, Err: errors.New("vault: permission denied"), Error: "vault: permission denied"}
	ok := swarm.Entry{Kind: swarm.KindSecret, At: fixedNow.Add(-time.Hour), Result: swarm.ResultOK, Details: map[string]string{"secret": "db"}}
	failed := swarm.Entry{Kind: swarm.KindSecret, At: fixedNow.Add(-time.Minute), Result: swarm.ResultFailed, Details: map[string]string{"secret": "db", "error": "rolled back"}}
	for _, tc := range []struct {
		name    string
		result  Result
		entries []swarm.Entry
		want    report.CheckStatus
	}{
		{"in sync", fresh, []swarm.Entry{ok}, report.StatusPass},
		{"in sync, missing ledger entry", fresh, nil, report.StatusPass},
		{"behind vault: the controller would sync", behind, []swarm.Entry{ok}, report.StatusWarn},
		{"behind vault after a failed rollout", behind, []swarm.Entry{ok, failed}, report.StatusFail},
		{"vault unreadable: the controller does nothing", broken, nil, report.StatusError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verdict := Section([]Result{tc.result}, nil, tc.entries, nil, fixedNow).Checks[0].Status
			acts := tc.result.Outcome == OutcomePlanned // the pass would create and roll out
			if verdict != tc.want {
				t.Errorf("report %s; want %s", verdict, tc.want)
			}
			if acts && verdict == report.StatusPass || !acts && tc.result.Outcome == OutcomeUnchanged && verdict != report.StatusPass && len(tc.entries) < 2 {
				t.Errorf("the controller acts %v but the report says %s: a mapping the pass would change is never pass", acts, verdict)
			}
		})
	}
}
