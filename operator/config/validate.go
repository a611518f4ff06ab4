package config

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/swarm"

	"github.com/robfig/cron/v3"
)

// scheduleParser is the one cron parser of swarmguard: config check and the scheduler both use it, so a
// schedule that passes the check is one the scheduler runs. Five fields, descriptors (@daily, @every 1h)
// and a CRON_TZ= or TZ= prefix.
var scheduleParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a schedule as the scheduler will.
func ParseSchedule(spec string) (cron.Schedule, error) { return scheduleParser.Parse(spec) }

// ScheduleParser returns the parser the scheduler must be built with (cron.WithParser).
func ScheduleParser() cron.Parser { return scheduleParser }

// registryHostPort is a registry host with a port and an optional path (registry.internal:5000/team).
var registryHostPort = regexp.MustCompile(`^[a-zA-Z0-9.-]+:[0-9]+(/[a-z0-9._/-]+)?$`)

var mappingName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// The range of lease.ttl. Below MinLeaseTTL the holder's renewals (every third of it) cannot keep up with
// an engine call's latency. Above MaxLeaseTTL a holder that dies, or a CLI handed the lease that dies, stops
// every action in the swarm (rotations, syncs, the CA's follow-up) for that long before another replica
// may act; 5 minutes is well above a swarm's raft re-election (12 s to over 30 s in the lab).
const (
	MinLeaseTTL = 2 * time.Second
	MaxLeaseTTL = 5 * time.Minute
)

// maxSecretNameLen is Docker's limit on object names (64), less the "-<8 hex>" version suffix.
const maxSecretNameLen = 64 - 9

// Validate checks the rules a decoded configuration must follow, across fields, and says which key to change.
// It collects every problem. It does not touch the filesystem: see FileProblems.
func (c Config) Validate() Problems {
	var ps Problems
	add := func(key, format string, args ...any) { ps = append(ps, Problem{key, fmt.Sprintf(format, args...)}) }

	oneOf := func(key, val string, allowed ...string) {
		for _, a := range allowed {
			if val == a {
				return
			}
		}
		add(key, "%q is not one of %s", val, strings.Join(allowed, ", "))
	}
	schedule := func(key, spec string) {
		if spec == "" {
			add(key, "is empty; give a cron expression (example: \"CRON_TZ=UTC 0 3 * * *\" or \"@every 1h\")")
			return
		}
		if _, err := ParseSchedule(spec); err != nil {
			add(key, "%q is not a valid schedule: %v (example: \"CRON_TZ=UTC 0 3 * * *\" or \"@every 1h\")", spec, err)
		}
	}
	positive := func(key string, d Duration) {
		if d <= 0 {
			add(key, "must be a positive duration (example: 720h)")
		}
	}

	oneOf("log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf("log.format", c.Log.Format, "auto", "text", "json")
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			add("listen", "%q is not host:port (example: \":9323\" or \"127.0.0.1:9323\")", c.Listen)
		}
	}
	if sl := c.HTTP.StatusListen; sl != "" {
		if _, _, err := net.SplitHostPort(sl); err != nil {
			add("http.status_listen", "%q is not host:port (example: \"127.0.0.1:9324\")", sl)
		} else if sl == c.Listen {
			add("http.status_listen", "%q is listen's address too; give another port, or leave it empty to serve /status/* on listen", sl)
		}
	}
	positive("docker.api_timeout", c.Docker.APITimeout)
	if h := c.Docker.Host; h != "" {
		if u, err := url.Parse(h); err != nil || !slices.Contains([]string{"unix", "tcp", "ssh", "npipe", "http", "https"}, u.Scheme) {
			add("docker.host", "%q is not a Docker daemon address (example: unix:///var/run/docker.sock or tcp://manager-1:2376)", h)
		}
	}
	if c.Ledger.Name == "" {
		add("ledger.name", "is empty; use the default swarmguard-state unless you run several instances")
	}
	switch n := c.Ledger.MaxPerKind; {
	case n < 1:
		add("ledger.max_per_kind", "%d is out of range 1..%d (the newest entries kept per kind; the default is %d)", n, swarm.MaxLedgerPerKind, swarm.DefaultLedgerMaxPerKind)
	case n > swarm.MaxLedgerPerKind:
		add("ledger.max_per_kind", "%d cannot fit: %d kinds × %d entries of up to %d bytes exceed the ledger's %d-byte history budget (Raft refuses a write over 1.5 MB, and the state kept apart from the history takes up to %d bytes more); use at most %d",
			n, len(swarm.Kinds), n, swarm.MaxEntryBytes, swarm.LedgerByteBudget, swarm.StateByteBudget, swarm.MaxLedgerPerKind)
	}
	if c.Lease.Name == "" {
		add("lease.name", "is empty; use the default swarmguard-lease")
	}
	if c.Lease.TTL < Duration(MinLeaseTTL) || c.Lease.TTL > Duration(MaxLeaseTTL) {
		add("lease.ttl", "%s is out of range %s..%s (replicas renew every third of it; a holder that dies stops every action for up to a TTL; default 30s)",
			c.Lease.TTL, Duration(MinLeaseTTL), Duration(MaxLeaseTTL))
	}
	if c.Lease.Wait < 0 {
		add("lease.wait", "must not be negative")
	}

	schedule("tokens.schedule", c.Tokens.Schedule)
	positive("tokens.worker.max_age", c.Tokens.Worker.MaxAge)
	positive("tokens.manager.max_age", c.Tokens.Manager.MaxAge)
	kvPath("tokens.publish.vault_path", c.Tokens.Publish.VaultPath, add)

	oneOf("autolock.mode", c.Autolock.Mode, ModeEnforce, ModeAudit, ModeOff)
	schedule("autolock.schedule", c.Autolock.Schedule)
	positive("autolock.rotate.max_age", c.Autolock.Rotate.MaxAge)
	kvPath("autolock.escrow.vault_path", c.Autolock.Escrow.VaultPath, add)
	if pub := c.Tokens.Publish.VaultPath; pub != "" && samePublishEscrow(pub, c.Autolock.Escrow.VaultPath) {
		add("tokens.publish.vault_path", "%q is where the unlock key is escrowed too (autolock.escrow.vault_path, default secret/swarmguard/<swarm ID>/unlock-key): each write would overwrite the other and KV max_versions would evict the escrowed key; give the join tokens a path of their own (example: secret/swarm/join-tokens)", pub)
	}

	oneOf("pki.mode", c.PKI.Mode, ModeEnforce, ModeAudit)
	if c.PKI.NodeCertExpiry < Duration(time.Hour) {
		add("pki.node_cert_expiry", "%s is below Swarm's minimum of 1h (example: 2160h)", c.PKI.NodeCertExpiry)
	}
	warnW, werr := ParseWindow(c.PKI.WarnBefore)
	if werr != nil {
		add("pki.warn_before", "%v", werr)
	}
	critW, cerr := ParseWindow(c.PKI.CriticalBefore)
	if cerr != nil {
		add("pki.critical_before", "%v", cerr)
	}
	if werr == nil && cerr == nil && warnW.Percent == critW.Percent && critW.Value > warnW.Value {
		add("pki.critical_before", "%s is wider than pki.warn_before %s; the critical window must lie inside the warning one", c.PKI.CriticalBefore, c.PKI.WarnBefore)
	}
	if c.PKI.ControlSocket == "" {
		add("pki.control_socket", "is empty; use /var/run/docker/swarm/control.sock (the stack mounts it)")
	}
	schedule("pki.schedule", c.PKI.Schedule)
	schedule("pki.ca.schedule", c.PKI.CA.Schedule)
	if c.PKI.CA.MaxAge != 0 && c.PKI.CA.MaxAge < Duration(24*time.Hour) {
		add("pki.ca.max_age", "%s is below 24h; a root rotation reissues every certificate in the swarm (example: 8760h)", c.PKI.CA.MaxAge)
	}
	externalCA(c.PKI.ExternalCA, add)

	oneOf("workloads.mode", c.Workloads.Mode, ModeEnforce, ModeAudit)
	schedule("workloads.schedule", c.Workloads.Schedule)
	for i, r := range c.Workloads.AllowedRegistries {
		if r == "" || strings.Contains(r, "://") || strings.ContainsAny(r, " @:") && !registryHostPort.MatchString(r) {
			add(fmt.Sprintf("workloads.allowed_registries[%d]", i), "%q is not a registry as image references name it (example: registry.internal:5000 or ghcr.io/acme)", r)
		}
	}
	schedule("networks.schedule", c.Networks.Schedule)
	if c.Networks.RemediateSubnet != "" {
		if _, _, err := net.ParseCIDR(c.Networks.RemediateSubnet); err != nil {
			add("networks.remediate_subnet", "%q is not a CIDR subnet (example: 10.20.0.0/24)", c.Networks.RemediateSubnet)
		}
	}

	if c.Vault.Address != "" {
		if u, err := url.Parse(c.Vault.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("vault.address", "%q is not an http(s) URL (example: https://vault.internal:8200)", c.Vault.Address)
		}
	}
	positive("vault.timeout", c.Vault.Timeout)
	oneOf("vault.auth.method", c.Vault.Auth.Method, "token", "approle")
	if c.Vault.Auth.Method == "approle" {
		if c.Vault.Auth.RoleIDFile == "" {
			add("vault.auth.role_id_file", "is required when vault.auth.method is approle")
		}
		if c.Vault.Auth.SecretIDFile == "" {
			add("vault.auth.secret_id_file", "is required when vault.auth.method is approle")
		}
	}

	positive("secrets.rollout_timeout", c.Secrets.RolloutTimeout)
	if c.Secrets.Concurrency < 1 || c.Secrets.Concurrency > 64 {
		add("secrets.concurrency", "%d is out of range 1..64 (Vault reads, creates and removals at once; default 8)", c.Secrets.Concurrency)
	}
	if c.Secrets.RolloutConcurrency < 1 || c.Secrets.RolloutConcurrency > 64 {
		add("secrets.rollout_concurrency", "%d is out of range 1..64 (services rolled at once; default 8)", c.Secrets.RolloutConcurrency)
	}
	if n := len(c.Secrets.Mappings); n > swarm.MaxStateMappings {
		add("secrets.mappings", "%d mappings cannot fit: the ledger keeps each failing mapping's rollout state (up to %d bytes) apart from its history, beside each kind's newest entry, the open join windows and the incident steps, within a %d-byte state budget; use at most %d, or split them between two instances (each with its own ledger.name and lease.name)",
			n, swarm.MaxSecretStateBytes, swarm.StateByteBudget, swarm.MaxStateMappings)
	}
	seen := map[string]int{}
	for i, m := range c.Secrets.Mappings {
		key := fmt.Sprintf("secrets.mappings[%d]", i)
		switch {
		case m.Name == "":
			add(key+".name", "is required")
		case len(m.Name) > maxSecretNameLen || !mappingName.MatchString(m.Name):
			add(key+".name", "%q is not a valid secret name: letters, digits, '_', '.' and '-', at most %d characters", m.Name, maxSecretNameLen)
		default:
			if j, dup := seen[m.Name]; dup {
				add(key+".name", "%q is also the name of secrets.mappings[%d]; names must be unique", m.Name, j)
			}
			seen[m.Name] = i
		}
		if m.From.Path == "" {
			add(key+".from.path", "is required (as `vault kv get` takes it, example: secret/apps/db)")
		} else {
			kvPath(key+".from.path", m.From.Path, add)
		}
		switch {
		case m.From.Key == "" && m.Template == "":
			add(key+".from.key", "give either from.key (one field) or template")
		case m.From.Key != "" && m.Template != "":
			add(key+".template", "give either from.key or template, not both")
		}
		if m.Refresh < Duration(time.Second) {
			add(key+".refresh", "must be at least 1s (example: 1m)")
		}
		if m.KeepVersions < 0 {
			add(key+".keep_versions", "must not be negative")
		}
	}
	for i, w := range c.Notify.Webhooks {
		key := fmt.Sprintf("notify.webhooks[%d]", i)
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add(key+".url", "is not an http(s) URL")
		}
		if w.Timeout <= 0 {
			add(key+".timeout", "must be a positive duration (example: 10s)")
		}
		for j, ev := range w.Events {
			if !slices.Contains(AuditEvents, ev) {
				add(fmt.Sprintf("%s.events[%d]", key, j), "%q is not one of %s (empty list: every event)", ev, strings.Join(AuditEvents, ", "))
			}
		}
	}
	if c.Report.FailOn != "" {
		oneOf("report.fail_on", c.Report.FailOn, "none", "warn", "fail")
	}
	return ps
}

func kvPath(key, p string, add func(string, string, ...any)) {
	if p == "" {
		return
	}
	if strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || !strings.Contains(p, "/") || strings.Contains(p, "//") {
		add(key, "%q is not a Vault KV path as `vault kv get` takes it (example: secret/apps/db)", p)
	}
}

// Window is a time window before a certificate's expiry: an absolute duration, or a percentage of its validity.
type Window struct {
	Percent bool
	Value   float64 // percent (0..100) or seconds
}

// Before returns the window's length for a certificate valid for validity.
func (w Window) Before(validity time.Duration) time.Duration {
	if w.Percent {
		return time.Duration(float64(validity) * w.Value / 100)
	}
	return time.Duration(w.Value * float64(time.Second))
}

// ParseWindow reads "168h" or "20%".
func ParseWindow(s string) (Window, error) {
	if s == "" {
		return Window{}, fmt.Errorf("is empty; give a duration or a percentage of validity (example: 168h or 20%%)")
	}
	if strings.HasSuffix(s, "%") {
		p, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil || p <= 0 || p >= 100 {
			return Window{}, fmt.Errorf("%q is not a percentage between 0 and 100 (example: 20%%)", s)
		}
		return Window{Percent: true, Value: p}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return Window{}, fmt.Errorf("%q is neither a duration nor a percentage (example: 168h or 20%%)", s)
	}
	return Window{Value: d.Seconds()}, nil
}

// normKVPath is a KV path as compared: no leading, trailing or doubled slashes.
func normKVPath(p string) string {
	parts := strings.FieldsFunc(p, func(r rune) bool { return r == '/' })
	return strings.Join(parts, "/")
}

// samePublishEscrow says whether the join tokens would be published where the unlock key is escrowed: the
// configured escrow path, or, when it is empty, the per-swarm default secret/swarmguard/<swarm ID>/unlock-key.
func samePublishEscrow(publish, escrow string) bool {
	pub := normKVPath(publish)
	if escrow != "" {
		return pub == normKVPath(escrow)
	}
	parts := strings.Split(pub, "/")
	return len(parts) == 4 && parts[0] == "secret" && parts[1] == "swarmguard" && parts[3] == "unlock-key"
}

// Environment is what the process's environment adds to the configuration, for Warnings: cmd reads it.
type Environment struct {
	VaultAddr  string // VAULT_ADDR, used when vault.address is empty
	DockerHost string // DOCKER_HOST, used when docker.host is empty
	DockerTLS  bool   // DOCKER_CERT_PATH is set: the Docker client speaks TLS to a tcp:// host
}

// Warnings are settings that work but send credentials where anyone on the path can read them: an http://
// Vault while credentials go to it, and a Docker host reached over TCP without TLS (the unlock key and the
// join tokens cross it). `config check` prints them and `run` logs them at start; neither refuses.
func (c Config) Warnings(env Environment) Problems {
	var ps Problems
	addr, key := c.Vault.Address, "vault.address"
	if addr == "" {
		addr, key = env.VaultAddr, "vault.address (VAULT_ADDR)"
	}
	if u, err := url.Parse(addr); err == nil && u.Scheme == "http" {
		what := []string{"the vault token"}
		if c.Vault.Auth.Method == "approle" {
			what = append(what, "the AppRole secret ID (vault.auth.method approle)")
		}
		if c.Autolock.Mode != ModeOff {
			what = append(what, "the unlock key (its escrow, autolock.mode "+c.Autolock.Mode+")")
		}
		if c.Tokens.Publish.VaultPath != "" {
			what = append(what, "the join tokens (tokens.publish.vault_path)")
		}
		if len(c.Secrets.Mappings) > 0 {
			what = append(what, "every synced secret value (secrets.mappings)")
		}
		ps = append(ps, Problem{key, fmt.Sprintf("%q is plain http: %s cross the network in clear; use https:// (and vault.tls.ca_file for a private CA)", addr, strings.Join(what, ", "))})
	}
	host, key := c.Docker.Host, "docker.host"
	if host == "" {
		host, key = env.DockerHost, "docker.host (DOCKER_HOST)"
	}
	if u, err := url.Parse(host); err == nil && (u.Scheme == "http" || (u.Scheme == "tcp" && !env.DockerTLS)) {
		ps = append(ps, Problem{key, fmt.Sprintf("%q is reached over TCP without TLS: the Engine API, and with it the unlock key and the join tokens, cross the network in clear; use TLS (DOCKER_CERT_PATH with DOCKER_TLS_VERIFY=1, port 2376), ssh://, or the local unix socket", host)})
	}
	return ps
}

// FileProblems checks the files the configuration names: each must be readable here. `run` refuses to start
// on any of them; `config check` prints them as warnings (it may run where those files do not exist).
// The HMAC key is required as soon as one mapping exists.
func (c Config) FileProblems() Problems {
	var ps Problems
	check := func(key, path string) {
		if path == "" {
			return
		}
		f, err := os.Open(path)
		if err != nil {
			ps = append(ps, Problem{key, fmt.Sprintf("cannot read %s: %v", path, err)})
			return
		}
		_ = f.Close()
	}
	if f := c.HTTP.StatusTokenFile; f != "" {
		if b, err := os.ReadFile(f); err != nil {
			ps = append(ps, Problem{"http.status_token_file", fmt.Sprintf("cannot read %s: %v", f, errors.Unwrap(err))})
		} else if len(bytes.TrimSpace(b)) == 0 {
			ps = append(ps, Problem{"http.status_token_file", fmt.Sprintf("%s is empty (put a token in it: head -c 32 /dev/urandom | base64)", f)})
		}
	}
	check("vault.tls.ca_file", c.Vault.TLS.CAFile)
	check("vault.auth.token_file", c.Vault.Auth.TokenFile)
	if c.Vault.Auth.Method == "approle" {
		check("vault.auth.role_id_file", c.Vault.Auth.RoleIDFile)
		check("vault.auth.secret_id_file", c.Vault.Auth.SecretIDFile)
	}
	if len(c.Secrets.Mappings) > 0 && c.Secrets.HMACKeyFile == "" {
		ps = append(ps, Problem{"secrets.hmac_key_file", "is required when secrets.mappings is not empty (a Docker secret of the stack holding at least 32 random bytes)"})
	}
	check("secrets.hmac_key_file", c.Secrets.HMACKeyFile)
	for i, w := range c.Notify.Webhooks {
		key := fmt.Sprintf("notify.webhooks[%d].secret_file", i)
		if w.SecretFile == "" {
			continue
		}
		// The signing key must be there and not empty: swarmguard never sends a record unsigned.
		b, err := os.ReadFile(w.SecretFile)
		switch {
		case err != nil:
			ps = append(ps, Problem{key, fmt.Sprintf("cannot read %s: %v (swarmguard does not send records unsigned: fix the file or remove the key)", w.SecretFile, errors.Unwrap(err))})
		case len(bytes.TrimSpace(b)) == 0:
			ps = append(ps, Problem{key, fmt.Sprintf("%s is empty (put the HMAC key in it: head -c 32 /dev/urandom | base64)", w.SecretFile)})
		}
	}
	return ps
}

// externalCASignPath is where swarmkit posts sign requests; the URLs the swarm is told must end with it.
const externalCASignPath = "/api/v1/cfssl/sign"

// externalCA checks pki.external_ca. Its keys are checked even when the bridge is off, so a config prepared
// before the move is found wrong before it is needed; the URLs must be there only when it is on.
func externalCA(e ExternalCAConfig, add func(string, string, ...any)) {
	const k = "pki.external_ca."
	_, port, err := net.SplitHostPort(e.Listen)
	if err != nil || port == "" || port == "0" {
		add(k+"listen", "%q is not host:port with a fixed port (example: \":8555\"); the swarm is told that port", e.Listen)
		port = ""
	}
	name := func(key, v, example string) {
		switch {
		case v == "":
			add(k+key, "is empty; give the Vault %s (example: %s)", strings.ReplaceAll(key, "_", " "), example)
		case strings.ContainsAny(v, " \t\n") || strings.Trim(v, "/") != v || strings.Contains(v, "//") || (key != "mount" && strings.Contains(v, "/")):
			add(k+key, "%q is not a Vault %s name (example: %s)", v, strings.ReplaceAll(key, "_", " "), example)
		}
	}
	name("mount", e.Mount, "pki-swarm")
	name("manager_role", e.ManagerRole, "swarm-manager")
	name("worker_role", e.WorkerRole, "swarm-worker")
	name("server_role", e.ServerRole, "swarmguard-bridge")
	if e.ManagerRole != "" && e.ManagerRole == e.WorkerRole {
		add(k+"worker_role", "%q is manager_role too; a Vault role fixes the OU it issues, so managers (swarm-manager) and workers (swarm-worker) need a role each", e.WorkerRole)
	}
	if e.Enabled && len(e.URLs) == 0 {
		add(k+"urls", "is empty while pki.external_ca.enabled is true; list every manager's bridge (example: [\"https://10.0.0.11%s%s\"])", ":"+orPort(port), externalCASignPath)
	}
	seen := map[string]bool{}
	for i, raw := range e.URLs {
		key := fmt.Sprintf("%surls[%d]", k, i)
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			add(key, "%q is not an https URL (example: https://10.0.0.11:%s%s); swarmkit speaks only HTTPS to an external CA", raw, orPort(port), externalCASignPath)
			continue
		}
		if u.Path != externalCASignPath {
			add(key, "%q has path %q; swarmkit posts to the URL as given and the bridge serves %s", raw, u.Path, externalCASignPath)
		}
		if port != "" && u.Port() != port {
			add(key, "%q names port %q but the bridge listens on %s (pki.external_ca.listen)", raw, u.Port(), port)
		}
		if seen[raw] {
			add(key, "%q is listed twice", raw)
		}
		seen[raw] = true
	}
}

func orPort(p string) string {
	if p == "" {
		return "8555"
	}
	return p
}
