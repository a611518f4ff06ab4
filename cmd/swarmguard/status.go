package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator/status"
	"github.com/swarmguard/swarmguard/operator/tokens"
	"github.com/swarmguard/swarmguard/swarm"
)

func newStatusCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the swarm as swarmguard sees it: nodes, root CA, certificate expiry, autolock, the ledger",
		Example: `  swarmguard status
  swarmguard status --format json | jq '.nodes[] | select(.leader)'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := a.outputFormat("table", "json")
			if err != nil {
				return err
			}
			c, _, err := a.engine(cmd.Context())
			if err != nil {
				return err
			}
			st, err := status.Read(cmd.Context(), c, c.Host(), a.ledger(c), c, a.cfg.Lease.Name)
			if err != nil {
				return err
			}
			out := statusJSON{View: st, JoinWindows: []tokens.Window{}}
			if st.LedgerError == "" {
				if out.JoinWindows, err = openJoinWindows(cmd.Context(), c, a.ledger(c)); err != nil {
					return err
				}
			}
			table := func(w io.Writer) error {
				if err := statusTable(w, st); err != nil {
					return err
				}
				fmt.Fprintln(w)
				return joinWindowsTable(w, out.JoinWindows)
			}
			if err := a.writeTableOrJSON(f, out, table); err != nil {
				return err
			}
			if st.LedgerError != "" {
				return failed(fmt.Errorf("the ledger could not be read: %s", st.LedgerError))
			}
			return nil
		},
	}
}

// statusJSON is `status`: the swarm as the runtime sees it plus the open join windows (the tokens domain).
type statusJSON struct {
	status.View
	JoinWindows []tokens.Window `json:"join_windows"`
}

// openJoinWindows reads the open join windows from the ledger, with the nodes that joined since each opened.
func openJoinWindows(ctx context.Context, c *swarm.Client, l *swarm.Ledger) ([]tokens.Window, error) {
	entries, err := l.Entries(ctx)
	if err != nil {
		return nil, err
	}
	ws := tokens.Windows(entries, false)
	if len(ws) == 0 {
		return ws, nil
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("counting the joins of the open join windows: %w", err)
	}
	tokens.CountJoined(ws, nodes)
	return ws, nil
}

func statusTable(w io.Writer, st status.View) error {
	fmt.Fprintf(w, "swarm %s (created %s)\n", st.Swarm.ID, st.Swarm.CreatedAt.Format(time.RFC3339))
	fmt.Fprintf(w, "self: node %s, %s, engine %s, API %s, via %s\n", st.Self.NodeID, st.Self.Role, st.Self.EngineVersion, st.Self.APIVersion, st.Self.Host)
	fmt.Fprintf(w, "root CA: %s, valid until %s", st.CA.Subject, st.CA.NotAfter.Format(time.RFC3339))
	if st.Swarm.RootRotationInProgress {
		fmt.Fprint(w, " (root rotation in progress)")
	}
	fmt.Fprintf(w, "\nnode certificate expiry: %s\nautolock: %v\n", st.NodeCertExpiry, st.Autolock)
	switch {
	case st.LeaseError != "":
		fmt.Fprintf(w, "lease: unreadable: %s\n", st.LeaseError)
	case st.Lease == nil || st.Lease.Holder == "":
		fmt.Fprintln(w, "lease: nobody acts now")
	default:
		fmt.Fprintf(w, "lease: held by %s (%s, %s)\n", st.Lease.Holder, st.Lease.Actor, st.Lease.What)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOSTNAME\tROLE\tLEADER\tSTATE\tAVAILABILITY\tENGINE\tADDR")
	for _, n := range st.Nodes {
		leader := ""
		if n.Leader {
			leader = "leader"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n.ID, n.Hostname, n.Role, leader, n.State, n.Availability, n.EngineVersion, n.Addr)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if len(st.Ledger) == 0 && st.LedgerError == "" {
		fmt.Fprintln(w, "ledger: nothing recorded yet")
		return nil
	}
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LEDGER KIND\tAT\tACTOR\tRESULT\tREASON")
	for _, e := range st.Ledger {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Kind, e.At, e.Actor, e.Result, e.Reason)
	}
	return tw.Flush()
}
