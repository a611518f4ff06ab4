package secretsync

import (
	"errors"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/swarm"
)

func TestLedgerPlan(t *testing.T) {
	cur := &Version{Name: "db-11111111", VaultVersion: 1}
	want := Version{Name: "db-22222222", VaultVersion: 2}
	changed := Result{Mapping: "db", Outcome: OutcomePlanned, Plan: &Plan{Mapping: "db", Source: "secret/db#pw", Current: cur, Wanted: want,
		Create: &want, Updates: []ServiceUpdate{{ServiceName: "web"}}, Remove: []Version{{Name: "db-00000000"}}}}
	same := Result{Mapping: "api", Outcome: OutcomePlanned, Plan: &Plan{Mapping: "api", Current: &want, Wanted: want}}
	stuck := Result{Mapping: "key", Outcome: OutcomePlanned, Plan: &Plan{Mapping: "key", Current: &want, Wanted: want,
		Settling: []ServiceState{{ServiceName: "worker", State: swarm.UpdatePaused, Message: "task failed"}}}}
	for _, tc := range []struct {
		name    string
		results []Result
		want    []string // each action's change
		wantErr string
	}{
		{"nothing to do", []Result{same}, nil, ""},
		{"one mapping changes", []Result{changed, same}, []string{"create db-22222222, update service web to db-22222222, remove db-00000000"}, ""},
		{"a failed rollout is recorded", []Result{stuck}, []string{"record the failed rollout of service worker (paused)"}, ""},
		{"an unreadable mapping plans nothing", []Result{changed, {Mapping: "x", Outcome: OutcomeError, Err: errors.New("permission denied"), Error: "permission denied"}},
			nil, "mapping x: permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := LedgerPlan(tc.results)
			var got []string
			for _, a := range p.Actions {
				if a.Kind != swarm.KindSecret {
					t.Errorf("action kind %q; want %q", a.Kind, swarm.KindSecret)
				}
				got = append(got, a.Change)
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Errorf("LedgerPlan changes = %q; want %q", got, tc.want)
			}
			if (p.Err == nil) != (tc.wantErr == "") || (p.Err != nil && !strings.Contains(p.Err.Error(), tc.wantErr)) {
				t.Errorf("LedgerPlan err = %v; want %q", p.Err, tc.wantErr)
			}
		})
	}
}
