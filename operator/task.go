package operator

import (
	"context"
	"io"
	"log/slog"
	"time"
)

// Task is one domain's reconcile pass (observe, decide, act), run by the controller on its schedule while
// this replica holds the lease, once at start-up (a check missed while the operator was down runs then), and
// once by `swarmguard run --once`. A pass must be safe to repeat at any point.
type Task struct {
	// Name labels the loop in logs and metrics: tokens, autolock, certs, networks, secrets.
	Name string
	// Schedule says when to look (cron, CRON_TZ= allowed; parsed with ParseSchedule).
	Schedule string
	// Run does one pass. It returns an error when an action or a read failed; the controller backs off and
	// retries, and other loops go on.
	Run func(ctx context.Context, env TaskEnv) error
	// Events names the engine object types (swarm.EventService, EventSecret, EventNetwork, EventNode) whose
	// changes this task reconciles as they happen, on the lease holder; none: the schedule only.
	Events []string
	// React reconciles only the objects a batch of coalesced events names; it must be as safe to repeat as
	// Run. Nil: such a batch runs a full pass (Run). A (re)connected stream always runs a full pass.
	React func(ctx context.Context, env TaskEnv, ch Changes) error
}

// TaskEnv is what a pass is given.
type TaskEnv struct {
	// DryRun: decide and print what would be done to Out, change nothing.
	DryRun bool
	// Actor is recorded in the ledger: the replica's node ID for the controller, user@host for the CLI.
	Actor string
	// Reason is recorded in the ledger ("scheduled: worker token older than 720h", or the CLI's --reason).
	Reason string
	Log    *slog.Logger
	Now    func() time.Time
	// Out receives human-readable plans and results (stdout for run --once; io.Discard in the controller).
	Out io.Writer
	// Guard is the lease's one guard over this action (the hold the controller's pass or HoldLease
	// gives): CheckHolder before every mutating step, Fence for work on a context of its own. A dry run
	// carries one that refuses.
	Guard Guard
	// Background, when set, runs fn after the pass returns, in its own goroutine, with a context that ends
	// when this replica's hold on the lease ends or the stop grace runs out; shutdown waits for it like for
	// a pass. A pass uses it for a long wait (following rollouts) that must not hold back the loop's next
	// events. Nil (run --once, tests): fn runs at once, before Go returns.
	Background func(fn func(ctx context.Context))
}

// Go runs fn in the background (Background) or, without one, now with ctx.
func (env TaskEnv) Go(ctx context.Context, fn func(ctx context.Context)) {
	if env.Background == nil {
		fn(ctx)
		return
	}
	env.Background(fn)
}

// Time is the pass's clock: Now, or the wall clock when none was given.
func (env TaskEnv) Time() time.Time {
	if env.Now != nil {
		return env.Now()
	}
	return time.Now()
}

// Logger is the pass's logger, or one that discards.
func (env TaskEnv) Logger() *slog.Logger {
	if env.Log != nil {
		return env.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Output is where plans and results are printed, or io.Discard.
func (env TaskEnv) Output() io.Writer {
	if env.Out != nil {
		return env.Out
	}
	return io.Discard
}

// CheckHolder re-checks the lease right before a mutating step (Guard.Check); without a guard it passes.
func (env TaskEnv) CheckHolder(ctx context.Context) error {
	if env.Guard == nil {
		return nil
	}
	return env.Guard.Check(ctx)
}

// Fence bounds work done on a context of its own (an undo after the caller's context ended) to the hold
// of the lease (Guard.Fence); without a guard it is a plain cancellable child of parent.
func (env TaskEnv) Fence(parent context.Context) (context.Context, context.CancelFunc) {
	if env.Guard == nil {
		return context.WithCancel(parent)
	}
	return env.Guard.Fence(parent)
}
