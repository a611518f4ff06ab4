package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/tokens"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

type joinWindowFlags struct {
	ttl     time.Duration
	nodes   int
	reason  string
	show    bool
	publish bool
	dryRun  bool
}

func newJoinWindowCmd(a *app) *cobra.Command {
	group := &cobra.Command{
		Use:   "join-window",
		Short: "Hand out a join token for a bounded time (or number of joins); it is rotated when the window closes",
		Long: `Swarm join tokens never expire. A join window hands out the current worker or manager token and records
the window in the ledger; the controller's tokens pass (or the next run --once) rotates that token when the
window's time is up or after --nodes nodes joined with it, whichever comes first, and the rotation's ledger
entry names the window. swarmguard status lists the open windows. With tokens.require_windows a token that
swarmguard did not mint is rotated on the next pass unless a window of its kind is open.`,
		Example: `  swarmguard join-window open worker --ttl 30m --nodes 3 --reason "INFRA-123: three new workers"
  swarmguard join-window open worker --ttl 1h --publish
  swarmguard join-window close worker --reason "provisioning done"`,
		Args: noArgs,
	}
	var fl joinWindowFlags
	open := &cobra.Command{
		Use:   "open worker|manager --ttl DURATION",
		Short: "Hand out the current join token and record a window that closes by time or after N joins",
		Long: `Prints the current token masked (last 4 characters and its fingerprint) unless --show is given; with
--publish it is also written to tokens.publish.vault_path for provisioning tools. Nothing is rotated now.
One window per kind is open at a time.`,
		Example: `  swarmguard join-window open worker --ttl 30m --nodes 2 --reason "INFRA-123"
  swarmguard join-window open manager --ttl 10m --show --format json | jq -r .token`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"worker", "manager"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.openJoinWindow(cmd.Context(), args[0], fl)
		},
	}
	f := open.Flags()
	f.DurationVar(&fl.ttl, "ttl", 0, "how long the window stays open (required), e.g. 30m")
	f.IntVar(&fl.nodes, "nodes", 0, "close the window after this many nodes joined with the token (0: only by time)")
	f.StringVar(&fl.reason, "reason", "", "why, recorded in the ledger")
	f.BoolVar(&fl.show, "show", false, "print the token in full (default: masked)")
	f.BoolVar(&fl.publish, "publish", false, "also write the current tokens to tokens.publish.vault_path")
	f.BoolVar(&fl.dryRun, "dry-run", false, "print the plan (the window it would record), change nothing")
	var closeReason string
	var closeDry bool
	cl := &cobra.Command{
		Use:   "close ID|worker|manager",
		Short: "End an open join window now and rotate its token",
		Example: `  swarmguard join-window close jw-1a2b3c4d
  swarmguard join-window close worker --reason "all nodes joined"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.closeJoinWindow(cmd.Context(), args[0], closeReason, closeDry)
		},
	}
	cl.Flags().StringVar(&closeReason, "reason", "", "why, recorded in the ledger")
	cl.Flags().BoolVar(&closeDry, "dry-run", false, "print the plan (the rotation and the close it would record), change nothing")
	group.AddCommand(open, cl)
	return group
}

// windowJSON is an open window in `join-window open` output.
type windowJSON struct {
	tokens.Window
	Masked      string `json:"masked"`
	Token       string `json:"token,omitempty"`
	PublishedTo string `json:"published_to,omitempty"`
}

func (a *app) openJoinWindow(ctx context.Context, kind string, fl joinWindowFlags) error {
	format, err := a.outputFormat("table", "json")
	if err != nil {
		return err
	}
	if kind != swarm.TokenWorker && kind != swarm.TokenManager {
		return usageErr("%q is not worker or manager", kind)
	}
	if fl.ttl <= 0 {
		return usageErr("--ttl is required and must be positive (e.g. --ttl 30m)")
	}
	if fl.nodes < 0 {
		return usageErr("--nodes %d: give 0 (close only by time) or more", fl.nodes)
	}
	if fl.publish && a.cfg.Tokens.Publish.VaultPath == "" {
		return usageErr("--publish needs tokens.publish.vault_path in the config: where provisioning tools read the tokens")
	}
	c, _, err := a.engine(ctx)
	if err != nil {
		return err
	}
	reason := fl.reason
	if reason == "" {
		reason = "join window"
	}
	tk := a.tokens(c, a.ledger(c))
	if fl.dryRun {
		return a.writePlan(format, tk.PlanOpenWindow(ctx, tokens.OpenWindowOptions{Kind: kind, TTL: fl.ttl, Nodes: fl.nodes}, reason, time.Now()))
	}
	env := operator.TaskEnv{Actor: actor(), Reason: reason, Log: a.log, Now: time.Now, Out: io.Discard}
	var ow tokens.OpenedWindow
	var rc secrets.Receipt
	err = a.hold(ctx, "join-window open "+kind, env, func(ctx context.Context, env operator.TaskEnv) error {
		var err error
		if ow, err = tk.OpenWindow(ctx, tokens.OpenWindowOptions{Kind: kind, TTL: fl.ttl, Nodes: fl.nodes}, env); err != nil {
			return err
		}
		if fl.publish {
			rc, err = tk.Publish(ctx, env)
		}
		return err
	})
	if ow.Window.ID == "" {
		return failed(err)
	}
	out := windowJSON{Window: ow.Window, Masked: ow.Token.Masked()}
	if fl.show {
		out.Token = ow.Token.Reveal()
	}
	if fl.publish && err == nil {
		out.PublishedTo = fmt.Sprintf("%s (version %d)", a.cfg.Tokens.Publish.VaultPath, rc.Version)
	}
	werr := a.writeTableOrJSON(format, out, func(w io.Writer) error {
		fmt.Fprintf(w, "join window %s open: %s token %s until %s", out.ID, out.Kind, out.Masked, out.ClosesAt.Format(time.RFC3339))
		if out.Nodes > 0 {
			fmt.Fprintf(w, " or %d joins", out.Nodes)
		}
		fmt.Fprintln(w, "; the token is rotated when it closes")
		if out.PublishedTo != "" {
			fmt.Fprintf(w, "published to vault at %s\n", out.PublishedTo)
		}
		if fl.show {
			fmt.Fprintf(w, "%s token: %s\n", out.Kind, out.Token)
		}
		return nil
	})
	if err != nil {
		return failed(fmt.Errorf("join window %s is open, but: %w", out.ID, err))
	}
	return werr
}

func (a *app) closeJoinWindow(ctx context.Context, which, reason string, dryRun bool) error {
	format, err := a.outputFormat("table", "json")
	if err != nil {
		return err
	}
	c, _, err := a.engine(ctx)
	if err != nil {
		return err
	}
	tk := a.tokens(c, a.ledger(c))
	if dryRun {
		return a.writePlan(format, tk.PlanCloseWindow(ctx, which, actor(), reason, time.Now()))
	}
	env := operator.TaskEnv{Actor: actor(), Reason: reason, Log: a.log, Now: time.Now, Out: io.Discard}
	var d tokens.WindowDecision
	var rots []tokens.TokenRotated
	err = a.hold(ctx, "join-window close "+which, env, func(ctx context.Context, env operator.TaskEnv) error {
		var err error
		d, rots, err = tk.CloseWindow(ctx, which, env)
		return err
	})
	if d.Window.ID != "" || len(rots) > 0 {
		werr := a.writeTableOrJSON(format, map[string]any{"window": d.Window.ID, "closed_by": d.By, "why": d.Why, "rotated": len(rots) > 0},
			func(w io.Writer) error {
				fmt.Fprintln(w, d.Why)
				return renderTokenRotations(w, "table", rots, false)
			})
		if werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		return failed(err)
	}
	return nil
}

// joinWindowsTable lists the open windows for `status`.
func joinWindowsTable(w io.Writer, ws []tokens.Window) error {
	if len(ws) == 0 {
		_, err := fmt.Fprintln(w, "join windows: none open")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "JOIN WINDOW\tKIND\tOPENED\tCLOSES\tJOINED\tACTOR\tREASON")
	for _, x := range ws {
		limit := "-"
		if x.Nodes > 0 {
			limit = fmt.Sprintf("%d/%d", x.Joined, x.Nodes)
		} else if x.Joined > 0 {
			limit = fmt.Sprint(x.Joined)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", x.ID, x.Kind, x.OpenedAt.UTC().Format(time.RFC3339), x.ClosesAt.UTC().Format(time.RFC3339), limit, x.Actor, x.Reason)
	}
	return tw.Flush()
}
