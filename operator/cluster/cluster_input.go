package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// ReportInput is everything one report is built from: what was read and every read error.
type ReportInput struct {
	Now         time.Time
	Cluster     swarm.Cluster
	Nodes       []swarm.Node
	NodesErr    error
	Networks    []swarm.Network
	NetworksErr error
	Services    []swarm.Service
	ServicesErr error
	Ledger      []swarm.Entry
	LedgerErr   error
	Local       LocalSwarmState
	// Tunnels are the ingress network's endpoints with their tunnel (data-path) addresses, one per node
	// with a routing-mesh sandbox; TunnelsErr says why they could not be read.
	Tunnels    []swarm.TunnelEndpoint
	TunnelsErr error
	// ListenProbes are TLS probes of port 2377 on the nodes' data-path addresses (ListenProbed: they ran).
	ListenProbes []ListenProbe
	ListenProbed bool
}

// ReportEngine is what the report reads from the engine. *swarm.Client satisfies it.
type ReportEngine interface {
	Cluster(ctx context.Context) (swarm.Cluster, error)
	Nodes(ctx context.Context) ([]swarm.Node, error)
	Networks(ctx context.Context) ([]swarm.Network, error)
	Services(ctx context.Context) ([]swarm.Service, error)
	NetworkTunnelEndpoints(ctx context.Context, networkID string) ([]swarm.TunnelEndpoint, error)
}

// GatherReport reads the swarm for a report: the swarm object must be readable (the report identifies the
// swarm by it); any other read failure is kept and shows as `error` in the checks that needed it.
func GatherReport(ctx context.Context, eng ReportEngine, ledger operator.LedgerStore, o GatherOptions, now time.Time) (ReportInput, error) {
	in := ReportInput{Now: now, Local: o.Local}
	var err error
	if in.Cluster, err = eng.Cluster(ctx); err != nil {
		return in, err
	}
	in.Nodes, in.NodesErr = eng.Nodes(ctx)
	in.Networks, in.NetworksErr = eng.Networks(ctx)
	in.Services, in.ServicesErr = eng.Services(ctx)
	in.TunnelsErr = fmt.Errorf("the swarm has no ingress network, whose endpoints show each node's data-path address")
	if in.NetworksErr != nil {
		in.TunnelsErr = in.NetworksErr
	}
	for _, n := range in.Networks {
		if n.Ingress {
			in.Tunnels, in.TunnelsErr = eng.NetworkTunnelEndpoints(ctx, n.ID)
			break
		}
	}
	if o.Prober != nil {
		in.ListenProbes, in.ListenProbed = probeListenAddrs(ctx, o.Prober, in), in.TunnelsErr == nil && in.NodesErr == nil
	}
	if ledger != nil {
		in.Ledger, in.LedgerErr = ledger.Entries(ctx)
	} else {
		in.LedgerErr = fmt.Errorf("no ledger configured")
	}
	return in, nil
}

// GatherOptions are the report's sources besides the engine.
type GatherOptions struct {
	// Local is the engine's own swarm settings (listen and data-path address), when readable.
	Local LocalSwarmState
	// Prober, when set, TLS-probes port 2377 on the nodes' data-path addresses (CIS 7.2).
	Prober pki.Prober
}
