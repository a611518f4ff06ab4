package main

import (
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/swarmguard/swarmguard/operator/config"
)

// environment is what VAULT_ADDR, DOCKER_HOST and DOCKER_CERT_PATH add to the configuration, for its warnings.
func environment() config.Environment {
	return config.Environment{VaultAddr: os.Getenv("VAULT_ADDR"), DockerHost: os.Getenv("DOCKER_HOST"), DockerTLS: os.Getenv("DOCKER_CERT_PATH") != ""}
}

func newConfigCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:     "config",
		Short:   "Check or show the configuration",
		Example: "  swarmguard config check --config /etc/swarmguard/config.yaml\n  swarmguard config show",
		Args:    noArgs,
	}
	c.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration: prints `config ok`, or one line per problem naming its key (exit 2)",
		Long: `Validates the configuration file, SWARMGUARD_* environment and flags: unknown keys, wrong types, bad
durations and cron expressions (parsed by the scheduler's own parser), rules across keys. Files the
configuration names (token files, the HMAC key) are checked too, but only warned about, since the check may
run on a machine where they do not exist; ` + "`swarmguard run`" + ` refuses to start without them. Settings that send
credentials in clear (an http:// Vault, a tcp:// Docker host without TLS) are warned about too.`,
		Example:     "  swarmguard config check --config configs/swarmguard.yaml",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, probs, err := a.readConfig(cmd)
			if err != nil {
				fmt.Fprintln(a.stdout, err)
				return silentExit(ExitUsage)
			}
			if len(probs) > 0 {
				for _, p := range probs.Sorted() {
					fmt.Fprintln(a.stdout, p.String())
				}
				return silentExit(ExitUsage)
			}
			for _, p := range append(cfg.FileProblems(), cfg.Warnings(environment())...) {
				fmt.Fprintf(a.stderr, "warning: %s\n", p)
			}
			fmt.Fprintln(a.stdout, "config ok")
			return nil
		},
	})
	c.AddCommand(&cobra.Command{
		Use:         "show",
		Short:       "Print the effective configuration as YAML (defaults, file, environment, flags), secrets redacted",
		Example:     "  SWARMGUARD_TOKENS_WORKER_MAX_AGE=168h swarmguard config show --config /etc/swarmguard/config.yaml",
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := a.outputFormat("yaml"); err != nil {
				return err
			}
			cfg, probs, err := a.readConfig(cmd)
			if err != nil {
				return usageErr("%v", err)
			}
			if len(probs) > 0 {
				return &exitError{code: ExitUsage, err: probs.Sorted()}
			}
			return a.writeOutput(func(w io.Writer) error {
				b, err := yaml.Marshal(redact(cfg))
				if err != nil {
					return err
				}
				_, err = w.Write(b)
				return err
			})
		},
	})
	return c
}

// redact hides what in the configuration may carry a credential. The configuration holds paths to secrets,
// never their values, except where a URL can embed one (a webhook URL's path or query often is the
// credential, as with Slack's; user:password in any URL).
func redact(cfg config.Config) config.Config {
	out := cfg
	out.Notify.Webhooks = append([]config.Webhook(nil), cfg.Notify.Webhooks...)
	for i := range out.Notify.Webhooks {
		out.Notify.Webhooks[i].URL = redactURL(out.Notify.Webhooks[i].URL, true)
	}
	out.Vault.Address = redactURL(cfg.Vault.Address, false)
	return out
}

func redactURL(s string, path bool) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "REDACTED"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if path && (u.Path != "" || u.RawQuery != "") {
		return u.Scheme + "://" + u.Host + "/REDACTED"
	}
	return u.String()
}
