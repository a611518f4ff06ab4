package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/externalca"
	"github.com/swarmguard/swarmguard/swarm"
)

// bridgeServerCertTTL is the validity asked of Vault for the bridge's own server certificate; it is
// reissued at two thirds of it, so a day keeps the key short-lived without loading Vault.
const bridgeServerCertTTL = 24 * time.Hour

// startExternalCA serves the external CA bridge when pki.external_ca.enabled is true, on every replica (not
// only the lease holder: swarmkit tries each manager's URL in turn). It returns a channel that yields the
// bridge's error if it stops on its own (nil when the bridge is off) and a stop function that waits for it.
func (a *app) startExternalCA(ctx context.Context, c *swarm.Client, aud *operator.Auditor, m *operator.Metrics, log *slog.Logger) (<-chan error, func(), error) {
	e := a.cfg.PKI.ExternalCA
	if !e.Enabled {
		return nil, func() {}, nil
	}
	v, err := a.vault(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("pki.external_ca: %w", err)
	}
	pki := v.PKI(e.Mount)
	var dnsNames, ips []string
	for _, raw := range e.URLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, nil, usageErr("pki.external_ca.urls: %q is not a URL: %v", raw, err)
		}
		if net.ParseIP(u.Hostname()) != nil {
			ips = append(ips, u.Hostname())
		} else {
			dnsNames = append(dnsNames, u.Hostname())
		}
	}
	certs := &externalca.VaultCert{Issue: func(ctx context.Context) (tls.Certificate, error) {
		return pki.IssueServer(ctx, e.ServerRole, "swarm-ca", dnsNames, ips, bridgeServerCertTTL)
	}}
	// The first certificate now: a missing role or policy is found at start, not at the first renewal.
	if _, err := certs.ServerCertificate(ctx); err != nil {
		return nil, nil, failed(fmt.Errorf("pki.external_ca: issuing the bridge's server certificate with role %q: %w", e.ServerRole, err))
	}
	ln, err := net.Listen("tcp", e.Listen)
	if err != nil {
		return nil, nil, failed(fmt.Errorf("listening on %s: %w (set pki.external_ca.listen to a free address)", e.Listen, err))
	}
	bridge := externalca.New(pki, externalca.SwarmTrust{Swarm: c},
		externalca.Roles{Manager: e.ManagerRole, Worker: e.WorkerRole}, aud, externalca.NewMetrics(m.Registerer()), a.log)
	bctx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := externalca.Serve(bctx, operator.LimitListener(ln, operator.HTTPMaxConnections), bridge, certs, a.log); err != nil && bctx.Err() == nil {
			errc <- err
		}
	}()
	log.Info("serving the external CA bridge", "listen", ln.Addr().String(), "vault_mount", e.Mount,
		"manager_role", e.ManagerRole, "worker_role", e.WorkerRole, "urls", e.URLs)
	return errc, func() { cancel(); <-done }, nil
}
