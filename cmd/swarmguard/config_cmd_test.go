package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/swarmguard/swarmguard/operator/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

// run runs the CLI in-process with a clean SWARMGUARD_* environment.
func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "SWARMGUARD_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(""), &out, &errb)
	return out.String(), errb.String(), code
}

// TestConfigCheckInvalid pairs each testdata/invalid-*.yaml with its exact expected output (.out).
func TestConfigCheckInvalid(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid-*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no testdata/invalid-*.yaml: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			stdout, _, code := run(t, "config", "check", "--config", f)
			if code != ExitUsage {
				t.Errorf("config check %s: exit %d; want %d", f, code, ExitUsage)
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".out"
			if *update {
				if err := os.WriteFile(golden, []byte(stdout), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("reading %s: %v (run go test ./cmd/swarmguard -update)", golden, err)
			}
			if stdout != string(want) {
				t.Errorf("config check %s =\n%s\nwant\n%s", f, stdout, want)
			}
		})
	}
}

func TestConfigCheckExample(t *testing.T) {
	stdout, stderr, code := run(t, "config", "check", "--config", "../../configs/swarmguard.yaml")
	if code != ExitOK || strings.TrimSpace(stdout) != "config ok" {
		t.Fatalf("config check configs/swarmguard.yaml = %q, %q, exit %d; want config ok, exit 0", stdout, stderr, code)
	}
}

// TestConfigExampleDocumentsEveryKey: configs/swarmguard.yaml holds every key, each with its default value.
func TestConfigExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../../configs/swarmguard.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	file := flatten("", raw)
	defaults, err := toMap(config.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	want := flatten("", defaults)
	for _, k := range config.Keys() {
		got, ok := file[k]
		if !ok {
			t.Errorf("configs/swarmguard.yaml lacks key %s", k)
			continue
		}
		if fmt.Sprint(got) != fmt.Sprint(want[k]) {
			t.Errorf("configs/swarmguard.yaml %s = %v; the default is %v", k, got, want[k])
		}
	}
}

func TestConfigCheckUnreadable(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		"missing": filepath.Join(dir, "nope.yaml"),
		"a dir":   dir,
	}
	for name, path := range cases {
		t.Run(name, func(t *testing.T) {
			stdout, _, code := run(t, "config", "check", "--config", path)
			if code != ExitUsage || !strings.Contains(stdout, "config file "+path) {
				t.Errorf("config check %s = %q exit %d; want exit 2 naming the file", path, stdout, code)
			}
		})
	}
}

func TestConfigEnvAndFlags(t *testing.T) {
	t.Setenv("SWARMGUARD_TOKENS_WORKER_MAX_AGE", "168h")
	t.Setenv("SWARMGUARD_NETWORKS_EXEMPT", "ingress, legacy")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"config", "show", "--log-level", "debug", "--config", "../../configs/swarmguard.yaml"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("config show: exit %d, %s", code, errb.String())
	}
	for _, want := range []string{"max_age: 168h", "level: debug", "- ingress", "- legacy"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("config show lacks %q:\n%s", want, out.String())
		}
	}
}

func TestConfigEnvUnknownAndBad(t *testing.T) {
	t.Setenv("SWARMGUARD_TOKENS_WORKR_MAX_AGE", "168h")
	t.Setenv("SWARMGUARD_TOKENS_ADOPT", "perhaps")
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"config", "check"}, nil, &out, &errb)
	want := "SWARMGUARD_TOKENS_WORKR_MAX_AGE: unknown environment variable"
	if code != ExitUsage || !strings.Contains(out.String(), want) || !strings.Contains(out.String(), `tokens.adopt: "perhaps" is not a boolean`) {
		t.Fatalf("config check = %q exit %d; want exit 2 with %q and tokens.adopt", out.String(), code, want)
	}
}

func TestConfigShowRedacts(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "c.yaml")
	body := "notify:\n  webhooks:\n    - url: https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX\nvault:\n  address: https://user:hunter2@vault.example:8200\n"
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "config", "show", "--config", f)
	if code != 0 {
		t.Fatalf("config show: exit %d: %s", code, stderr)
	}
	for _, secret := range []string{"XXXXSECRETXXXX", "hunter2", "T000"} {
		if strings.Contains(stdout, secret) {
			t.Errorf("config show leaks %q:\n%s", secret, stdout)
		}
	}
	if !strings.Contains(stdout, "https://hooks.slack.com/REDACTED") {
		t.Errorf("config show does not show the redacted webhook:\n%s", stdout)
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown flag", []string{"status", "--bogus"}, "unknown flag: --bogus"},
		{"unknown command", []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"extra argument", []string{"version", "extra"}, "unknown command"},
		{"bad format", []string{"version", "--format", "xml"}, `--format "xml" is not one of table, json`},
		{"bad log level flag", []string{"status", "--log-level", "loud"}, "log.level"},
		{"bad api timeout flag", []string{"status", "--api-timeout", "soon"}, "docker.api_timeout"},
		{"format on a text-only command", []string{"run", "--once", "--format", "json"}, `--format "json" is not available here`},
		{"output on a text-only command", []string{"rotate", "ca", "--output", "x.json"}, "--output is not available here"},
		{"format on config check", []string{"config", "check", "--format", "json"}, "prints plain text"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.args...)
			if code != ExitUsage || !strings.Contains(stderr, tc.want) {
				t.Errorf("swarmguard %v: exit %d, stderr %q; want exit 2 containing %q", tc.args, code, stderr, tc.want)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	stdout, _, code := run(t, "version", "--format", "json")
	if code != 0 || !strings.Contains(stdout, `"engine_api_min": "1.40"`) || !strings.Contains(stdout, `"go_version"`) {
		t.Fatalf("version --format json = %q exit %d", stdout, code)
	}
}

func TestOutputFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "v.json")
	stdout, _, code := run(t, "version", "--format", "json", "--output", f)
	if code != 0 || stdout != "" {
		t.Fatalf("version --output: exit %d, stdout %q; want 0 and nothing on stdout", code, stdout)
	}
	b, err := os.ReadFile(f)
	if err != nil || !strings.Contains(string(b), `"version"`) {
		t.Fatalf("--output file = %q, %v", b, err)
	}
	_, stderr, code := run(t, "version", "--output", filepath.Join(t.TempDir(), "no", "such", "dir", "v"))
	if code != ExitFailed || !strings.Contains(stderr, "writing --output") {
		t.Errorf("version --output into a missing dir: exit %d, %q; want 1 naming --output", code, stderr)
	}
}

// TestEveryCommandHasHelpAndExample walks the whole command tree.
func TestEveryCommandHasHelpAndExample(t *testing.T) {
	root := newRoot(&app{})
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		n++
		if c.Short == "" || c.Example == "" {
			t.Errorf("%s: Short %q, Example %q; want both", c.CommandPath(), c.Short, c.Example)
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	if n < 8 {
		t.Errorf("walked %d commands; want the whole tree", n)
	}
}

// config check warns, naming the key, when credentials would cross in clear, and still exits 0.
func TestConfigCheckWarnsCleartext(t *testing.T) {
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("VAULT_ADDR", "")
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	body := "docker: {host: \"tcp://manager-1:2375\"}\nvault:\n  address: http://vault.internal:8200\n  auth: {method: approle, role_id_file: /r, secret_id_file: /s}\ntokens: {publish: {vault_path: secret/swarm/join-tokens}}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := run(t, "config", "check", "--config", cfg)
	if code != ExitOK || stdout != "config ok\n" {
		t.Fatalf("config check = exit %d, %q; want 0, config ok (warnings do not fail it)", code, stdout)
	}
	for _, want := range []string{"warning: vault.address: \"http://vault.internal:8200\" is plain http", "AppRole secret ID", "join tokens",
		"warning: docker.host: \"tcp://manager-1:2375\" is reached over TCP without TLS"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("config check stderr = %q; want it to contain %q", stderr, want)
		}
	}
}
