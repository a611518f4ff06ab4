package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/networks"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func newRemediateCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "remediate",
		Short: "Fix a finding, opt-in: move an unencrypted overlay network's services to an encrypted twin",
		Example: `  swarmguard remediate network backend
  swarmguard remediate network backend --apply --reason "CIS 7.3 finding"`,
		Args: noArgs,
	}
	cmd.AddCommand(newRemediateNetworkCmd(a))
	return cmd
}

func newRemediateNetworkCmd(a *app) *cobra.Command {
	var (
		apply            bool
		reason           string
		converge, remove time.Duration
	)
	cmd := &cobra.Command{
		Use:   "network NAME",
		Short: "Plan (default) or --apply the move of an overlay network's services to an encrypted twin <NAME>-enc",
		Long: `remediate network prints what it would do to encrypt overlay network NAME; with --apply it does it:

  1. create the overlay network NAME-enc with --opt encrypted (a fresh subnet from the swarm's default
     address pool, or networks.remediate_subnet), same attachable/internal settings and labels;
  2. attach NAME-enc to every service on NAME, keeping each attachment's aliases, and wait until their tasks
     run on it, so the application is never split across the two networks;
  3. detach NAME from each service and wait until their tasks have left it;
  4. remove NAME once nothing uses it (standalone containers on an attachable network keep it in place).

If a step fails, the steps already done are undone in reverse order. The ledger records the outcome (kind
network). It refuses networks deployed by a stack (the next docker stack deploy would bring them back: it prints
the compose change instead) and the ingress network (it prints Docker's procedure instead).

Note: the engine encrypts with IPsec (ESP): nodes must allow IP protocol 50 between them, and the kernel must
have the xfrm/ESP modules, or tasks on different nodes cannot talk over the encrypted network.`,
		Example: `  swarmguard remediate network backend
  swarmguard remediate network backend --apply --reason "CIS 7.3"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, _, err := a.engine(ctx)
			if err != nil {
				return err
			}
			plan, err := planRemediation(ctx, a, c, args[0])
			if err != nil {
				return err
			}
			plan.Render(a.stdout)
			switch {
			case plan.Nothing != "":
				return nil
			case plan.Refused != "":
				return failed(fmt.Errorf("remediating network %s refused: %s", plan.Network.Name, plan.Refused))
			case !apply:
				fmt.Fprintln(a.stdout, "\nthis was a plan; run again with --apply to do it")
				return nil
			}
			if reason == "" {
				reason = "manual: encrypt overlay network " + plan.Network.Name
			}
			env := operator.TaskEnv{Actor: actor(), Reason: reason, Log: a.log, Now: time.Now, Out: a.stdout}
			return a.hold(ctx, "remediate network "+plan.Network.Name, env, func(ctx context.Context, env operator.TaskEnv) error {
				// Re-read under the lease: another actor may have done (part of) it meanwhile.
				plan, err := planRemediation(ctx, a, c, args[0])
				if errors.Is(err, swarm.ErrNotFound) {
					fmt.Fprintf(a.stdout, "network %s no longer exists: nothing to do\n", args[0])
					return nil
				}
				if err != nil {
					return err
				}
				if plan.Nothing != "" || plan.Refused != "" {
					plan.Render(a.stdout)
					if plan.Refused != "" {
						return failed(errors.New(plan.Refused))
					}
					return nil
				}
				fmt.Fprintln(a.stdout, "\napplying:")
				res, applyErr := networks.ApplyNetworkRemediation(ctx, c, plan, networks.RemediateOptions{
					Converge: converge, RemoveWait: remove, Log: a.log.With("component", "remediate"), Progress: remediatePrinter(a.stdout),
					Guard: env.Guard})
				entry := swarm.Entry{Kind: swarm.KindNetwork, At: time.Now().UTC(), Actor: actor(), Reason: reason,
					Result: swarm.ResultOK, Details: res.LedgerDetails(plan)}
				if applyErr != nil {
					entry.Result = swarm.ResultFailed
					entry.Details["error"] = truncate(applyErr.Error(), 200)
				}
				if lerr := operator.Record(ctx, a.ledger(c), entry); lerr != nil {
					a.log.Error("recording the remediation in the ledger failed", "network", plan.Network.Name, "err", lerr)
					if applyErr == nil {
						return failed(fmt.Errorf("network %s remediated, but the ledger entry failed: %w", plan.Network.Name, lerr))
					}
				}
				if applyErr != nil {
					return failed(applyErr)
				}
				fmt.Fprintf(a.stdout, "done: %d service(s) moved to %s", len(res.Moved), res.Twin.Name)
				if !res.RemovedOld {
					fmt.Fprintf(a.stdout, "; %s left in place", plan.Network.Name)
				}
				fmt.Fprintln(a.stdout)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&apply, "apply", false, "do it (default: print the plan only)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, recorded in the ledger")
	cmd.Flags().DurationVar(&converge, "converge-timeout", networks.DefaultRemediateConverge, "how long to wait for each service's tasks to move")
	cmd.Flags().DurationVar(&remove, "remove-timeout", networks.DefaultRemediateRemoveWait, "how long to wait for the old network to be free before leaving it in place")
	return cmd
}

// remediatePrinter prints each step of a network remediation as it is done.
func remediatePrinter(w io.Writer) func(networks.RemediateEvent) {
	return func(ev networks.RemediateEvent) {
		n := ev.Network
		switch ev.Step {
		case networks.StepReusedTwin:
			fmt.Fprintf(w, "reusing encrypted twin %s (id %s)\n", n.Name, n.ID)
		case networks.StepCreatedTwin:
			fmt.Fprintf(w, "created encrypted network %s (id %s, subnets %s)\n", n.Name, n.ID, report.ListOrNone(n.Subnets))
		case networks.StepAttached:
			fmt.Fprintf(w, "attached %s to service %s (aliases: %s)\n", n.Name, ev.Service, report.ListOrNone(ev.Aliases))
		case networks.StepDetached:
			fmt.Fprintf(w, "detached %s from service %s\n", n.Name, ev.Service)
		case networks.StepRemovedOld:
			fmt.Fprintf(w, "removed network %s\n", n.Name)
		case networks.StepLeftOld:
			fmt.Fprintf(w, "left network %s in place: %v; remove it with `docker network rm %s` once nothing uses it\n", n.Name, ev.Err, n.Name)
		case networks.StepUndo:
			fmt.Fprintf(w, "undo: %s\n", ev.What)
		case networks.StepNotUndone:
			fmt.Fprintf(w, "not undoing: the lease no longer holds (%v); left to undo by hand, in order: %s\n", ev.Err, ev.What)
		}
	}
}

func planRemediation(ctx context.Context, a *app, c *swarm.Client, name string) (networks.NetworkPlan, error) {
	nets, err := c.Networks(ctx)
	if err != nil {
		return networks.NetworkPlan{}, err
	}
	svcs, err := c.Services(ctx)
	if err != nil {
		return networks.NetworkPlan{}, err
	}
	p, err := networks.PlanNetworkRemediation(name, nets, svcs, a.cfg.Networks)
	if errors.Is(err, swarm.ErrNotFound) {
		return p, failed(err)
	}
	return p, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
