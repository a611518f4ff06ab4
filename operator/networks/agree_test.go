package networks

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

type agreeEngine struct {
	nets []swarm.Network
	svcs []swarm.Service
}

func (e agreeEngine) Networks(context.Context) ([]swarm.Network, error) { return e.nets, nil }
func (e agreeEngine) Services(context.Context) ([]swarm.Service, error) { return e.svcs, nil }
func (e agreeEngine) Nodes(context.Context) ([]swarm.Node, error)       { return nil, nil }

// TestNetworksAgreeWithReport walks the encryption policy's boundaries (encrypted, unencrypted, exempt by
// config, exempt by label with and without a reason) and holds the controller's pass (its gauges and its
// error log) and the report's networks.encrypted side by side.
func TestNetworksAgreeWithReport(t *testing.T) {
	for _, tc := range []struct {
		name     string
		net      swarm.Network
		wantFail bool
	}{
		{"encrypted", swarm.Network{ID: "n1", Name: "secure", Driver: "overlay", Scope: "swarm", Encrypted: true}, false},
		{"unencrypted", swarm.Network{ID: "n2", Name: "backend", Driver: "overlay", Scope: "swarm"}, true},
		{"exempt by config", swarm.Network{ID: "n3", Name: "ingress", Driver: "overlay", Scope: "swarm", Ingress: true}, false},
		{"exempt by label with a reason", swarm.Network{ID: "n4", Name: "legacy", Driver: "overlay", Scope: "swarm",
			Labels: map[string]string{swarm.LabelEncryption: "exempt", swarm.LabelEncryptionReason: "appliance"}}, false},
		{"exempt by label without a reason", swarm.Network{ID: "n5", Name: "lazy", Driver: "overlay", Scope: "swarm",
			Labels: map[string]string{swarm.LabelEncryption: "exempt"}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.NetworksConfig{RequireEncryption: true, Exempt: []string{"ingress"}}
			eng := agreeEngine{nets: []swarm.Network{tc.net}}
			var gauges []report.Gauge
			var logs bytes.Buffer
			task := Task(eng, c, func(g []report.Gauge) { gauges = g })
			if err := task.Run(t.Context(), operator.TaskEnv{Log: slog.New(slog.NewTextHandler(&logs, nil))}); err != nil {
				t.Fatal(err)
			}
			controllerFail := bytes.Contains(logs.Bytes(), []byte("overlay network not encrypted"))
			var gauge float64 = -1
			for _, g := range gauges {
				if g.Name == report.MetricCheckStatus && g.Labels["check"] == "networks.encrypted" {
					gauge = g.Value
				}
			}
			verdict := Section(Observation{Networks: eng.nets}, c).Checks[0]
			if verdict.ID != "networks.encrypted" {
				t.Fatalf("first check %s; want networks.encrypted", verdict.ID)
			}
			if controllerFail != tc.wantFail || (verdict.Status == report.StatusFail) != tc.wantFail || (gauge == 2) != tc.wantFail {
				t.Errorf("controller logs a failure %v, gauge %v, report %s; want fail %v in all three", controllerFail, gauge, verdict.Status, tc.wantFail)
			}
		})
	}
}

// TestNetworksPassPrintsOnlyItsPlan: the networks pass changes nothing, so its plan holds no action; a dry
// run prints that plan (the unencrypted network as a note naming the remediation), and a pass that is not a
// dry run prints nothing at all (its findings are logged).
func TestNetworksPassPrintsOnlyItsPlan(t *testing.T) {
	c := config.NetworksConfig{RequireEncryption: true}
	eng := agreeEngine{nets: []swarm.Network{{ID: "n2", Name: "backend", Driver: "overlay", Scope: "swarm"}}}
	for _, dry := range []bool{false, true} {
		var out, logs bytes.Buffer
		env := operator.TaskEnv{DryRun: dry, Out: &out, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		if err := Task(eng, c, nil).Run(t.Context(), env); err != nil {
			t.Fatal(err)
		}
		if p := PlanFrom(EvaluateNetworks(eng.nets, nil, c), c); len(p.Actions) != 0 {
			t.Fatalf("PlanFrom = %+v; the networks pass plans no action", p.Actions)
		}
		switch {
		case dry && !bytes.Contains(out.Bytes(), []byte("swarmguard remediate network backend")):
			t.Errorf("dry run printed %q; want the plan's note naming the remediation", out.String())
		case !dry && out.Len() != 0:
			t.Errorf("pass printed %q; want nothing (the findings are logged)", out.String())
		case !dry && !bytes.Contains(logs.Bytes(), []byte("overlay network not encrypted")):
			t.Errorf("pass logged %q; want the unencrypted network", logs.String())
		}
	}
}
