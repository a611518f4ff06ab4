package workloads

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/secrets"
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
	settleTimeout = 30 * time.Second
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
		case secrets.UpdateUpdating:
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
	// controller's own update keeps passing): the follow of that hardening's rollout ends here.
	changed := make([]string, 0, len(p.Actions))
	for _, a := range p.Actions {
		changed = append(changed, a.Service.ID)
	}
	e.supersede(changed)
	var actions, created []Action
	for _, a := range p.Actions {
		if fresh[a.Service.ID] {
			created = append(created, a)
		} else {
			actions = append(actions, a)
		}
	}
	settled, err := e.settle(ctx, created)
	if err != nil {
		return err
	}
	actions = append(actions, settled...)
	for _, a := range p.Actions {
		if !slices.ContainsFunc(actions, func(b Action) bool { return b.Service.ID == a.Service.ID }) {
			log.Info("service's tasks did not come up; the next pass or change looks again", "service", a.Service.Name, "waited", settleTimeout)
		}
	}

	type started struct {
		a      Action
		before secrets.Service
		entry  *swarm.Entry
	}
	var (
		errs []error
		todo []started
	)
	for _, a := range actions {
		if err := env.CheckHolder(ctx); err != nil {
			return err
		}
		before, entry, err := e.hardenOne(ctx, env, a)
		switch {
		case errors.Is(err, swarm.ErrConflict):
			log.Info("service changed under the enforcement; its next event or pass decides again", "service", a.Service.Name)
			continue
		case errors.Is(err, swarm.ErrNotFound):
			log.Info("service removed before it was hardened", "service", a.Service.Name)
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		log.Info("hardening service", "service", a.Service.Name, "change", a.Change(), "trigger", env.Reason)
		todo = append(todo, started{a, before, entry})
	}
	// The rollouts are followed after this reconcile returns, so the loop's next events (a redeploy of the
	// same stack, the next services of a long deploy) are not held back by a minute-long rollout; their
	// results go to the ledger together.
	roll := e.rollout(env, log, "the other services of this change were followed on their own; ")
	env.Go(ctx, func(ctx context.Context) {
		var (
			mu      sync.Mutex
			entries []swarm.Entry
			wg      sync.WaitGroup
		)
		add := func(en swarm.Entry) { mu.Lock(); entries = append(entries, en); mu.Unlock() }
		sem := make(chan struct{}, reactFollowers)
		for _, s := range todo {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				fctx, done := e.follow(ctx, s.a.Service.ID)
				defer done()
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
				var re *secrets.RolloutError
				switch {
				case errors.As(err, &re):
					log.Error("workload hardening rollout failed", "service", s.a.Service.Name, "state", re.State, "err", err)
				case err != nil:
					log.Warn("workload hardening rollout not followed to its end; the next pass looks again", "service", s.a.Service.Name, "err", err)
				default:
					log.Info("hardened service", "service", s.a.Service.Name, "change", s.a.Change(), "rollout", "converged")
				}
			}()
		}
		wg.Wait()
		if rerr := operator.Record(ctx, e.Ledger, entries...); rerr != nil {
			log.Error("recording the workload enforcement in the ledger failed", "err", rerr)
		}
	})
	return errors.Join(errs...)
}

// settle (for services never updated: new ones) waits until every task the engine means to run for the actions' services runs (or the service has
// none), with one task list per round, and returns the actions whose services settled within settleTimeout.
func (e *Enforcer) settle(ctx context.Context, actions []Action) ([]Action, error) {
	deadline := time.Now().Add(settleTimeout)
	waiting := slices.Clone(actions)
	var ready []Action
	for {
		tasks, err := e.Engine.TasksSecrets(ctx, "")
		if err != nil {
			return nil, fmt.Errorf("listing tasks to see whether changed services are up: %w", err)
		}
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
			ready = append(ready, a)
			return true
		})
		if len(waiting) == 0 || !time.Now().Before(deadline) {
			return ready, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(settlePoll):
		}
	}
}

var errSuperseded = errors.New("the service changed again")

// supersede cancels the background follow of the services that changed again.
func (e *Enforcer) supersede(ids []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		if f := e.following[id]; f != nil {
			f.cancel(errSuperseded)
			delete(e.following, id)
		}
	}
}

type following struct{ cancel context.CancelCauseFunc }

// follow is the context of the background follow of one service's hardening, cancelled by supersede.
func (e *Enforcer) follow(ctx context.Context, id string) (context.Context, func()) {
	fctx, cancel := context.WithCancelCause(ctx)
	f := &following{cancel}
	e.mu.Lock()
	if e.following == nil {
		e.following = map[string]*following{}
	}
	e.following[id] = f
	e.mu.Unlock()
	return fctx, func() {
		e.mu.Lock()
		if e.following[id] == f {
			delete(e.following, id)
		}
		e.mu.Unlock()
		cancel(nil)
	}
}
