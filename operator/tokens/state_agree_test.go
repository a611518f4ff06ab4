package tokens

import (
	"testing"

	"github.com/swarmguard/swarmguard/swarm"
)

// The ledger keeps an open window as state by the details it is written with: the same keys and actions.
func TestWindowDetailsAreTheLedgerState(t *testing.T) {
	if DetailWindow != swarm.StateDetailWindow || DetailWindowAction != swarm.StateDetailWindowAction || windowActionOpen != "open" || windowActionClose != "close" {
		t.Errorf("window details %q %q %q %q; want the ledger state's %q %q open close", DetailWindow, DetailWindowAction, windowActionOpen, windowActionClose,
			swarm.StateDetailWindow, swarm.StateDetailWindowAction)
	}
}
