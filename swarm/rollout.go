package swarm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Update states a service can report (the engine's UpdateStatus.State).
const (
	UpdateUpdating          = "updating"
	UpdatePaused            = "paused"
	UpdateCompleted         = "completed"
	UpdateRollbackStarted   = "rollback_started"
	UpdateRollbackPaused    = "rollback_paused"
	UpdateRollbackCompleted = "rollback_completed"
)

// Tunables of a rollout.
const (
	// DefaultPollInterval is how often a rollout is checked; Docker's own `service update` progress polls
	// about this often.
	DefaultPollInterval = time.Second
	// DefaultRolloutTimeout bounds the wait for one service to converge; a service whose update config is
	// slower needs a longer one.
	DefaultRolloutTimeout = 5 * time.Minute
)

// RolloutEngine is what following a service update needs: the service's update status and its tasks.
// *Client satisfies it.
type RolloutEngine interface {
	// ServiceSecrets returns one service; a missing one is ErrNotFound.
	ServiceSecrets(ctx context.Context, id string) (ServiceSecrets, error)
	// TasksSecrets returns the tasks of one service.
	TasksSecrets(ctx context.Context, serviceID string) ([]TaskSecrets, error)
}

var _ RolloutEngine = (*Client)(nil)

// RolloutError says a service's rollout did not complete.
type RolloutError struct {
	Service string
	State   string // the engine's update state, or "timeout"
	Message string
	// Next says what was kept and what to do; empty means the secret sync's own words.
	Next string
	// Earlier: the rollout failed in an earlier pass (another process's, read from the ledger); Message is
	// that pass's error as it was recorded.
	Earlier bool
}

func (e *RolloutError) Error() string {
	s := fmt.Sprintf("rollout of service %s ended %s", e.Service, e.State)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Next != "" {
		return s + "; " + e.Next
	}
	return s + "; the old secret is kept and no further service of this mapping was touched; fix the service, then run `swarmguard rotate secret`"
}

// Rollout follows one service update that was just written to convergence. It is the one rollout of
// swarmguard: the secret sync uses it for every service it repoints, the workload hardening for every
// service it changes and the network remediation for every service it moves. The service's own update
// config (order, parallelism, failure action) drives the update; Rollout only watches it and says how it
// ended.
type Rollout struct {
	Engine RolloutEngine
	Log    *slog.Logger
	// Now and After are the clock; nil means the real one.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// PollInterval and Timeout; 0 means DefaultPollInterval and DefaultRolloutTimeout.
	PollInterval time.Duration
	Timeout      time.Duration
	// Next is the RolloutError's advice (what was kept, what to do); empty: the secret sync's.
	Next string
}

// Wait polls until the service's update completed (nil) or was paused, rolled back or did not converge
// within the timeout (*RolloutError). before is the service as read right before the update was written:
// only an update that started after it counts. A zero before (no update status) takes any update state
// as this update's: what a caller uses when its write changed nothing (the update, if any, is an earlier
// run's).
//
// An empty update state is not "nothing to wait for". swarmkit resets UpdateStatus to nil on every
// service update (controlapi UpdateService) and its updater sets "updating" only once it starts, and only
// if some task's spec differs from the new one (updater.Run: no dirty slot, no status). Until then the old
// tasks keep running. So with no update status, converged must judge the tasks against the new spec: true
// only when every task meant to run runs and carries the change just written (the secret versions, the
// hardening, the networks), never because tasks merely run. Old tasks make it false, so Wait keeps polling
// until the updater starts (then the update state decides) or the tasks are of the new spec. While the
// update is "updating" (its monitor period included) it has not converged, whatever the tasks look like. A
// replicated service with 0 replicas has converged when its spec is written.
func (r Rollout) Wait(ctx context.Context, id, name string, before ServiceSecrets, converged func([]TaskSecrets) bool) error {
	poll := cmpOr(r.PollInterval, DefaultPollInterval)
	timeout := cmpOr(r.Timeout, DefaultRolloutTimeout)
	deadline := r.now().Add(timeout)
	for {
		svc, err := r.Engine.ServiceSecrets(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil // removed meanwhile: nothing left to roll
		case err != nil:
			r.log().Warn("checking rollout failed, will retry", "service", name, "err", err)
		default:
			fresh := before.UpdateState == "" || svc.UpdateStartedAt.After(before.UpdateStartedAt)
			switch svc.UpdateState {
			case UpdatePaused, UpdateRollbackStarted, UpdateRollbackPaused, UpdateRollbackCompleted:
				if fresh {
					return &RolloutError{Service: name, State: svc.UpdateState, Message: svc.UpdateMessage, Next: r.Next}
				}
			case UpdateCompleted:
				if fresh {
					return nil
				}
			case "":
				if svc.Replicas != nil && *svc.Replicas == 0 {
					return nil // no tasks to roll: the spec is all there is
				}
				tasks, err := r.Engine.TasksSecrets(ctx, id)
				if err == nil && converged(tasks) {
					return nil
				}
			}
		}
		if !r.now().Before(deadline) {
			return &RolloutError{Service: name, State: "timeout", Message: fmt.Sprintf("not converged within %s", timeout), Next: r.Next}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for service %s: %w", name, ctx.Err())
		case <-r.after(poll):
		}
	}
}

func (r Rollout) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r Rollout) after(d time.Duration) <-chan time.Time {
	if r.After != nil {
		return r.After(d)
	}
	return time.After(d)
}

func (r Rollout) log() *slog.Logger {
	if r.Log != nil {
		return r.Log
	}
	return slog.New(slog.DiscardHandler)
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// TasksRunning is the convergence test of tasks that must carry the new spec: every task meant to run
// (desired running, or ready: a stop-first update's new task waiting for the old one to stop) is running
// and newSpec says it is of the new spec, and at least one is.
func TasksRunning(tasks []TaskSecrets, newSpec func(TaskSecrets) bool) bool {
	n := 0
	for _, t := range tasks {
		if t.DesiredState != "running" && t.DesiredState != "ready" {
			continue
		}
		if t.State != "running" || !newSpec(t) {
			return false
		}
		n++
	}
	return n > 0
}
