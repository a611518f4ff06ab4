package incident

import (
	"testing"

	"github.com/swarmguard/swarmguard/swarm"
)

// The ledger keeps an incident's steps as state by the details they are written with.
func TestStepDetailsAreTheLedgerState(t *testing.T) {
	if DetailIncident != swarm.StateDetailIncident || DetailStep != swarm.StateDetailStep {
		t.Errorf("step details %q %q; want the ledger state's %q %q", DetailIncident, DetailStep, swarm.StateDetailIncident, swarm.StateDetailStep)
	}
}
