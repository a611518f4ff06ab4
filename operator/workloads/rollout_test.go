package workloads

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// swarmkitEngine behaves as swarmkit does after a service update: the update resets UpdateStatus to nil
// and the old task keeps running until the updater starts (startAfter polls later); the updater then
// sets "updating", starts the new task (with the new spec), and, when the new task fails (failNew), pauses
// the update with the new spec in place, as the default failure action does.
type swarmkitEngine struct {
	*fakeEngine
	startAfter int
	failNew    bool
	// pauseOnOld: the update pauses on the old task (t1, of the previous spec) that the hardening ended while
	// it started, as after a redeploy during an earlier hardening; the new task runs.
	pauseOnOld bool

	mu           sync.Mutex
	statusWrites int // version bumps the engine's rollback updater makes after RollbackService returned
	written      bool
	polls        int
	state        string
	started      time.Time
}

func (f *swarmkitEngine) HardenService(ctx context.Context, id string, version uint64, h swarm.Hardening) error {
	if err := f.fakeEngine.HardenService(ctx, id, version, h); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.written, f.polls, f.state = true, 0, "" // controlapi UpdateService: service.UpdateStatus = nil
	return nil
}

func (f *swarmkitEngine) ServiceSecrets(ctx context.Context, id string) (swarm.ServiceSecrets, error) {
	s, err := f.fakeEngine.ServiceSecrets(ctx, id)
	if err != nil {
		return s, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.written {
		f.polls++
		switch {
		case f.polls <= f.startAfter: // the updater has not started: no update status
		case f.state == "":
			f.state, f.started = "updating", time.Unix(2000, 0)
		case f.state == "updating" && (f.failNew || f.pauseOnOld):
			f.state = "paused"
		case f.state == "updating":
			f.state = "completed"
		}
	}
	s.UpdateState, s.UpdateStartedAt = f.state, f.started
	if f.state == "paused" {
		s.UpdateMessage = "update paused due to failure or early termination of task t2"
		if f.pauseOnOld {
			s.UpdateMessage = "update paused due to failure or early termination of task t1"
		}
	}
	return s, nil
}

func (f *swarmkitEngine) TasksSecrets(_ context.Context, id string) ([]swarm.TaskSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := swarm.TaskSecrets{ID: "t1", ServiceID: id, State: "running", DesiredState: "running"}
	switch f.state {
	case "": // the old task, on the old spec, still runs
		return []swarm.TaskSecrets{old}, nil
	case "updating":
		old.State, old.DesiredState = "shutdown", "shutdown"
		return []swarm.TaskSecrets{old, newTask(id, "starting", "running")}, nil
	case "paused":
		if f.pauseOnOld {
			old.State, old.DesiredState = "failed", "shutdown"
			return []swarm.TaskSecrets{old, newTask(id, "running", "running")}, nil
		}
		old.State, old.DesiredState = "shutdown", "shutdown"
		return []swarm.TaskSecrets{old, newTask(id, "failed", "shutdown")}, nil
	}
	old.State, old.DesiredState = "shutdown", "shutdown"
	return []swarm.TaskSecrets{old, newTask(id, "running", "running")}, nil
}

// newTask is a task of the hardened spec.
func newTask(service, state, desired string) swarm.TaskSecrets {
	return swarm.TaskSecrets{ID: "t2", ServiceID: service, State: state, DesiredState: desired, NoNewPrivileges: true}
}

// TestPassJudgesTheNewSpec: right after the hardening is written the engine has no update status and the
// old task still runs; that is not convergence. The pass waits for the updater, sees the new task fail and
// the update pause, and returns the service to its previous spec.
func TestPassJudgesTheNewSpec(t *testing.T) {
	for _, tc := range []struct {
		name       string
		startAfter int
		failNew    bool
		wantErr    bool
		rollout    string
		rolledBack int
		pauseOnOld bool
	}{
		{"new task fails after the updater starts", 2, true, true, "paused", 1, false},
		{"new task fails, updater at once", 0, true, true, "paused", 1, false},
		{"new task runs", 2, false, false, "converged", 0, false},
		// Found on the lab: a redeploy during a hardening's rollout, hardened again, paused the engine on the
		// previous spec's task; the pass rolled the working hardening back and left the service unhardened.
		{"paused on a task of the previous spec, the new one runs", 2, false, false, "converged", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := svc(func(w *swarm.Workload) {
				w.ID, w.Name, w.NoNewPrivileges = "a", "a", false
				w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
			})
			eng := &swarmkitEngine{fakeEngine: &fakeEngine{api: "1.56", services: []swarm.Workload{w}}, startAfter: tc.startAfter, failNew: tc.failNew, pauseOnOld: tc.pauseOnOld}
			led := &fakeLedger{}
			e := &Enforcer{Engine: eng, Ledger: led, Config: config.WorkloadsConfig{Mode: config.ModeEnforce, Schedule: "@every 1m"},
				PollInterval: time.Millisecond, RolloutTimeout: 5 * time.Second}
			var out strings.Builder
			err := e.Pass(t.Context(), operator.TaskEnv{Actor: "test", Out: &out})
			rollout := ""
			if len(led.entries) == 1 {
				rollout = led.entries[0].Details[DetailRollout]
			}
			var re *swarm.RolloutError
			if (err != nil) != tc.wantErr || (tc.wantErr && !errors.As(err, &re)) || rollout != tc.rollout || len(eng.rolledBack) != tc.rolledBack {
				t.Errorf("Pass = %v, ledger rollout %q, rolled back %v; want error %v, rollout %q, %d rollback(s)",
					err, rollout, eng.rolledBack, tc.wantErr, tc.rollout, tc.rolledBack)
			}
		})
	}
}

// RollbackService returns the service to its previous spec as the engine does: the rollback is a write, and
// a moment later its updater's status changes are writes too, each bumping the service's version.
func (f *swarmkitEngine) RollbackService(ctx context.Context, id string) error {
	if err := f.fakeEngine.RollbackService(ctx, id); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.services {
		if f.services[i].ID == id {
			f.services[i].Version++ // the rollback
		}
	}
	f.written, f.state, f.statusWrites = false, "rollback_completed", 2 // rollback_started, rollback_completed: a moment later
	return nil
}

// Workloads lists the services once the rollback's updater has written its status (a moment after the
// rollback).
func (f *swarmkitEngine) Workloads(ctx context.Context) ([]swarm.Workload, error) {
	f.mu.Lock()
	for i := range f.services {
		f.services[i].Version += uint64(f.statusWrites)
	}
	f.statusWrites = 0
	f.mu.Unlock()
	return f.fakeEngine.Workloads(ctx)
}

// TestPassDoesNotRetryAfterTheEngineRollsBack: a service whose hardening failed and was rolled back is not
// hardened again by the next pass, although the rollback and the engine's status writes moved its version.
func TestPassDoesNotRetryAfterTheEngineRollsBack(t *testing.T) {
	w := svc(func(w *swarm.Workload) {
		w.ID, w.Name, w.NoNewPrivileges = "a", "a", false
		w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
	})
	eng := &swarmkitEngine{fakeEngine: &fakeEngine{api: "1.56", services: []swarm.Workload{w}}, startAfter: 1, failNew: true}
	e := &Enforcer{Engine: eng, Ledger: &fakeLedger{}, Config: config.WorkloadsConfig{Mode: config.ModeEnforce, Schedule: "@every 1m"},
		PollInterval: time.Millisecond, RolloutTimeout: 5 * time.Second}
	if err := e.Pass(t.Context(), operator.TaskEnv{Actor: "test", Out: io.Discard}); err == nil {
		t.Fatal("first Pass = nil; want the paused rollout's error")
	}
	var out strings.Builder
	err := e.Pass(t.Context(), operator.TaskEnv{Actor: "test", Out: &out})
	if len(eng.hardened) != 1 || err != nil || !strings.Contains(out.String(), "skip a") {
		t.Errorf("second Pass after the rollback: hardened %v, err %v, out %q; want a hardened once, then skipped", eng.hardened, err, out.String())
	}
}
