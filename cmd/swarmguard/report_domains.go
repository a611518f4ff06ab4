package main

import (
	"context"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// gatherReportDomains adds the checks of the other domains (tokens, autolock, certificates, secrets sync) to
// the report input. A domain this build does not include is left out: the report shows its checks as info,
// "not available in this build", never as pass.
func gatherReportDomains(ctx context.Context, a *app, c *swarm.Client, in *operator.ReportInput) {
	in.Domains[operator.DomainTokens] = operator.TokensDomain(a.cfg.Tokens, in.Cluster, in.Ledger, in.LedgerErr, in.Now)
	in.Domains[operator.DomainAutolock] = a.autolock(c, a.ledger(c)).Domain(ctx, in.Now)
	in.Domains[operator.DomainCerts] = operator.CertsDomain(ctx, c, a.pkiSources(), a.cfg.PKI, in.Now)
	in.Domains[operator.DomainSecrets] = reportSecrets(ctx, a, in)
}

// reportSecrets judges the secret sync with a dry-run pass (reads Vault and the engine, changes nothing).
// With no mapping configured Vault is not contacted.
func reportSecrets(ctx context.Context, a *app, in *operator.ReportInput) operator.DomainResult {
	if len(a.cfg.Secrets.Mappings) == 0 {
		return operator.SecretsDomainFrom(nil, in.Ledger, in.LedgerErr, in.Now)
	}
	ss, ms, err := a.openSync(ctx, nil)
	if err != nil {
		return operator.DomainResult{Err: err}
	}
	results := ss.Syncer.Pass(ctx, ms, secrets.Options{DryRun: true})
	return operator.SecretsDomainFrom(results, in.Ledger, in.LedgerErr, in.Now)
}
