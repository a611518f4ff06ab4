package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/externalca"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// bridgeServerCertTTL is the validity asked of Vault for the bridge's own server certificate; it is
// reissued at two thirds of it, so a day keeps the key short-lived without loading Vault.
const bridgeServerCertTTL = 24 * time.Hour

// startExternalCA serves the external CA bridge when pki.external_ca.enabled is true, on every replica (not
// only the lease holder: swarmkit tries each manager's URL in turn). It returns a channel that yields the
// bridge's error if it stops on its own (nil when the bridge is off) and a stop function that waits for it.
func (a *app) startExternalCA(ctx context.Context, c *swarm.Client, aud *audit.Auditor, m *operator.Metrics, log *slog.Logger) (<-chan error, func(), error) {
	e := a.cfg.PKI.ExternalCA
	if !e.Enabled {
		return nil, func() {}, nil
	}
	pki := lazyPKI{a: a, mount: e.Mount}
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
	// The first certificate now: a missing role or policy is found at start, not at the first renewal. A
	// Vault that cannot be reached is not a configuration error: the bridge serves, its handshakes fail until
	// Vault is back (each retries the issuance), and swarmkit retries its requests meanwhile.
	if _, err := certs.ServerCertificate(ctx); err != nil {
		if !errors.Is(err, secrets.ErrUnreachable) {
			return nil, nil, failed(fmt.Errorf("pki.external_ca: issuing the bridge's server certificate with role %q: %w", e.ServerRole, err))
		}
		log.Warn("vault unreachable: the external CA bridge has no server certificate yet, will retry at each handshake",
			"server_role", e.ServerRole, "err", err)
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

// lazyPKI logs in to Vault at first use, and again after a failed login, like the secrets loop: a Vault
// that is down when run starts delays the bridge's answers (swarmkit retries) instead of stopping run.
type lazyPKI struct {
	a     *app
	mount string
}

func (l lazyPKI) pki(ctx context.Context) (*secrets.PKI, error) {
	v, err := l.a.vault(ctx)
	if err != nil {
		return nil, err
	}
	return v.PKI(l.mount), nil
}

// Mount is the PKI mount the bridge signs with.
func (l lazyPKI) Mount() string { return l.mount }

// Role reads a role of the mount.
func (l lazyPKI) Role(ctx context.Context, role string) (secrets.PKIRole, error) {
	p, err := l.pki(ctx)
	if err != nil {
		return secrets.PKIRole{}, err
	}
	return p.Role(ctx, role)
}

// Sign signs through a role of the mount.
func (l lazyPKI) Sign(ctx context.Context, role string, req secrets.PKISignRequest) (secrets.PKIIssued, error) {
	p, err := l.pki(ctx)
	if err != nil {
		return secrets.PKIIssued{}, err
	}
	return p.Sign(ctx, role, req)
}

// IssueServer issues the bridge's server certificate.
func (l lazyPKI) IssueServer(ctx context.Context, role, cn string, dnsNames, ips []string, ttl time.Duration) (tls.Certificate, error) {
	p, err := l.pki(ctx)
	if err != nil {
		return tls.Certificate{}, err
	}
	return p.IssueServer(ctx, role, cn, dnsNames, ips, ttl)
}
