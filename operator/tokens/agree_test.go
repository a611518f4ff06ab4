package tokens

import (
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestTokensAgreeWithReport walks the join-token policy's boundaries and holds the controller's decision
// (Decide, what Run acts on) and the report's verdict (tokens.age evidence) side by side: the report
// fails a token exactly when the controller would rotate it.
func TestTokensAgreeWithReport(t *testing.T) {
	const maxAge = 720 * time.Hour
	now := tokT0
	worker := sensitive.New("SWMTKN-1-digest-workersecret")
	cl := swarm.Cluster{ID: "swarm1", WorkerToken: worker, ManagerToken: sensitive.New("SWMTKN-1-digest-managersecret")}
	entry := func(age time.Duration, fp string) []swarm.Entry {
		return []swarm.Entry{{Kind: swarm.KindJoinTokenWorker, At: now.Add(-age), Result: swarm.ResultOK,
			Details: map[string]string{operator.DetailFingerprint: fp}}}
	}
	for _, tc := range []struct {
		name    string
		entries []swarm.Entry
		adopt   bool
		wantDue bool
	}{
		{"one second before max age", entry(maxAge-time.Second, worker.Fingerprint()), true, false},
		{"exactly at max age", entry(maxAge, worker.Fingerprint()), true, true},
		{"one second past max age", entry(maxAge+time.Second, worker.Fingerprint()), true, true},
		{"missing ledger entry, adopt", nil, true, false},
		{"missing ledger entry, no adopt", nil, false, true},
		{"changed outside the ledger, past max age", entry(maxAge+time.Hour, "another-token"), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.TokensConfig{Adopt: tc.adopt, Worker: config.MaxAge{MaxAge: config.Duration(maxAge)}, Manager: config.MaxAge{MaxAge: config.Duration(maxAge)}}
			var d TokenDecision
			for _, x := range Decide(Observation{Cluster: cl, Entries: tc.entries}, cfg, now) {
				if x.Kind == swarm.TokenWorker {
					d = x
				}
			}
			var verdict report.CheckStatus
			for _, ev := range Section(cfg, cl, tc.entries, nil, now).Checks[0].Evidence {
				if ev.Subject == "worker join token" {
					verdict = ev.Status
				}
			}
			if d.Due != tc.wantDue {
				t.Errorf("Decide() worker due = %v; want %v (%s)", d.Due, tc.wantDue, d.Why)
			}
			if (verdict == report.StatusFail) != d.Due {
				t.Errorf("report verdict %s, controller due %v; they must agree", verdict, d.Due)
			}
		})
	}
}
