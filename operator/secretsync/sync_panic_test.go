package secretsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// panicValue is what the panics below carry: secret material formatted into a panic must never show.
const panicValue = "value-of-a-panicking-read"

// panicky panics in one call of the engine or of Vault, the way a bug met by one item would.
type panicky struct {
	*fakeEngine
	src        *fakeSource
	readPath   string // Read of this path panics
	createName string // CreateSecret of a name with this prefix panics
	updateID   string // UpdateServiceSecrets of this service panics
	listTasks  bool   // TasksSecrets panics (the engine observation)
}

func (p *panicky) Read(ctx context.Context, path string) (secrets.Value, error) {
	if path == p.readPath {
		panic("render " + panicValue)
	}
	return p.src.Read(ctx, path)
}

func (p *panicky) CreateSecret(ctx context.Context, name string, data []byte, labels map[string]string) (string, error) {
	if p.createName != "" && strings.HasPrefix(name, p.createName) {
		panic(fmt.Errorf("creating %s with %s", name, panicValue)) // a runtime fault in the create path
	}
	return p.fakeEngine.CreateSecret(ctx, name, data, labels)
}

func (p *panicky) UpdateServiceSecrets(ctx context.Context, id string, version uint64, refs []swarm.SecretRef) error {
	if id == p.updateID {
		panic(errors.New("updating with " + panicValue))
	}
	return p.fakeEngine.UpdateServiceSecrets(ctx, id, version, refs)
}

func (p *panicky) TasksSecrets(ctx context.Context, serviceID string) ([]swarm.TaskSecrets, error) {
	if p.listTasks {
		panic("tasks " + panicValue)
	}
	return p.fakeEngine.TasksSecrets(ctx, serviceID)
}

// TestSyncPanicFailsOnlyItsItem: a panic in one of the pass's worker goroutines (a Vault read, a create, a
// service's rollout, the engine observation started beside the reads, the reads started ahead) fails the
// mappings it worked for, with an error that matches guard.ErrPanic and does not carry the panic's value;
// the other mappings go on, and the process lives.
func TestSyncPanicFailsOnlyItsItem(t *testing.T) {
	other := secrets.Mapping{Name: "other", FromPath: "secret/o", FromKey: "k", KeepVersions: 1}
	tests := []struct {
		name      string
		set       func(p *panicky)
		ahead     bool
		wantOther string // outcome of the mapping that met no panic
	}{
		{"vault read", func(p *panicky) { p.readPath = dbMap.FromPath }, false, OutcomeChanged},
		{"vault read started ahead", func(p *panicky) { p.readPath = dbMap.FromPath }, true, OutcomeChanged},
		{"create", func(p *panicky) { p.createName = dbMap.Name + "-" }, false, OutcomeChanged},
		{"rollout", func(p *panicky) { p.updateID = "a" }, false, OutcomeChanged},
		{"observation", func(p *panicky) { p.listTasks = true }, false, OutcomeError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			e, src := newFakeEngine(), &fakeSource{}
			p := &panicky{fakeEngine: e, src: src}
			tt.set(p)
			s := newSyncer(e, src, &logs)
			s.Engine, s.Source = p, p
			src.put(dbMap.FromPath, 1, map[string]string{"password": "value-one"})
			src.put(other.FromPath, 1, map[string]string{"k": "other-one"})
			e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Labels: map[string]string{secrets.LabelOptIn: "db_password"}})
			e.addService(swarm.ServiceSecrets{ID: "b", Name: "worker", Labels: map[string]string{secrets.LabelOptIn: "other"}})
			opt := Options{}
			if tt.ahead {
				opt.Reads = s.ReadAhead(t.Context(), []secrets.Mapping{dbMap, other})
			}
			rs := s.Pass(t.Context(), []secrets.Mapping{dbMap, other}, opt)
			if r := rs[0]; r.Outcome != OutcomeError || !errors.Is(r.Err, guard.ErrPanic) {
				t.Errorf("db_password = %s, %v; want error matching guard.ErrPanic", r.Outcome, r.Err)
			}
			if r := rs[1]; r.Outcome != tt.wantOther {
				t.Errorf("other = %s, %v; want %s", r.Outcome, r.Err, tt.wantOther)
			}
			for _, r := range rs {
				if strings.Contains(r.Error, panicValue) {
					t.Errorf("result error %q carries the panic's value", r.Error)
				}
			}
			if strings.Contains(logs.String(), panicValue) {
				t.Errorf("logs carry the panic's value:\n%s", logs.String())
			}
		})
	}
}
