package swarm

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// swarmkitRollout is a service right after its update was written, as swarmkit has it: no update status and
// the old task still running until the updater starts (after startAfter inspections); then "updating" with
// the new task starting (for monitor more inspections, the update's monitor period, the new task running),
// then "paused" when the new task fails (failNew) or "completed".
type swarmkitRollout struct {
	startAfter int
	monitor    int
	failNew    bool
	polls      int
	updating   int
	state      string
}

func (f *swarmkitRollout) ServiceSecrets(_ context.Context, id string) (ServiceSecrets, error) {
	f.polls++
	switch {
	case f.polls <= f.startAfter:
	case f.state == "":
		f.state = UpdateUpdating
	case f.state == UpdateUpdating && f.updating < f.monitor:
		f.updating++
	case f.state == UpdateUpdating && f.failNew:
		f.state = UpdatePaused
	case f.state == UpdateUpdating:
		f.state = UpdateCompleted
	}
	return ServiceSecrets{ID: id, Name: "web", Version: 11, UpdateState: f.state, UpdateStartedAt: time.Unix(2000, 0)}, nil
}

func (f *swarmkitRollout) TasksSecrets(_ context.Context, id string) ([]TaskSecrets, error) {
	old := TaskSecrets{ID: "t1", ServiceID: id, State: "running", DesiredState: "running", Secrets: []SecretRef{{SecretName: "db-old"}}}
	if f.state == "" {
		return []TaskSecrets{old}, nil
	}
	old.State, old.DesiredState = "shutdown", "shutdown"
	nu := TaskSecrets{ID: "t2", ServiceID: id, State: "running", DesiredState: "running", Secrets: []SecretRef{{SecretName: "db-new"}}}
	if f.state == UpdatePaused {
		nu.State, nu.DesiredState = "failed", "shutdown"
	}
	return []TaskSecrets{old, nu}, nil
}

func onSecret(name string) func([]TaskSecrets) bool {
	return func(tasks []TaskSecrets) bool {
		return TasksRunning(tasks, func(t TaskSecrets) bool {
			return slices.ContainsFunc(t.Secrets, func(r SecretRef) bool { return r.SecretName == name })
		})
	}
}

// TestRolloutWaitJudgesTheNewSpec: with no update status and the old task running, the rollout is not
// converged; it waits for the updater and reports the pause of a new task that fails. While the update is
// in its monitor period (updating, the new task running), it has not converged either: a new task that
// fails in it pauses the update, and that is the rollout's end.
func TestRolloutWaitJudgesTheNewSpec(t *testing.T) {
	// before: the service's previous update completed long ago
	before := ServiceSecrets{ID: "s1", Name: "web", Version: 10, UpdateState: UpdateCompleted, UpdateStartedAt: time.Unix(1000, 0)}
	for _, tc := range []struct {
		name       string
		startAfter int
		monitor    int
		failNew    bool
		want       string // "" converged, else the RolloutError's state
	}{
		{"updater starts late, new task fails", 3, 0, true, UpdatePaused},
		{"updater starts late, new task runs", 3, 0, false, ""},
		{"updater at once, new task fails", 0, 0, true, UpdatePaused},
		{"new task runs through the monitor period, then fails", 0, 3, true, UpdatePaused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &swarmkitRollout{startAfter: tc.startAfter, monitor: tc.monitor, failNew: tc.failNew}
			r := Rollout{Engine: eng, PollInterval: time.Millisecond, Timeout: 5 * time.Second}
			err := r.Wait(t.Context(), "s1", "web", before, onSecret("db-new"))
			got := ""
			var re *RolloutError
			if errors.As(err, &re) {
				got = re.State
			} else if err != nil {
				t.Fatalf("Wait = %v; want nil or a RolloutError", err)
			}
			if got != tc.want {
				t.Errorf("Wait after %d polls without update status = %v; want state %q", tc.startAfter, err, tc.want)
			}
		})
	}
}

// TestRolloutWaitOldUpdateAndTimeout: an update state from before the write (not fresh) is not this
// rollout's end; with tasks never on the new spec the wait ends at its timeout; a service removed meanwhile
// has nothing left to roll.
func TestRolloutWaitOldUpdateAndTimeout(t *testing.T) {
	before := ServiceSecrets{ID: "s1", UpdateState: UpdateRollbackCompleted, UpdateStartedAt: time.Unix(1000, 0)}
	eng := &fixedRollout{svc: ServiceSecrets{ID: "s1", UpdateState: UpdateRollbackCompleted, UpdateStartedAt: time.Unix(1000, 0)}}
	r := Rollout{Engine: eng, PollInterval: time.Millisecond, Timeout: 20 * time.Millisecond}
	var re *RolloutError
	if err := r.Wait(t.Context(), "s1", "web", before, onSecret("db-new")); !errors.As(err, &re) || re.State != "timeout" {
		t.Errorf("Wait on an earlier update's rollback = %v; want a timeout", err)
	}
	gone := &fixedRollout{err: ErrNotFound}
	r.Engine = gone
	if err := r.Wait(t.Context(), "s1", "web", before, onSecret("db-new")); err != nil {
		t.Errorf("Wait on a removed service = %v; want nil", err)
	}
}

type fixedRollout struct {
	svc ServiceSecrets
	err error
}

func (f *fixedRollout) ServiceSecrets(context.Context, string) (ServiceSecrets, error) {
	return f.svc, f.err
}
func (f *fixedRollout) TasksSecrets(context.Context, string) ([]TaskSecrets, error) { return nil, nil }
