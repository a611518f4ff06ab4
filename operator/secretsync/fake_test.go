package secretsync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// fakeEngine records calls and keeps secrets, services and tasks in memory.
// onUpdate, when set, decides the update state a service reports after an
// update (default: completed).
type fakeEngine struct {
	mu       sync.Mutex
	secrets  []swarm.Secret
	services map[string]*swarm.ServiceSecrets
	tasks    []swarm.TaskSecrets
	calls    []string
	nextID   int
	now      time.Time

	failList  error // every list call fails with it
	createErr error
	removeErr map[string]error                       // by secret ID
	conflicts int                                    // next N updates fail with swarm.ErrConflict
	onUpdate  func(svc *swarm.ServiceSecrets) string // returns the update state after an update
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{services: map[string]*swarm.ServiceSecrets{}, now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (f *fakeEngine) record(format string, a ...any) {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
}

func (f *fakeEngine) callCount(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if len(c) >= len(prefix) && c[:len(prefix)] == prefix {
			n++
		}
	}
	return n
}

func (f *fakeEngine) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var w []string
	for _, c := range f.calls {
		for _, p := range []string{"create ", "remove ", "update "} {
			if len(c) >= len(p) && c[:len(p)] == p {
				w = append(w, c)
			}
		}
	}
	return w
}

func (f *fakeEngine) addSecret(name string, labels map[string]string) string {
	f.nextID++
	f.now = f.now.Add(time.Minute)
	id := fmt.Sprintf("sec%03d", f.nextID)
	f.secrets = append(f.secrets, swarm.Secret{ID: id, Name: name, Labels: labels, CreatedAt: f.now})
	return id
}

func (f *fakeEngine) addService(s swarm.ServiceSecrets) {
	if s.Version == 0 {
		s.Version = 10
	}
	f.services[s.ID] = &s
}

func (f *fakeEngine) ManagedSecrets(context.Context) ([]swarm.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("list secrets")
	if f.failList != nil {
		return nil, f.failList
	}
	out := make([]swarm.Secret, 0, len(f.secrets))
	for _, s := range f.secrets {
		if s.Labels[secrets.LabelManaged] == "true" {
			out = append(out, s)
		}
	}
	return out, nil
}

func (f *fakeEngine) CreateSecret(_ context.Context, name string, data []byte, labels map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("create %s", name)
	if f.createErr != nil {
		return "", f.createErr
	}
	for _, s := range f.secrets {
		if s.Name == name {
			return "", swarm.ErrAlreadyExists
		}
	}
	return f.addSecret(name, maps.Clone(labels)), nil
}

func (f *fakeEngine) RemoveSecret(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("remove %s", id)
	if err := f.removeErr[id]; err != nil {
		return err
	}
	for _, s := range f.services {
		for _, r := range s.Secrets {
			if r.SecretID == id {
				return swarm.ErrInUse
			}
		}
	}
	for i, s := range f.secrets {
		if s.ID == id {
			f.secrets = slices.Delete(f.secrets, i, i+1)
			return nil
		}
	}
	return swarm.ErrNotFound
}

func (f *fakeEngine) ServicesSecrets(context.Context) ([]swarm.ServiceSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("list services")
	if f.failList != nil {
		return nil, f.failList
	}
	out := make([]swarm.ServiceSecrets, 0, len(f.services))
	for _, id := range slices.Sorted(maps.Keys(f.services)) {
		out = append(out, *f.services[id])
	}
	return out, nil
}

func (f *fakeEngine) ServiceSecrets(_ context.Context, id string) (swarm.ServiceSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("inspect %s", id)
	s, ok := f.services[id]
	if !ok {
		return swarm.ServiceSecrets{}, swarm.ErrNotFound
	}
	return *s, nil
}

func (f *fakeEngine) UpdateServiceSecrets(_ context.Context, id string, version uint64, refs []swarm.SecretRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("update %s@%d", id, version)
	s, ok := f.services[id]
	if !ok {
		return swarm.ErrNotFound
	}
	if f.conflicts > 0 {
		f.conflicts--
		s.Version++ // someone else wrote
		return swarm.ErrConflict
	}
	if s.Version != version {
		return swarm.ErrConflict
	}
	s.PreviousSecrets = s.Secrets
	s.Secrets = slices.Clone(refs)
	s.Version++
	f.now = f.now.Add(time.Second)
	s.UpdateStartedAt = f.now
	s.UpdateState = swarm.UpdateCompleted
	if f.onUpdate != nil {
		s.UpdateState = f.onUpdate(s)
	}
	if s.UpdateState == swarm.UpdateRollbackCompleted {
		s.Secrets, s.PreviousSecrets = s.PreviousSecrets, nil
	}
	return nil
}

func (f *fakeEngine) TasksSecrets(_ context.Context, serviceID string) ([]swarm.TaskSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("list tasks %s", serviceID)
	if f.failList != nil {
		return nil, f.failList
	}
	var out []swarm.TaskSecrets
	for _, t := range f.tasks {
		if serviceID == "" || t.ServiceID == serviceID {
			out = append(out, t)
		}
	}
	return out, nil
}

// fakeSource is an in-memory Vault.
type fakeSource struct {
	mu     sync.Mutex
	values map[string]secrets.Value
	err    error
	reads  int
}

func (s *fakeSource) Read(_ context.Context, path string) (secrets.Value, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reads++
	if s.err != nil {
		return secrets.Value{}, s.err
	}
	v, ok := s.values[path]
	if !ok {
		return secrets.Value{}, fmt.Errorf("reading %q: %w", path, secrets.ErrNotFound)
	}
	return v, nil
}

func (s *fakeSource) put(path string, version int, fields map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.values == nil {
		s.values = map[string]secrets.Value{}
	}
	s.values[path] = secrets.NewValue(path, version, fields)
}
