package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/operator"
)

// cliReleaseTimeout bounds the release of the lease and the audit after a CLI action, also when the action
// was interrupted.
const cliReleaseTimeout = 5 * time.Second

type leaseKey struct{}

// withLease runs fn while holding the swarm-wide lease (DESIGN.md decision 2), so that a person's rotate,
// `run --once` and the controller never act at once. what names the action in the lease ("rotate join-token
// worker"). A controller holding the lease hands it over when its current pass ends; withLease waits up to
// lease.wait and otherwise fails (exit 1) saying who holds it. While fn runs the lease is renewed; if it is
// lost, fn's context is cancelled. Inside fn, stillHolder(ctx) is the TaskEnv.StillHolder to give a pass.
// fn's context carries the auditor (operator.WithAudit): each action it does is audited when it happens (log
// and notify.webhooks), whether or not its ledger write succeeds.
func (a *app) withLease(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	// The webhooks first: an unreadable signing key refuses the action before anything changes.
	targets, err := a.webhookTargets()
	if err != nil {
		return err
	}
	c, self, err := a.engine(ctx)
	if err != nil {
		return err
	}
	l := operator.NewLease(c, operator.LeaseOptions{
		Name: a.cfg.Lease.Name, TTL: a.cfg.Lease.TTL.D(), Node: self.NodeID, Actor: actor(), What: what,
		Request: true, Log: a.log.With("component", "lease"),
	})
	if err := l.Acquire(ctx, a.cfg.Lease.Wait.D()); err != nil {
		var he *operator.HeldError
		if errors.As(err, &he) {
			return failed(err)
		}
		return err
	}
	a.log.Debug("lease taken", "lease", a.cfg.Lease.Name, "self", l.ID(), "what", what)
	aud := a.auditor(context.WithoutCancel(ctx), targets)
	fctx, cancel := context.WithCancelCause(operator.WithAudit(context.WithValue(ctx, leaseKey{}, l), aud))
	kept := make(chan struct{})
	go func() { defer close(kept); keepLease(fctx, l, cancel, a.log) }()
	fenced, fcancel := l.Fence(fctx) // ends the moment the hold ends, checked before every API call
	err = fn(fenced)
	fcancel()
	if cause := context.Cause(fctx); err != nil && errors.Is(cause, operator.ErrLeaseLost) {
		err = fmt.Errorf("%w (%w)", err, cause)
	}
	cancel(nil)
	<-kept

	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), cliReleaseTimeout)
	defer rcancel()
	if rerr := l.Release(rctx); rerr != nil {
		a.log.Warn("lease not released; it lapses after its TTL", "lease", a.cfg.Lease.Name, "err", rerr)
	}
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), cliReleaseTimeout)
	defer acancel()
	aud.Close(actx) // the queued webhook deliveries

	return err
}

// keepLease renews the lease while ctx lasts and cancels ctx with ErrLeaseLost when it is lost.
func keepLease(ctx context.Context, l *operator.Lease, cancel context.CancelCauseFunc, log *slog.Logger) {
	for {
		t := time.NewTimer(l.Interval())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		// A panic in a tick (a bug) is a failed renewal: the hold lapses as when the engine is unreachable.
		if err := guard.Do("lease renewal", func() { _, _ = l.Tick(ctx) }); err != nil {
			log.Error("lease renewal panicked", "err", err)
		}
		if !l.Holding() {
			cancel(fmt.Errorf("lease %s: %w", l.ID(), operator.ErrLeaseLost))
			return
		}
	}
}

// stillHolder is TaskEnv.StillHolder for a pass run inside withLease: it renews the lease by CAS and fails
// when it was lost. Outside withLease it always fails, so a mutation never runs unguarded.
func stillHolder(ctx context.Context) func(context.Context) error {
	l, _ := ctx.Value(leaseKey{}).(*operator.Lease)
	if l == nil {
		return func(context.Context) error {
			return errors.New("not running under the swarmguard lease: wrap the action in withLease")
		}
	}
	return l.Check
}

// leaseFence is RemediateOptions.Fence for work inside withLease: a context that ends the moment the hold
// ends. Outside withLease the context it gives has already ended, so nothing runs unfenced.
func leaseFence(ctx context.Context) func(context.Context) (context.Context, context.CancelFunc) {
	l, _ := ctx.Value(leaseKey{}).(*operator.Lease)
	if l == nil {
		return func(parent context.Context) (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(parent)
			cancel()
			return c, cancel
		}
	}
	return l.Fence
}

func newLeaseCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "lease",
		Short: "Show who holds the swarmguard lease (the one replica or CLI user that acts)",
		Example: `  swarmguard lease
  swarmguard lease --format json | jq -r .holder`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := a.outputFormat("table", "json")
			if err != nil {
				return err
			}
			c, _, err := a.engine(cmd.Context())
			if err != nil {
				return err
			}
			info, err := operator.ReadLease(cmd.Context(), c, a.cfg.Lease.Name)
			if err != nil {
				return err
			}
			return a.writeTableOrJSON(f, info, func(w io.Writer) error { return leaseTable(w, info) })
		},
	}
}

func leaseTable(w io.Writer, in operator.LeaseInfo) error {
	if !in.Exists {
		_, err := fmt.Fprintf(w, "lease %s: never taken (no swarmguard has run against this swarm)\n", in.Name)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	holder := in.Holder
	if holder == "" {
		holder = "none (released " + in.Released + ")"
	}
	rows := [][2]string{{"lease", in.Name}, {"holder", holder}, {"node", in.Node}, {"actor", in.Actor}, {"what", in.What},
		{"ttl", in.TTL}, {"since", in.Since}, {"renewed", in.Renewed}, {"seq", in.Seq}}
	if in.Request != "" {
		rows = append(rows, [2]string{"requested by", in.Request + " (" + in.ReqActor + ")"})
	}
	for _, r := range rows {
		if r[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
		}
	}
	return tw.Flush()
}
