package autolock

import (
	"bytes"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestUnlockKeyAgreeWithReport walks the unlock key's max age boundaries and holds the controller's
// decision and action (DecideUnlockKey, and whether an enforcing pass rotates) and the report's verdict
// (autolock.key-age) side by side: exactly at max age both say due.
func TestUnlockKeyAgreeWithReport(t *testing.T) {
	const maxAge = 2160 * time.Hour
	now := alT0
	entry := func(age time.Duration) []swarm.Entry {
		return []swarm.Entry{{Kind: swarm.KindUnlockKey, At: now.Add(-age), Result: swarm.ResultOK}}
	}
	for _, tc := range []struct {
		name    string
		entries []swarm.Entry
		wantDue bool
		want    report.CheckStatus
	}{
		{"one second before max age", entry(maxAge - time.Second), false, report.StatusPass},
		{"exactly at max age", entry(maxAge), true, report.StatusFail},
		{"one second past max age", entry(maxAge + time.Second), true, report.StatusFail},
		{"missing ledger entry", nil, false, report.StatusWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := alConfig(config.ModeEnforce)
			cfg.Rotate.MaxAge = config.Duration(maxAge)
			d := DecideUnlockKey(tc.entries, maxAge, now)
			verdict := checkUnlockKeyAge(swarm.Cluster{ID: "swarm1", AutoLock: true}, tc.entries, nil, cfg, now).Status
			if d.Due != tc.wantDue || verdict != tc.want {
				t.Errorf("DecideUnlockKey due %v, report %s; want due %v, report %s", d.Due, verdict, tc.wantDue, tc.want)
			}
			if (verdict == report.StatusFail) != d.Due {
				t.Errorf("report verdict %s, controller due %v; they must agree", verdict, d.Due)
			}
			// The controller's pass acts on the same decision: it rotates exactly when due.
			eng, led, esc := newALEngine(true), ledgertest.New(tc.entries...), newALEscrow()
			a := newAutolock(eng, led, esc, config.ModeEnforce)
			a.Config.Rotate.MaxAge = config.Duration(maxAge)
			var logs bytes.Buffer
			appends := led.Appends()
			if err := a.Run(t.Context(), domaintest.Env(now, &logs)); err != nil {
				t.Fatalf("Run() = %v\n%s", err, logs.String())
			}
			rotated := false
			for _, c := range eng.calls {
				rotated = rotated || c == "rotate"
			}
			if rotated != d.Due {
				t.Errorf("Run() rotated %v; the decision said due %v (calls %v)", rotated, d.Due, eng.calls)
			}
			if n := led.Appends() - appends; n > 1 {
				t.Errorf("Run() wrote the ledger %d times; want at most once per pass", n)
			}
		})
	}
}
