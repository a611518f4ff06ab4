package secrets

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/swarmguard/swarmguard/sensitive"
)

// Auth methods.
const (
	AuthToken   = "token"
	AuthAppRole = "approle"
)

// Tunables.
const (
	// DefaultVaultTimeout bounds one Vault request; KV reads are small.
	DefaultVaultTimeout = 10 * time.Second
	// reloginMinBackoff and reloginMaxBackoff bound the wait between failed
	// logins, so a Vault outage is not hammered and a fix is picked up soon.
	reloginMinBackoff = time.Second
	reloginMaxBackoff = 2 * time.Minute
	// defaultAppRoleMount is where `vault auth enable approle` mounts it.
	defaultAppRoleMount = "approle"
	// vaultDialTimeout bounds connecting to Vault and its TLS handshake.
	vaultDialTimeout = 10 * time.Second
)

// VaultConfig says how to reach and log in to Vault. It holds file paths and
// values handed in by cmd (which reads VAULT_ADDR and VAULT_TOKEN); nothing
// here reads the environment, and the client built from it ignores every
// VAULT_* variable the Vault API package would otherwise read.
type VaultConfig struct {
	// Address is the Vault URL, e.g. https://vault.internal:8200.
	Address string
	// Namespace is the Vault Enterprise namespace, if any.
	Namespace string
	// CACertFile is a PEM bundle to verify Vault's certificate with.
	CACertFile string
	// TLSServerName overrides the name checked in Vault's certificate.
	TLSServerName string
	// InsecureSkipVerify turns off certificate checks; warned about at every start.
	InsecureSkipVerify bool
	// Timeout bounds each request; 0 means DefaultVaultTimeout.
	Timeout time.Duration
	// Auth says how to log in.
	Auth AuthConfig
	// ReadFile reads the token, role ID and secret ID files; nil means
	// os.ReadFile. The files are re-read at each login, so a rotated secret
	// ID is picked up.
	ReadFile func(string) ([]byte, error)
}

// AuthConfig is the login method and where its credentials are.
type AuthConfig struct {
	// Method is "token" or "approle".
	Method string
	// Token is a token handed in by cmd (VAULT_TOKEN); used when TokenFile is empty.
	Token sensitive.Value
	// TokenFile holds the token (method token).
	TokenFile string
	// RoleIDFile and SecretIDFile hold the AppRole credentials.
	RoleIDFile   string
	SecretIDFile string
	// Mount is the AppRole auth mount; empty means "approle".
	Mount string
}

// Validate checks the config without touching the network or files.
func (c VaultConfig) Validate() error {
	var errs []error
	if c.Address == "" {
		errs = append(errs, &FieldError{Field: "address", Msg: "is empty (set vault.address or VAULT_ADDR)"})
	} else if !strings.HasPrefix(c.Address, "http://") && !strings.HasPrefix(c.Address, "https://") {
		errs = append(errs, &FieldError{Field: "address", Msg: fmt.Sprintf("%q is not an http:// or https:// URL", c.Address)})
	}
	switch c.Auth.Method {
	case AuthToken:
		if c.Auth.TokenFile == "" && c.Auth.Token.IsZero() {
			errs = append(errs, &FieldError{Field: "auth.token_file", Msg: "is empty and no VAULT_TOKEN is set"})
		}
	case AuthAppRole:
		if c.Auth.RoleIDFile == "" {
			errs = append(errs, &FieldError{Field: "auth.role_id_file", Msg: "is required for method approle"})
		}
		if c.Auth.SecretIDFile == "" {
			errs = append(errs, &FieldError{Field: "auth.secret_id_file", Msg: "is required for method approle"})
		}
	default:
		errs = append(errs, &FieldError{Field: "auth.method", Msg: fmt.Sprintf("%q is not one of token, approle", c.Auth.Method)})
	}
	if c.Timeout < 0 {
		errs = append(errs, &FieldError{Field: "timeout", Msg: "is negative"})
	}
	return errors.Join(errs...)
}

// Vault is a logged-in Vault client. Run keeps its token alive.
type Vault struct {
	cfg    VaultConfig
	client *api.Client
	httpc  *http.Client // shared by client and the login requests
	log    *slog.Logger

	mu       sync.Mutex
	authSec  *api.Secret // what the last login or lookup returned, for the watcher
	loggedIn bool
	// tokenLost is set when renewal ended; the next successful login counts
	// as a re-login.
	tokenLost bool

	// renewed and relogins count events, for status and tests: a re-login
	// is counted once the new token is in hand, not when the old one is lost.
	renewed, relogins int
}

// NewVault builds the client; it does not touch the network. log may be nil.
func NewVault(cfg VaultConfig, log *slog.Logger) (*Vault, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("vault config: %w", err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultVaultTimeout
	}
	if cfg.ReadFile == nil {
		cfg.ReadFile = os.ReadFile
	}
	httpc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.InsecureSkipVerify {
		log.Warn("vault certificate verification is off (vault.tls.insecure_skip_verify); anyone between swarmguard and vault can read its secrets",
			"vault_addr", cfg.Address)
	}
	c, err := newAPIClient(cfg, httpc)
	if err != nil {
		return nil, err
	}
	return &Vault{cfg: cfg, client: c, httpc: httpc, log: log.With("component", "vault")}, nil
}

// errVaultRedirect is what a Vault answer with a redirect becomes: never followed, since the request carries
// the token (and a login the secret ID).
var errVaultRedirect = errors.New("vault answered with a redirect")

// newHTTPClient is the HTTP client every Vault request goes through, built from cfg alone: no proxy (neither
// VAULT_HTTP_PROXY / VAULT_PROXY_ADDR nor HTTPS_PROXY), TLS 1.2 at least, the configured CA bundle and
// server name, and no redirect followed (a redirect would re-send the token to wherever Location says).
func newHTTPClient(cfg VaultConfig) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: vaultDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   vaultDialTimeout,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   16, // room for the sync's read pool (secrets.concurrency, default 8) to stay kept-alive
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	hc := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return errVaultRedirect }}
	// ConfigureTLS only fills tr.TLSClientConfig from these settings (it reads no environment).
	ac := &api.Config{HttpClient: hc}
	tc := &api.TLSConfig{CACert: cfg.CACertFile, TLSServerName: cfg.TLSServerName, Insecure: cfg.InsecureSkipVerify}
	if err := ac.ConfigureTLS(tc); err != nil {
		return nil, fmt.Errorf("vault tls (vault.tls.ca_file %q): %w", cfg.CACertFile, err)
	}
	return hc, nil
}

// newAPIClient builds a Vault API client over httpc from cfg alone. api.NewClient reads the environment
// on its own (VAULT_TOKEN, VAULT_NAMESPACE, VAULT_HEADERS; VAULT_WRAP_TTL at each request): every one of
// those is undone here. Nothing else of its defaults is used: address, agent address (none), SRV lookup
// (off), retries, redirects (never followed) are all set from here.
func newAPIClient(cfg VaultConfig, httpc *http.Client) (*api.Client, error) {
	ac := &api.Config{
		Address:          cfg.Address,
		HttpClient:       httpc,
		Timeout:          cfg.Timeout,
		MaxRetries:       1,
		MinRetryWait:     time.Second,
		MaxRetryWait:     1500 * time.Millisecond,
		DisableRedirects: true,
		CheckRetry: func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			if errors.Is(err, errVaultRedirect) {
				return false, err
			}
			return api.DefaultRetryPolicy(ctx, resp, err)
		},
	}
	c, err := api.NewClient(ac)
	if err != nil {
		// The only environment NewClient can fail on is its own defaults' (an unparsable VAULT_* variable).
		return nil, fmt.Errorf("vault client: %w (swarmguard takes Vault's settings from its configuration only; unset the VAULT_* variable named here)", err)
	}
	c.ClearToken()
	c.ClearNamespace()
	c.SetHeaders(http.Header{api.RequestHeaderName: []string{"true"}})
	c.SetWrappingLookupFunc(func(string, string) string { return "" })
	if cfg.Namespace != "" {
		c.SetNamespace(cfg.Namespace)
	}
	return c, nil
}

// KV returns the KV reader and writer over this client.
func (v *Vault) KV() *KV { return newKV(v.client.Logical()) }

// Stats are counters for status and tests.
type Stats struct{ Renewals, Relogins int }

// Stats returns how often the token was renewed and logged in again.
func (v *Vault) Stats() Stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return Stats{Renewals: v.renewed, Relogins: v.relogins}
}

func (v *Vault) readCred(field, path string) (string, error) {
	b, err := v.cfg.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading vault.%s %q: %w", field, path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("vault.%s %q is empty", field, path)
	}
	return s, nil
}

// Login logs in (AppRole) or checks the token (token method) and keeps what
// the renewal needs. Safe to call again.
func (v *Vault) Login(ctx context.Context) error {
	switch v.cfg.Auth.Method {
	case AuthAppRole:
		return v.loginAppRole(ctx)
	default:
		return v.loginToken(ctx)
	}
}

func (v *Vault) loginAppRole(ctx context.Context) error {
	roleID, err := v.readCred("auth.role_id_file", v.cfg.Auth.RoleIDFile)
	if err != nil {
		return err
	}
	secretID, err := v.readCred("auth.secret_id_file", v.cfg.Auth.SecretIDFile)
	if err != nil {
		return err
	}
	mount := v.cfg.Auth.Mount
	if mount == "" {
		mount = defaultAppRoleMount
	}
	path := "auth/" + strings.Trim(mount, "/") + "/login"
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	// Log in with a token-less request: a stale token must not be sent along. A fresh client, not
	// Clone: a clone reads VAULT_* again and drops DisableRedirects.
	lc, err := newAPIClient(v.cfg, v.httpc)
	if err != nil {
		return fmt.Errorf("vault approle login: %w", err)
	}
	sec, err := lc.Logical().WriteWithContext(ctx, path, map[string]any{"role_id": roleID, "secret_id": secretID})
	if err != nil {
		var re *api.ResponseError
		if errors.As(err, &re) && re.StatusCode == 400 {
			return fmt.Errorf("vault approle login at %q: refused (%d): check vault.auth.role_id_file and secret_id_file (a secret ID may have expired or been used up)", path, re.StatusCode)
		}
		return vaultError("logging in at", path, err)
	}
	if sec == nil || sec.Auth == nil || sec.Auth.ClientToken == "" {
		return fmt.Errorf("vault approle login at %q: no token in the answer", path)
	}
	v.client.SetToken(sec.Auth.ClientToken)
	v.mu.Lock()
	v.authSec = sec
	v.loggedIn = true
	v.countRelogin()
	v.mu.Unlock()
	v.log.Info("logged in to vault", "method", AuthAppRole, "token_ttl", time.Duration(sec.Auth.LeaseDuration)*time.Second,
		"renewable", sec.Auth.Renewable, "policies", sec.Auth.Policies)
	return nil
}

func (v *Vault) loginToken(ctx context.Context) error {
	tok := v.cfg.Auth.Token.Reveal()
	if v.cfg.Auth.TokenFile != "" {
		t, err := v.readCred("auth.token_file", v.cfg.Auth.TokenFile)
		if err != nil {
			return err
		}
		tok = t
	}
	v.client.SetToken(tok)
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	sec, err := v.client.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return vaultError("looking up the token at", "auth/token/lookup-self", err)
	}
	ttl, _ := sec.TokenTTL()
	renewable, _ := sec.TokenIsRenewable()
	policies, _ := sec.TokenPolicies()
	// Shape it like a login answer, which is what the lifetime watcher takes.
	auth := &api.Secret{Auth: &api.SecretAuth{ClientToken: tok, LeaseDuration: int(ttl.Seconds()), Renewable: renewable, Policies: policies}}
	v.mu.Lock()
	v.authSec = auth
	v.loggedIn = true
	v.countRelogin()
	v.mu.Unlock()
	v.log.Info("vault token accepted", "method", AuthToken, "token_ttl", ttl, "renewable", renewable, "policies", policies)
	return nil
}

// Revoke ends the token this client obtained by an AppRole login, so that it
// does not outlive its use until its TTL. A token the operator handed in
// (token method) is theirs and is never revoked. Afterwards the client is
// logged out; stop Run first, or it logs in again.
func (v *Vault) Revoke(ctx context.Context) error {
	v.mu.Lock()
	owned := v.loggedIn && v.cfg.Auth.Method == AuthAppRole
	v.mu.Unlock()
	if !owned {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
	defer cancel()
	if err := v.client.Auth().Token().RevokeSelfWithContext(ctx, ""); err != nil {
		return vaultError("revoking the token at", "auth/token/revoke-self", err)
	}
	v.mu.Lock()
	v.loggedIn = false
	v.authSec = nil
	v.mu.Unlock()
	v.client.ClearToken()
	v.log.Info("vault token revoked", "method", AuthAppRole)
	return nil
}

// countRelogin counts a login that replaced a lost token. v.mu is held.
func (v *Vault) countRelogin() {
	if v.tokenLost {
		v.tokenLost = false
		v.relogins++
	}
}

// Run keeps the token valid until ctx ends: it renews it with the client's
// LifetimeWatcher and, when renewal ends (max TTL reached, token revoked,
// renewal refused), logs in afresh, backing off with jitter while that fails.
// A token without expiry (a root token) needs nothing and Run just waits.
func (v *Vault) Run(ctx context.Context) error {
	backoff := reloginMinBackoff
	for {
		v.mu.Lock()
		sec, ok := v.authSec, v.loggedIn
		v.mu.Unlock()
		if !ok {
			if err := v.Login(ctx); err != nil {
				wait := jitter(backoff)
				v.log.Warn("vault login failed, will retry", "err", err, "retry_in", wait)
				backoff = min(backoff*2, reloginMaxBackoff)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
				continue
			}
			backoff = reloginMinBackoff
			continue
		}
		if sec.Auth.LeaseDuration == 0 {
			<-ctx.Done() // no expiry: nothing to renew
			return nil
		}
		if err := v.watch(ctx, sec); err != nil {
			v.log.Warn("vault token renewal ended, logging in again", "err", err)
		} else if ctx.Err() == nil {
			v.log.Info("vault token reached its maximum lifetime, logging in again")
		}
		if ctx.Err() != nil {
			return nil
		}
		v.mu.Lock()
		v.loggedIn = false
		v.tokenLost = true
		v.mu.Unlock()
	}
}

// watch renews sec until the watcher gives up or ctx ends.
func (v *Vault) watch(ctx context.Context, sec *api.Secret) error {
	w, err := v.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: sec})
	if err != nil {
		return fmt.Errorf("starting token renewal: %w", err)
	}
	go w.Start()
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.DoneCh():
			if err != nil {
				return vaultError("renewing the token at", "auth/token/renew-self", err)
			}
			return nil
		case r := <-w.RenewCh():
			ttl := 0
			if r != nil && r.Secret != nil && r.Secret.Auth != nil {
				ttl = r.Secret.Auth.LeaseDuration
			}
			v.mu.Lock()
			v.renewed++
			v.mu.Unlock()
			v.log.Debug("renewed vault token", "token_ttl", time.Duration(ttl)*time.Second)
		}
	}
}

// jitter spreads d over [d/2, d] so replicas do not retry in step.
func jitter(d time.Duration) time.Duration {
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// jsonInt reads a number Vault sent as json.Number, float64 or string.
func jsonInt(x any) (int, bool) {
	switch n := x.(type) {
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	case float64:
		return int(n), true
	case int:
		return n, true
	case string:
		var i int
		_, err := fmt.Sscan(n, &i)
		return i, err == nil
	}
	return 0, false
}
