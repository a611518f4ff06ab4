package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
)

// cliAuditCloseTimeout bounds the delivery of the queued webhook records after a CLI action, also when the
// action was interrupted.
const cliAuditCloseTimeout = 5 * time.Second

// hold runs fn while this process holds the swarm-wide lease (operator.HoldLease), so that a person's
// rotate, remediate, join window, incident and `run --once` and the controller never act at once. what names
// the action in the lease ("rotate join-token worker"); env is the action's, and fn gets it back carrying
// the hold as its Guard. A holder that does not hand the lease over within lease.wait fails the command
// (exit 1) saying who holds it. Each action fn does is audited when it happens (log and notify.webhooks).
func (a *app) hold(ctx context.Context, what string, env operator.TaskEnv, fn func(ctx context.Context, env operator.TaskEnv) error) error {
	// The webhooks first: an unreadable signing key refuses the action before anything changes.
	targets, err := a.webhookTargets()
	if err != nil {
		return err
	}
	c, self, err := a.engine(ctx)
	if err != nil {
		return err
	}
	aud := a.auditor(context.WithoutCancel(ctx), targets)
	err = operator.HoldLease(ctx, operator.HoldOptions{
		Store: c, Wait: a.cfg.Lease.Wait.D(), Audit: aud,
		Lease: operator.LeaseOptions{Name: a.cfg.Lease.Name, TTL: a.cfg.Lease.TTL.D(), Node: self.NodeID, Actor: env.Actor, What: what,
			Log: a.log.With("component", "lease")},
	}, env, fn)
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), cliAuditCloseTimeout)
	defer acancel()
	aud.Close(actx) // the queued webhook deliveries
	var he *operator.HeldError
	if errors.As(err, &he) {
		return failed(err)
	}
	return err
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
