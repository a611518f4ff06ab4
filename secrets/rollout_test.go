package secrets

import (
	"context"
	"errors"
	"testing"
	"time"
)

// swarmkitRollout is a service right after its update was written, as swarmkit has it: no update status and
// the old task still running until the updater starts (after startAfter inspections); then "updating" with
// the new task starting, then "paused" when the new task fails (failNew) or "completed".
type swarmkitRollout struct {
	startAfter int
	failNew    bool
	polls      int
	state      string
}

func (f *swarmkitRollout) InspectService(_ context.Context, id string) (Service, error) {
	f.polls++
	switch {
	case f.polls <= f.startAfter:
	case f.state == "":
		f.state = UpdateUpdating
	case f.state == UpdateUpdating && f.failNew:
		f.state = UpdatePaused
	case f.state == UpdateUpdating:
		f.state = UpdateCompleted
	}
	return Service{ID: id, Name: "web", Version: 11, UpdateState: f.state, UpdateStartedAt: time.Unix(2000, 0)}, nil
}

func (f *swarmkitRollout) ListTasks(_ context.Context, id string) ([]Task, error) {
	old := Task{ID: "t1", ServiceID: id, State: "running", DesiredState: "running", Secrets: []SecretRef{{SecretName: "db-old"}}}
	if f.state == "" {
		return []Task{old}, nil
	}
	old.State, old.DesiredState = "shutdown", "shutdown"
	nu := Task{ID: "t2", ServiceID: id, State: "running", DesiredState: "running", Secrets: []SecretRef{{SecretName: "db-new"}}}
	if f.state == UpdatePaused {
		nu.State, nu.DesiredState = "failed", "shutdown"
	}
	return []Task{old, nu}, nil
}

// TestRolloutWaitJudgesTheNewSpec: with no update status and the old task running, the secret rollout is
// not converged; it waits for the updater and reports the pause of a new task that fails.
func TestRolloutWaitJudgesTheNewSpec(t *testing.T) {
	// before: the service's previous update completed long ago
	before := Service{ID: "s1", Name: "web", Version: 10, UpdateState: UpdateCompleted, UpdateStartedAt: time.Unix(1000, 0)}
	onNew := func(tasks []Task) bool { return tasksOnVersion(tasks, "db-new") }
	for _, tc := range []struct {
		name       string
		startAfter int
		failNew    bool
		want       string // "" converged, else the RolloutError's state
	}{
		{"updater starts late, new task fails", 3, true, UpdatePaused},
		{"updater starts late, new task runs", 3, false, ""},
		{"updater at once, new task fails", 0, true, UpdatePaused},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &swarmkitRollout{startAfter: tc.startAfter, failNew: tc.failNew}
			r := Rollout{Engine: eng, PollInterval: time.Millisecond, Timeout: 5 * time.Second}
			err := r.Wait(t.Context(), "s1", "web", before, onNew)
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
