// Package compliance assembles `swarmguard report`: it hands what was read to each domain, in one explicit
// order, and puts the domains' sections together (report.New). It decides nothing itself: every verdict is
// the domain's, derived from the same decision the controller acts on.
package compliance

import (
	"github.com/swarmguard/swarmguard/operator/autolock"
	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/cluster"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/networks"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/operator/tokens"
	"github.com/swarmguard/swarmguard/operator/workloads"
	"github.com/swarmguard/swarmguard/pki"
)

// Input is everything one report is built from: the swarm-level reads (the swarm object, nodes,
// networks, services, the ledger, the engine's own state) and what the domains read beyond them, each with
// its read error.
type Input struct {
	cluster.ReportInput
	// Autolock is the unlock key's fingerprint and the escrow (autolock.(*Autolock).Observe).
	Autolock autolock.Observation
	// Inventory is every node's certificate; InventoryErr says why it could not be read.
	Inventory    pki.Inventory
	InventoryErr error
	// Secrets are the results of a dry-run sync pass; SecretsErr says why it could not run.
	Secrets    []secretsync.Result
	SecretsErr error
	// Workloads is every service's container hardening (workloads.Observe).
	Workloads workloads.Observation
}

// Sections are the domains' sections, in the report's order: the swarm-level checks, networks, join
// tokens, autolock, certificates, secret sync, workloads.
func Sections(in Input, c config.Config) []report.Section {
	now := in.Now.UTC()
	return []report.Section{
		cluster.Section(in.ReportInput),
		networks.Section(networkObservation(in.ReportInput), c.Networks),
		tokens.Section(c.Tokens, in.Cluster, in.Ledger, in.LedgerErr, now),
		autolock.Section(in.Cluster, in.Ledger, in.LedgerErr, in.Autolock, c.Autolock, now),
		certs.Section(in.Cluster, in.Ledger, in.LedgerErr, in.Inventory, in.InventoryErr, c.PKI, now),
		secretsync.Section(in.Secrets, in.SecretsErr, in.Ledger, in.LedgerErr, now),
		workloads.Section(in.Workloads, c.Workloads),
	}
}

// Build evaluates every check on what was read. It is a pure function of in and c.
func Build(in Input, c config.Config) report.Report {
	return report.New(in.Now, in.Cluster.ID, Sections(in, c)...)
}

func networkObservation(in cluster.ReportInput) networks.Observation {
	return networks.Observation{Cluster: in.Cluster, Networks: in.Networks, NetworksErr: in.NetworksErr,
		Services: in.Services, ServicesErr: in.ServicesErr, Nodes: in.Nodes, NodesErr: in.NodesErr}
}

// Gauges are the report's metrics: every check's status, every overlay network's encryption and each
// workload check's findings. The controller exports the same series in parts, each domain's loop from its
// own pass (the domains' SectionGauges); TestDomainGaugesAgreeWithReport holds the two together.
func Gauges(r report.Report, in Input, c config.Config) []report.Gauge {
	g := append(report.CheckGauges(r.Checks), networks.Gauges(networkObservation(in.ReportInput), c.Networks)...)
	return append(g, workloads.Gauges(in.Workloads, c.Workloads)...)
}
