package secretsync

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// Domain is the secret sync's name in plans.
const Domain = "secrets"

// LedgerPlan is the sync's dry-run results as the plan every domain shows: one action per mapping that a
// sync changes (it records one ledger entry, kind secret: create the wanted version, roll the services onto
// it, remove old versions), and one per mapping whose rollout already failed (a settling service paused or
// rolled back: the sync records the failure). A mapping that cannot be read or rendered makes the plan's
// error, and the plan then holds no action. It is pure.
func LedgerPlan(results []Result) operator.Plan {
	p := operator.Plan{Domain: Domain}
	var errs []error
	for _, r := range results {
		if r.Err != nil || r.Plan == nil {
			msg := r.Error
			if msg == "" && r.Err != nil {
				msg = r.Err.Error()
			}
			errs = append(errs, fmt.Errorf("mapping %s: %s", r.Mapping, msg))
			continue
		}
		sp := r.Plan
		subject := "secret " + r.Mapping + " (" + sp.Source + ")"
		for _, st := range sp.Settling {
			if st.State != swarm.UpdateUpdating {
				p.Add(swarm.KindSecret, subject, fmt.Sprintf("record the failed rollout of service %s (%s)", st.ServiceName, st.State),
					"a service's rollout onto the secret did not complete: "+st.Message)
				break
			}
		}
		if len(p.Actions) > 0 && p.Actions[len(p.Actions)-1].Subject == subject {
			continue
		}
		if !sp.Changes() {
			p.Note("%s in sync at %s (vault version %d)", r.Mapping, sp.Wanted.Name, sp.Wanted.VaultVersion)
			continue
		}
		var what []string
		if sp.Create != nil {
			what = append(what, "create "+sp.Create.Name)
		}
		for _, u := range sp.Updates {
			what = append(what, "update service "+u.ServiceName+" to "+sp.Wanted.Name)
		}
		for _, v := range sp.Remove {
			what = append(what, "remove "+v.Name)
		}
		reason := fmt.Sprintf("vault version %d is not the secret in use", sp.Wanted.VaultVersion)
		if sp.Current == nil {
			reason = fmt.Sprintf("no version of the secret exists yet (vault version %d)", sp.Wanted.VaultVersion)
		} else if sp.Current.Name == sp.Wanted.Name {
			reason = "the wanted version " + sp.Wanted.Name + " is in place; services or old versions follow"
		}
		p.Add(swarm.KindSecret, subject, strings.Join(what, ", "), reason)
		for _, w := range sp.Warnings {
			p.Note("%s: warning: %s", r.Mapping, w)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return operator.Plan{Domain: Domain, Err: err}
	}
	return p
}

// Plan reads the mappings' values from Vault and the managed secrets and services from the engine (reads
// only) and returns the sync's plan for ms (every mapping when ms is empty).
func (ss *SecretsSync) Plan(ctx context.Context, ms []secrets.Mapping) operator.Plan {
	if ss.Syncer == nil {
		return operator.Failed(Domain, errors.New("no vault connection to read the mappings from"))
	}
	if len(ms) == 0 {
		ms = ss.Mappings
	}
	return LedgerPlan(ss.Syncer.Pass(ctx, ms, Options{DryRun: true}))
}
