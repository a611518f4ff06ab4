package main

import (
	"context"

	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/compliance"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/operator/workloads"
	"github.com/swarmguard/swarmguard/swarm"
)

// gatherReportDomains reads what the domains need beyond the swarm-level reads: the unlock key and its
// escrow, every certificate, a dry-run secret sync pass, and every service's container hardening. Each read error is kept in the input and
// shows as `error` in the checks that needed it.
func gatherReportDomains(ctx context.Context, a *app, c *swarm.Client, in *compliance.Input) {
	in.Autolock = a.autolock(c, a.ledger(c)).Observe(ctx, in.Cluster)
	in.Inventory, in.InventoryErr = certs.Inventory(ctx, c, a.pkiSources())
	in.Secrets, in.SecretsErr = reportSecrets(ctx, a)
	in.Workloads = workloads.Observe(ctx, c)
}

// reportSecrets judges the secret sync with a dry-run pass (reads Vault and the engine, changes nothing).
// With no mapping configured Vault is not contacted.
func reportSecrets(ctx context.Context, a *app) ([]secretsync.Result, error) {
	if len(a.cfg.Secrets.Mappings) == 0 {
		return nil, nil
	}
	ss, ms, _, err := a.openSync(ctx, nil, false)
	if err != nil {
		return nil, err
	}
	return ss.Syncer.Pass(ctx, ms, secretsync.Options{DryRun: true}), nil
}
