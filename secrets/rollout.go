package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// RolloutEngine is what following a service update needs: the service's update status and its tasks.
type RolloutEngine interface {
	// InspectService returns one service; a missing one is ErrEngineNotFound.
	InspectService(ctx context.Context, id string) (Service, error)
	// ListTasks returns the tasks of one service.
	ListTasks(ctx context.Context, serviceID string) ([]Task, error)
}

// Rollout follows one service update that was just written to convergence. It is the one rollout of
// swarmguard: the secret sync uses it for every service it repoints and the workload hardening for every
// service it changes. The service's own update config (order, parallelism, failure action) drives the
// update; Rollout only watches it and says how it ended.
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
// only an update that started after it counts.
//
// An empty update state is not "nothing to wait for". swarmkit resets UpdateStatus to nil on every
// service update (controlapi UpdateService) and its updater sets "updating" only once it starts, and only
// if some task's spec differs from the new one (updater.Run: no dirty slot, no status). Until then the old
// tasks keep running. So with no update status, converged must judge the tasks against the new spec: true
// only when every task meant to run runs and carries the change just written (the secret versions, the
// hardening), never because tasks merely run. Old tasks make it false, so Wait keeps polling until the
// updater starts (then the update state decides) or the tasks are of the new spec. A replicated service
// with 0 replicas has converged when its spec is written.
func (r Rollout) Wait(ctx context.Context, id, name string, before Service, converged func([]Task) bool) error {
	poll := cmpOr(r.PollInterval, DefaultPollInterval)
	timeout := cmpOr(r.Timeout, DefaultRolloutTimeout)
	deadline := r.now().Add(timeout)
	for {
		svc, err := r.Engine.InspectService(ctx, id)
		switch {
		case errors.Is(err, ErrEngineNotFound):
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
				tasks, err := r.Engine.ListTasks(ctx, id)
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
