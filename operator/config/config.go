package config

import (
	"fmt"
	"strings"
	"time"
)

// Duration is a time.Duration that reads and writes as Go duration text ("720h", "90s").
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// String prints the duration compactly ("720h" rather than "720h0m0s").
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// MarshalYAML prints the duration as text.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalText prints the duration as text (JSON, env).
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Config is swarmguard's whole configuration. cmd fills it from defaults, then the file, then SWARMGUARD_*
// environment variables, then flags. Keys are the yaml tags; configs/swarmguard.yaml documents every one.
// It holds references to secrets (file paths, Vault paths), never secret values.
type Config struct {
	Log      LogConfig      `yaml:"log"`
	Listen   string         `yaml:"listen"`
	HTTP     HTTPConfig     `yaml:"http"`
	Docker   DockerConfig   `yaml:"docker"`
	Ledger   LedgerConfig   `yaml:"ledger"`
	Lease    LeaseConfig    `yaml:"lease"`
	Tokens   TokensConfig   `yaml:"tokens"`
	Autolock AutolockConfig `yaml:"autolock"`
	PKI      PKIConfig      `yaml:"pki"`
	Networks NetworksConfig `yaml:"networks"`
	// Workloads is the hardening of every service's container spec.
	Workloads WorkloadsConfig `yaml:"workloads"`
	Vault     VaultConfig     `yaml:"vault"`
	Secrets   SecretsConfig   `yaml:"secrets"`
	Notify    NotifyConfig    `yaml:"notify"`
	Report    ReportConfig    `yaml:"report"`
}

// LogConfig sets up log/slog.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // auto (text on a terminal, JSON otherwise) | text | json
}

// HTTPConfig places the /status/* endpoints: by default beside health, readiness and metrics on listen.
type HTTPConfig struct {
	StatusListen    string `yaml:"status_listen"`     // empty: /status/* on listen; else there only (e.g. 127.0.0.1:9324)
	StatusTokenFile string `yaml:"status_token_file"` // a file holding a bearer token /status/* requires; empty: loopback clients only
}

// DockerConfig says how to reach the engine.
type DockerConfig struct {
	Host       string   `yaml:"host"`        // empty: DOCKER_HOST, else the local socket
	APITimeout Duration `yaml:"api_timeout"` // bound on every Engine API call
}

// LedgerConfig bounds the state ledger.
type LedgerConfig struct {
	Name       string `yaml:"name"`         // the config object holding it
	MaxPerKind int    `yaml:"max_per_kind"` // newest entries kept per kind
}

// LeaseConfig is the single-actor lease among replicas and CLI users.
type LeaseConfig struct {
	Name string   `yaml:"name"` // the config object holding it
	TTL  Duration `yaml:"ttl"`  // a holder that has not renewed for this long (by the observer's clock) has lost it
	Wait Duration `yaml:"wait"` // how long `rotate` and `run --once` wait for the lease before giving up
}

// TokensConfig is the join-token rotation policy.
type TokensConfig struct {
	Schedule string      `yaml:"schedule"` // when to check (cron, CRON_TZ= allowed)
	Adopt    bool        `yaml:"adopt"`    // true: a token never rotated by us starts its clock at first sight
	Worker   MaxAge      `yaml:"worker"`
	Manager  MaxAge      `yaml:"manager"`
	Publish  VaultTarget `yaml:"publish"`
	// RequireWindows: join tokens are handed out only through join windows (`swarmguard join-window open`);
	// a token that was not minted by swarmguard (adopted, changed outside the ledger) is rotated on the next
	// pass when no window of its kind is open.
	RequireWindows bool `yaml:"require_windows"`
}

// MaxAge is a rotation policy: rotate when older than MaxAge; zero means never by schedule.
type MaxAge struct {
	MaxAge Duration `yaml:"max_age"`
}

// VaultTarget is an optional Vault KV path.
type VaultTarget struct {
	VaultPath string `yaml:"vault_path"`
}

// Modes of a policy.
const (
	ModeEnforce = "enforce"
	ModeAudit   = "audit"
	ModeOff     = "off"
)

// AutolockConfig is the autolock and unlock-key policy.
type AutolockConfig struct {
	Mode     string      `yaml:"mode"`     // enforce | audit | off
	Schedule string      `yaml:"schedule"` // when to check
	Rotate   MaxAge      `yaml:"rotate"`
	Escrow   VaultTarget `yaml:"escrow"` // default secret/swarmguard/<swarm ID>/unlock-key
}

// PKIConfig is the certificate policy.
type PKIConfig struct {
	Mode           string   `yaml:"mode"`             // enforce sets node_cert_expiry on the cluster; audit reports
	NodeCertExpiry Duration `yaml:"node_cert_expiry"` // wanted validity of node certificates
	WarnBefore     string   `yaml:"warn_before"`      // a duration or a percentage of validity
	CriticalBefore string   `yaml:"critical_before"`  // a duration or a percentage of validity
	ControlSocket  string   `yaml:"control_socket"`   // swarmkit control API socket (all nodes' certificates)
	Schedule       string   `yaml:"schedule"`         // when to check certificates
	CA             CAConfig `yaml:"ca"`
	// ExternalCA is the bridge that serves swarmkit's external CA protocol and signs through Vault PKI.
	ExternalCA ExternalCAConfig `yaml:"external_ca"`
}

// ExternalCAConfig is the external CA bridge: swarmkit's CFSSL sign requests from this swarm's managers,
// signed through a Vault PKI mount (the root key stays in Vault). The validity of what it signs is the
// swarm's node-certificate expiry policy.
type ExternalCAConfig struct {
	Enabled     bool     `yaml:"enabled"`      // serve the bridge on every replica of `run`
	Listen      string   `yaml:"listen"`       // host:port of the HTTPS endpoint
	Mount       string   `yaml:"mount"`        // Vault PKI mount that signs (e.g. pki-swarm)
	ManagerRole string   `yaml:"manager_role"` // Vault role for managers: organization=<swarm ID>, ou=swarm-manager
	WorkerRole  string   `yaml:"worker_role"`  // Vault role for workers: organization=<swarm ID>, ou=swarm-worker
	ServerRole  string   `yaml:"server_role"`  // Vault role that issues the bridge's own server certificate
	URLs        []string `yaml:"urls"`         // what the swarm is told: https://<manager address>:<port>/api/v1/cfssl/sign
}

// CAConfig is the root CA rotation policy.
type CAConfig struct {
	MaxAge   Duration `yaml:"max_age"`  // zero: no scheduled rotation
	Schedule string   `yaml:"schedule"` // when to check the CA's age
}

// NetworksConfig is the overlay encryption policy.
type NetworksConfig struct {
	RequireEncryption bool     `yaml:"require_encryption"`
	Exempt            []string `yaml:"exempt"`   // network names exempt from encryption
	Schedule          string   `yaml:"schedule"` // when to check
	RemediateSubnet   string   `yaml:"remediate_subnet"`
}

// WorkloadsConfig is the workload hardening policy: every service's spec is checked; under mode enforce
// the opted-in services (label swarmguard.workloads.enforce=true, or all with enforce_all) get
// no-new-privileges and the default seccomp profile on engines with API 1.44+.
type WorkloadsConfig struct {
	Mode              string   `yaml:"mode"`               // audit (default) | enforce
	EnforceAll        bool     `yaml:"enforce_all"`        // enforce on every service, not only the labelled ones
	AllowedRegistries []string `yaml:"allowed_registries"` // image registries (host[:port][/path]) allowed; empty: any
	Schedule          string   `yaml:"schedule"`           // when to check (and enforce)
}

// VaultConfig says how to reach Vault. VAULT_ADDR and VAULT_TOKEN are honoured when address / token file are empty.
type VaultConfig struct {
	Address   string          `yaml:"address"`
	Namespace string          `yaml:"namespace"`
	Timeout   Duration        `yaml:"timeout"`
	TLS       VaultTLSConfig  `yaml:"tls"`
	Auth      VaultAuthConfig `yaml:"auth"`
}

// VaultTLSConfig is Vault's TLS settings.
type VaultTLSConfig struct {
	CAFile             string `yaml:"ca_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// VaultAuthConfig is how swarmguard logs in to Vault.
type VaultAuthConfig struct {
	Method       string `yaml:"method"`     // token | approle
	TokenFile    string `yaml:"token_file"` // token: file holding the token; empty means VAULT_TOKEN
	RoleIDFile   string `yaml:"role_id_file"`
	SecretIDFile string `yaml:"secret_id_file"`
	Mount        string `yaml:"mount"` // approle auth mount, default "approle"
}

// SecretsConfig is the Vault-to-Docker secret sync.
type SecretsConfig struct {
	HMACKeyFile    string   `yaml:"hmac_key_file"`
	RolloutTimeout Duration `yaml:"rollout_timeout"`
	// Concurrency bounds the Vault reads, secret creates and removals a pass runs at once;
	// RolloutConcurrency the services it rolls at once.
	Concurrency        int             `yaml:"concurrency"`
	RolloutConcurrency int             `yaml:"rollout_concurrency"`
	Mappings           []SecretMapping `yaml:"mappings"`
}

// SecretMapping maps one Vault value to one versioned Docker secret.
type SecretMapping struct {
	Name         string            `yaml:"name"`
	From         SecretSource      `yaml:"from"`
	Template     string            `yaml:"template"`
	Refresh      Duration          `yaml:"refresh"`
	KeepVersions int               `yaml:"keep_versions"`
	Labels       map[string]string `yaml:"labels"`
}

// SecretSource is where a mapping's value comes from.
type SecretSource struct {
	Path string `yaml:"path"` // as `vault kv get` takes it: secret/apps/db
	Key  string `yaml:"key"`
}

// NotifyConfig is the optional webhook notification.
type NotifyConfig struct {
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook receives audit events.
type Webhook struct {
	URL        string   `yaml:"url" secret:"url"`
	Events     []string `yaml:"events"`      // event names; empty means all
	SecretFile string   `yaml:"secret_file"` // file with the HMAC-SHA256 signing key
	Timeout    Duration `yaml:"timeout"`
}

// ReportConfig holds report defaults.
type ReportConfig struct {
	FailOn string `yaml:"fail_on"` // "" | none | warn | fail: exit 1 at or above this status
}

// DefaultConfig is the configuration before any file, environment or flag: safe, observing, changing nothing
// that is not asked for.
func DefaultConfig() Config {
	return Config{
		Log:    LogConfig{Level: "info", Format: "auto"},
		Listen: ":9323",
		Docker: DockerConfig{APITimeout: Duration(30 * time.Second)},
		Ledger: LedgerConfig{Name: "swarmguard-state", MaxPerKind: 50},
		Lease:  LeaseConfig{Name: "swarmguard-lease", TTL: Duration(30 * time.Second), Wait: Duration(60 * time.Second)},
		Tokens: TokensConfig{
			Schedule: "@every 1h",
			Adopt:    true,
			Worker:   MaxAge{MaxAge: Duration(720 * time.Hour)},
			Manager:  MaxAge{MaxAge: Duration(720 * time.Hour)},
		},
		Autolock: AutolockConfig{Mode: ModeAudit, Schedule: "@every 1h", Rotate: MaxAge{MaxAge: Duration(2160 * time.Hour)}},
		PKI: PKIConfig{
			Mode:           ModeAudit,
			NodeCertExpiry: Duration(2160 * time.Hour), // Docker's own default, 90 days
			WarnBefore:     "30%",
			CriticalBefore: "10%",
			ControlSocket:  "/var/run/docker/swarm/control.sock",
			Schedule:       "@every 15m",
			CA:             CAConfig{Schedule: "@daily"},
			ExternalCA: ExternalCAConfig{Listen: ":8555", Mount: "pki-swarm", ManagerRole: "swarm-manager",
				WorkerRole: "swarm-worker", ServerRole: "swarmguard-bridge", URLs: []string{}},
		},
		Networks:  NetworksConfig{RequireEncryption: true, Exempt: []string{}, Schedule: "@every 5m"},
		Workloads: WorkloadsConfig{Mode: ModeAudit, AllowedRegistries: []string{}, Schedule: "@every 10m"},
		Vault: VaultConfig{
			Timeout: Duration(10 * time.Second),
			Auth:    VaultAuthConfig{Method: "token", Mount: "approle"},
		},
		Secrets: SecretsConfig{RolloutTimeout: Duration(5 * time.Minute), Concurrency: 8, RolloutConcurrency: 8, Mappings: []SecretMapping{}},
		Notify:  NotifyConfig{Webhooks: []Webhook{}},
	}
}

// DefaultSecretMapping holds the defaults each mapping starts from.
func DefaultSecretMapping() SecretMapping {
	return SecretMapping{Refresh: Duration(time.Minute), KeepVersions: 2, Labels: map[string]string{}}
}

// DefaultWebhook holds the defaults each webhook starts from.
func DefaultWebhook() Webhook {
	return Webhook{Events: []string{}, Timeout: Duration(10 * time.Second)}
}

// EscrowPath is where the unlock key is escrowed for a swarm: the configured path, or one per swarm ID so
// one swarm's key never overwrites another's.
func (c AutolockConfig) EscrowPath(swarmID string) string {
	if c.Escrow.VaultPath != "" {
		return c.Escrow.VaultPath
	}
	return fmt.Sprintf("secret/swarmguard/%s/unlock-key", swarmID)
}
