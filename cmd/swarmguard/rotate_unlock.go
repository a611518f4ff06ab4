package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/autolock"
	"github.com/swarmguard/swarmguard/swarm"
)

// autolock builds the autolock domain over the engine, the ledger and Vault.
func (a *app) autolock(c *swarm.Client, l *swarm.Ledger) *autolock.Autolock {
	al := &autolock.Autolock{Engine: c, Ledger: l, Config: a.cfg.Autolock, LookupHost: net.DefaultResolver.LookupHost}
	if vc, err := a.vaultConfig(); err == nil {
		al.VaultAddr = vc.Address
	}
	al.Escrow = func(ctx context.Context) (autolock.KeyEscrow, error) { return a.escrow(ctx) }
	return al
}

type rotateUnlockFlags struct {
	reason string
	dryRun bool
	show   bool
	force  bool
}

func newRotateUnlockKeyCmd(a *app) *cobra.Command {
	var fl rotateUnlockFlags
	cmd := &cobra.Command{
		Use:   "unlock-key",
		Short: "Rotate the autolock unlock key now and escrow the new one to Vault",
		Long: `Rotates the swarm's unlock key, reads the new key back from the swarm and escrows it to Vault KV v2 at
autolock.escrow.vault_path (default secret/swarmguard/<swarm ID>/unlock-key) with check-and-set, then reads
it back and compares fingerprints, all before it reports success. Earlier versions stay in Vault, so the
previous key remains retrievable. It refuses when autolock is off and, without --force, when a manager is
unreachable (such a manager needs the old key to unlock). If the escrow fails it exits 1: the new key is
safe in the swarm; escrow it with ` + "`swarmguard escrow unlock-key`" + ` once Vault answers.
The key is printed masked unless --show is given.`,
		Example: `  swarmguard rotate unlock-key --reason "key shown in a screen share"
  swarmguard rotate unlock-key --dry-run
  swarmguard rotate unlock-key --force --reason "n3 is gone for good"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.rotateUnlockKey(cmd.Context(), fl) },
	}
	f := cmd.Flags()
	f.StringVar(&fl.reason, "reason", "", "why, recorded in the ledger")
	f.BoolVar(&fl.dryRun, "dry-run", false, "check and say what would be done, change nothing")
	f.BoolVar(&fl.show, "show", false, "print the new key in full (default: masked)")
	f.BoolVar(&fl.force, "force", false, "rotate even when a manager is unreachable (it will need the old key)")
	return cmd
}

func newEscrowCmd(a *app) *cobra.Command {
	group := &cobra.Command{
		Use:     "escrow",
		Short:   "Escrow credentials to Vault",
		Example: `  swarmguard escrow unlock-key`,
		Args:    noArgs,
	}
	var reason string
	var dryRun bool
	sub := &cobra.Command{
		Use:   "unlock-key",
		Short: "Read the swarm's current unlock key and escrow it to Vault (after a failed escrow)",
		Long: `Re-reads the current unlock key from the swarm and writes it to Vault KV v2 at the escrow path with
check-and-set, then reads it back and compares fingerprints. It refuses to write over another swarm's record.
Nothing is written when Vault already holds this key.`,
		Example: `  swarmguard escrow unlock-key
  swarmguard escrow unlock-key --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.escrowUnlockKey(cmd.Context(), reason, dryRun) },
	}
	sub.Flags().StringVar(&reason, "reason", "", "why, recorded in the ledger")
	sub.Flags().BoolVar(&dryRun, "dry-run", false, "say what would be escrowed, write nothing")
	group.AddCommand(sub)
	return group
}

func (a *app) rotateUnlockKey(ctx context.Context, fl rotateUnlockFlags) error {
	format, err := a.outputFormat("table", "json")
	if err != nil {
		return err
	}
	c, _, err := a.engine(ctx)
	if err != nil {
		return err
	}
	reason := fl.reason
	if reason == "" {
		reason = "manual rotation"
	}
	al := a.autolock(c, a.ledger(c))
	env := operator.TaskEnv{DryRun: fl.dryRun, Actor: actor(), Reason: reason, Log: a.log, Now: time.Now, Out: a.stdout}
	var res autolock.UnlockKeyResult
	run := func(ctx context.Context, env operator.TaskEnv) error {
		var rerr error
		res, rerr = al.RotateKey(ctx, autolock.RotateKeyOptions{Force: fl.force}, env)
		return rerr
	}
	if fl.dryRun {
		if err = run(ctx, env); err == nil && res.Plan != nil {
			return a.writePlan(format, *res.Plan)
		}
	} else {
		err = a.hold(ctx, "rotate unlock-key", env, run)
	}
	if res.Rotated {
		if werr := a.writeOutput(func(w io.Writer) error { return renderUnlockResult(w, format, res, fl.show) }); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		if errors.Is(err, swarm.ErrAutolockOff) || errors.Is(err, autolock.ErrManagersUnreachable) {
			return failed(fmt.Errorf("refusing to rotate the unlock key: %w", err))
		}
		return failed(err)
	}
	return nil
}

func (a *app) escrowUnlockKey(ctx context.Context, reason string, dryRun bool) error {
	format, err := a.outputFormat("table", "json")
	if err != nil {
		return err
	}
	c, _, err := a.engine(ctx)
	if err != nil {
		return err
	}
	if reason == "" {
		reason = "manual escrow"
	}
	al := a.autolock(c, a.ledger(c))
	env := operator.TaskEnv{DryRun: dryRun, Actor: actor(), Reason: reason, Log: a.log, Now: time.Now, Out: a.stdout}
	var res autolock.UnlockKeyResult
	run := func(ctx context.Context, env operator.TaskEnv) error {
		var rerr error
		res, rerr = al.EscrowCurrent(ctx, env)
		return rerr
	}
	if dryRun {
		err = run(ctx, env)
	} else {
		err = a.hold(ctx, "escrow unlock-key", env, run)
	}
	if err != nil {
		return failed(err)
	}
	if dryRun {
		if res.Plan == nil {
			return nil
		}
		return a.writePlan(format, *res.Plan)
	}
	return a.writeOutput(func(w io.Writer) error { return renderUnlockResult(w, format, res, false) })
}

func renderUnlockResult(w io.Writer, format string, res autolock.UnlockKeyResult, show bool) error {
	if format == "json" {
		out := map[string]any{"swarm_id": res.SwarmID, "rotated": []rotatedJSON{}, "warnings": append([]string{}, res.Warnings...)}
		if res.Rotated {
			j := rotatedJSON{Kind: swarm.KindUnlockKey, Fingerprint: res.Key.Fingerprint(), OldFingerprint: res.OldFingerprint, Masked: res.Key.Masked(), At: res.At.UTC()}
			if show {
				j.Key = res.Key.Reveal()
			}
			out["rotated"] = []rotatedJSON{j}
		} else {
			out["fingerprint"] = res.Key.Fingerprint()
			out["masked"] = res.Key.Masked()
		}
		if res.Escrow != nil {
			out["escrow"] = res.Escrow
		}
		return writeJSON(w, out)
	}
	if res.Rotated {
		fmt.Fprintf(w, "rotated the unlock key: %s (was sha256:%s)\n", res.Key.Masked(), shortFP(res.OldFingerprint))
		if show {
			fmt.Fprintf(w, "unlock key: %s\n", res.Key.Reveal())
		}
	}
	if e := res.Escrow; e != nil {
		what := "escrowed the unlock key"
		if e.Unchanged {
			what = "vault already held the unlock key"
		}
		fmt.Fprintf(w, "%s (%s) at %s, version %d: read back, fingerprint matches\n", what, res.Key.Masked(), e.Path, e.Version)
	}
	for _, wn := range res.Warnings {
		fmt.Fprintf(w, "warning: %s: after a full restart the managers are locked and that vault cannot start; keep a copy of the key elsewhere too\n", wn)
	}
	return nil
}
