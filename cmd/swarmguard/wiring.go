package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/certs"
	"github.com/swarmguard/swarmguard/operator/cluster"
	"github.com/swarmguard/swarmguard/operator/networks"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/operator/workloads"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// This file is the one place that says what swarmguard is made of: its commands and the controller's
// loops, in order. Adding a domain adds a line here; nothing registers itself.

// commands are the top-level commands (help lists them sorted).
func commands(a *app) []*cobra.Command {
	rep := newReportCmd(a)
	rep.AddCommand(newReportCertsCmd(a))
	return []*cobra.Command{
		newBeaconCmd(a),
		newConfigCmd(a),
		newHealthCmd(a),
		newIncidentCmd(a),
		newJoinWindowCmd(a),
		newLeaseCmd(a),
		newPlanCmd(a),
		newRemediateCmd(a),
		rep,
		newEscrowCmd(a),
		newRunCmd(a),
		newSecretsCmd(a),
		newStatusCmd(a),
		newVersionCmd(a),
	}
}

// rotateCommands are the subcommands of `swarmguard rotate`.
func rotateCommands(a *app) []*cobra.Command {
	return []*cobra.Command{
		newRotateCACmd(a),
		newRotateJoinTokenCmd(a),
		newRotateUnlockKeyCmd(a),
		newRotateSecretCmd(a),
	}
}

// taskDeps is what a domain needs to build its controller task.
type taskDeps struct {
	Engine *swarm.Client
	Self   swarm.Self
	Ledger *swarm.Ledger
	// Audit receives the loops' own records (critical findings); nil outside the controller.
	Audit *audit.Auditor
	// Gauges holds the compliance gauges (swarmguard_check_status{check} and the domains' own): each loop
	// sets its domain's part from its own pass.
	Gauges *report.GaugeCollector
}

// buildTasks builds the controller's loops, in the order they run at start-up and in `run --once`:
// certificates, the root CA, the swarm-level checks, networks, join tokens, join windows, autolock, secret
// sync, workloads. Each refreshes its own part of the compliance gauges from its own pass.
func (a *app) buildTasks(d taskDeps) ([]operator.Task, error) {
	d.Gauges = report.NewGaugeCollector()
	if err := a.metrics().Registerer().Register(d.Gauges); err != nil {
		return nil, fmt.Errorf("registering the compliance metrics: %w", err)
	}
	tk := a.tokens(d.Engine, d.Ledger) // one for both of its loops: their passes take turns
	tk.Ages = a.metrics().Credentials()
	tk.Gauges = d.Gauges.Part("tokens")
	builders := []func(taskDeps) (operator.Task, error){
		a.certsTask,
		a.caTask,
		a.clusterTask,
		a.networksTask,
		func(taskDeps) (operator.Task, error) { return tk.Task(), nil },
		func(taskDeps) (operator.Task, error) { return tk.WindowsTask(), nil },
		func(d taskDeps) (operator.Task, error) {
			al := a.autolock(d.Engine, d.Ledger)
			al.Ages = a.metrics().Credentials()
			al.Gauges = d.Gauges.Part("autolock")
			return al.Task(), nil
		},
		a.secretsLoop,
		a.workloadsTask,
	}
	tasks := make([]operator.Task, 0, len(builders))
	var errs []error
	for _, b := range builders {
		t, err := b(d)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if t.Events == nil {
			t.Events = eventFollowers[t.Name]
		}
		tasks = append(tasks, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, &exitError{code: ExitUsage, err: fmt.Errorf("setting up the loops: %w", err)}
	}
	return tasks, nil
}

// eventFollowers are the engine event types that start a full pass of a loop between its schedules (the
// workloads loop names its own, and reconciles only the changed services): a node's join or leave for the
// certificate inventory and the join windows (a window closes on its node limit); a network created,
// changed or removed by someone else for the networks findings; a secret or a service changed by someone
// else (a redeploy naming an old secret version) for the secret sync. Events are coalesced by the runtime.
var eventFollowers = map[string][]string{
	"certs":        {swarm.EventNode},
	"join-windows": {swarm.EventNode},
	"networks":     {swarm.EventNetwork},
	"secrets":      {swarm.EventSecret, swarm.EventService},
}

func (a *app) certsTask(d taskDeps) (operator.Task, error) {
	m, err := certs.RegisterMetrics(a.metrics().Registerer())
	if err != nil {
		return operator.Task{}, err
	}
	// Critical findings go to the audit trail as event finding, each once when it appears.
	alerts := &certs.FindingAlerts{Actor: "operator:" + d.Self.NodeID, Record: d.Audit.Record}
	if p, err := certs.PKIPolicy(a.cfg.PKI); err == nil { // an invalid policy fails the pass (before any inventory), which says why
		m.SetPolicy(p)
		alerts.Policy = p
	}
	return certs.Task(d.Engine, d.Ledger, a.pkiSources(), a.cfg.PKI, func(inv pki.Inventory) {
		m.Update(inv)
		alerts.Update(inv)
	}, d.Gauges.Part("certs")), nil
}

// caTask follows a scheduled rotation to completion and republishes the join tokens at its end.
func (a *app) caTask(d taskDeps) (operator.Task, error) {
	return certs.CATask(d.Engine, d.Ledger, a.cfg.PKI, a.tokens(d.Engine, d.Ledger).Republisher(), a.metrics().Credentials()), nil
}

// networksTask is the networks loop: log the overlay-network findings and refresh the network domain's
// gauges (its checks' swarmguard_check_status{check}, swarmguard_network_encrypted{network}) on
// networks.schedule. It changes nothing: remediation is a person's `swarmguard remediate network`.
func (a *app) networksTask(d taskDeps) (operator.Task, error) {
	return networks.Task(d.Engine, a.cfg.Networks, d.Gauges.Part("networks")), nil
}

// clusterTask refreshes the swarm-level checks' gauges (CIS 7.1, 7.2, 7.4, 7.9, the firewall backend) from
// their own reads, on networks.schedule (they look at the same swarm objects and nodes).
func (a *app) clusterTask(d taskDeps) (operator.Task, error) {
	gather := func(ctx context.Context, now time.Time) (cluster.ReportInput, error) {
		opts := cluster.GatherOptions{Local: readLocalSwarmState(ctx, d.Engine), Prober: a.pkiSources().Prober}
		return cluster.GatherReport(ctx, d.Engine, nil, opts, now) // nil ledger: no swarm-level check reads it
	}
	return cluster.Task(a.cfg.Networks.Schedule, gather, d.Gauges.Part(cluster.TaskName)), nil
}

// secretsLoop is the secret sync; with no mapping configured a loop that does nothing, so the runtime's
// task list stays uniform.
func (a *app) secretsLoop(d taskDeps) (operator.Task, error) {
	if len(a.cfg.Secrets.Mappings) == 0 {
		secretMetrics(a, nil) // swarmguard_secret_mappings{state} at 0, so the alerts on it see a series
		return operator.Task{Name: "secrets", Schedule: "@hourly", Run: func(context.Context, operator.TaskEnv) error { return nil }}, nil
	}
	return a.secretsTask(d)
}

// workloadsTask judges every service's container hardening on workloads.schedule and, under
// workloads.mode enforce, hardens the opted-in services with the secret sync's rollout.
func (a *app) workloadsTask(d taskDeps) (operator.Task, error) {
	e := &workloads.Enforcer{Engine: d.Engine, Ledger: d.Ledger, Config: a.cfg.Workloads, RolloutTimeout: a.cfg.Secrets.RolloutTimeout.D(),
		Gauges: d.Gauges.Part("workloads")}
	return e.EventTask(), nil
}
