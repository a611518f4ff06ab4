package autolock

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestAutolockPlanIsWhatThePassDoes: the plan observed before a pass lists exactly the ledger entries the
// pass writes, in order, and a plan after the pass lists none.
func TestAutolockPlanIsWhatThePassDoes(t *testing.T) {
	key0 := sensitive.New("SWMKEY-1-key0secretpart").Fingerprint()
	day := 24 * time.Hour
	for _, tc := range []struct {
		name     string
		mode     string
		autolock bool
		entries  []swarm.Entry
		escrowed bool // vault holds the current key
		down     bool // a manager is unreachable
		want     []string
	}{
		{"off", config.ModeOff, true, nil, false, false, nil},
		{"audit, autolock off", config.ModeAudit, false, nil, false, false, nil},
		{"audit, first seen: adopted only", config.ModeAudit, true, nil, false, false, []string{swarm.KindUnlockKey}},
		{"enforce, autolock off: on and escrowed", config.ModeEnforce, false, nil, false, false, []string{swarm.KindUnlockKey, swarm.KindUnlockKeyEscrow}},
		{"enforce, first seen: adopted and escrowed", config.ModeEnforce, true, nil, false, false, []string{swarm.KindUnlockKey, swarm.KindUnlockKeyEscrow}},
		{"enforce, old key: rotated and escrowed", config.ModeEnforce, true, []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), key0)},
			true, false, []string{swarm.KindUnlockKey, swarm.KindUnlockKeyEscrow}},
		{"enforce, old key, a manager down: deferred", config.ModeEnforce, true, []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), key0)},
			true, true, nil},
		{"enforce, fresh key not escrowed: escrowed", config.ModeEnforce, true, []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-day), key0)},
			false, false, []string{swarm.KindUnlockKeyEscrow}},
		{"enforce, changed outside the ledger past max age: adopted, not rotated", config.ModeEnforce, true,
			[]swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), "another-key")}, true, false, []string{swarm.KindUnlockKey}},
		{"enforce, in order: nothing", config.ModeEnforce, true, []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-day), key0)}, true, false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng, led, esc := newALEngine(tc.autolock), ledgertest.New(tc.entries...), newALEscrow()
			if tc.down {
				eng.nodes[1].Reachability = "unreachable"
			}
			a := newAutolock(eng, led, esc, tc.mode)
			if tc.escrowed {
				if _, err := esc.StoreKey(t.Context(), alPath, "swarm1", sensitive.New(eng.key), alT0); err != nil {
					t.Fatal(err)
				}
			}
			p := a.Plan(t.Context(), alT0)
			if p.Err != nil || !slices.Equal(domaintest.Kinds(p), tc.want) {
				t.Fatalf("Plan = %v, err %v; want %v", domaintest.Kinds(p), p.Err, tc.want)
			}
			var log bytes.Buffer
			var dry bytes.Buffer
			env := domaintest.Env(alT0, &log)
			env.DryRun, env.Out = true, &dry
			if err := a.Run(t.Context(), env); err != nil {
				t.Fatal(err)
			}
			for _, act := range p.Actions {
				if !strings.Contains(dry.String(), "would "+act.Change) {
					t.Errorf("dry run = %q; want the plan's %q", dry.String(), act.Change)
				}
			}
			if len(led.All()) != len(tc.entries) || eng.rotated() {
				t.Fatalf("dry run changed something: ledger %v, calls %v", led.Kinds(), eng.calls)
			}
			if err := a.Run(t.Context(), domaintest.Env(alT0, &log)); err != nil {
				t.Fatal(err)
			}
			var did []string
			for _, e := range led.All()[len(tc.entries):] {
				did = append(did, e.Kind)
			}
			if !slices.Equal(did, tc.want) {
				t.Errorf("Run recorded %v; the plan had %v", did, tc.want)
			}
			if again := a.Plan(t.Context(), alT0.Add(time.Second)); len(again.Actions) != 0 {
				t.Errorf("second Plan = %+v; want no action", again.Actions)
			}
			domaintest.NoSecret(t, []string{dry.String(), log.String()}, "secretpart")
		})
	}
}

func TestAutolockPlanEnforceWithoutVault(t *testing.T) {
	a := newAutolock(newALEngine(false), ledgertest.New(), nil, config.ModeEnforce)
	if p := a.Plan(t.Context(), alT0); p.Err == nil || len(p.Actions) != 0 {
		t.Errorf("Plan without a vault = %+v; want an error and no action", p)
	}
}
