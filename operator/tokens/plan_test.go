package tokens

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/domaintest"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestPlanIsWhatThePassDoes: the plan observed before a pass lists exactly the ledger entries the pass then
// writes (kind by kind, in order), and a plan after it lists none of them.
func TestPlanIsWhatThePassDoes(t *testing.T) {
	worker := sensitive.New("SWMTKN-1-digest-worker0secretpart").Fingerprint()
	manager := sensitive.New("SWMTKN-1-digest-manager0secretpart").Fingerprint()
	tracked := func(kind, fp string, age time.Duration) swarm.Entry {
		e := domaintest.Entry(kind, swarm.ResultOK, tokT0.Add(-age), fp)
		return e
	}
	for _, tc := range []struct {
		name    string
		adopt   bool
		entries []swarm.Entry
		window  time.Duration // > 0: a worker window opened 2h ago with this TTL
		want    []string
	}{
		{"never seen, adopt", true, nil, 0, []string{swarm.KindJoinTokenWorker, swarm.KindJoinTokenManager}},
		{"never seen, no adopt: due", false, nil, 0, []string{swarm.KindJoinTokenWorker, swarm.KindJoinTokenManager}},
		{"both past max age", true, []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, 30*24*time.Hour), tracked(swarm.KindJoinTokenManager, manager, 30*24*time.Hour)},
			0, []string{swarm.KindJoinTokenWorker, swarm.KindJoinTokenManager}},
		{"only the manager due", true, []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, time.Hour), tracked(swarm.KindJoinTokenManager, manager, 30*24*time.Hour)},
			0, []string{swarm.KindJoinTokenManager}},
		{"nothing due", true, []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, time.Hour), tracked(swarm.KindJoinTokenManager, manager, time.Hour)}, 0, nil},
		{"window over: one rotation, one close", true, []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, 3*time.Hour), tracked(swarm.KindJoinTokenManager, manager, time.Hour)},
			time.Hour, []string{swarm.KindJoinTokenWorker, swarm.KindJoinWindow}},
		{"window open: nothing", true, []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, 3*time.Hour), tracked(swarm.KindJoinTokenManager, manager, time.Hour)},
			4 * time.Hour, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := newTokEngine()
			led := ledgertest.New(tc.entries...)
			cfg := config.TokensConfig{Adopt: tc.adopt, Worker: config.MaxAge{MaxAge: config.Duration(720 * time.Hour)}, Manager: config.MaxAge{MaxAge: config.Duration(720 * time.Hour)}}
			tk := &Tokens{Engine: eng, Ledger: led, Config: cfg}
			var log bytes.Buffer
			if tc.window > 0 {
				if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: swarm.TokenWorker, TTL: tc.window}, domaintest.Env(tokT0.Add(-2*time.Hour), &log)); err != nil {
					t.Fatal(err)
				}
			}
			before := len(led.All())
			p := tk.Plan(t.Context(), tokT0)
			if p.Err != nil || p.Domain != Domain {
				t.Fatalf("Plan = %+v; want the tokens domain's plan without error", p)
			}
			if got := domaintest.Kinds(p); !slices.Equal(got, tc.want) {
				t.Errorf("Plan kinds = %v; want %v", got, tc.want)
			}
			if err := tk.Run(t.Context(), domaintest.Env(tokT0, &log)); err != nil {
				t.Fatal(err)
			}
			var did []string
			for _, e := range led.All()[before:] {
				did = append(did, e.Kind)
			}
			if !slices.Equal(did, domaintest.Kinds(p)) {
				t.Errorf("Run recorded %v; the plan had %v", did, domaintest.Kinds(p))
			}
			if again := tk.Plan(t.Context(), tokT0.Add(time.Second)); len(again.Actions) != 0 {
				t.Errorf("second Plan = %+v; want no action", again.Actions)
			}
			var out bytes.Buffer
			if err := operator.WritePlans(&out, p); err != nil {
				t.Fatal(err)
			}
			domaintest.NoSecret(t, []string{out.String(), log.String()}, "secretpart")
		})
	}
}

func TestPlanReadFailurePlansNothing(t *testing.T) {
	led := ledgertest.New()
	led.ReadErr = errors.New("engine unreachable")
	p := (&Tokens{Engine: newTokEngine(), Ledger: led}).Plan(t.Context(), tokT0)
	if p.Err == nil || !strings.Contains(p.Err.Error(), "reading the ledger") || len(p.Actions) != 0 {
		t.Errorf("Plan with an unreadable ledger = %+v; want its error and no action", p)
	}
}

func TestPlanManualActions(t *testing.T) {
	eng := newTokEngine()
	cl, _ := eng.Cluster(t.Context())
	if got := domaintest.Kinds(PlanRotate(cl, []string{swarm.TokenManager, swarm.TokenWorker}, "r")); !slices.Equal(got, []string{swarm.KindJoinTokenWorker, swarm.KindJoinTokenManager}) {
		t.Errorf("PlanRotate(all) kinds = %v; want worker then manager", got)
	}
	led := ledgertest.New()
	tk := &Tokens{Engine: eng, Ledger: led}
	var log bytes.Buffer
	open := tk.PlanOpenWindow(t.Context(), OpenWindowOptions{Kind: swarm.TokenWorker, TTL: time.Hour}, "r", tokT0)
	if got := domaintest.Kinds(open); open.Err != nil || !slices.Equal(got, []string{swarm.KindJoinWindow}) {
		t.Fatalf("PlanOpenWindow = %v, %v; want one join-window action", got, open.Err)
	}
	if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: swarm.TokenWorker, TTL: time.Hour}, domaintest.Env(tokT0, &log)); err != nil {
		t.Fatal(err)
	}
	if again := tk.PlanOpenWindow(t.Context(), OpenWindowOptions{Kind: swarm.TokenWorker, TTL: time.Hour}, "r", tokT0); !errors.Is(again.Err, ErrWindowOpen) || len(again.Actions) != 0 {
		t.Errorf("PlanOpenWindow with one open = %+v; want ErrWindowOpen", again)
	}
	before := len(led.All())
	cls := tk.PlanCloseWindow(t.Context(), "worker", domaintest.Actor, "done", tokT0)
	if _, _, err := tk.CloseWindow(t.Context(), "worker", domaintest.Env(tokT0, &log)); err != nil {
		t.Fatal(err)
	}
	var did []string
	for _, e := range led.All()[before:] {
		did = append(did, e.Kind)
	}
	if !slices.Equal(did, domaintest.Kinds(cls)) || len(did) != 2 {
		t.Errorf("CloseWindow recorded %v; PlanCloseWindow had %v", did, domaintest.Kinds(cls))
	}
	if p := tk.PlanCloseWindow(t.Context(), "worker", domaintest.Actor, "", tokT0); !errors.Is(p.Err, ErrNoWindow) {
		t.Errorf("PlanCloseWindow with none open = %+v; want ErrNoWindow", p)
	}
}

// TestTokensApplyDoesOnlyThePlan: Apply acts on the plan value it is given, nothing else. What it does (the
// fake engine's rotations, the ledger's new entries) is the plan's actions, same kinds, same order; and a
// plan from which actions were taken (every rotation, or everything) does only what is left, although the
// swarm it was decided from still calls for them.
func TestTokensApplyDoesOnlyThePlan(t *testing.T) {
	worker := sensitive.New("SWMTKN-1-digest-worker0secretpart").Fingerprint()
	manager := sensitive.New("SWMTKN-1-digest-manager0secretpart").Fingerprint()
	tracked := func(kind, fp string, age time.Duration) swarm.Entry {
		return domaintest.Entry(kind, swarm.ResultOK, tokT0.Add(-age), fp)
	}
	old := 30 * 24 * time.Hour
	keepAll := func(step) bool { return true }
	noRotation := func(s step) bool { return s.rotate == "" }
	nothing := func(step) bool { return false }
	for _, tc := range []struct {
		name    string
		entries []swarm.Entry
		window  time.Duration // > 0: a worker window opened 2h ago with this TTL
	}{
		{"never seen: adopted", nil, 0},
		{"both past max age", []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, old), tracked(swarm.KindJoinTokenManager, manager, old)}, 0},
		{"only the manager due", []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, time.Hour), tracked(swarm.KindJoinTokenManager, manager, old)}, 0},
		{"window over, manager due", []swarm.Entry{tracked(swarm.KindJoinTokenWorker, worker, 3*time.Hour), tracked(swarm.KindJoinTokenManager, manager, old)}, time.Hour},
	} {
		for _, keep := range []struct {
			name string
			f    func(step) bool
		}{{"whole plan", keepAll}, {"rotations taken out", noRotation}, {"every action taken out", nothing}} {
			t.Run(tc.name+"/"+keep.name, func(t *testing.T) {
				eng, led := newTokEngine(), ledgertest.New(tc.entries...)
				cfg := config.TokensConfig{Adopt: true, Worker: config.MaxAge{MaxAge: config.Duration(720 * time.Hour)}, Manager: config.MaxAge{MaxAge: config.Duration(720 * time.Hour)}}
				tk := &Tokens{Engine: eng, Ledger: led, Config: cfg}
				var log bytes.Buffer
				if tc.window > 0 {
					if _, err := tk.OpenWindow(t.Context(), OpenWindowOptions{Kind: swarm.TokenWorker, TTL: tc.window}, domaintest.Env(tokT0.Add(-2*time.Hour), &log)); err != nil {
						t.Fatal(err)
					}
				}
				before := len(led.All())
				pp, err := tk.Decide(t.Context(), tokT0)
				if err != nil {
					t.Fatal(err)
				}
				if len(pp.steps) == 0 {
					t.Fatalf("Decide planned nothing; the case wants a plan")
				}
				var kept []step
				for _, s := range pp.steps {
					if keep.f(s) {
						kept = append(kept, s)
					}
				}
				pp.steps = kept
				p := pp.Plan()
				eng.calls = nil
				if _, err := tk.Apply(t.Context(), pp, domaintest.Env(tokT0, &log)); err != nil {
					t.Fatalf("Apply = %v\n%s", err, log.String())
				}
				// The engine's writes: one rotation call for the kinds the plan rotates, none without one.
				var rotates []string
				wantWorker, wantManager := false, false
				for _, a := range p.Actions {
					wantWorker = wantWorker || a.Change == "rotate worker token"
					wantManager = wantManager || a.Change == "rotate manager token"
				}
				for _, c := range eng.calls {
					if strings.HasPrefix(c, "rotate") {
						rotates = append(rotates, c)
					}
				}
				var wantRotates []string
				if wantWorker || wantManager {
					wantRotates = []string{fmt.Sprintf("rotate worker=%v manager=%v", wantWorker, wantManager)}
				}
				if !slices.Equal(rotates, wantRotates) {
					t.Errorf("Apply made engine writes %q; the plan %v calls for %q", rotates, p.Actions, wantRotates)
				}
				// The ledger: one entry per action, of its kind, in its order; a rotation or adoption entry
				// for each token action, a close entry for each window action.
				var did []string
				for _, e := range led.All()[before:] {
					did = append(did, e.Kind)
				}
				if !slices.Equal(did, domaintest.Kinds(p)) {
					t.Errorf("Apply recorded %v; the plan had %v", did, domaintest.Kinds(p))
				}
			})
		}
	}
}
