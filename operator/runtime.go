package operator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// Runtime tunables.
const (
	// DefaultRetryBase and DefaultRetryMax bound the backoff of a loop whose pass failed: 10 s, 20 s, 40 s, ...
	// up to 10 minutes, each with jitter, so a broken Vault or engine is not hammered and replicas spread out.
	DefaultRetryBase = 10 * time.Second
	DefaultRetryMax  = 10 * time.Minute
	// DefaultStopGrace is how long running passes may take to finish their step on SIGTERM; the lease is
	// released after, and the whole shutdown stays within the 10 s a stack's stop_grace_period gives.
	DefaultStopGrace = 5 * time.Second
	// releaseTimeout bounds the release of the lease at shutdown.
	releaseTimeout = 2 * time.Second
	// passCancelWait is how long a pass cancelled at the stop deadline has to return (every wait in a pass
	// selects on its context, so it takes milliseconds); after it the lease is released anyway, keeping the
	// shutdown (grace 5 s + 1 s + release 2 s + HTTP and audit 1 s each) within the stack's 10 s.
	passCancelWait = time.Second
	// DefaultReadinessInterval is how often the runtime checks the engine and the configuration for /readyz,
	// which then answers from memory: a probe, or anyone hammering the port, never costs an engine call.
	DefaultReadinessInterval = 5 * time.Second
	// readinessEngineTimeout bounds one engine check, well inside the interval.
	readinessEngineTimeout = 3 * time.Second
	// engineNotChecked is the engine's state before the first check.
	engineNotChecked = "not checked yet"
)

// Triggers of a pass, logged with it. The ledger reason is the domain's own ("scheduled: worker token older
// than 720h"): the runtime leaves TaskEnv.Reason empty.
const (
	TriggerScheduled = "scheduled"
	TriggerTakeover  = "lease taken (start-up or takeover): checks missed meanwhile run now"
	TriggerRetry     = "retry after a failed pass"
)

// Backoff computes the delay before retrying a loop after consecutive failures.
type Backoff struct {
	Base, Max time.Duration
}

// Delay is Base doubled per consecutive failure beyond the first, capped at Max, then jittered into
// [d/2, d] (equal jitter) so loops and replicas do not retry in step.
func (b Backoff) Delay(failures int) time.Duration {
	if b.Base <= 0 {
		b.Base = DefaultRetryBase
	}
	if b.Max <= 0 {
		b.Max = DefaultRetryMax
	}
	d := b.Base
	for i := 1; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// RuntimeOptions configure the controller.
type RuntimeOptions struct {
	// Store holds the lease (the engine); LeaseName and TTL come from lease.name and lease.ttl.
	Store     LeaseStore
	LeaseName string
	TTL       time.Duration
	// Node is this replica's swarm node ID; Instance tells processes on one node apart (random when empty).
	Node, Instance string
	// Tasks are the registered domain loops; each gets its own schedule and backoff.
	Tasks []Task
	// Ledger is read after each pass for swarmguard_last_action_timestamp_seconds (the actions themselves are
	// audited when they happen, through the auditor each pass's context carries). Nil: no such metrics.
	Ledger LedgerStore
	// Engine checks that the engine answers (readiness); ConfigProblems re-checks the configuration.
	Engine         func(ctx context.Context) error
	ConfigProblems func() config.Problems
	// ReadinessInterval paces those checks; 0 means DefaultReadinessInterval.
	ReadinessInterval time.Duration
	Metrics           *Metrics
	Audit             *audit.Auditor
	Log               *slog.Logger
	Now               func() time.Time
	Backoff           Backoff
	StopGrace         time.Duration
	// Events is the engine's event stream, followed by the holder for the tasks that name event types
	// (Task.Events); nil: schedules only. EventQuiet and EventMaxWait shape the coalescing (0: the defaults).
	Events       EventSource
	EventQuiet   time.Duration
	EventMaxWait time.Duration
}

// Runtime is the controller of `swarmguard run`: the lease, one independent loop per task on its own cron
// schedule, metrics and the audit trail. Only the lease holder runs passes; the others stand by.
type Runtime struct {
	opts  RuntimeOptions
	actor string
	log   *slog.Logger
	lease *Lease
	loops []*loop
	act   activity

	passCtx context.Context // passes run with it; cancelled only when the stop grace runs out

	mu       sync.Mutex
	stopping bool
	passes   sync.WaitGroup
	prevRole string
	prevHold string

	ledgerMu sync.Mutex

	readyMu sync.Mutex
	ready   Readiness // Engine and Config as the last check found them

	roleCh chan struct{} // a lease role change, for the event follower (buffer 1, non-blocking send)
	ev     *eventMetrics
}

// NewRuntime checks every task's schedule and builds the runtime; nothing runs until Run.
func NewRuntime(opts RuntimeOptions) (*Runtime, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.ReadinessInterval <= 0 {
		opts.ReadinessInterval = DefaultReadinessInterval
	}
	rt := &Runtime{opts: opts, actor: "operator:" + opts.Node, log: opts.Log.With("component", "runtime"), prevRole: RoleUnknown,
		ready: Readiness{Engine: engineNotChecked, Config: "ok"}, roleCh: make(chan struct{}, 1)}
	if opts.EventQuiet <= 0 {
		rt.opts.EventQuiet = DefaultEventQuiet
	}
	if opts.EventMaxWait <= 0 {
		rt.opts.EventMaxWait = DefaultEventMaxWait
	}
	rt.lease = NewLease(opts.Store, LeaseOptions{
		Name: opts.LeaseName, TTL: opts.TTL, Node: opts.Node, Instance: opts.Instance,
		Actor: rt.actor, What: "controller", Now: opts.Now, Log: opts.Log.With("component", "lease"),
		Yield: rt.act.pauseIfIdle, OnChange: rt.onLease,
	})
	seen := map[string]bool{}
	var errs []error
	for _, t := range opts.Tasks {
		if t.Name == "" || t.Run == nil {
			errs = append(errs, fmt.Errorf("task %q has no name or no Run", t.Name))
			continue
		}
		if seen[t.Name] {
			errs = append(errs, fmt.Errorf("task %q is registered twice", t.Name))
			continue
		}
		seen[t.Name] = true
		sched, err := config.ParseSchedule(t.Schedule)
		if err != nil {
			errs = append(errs, fmt.Errorf("schedule of loop %s %q: %w (use 5-field cron syntax, a descriptor such as @every 1h, and CRON_TZ=Zone in front if needed)", t.Name, t.Schedule, err))
			continue
		}
		l := &loop{rt: rt, task: t, sched: sched, log: opts.Log.With("loop", t.Name), wake: make(chan struct{}, 1)}
		cl := cronLogger{l.log}
		l.job = cron.NewChain(cron.Recover(cl), cron.SkipIfStillRunning(cl)).Then(cron.FuncJob(l.pass))
		rt.loops = append(rt.loops, l)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rt.ev = newEventMetrics(opts.Metrics)
	return rt, nil
}

// Lease is the runtime's lease (status, readiness).
func (rt *Runtime) Lease() *Lease { return rt.lease }

// Actor is how this replica signs the ledger: operator:<node ID>.
func (rt *Runtime) Actor() string { return rt.actor }

// Run starts the lease and the loops and blocks until ctx ends. Then it stops starting passes, lets running
// ones (scheduled, take-over or retry alike) finish within StopGrace, cancels those still running, releases
// the lease and returns: within StopGrace + passCancelWait + releaseTimeout whatever a pass waits for.
func (rt *Runtime) Run(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	passCtx, cancelPasses := context.WithCancel(base)
	defer cancelPasses()
	rt.passCtx = passCtx
	leaseCtx, cancelLease := context.WithCancel(base)
	defer cancelLease()

	c := cron.New(cron.WithParser(config.ScheduleParser()), cron.WithLogger(cronLogger{rt.log}))
	for _, l := range rt.loops {
		c.Schedule(l.sched, cron.FuncJob(func() { l.trigger(TriggerScheduled) }))
		rt.opts.Metrics.InitLoop(l.task.Name)
	}
	if len(rt.loops) == 0 {
		rt.log.Warn("no reconcile loops registered; holding the lease only")
	}
	rt.opts.Metrics.SetRole(rt.opts.Node, RoleUnknown)

	leaseDone := make(chan struct{})
	go func() { defer close(leaseDone); rt.lease.Run(leaseCtx) }()
	readyDone := make(chan struct{})
	go func() { defer close(readyDone); rt.watchReadiness(leaseCtx) }()
	eventsDone := rt.startEvents(leaseCtx)
	c.Start()
	rt.log.Info("runtime started", "loops", len(rt.loops), "lease", rt.opts.LeaseName, "ttl", rt.opts.TTL, "self", rt.lease.ID())

	<-ctx.Done()
	start := time.Now()
	rt.log.Info("stopping: finishing running passes", "grace", rt.opts.StopGrace)
	rt.mu.Lock()
	rt.stopping = true
	rt.mu.Unlock()
	for _, l := range rt.loops {
		l.stopRetry()
	}
	// No new scheduled trigger starts; one that runs is a pass counted in rt.passes (a trigger reaching
	// rt.mu from now on sees stopping). The cron stop's own channel is not waited for first: it waits for
	// those very passes, and one following a stalled CA rotation would hold the stop (and the lease) until
	// Docker's SIGKILL.
	cronStopped := c.Stop()
	done := make(chan struct{})
	go func() { rt.passes.Wait(); <-cronStopped.Done(); close(done) }()
	grace := time.NewTimer(max(rt.opts.StopGrace-time.Since(start), 0))
	defer grace.Stop()
	select {
	case <-done:
	case <-grace.C:
		rt.log.Warn("passes still running at the stop deadline; cancelling them")
		cancelPasses()
		after := time.NewTimer(passCancelWait)
		defer after.Stop()
		select {
		case <-done:
		case <-after.C:
			// A pass that ignores its context: it can change nothing more through the lease's guard, and
			// the process ends right after; the lease is released so another replica acts at once.
			rt.log.Warn("passes still running after being cancelled; releasing the lease without them", "waited", passCancelWait)
		}
	}
	cancelLease()
	<-leaseDone
	<-readyDone
	<-eventsDone
	wasHolder := rt.lease.Holding()
	rctx, cancel := context.WithTimeout(base, releaseTimeout)
	defer cancel()
	if err := rt.lease.Release(rctx); err != nil {
		rt.log.Warn("lease not released; it lapses after its TTL", "err", err)
		return nil
	}
	if wasHolder {
		rt.opts.Audit.Record(audit.Record{Event: config.EventLeaseReleased, Actor: rt.actor, Reason: "shutdown", Result: swarm.ResultOK, Node: rt.opts.Node})
	}
	rt.log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// onLease follows the lease's role: metrics, logs, audit, and a pass of every loop when this replica
// becomes the holder (the checks missed while it, or no one, acted).
func (rt *Runtime) onLease(st LeaseStatus) {
	rt.mu.Lock()
	prevRole, prevHold := rt.prevRole, rt.prevHold
	rt.prevRole, rt.prevHold = st.Role, st.Holder
	rt.mu.Unlock()
	select {
	case rt.roleCh <- struct{}{}:
	default:
	}
	rt.opts.Metrics.SetRole(rt.opts.Node, st.Role)
	if (prevRole != RoleUnknown && prevHold != st.Holder) || (st.Role == RoleHolder && prevRole != RoleHolder) {
		rt.opts.Metrics.LeaseTransition()
	}
	switch {
	case st.Role == RoleHolder && prevRole != RoleHolder:
		rt.log.Info("holder: this replica acts", "self", st.Self)
		rt.opts.Audit.Record(audit.Record{Event: config.EventLeaseAcquired, Actor: rt.actor, Result: swarm.ResultOK, Node: rt.opts.Node,
			Details: map[string]string{"previous_holder": prevHold}})
		for _, l := range rt.loops {
			go l.trigger(TriggerTakeover)
		}
	case st.Role == RoleStandby && st.Holder == st.Self && rt.lease.WaitingFresh():
		rt.log.Info("standby: this replica created the lease and acts after a full TTL", "ttl", rt.opts.TTL)
	case st.Role == RoleStandby && st.Holder == st.Self:
		rt.log.Warn("standby: this replica could not renew the lease within its TTL; it acts again once it renews", "err", st.Err)
		if prevRole == RoleHolder {
			rt.opts.Audit.Record(audit.Record{Event: config.EventLeaseLost, Actor: rt.actor, Result: swarm.ResultFailed, Node: rt.opts.Node,
				Details: map[string]string{"holder": st.Holder}, Error: st.Err})
		}
	case st.Role == RoleStandby && st.Holder == "":
		rt.log.Info("standby: the lease is released; a replica takes it at its next read")
	case st.Role == RoleStandby:
		rt.log.Info("standby: another replica holds the lease", "holder", st.Holder, "holder_actor", st.HolderActor, "holder_what", st.HolderWhat)
		if prevRole == RoleHolder && st.Holder != "" {
			rt.opts.Audit.Record(audit.Record{Event: config.EventLeaseLost, Actor: rt.actor, Result: swarm.ResultFailed, Node: rt.opts.Node,
				Details: map[string]string{"holder": st.Holder, "holder_actor": st.HolderActor}, Error: st.Err})
		}
	}
}

// Readiness is what /readyz reports.
type Readiness struct {
	Ready  bool
	Lease  LeaseStatus
	Engine string // "ok" or why not
	Config string // "ok" or the problems
}

// Ready is what /readyz serves: the engine and configuration as the last check found them (watchReadiness),
// and the lease as this replica last read it. It reads memory only.
func (rt *Runtime) Ready() Readiness {
	rt.readyMu.Lock()
	r := rt.ready
	rt.readyMu.Unlock()
	r.Lease = rt.lease.Status()
	r.Ready = r.Engine == "ok" && r.Config == "ok" && r.Lease.Role != RoleUnknown
	return r
}

// watchReadiness checks the engine and the configuration now and every ReadinessInterval until ctx ends.
func (rt *Runtime) watchReadiness(ctx context.Context) {
	t := time.NewTicker(rt.opts.ReadinessInterval)
	defer t.Stop()
	for {
		if err := guard.Do("readiness check", func() { rt.checkReadiness(ctx) }); err != nil {
			var pe *guard.PanicError
			errors.As(err, &pe)
			rt.log.Error("readiness check panicked; readiness unchanged", "panic", pe.Kind, "where", pe.Where, "stack", string(pe.Stack))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkReadiness checks the engine and the configuration once and keeps the result for Ready. The engine's
// error is kept as its cause class only, the configuration's problems as the keys they name: the detail is
// logged when it changes, never served.
func (rt *Runtime) checkReadiness(ctx context.Context) {
	engine, conf := "ok", "ok"
	var engineErr error
	if rt.opts.Engine != nil {
		cctx, cancel := context.WithTimeout(ctx, readinessEngineTimeout)
		engineErr = rt.opts.Engine(cctx)
		cancel()
		if engineErr != nil {
			engine = Cause(engineErr)
		}
	}
	var ps config.Problems
	if rt.opts.ConfigProblems != nil {
		ps = rt.opts.ConfigProblems().Sorted()
	}
	if len(ps) > 0 {
		keys := make([]string, 0, len(ps))
		for _, p := range ps {
			if !slices.Contains(keys, p.Key) {
				keys = append(keys, p.Key)
			}
		}
		conf = "problems with " + strings.Join(keys, ", ") + " (run swarmguard config check)"
	}
	rt.readyMu.Lock()
	prev := rt.ready
	rt.ready.Engine, rt.ready.Config = engine, conf
	rt.readyMu.Unlock()
	if engine != prev.Engine && engineErr != nil {
		rt.log.Warn("not ready: engine check failed", "err", engineErr)
	}
	if conf != prev.Config && len(ps) > 0 {
		rt.log.Warn("not ready: configuration problems", "problems", ps.Error())
	}
}

// syncLedger sets the last-attempt and last-success metrics from the newest entry of each kind (any result,
// and ok only). Audit records are not made here: each action is audited when it happens (audit.Action, Record).
func (rt *Runtime) syncLedger(ctx context.Context) {
	if rt.opts.Ledger == nil {
		return
	}
	rt.ledgerMu.Lock()
	defer rt.ledgerMu.Unlock()
	entries, err := rt.opts.Ledger.Entries(ctx)
	if err != nil {
		rt.log.Debug("ledger unreadable for the action metrics; next pass reads it again", "err", err)
		return
	}
	ledgerMetrics(rt.opts.Metrics, entries)
}

// ledgerMetrics sets, for each ledger kind, the last attempt (newest entry, any result) and the last
// success (newest entry with result ok: a failed attempt or an adoption does not move it).
func ledgerMetrics(m *Metrics, entries []swarm.Entry) {
	for _, k := range swarm.Kinds {
		if e, ok := swarm.Latest(entries, k); ok {
			m.Action(k, e.At)
		}
		if e, ok := swarm.Latest(entries, k, swarm.ResultOK); ok {
			m.Success(k, e.At)
		}
	}
}

// activity gates passes against a hand-over of the lease to a CLI: passes begin only while not paused, and
// the lease is handed over only when none runs.
type activity struct {
	mu      sync.Mutex
	running int
	paused  bool
}

func (a *activity) begin() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.paused {
		return false
	}
	a.running++
	return true
}

func (a *activity) end() {
	a.mu.Lock()
	a.running--
	a.mu.Unlock()
}

func (a *activity) pauseIfIdle() (func(), bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.running > 0 || a.paused {
		return nil, false
	}
	a.paused = true
	return func() { a.mu.Lock(); a.paused = false; a.mu.Unlock() }, true
}

// loop is one task's independent loop: its schedule, its backoff, its pending retry.
type loop struct {
	rt    *Runtime
	task  Task
	sched cron.Schedule
	log   *slog.Logger
	job   cron.Job // the pass, wrapped in Recover and SkipIfStillRunning

	mu       sync.Mutex
	reason   string
	failures int
	retry    *time.Timer

	// runMu serialises this loop's passes, scheduled or reacting to events: an event arriving during a pass
	// waits in pending and is reconciled right after it, never dropped.
	runMu     sync.Mutex
	lastStart time.Time // when the last pass of this loop began (under runMu)
	wake      chan struct{}
	pending   pendingEvents
}

// startPass counts a pass (or a pass's background work) that shutdown waits for, unless the runtime is
// stopping: then it returns false and nothing may start. The caller calls rt.passes.Done when it ends.
func (rt *Runtime) startPass() bool {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.stopping {
		return false
	}
	rt.passes.Add(1)
	return true
}

// trigger runs a pass now (unless one runs already: SkipIfStillRunning) and waits for it.
func (l *loop) trigger(reason string) {
	if !l.rt.startPass() {
		return
	}
	defer l.rt.passes.Done()
	l.mu.Lock()
	l.reason = reason
	l.mu.Unlock()
	l.job.Run()
}

// background runs fn after a pass, as TaskEnv.Background describes: counted with the passes (shutdown
// waits for it within the stop grace), its context fenced by the lease, its panic logged and contained.
func (l *loop) background(fn func(ctx context.Context)) {
	rt := l.rt
	if !rt.startPass() {
		return
	}
	go func() {
		defer rt.passes.Done()
		ctx, cancel := rt.lease.Fence(rt.passCtx)
		defer cancel()
		if err := guard.Do("background work of loop "+l.task.Name, func() { fn(audit.With(ctx, rt.opts.Audit)) }); err != nil {
			var pe *guard.PanicError
			errors.As(err, &pe)
			l.log.Error("background work panicked", "panic", pe.Kind, "where", pe.Where, "stack", string(pe.Stack))
		}
	}()
}

func (l *loop) stopRetry() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retry != nil {
		l.retry.Stop()
		l.retry = nil
	}
}

// pass runs the task once if this replica holds the lease.
func (l *loop) pass() {
	l.mu.Lock()
	reason := l.reason
	l.mu.Unlock()
	l.execute(reason, time.Time{}, l.task.Run)
}

// execute runs do (a full pass, or a reaction to events) under the loop's runMu if this replica holds the
// lease; a failure backs off and retries with a full pass. notBefore, when set, skips the run when a pass
// of this loop started after it (that pass saw everything a full pass now would). It reports whether do ran.
func (l *loop) execute(reason string, notBefore time.Time, do func(context.Context, TaskEnv) error) bool {
	l.runMu.Lock()
	defer l.runMu.Unlock()
	if !notBefore.IsZero() && l.lastStart.After(notBefore) {
		l.log.Debug("full pass not needed: one started after the event stream connected", "trigger", reason)
		return false
	}
	rt := l.rt
	if !rt.act.begin() {
		l.log.Debug("pass skipped: lease being handed to a CLI user")
		return false
	}
	defer rt.act.end()
	if !rt.lease.Holding() {
		l.log.Debug("standby: pass skipped", "holder", rt.lease.Status().Holder)
		return false
	}
	l.lastStart = time.Now()
	// The pass's context ends if this replica's hold on the lease ends while it runs (Fence), so a replica
	// that stalled past its TTL sends nothing more.
	ctx, cancel := rt.lease.Fence(rt.passCtx)
	defer cancel()
	env := TaskEnv{Actor: rt.actor, Log: l.log, Now: rt.opts.Now, Out: io.Discard, Guard: rt.lease, Background: l.background}
	start := time.Now()
	t := l.task
	t.Run = do
	err := runTask(audit.With(ctx, rt.opts.Audit), t, env)
	d := time.Since(start)
	rt.opts.Metrics.ObservePass(l.task.Name, d, err)
	rt.syncLedger(rt.passCtx)
	if err == nil {
		l.mu.Lock()
		l.failures = 0
		l.mu.Unlock()
		l.stopRetry()
		l.log.Debug("pass done", "trigger", reason, "duration", d)
		return true
	}
	if rt.passCtx.Err() != nil {
		// Cancelled at the stop deadline: not a failure to retry or audit; the next holder's take-over pass
		// attaches to whatever this one left running in the swarm.
		l.log.Warn("pass cancelled: the stop grace ran out", "trigger", reason, "duration", d, "err", err)
		return true
	}
	if errors.Is(err, ErrLeaseLost) || ctx.Err() != nil {
		l.log.Warn("pass stopped: this replica lost the lease", "err", err)
		return true
	}
	l.mu.Lock()
	l.failures++
	delay := rt.opts.Backoff.Delay(l.failures)
	if l.retry != nil {
		l.retry.Stop()
	}
	l.retry = time.AfterFunc(delay, func() { l.trigger(TriggerRetry) })
	failures := l.failures
	l.mu.Unlock()
	l.log.Warn("pass failed, will retry", "trigger", reason, "failures", failures, "retry_in", delay.Round(time.Second), "err", err)
	rt.opts.Audit.Record(audit.Record{Event: config.EventReconcileFailed, Kind: l.task.Name, Actor: rt.actor, Reason: reason,
		Result: swarm.ResultFailed, DurationSeconds: d.Seconds(), Node: rt.opts.Node, Error: err.Error()})
	return true
}

// runTask runs one pass, turning a panic into an error (with the stack logged) so that the loop backs off
// like for any failure; cron.Recover stays as the outer net.
func runTask(ctx context.Context, t Task, env TaskEnv) (err error) {
	defer func() {
		if r := recover(); r != nil {
			// The panic's value is never printed (it may hold a token formatted into it): its kind, where, the stack.
			pe := guard.Recovered("loop "+t.Name, r)
			env.Log.Error("pass panicked", "panic", pe.Kind, "where", pe.Where, "stack", string(pe.Stack))
			err = pe
		}
	}()
	return t.Run(ctx, env)
}

// PassResult is the outcome of one task in RunOnce.
type PassResult struct {
	Loop     string
	Duration time.Duration
	Err      error
}

// RunOnce runs every task once, in order, with env, recording durations and errors in m (may be nil). A
// failing task does not stop the others.
func RunOnce(ctx context.Context, tasks []Task, env TaskEnv, m *Metrics) []PassResult {
	out := make([]PassResult, 0, len(tasks))
	base := env.Log
	if base == nil {
		base = slog.New(slog.DiscardHandler)
	}
	for _, t := range tasks {
		e := env
		e.Log = base.With("loop", t.Name)
		start := time.Now()
		err := runTask(ctx, t, e)
		d := time.Since(start)
		m.ObservePass(t.Name, d, err)
		out = append(out, PassResult{Loop: t.Name, Duration: d, Err: err})
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

// cronLogger adapts *slog.Logger to cron.Logger. cron's own chatter goes to debug; a skipped run (the
// previous pass of that loop still runs) is info.
type cronLogger struct{ log *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		c.log.Info("run skipped: the previous pass of this loop still runs")
		return
	}
	c.log.Debug("cron", append([]any{"event", msg}, kv...)...)
}

func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.log.Error("cron job failed", append([]any{"event", msg, "err", err}, kv...)...)
}
