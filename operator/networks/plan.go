package networks

import (
	"context"
	"fmt"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
)

// Domain is the networks domain's name in plans.
const Domain = "networks"

// PlanFrom is the networks pass's plan: it never holds an action, because the controller changes no
// network (remediation is a person's `swarmguard remediate network`, which plans and records its own).
// Each unencrypted network that is not exempt is a note naming that command. It is pure.
func PlanFrom(vs []NetworkVerdict, c config.NetworksConfig) operator.Plan {
	p := operator.Plan{Domain: Domain}
	for _, v := range vs {
		if v.Status != report.StatusFail {
			continue
		}
		if c.RequireEncryption {
			p.Note("overlay network %s is not encrypted and not exempt: the controller changes no network; `swarmguard remediate network %s` plans its encrypted twin", v.Network.Name, v.Network.Name)
		} else {
			p.Note("overlay network %s is not encrypted (networks.require_encryption is false)", v.Network.Name)
		}
	}
	return p
}

// Plan observes the overlay networks and the services (reads only) and returns the networks pass's plan.
func Plan(ctx context.Context, eng Engine, c config.NetworksConfig) operator.Plan {
	nets, err := eng.Networks(ctx)
	if err != nil {
		return operator.Failed(Domain, fmt.Errorf("reading the networks: %w", err))
	}
	svcs, err := eng.Services(ctx)
	if err != nil {
		return operator.Failed(Domain, fmt.Errorf("reading the services: %w", err))
	}
	vs, _ := Verdicts(Observation{Networks: nets, Services: svcs}, c)
	return PlanFrom(vs, c)
}
