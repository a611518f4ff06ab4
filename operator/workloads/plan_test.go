package workloads

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestPlanIsWhatThePassDoes: the plan lists one workload action per service the pass then hardens (one
// ledger entry each, in order), and none once they are hardened.
func TestPlanIsWhatThePassDoes(t *testing.T) {
	mk := func(id string, enforce bool, nnp bool) swarm.Workload {
		return svc(func(w *swarm.Workload) {
			w.ID, w.Name, w.NoNewPrivileges = id, id, nnp
			if enforce {
				w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
			}
		})
	}
	for _, tc := range []struct {
		name     string
		mode     string
		api      string
		services []swarm.Workload
		want     []string // services hardened
	}{
		{"audit", config.ModeAudit, "1.56", []swarm.Workload{mk("a", true, false)}, nil},
		{"old engine", config.ModeEnforce, "1.41", []swarm.Workload{mk("a", true, false)}, nil},
		{"opted in only", config.ModeEnforce, "1.56", []swarm.Workload{mk("a", true, false), mk("b", false, false), mk("c", true, false)}, []string{"a", "c"}},
		{"already hardened", config.ModeEnforce, "1.56", []swarm.Workload{mk("a", true, true)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{api: tc.api, services: tc.services, updateState: "completed", started: time.Unix(1000, 0)}
			led := &fakeLedger{}
			e := &Enforcer{Engine: eng, Ledger: led, Config: config.WorkloadsConfig{Mode: tc.mode}, PollInterval: time.Millisecond, RolloutTimeout: time.Second}
			p := e.Plan(t.Context(), time.Now())
			var subjects []string
			for _, a := range p.Actions {
				if a.Kind != swarm.KindWorkload || !strings.Contains(a.Change, "no-new-privileges") {
					t.Errorf("action = %+v; want kind workload setting no-new-privileges", a)
				}
				subjects = append(subjects, strings.TrimPrefix(a.Subject, "service "))
			}
			if p.Err != nil || !slices.Equal(subjects, tc.want) {
				t.Fatalf("Plan = %v, %v; want %v", subjects, p.Err, tc.want)
			}
			if err := e.Pass(t.Context(), operator.TaskEnv{Actor: "t"}); err != nil {
				t.Fatal(err)
			}
			var did []string
			for _, en := range led.entries {
				did = append(did, en.Details[DetailService])
			}
			if !slices.Equal(did, tc.want) || !slices.Equal(eng.hardened, tc.want) {
				t.Errorf("Pass hardened %v, recorded %v; the plan had %v", eng.hardened, did, tc.want)
			}
		})
	}
}
