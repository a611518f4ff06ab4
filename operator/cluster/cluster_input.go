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
	// Engine is what the engine we talk to says of itself (release, firewall backend); EngineErr why not.
	Engine    swarm.EngineFacts
	EngineErr error
	// Tunnels are the overlay networks' endpoints with their tunnel (data-path) addresses: service tasks'
	// (attributed to their node) and, on engines up to 20.10, each node's ingress sandbox; TunnelsErr says
	// why they could not be read.
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
	DataPathEndpoints(ctx context.Context) ([]swarm.TunnelEndpoint, error)
	EngineFacts(ctx context.Context) (swarm.EngineFacts, error)
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
	in.Tunnels, in.TunnelsErr = eng.DataPathEndpoints(ctx)
	in.Engine, in.EngineErr = eng.EngineFacts(ctx)
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
