package main

import (
	"context"
	"fmt"
	"os"

	"github.com/swarmguard/swarmguard/secrets"
)

// vaultConfig turns vault.* into the secrets package's config, honouring the standard VAULT_ADDR,
// VAULT_TOKEN and VAULT_NAMESPACE where the configuration leaves them empty.
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
	if c.Namespace == "" {
		c.Namespace = os.Getenv("VAULT_NAMESPACE")
	}
	if c.Auth.Method == secrets.AuthToken && c.Auth.TokenFile == "" {
		c.Auth.Token = secrets.SensitiveString(os.Getenv("VAULT_TOKEN"))
	}
	if c.Address == "" {
		return c, usageErr("vault.address is empty and VAULT_ADDR is not set: say where Vault is")
	}
	if err := c.Validate(); err != nil {
		return c, usageErr("vault: %v", err)
	}
	return c, nil
}

// vault builds the Vault client from the configuration and logs in (AppRole) or checks the token.
func (a *app) vault(ctx context.Context) (*secrets.Vault, error) {
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
	return v, nil
}
