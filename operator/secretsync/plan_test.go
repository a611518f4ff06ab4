package secretsync

import (
	"errors"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestLedgerPlan(t *testing.T) {
	cur := &secrets.Version{Name: "db-11111111", VaultVersion: 1}
	want := secrets.Version{Name: "db-22222222", VaultVersion: 2}
	changed := secrets.Result{Mapping: "db", Outcome: secrets.OutcomePlanned, Plan: &secrets.Plan{Mapping: "db", Source: "secret/db#pw", Current: cur, Wanted: want,
		Create: &want, Updates: []secrets.ServiceUpdate{{ServiceName: "web"}}, Remove: []secrets.Version{{Name: "db-00000000"}}}}
	same := secrets.Result{Mapping: "api", Outcome: secrets.OutcomePlanned, Plan: &secrets.Plan{Mapping: "api", Current: &want, Wanted: want}}
	stuck := secrets.Result{Mapping: "key", Outcome: secrets.OutcomePlanned, Plan: &secrets.Plan{Mapping: "key", Current: &want, Wanted: want,
		Settling: []secrets.ServiceState{{ServiceName: "worker", State: secrets.UpdatePaused, Message: "task failed"}}}}
	for _, tc := range []struct {
		name    string
		results []secrets.Result
		want    []string // each action's change
		wantErr string
	}{
		{"nothing to do", []secrets.Result{same}, nil, ""},
		{"one mapping changes", []secrets.Result{changed, same}, []string{"create db-22222222, update service web to db-22222222, remove db-00000000"}, ""},
		{"a failed rollout is recorded", []secrets.Result{stuck}, []string{"record the failed rollout of service worker (paused)"}, ""},
		{"an unreadable mapping plans nothing", []secrets.Result{changed, {Mapping: "x", Outcome: secrets.OutcomeError, Err: errors.New("permission denied"), Error: "permission denied"}},
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
