package cluster

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/report"
)

// TaskName is the swarm-level checks' loop.
const TaskName = "cluster"

// Task is the loop of the swarm-level checks (Section: CIS 7.1, 7.2, 7.4, 7.9, the firewall backend), which
// belong to no domain: on schedule it reads what they need (gather) and hands their statuses to onGauges,
// from that observation alone. It changes nothing and needs no lease to be right, but runs, like every
// loop, on the holder.
func Task(schedule string, gather func(ctx context.Context, now time.Time) (ReportInput, error), onGauges func([]report.Gauge)) operator.Task {
	return operator.Task{Name: TaskName, Schedule: schedule, Run: func(ctx context.Context, env operator.TaskEnv) error {
		in, err := gather(ctx, env.Time())
		if err != nil {
			return fmt.Errorf("reading the swarm for the swarm-level checks: %w", err)
		}
		sec := Section(in)
		for _, ch := range sec.Checks {
			if ch.Status == report.StatusFail || ch.Status == report.StatusWarn || ch.Status == report.StatusError {
				env.Logger().Debug("swarm-level check not passing", "check", ch.ID, "status", string(ch.Status), "summary", ch.Summary)
			}
		}
		if onGauges != nil && !env.DryRun {
			onGauges(report.CheckGauges(sec.Checks)) // SectionGauges(in), without evaluating twice
		}
		return nil
	}}
}

// SectionGauges are the swarm-level checks' statuses for one observation: what the cluster loop refreshes.
func SectionGauges(in ReportInput) []report.Gauge {
	return report.CheckGauges(Section(in).Checks)
}
