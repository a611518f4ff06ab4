package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// minHMACKeyLen is the shortest HMAC key accepted; the stack's key should be 32 random bytes.
const minHMACKeyLen = 16

// hmacKey reads secrets.hmac_key_file.
func (a *app) hmacKey() (sensitive.Value, error) {
	f := a.cfg.Secrets.HMACKeyFile
	if f == "" {
		return sensitive.Value{}, usageErr("secrets.hmac_key_file is required when secrets.mappings is not empty (a file of 32 random bytes, e.g. head -c 32 /dev/urandom)")
	}
	b, err := os.ReadFile(f)
	if err != nil {
		return sensitive.Value{}, usageErr("secrets.hmac_key_file: %v", err)
	}
	if len(b) < minHMACKeyLen {
		return sensitive.Value{}, usageErr("secrets.hmac_key_file %s holds %d bytes; use at least %d random bytes (32 recommended)", f, len(b), minHMACKeyLen)
	}
	return sensitive.FromBytes(b), nil
}

// mappings returns the configured mappings, checked.
func (a *app) mappings() ([]secrets.Mapping, error) {
	ms, probs := secretsync.Mappings(a.cfg.Secrets)
	if len(probs) > 0 {
		return nil, usageErr("invalid secrets.mappings:\n%s", probs.Sorted().Error())
	}
	if len(ms) == 0 {
		return nil, usageErr("no secrets.mappings in the configuration: nothing to sync")
	}
	return ms, nil
}

// syncer builds the sync over the engine and Vault.
func (a *app) syncer(c *swarm.Client, v *secrets.Vault) (*secretsync.Syncer, error) {
	key, err := a.hmacKey()
	if err != nil {
		return nil, err
	}
	var src secretsync.Source
	if v != nil {
		src = v.KV()
	}
	s := &secretsync.Syncer{Engine: c, Source: src, Key: key, Log: a.log.With("component", "secrets"),
		RolloutTimeout: a.cfg.Secrets.RolloutTimeout.D(), Concurrency: a.cfg.Secrets.Concurrency, RolloutConcurrency: a.cfg.Secrets.RolloutConcurrency}
	s.BeforeUpdate = func(string) { crashpoint.At("secret.after-create") } // a no-op outside the crash harness
	return s, nil
}

// secretsTask is the controller's secrets loop. Vault is reached on the first pass (so a Vault that is down
// at start-up delays only this loop); the token is then kept alive for the life of the process.
func (a *app) secretsTask(d taskDeps) (operator.Task, error) {
	ms, err := a.mappings()
	if err != nil {
		return operator.Task{}, err
	}
	if _, err := a.hmacKey(); err != nil {
		return operator.Task{}, err
	}
	if _, err := a.vaultConfig(); err != nil {
		return operator.Task{}, err
	}
	var ledger operator.LedgerStore
	if d.Ledger != nil {
		ledger = d.Ledger
	}
	// The sync and its status exist from the start; its Syncer comes with the first Vault login.
	ss := secretsync.NewSecretsSync(nil, ms, ledger, secretMetrics(a, ms))
	ss.Gauges = d.Gauges.Part("secrets")
	a.secretsSync.Store(ss)
	var mu sync.Mutex
	return operator.Task{Name: "secrets", Schedule: "@every 5s", Run: func(ctx context.Context, env operator.TaskEnv) error {
		mu.Lock()
		defer mu.Unlock()
		if ss.Syncer == nil {
			v, err := a.vault(ctx)
			if err != nil {
				ss.Unavailable(err, env.Time()) // every mapping's status says why, and since when
				return err
			}
			s, err := a.syncer(d.Engine, v)
			if err != nil {
				ss.Unavailable(err, env.Time())
				return err
			}
			ss.Syncer = s
		}
		return ss.Task().Run(ctx, env)
	}}, nil
}

// secretMetrics registers the sync's metrics with the runtime's registry.
func secretMetrics(a *app, ms []secrets.Mapping) secretsync.SecretsObserver {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	m, err := secretsync.NewSecretMetrics(a.metrics().Registerer(), names)
	if err != nil {
		a.log.Warn("registering the secrets metrics failed", "err", err)
		return nil
	}
	return m
}

// openSync builds the sync over the named mappings (all when names is empty) for a CLI command, then
// connects the engine and Vault side by side: an unknown name or an unreadable HMAC key is a usage error
// before anything is contacted, and the engine's error comes first when both fail. With readAhead (a
// command that syncs or plans at once) the mappings' Vault reads start as soon as Vault answers, so they go
// on while the engine is checked and the lease taken; the pass uses them if they are fresh (see
// secretsync.ReadAheadMaxAge). Without it, ahead is nil.
func (a *app) openSync(ctx context.Context, names []string, readAhead bool) (ss *secretsync.SecretsSync, sel []secrets.Mapping, ahead *secretsync.ReadAhead, err error) {
	ms, err := a.mappings()
	if err != nil {
		return nil, nil, nil, err
	}
	ss = secretsync.NewSecretsSync(nil, ms, nil, nil)
	if sel, err = ss.Select(names); err != nil {
		return nil, nil, nil, usageErr("%v", err)
	}
	c, err := a.engineClient()
	if err != nil {
		return nil, nil, nil, err
	}
	syncer, err := a.syncer(c, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	var engineErr, vaultErr error
	var wg sync.WaitGroup
	wg.Go(func() { _, _, engineErr = a.engine(ctx) })
	wg.Go(func() {
		var v *secrets.Vault
		if v, vaultErr = a.vault(ctx); vaultErr == nil {
			syncer.Source = v.KV()
			if readAhead {
				ahead = syncer.ReadAhead(ctx, sel)
			}
		}
	})
	wg.Wait()
	if err := cmp.Or(engineErr, vaultErr); err != nil {
		return nil, nil, nil, err
	}
	ss.Syncer, ss.Ledger = syncer, a.ledger(c)
	return ss, sel, ahead, nil
}

func newSecretsCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Vault-to-Docker secret sync: what it would do, and the current secret names",
		Example: `  swarmguard secrets plan
  swarmguard secrets current --format env > secrets.env`,
		Args: noArgs,
	}
	cmd.AddCommand(newSecretsPlanCmd(a), newSecretsCurrentCmd(a))
	return cmd
}

func newSecretsPlanCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "plan [NAME...]",
		Short: "Show, per mapping, the current and wanted version and what a sync would create, update and remove",
		Long: `plan reads each mapping's value from Vault and the managed secrets and services from the engine, and
shows what a sync would do. It changes nothing. Exit 1 when a mapping cannot be read or rendered.`,
		Example: `  swarmguard secrets plan
  swarmguard secrets plan db_password --format json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := a.outputFormat("table", "json")
			if err != nil {
				return err
			}
			ss, ms, ahead, err := a.openSync(cmd.Context(), args, true)
			if err != nil {
				return err
			}
			results := ss.Syncer.Pass(cmd.Context(), ms, secretsync.Options{DryRun: true, Reads: ahead})
			if err := a.writeTableOrJSON(format, results, func(w io.Writer) error { return writePlanTable(w, results) }); err != nil {
				return err
			}
			return resultsErr(results)
		},
	}
}

func resultsErr(results []secretsync.Result) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %s", r.Mapping, r.Outcome))
		}
	}
	if len(errs) > 0 {
		return &exitError{code: ExitFailed, err: errors.Join(errs...), silent: true}
	}
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func writePlanTable(w io.Writer, results []secretsync.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAPPING\tCURRENT\tWANTED\tVAULT VERSION\tCREATE\tUPDATE SERVICES\tREMOVE")
	var notes []string
	for _, r := range results {
		if r.Plan == nil {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\n", r.Mapping)
			notes = append(notes, fmt.Sprintf("%s: error: %s", r.Mapping, r.Error))
			continue
		}
		p := r.Plan
		cur := "-"
		if p.Current != nil {
			cur = p.Current.Name
		}
		create := "no"
		if p.Create != nil {
			create = "yes"
		}
		var ups, rm []string
		for _, u := range p.Updates {
			if u.Added {
				ups = append(ups, u.ServiceName+" (add)")
			} else {
				ups = append(ups, u.ServiceName)
			}
		}
		for _, v := range p.Remove {
			rm = append(rm, v.Name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Mapping, cur, p.Wanted.Name, p.Wanted.VaultVersion, create,
			orDash(strings.Join(ups, ", ")), orDash(strings.Join(rm, ", ")))
		for _, s := range p.Settling {
			notes = append(notes, fmt.Sprintf("%s: service %s update is %s %s", r.Mapping, s.ServiceName, s.State, s.Message))
		}
		for _, wn := range p.Warnings {
			notes = append(notes, fmt.Sprintf("%s: warning: %s", r.Mapping, wn))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return nil
}

// envName is the variable name `secrets current --format env` prints: db_password -> DB_PASSWORD_SECRET.
func envName(mapping string) string {
	var b strings.Builder
	for _, r := range mapping {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		} else {
			b.WriteByte('_')
		}
	}
	return b.String() + "_SECRET"
}

type currentSecret struct {
	Mapping      string `json:"mapping"`
	Secret       string `json:"secret"`
	VaultVersion int    `json:"vault_version"`
	Variable     string `json:"variable"`
}

func newSecretsCurrentCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "current [NAME...]",
		Short: "Print each mapping's current Docker secret name, for a compose file's external secrets",
		Long: `current prints the newest version of each mapping's Docker secret. A service deployed with
` + "`docker stack deploy`" + ` gets its compose file's secrets back at the next deploy, so name them from here:

  secrets:
    db_password:
      external: true
      name: ${DB_PASSWORD_SECRET}

It reads only the engine (not Vault). Exit 1 when a mapping has no version yet.`,
		Example: `  swarmguard secrets current
  set -a; eval "$(swarmguard secrets current --format env)"; docker stack deploy -c stack.yml shop
  swarmguard secrets current db_password --format json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := a.outputFormat("env", "json")
			if err != nil {
				return err
			}
			ms, err := a.mappings()
			if err != nil {
				return err
			}
			ss := secretsync.NewSecretsSync(nil, ms, nil, nil)
			sel, err := ss.Select(args)
			if err != nil {
				return usageErr("%v", err)
			}
			c, _, err := a.engine(cmd.Context())
			if err != nil {
				return err
			}
			all, err := c.ManagedSecrets(cmd.Context())
			if err != nil {
				return failed(err)
			}
			var out []currentSecret
			var missing []string
			for _, m := range sel {
				v, ok := secretsync.Newest(m.Name, all)
				if !ok {
					missing = append(missing, m.Name)
					continue
				}
				out = append(out, currentSecret{Mapping: m.Name, Secret: v.Name, VaultVersion: v.VaultVersion, Variable: envName(m.Name)})
			}
			if out == nil {
				out = []currentSecret{} // JSON: an empty list, not null
			}
			if err := a.writeTableOrJSON(format, out, func(w io.Writer) error {
				for _, c := range out {
					fmt.Fprintf(w, "%s=%s\n", c.Variable, c.Secret)
				}
				return nil
			}); err != nil {
				return err
			}
			if len(missing) > 0 {
				return failed(fmt.Errorf("no Docker secret yet for %s: run `swarmguard rotate secret` or wait for the controller", strings.Join(missing, ", ")))
			}
			return nil
		},
	}
}

type rotateSecretFlags struct {
	all    bool
	dryRun bool
	reason string
}

func newRotateSecretCmd(a *app) *cobra.Command {
	var fl rotateSecretFlags
	cmd := &cobra.Command{
		Use:   "secret NAME...|--all",
		Short: "Re-read mapped secrets from Vault now and roll every service that uses them onto the new version",
		Long: `rotate secret reads the mapping's value from Vault, creates the new versioned Docker secret when the value
changed, points every dependent service at it (same target, uid, gid and mode; each service's own update
config drives the roll), waits for each to converge, and removes old versions nothing uses beyond
keep_versions. A rollout that failed before for the same value is tried again. Exit 1 when a mapping
failed.`,
		Example: `  swarmguard rotate secret db_password --reason "password changed in vault"
  swarmguard rotate secret --all --dry-run`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if fl.all == (len(args) > 0) {
				return usageErr("name the mappings to rotate, or give --all (not both)")
			}
			format, err := a.outputFormat("table", "json")
			if err != nil {
				return err
			}
			ss, ms, ahead, err := a.openSync(cmd.Context(), args, true)
			if err != nil {
				return err
			}
			reason := fl.reason
			if reason == "" {
				reason = "manual rotate"
			}
			var results []secretsync.Result
			env := operator.TaskEnv{DryRun: fl.dryRun, Actor: actor(), Reason: reason, Log: a.log}
			// Under the lease every create, repoint and removal re-checks it (env.Guard).
			run := func(ctx context.Context, env operator.TaskEnv) error {
				results, _ = ss.Run(ctx, env, ms, secretsync.Options{DryRun: fl.dryRun, Force: true, Reason: reason, Reads: ahead})
				return nil
			}
			if fl.dryRun {
				err = run(cmd.Context(), env)
			} else {
				err = a.hold(cmd.Context(), "rotate secret", env, run)
			}
			if err != nil {
				return err
			}
			table := writeRotateTable
			if fl.dryRun {
				table = writePlanTable
			}
			if err := a.writeTableOrJSON(format, results, func(w io.Writer) error { return table(w, results) }); err != nil {
				return err
			}
			return resultsErr(results)
		},
	}
	cmd.Flags().BoolVar(&fl.all, "all", false, "rotate every mapping")
	cmd.Flags().BoolVar(&fl.dryRun, "dry-run", false, "show what would be done; change nothing")
	cmd.Flags().StringVar(&fl.reason, "reason", "", "why, recorded in the ledger")
	return cmd
}

func writeRotateTable(w io.Writer, results []secretsync.Result) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAPPING\tRESULT\tSECRET\tVAULT VERSION\tCREATED\tUPDATED\tREMOVED")
	var notes []string
	for _, r := range results {
		name := "-"
		if r.Plan != nil {
			name = r.Plan.Wanted.Name
			for _, wn := range r.Plan.Warnings {
				notes = append(notes, fmt.Sprintf("%s: warning: %s", r.Mapping, wn))
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", r.Mapping, r.Outcome, name, r.VaultVersion, orDash(r.Created),
			orDash(strings.Join(r.Updated, ", ")), orDash(strings.Join(r.Removed, ", ")))
		if r.Err != nil {
			notes = append(notes, fmt.Sprintf("%s: %s: %s", r.Mapping, r.Outcome, r.Error))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(w, n)
	}
	return nil
}
