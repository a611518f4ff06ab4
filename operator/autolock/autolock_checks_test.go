package autolock

import (
	"errors"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestAgeChecks(t *testing.T) {
	cl := swarm.Cluster{AutoLock: true}
	entry := func(kind string, age time.Duration, result string) []swarm.Entry {
		return []swarm.Entry{{Kind: kind, At: fixedNow.Add(-age), Result: result}}
	}
	ac := func(max time.Duration) config.AutolockConfig {
		return config.AutolockConfig{Rotate: config.MaxAge{MaxAge: config.Duration(max)}}
	}
	for _, tc := range []struct {
		name    string
		cl      swarm.Cluster
		entries []swarm.Entry
		err     error
		max     time.Duration
		want    report.CheckStatus
	}{
		{"fresh key", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultOK), nil, 24 * time.Hour, report.StatusPass},
		{"old key", cl, entry(swarm.KindUnlockKey, 48*time.Hour, swarm.ResultOK), nil, 24 * time.Hour, report.StatusFail},
		{"adopted, young", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultAdopted), nil, 24 * time.Hour, report.StatusPass},
		{"failed rotation does not count", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultFailed), nil, 24 * time.Hour, report.StatusWarn},
		{"no entry", cl, nil, nil, 24 * time.Hour, report.StatusWarn},
		{"no policy", cl, entry(swarm.KindUnlockKey, time.Hour, swarm.ResultOK), nil, 0, report.StatusWarn},
		{"autolock off", swarm.Cluster{}, nil, nil, 24 * time.Hour, report.StatusFail},
		{"ledger unreadable", cl, nil, errors.New("corrupt"), 24 * time.Hour, report.StatusError},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkUnlockKeyAge(tc.cl, tc.entries, tc.err, "", ac(tc.max), fixedNow).Status; got != tc.want {
				t.Errorf("checkUnlockKeyAge = %s; want %s", got, tc.want)
			}
		})
	}
}

func TestAutolockEscrowCheck(t *testing.T) {
	base := Finding{Enabled: true, EscrowPath: alPath, KeyFingerprint: "0123456789ab", EscrowChecked: true, EscrowFound: true, EscrowMatches: true}
	cases := []struct {
		name string
		mod  func(*Finding)
		want report.CheckStatus
	}{
		{name: "matches", want: report.StatusPass},
		{name: "autolock off", mod: func(f *Finding) { f.Enabled = false }, want: report.StatusInfo},
		{name: "vault error", mod: func(f *Finding) { f.EscrowError = "vault unreachable" }, want: report.StatusError},
		{name: "no vault", mod: func(f *Finding) { f.EscrowChecked, f.EscrowFound, f.EscrowMatches = false, false, false }, want: report.StatusWarn},
		{name: "empty", mod: func(f *Finding) { f.EscrowFound, f.EscrowMatches = false, false }, want: report.StatusFail},
		{name: "another key", mod: func(f *Finding) { f.EscrowMatches = false }, want: report.StatusFail},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := base
			if tc.mod != nil {
				tc.mod(&f)
			}
			if got := EscrowCheck(f); got.Status != tc.want || got.ID != CheckAutolockEscrow {
				t.Errorf("EscrowCheck() = %s %q; want %s", got.Status, got.Summary, tc.want)
			}
		})
	}
}

func TestAutolockSection(t *testing.T) {
	eng, led, esc := newALEngine(true), ledgertest.New(), newALEscrow()
	a := newAutolock(eng, led, esc, config.ModeEnforce)
	cl := swarm.Cluster{ID: "swarm1", AutoLock: true}
	escrowCheck := func() report.Check {
		s := Section(cl, led.All(), nil, a.Observe(t.Context(), cl), a.Config, alT0)
		return s.Checks[2]
	}
	if c := escrowCheck(); c.Status != report.StatusFail {
		t.Errorf("Section() with an empty escrow = %s; want fail", c.Status)
	}
	if _, err := a.EscrowCurrent(t.Context(), operator.TaskEnv{Now: func() time.Time { return alT0 }}); err != nil {
		t.Fatal(err)
	}
	if c := escrowCheck(); c.Status != report.StatusPass || c.Evidence[0].Facts["last_escrow"] == "" {
		t.Errorf("Section() after escrow = %s %v; want pass with the last escrow time", c.Status, c.Evidence)
	}
}

// fixedNow is the report time of the tests.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
