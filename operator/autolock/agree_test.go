package autolock

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestUnlockKeyAgreeWithReport walks the unlock key's max age boundaries and holds the controller's
// decision and action (DecideCurrentKey, and whether an enforcing pass rotates) and the report's verdict
// (autolock.key-age, CIS 7.6) side by side: exactly at max age both say due; a key changed outside the
// ledger past its max age is adopted by the controller, not rotated, and the report says so (it once
// said FAIL while the controller adopted).
func TestUnlockKeyAgreeWithReport(t *testing.T) {
	const maxAge = 2160 * time.Hour
	now := alT0
	otherFP := sensitive.New("SWMKEY-1-beforesecretpart").Fingerprint()
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
		{"changed outside the ledger, past max age", []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, now.Add(-maxAge-time.Hour), otherFP)}, false, report.StatusWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := alConfig(config.ModeEnforce)
			cfg.Rotate.MaxAge = config.Duration(maxAge)
			eng, led, esc := newALEngine(true), ledgertest.New(tc.entries...), newALEscrow()
			fp := sensitive.New(eng.key).Fingerprint()
			d := DecideCurrentKey(tc.entries, maxAge, fp, now)
			check := checkUnlockKeyAge(swarm.Cluster{ID: "swarm1", AutoLock: true}, tc.entries, nil, fp, cfg, now)
			verdict := check.Status
			if d.Due != tc.wantDue || verdict != tc.want {
				t.Errorf("DecideCurrentKey due %v, report %s; want due %v, report %s", d.Due, verdict, tc.wantDue, tc.want)
			}
			if (verdict == report.StatusFail) != d.Due {
				t.Errorf("report verdict %s, controller due %v; they must agree", verdict, d.Due)
			}
			if d.ChangedOutside != strings.Contains(check.Summary, "adopts it") {
				t.Errorf("controller changed-outside %v; report 7.6 says %q", d.ChangedOutside, check.Summary)
			}
			// The controller's pass acts on the same decision: it rotates exactly when due, and adopts a key
			// changed outside the ledger.
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
			adopted := false
			after, _ := led.Entries(t.Context())
			for _, e := range after {
				adopted = adopted || (e.Kind == swarm.KindUnlockKey && e.Result == swarm.ResultAdopted && e.At.Equal(now))
			}
			if d.ChangedOutside && !adopted {
				t.Errorf("Run() did not adopt the key changed outside the ledger; ledger %v", after)
			}
			if n := led.Appends() - appends; n > 1 {
				t.Errorf("Run() wrote the ledger %d times; want at most once per pass", n)
			}
		})
	}
}
