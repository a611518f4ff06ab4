package workloads

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// eventEngine is fakeEngine whose hardening shows in the service (as the engine's does), whose every
// service has a running task, and which is safe for the concurrent calls of the background follows.
type eventEngine struct {
	*fakeEngine
	mu *sync.Mutex
}

func newEventEngine(f *fakeEngine) eventEngine { return eventEngine{f, &sync.Mutex{}} }

func (f eventEngine) Workloads(ctx context.Context) ([]swarm.Workload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.services), nil
}

func (f eventEngine) HardenService(ctx context.Context, id string, version uint64, h swarm.Hardening) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fakeEngine.HardenService(ctx, id, version, h); err != nil {
		return err
	}
	for i := range f.services {
		if f.services[i].ID == id && h.NoNewPrivileges {
			f.services[i].NoNewPrivileges = true
		}
	}
	return nil
}

func (f eventEngine) RollbackService(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fakeEngine.RollbackService(ctx, id)
}

func (f eventEngine) ServiceSecrets(ctx context.Context, id string) (swarm.ServiceSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fakeEngine.ServiceSecrets(ctx, id)
}

func (f eventEngine) TasksSecrets(context.Context, string) ([]swarm.TaskSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []swarm.TaskSecrets
	for _, s := range f.services {
		out = append(out, swarm.TaskSecrets{ID: "t-" + s.ID, ServiceID: s.ID, State: "running", DesiredState: "running", NoNewPrivileges: s.NoNewPrivileges})
	}
	return out, nil
}

func optedIn(id string, hardened bool, state string) swarm.Workload {
	return svc(func(w *swarm.Workload) {
		w.ID, w.Name, w.NoNewPrivileges, w.UpdateState = id, id, hardened, state
		w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
	})
}

func changes(ids ...string) operator.Changes {
	slices.Sort(ids)
	return operator.Changes{IDs: map[string][]string{swarm.EventService: ids}, Events: len(ids)}
}

// TestReact: only the services the events name are judged and hardened; a service mid-update (a redeploy)
// is hardened at once; the controller's own update, coming back as an event, changes nothing (no loop).
func TestReact(t *testing.T) {
	eng := newEventEngine(&fakeEngine{api: "1.56", updateState: "completed", started: time.Unix(1000, 0), services: []swarm.Workload{
		optedIn("new", false, ""), optedIn("redeployed", false, "updating"), optedIn("untouched", false, ""), optedIn("done", true, "completed"),
	}})
	led := &fakeLedger{}
	e := &Enforcer{Engine: eng, Ledger: led, Config: config.WorkloadsConfig{Mode: config.ModeEnforce, Schedule: "@every 1h"},
		PollInterval: time.Millisecond, RolloutTimeout: time.Second}
	env := operator.TaskEnv{Actor: "test", Reason: "engine events: test"}
	if err := e.React(t.Context(), env, changes("new", "redeployed", "done", "gone")); err != nil {
		t.Fatalf("React = %v; want nil", err)
	}
	slices.Sort(eng.hardened)
	if got := strings.Join(eng.hardened, ","); got != "new,redeployed" {
		t.Fatalf("React hardened %q; want new,redeployed (not untouched: no event named it; not done: it passes)", got)
	}
	if len(led.entries) != 2 || led.entries[0].Result != swarm.ResultOK || led.entries[0].Reason != "engine events: test" {
		t.Fatalf("ledger = %+v; want two ok entries with the events as reason", led.entries)
	}
	// The controller's own updates come back as events: nothing more is done.
	for range 3 {
		if err := e.React(t.Context(), env, changes("new", "redeployed")); err != nil {
			t.Fatalf("React on its own updates = %v; want nil", err)
		}
	}
	if len(eng.hardened) != 2 || len(led.entries) != 2 {
		t.Fatalf("after its own updates came back: hardened %v, ledger %d entries; want still 2 and 2 (no loop)", eng.hardened, len(led.entries))
	}
	// A redeploy drops the hardening again: hardened again, once.
	for i := range eng.services {
		if eng.services[i].ID == "new" {
			eng.services[i].NoNewPrivileges, eng.services[i].UpdateState = false, "updating"
		}
	}
	if err := e.React(t.Context(), env, changes("new")); err != nil {
		t.Fatalf("React after a redeploy = %v; want nil", err)
	}
	if got := strings.Join(eng.hardened, ","); !strings.HasSuffix(got, ",new") || len(eng.hardened) != 3 {
		t.Fatalf("hardened after a redeploy %q; want new once more", got)
	}
}

// TestReactAudit: under mode audit, events are judged and nothing is changed.
func TestReactAudit(t *testing.T) {
	eng := newEventEngine(&fakeEngine{api: "1.56", services: []swarm.Workload{optedIn("a", false, "")}})
	e := &Enforcer{Engine: eng, Ledger: &fakeLedger{}, Config: config.WorkloadsConfig{Mode: config.ModeAudit, Schedule: "@every 1h"}}
	if err := e.React(t.Context(), operator.TaskEnv{Actor: "test"}, changes("a")); err != nil || len(eng.hardened) != 0 {
		t.Fatalf("React under audit = %v, hardened %v; want nil and nothing", err, eng.hardened)
	}
}
