package workloads

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// Ledger detail keys of a workload entry.
const (
	DetailService    = "service"
	DetailChange     = "change"
	DetailRollout    = "rollout"
	DetailRolledBack = "rolled_back"
	// DetailEnginePaused: the engine paused the update on a task of the previous spec the hardening ended
	// (its message); the hardened spec itself runs.
	DetailEnginePaused = "engine_paused"
	// DetailLeftToUndo says what a person must undo by hand: the lease was lost before the rollback.
	DetailLeftToUndo = "left_to_undo"
)

// Action is one service the enforcement changes.
type Action struct {
	Service   swarm.Workload
	Hardening swarm.Hardening
}

// Change names what the action sets.
func (a Action) Change() string { return describeFix(a.Hardening) }

// Skip is an opted-in service the enforcement leaves alone, and why.
type Skip struct {
	Service string
	Why     string
}

// Plan is what one enforcement pass would do.
type Plan struct {
	// NotSettable is set when the engine cannot keep the privileges (API below 1.44): nothing is done.
	NotSettable string
	Actions     []Action
	Skipped     []Skip
}

// PlanEnforcement decides, from the verdicts, what enforcement does: nothing under mode audit; under mode
// enforce, on engines with API 1.44+, every service labelled swarmguard.workloads.enforce=true (every
// service with enforce_all) whose workloads.privileges finding fails or warns gets that finding's Fix (the
// fix the report names as fact FactEnforceable: no-new-privileges, seccomp default where it is unconfined),
// unless it is validly exempt from workloads.privileges, the finding has no fix enforcement can set
// (AppArmor), it is a plugin service, mid-update, or its last enforcement failed on this very spec
// (failed: service ID -> SpecKey of the spec it failed on); those are skipped with the reason.
func PlanEnforcement(o Observation, vs []Verdict, c config.WorkloadsConfig, failed map[string]string) Plan {
	var p Plan
	if c.Mode != config.ModeEnforce {
		return p
	}
	if !o.PrivilegesSettable() {
		p.NotSettable = fmt.Sprintf("not settable on this engine: Engine API %s is below %s, which has no seccomp, AppArmor or "+
			"no-new-privileges in a service spec; nothing was changed", orNone(o.APIVersion), swarm.PrivilegesMinAPI)
		return p
	}
	for _, v := range vs {
		s := v.Service
		if !v.Enforce && !c.EnforceAll {
			continue
		}
		f := v.Findings[CheckPrivileges]
		switch {
		case !s.Container:
			p.Skipped = append(p.Skipped, Skip{s.Name, "plugin service: no container spec"})
		case f.Exempt:
			p.Skipped = append(p.Skipped, Skip{s.Name, "exempt from " + CheckPrivileges + ": " + v.Reason})
		case f.Status != report.StatusFail && f.Status != report.StatusWarn:
			// the report passes it: nothing to change
		case f.Fix == (swarm.Hardening{}):
			p.Skipped = append(p.Skipped, Skip{s.Name, f.Note + ": enforcement sets only no-new-privileges and seccomp default; " +
				"set AppArmor in the service spec, or exempt it from " + CheckPrivileges + " with a reason"})
		case s.UpdateState == swarm.UpdateUpdating || s.UpdateState == swarm.UpdateRollbackStarted:
			p.Skipped = append(p.Skipped, Skip{s.Name, "an update is in progress (" + s.UpdateState + "); the next pass looks again"})
		case failed[s.ID] != "" && failed[s.ID] == SpecKey(s):
			p.Skipped = append(p.Skipped, Skip{s.Name, "its hardening rollout failed on this spec; fix the service (any change to it lets swarmguard try again)"})
		default:
			p.Actions = append(p.Actions, Action{Service: s, Hardening: f.Fix})
		}
	}
	return p
}

// Engine is what the workload task reads and writes. *swarm.Client satisfies it.
type Engine interface {
	ObserveEngine
	HardenService(ctx context.Context, id string, version uint64, h swarm.Hardening) error
	RollbackService(ctx context.Context, id string) error
	ServiceSecrets(ctx context.Context, id string) (swarm.ServiceSecrets, error)
	TasksSecrets(ctx context.Context, serviceID string) ([]swarm.TaskSecrets, error)
}

var _ Engine = (*swarm.Client)(nil)

// tasksHardened returns the rollout's convergence test for a service with no update status: every task
// meant to run (desired running, or ready: a stop-first update's new task) is running with h in its spec,
// and at least one is. Running alone says nothing: right after the update the engine has no update status
// and the old tasks, without h, still run (see swarm.Rollout.Wait). HardenService sets seccomp default only
// where it was unconfined, so a task of the new spec is one whose seccomp mode is not unconfined.
func tasksHardened(h swarm.Hardening) func([]swarm.TaskSecrets) bool {
	return func(tasks []swarm.TaskSecrets) bool {
		return swarm.TasksRunning(tasks, func(t swarm.TaskSecrets) bool { return taskHardened(h, t) })
	}
}

// taskHardened: t's spec carries h.
func taskHardened(h swarm.Hardening, t swarm.TaskSecrets) bool {
	return (!h.NoNewPrivileges || t.NoNewPrivileges) && (!h.SeccompDefault || t.SeccompMode != seccompUnconfined)
}

// pausedOnPreviousSpec: the update paused on a task (the engine names it last in its message: "update
// paused due to failure or early termination of task ID") that did not run the hardened spec. A task not
// found, or tasks that cannot be read, count as the new spec's failure.
func (e *Enforcer) pausedOnPreviousSpec(ctx context.Context, a Action, message string) bool {
	i := strings.LastIndex(message, "task ")
	if i < 0 {
		return false
	}
	id := strings.TrimSpace(message[i+len("task "):])
	if id == "" {
		return false
	}
	tasks, err := e.Engine.TasksSecrets(ctx, a.Service.ID)
	if err != nil {
		return false
	}
	for _, t := range tasks {
		if t.ID == id {
			return !taskHardened(a.Hardening, t)
		}
	}
	return false
}

// waitTasksHardened polls the service's tasks until every one meant to run runs the hardened spec, within
// the rollout's timeout.
func (e *Enforcer) waitTasksHardened(ctx context.Context, roll swarm.Rollout, a Action) error {
	timeout, poll := cmp.Or(roll.Timeout, swarm.DefaultRolloutTimeout), cmp.Or(roll.PollInterval, swarm.DefaultPollInterval)
	after := roll.After
	if after == nil {
		after = time.After
	}
	deadline := after(timeout)
	for {
		if tasks, err := e.Engine.TasksSecrets(ctx, a.Service.ID); err == nil && tasksHardened(a.Hardening)(tasks) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("service %s: tasks not running the hardened spec within %s", a.Service.Name, timeout)
		case <-after(poll):
		}
	}
}

// seccompUnconfined is the seccomp mode HardenService replaces with the default profile.
const seccompUnconfined = "unconfined"

// Enforcer runs the workload passes; it remembers the services whose hardening rollout failed so a pass
// does not roll them back and forth.
type Enforcer struct {
	Engine Engine
	Ledger operator.LedgerStore
	Config config.WorkloadsConfig
	// RolloutTimeout bounds the wait for one service (0: swarm.DefaultRolloutTimeout); PollInterval and
	// After are the rollout's clock (0/nil: the defaults).
	RolloutTimeout time.Duration
	PollInterval   time.Duration
	After          func(time.Duration) <-chan time.Time
	// Gauges, when not nil, gets the domain's metrics (Gauges) and compliance gauges (its report section's
	// check statuses) from each pass's own observation.
	Gauges func([]report.Gauge)

	mu     sync.Mutex
	failed map[string]string
	// following cancels the background follow of a service's hardening rollout (React): a later change to
	// the service supersedes it, and its outcome is no longer the hardening's to judge (or roll back).
	following map[string]*following
}

// SpecKey identifies a service's spec as the workload checks read it, without its version and update
// status: a failed hardening is remembered by the spec it failed on, not by the service's version, because
// the engine moves the version on its own after a rollback (the rollback and every update-status change
// it makes are writes), while the spec it returns to is the one the enforcement saw.
func SpecKey(w swarm.Workload) string {
	w.Version, w.UpdateState, w.UpdateMessage = 0, "", ""
	b, err := json.Marshal(w)
	if err != nil {
		return "unreadable spec of " + w.ID // never equal to a spec's key: the service is tried again
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (e *Enforcer) failedCopy() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]string, len(e.failed))
	for k, v := range e.failed {
		out[k] = v
	}
	return out
}

func (e *Enforcer) setFailed(w swarm.Workload) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed == nil {
		e.failed = map[string]string{}
	}
	e.failed[w.ID] = SpecKey(w)
}

// Task is the controller's workload pass on workloads.schedule: observe, judge, log the findings and,
// under mode enforce, harden the opted-in services one by one, stopping at the first rollout that fails.
func (e *Enforcer) Task() operator.Task {
	return operator.Task{Name: "workloads", Schedule: e.Config.Schedule, Run: e.Pass}
}

// Pass is one workload pass.
func (e *Enforcer) Pass(ctx context.Context, env operator.TaskEnv) error {
	log := env.Logger().With("component", "workloads")
	out := env.Output()
	o := Observe(ctx, e.Engine)
	if e.Gauges != nil && !env.DryRun {
		e.Gauges(SectionGauges(o, e.Config))
	}
	vs, err := Verdicts(o, e.Config)
	if err != nil {
		return fmt.Errorf("workloads pass: %w", err)
	}
	for _, b := range FindingBars(vs) {
		if b.Fail+b.Warn > 0 {
			log.Debug("workload check not passing", "check", b.Check, "fail", b.Fail, "warn", b.Warn, "services", b.Total)
		}
	}
	p := PlanEnforcement(o, vs, e.Config, e.failedCopy())
	if env.DryRun {
		// The dry run prints the plan the apply below follows, action by action.
		operator.PrintPlan(env, LedgerPlan(p, e.Config, len(vs)))
		return nil
	}
	if e.Config.Mode != config.ModeEnforce {
		fmt.Fprintf(out, "workloads: mode audit, %d service(s) judged; nothing to enforce\n", len(vs))
		return nil
	}
	if p.NotSettable != "" {
		log.Info("workload enforcement not possible", "reason", p.NotSettable)
		fmt.Fprintf(out, "workloads: %s\n", p.NotSettable)
		return nil
	}
	for _, s := range p.Skipped {
		log.Info("workload enforcement skipped", "service", s.Service, "reason", s.Why)
		fmt.Fprintf(out, "workloads: skip %s: %s\n", s.Service, s.Why)
	}
	if len(p.Actions) == 0 {
		fmt.Fprintln(out, "workloads: every opted-in service is hardened")
		return nil
	}
	var entries []swarm.Entry
	defer func() {
		if rerr := operator.Record(ctx, e.Ledger, entries...); rerr != nil {
			log.Error("recording the workload enforcement in the ledger failed", "err", rerr)
		}
	}()
	roll := e.rollout(env, log, "no further service was touched; ")
	for _, a := range p.Actions {
		if err := env.CheckHolder(ctx); err != nil {
			return err
		}
		entry, err := e.enforceOne(ctx, env, roll, a)
		if entry != nil {
			entries = append(entries, *entry)
		}
		var re *swarm.RolloutError
		switch {
		case errors.Is(err, swarm.ErrConflict):
			log.Info("service changed under the enforcement; the next pass decides again", "service", a.Service.Name)
			continue
		case errors.As(err, &re):
			log.Error("workload hardening rollout failed", "service", a.Service.Name, "state", re.State, "err", err)
			fmt.Fprintf(out, "workloads: %s: %v\n", a.Service.Name, err)
			return err
		case err != nil:
			return err
		}
		log.Info("hardened service", "service", a.Service.Name, "change", a.Change())
		fmt.Fprintf(out, "workloads: set %s on service %s (rollout converged)\n", a.Change(), a.Service.Name)
	}
	return nil
}

// rollout is how the enforcement follows one service's hardening; what names what else was (not) touched.
func (e *Enforcer) rollout(env operator.TaskEnv, log *slog.Logger, what string) swarm.Rollout {
	return swarm.Rollout{Engine: e.Engine, Log: log, Now: env.Now, After: e.After, PollInterval: e.PollInterval,
		Timeout: e.RolloutTimeout, Next: "the service was returned to its previous spec and " + what +
			"fix the service (or exempt it from workloads.privileges with a reason), then the next change to it lets swarmguard try again"}
}

func (e *Enforcer) enforceOne(ctx context.Context, env operator.TaskEnv, roll swarm.Rollout, a Action) (*swarm.Entry, error) {
	before, entry, err := e.hardenOne(ctx, env, a)
	if err != nil {
		return nil, err
	}
	return e.followOne(ctx, env, roll, a, before, entry)
}

// hardenOne sets a's hardening on the service's spec (compare-and-swap on the version the plan read) and
// returns the service as it was before and the ledger entry of the change, to be completed by followOne.
func (e *Enforcer) hardenOne(ctx context.Context, env operator.TaskEnv, a Action) (swarm.ServiceSecrets, *swarm.Entry, error) {
	before, err := e.Engine.ServiceSecrets(ctx, a.Service.ID)
	if err != nil {
		return before, nil, fmt.Errorf("inspecting service %s: %w", a.Service.Name, err)
	}
	if before.Version != a.Service.Version {
		return before, nil, fmt.Errorf("service %s: %w", a.Service.Name, swarm.ErrConflict)
	}
	if err := e.Engine.HardenService(ctx, a.Service.ID, a.Service.Version, a.Hardening); err != nil {
		return before, nil, err
	}
	crashpoint.At("workload.after-harden") // the new spec is in; its rollout neither followed nor recorded
	entry := &swarm.Entry{Kind: swarm.KindWorkload, At: env.Time().UTC(), Actor: env.Actor, Reason: reasonOr(env.Reason),
		Result: swarm.ResultOK, Details: map[string]string{DetailService: a.Service.Name, DetailChange: a.Change(), DetailRollout: "converged"}}
	return before, entry, nil
}

// followOne follows the rollout of a hardening hardenOne made; a failed one is rolled back (while the lease
// holds) and remembered by the spec it failed on.
func (e *Enforcer) followOne(ctx context.Context, env operator.TaskEnv, roll swarm.Rollout, a Action, before swarm.ServiceSecrets, entry *swarm.Entry) (*swarm.Entry, error) {
	werr := roll.Wait(ctx, a.Service.ID, a.Service.Name, before, tasksHardened(a.Hardening))
	var re *swarm.RolloutError
	if errors.As(werr, &re) && re.State == swarm.UpdatePaused && e.pausedOnPreviousSpec(ctx, a, re.Message) {
		// The engine paused on a task of the previous spec that this hardening ended while it started (a
		// `docker stack deploy` landing during an earlier hardening's rollout, then hardened again): the
		// new spec did not fail. The paused update leaves the spec in place and the engine runs the slot's
		// next task from it; converged once every task runs hardened. Rolling back would undo a hardening
		// that works.
		if terr := e.waitTasksHardened(ctx, roll, a); terr == nil {
			entry.Details[DetailRollout] = "converged"
			entry.Details[DetailEnginePaused] = re.Message
			return entry, nil
		}
	}
	if errors.As(werr, &re) {
		entry.Result, entry.Details[DetailRollout] = swarm.ResultFailed, re.State
		entry.Details[operator.DetailError] = operator.ShortErr(werr)
		if re.State == swarm.UpdatePaused || re.State == "timeout" {
			// The engine kept the new spec (failure action pause, or still going): return to the old one,
			// but only while the lease holds; otherwise say what is left to undo.
			if herr := env.CheckHolder(ctx); herr != nil {
				entry.Details[DetailRolledBack] = "false: the lease no longer holds: " + operator.ShortErr(herr)
				entry.Details[DetailLeftToUndo] = "roll service " + a.Service.Name + " back to its previous spec (docker service rollback " + a.Service.Name + ")"
			} else if rb := e.Engine.RollbackService(ctx, a.Service.ID); rb != nil {
				entry.Details[DetailRolledBack] = "false: " + operator.ShortErr(rb)
			} else {
				entry.Details[DetailRolledBack] = "true"
			}
		} else {
			entry.Details[DetailRolledBack] = "by the engine (" + re.State + ")"
		}
		// Remembered by the spec it failed on: the one read before the hardening, which a rollback (ours or
		// the engine's) returns to. Left on the hardened spec (no rollback), the service passes the check.
		e.setFailed(a.Service)
		return entry, werr
	}
	if werr != nil {
		entry.Result, entry.Details[DetailRollout] = swarm.ResultFailed, "not followed"
		entry.Details[operator.DetailError] = operator.ShortErr(werr)
	}
	return entry, werr
}

func reasonOr(r string) string {
	if r == "" {
		return "workloads.mode enforce: no-new-privileges on an opted-in service"
	}
	return r
}
