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

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func init() {
	register(newReportCmd)
	// The networks loop: log the overlay-network findings and refresh the compliance gauges
	// (swarmguard_check_status{check} for every report check, swarmguard_network_encrypted{network}) on
	// networks.schedule. It changes nothing: remediation is a person's `swarmguard remediate network`.
	registerTask(func(a *app, d taskDeps) (operator.Task, error) {
		col := report.NewGaugeCollector()
		if err := a.metrics().Registerer().Register(col); err != nil {
			return operator.Task{}, fmt.Errorf("registering the compliance metrics: %w", err)
		}
		t := operator.NetworksTask(d.Engine, a.cfg.Networks, nil)
		inner := t.Run
		t.Run = func(ctx context.Context, env operator.TaskEnv) error {
			err := inner(ctx, env)
			r, in, rerr := buildReport(ctx, a, d.Engine, env.Time())
			if rerr != nil {
				return errors.Join(err, fmt.Errorf("compliance report: %w", rerr))
			}
			col.Set(operator.ReportGauges(r, in, a.cfg))
			env.Log.Debug("compliance gauges refreshed", "pass", r.Summary.Pass, "warn", r.Summary.Warn, "fail", r.Summary.Fail,
				"info", r.Summary.Info, "error", r.Summary.Error)
			return err
		}
		return t, nil
	})
}

func newReportCmd(a *app) *cobra.Command {
	var failOn string
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Compliance report: CIS Docker Benchmark section 7 and swarmguard's own checks, with evidence",
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
			gate := failOn
			if !cmd.Flags().Changed("fail-on") {
				gate = a.cfg.Report.FailOn
			}
			switch gate {
			case "", report.FailOnNone, report.FailOnWarn, report.FailOnFail:
			default:
				return usageErr("--fail-on %q is not one of warn, fail, none", gate)
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
			if err := a.writeOutput(func(w io.Writer) error { return r.Render(w, format) }); err != nil {
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
func buildReport(ctx context.Context, a *app, c *swarm.Client, now time.Time) (report.Report, operator.ReportInput, error) {
	local := readLocalSwarmState(ctx, c)
	in, err := operator.GatherReport(ctx, c, a.ledger(c), operator.GatherOptions{Local: local, Prober: a.pkiSources().Prober}, now)
	if err != nil {
		return report.Report{}, in, err
	}
	gatherReportDomains(ctx, a, c, &in)
	return operator.BuildReport(in, a.cfg), in, nil
}

// readLocalSwarmState reads the engine's own swarm settings (listen and data-path address) from its data root,
// when swarmguard runs on the engine's host and may read it. Its Err says why not otherwise.
func readLocalSwarmState(ctx context.Context, c *swarm.Client) operator.LocalSwarmState {
	facts, err := c.EngineFacts(ctx)
	if err != nil {
		return operator.LocalSwarmState{Err: err}
	}
	if facts.DockerRootDir == "" {
		return operator.LocalSwarmState{NodeID: facts.NodeID, Hostname: facts.Hostname, Err: errors.New("the engine reports no data root")}
	}
	path := filepath.Join(facts.DockerRootDir, "swarm", "docker-state.json")
	data, err := os.ReadFile(path)
	if err != nil {
		why := err
		if errors.Is(err, os.ErrNotExist) {
			why = fmt.Errorf("%s is not readable here (swarmguard does not run on the host of engine %s)", path, c.Host())
		}
		return operator.LocalSwarmState{NodeID: facts.NodeID, Hostname: facts.Hostname, Source: path, Err: why}
	}
	return operator.ParseLocalSwarmState(data, path, facts)
}
