package operator

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestTokensDomain(t *testing.T) {
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
			tokEntry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-time.Hour), wfp),
			tokEntry(swarm.KindJoinTokenManager, swarm.ResultAdopted, tokT0.Add(-time.Hour), mfp)}, want: report.StatusPass, wantInText: "worker 1h of 720h"},
		{name: "worker too old", adopt: true, entries: []swarm.Entry{
			tokEntry(swarm.KindJoinTokenWorker, swarm.ResultOK, tokT0.Add(-800*time.Hour), wfp),
			tokEntry(swarm.KindJoinTokenManager, swarm.ResultOK, tokT0.Add(-time.Hour), mfp)}, want: report.StatusFail, wantInText: "over its max age 720h"},
		{name: "never seen, adopt", adopt: true, want: report.StatusWarn, wantInText: "age is unknown"},
		{name: "never seen, no adopt", adopt: false, want: report.StatusFail, wantInText: "never rotated by swarmguard"},
		{name: "ledger unreadable", ledgerErr: errors.New("boom"), want: report.StatusError, wantInText: "reading the ledger"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tokConfig()
			cfg.Adopt = tc.adopt
			d := TokensDomain(cfg, cl, tc.entries, tc.ledgerErr, tokT0)
			if len(d.Checks) != 1 || d.Checks[0].ID != CheckTokensAge {
				t.Fatalf("TokensDomain() = %+v; want one tokens.age check", d.Checks)
			}
			ch := d.Checks[0]
			if ch.Status != tc.want || !strings.Contains(ch.Summary, tc.wantInText) {
				t.Errorf("TokensDomain() = %s %q; want %s containing %q", ch.Status, ch.Summary, tc.want, tc.wantInText)
			}
			tokScan(t, []string{ch.Summary, ch.Remediation}, "secretpart")
		})
	}
}

func TestAutolockEscrowCheck(t *testing.T) {
	base := AutolockFinding{Enabled: true, EscrowPath: alPath, KeyFingerprint: "0123456789ab", EscrowChecked: true, EscrowFound: true, EscrowMatches: true}
	cases := []struct {
		name string
		mod  func(*AutolockFinding)
		want report.CheckStatus
	}{
		{name: "matches", want: report.StatusPass},
		{name: "autolock off", mod: func(f *AutolockFinding) { f.Enabled = false }, want: report.StatusInfo},
		{name: "vault error", mod: func(f *AutolockFinding) { f.EscrowError = "vault unreachable" }, want: report.StatusError},
		{name: "no vault", mod: func(f *AutolockFinding) { f.EscrowChecked, f.EscrowFound, f.EscrowMatches = false, false, false }, want: report.StatusWarn},
		{name: "empty", mod: func(f *AutolockFinding) { f.EscrowFound, f.EscrowMatches = false, false }, want: report.StatusFail},
		{name: "another key", mod: func(f *AutolockFinding) { f.EscrowMatches = false }, want: report.StatusFail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			if tc.mod != nil {
				tc.mod(&f)
			}
			if got := AutolockEscrowCheck(f); got.Status != tc.want || got.ID != CheckAutolockEscrow {
				t.Errorf("AutolockEscrowCheck() = %s %q; want %s", got.Status, got.Summary, tc.want)
			}
		})
	}
}

func TestAutolockDomain(t *testing.T) {
	eng, led, esc := newALEngine(true), ledgertest.New(), newALEscrow()
	a := newAutolock(eng, led, esc, config.ModeEnforce)
	if d := a.Domain(t.Context(), tokT0); d.Checks[0].Status != report.StatusFail {
		t.Errorf("Domain() with an empty escrow = %s; want fail", d.Checks[0].Status)
	}
	if _, err := a.EscrowCurrent(t.Context(), TaskEnv{Now: func() time.Time { return tokT0 }}); err != nil {
		t.Fatal(err)
	}
	d := a.Domain(t.Context(), tokT0)
	if d.Checks[0].Status != report.StatusPass || d.Checks[0].Evidence[0].Facts["last_escrow"] == "" {
		t.Errorf("Domain() after escrow = %s %v; want pass with the last escrow time", d.Checks[0].Status, d.Checks[0].Evidence)
	}
}
