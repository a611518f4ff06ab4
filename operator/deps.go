package operator

import (
	"context"

	"github.com/swarmguard/swarmguard/swarm"
)

// SwarmReader is what the status and reports read from the engine. *swarm.Client satisfies it.
type SwarmReader interface {
	Check(ctx context.Context) (swarm.Self, error)
	Cluster(ctx context.Context) (swarm.Cluster, error)
	Nodes(ctx context.Context) ([]swarm.Node, error)
}

// LedgerStore reads and appends the rotation ledger. *swarm.Ledger satisfies it.
type LedgerStore interface {
	Entries(ctx context.Context) ([]swarm.Entry, error)
	Append(ctx context.Context, entries ...swarm.Entry) ([]swarm.Entry, error)
}

var (
	_ SwarmReader = (*swarm.Client)(nil)
	_ LedgerStore = (*swarm.Ledger)(nil)
)
