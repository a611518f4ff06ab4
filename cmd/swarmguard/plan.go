package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/networks"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/operator/workloads"
	"github.com/swarmguard/swarmguard/swarm"
)

// planDomains are the domains `swarmguard plan` shows, in the order `run --once` runs their passes.
var planDomains = []string{certs.Domain, certs.DomainCA, networks.Domain, "tokens", "autolock", secretsync.Domain, workloads.Domain}

func newPlanCmd(a *app) *cobra.Command {
	var domains []string
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show what every domain's pass would do to the swarm as it is now; changes nothing",
		Long: `plan observes every domain (reads only: no lease is taken, nothing is written) and prints each one's
plan: the actions its pass would take now, each with the ledger kind it records (one ledger entry per action),
its subject, the change and the reason. It is the same plan every --dry-run prints and the one run --once
carries out: when nothing changes in between, run --once with the same configuration records exactly these
entries, and a second plan no longer lists them.

Domains: ` + strings.Join(planDomains, ", ") + ` (tokens includes the join windows). A domain that cannot be read says why
in its error and plans nothing.

Formats: table (default) and json ({"generated_at", "swarm_id", "domains": [{"domain", "error", "actions":
[{"kind", "subject", "reason", "change"}]}]}).

Exit status: 0 nothing would change; 4 at least one action is planned (a CI gate: "the swarm is not as the
configuration says"); 1 a domain could not be planned (its error says why; this wins over 4); 2 bad usage or
configuration; 3 no usable swarm manager.`,
		Example: `  swarmguard plan
  swarmguard plan --domain tokens --domain secrets
  swarmguard plan --format json --config ci.yaml || [ $? -eq 4 ]`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := a.outputFormat("table", "json")
			if err != nil {
				return err
			}
			for _, d := range domains {
				if !slices.Contains(planDomains, d) {
					return usageErr("--domain %q is not one of %s", d, strings.Join(planDomains, ", "))
				}
			}
			ctx := cmd.Context()
			c, _, err := a.engine(ctx)
			if err != nil {
				return err
			}
			cl, err := c.Cluster(ctx)
			if err != nil {
				return fmt.Errorf("reading the swarm: %w", err)
			}
			now := time.Now()
			plans := a.plans(ctx, c, domains, now)
			err = a.writeOutput(func(w io.Writer) error {
				if format == "json" {
					return operator.WritePlansJSON(w, now, cl.ID, plans)
				}
				return operator.WritePlans(w, plans...)
			})
			if err != nil {
				return err
			}
			return planExit(plans)
		},
	}
	cmd.Flags().StringArrayVar(&domains, "domain", nil, "plan only this domain (repeat for more): "+strings.Join(planDomains, ", "))
	return cmd
}

// planExit is plan's exit status: ExitFailed when a domain could not be planned, ExitPlanned when an action
// is planned, else none.
func planExit(plans []operator.Plan) error {
	var errs []error
	actions := 0
	for _, p := range plans {
		if p.Err != nil {
			errs = append(errs, fmt.Errorf("domain %s: %w", p.Domain, p.Err))
		}
		actions += len(p.Actions)
	}
	if err := errors.Join(errs...); err != nil {
		return failed(fmt.Errorf("%w (the other domains' plans were printed)", err))
	}
	if actions > 0 {
		return silentExit(ExitPlanned)
	}
	return nil
}

// plans builds the plan of each domain named (every domain when none), in planDomains' order, from one
// observation of each: reads only, no lease.
func (a *app) plans(ctx context.Context, c *swarm.Client, only []string, now time.Time) []operator.Plan {
	ledger := a.ledger(c)
	builders := map[string]func() operator.Plan{
		certs.Domain:   func() operator.Plan { return certs.PlanNodeCerts(ctx, c, ledger, a.cfg.PKI) },
		certs.DomainCA: func() operator.Plan { return certs.PlanCA(ctx, c, ledger, a.cfg.PKI, now) },
		networks.Domain: func() operator.Plan {
			return networks.Plan(ctx, c, a.cfg.Networks)
		},
		"tokens":   func() operator.Plan { return a.tokens(c, ledger).Plan(ctx, now) },
		"autolock": func() operator.Plan { return a.autolock(c, ledger).Plan(ctx, now) },
		secretsync.Domain: func() operator.Plan {
			return a.secretsPlan(ctx, c, ledger)
		},
		workloads.Domain: func() operator.Plan {
			e := &workloads.Enforcer{Engine: c, Ledger: ledger, Config: a.cfg.Workloads}
			return e.Plan(ctx, now)
		},
	}
	var out []operator.Plan
	for _, d := range planDomains {
		if len(only) > 0 && !slices.Contains(only, d) {
			continue
		}
		out = append(out, builders[d]())
	}
	return out
}

// secretsPlan is the secret sync's plan: every mapping read from Vault and compared with the engine's
// managed secrets and services. No mapping configured plans nothing; a configuration or a Vault that
// cannot be used is the plan's error.
func (a *app) secretsPlan(ctx context.Context, c *swarm.Client, ledger *swarm.Ledger) operator.Plan {
	if len(a.cfg.Secrets.Mappings) == 0 {
		p := operator.Plan{Domain: secretsync.Domain}
		p.Note("no secrets.mappings configured")
		return p
	}
	ms, err := a.mappings()
	if err != nil {
		return operator.Failed(secretsync.Domain, err)
	}
	syncer, err := a.syncer(c, nil)
	if err != nil {
		return operator.Failed(secretsync.Domain, err)
	}
	v, err := a.vault(ctx)
	if err != nil {
		return operator.Failed(secretsync.Domain, err)
	}
	syncer.Source = v.KV()
	return secretsync.NewSecretsSync(syncer, ms, ledger, nil).Plan(ctx, ms)
}

// writePlan prints a command's --dry-run: its plan as the dry-run text, or as plan JSON with --format json.
// A plan that could not be made is the command's error.
func (a *app) writePlan(format string, p operator.Plan) error {
	err := a.writeOutput(func(w io.Writer) error {
		if format == "json" {
			return operator.WritePlansJSON(w, time.Now(), "", []operator.Plan{p})
		}
		return operator.WritePlans(w, p)
	})
	if err != nil {
		return err
	}
	if p.Err != nil {
		return &exitError{code: ExitFailed, err: p.Err, silent: format != "json"} // the text said why
	}
	return nil
}

// planDetail is a plan as one line, for the incident's preview: each action's "would" and change, joined.
func planDetail(p operator.Plan) string {
	if p.Err != nil {
		return "cannot plan: " + p.Err.Error()
	}
	parts := make([]string, 0, len(p.Actions))
	for _, a := range p.Actions {
		parts = append(parts, "would "+a.Change)
	}
	if len(parts) == 0 {
		return "nothing to do"
	}
	return strings.Join(parts, ", ")
}
