package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/user"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// app is what every command shares: the streams, the global flags, and (once loaded) the configuration,
// the logger and the engine client.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	// global flags
	configFile string
	logLevel   string
	logFormat  string
	host       string
	apiTimeout string
	format     string
	output     string

	cfg    config.Config
	log    *slog.Logger
	client *swarm.Client
	// checked is the engine's answer to the first successful Check of this process.
	checked *swarm.Self

	// secretsSync is the controller's secrets sync, for /status/secrets (nil without mappings).
	secretsSync atomic.Pointer[secretsync.SecretsSync]

	// vaultClient is the process's one logged-in Vault client (see vault); vaultStop ends its renewal.
	vaultMu     sync.Mutex
	vaultClient *secrets.Vault
	vaultStop   func()
}

// Main runs the CLI and returns the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(a)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.closeVault()
	if a.client != nil {
		_ = a.client.Close()
	}
	if err == nil {
		return ExitOK
	}
	code := exitCode(err)
	var ee *exitError
	if !(errors.As(err, &ee) && ee.silent) {
		fmt.Fprintf(stderr, "swarmguard: %s\n", strings.TrimSpace(err.Error()))
	}
	if isUsage(err) {
		code = ExitUsage
	}
	return code
}

// isUsage recognises cobra's own usage errors (unknown flag or command, wrong argument count), which cobra
// returns as plain errors.
func isUsage(err error) bool {
	var ue *usageError
	return errors.As(err, &ue)
}

type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "swarmguard",
		Short: "Keep a Docker Swarm's security state where its operators say it should be",
		Long: `swarmguard rotates join tokens, the autolock unlock key and the root CA on policy, escrows the unlock key
to Vault, watches every node's certificate, finds unencrypted overlay networks, syncs secrets from Vault into
versioned Docker secrets, and reports on all of it (CIS Docker Benchmark section 7).

Exit codes: 0 ok; 1 an action or check failed; 2 bad usage or configuration; 3 not connected to a usable
swarm manager.`,
		Example: `  swarmguard status
  swarmguard config check --config /etc/swarmguard/config.yaml
  swarmguard rotate join-token worker --reason "token leaked in CI log"
  swarmguard report --format html --output report.html`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		Annotations:   map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&a.configFile, "config", "", "configuration file (YAML); env SWARMGUARD_CONFIG")
	pf.StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn, error (default info)")
	pf.StringVar(&a.logFormat, "log-format", "", "log format: text or json (default: text on a terminal, JSON otherwise)")
	pf.StringVar(&a.host, "host", "", "Docker daemon address (default: DOCKER_HOST, else the local socket)")
	pf.StringVar(&a.apiTimeout, "api-timeout", "", "timeout of each Engine API call (default 30s)")
	pf.StringVar(&a.format, "format", "", "output format (table, json, ...; each command lists its own)")
	pf.StringVarP(&a.output, "output", "o", "", "write the output to this file instead of stdout")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w (see `%s --help`)", err, c.CommandPath())}
	})
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		oneShotGC(cmd)
		if err := checkTextOnly(cmd, a); err != nil {
			return err
		}
		// Commands that need no configuration (version, completion, help) skip loading it.
		if cmd.Annotations["config"] == "none" {
			return nil
		}
		if err := a.load(cmd); err != nil {
			return err
		}
		// A command that may act sends audit records: a webhook signing key that cannot be read stops it
		// before it connects to anything (hold checks again, for the paths that reach it otherwise).
		if cmd.Annotations["acts"] == "true" {
			if _, err := a.webhookTargets(); err != nil {
				return err
			}
		}
		return nil
	}

	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate a credential now: join tokens, the unlock key, the root CA, a synced secret",
		Example: `  swarmguard rotate join-token all --reason "quarterly"
  swarmguard rotate unlock-key --reason "key shown in a screen share"`,
		Args: noArgs,
	}
	rotate.AddCommand(rotateCommands(a)...)
	root.AddCommand(rotate)
	root.AddCommand(commands(a)...)
	// Commands that print a plain-text log of what they do (progress, a plan) take no --format or --output:
	// say so rather than ignore the flags.
	for _, path := range [][]string{{"rotate", "ca"}, {"remediate", "network"}, {"run"}, {"health"}, {"config", "check"}} {
		if c, _, err := root.Find(path); err == nil && c != root {
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations["output"] = "text"
		}
	}
	// Commands that may change the cluster under the lease, and so send audit records to notify.webhooks.
	actsOn := [][]string{{"run"}, {"remediate", "network"}, {"escrow", "unlock-key"}, {"join-window", "open"}, {"join-window", "close"}, {"incident"}}
	for _, c := range rotate.Commands() {
		actsOn = append(actsOn, []string{"rotate", c.Name()})
	}
	for _, path := range actsOn {
		if c, _, err := root.Find(path); err == nil && c != root {
			if c.Annotations == nil {
				c.Annotations = map[string]string{}
			}
			c.Annotations["acts"] = "true"
		}
	}
	root.InitDefaultCompletionCmd()
	root.InitDefaultHelpCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "completion":
			c.Example = "  source <(swarmguard completion bash)\n  swarmguard completion zsh > \"${fpath[1]}/_swarmguard\""
			noConfig(c)
		case "help":
			c.Example = "  swarmguard help rotate"
			noConfig(c)
		}
	}
	setUsageArgs(root)
	return root
}

// checkTextOnly refuses --format and --output on commands that print a plain-text log.
func checkTextOnly(cmd *cobra.Command, a *app) error {
	if cmd.Annotations["output"] != "text" {
		return nil
	}
	if a.format != "" && a.format != "table" {
		return usageErr("%s prints plain text; --format %q is not available here", cmd.CommandPath(), a.format)
	}
	if a.output != "" {
		return usageErr("%s prints plain text as it goes; --output is not available here (redirect stdout instead)", cmd.CommandPath())
	}
	return nil
}

// noConfig marks a command tree as needing no configuration.
func noConfig(c *cobra.Command) {
	if c.Annotations == nil {
		c.Annotations = map[string]string{}
	}
	c.Annotations["config"] = "none"
	if c.Example == "" {
		c.Example = "  " + c.CommandPath()
	}
	for _, sub := range c.Commands() {
		noConfig(sub)
	}
}

// setUsageArgs makes argument-count errors usage errors (exit 2) throughout the tree.
func setUsageArgs(c *cobra.Command) {
	if c.Args != nil {
		inner := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := inner(cmd, args); err != nil {
				return &usageError{fmt.Errorf("%w (see `%s --help`)", err, cmd.CommandPath())}
			}
			return nil
		}
	}
	if c.RunE == nil && c.Run == nil && c.HasSubCommands() {
		// A bare group command ("swarmguard rotate") prints its help and is a usage error.
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &usageError{fmt.Errorf("unknown command %q for %q (see `%s --help`)", args[0], cmd.CommandPath(), cmd.CommandPath())}
			}
			_ = cmd.Help()
			return silentExit(ExitUsage)
		}
	}
	for _, sub := range c.Commands() {
		setUsageArgs(sub)
	}
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// engine returns the engine client, checked to be a usable swarm manager.
func (a *app) engine(ctx context.Context) (*swarm.Client, swarm.Self, error) {
	if _, err := a.engineClient(); err != nil {
		return nil, swarm.Self{}, err
	}
	if a.checked != nil {
		// One process, one check: a command that reaches the engine twice (openSync, then hold) asks
		// the engine's /info once (a slow call on a loaded manager).
		return a.client, *a.checked, nil
	}
	self, err := a.client.Check(ctx)
	if err != nil {
		return nil, self, err
	}
	a.checked = &self
	return a.client, self, nil
}

// engineClient is the process's engine client, built on first use; it does not contact the engine (engine
// does, once).
func (a *app) engineClient() (*swarm.Client, error) {
	if a.client == nil {
		c, err := swarm.New(swarm.Options{Host: a.cfg.Docker.Host, APITimeout: a.cfg.Docker.APITimeout.D()})
		if err != nil {
			return nil, &exitError{code: ExitNoSwarm, err: err}
		}
		a.client = c
	}
	return a.client, nil
}

// ledger is the configured ledger on the engine.
func (a *app) ledger(c *swarm.Client) *swarm.Ledger {
	return c.NewLedger(a.cfg.Ledger.Name, a.cfg.Ledger.MaxPerKind)
}

// actor names who acts from the CLI: the user and the host.
func actor() string {
	u := "unknown"
	if cur, err := user.Current(); err == nil && cur.Username != "" {
		u = cur.Username
	} else if s := os.Getenv("USER"); s != "" {
		u = s
	}
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "unknown-host"
	}
	return "cli:" + u + "@" + h
}

// oneShotGCPercent is the garbage collector's target for a command that runs once and exits: it collects
// a quarter as often as Go's default (100), which cuts the CPU of a `rotate secret --all` over 1,000
// mappings by a sixth (measured: 0.41 s to 0.34 s wall on the lab) for some megabytes more at its peak.
const oneShotGCPercent = 400

// oneShotGC sets oneShotGCPercent for every command but the controller (`run`, which lives long and whose
// resident memory the chart's limit holds), unless GOGC says otherwise.
func oneShotGC(cmd *cobra.Command) {
	if cmd.Name() == "run" || os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(oneShotGCPercent)
}
