package workloads

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// Domain is the workloads domain's name in plans.
const Domain = "workloads"

// LedgerPlan is the enforcement plan p as the plan every domain shows: one action per service hardened
// (one ledger entry each, kind workload), in the order the pass hardens them; the skipped services and an
// engine that cannot keep the settings are notes. judged is the number of services judged. It is pure.
func LedgerPlan(p Plan, c config.WorkloadsConfig, judged int) operator.Plan {
	out := operator.Plan{Domain: Domain}
	if c.Mode != config.ModeEnforce {
		out.Note("workloads.mode %s: %d service(s) judged; nothing is enforced", c.Mode, judged)
		return out
	}
	if p.NotSettable != "" {
		out.Note("%s", p.NotSettable)
		return out
	}
	for _, a := range p.Actions {
		out.Add(swarm.KindWorkload, "service "+a.Service.Name, "set "+a.Change()+" on service "+a.Service.Name, reasonOr(""))
	}
	for _, s := range p.Skipped {
		out.Note("skip %s: %s", s.Service, s.Why)
	}
	return out
}

// Plan observes every service (reads only) and returns the workload pass's plan as of now.
func (e *Enforcer) Plan(ctx context.Context, _ time.Time) operator.Plan {
	o := Observe(ctx, e.Engine)
	vs, err := Verdicts(o, e.Config)
	if err != nil {
		return operator.Failed(Domain, fmt.Errorf("reading the services: %w", err))
	}
	return LedgerPlan(PlanEnforcement(o, vs, e.Config, e.failedCopy()), e.Config, len(vs))
}
