package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
)

// vaultConfig turns vault.* into the secrets package's config. The configuration says where credentials go:
// of the VAULT_* variables only two are read, VAULT_ADDR when vault.address is empty and VAULT_TOKEN when
// the method is token and vault.auth.token_file is empty. Every other one (VAULT_AGENT_ADDR,
// VAULT_PROXY_ADDR, VAULT_HTTP_PROXY, VAULT_CACERT, VAULT_SKIP_VERIFY, VAULT_NAMESPACE, VAULT_SRV_LOOKUP, ...)
// is ignored; secrets.NewVault makes sure the Vault API package does not read them either.
func (a *app) vaultConfig() (secrets.VaultConfig, error) {
	vc := a.cfg.Vault
	c := secrets.VaultConfig{
		Address:            vc.Address,
		Namespace:          vc.Namespace,
		CACertFile:         vc.TLS.CAFile,
		TLSServerName:      vc.TLS.ServerName,
		InsecureSkipVerify: vc.TLS.InsecureSkipVerify,
		Timeout:            vc.Timeout.D(),
		Auth: secrets.AuthConfig{Method: vc.Auth.Method, TokenFile: vc.Auth.TokenFile,
			RoleIDFile: vc.Auth.RoleIDFile, SecretIDFile: vc.Auth.SecretIDFile, Mount: vc.Auth.Mount},
	}
	if c.Address == "" {
		c.Address = os.Getenv("VAULT_ADDR")
	}
	if c.Auth.Method == secrets.AuthToken && c.Auth.TokenFile == "" {
		c.Auth.Token = sensitive.New(os.Getenv("VAULT_TOKEN"))
	}
	if c.Address == "" {
		return c, usageErr("vault.address is empty and VAULT_ADDR is not set: say where Vault is")
	}
	if err := c.Validate(); err != nil {
		return c, usageErr("vault: %v", err)
	}
	return c, nil
}

// vault returns the process's one Vault client, logging in (AppRole) or checking the token on first use.
// Every command and controller task shares it, so a process holds one Vault token: renewed while the
// process lives (the client's Run), and revoked at exit by closeVault when swarmguard obtained it itself.
// A failed login is not kept: the next call tries again.
func (a *app) vault(ctx context.Context) (*secrets.Vault, error) {
	a.vaultMu.Lock()
	defer a.vaultMu.Unlock()
	if a.vaultClient != nil {
		return a.vaultClient, nil
	}
	c, err := a.vaultConfig()
	if err != nil {
		return nil, err
	}
	v, err := secrets.NewVault(c, a.log)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	if err := v.Login(ctx); err != nil {
		return nil, failed(fmt.Errorf("vault at %s: %w", c.Address, err))
	}
	// The renewal lives as long as the process, not the call that logged in.
	rctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { _ = v.Run(rctx); close(done) }()
	a.vaultClient, a.vaultStop = v, func() { stop(); <-done }
	return v, nil
}

// vaultRevokeTimeout bounds the revocation at exit, which runs after a SIGTERM too.
const vaultRevokeTimeout = 5 * time.Second

// closeVault stops the token's renewal and revokes a token swarmguard logged in for (AppRole), so it does
// not outlive the process until its TTL. An operator's own token (token method) is left alone. A failed
// revocation is logged, not fatal: the token then lapses at the end of its TTL.
func (a *app) closeVault() {
	a.vaultMu.Lock()
	v, stop := a.vaultClient, a.vaultStop
	a.vaultClient, a.vaultStop = nil, nil
	a.vaultMu.Unlock()
	if v == nil {
		return
	}
	stop()
	ctx, cancel := context.WithTimeout(context.Background(), vaultRevokeTimeout)
	defer cancel()
	if err := v.Revoke(ctx); err != nil && a.log != nil {
		a.log.Warn("could not revoke swarmguard's vault token; it lapses at the end of its TTL", "err", err)
	}
}
