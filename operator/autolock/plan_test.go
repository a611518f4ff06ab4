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

// TestAutolockApplyDoesOnlyThePlan: Apply acts on the plan value it is given, nothing else. For each
// situation, the changes it makes (engine writes, escrow writes, adoptions) are the plan's actions, of the
// same kinds, in the same order, one ledger entry each; and a plan whose actions were taken away makes no
// change at all, although the swarm it was decided from still calls for them.
func TestAutolockApplyDoesOnlyThePlan(t *testing.T) {
	key0 := sensitive.New("SWMKEY-1-key0secretpart").Fingerprint()
	day := 24 * time.Hour
	old := []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-100*day), key0)}
	fresh := []swarm.Entry{domaintest.Entry(swarm.KindUnlockKey, swarm.ResultOK, alT0.Add(-day), key0)}
	for _, tc := range []struct {
		name     string
		autolock bool
		entries  []swarm.Entry
		escrowed bool
		want     []string // what Apply does, as the plan's actions name it: kind and change
	}{
		{"autolock off", false, nil, false, []string{"unlock-key: turn autolock on", "unlock-key-escrow: escrow the new unlock key"}},
		{"first seen", true, nil, false, []string{"unlock-key: adopt the unlock key", "unlock-key-escrow: escrow the current unlock key"}},
		{"old key", true, old, true, []string{"unlock-key: rotate the unlock key", "unlock-key-escrow: escrow the new unlock key"}},
		{"fresh key not escrowed", true, fresh, false, []string{"unlock-key-escrow: escrow the current unlock key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, strip := range []bool{false, true} {
				eng, led, esc := newALEngine(tc.autolock), ledgertest.New(tc.entries...), newALEscrow()
				a := newAutolock(eng, led, esc, config.ModeEnforce)
				if tc.escrowed {
					if _, err := esc.StoreKey(t.Context(), alPath, "swarm1", sensitive.New(eng.key), alT0); err != nil {
						t.Fatal(err)
					}
				}
				stores0 := esc.stores
				pp, err := a.Decide(t.Context(), alT0)
				if err != nil {
					t.Fatal(err)
				}
				var planned []string
				for _, act := range pp.Plan().Actions {
					planned = append(planned, act.Kind+": "+act.Change)
				}
				if len(planned) != len(tc.want) {
					t.Fatalf("plan = %q; want %d actions like %q", planned, len(tc.want), tc.want)
				}
				for i := range planned {
					if !strings.HasPrefix(planned[i], tc.want[i]) {
						t.Fatalf("plan = %q; want %q", planned, tc.want)
					}
				}
				if strip {
					pp.steps = nil
				}
				var log bytes.Buffer
				if err := a.Apply(t.Context(), pp, domaintest.Env(alT0, &log)); err != nil {
					t.Fatalf("Apply = %v\n%s", err, log.String())
				}
				// What was done, in order, named as the plan names it.
				var did []string
				for _, c := range eng.calls {
					switch c {
					case "autolock=true":
						did = append(did, swarm.KindUnlockKey+": turn autolock on")
					case "rotate":
						did = append(did, swarm.KindUnlockKey+": rotate the unlock key")
					default:
						t.Fatalf("Apply made an engine call no plan names: %q", c)
					}
				}
				for _, e := range led.All()[len(tc.entries):] {
					if e.Result == swarm.ResultAdopted {
						did = append([]string{swarm.KindUnlockKey + ": adopt the unlock key"}, did...)
					}
				}
				for i := stores0; i < esc.stores; i++ {
					if eng.rotated() || len(eng.calls) > 0 {
						did = append(did, swarm.KindUnlockKeyEscrow+": escrow the new unlock key")
					} else {
						did = append(did, swarm.KindUnlockKeyEscrow+": escrow the current unlock key")
					}
				}
				want, wantKinds := tc.want, domaintest.Kinds(pp.Plan())
				if strip {
					want, wantKinds = nil, nil
				}
				if !slices.Equal(did, want) {
					t.Errorf("strip %v: Apply did %q; the plan listed %q", strip, did, want)
				}
				var got []string
				for _, e := range led.All()[len(tc.entries):] {
					got = append(got, e.Kind)
				}
				if !slices.Equal(got, wantKinds) {
					t.Errorf("strip %v: Apply recorded %v; the plan's kinds are %v", strip, got, wantKinds)
				}
			}
		})
	}
}
