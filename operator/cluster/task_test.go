package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestTaskRefreshesItsGauges: the swarm-level checks' loop hands its own section's gauges to onGauges, from
// its own read; a failed read fails the pass and leaves the gauges alone (never a made-up pass).
func TestTaskRefreshesItsGauges(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	in := ReportInput{Now: now, Nodes: []swarm.Node{
		{ID: "n1", Role: "manager", State: "ready", Reachability: "reachable", Leader: true},
		{ID: "n2", Role: "manager", State: "ready", Reachability: "reachable"},
		{ID: "n3", Role: "manager", State: "ready", Reachability: "reachable"},
	}}
	var readErr error
	gather := func(context.Context, time.Time) (ReportInput, error) { return in, readErr }
	calls := 0
	var got []report.Gauge
	task := Task("@every 5m", gather, func(g []report.Gauge) { calls++; got = g })
	if task.Name != TaskName || task.Schedule != "@every 5m" {
		t.Fatalf("Task = %s on %s; want %s on the given schedule", task.Name, task.Schedule, TaskName)
	}
	if err := task.Run(t.Context(), operator.TaskEnv{Now: func() time.Time { return now }}); err != nil {
		t.Fatal(err)
	}
	count := -1.0
	for _, g := range got {
		if g.Name == report.MetricCheckStatus && g.Labels["check"] == "swarm.manager-count" {
			count = g.Value
		}
	}
	if calls != 1 || count != 0 || len(got) != len(SectionGauges(in)) {
		t.Fatalf("gauges after a pass: %d call(s), swarm.manager-count %v, %d gauges; want 1, 0 (pass), %d", calls, count, len(got), len(SectionGauges(in)))
	}
	readErr = errors.New("engine unreachable")
	if err := task.Run(t.Context(), operator.TaskEnv{}); err == nil {
		t.Fatal("Run with a failed read = nil; want its error")
	}
	if calls != 1 {
		t.Errorf("gauges handed over after a failed read (%d calls); want them left as they were", calls)
	}
}
