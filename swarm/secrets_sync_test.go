package swarm

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
)

// secretsEngine fakes the Engine API's secrets, services and tasks endpoints over HTTP.
type secretsEngine struct {
	mu       sync.Mutex
	service  swarmtypes.Service
	updated  *swarmtypes.ServiceSpec
	version  string
	filters  map[string]string // path -> filters query
	removeAs int               // status code for secret removal
	calls    []string
}

func newSecretsEngine(t *testing.T) (*secretsEngine, *Client) {
	t.Helper()
	started := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f := &secretsEngine{filters: map[string]string{}, removeAs: http.StatusNoContent}
	f.service = swarmtypes.Service{ID: "svc1", Meta: swarmtypes.Meta{Version: swarmtypes.Version{Index: 7}},
		Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "api", Labels: map[string]string{"com.docker.stack.namespace": "shop"}},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "app:1",
				Privileges: &swarmtypes.Privileges{NoNewPrivileges: true, Seccomp: &swarmtypes.SeccompOpts{Mode: swarmtypes.SeccompModeDefault}}, Secrets: []*swarmtypes.SecretReference{
					{SecretID: "s1", SecretName: "db-11111111", File: &swarmtypes.SecretReferenceFileTarget{Name: "pw", UID: "1", GID: "2", Mode: 0o400}}}}}},
		PreviousSpec: &swarmtypes.ServiceSpec{TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Secrets: []*swarmtypes.SecretReference{
			{SecretID: "s0", SecretName: "db-00000000", File: &swarmtypes.SecretReferenceFileTarget{Name: "pw"}}}}}},
		UpdateStatus: &swarmtypes.UpdateStatus{State: swarmtypes.UpdateStateCompleted, StartedAt: &started, Message: "done"}}
	return f, serveFake(t, f)
}

func (f *secretsEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := apiPath(w, r)
	f.calls = append(f.calls, r.Method+" "+path)
	f.filters[path] = r.URL.Query().Get("filters")
	switch {
	case path == "/_ping":
		_, _ = w.Write([]byte("OK"))
	case r.Method == http.MethodGet && path == "/secrets":
		_ = json.NewEncoder(w).Encode([]swarmtypes.Secret{{ID: "s1", Meta: swarmtypes.Meta{CreatedAt: time.Unix(100, 0).UTC()},
			Spec: swarmtypes.SecretSpec{Annotations: swarmtypes.Annotations{Name: "db-11111111", Labels: map[string]string{"swarmguard.managed": "true"}}}}})
	case r.Method == http.MethodPost && path == "/secrets/create":
		var spec swarmtypes.SecretSpec
		_ = json.NewDecoder(r.Body).Decode(&spec)
		if spec.Name == "taken" {
			http.Error(w, `{"message":"rpc error: code = AlreadyExists desc = secret taken already exists"}`, http.StatusConflict)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"ID": "new-" + spec.Name})
	case r.Method == http.MethodDelete && strings.HasPrefix(path, "/secrets/"):
		switch f.removeAs {
		case http.StatusBadRequest:
			http.Error(w, `{"message":"rpc error: code = InvalidArgument desc = secret 'db-1' is in use by the following service: api"}`, http.StatusBadRequest)
		case http.StatusNotFound:
			http.Error(w, `{"message":"secret not found"}`, http.StatusNotFound)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	case r.Method == http.MethodGet && path == "/services":
		_ = json.NewEncoder(w).Encode([]swarmtypes.Service{f.service})
	case r.Method == http.MethodGet && path == "/services/svc1":
		_ = json.NewEncoder(w).Encode(f.service)
	case r.Method == http.MethodPost && path == "/services/svc1/update":
		var spec swarmtypes.ServiceSpec
		_ = json.NewDecoder(r.Body).Decode(&spec)
		f.updated, f.version = &spec, r.URL.Query().Get("version")
		_ = json.NewEncoder(w).Encode(map[string]any{})
	case r.Method == http.MethodGet && path == "/tasks":
		_ = json.NewEncoder(w).Encode([]swarmtypes.Task{{ID: "t1", ServiceID: "svc1", DesiredState: "running",
			Status: swarmtypes.TaskStatus{State: "running"}, Spec: f.service.Spec.TaskTemplate}})
	default:
		http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
	}
}

func TestSecretsAdapter(t *testing.T) {
	f, c := newSecretsEngine(t)
	ctx := t.Context()
	sec, err := c.ManagedSecrets(ctx)
	if err != nil || len(sec) != 1 || sec[0].Name != "db-11111111" || sec[0].CreatedAt.Unix() != 100 {
		t.Fatalf("ManagedSecrets() = %+v, %v", sec, err)
	}
	if !strings.Contains(f.filters["/secrets"], "swarmguard.managed=true") {
		t.Errorf("secret list filters = %s; want the managed label", f.filters["/secrets"])
	}
	if id, err := c.CreateSecret(ctx, "db-22222222", []byte("v"), map[string]string{"a": "b"}); err != nil || id != "new-db-22222222" {
		t.Errorf("CreateSecret() = %q, %v", id, err)
	}
	if _, err := c.CreateSecret(ctx, "taken", []byte("v"), nil); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("CreateSecret(taken) = %v; want ErrAlreadyExists", err)
	}
	f.removeAs = http.StatusBadRequest
	if err := c.RemoveSecret(ctx, "s1"); !errors.Is(err, ErrInUse) {
		t.Errorf("RemoveSecret(in use) = %v; want ErrInUse", err)
	}
	f.removeAs = http.StatusNotFound
	if err := c.RemoveSecret(ctx, "s1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RemoveSecret(missing) = %v; want ErrNotFound", err)
	}

	svcs, err := c.ServicesSecrets(ctx)
	if err != nil || len(svcs) != 1 {
		t.Fatalf("ServicesSecrets() = %+v, %v", svcs, err)
	}
	s := svcs[0]
	want := SecretRef{SecretID: "s1", SecretName: "db-11111111", File: "pw", UID: "1", GID: "2", Mode: 0o400}
	if s.Version != 7 || len(s.Secrets) != 1 || s.Secrets[0] != want || len(s.PreviousSecrets) != 1 || s.PreviousSecrets[0].SecretName != "db-00000000" ||
		s.UpdateState != "completed" || s.UpdateStartedAt.IsZero() || s.Labels["com.docker.stack.namespace"] != "shop" {
		t.Errorf("ServicesSecrets()[0] = %+v", s)
	}

	// A stale version is a conflict, and nothing is written.
	if err := c.UpdateServiceSecrets(ctx, "svc1", 6, nil); !errors.Is(err, ErrConflict) || f.updated != nil {
		t.Errorf("UpdateServiceSecrets(stale) = %v (written: %v); want ErrConflict and no write", err, f.updated != nil)
	}
	refs := []SecretRef{{SecretID: "s2", SecretName: "db-22222222", File: "pw", UID: "1", GID: "2", Mode: 0o400}}
	if err := c.UpdateServiceSecrets(ctx, "svc1", 7, refs); err != nil {
		t.Fatalf("UpdateServiceSecrets() = %v", err)
	}
	got := f.updated.TaskTemplate.ContainerSpec
	if f.version != "7" || got.Image != "app:1" || len(got.Secrets) != 1 || got.Secrets[0].SecretID != "s2" || got.Secrets[0].File.Mode != 0o400 ||
		f.updated.Labels["com.docker.stack.namespace"] != "shop" {
		t.Errorf("update sent version %s spec %+v secrets %+v; want version 7, the rest of the spec kept", f.version, f.updated, got.Secrets[0])
	}

	tasks, err := c.TasksSecrets(ctx, "svc1")
	if err != nil || len(tasks) != 1 || tasks[0].State != "running" || len(tasks[0].Secrets) != 1 || !tasks[0].NoNewPrivileges || tasks[0].SeccompMode != "default" {
		t.Errorf("TasksSecrets() = %+v, %v", tasks, err)
	}
	if !strings.Contains(f.filters["/tasks"], "svc1") {
		t.Errorf("task list filters = %s; want the service", f.filters["/tasks"])
	}
}
