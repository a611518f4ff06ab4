package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator/cluster"
	"github.com/swarmguard/swarmguard/operator/compliance"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func newReportCmd(a *app) *cobra.Command {
	var failOn string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Compliance report: CIS Docker Benchmark sections 4, 5 (per service) and 7 and swarmguard's own checks, with evidence",
		Long: `report evaluates the swarm against CIS Docker Benchmark v1.6 section 7 (7.1 to 7.9) and swarmguard's own
checks (overlay encryption exemptions, engine versions and CVE-2023-28840/28841/28842, CA key strength, join
tokens, node certificates, secret sync), each with its status (pass, warn, fail, info, error), the observed
values as evidence, and the remediation.

Formats: table (default), json, markdown, html (one self-contained printable file with charts), junit.

Exit status: 1 when a check is at or above --fail-on (warn: warn, fail or error; fail: fail or error; none:
never); --fail-on defaults to report.fail_on. With neither set the exit status is 0 unless a check could not be
evaluated (status error): findings are the report's content, a hole in it is not. 3 when no swarm manager answers.

The listen address of port 2377 (7.2) and the data-path address (7.9) are not in the Engine API: swarmguard
reads them from the engine's <data-root>/swarm/docker-state.json when it runs on that engine's host, and reports
info with the reason otherwise.`,
		Example: `  swarmguard report
  swarmguard report --format json --fail-on fail
  swarmguard report --format html --output compliance.html
  swarmguard report --format junit --output compliance.xml --fail-on warn`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, err := a.outputFormat(report.Formats...)
			if err != nil {
				return err
			}
			gate, err := a.failOnGate(cmd, failOn)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, _, err := a.engine(ctx)
			if err != nil {
				return err
			}
			r, _, err := buildReport(ctx, a, c, time.Now())
			if err != nil {
				return err
			}
			if err := a.writeReport(func(w io.Writer) error { return r.Render(w, format) }); err != nil {
				return err
			}
			if r.Fails(gate) {
				fmt.Fprintf(a.stderr, "swarmguard: report: %s (gate --fail-on %s)\n", strings.TrimSpace(reportSummary(r)), gateName(gate))
				return silentExit(ExitFailed)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&failOn, "fail-on", "", "exit 1 when a check is at or above this status: warn, fail or none (default report.fail_on)")
	return cmd
}

// failOnGate is the fail_on gate of a report command: --fail-on when given, else report.fail_on.
func (a *app) failOnGate(cmd *cobra.Command, flag string) (string, error) {
	gate := flag
	if !cmd.Flags().Changed("fail-on") {
		gate = a.cfg.Report.FailOn
	}
	switch gate {
	case "", report.FailOnNone, report.FailOnWarn, report.FailOnFail:
		return gate, nil
	}
	return "", usageErr("--fail-on %q is not one of warn, fail, none", gate)
}

func gateName(g string) string {
	if g == "" {
		return "unset: errors only"
	}
	return g
}

func reportSummary(r report.Report) string {
	s := r.Summary
	return fmt.Sprintf("%d pass, %d warn, %d fail, %d info, %d error", s.Pass, s.Warn, s.Fail, s.Info, s.Error)
}

// buildReport reads everything the report needs and evaluates it.
func buildReport(ctx context.Context, a *app, c *swarm.Client, now time.Time) (report.Report, compliance.Input, error) {
	local := readLocalSwarmState(ctx, c)
	sw, err := cluster.GatherReport(ctx, c, a.ledger(c), cluster.GatherOptions{Local: local, Prober: a.pkiSources().Prober}, now)
	in := compliance.Input{ReportInput: sw}
	if err != nil {
		return report.Report{}, in, err
	}
	gatherReportDomains(ctx, a, c, &in)
	return compliance.Build(in, a.cfg), in, nil
}

// readLocalSwarmState reads the engine's own swarm settings (listen and data-path address) from its data root,
// when swarmguard runs on the engine's host and may read it. Its Err says why not otherwise.
func readLocalSwarmState(ctx context.Context, c *swarm.Client) cluster.LocalSwarmState {
	facts, err := c.EngineFacts(ctx)
	if err != nil {
		return cluster.LocalSwarmState{Err: err}
	}
	if facts.DockerRootDir == "" {
		return cluster.LocalSwarmState{NodeID: facts.NodeID, Hostname: facts.Hostname, Err: errors.New("the engine reports no data root")}
	}
	path := filepath.Join(facts.DockerRootDir, "swarm", "docker-state.json")
	data, err := os.ReadFile(path)
	if err != nil {
		why := err
		if errors.Is(err, os.ErrNotExist) {
			why = fmt.Errorf("%s is not readable here (swarmguard does not run on the host of engine %s)", path, c.Host())
		}
		return cluster.LocalSwarmState{NodeID: facts.NodeID, Hostname: facts.Hostname, Source: path, Err: why}
	}
	return cluster.ParseLocalSwarmState(data, path, facts)
}
