package tokens

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestTokensSection(t *testing.T) {
	eng := newTokEngine()
	cl, _ := eng.Cluster(t.Context())
	wfp, mfp := cl.WorkerToken.Fingerprint(), cl.ManagerToken.Fingerprint()
	cases := []struct {
		name       string
		entries    []swarm.Entry
		adopt      bool
		ledgerErr  error
		want       report.CheckStatus
		wantInText string
	}{
		{name: "both fresh", adopt: true, entries: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-time.Hour), wfp),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultAdopted, tokT0.Add(-time.Hour), mfp)}, want: report.StatusPass, wantInText: "worker 1h of 720h"},
		{name: "worker too old", adopt: true, entries: []swarm.Entry{
			domaintest.Entry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-800*time.Hour), wfp),
			domaintest.Entry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), mfp)}, want: report.StatusFail, wantInText: "over its max age 720h"},
		{name: "never seen, adopt", adopt: true, want: report.StatusWarn, wantInText: "age is unknown"},
		{name: "never seen, no adopt", adopt: false, want: report.StatusFail, wantInText: "never rotated by swarmguard"},
		{name: "ledger unreadable", ledgerErr: errors.New("boom"), want: report.StatusError, wantInText: "reading the ledger"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tokConfig()
			cfg.Adopt = tc.adopt
			d := Section(cfg, cl, tc.entries, tc.ledgerErr, tokT0)
			if len(d.Checks) != 1 || d.Checks[0].ID != CheckTokensAge {
				t.Fatalf("Section() = %+v; want one tokens.age check", d.Checks)
			}
			ch := d.Checks[0]
			if ch.Status != tc.want || !strings.Contains(ch.Summary, tc.wantInText) {
				t.Errorf("Section() = %s %q; want %s containing %q", ch.Status, ch.Summary, tc.want, tc.wantInText)
			}
			domaintest.NoSecret(t, []string{ch.Summary, ch.Remediation}, "secretpart")
		})
	}
}
