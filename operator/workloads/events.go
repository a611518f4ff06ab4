package workloads

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// reactFollowers bounds how many hardening rollouts one event reconcile follows at once: a stack deploy of
// a hundred services is hardened in one go (every spec first, then the rollouts), without a hundred pollers.
const reactFollowers = 16

// Settling: a service is hardened by an event only once its tasks run. An update that lands while the
// engine still starts a new service's first task (or a redeploy's new task) cancels that start, and the
// engine counts the cancelled task as a failed update (measured on the lab: "update paused due to failure
// or early termination of task"), so the hardening would be rolled back.
const (
	settlePoll    = 250 * time.Millisecond
	settleTimeout = 2 * time.Minute
)

// EventTask is Task with the engine's service events: a created or updated service is judged and, under
// mode enforce, hardened within seconds instead of at the next workloads.schedule, which stays as the
// backstop.
func (e *Enforcer) EventTask() operator.Task {
	t := e.Task()
	t.Events = []string{swarm.EventService}
	t.React = e.React
	return t
}

// React judges and enforces the services a batch of engine events names, and only those: observe (one
// service list), judge, plan as a pass does, then set every planned hardening first and follow the
// rollouts after, together. The controller's own updates come back as events too; they find the service
// already hardened (its finding passes), so nothing is done again: no loop. A removed service is not in the
// list: nothing to do. A failed read returns an error: the runtime retries with a full pass.
func (e *Enforcer) React(ctx context.Context, env operator.TaskEnv, ch operator.Changes) error {
	ids := ch.Of(swarm.EventService)
	if len(ids) == 0 {
		return nil
	}
	log := env.Logger().With("component", "workloads")
	o := Observe(ctx, e.Engine)
	if o.ServicesErr != nil {
		return fmt.Errorf("workloads reconcile of %d changed service(s): %w", len(ids), o.ServicesErr)
	}
	o.Services = slices.DeleteFunc(slices.Clone(o.Services), func(w swarm.Workload) bool {
		_, found := slices.BinarySearch(ids, w.ID)
		return !found
	})
	// A redeploy that dropped the hardening starts an update ("updating"). The plan skips services
	// mid-update (a person's rollout is not fought over); here the hardening supersedes that update at
	// once: the redeploy's spec plus the hardening is the spec its tasks already run, so the engine has
	// no task to replace and the service is left as it was before the redeploy. Waiting for the update to
	// end instead would restart every task twice.
	fresh := map[string]bool{}
	for i := range o.Services {
		switch o.Services[i].UpdateState {
		case swarm.UpdateUpdating:
			o.Services[i].UpdateState = ""
		case "":
			fresh[o.Services[i].ID] = true
		}
	}
	vs, err := Verdicts(o, e.Config)
	if err != nil {
		return fmt.Errorf("workloads reconcile: %w", err)
	}
	for _, v := range vs {
		fail, warn := 0, 0
		for _, f := range v.Findings {
			switch f.Status {
			case report.StatusFail:
				fail++
			case report.StatusWarn:
				warn++
			}
		}
		log.Debug("service judged", "service", v.Service.Name, "fail", fail, "warn", warn, "trigger", env.Reason)
	}
	p := PlanEnforcement(o, vs, e.Config, e.failedCopy())
	if p.NotSettable != "" || len(p.Actions) == 0 {
		for _, s := range p.Skipped {
			log.Info("workload enforcement skipped", "service", s.Service, "reason", s.Why)
		}
		log.Debug("changed services need nothing", "services", len(o.Services), "trigger", env.Reason)
		return nil
	}
	for _, s := range p.Skipped {
		log.Info("workload enforcement skipped", "service", s.Service, "reason", s.Why)
	}
	log.Info("hardening changed services", "services", len(p.Actions), "trigger", env.Reason)
	// Services that need hardening again were changed by someone else since the last hardening (the
	// controller's own update keeps passing): what was still under way for them (waiting for their tasks,
	// following a rollout) ends here, and this change is handled afresh.
	var immediate, created []Action
	marks := map[string]*following{}
	for _, a := range p.Actions {
		marks[a.Service.ID] = e.register(a.Service.ID)
		if fresh[a.Service.ID] {
			created = append(created, a)
		} else {
			immediate = append(immediate, a)
		}
	}
	type started struct {
		a      Action
		before swarm.ServiceSecrets
		entry  *swarm.Entry
	}
	var (
		errs []error
		todo []started
	)
	harden := func(ctx context.Context, a Action) (started, error) {
		before, entry, err := e.hardenOne(ctx, env, a)
		switch {
		case errors.Is(err, swarm.ErrConflict):
			log.Info("service changed under the enforcement; its next event or pass decides again", "service", a.Service.Name)
		case errors.Is(err, swarm.ErrNotFound):
			log.Info("service removed before it was hardened", "service", a.Service.Name)
		case err != nil:
			log.Warn("hardening a changed service failed; the next pass looks again", "service", a.Service.Name, "err", err)
			return started{}, err
		default:
			log.Info("hardening service", "service", a.Service.Name, "change", a.Change(), "trigger", env.Reason)
			return started{a, before, entry}, nil
		}
		return started{}, errSkipped
	}
	for _, a := range immediate {
		if err := env.CheckHolder(ctx); err != nil {
			return err
		}
		s, err := harden(ctx, a)
		if err == nil {
			todo = append(todo, s)
			continue
		}
		e.release(a.Service.ID, marks[a.Service.ID])
		if !errors.Is(err, errSkipped) {
			errs = append(errs, err)
		}
	}
	// New services wait for their tasks, and every rollout is followed, after this reconcile returns: the
	// loop's next events (a redeploy of the same stack, the next services of a long deploy) are not held
	// back by task start-ups or minute-long rollouts. Their results go to the ledger together.
	roll := e.rollout(env, log, "the other services of this change were followed on their own; ")
	env.Go(ctx, func(ctx context.Context) {
		var (
			mu      sync.Mutex
			entries []swarm.Entry
			wg      sync.WaitGroup
		)
		add := func(en swarm.Entry) { mu.Lock(); entries = append(entries, en); mu.Unlock() }
		sem := make(chan struct{}, reactFollowers)
		followIt := func(s started) {
			f := marks[s.a.Service.ID]
			wg.Go(func() {
				defer e.release(s.a.Service.ID, f)
				sem <- struct{}{}
				defer func() { <-sem }()
				fctx, stop := f.attach(ctx)
				defer stop()
				entry, err := e.followOne(fctx, env, roll, s.a, s.before, s.entry)
				if errors.Is(context.Cause(fctx), errSuperseded) && ctx.Err() == nil {
					entry.Result, entry.Details[DetailRollout] = swarm.ResultOK, "superseded: the service changed again before the rollout ended"
					delete(entry.Details, operator.DetailError)
					log.Info("hardening rollout superseded by a later change of the service; that change is judged on its own", "service", s.a.Service.Name)
					add(*entry)
					return
				}
				if entry != nil {
					add(*entry)
				}
				var re *swarm.RolloutError
				switch {
				case errors.As(err, &re):
					log.Error("workload hardening rollout failed", "service", s.a.Service.Name, "state", re.State, "err", err)
				case err != nil:
					log.Warn("workload hardening rollout not followed to its end; the next pass looks again", "service", s.a.Service.Name, "err", err)
				default:
					log.Info("hardened service", "service", s.a.Service.Name, "change", s.a.Change(), "rollout", "converged")
				}
			})
		}
		for _, s := range todo {
			followIt(s)
		}
		e.settle(ctx, log, created, marks, func(a Action) {
			if err := env.CheckHolder(ctx); err != nil {
				e.release(a.Service.ID, marks[a.Service.ID])
				return
			}
			if s, err := harden(ctx, a); err == nil {
				followIt(s)
			} else {
				e.release(a.Service.ID, marks[a.Service.ID])
			}
		})
		wg.Wait()
		if rerr := operator.Record(ctx, e.Ledger, entries...); rerr != nil {
			log.Error("recording the workload enforcement in the ledger failed", "err", rerr)
		}
	})
	return errors.Join(errs...)
}

// settle waits (one task list per round) until the tasks the engine means to run for each new service run,
// and hands each service to ready as soon as they do; a service changed again meanwhile is left to that
// change's reconcile; one whose tasks do not run within settleTimeout is left to the next pass.
func (e *Enforcer) settle(ctx context.Context, log *slog.Logger, actions []Action, marks map[string]*following, ready func(Action)) {
	deadline := time.Now().Add(settleTimeout)
	waiting := slices.Clone(actions)
	for len(waiting) > 0 {
		waiting = slices.DeleteFunc(waiting, func(a Action) bool { return marks[a.Service.ID].isSuperseded() })
		tasks, err := e.Engine.TasksSecrets(ctx, "")
		if err != nil {
			log.Warn("listing tasks to see whether new services run failed; retrying", "err", err)
		} else {
			running, starting := map[string]bool{}, map[string]bool{}
			for _, t := range tasks {
				if t.DesiredState != "running" {
					continue
				}
				if t.State == "running" {
					running[t.ServiceID] = true
				} else {
					starting[t.ServiceID] = true
				}
			}
			waiting = slices.DeleteFunc(waiting, func(a Action) bool {
				noTasks := a.Service.Replicas != nil && *a.Service.Replicas == 0
				if starting[a.Service.ID] || (!running[a.Service.ID] && !noTasks) {
					return false // starting, or its tasks not even created yet
				}
				ready(a)
				return true
			})
		}
		if len(waiting) == 0 {
			return
		}
		if !time.Now().Before(deadline) || ctx.Err() != nil {
			for _, a := range waiting {
				log.Warn("new service's tasks did not run in time; workloads.schedule's pass hardens it", "service", a.Service.Name, "waited", settleTimeout)
				e.release(a.Service.ID, marks[a.Service.ID])
			}
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(settlePoll):
		}
	}
}

var (
	errSuperseded = errors.New("the service changed again")
	errSkipped    = errors.New("changed or removed meanwhile")
)

// following is the work under way for one service's hardening (waiting for its tasks, following its
// rollout); a later change of the service supersedes it.
type following struct {
	mu         sync.Mutex
	superseded bool
	cancel     context.CancelCauseFunc
}

func (f *following) isSuperseded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.superseded
}

// attach is the context of the follow, cancelled when the work is superseded.
func (f *following) attach(ctx context.Context) (context.Context, func()) {
	fctx, cancel := context.WithCancelCause(ctx)
	f.mu.Lock()
	f.cancel = cancel
	if f.superseded {
		cancel(errSuperseded)
	}
	f.mu.Unlock()
	return fctx, func() { cancel(nil) }
}

// register supersedes what was under way for a service and records the new work.
func (e *Enforcer) register(id string) *following {
	f := &following{}
	e.mu.Lock()
	defer e.mu.Unlock()
	if old := e.following[id]; old != nil {
		old.mu.Lock()
		old.superseded = true
		if old.cancel != nil {
			old.cancel(errSuperseded)
		}
		old.mu.Unlock()
	}
	if e.following == nil {
		e.following = map[string]*following{}
	}
	e.following[id] = f
	return f
}

// release forgets f once its work is over (unless a later change replaced it already).
func (e *Enforcer) release(id string, f *following) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.following[id] == f {
		delete(e.following, id)
	}
}
