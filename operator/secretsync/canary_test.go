package secretsync

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// slowCanaryEngine keeps the rollout of one service (the canary) "updating" until another service is
// written or hold has passed, then ends it (completed, or rolled back by the engine when fail).
type slowCanaryEngine struct {
	*fakeEngine
	canary string
	fail   bool
	hold   time.Duration

	mu        sync.Mutex
	writtenAt time.Time
	ended     bool
	others    int // services written since the canary's update
	early     []string
}

func (e *slowCanaryEngine) ServiceSecrets(ctx context.Context, id string) (swarm.ServiceSecrets, error) {
	if id == e.canary {
		e.mu.Lock()
		end := !e.writtenAt.IsZero() && !e.ended && (e.others > 0 || time.Since(e.writtenAt) > e.hold)
		if end {
			e.ended = true
		}
		e.mu.Unlock()
		if end {
			e.fakeEngine.mu.Lock()
			s := e.fakeEngine.services[id]
			s.UpdateState = swarm.UpdateCompleted
			if e.fail {
				s.UpdateState = swarm.UpdateRollbackCompleted
				s.Secrets, s.PreviousSecrets = s.PreviousSecrets, nil
			}
			e.fakeEngine.mu.Unlock()
		}
	}
	return e.fakeEngine.ServiceSecrets(ctx, id)
}

// onUpdate is the fake's hook: the canary stays "updating"; any other service written before the canary's
// rollout ended is noted as early.
func (e *slowCanaryEngine) onUpdate(svc *swarm.ServiceSecrets) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if svc.ID == e.canary {
		e.writtenAt = time.Now()
		return swarm.UpdateUpdating
	}
	if !e.writtenAt.IsZero() {
		e.others++
	}
	if !e.ended {
		e.early = append(e.early, svc.Name)
	}
	return swarm.UpdateCompleted
}

// TestSyncCanaryWhenMappingsShareAService (issue 21, finding 4): db_password is used by svc-a and svc-b,
// api_key by svc-b only. svc-b is api_key's first service, but db_password's second: it must not start
// before db_password's canary svc-a has converged. When svc-a fails, svc-b rolls api_key's change alone.
func TestSyncCanaryWhenMappingsShareAService(t *testing.T) {
	keyMap := secrets.Mapping{Name: "api_key", FromPath: "secret/apps/key", FromKey: "k", KeepVersions: 1}
	for _, tc := range []struct {
		name       string
		fail       bool
		dbUpdated  []string
		dbOnB      string // the db_password version svc-b mounts after the pass: "one" or "two"
		dbOutcome  string
		keyUpdated []string
	}{
		{"canary fails", true, []string{"svc-a"}, "one", OutcomeFailed, []string{"svc-b"}},
		{"canary converges", false, []string{"svc-a", "svc-b"}, "two", OutcomeChanged, []string{"svc-b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			src := &fakeSource{}
			fe := newFakeEngine()
			e := &slowCanaryEngine{fakeEngine: fe, canary: "a", fail: tc.fail, hold: 300 * time.Millisecond}
			fe.onUpdate = e.onUpdate
			s := newSyncer(fe, src, &logs)
			s.Engine = e
			s.After = func(time.Duration) <-chan time.Time { return time.After(time.Millisecond) } // real time; the fake clock stands still
			db1, k1 := nameFor(t, dbMap, "one"), nameFor(t, keyMap, "k-one")
			dbID := fe.addSecret(db1, dbMap.SecretLabels("x", 1))
			kID := fe.addSecret(k1, keyMap.SecretLabels("y", 1))
			fe.addService(swarm.ServiceSecrets{ID: "a", Name: "svc-a", Secrets: []swarm.SecretRef{{SecretID: dbID, SecretName: db1, File: "pw"}}})
			fe.addService(swarm.ServiceSecrets{ID: "b", Name: "svc-b", Secrets: []swarm.SecretRef{{SecretID: dbID, SecretName: db1, File: "pw"},
				{SecretID: kID, SecretName: k1, File: "key"}}})
			src.put("secret/apps/db", 2, map[string]string{"password": "two"})
			src.put("secret/apps/key", 2, map[string]string{"k": "k-two"})

			rs := s.Pass(t.Context(), []secrets.Mapping{dbMap, keyMap}, Options{})
			db, key := rs[0], rs[1]
			onB := ""
			for _, r := range fe.services["b"].Secrets {
				switch r.SecretName {
				case db1:
					onB = "one"
				case nameFor(t, dbMap, "two"):
					onB = "two"
				}
			}
			if len(e.early) > 0 || !slices.Equal(db.Updated, tc.dbUpdated) || db.Outcome != tc.dbOutcome || onB != tc.dbOnB ||
				!slices.Equal(key.Updated, tc.keyUpdated) || key.Outcome != OutcomeChanged {
				t.Errorf("Pass: written before db_password's canary svc-a converged %v; db_password %s updated %v, svc-b on version %q; "+
					"api_key %s updated %v; want none early, db_password %s updated %v, svc-b on %q, api_key changed updated %v",
					e.early, db.Outcome, db.Updated, onB, key.Outcome, key.Updated, tc.dbOutcome, tc.dbUpdated, tc.dbOnB, tc.keyUpdated)
			}
		})
	}
}
