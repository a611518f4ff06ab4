package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/tokens"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// tokens builds the join-token domain over the engine and the ledger.
func (a *app) tokens(c *swarm.Client, l *swarm.Ledger) *tokens.Tokens {
	t := &tokens.Tokens{Engine: c, Ledger: l, Config: a.cfg.Tokens, Nodes: c}
	if a.cfg.Tokens.Publish.VaultPath != "" {
		t.Publisher = func(ctx context.Context) (tokens.TokenPublisher, error) { return a.escrow(ctx) }
	}
	return t
}

// escrow logs in to Vault and returns the KV v2 escrow (unlock key, published join tokens).
func (a *app) escrow(ctx context.Context) (*secrets.Escrow, error) {
	v, err := a.vault(ctx)
	if err != nil {
		return nil, err
	}
	return secrets.NewEscrow(v.KV()), nil
}

type rotateTokenFlags struct {
	reason string
	dryRun bool
	show   bool
}

func newRotateJoinTokenCmd(a *app) *cobra.Command {
	var fl rotateTokenFlags
	cmd := &cobra.Command{
		Use:   "join-token worker|manager|all",
		Short: "Rotate the worker or manager join token (or both) now, and record it in the ledger",
		Long: `Rotates the join token(s): the old one stops admitting nodes at once; nodes already in the swarm are not
affected. The rotation is recorded in the ledger (actor, reason, old and new SHA-256 fingerprints), which
restarts the token's schedule, and the new tokens are published to Vault when tokens.publish.vault_path is
set. The new token is printed masked (last 4 characters and its fingerprint) unless --show is given.`,
		Example: `  swarmguard rotate join-token worker --reason "token leaked in CI log"
  swarmguard rotate join-token all --dry-run
  swarmguard rotate join-token manager --show --format json | jq -r '.rotated[0].token'`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("give one of worker, manager, all")
			}
			if _, err := tokenKinds(args[0]); err != nil {
				return err
			}
			return nil
		},
		ValidArgs: []string{"worker", "manager", "all"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.rotateJoinTokens(cmd.Context(), args[0], fl)
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.reason, "reason", "", "why, recorded in the ledger")
	f.BoolVar(&fl.dryRun, "dry-run", false, "say what would be rotated, change nothing")
	f.BoolVar(&fl.show, "show", false, "print the new token(s) in full (default: masked)")
	return cmd
}

func tokenKinds(arg string) ([]string, error) {
	switch arg {
	case "worker":
		return []string{swarm.TokenWorker}, nil
	case "manager":
		return []string{swarm.TokenManager}, nil
	case "all":
		return []string{swarm.TokenWorker, swarm.TokenManager}, nil
	}
	return nil, fmt.Errorf("%q is not one of worker, manager, all", arg)
}

// rotatedJSON is one rotated credential in JSON output; Token only with --show.
type rotatedJSON struct {
	Kind           string    `json:"kind"`
	Fingerprint    string    `json:"fingerprint"`
	OldFingerprint string    `json:"old_fingerprint,omitempty"`
	Masked         string    `json:"masked"`
	At             time.Time `json:"at"`
	Token          string    `json:"token,omitempty"`
	Key            string    `json:"key,omitempty"`
}

func (a *app) rotateJoinTokens(ctx context.Context, arg string, fl rotateTokenFlags) error {
	format, err := a.outputFormat("table", "json")
	if err != nil {
		return err
	}
	kinds, err := tokenKinds(arg)
	if err != nil {
		return usageErr("%v", err)
	}
	c, _, err := a.engine(ctx)
	if err != nil {
		return err
	}
	reason := fl.reason
	if reason == "" {
		reason = "manual rotation"
	}
	tk := a.tokens(c, a.ledger(c))
	if fl.dryRun {
		cl, err := c.Cluster(ctx)
		if err != nil {
			return err
		}
		p := tokens.PlanRotate(cl, kinds, reason)
		if tk.Config.Publish.VaultPath != "" {
			p.Note("the new tokens are published to vault at %s (no ledger entry)", tk.Config.Publish.VaultPath)
		}
		return a.writePlan(format, p)
	}
	env := operator.TaskEnv{Actor: actor(), Reason: reason, Log: a.log, Now: time.Now, Out: io.Discard}
	var rots []tokens.TokenRotated
	err = a.hold(ctx, "rotate join-token "+arg, env, func(ctx context.Context, env operator.TaskEnv) error {
		var rerr error
		rots, rerr = tk.Rotate(ctx, kinds, env)
		return rerr
	})
	if len(rots) > 0 {
		if werr := a.writeOutput(func(w io.Writer) error { return renderTokenRotations(w, format, rots, fl.show) }); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return failed(err)
	}
	return nil
}

func renderTokenRotations(w io.Writer, format string, rots []tokens.TokenRotated, show bool) error {
	out := make([]rotatedJSON, 0, len(rots))
	for _, r := range rots {
		j := rotatedJSON{Kind: r.Kind, Fingerprint: r.Token.Fingerprint(), OldFingerprint: r.OldFingerprint, Masked: r.Token.Masked(), At: r.At.UTC()}
		if show {
			j.Token = r.Token.Reveal()
		}
		out = append(out, j)
	}
	if format == "json" {
		return writeJSON(w, map[string]any{"rotated": out})
	}
	for _, j := range out {
		fmt.Fprintf(w, "rotated the %s join token: %s (was sha256:%s)\n", j.Kind, j.Masked, shortFP(j.OldFingerprint))
		if show {
			fmt.Fprintf(w, "%s token: %s\n", j.Kind, j.Token)
		}
	}
	return nil
}

// shortFP is the first 12 hex digits of a fingerprint.
func shortFP(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}
