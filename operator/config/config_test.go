package config

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

func TestDecodeConfig(t *testing.T) {
	cases := []struct {
		name  string
		raw   map[string]any
		check func(Config) bool
		probs []string
	}{
		{"empty keeps defaults", map[string]any{}, func(c Config) bool { return c.Tokens.Worker.MaxAge == Duration(720*time.Hour) && c.Tokens.Adopt }, nil},
		{"duration", map[string]any{"tokens": map[string]any{"worker": map[string]any{"max_age": "168h"}}}, func(c Config) bool { return c.Tokens.Worker.MaxAge == Duration(168*time.Hour) }, nil},
		{"zero duration", map[string]any{"pki": map[string]any{"ca": map[string]any{"max_age": 0}}}, func(c Config) bool { return c.PKI.CA.MaxAge == 0 }, nil},
		{"duration without unit", map[string]any{"lease": map[string]any{"ttl": 30}}, nil, []string{"lease.ttl: 30 has no unit"}},
		{"negative duration", map[string]any{"lease": map[string]any{"ttl": "-1s"}}, nil, []string{"lease.ttl: \"-1s\" is negative"}},
		{"bool from env string", map[string]any{"tokens": map[string]any{"adopt": "false"}}, func(c Config) bool { return !c.Tokens.Adopt }, nil},
		{"list from env string", map[string]any{"networks": map[string]any{"exempt": "a, b"}}, func(c Config) bool { return strings.Join(c.Networks.Exempt, "|") == "a|b" }, nil},
		{"mapping defaults", map[string]any{"secrets": map[string]any{"mappings": []any{map[string]any{"name": "x", "from": map[string]any{"path": "secret/x", "key": "k"}}}}},
			func(c Config) bool {
				m := c.Secrets.Mappings[0]
				return m.KeepVersions == 2 && m.Refresh == Duration(time.Minute)
			}, nil},
		{"labels", map[string]any{"secrets": map[string]any{"mappings": []any{map[string]any{"labels": map[string]any{"team": "x", "n": 3, "bad": []any{1}}}}}},
			nil, []string{"secrets.mappings[0].labels.bad: must be a single value, not a list"}},
		{"unknown nested", map[string]any{"vault": map[string]any{"auth": map[string]any{"methd": "token"}}}, nil, []string{`vault.auth.methd: unknown key; did you mean "method"?`}},
		{"struct given scalar", map[string]any{"vault": "https://x"}, nil, []string{"vault: must be a mapping of keys"}},
		{"list given scalar", map[string]any{"secrets": map[string]any{"mappings": "x"}}, nil, []string{"secrets.mappings: must be a list"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, probs := DecodeConfig(DefaultConfig(), tc.raw)
			if len(probs) != len(tc.probs) {
				t.Fatalf("DecodeConfig(%v) problems = %v; want %v", tc.raw, probs, tc.probs)
			}
			for i, want := range tc.probs {
				if !strings.HasPrefix(probs[i].String(), want) {
					t.Errorf("problem %d = %q; want prefix %q", i, probs[i], want)
				}
			}
			if tc.check != nil && !tc.check(cfg) {
				t.Errorf("DecodeConfig(%v) = %+v; check failed", tc.raw, cfg)
			}
		})
	}
}

func TestDefaultConfigValid(t *testing.T) {
	if ps := DefaultConfig().Validate(); len(ps) != 0 {
		t.Fatalf("DefaultConfig().Validate() = %v; want none", ps)
	}
	d := DefaultConfig()
	if d.Autolock.Mode != ModeAudit || d.PKI.Mode != ModeAudit || d.PKI.CA.MaxAge != 0 || !d.Tokens.Adopt {
		t.Errorf("defaults are not observe-only: %+v", d)
	}
}

func TestParseWindow(t *testing.T) {
	cases := []struct {
		in      string
		want    time.Duration // for a 100h validity
		wantErr bool
	}{
		{"20%", 20 * time.Hour, false},
		{"168h", 168 * time.Hour, false},
		{"0%", 0, true},
		{"100%", 0, true},
		{"-5h", 0, true},
		{"", 0, true},
		{"soon", 0, true},
	}
	for _, tc := range cases {
		w, err := ParseWindow(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseWindow(%q) error = %v; want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && w.Before(100*time.Hour) != tc.want {
			t.Errorf("ParseWindow(%q).Before(100h) = %s; want %s", tc.in, w.Before(100*time.Hour), tc.want)
		}
	}
}

func TestParseScheduleTZ(t *testing.T) {
	s, err := ParseSchedule("CRON_TZ=Europe/Berlin 0 3 * * *")
	if err != nil {
		t.Fatal(err)
	}
	next := s.Next(time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Errorf("Next = %s; want %s (03:00 Berlin)", next.UTC(), want)
	}
	for _, bad := range []string{"61 * * * *", "* * * *", "CRON_TZ=Mars/Base 0 3 * * *", "@fortnightly"} {
		if _, err := ParseSchedule(bad); err == nil {
			t.Errorf("ParseSchedule(%q) = nil; want an error", bad)
		}
	}
}

func TestKeysCoverEveryLeaf(t *testing.T) {
	keys := strings.Join(Keys(), " ")
	for _, k := range []string{"tokens.worker.max_age", "vault.auth.method", "pki.ca.max_age", "secrets.mappings", "notify.webhooks", "listen"} {
		if !strings.Contains(" "+keys+" ", " "+k+" ") {
			t.Errorf("Keys() lacks %s", k)
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[Duration]string{Duration(720 * time.Hour): "720h", Duration(90 * time.Second): "1m30s", Duration(time.Minute): "1m", 0: "0s"} {
		if got := d.String(); got != want {
			t.Errorf("Duration(%d).String() = %q; want %q", int64(d), got, want)
		}
	}
}

// The join tokens may not be published where the unlock key is escrowed: the configured escrow path or the
// per-swarm default.
func TestPublishPathNotEscrowPath(t *testing.T) {
	tests := []struct {
		name, publish, escrow string
		want                  bool
	}{
		{"same as the configured escrow", "secret/ops/swarm", "secret/ops/swarm", true},
		{"same, other slashes", "secret//ops/swarm", "secret/ops/swarm/", true},
		{"the default escrow of some swarm", "secret/swarmguard/8x1e0fsd/unlock-key", "", true},
		{"the default is not used when an escrow path is set", "secret/swarmguard/8x1e0fsd/unlock-key", "secret/ops/key", false},
		{"a path of their own", "secret/swarm/join-tokens", "", false},
		{"beside the default", "secret/swarmguard/8x1e0fsd/join-tokens", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Tokens.Publish.VaultPath, c.Autolock.Escrow.VaultPath = tt.publish, tt.escrow
			got := false
			for _, p := range c.Validate() {
				if p.Key == "tokens.publish.vault_path" && strings.Contains(p.Msg, "escrowed too") {
					got = true
				}
			}
			if got != tt.want {
				t.Errorf("Validate(publish %q, escrow %q) rejects tokens.publish.vault_path = %v; want %v", tt.publish, tt.escrow, got, tt.want)
			}
		})
	}
}

// An http:// Vault with credentials going to it, and a tcp:// Docker host without TLS, are warned about,
// naming the key and what crosses in clear.
func TestWarnings(t *testing.T) {
	withVault := func(addr string, mod func(*Config)) Config {
		c := DefaultConfig()
		c.Vault.Address = addr
		if mod != nil {
			mod(&c)
		}
		return c
	}
	tests := []struct {
		name     string
		cfg      Config
		env      Environment
		wantKeys []string
		wantText []string
	}{
		{"https vault, unix docker", withVault("https://vault:8200", nil), Environment{}, nil, nil},
		{"no vault, no docker host", DefaultConfig(), Environment{}, nil, nil},
		{"http vault with approle, escrow, publishing", withVault("http://vault:8200", func(c *Config) {
			c.Vault.Auth.Method = "approle"
			c.Autolock.Mode = ModeEnforce
			c.Tokens.Publish.VaultPath = "secret/swarm/join-tokens"
		}), Environment{}, []string{"vault.address"}, []string{"AppRole secret ID", "unlock key", "join tokens", "https://"}},
		{"http vault from VAULT_ADDR", DefaultConfig(), Environment{VaultAddr: "http://10.0.0.1:8200"}, []string{"vault.address (VAULT_ADDR)"}, []string{"vault token"}},
		{"VAULT_ADDR ignored when the file sets https", withVault("https://vault:8200", nil), Environment{VaultAddr: "http://x:8200"}, nil, nil},
		{"tcp docker without TLS", func() Config { c := DefaultConfig(); c.Docker.Host = "tcp://manager-1:2375"; return c }(), Environment{}, []string{"docker.host"}, []string{"unlock key", "TLS"}},
		{"tcp docker with TLS", func() Config { c := DefaultConfig(); c.Docker.Host = "tcp://manager-1:2376"; return c }(), Environment{DockerTLS: true}, nil, nil},
		{"DOCKER_HOST tcp without TLS", DefaultConfig(), Environment{DockerHost: "tcp://10.0.0.2:2375"}, []string{"docker.host (DOCKER_HOST)"}, nil},
		{"ssh docker", func() Config { c := DefaultConfig(); c.Docker.Host = "ssh://admin@manager-1"; return c }(), Environment{}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := tt.cfg.Warnings(tt.env)
			var keys []string
			for _, p := range ps {
				keys = append(keys, p.Key)
			}
			if !slices.Equal(keys, tt.wantKeys) {
				t.Fatalf("Warnings() keys = %q; want %q (%v)", keys, tt.wantKeys, ps)
			}
			for _, w := range tt.wantText {
				if !strings.Contains(ps.Error(), w) {
					t.Errorf("Warnings() = %q; want it to mention %q", ps.Error(), w)
				}
			}
		})
	}
}

// http.status_listen must be an address of its own; http.status_token_file must hold a token.
func TestHTTPStatusConfig(t *testing.T) {
	c := DefaultConfig()
	c.HTTP.StatusListen = c.Listen
	if ps := c.Validate(); !strings.Contains(ps.Error(), "http.status_listen") {
		t.Errorf("Validate(status_listen == listen) = %v; want a problem naming http.status_listen", ps)
	}
	c.HTTP.StatusListen = "localhost"
	if ps := c.Validate(); !strings.Contains(ps.Error(), "http.status_listen: \"localhost\" is not host:port") {
		t.Errorf("Validate(status_listen localhost) = %v; want host:port asked for", ps)
	}
	c.HTTP.StatusListen = "127.0.0.1:9324"
	if ps := c.Validate(); len(ps) != 0 {
		t.Errorf("Validate(status_listen 127.0.0.1:9324) = %v; want none", ps)
	}
	dir := t.TempDir()
	empty := dir + "/empty"
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dir + "/missing", empty} {
		c.HTTP.StatusTokenFile = f
		if ps := c.FileProblems(); !strings.Contains(ps.Error(), "http.status_token_file") {
			t.Errorf("FileProblems(status_token_file %s) = %v; want a problem naming the key", f, ps)
		}
	}
}

// TestLedgerStateBudget: the ledger's state holds one failed-rollout state per mapping; more mappings than
// fit its budget are refused, naming the key and the bound.
func TestLedgerStateBudget(t *testing.T) {
	for _, tc := range []struct {
		n    int
		want bool
	}{{swarm.MaxStateMappings, false}, {swarm.MaxStateMappings + 1, true}} {
		c := DefaultConfig()
		c.Secrets.HMACKeyFile = "/run/secrets/k"
		for i := range tc.n {
			c.Secrets.Mappings = append(c.Secrets.Mappings, SecretMapping{Name: fmt.Sprintf("m%04d", i), Refresh: Duration(time.Minute), From: SecretSource{Path: "secret/apps/db", Key: "password"}})
		}
		got := false
		for _, p := range c.Validate() {
			if p.Key == "secrets.mappings" && strings.Contains(p.Msg, fmt.Sprintf("use at most %d", swarm.MaxStateMappings)) {
				got = true
			} else {
				t.Errorf("%d mappings: unexpected problem %v", tc.n, p)
			}
		}
		if got != tc.want {
			t.Errorf("%d mappings: refused = %v; want %v", tc.n, got, tc.want)
		}
	}
}

// lease.ttl is bounded both ways: below 2s replicas cannot renew in time; above MaxLeaseTTL a holder that
// dies (or a CLI handed the lease that dies) stops every action in the swarm for that long.
func TestLeaseTTLRange(t *testing.T) {
	tests := []struct {
		ttl  time.Duration
		want string // "" when valid
	}{
		{time.Second, "lease.ttl: 1s is out of range 2s..5m"},
		{2 * time.Second, ""},
		{30 * time.Second, ""},
		{5 * time.Minute, ""},
		{5*time.Minute + time.Second, "lease.ttl: 5m1s is out of range 2s..5m"},
		{24 * time.Hour, "lease.ttl: 24h is out of range 2s..5m"},
	}
	for _, tt := range tests {
		c := DefaultConfig()
		c.Lease.TTL = Duration(tt.ttl)
		got := c.Validate().Error()
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("Validate(lease.ttl %s) = %q; want %q", tt.ttl, got, tt.want)
		}
	}
}
