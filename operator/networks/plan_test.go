package networks

import (
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// The networks pass changes no network: its plan never has an action, and names each unencrypted network
// that is not exempt.
func TestPlanFrom(t *testing.T) {
	nets := []swarm.Network{{ID: "1", Name: "plain"}, {ID: "2", Name: "secure", Encrypted: true}, {ID: "3", Name: "ingress", Ingress: true}}
	vs := EvaluateNetworks(nets, nil, config.NetworksConfig{RequireEncryption: true, Exempt: []string{"ingress"}})
	p := PlanFrom(vs, config.NetworksConfig{RequireEncryption: true})
	if len(p.Actions) != 0 || len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "plain") || !strings.Contains(p.Notes[0], "remediate network plain") {
		t.Errorf("PlanFrom = %+v; want no action and one note naming plain", p)
	}
}
