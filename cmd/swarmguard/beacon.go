package main

import (
	"github.com/spf13/cobra"
)

func newBeaconCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "beacon",
		Short: "Wait until stopped: the stack's beacon task on every node, which makes each node's data-path address visible (CIS 7.9)",
		Long: `beacon does nothing but wait for SIGTERM or SIGINT, then exits 0. It reads no configuration and opens
no socket. The stack runs it as a global service on every node, attached to the stack's overlay network:
engines 29 and later gossip a node's overlay tunnel address (its data-path address) only for the service
tasks it runs, so without a task on a node the compliance report cannot tell whether that node's data
traffic is separated from its management traffic (CIS 7.9).`,
		Example: `  # charts/swarmguard/stack.yml, service beacon (mode: global):
  command: ["beacon"]`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{"config": "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			<-cmd.Context().Done()
			return nil
		},
	}
}
