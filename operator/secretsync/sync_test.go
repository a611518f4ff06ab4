package secretsync

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// fakeClock advances by each wait, so rollouts and timeouts need no sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	ch := make(chan time.Time, 1)
	ch <- c.now
	return ch
}

var (
	hmacKey = sensitive.New("test-hmac-key")
	dbMap   = secrets.Mapping{Name: "db_password", FromPath: "secret/apps/db", FromKey: "password", KeepVersions: 1}
)

func newSyncer(e *fakeEngine, src *fakeSource, logs *bytes.Buffer) *Syncer {
	c := &fakeClock{now: t0}
	return &Syncer{Engine: e, Source: src, Key: hmacKey, Now: c.Now, After: c.After,
		Log: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// nameFor is the Docker secret name a value gets.
func nameFor(t *testing.T, m secrets.Mapping, val string) string {
	t.Helper()
	d, err := m.Desire(hmacKey, secrets.NewValue(m.FromPath, 1, map[string]string{m.FromKey: val}))
	if err != nil {
		t.Fatal(err)
	}
	return d.Name
}

func secretNames(e *fakeEngine) []string {
	var n []string
	for _, s := range e.secrets {
		n = append(n, s.Name)
	}
	return n
}

func TestSyncRotation(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	src.put("secret/apps/db", 1, map[string]string{"password": "value-one"})
	e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{}})
	e.addService(swarm.ServiceSecrets{ID: "b", Name: "worker", Labels: map[string]string{secrets.LabelOptIn: "db_password", secrets.OptInLabel("db_password", "target"): "/etc/db.pw"}})

	// Pass 1: v1 is created and added to the opted-in service.
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	n1 := nameFor(t, dbMap, "value-one")
	if r.Outcome != OutcomeChanged || r.Created != n1 || !slices.Equal(r.Updated, []string{"worker"}) {
		t.Fatalf("pass 1 = %+v; want %s created and worker updated", r, n1)
	}
	if got := e.services["b"].Secrets; len(got) != 1 || got[0].File != "/etc/db.pw" || got[0].SecretName != n1 || got[0].SecretID == "" {
		t.Fatalf("worker refs = %+v; want %s at /etc/db.pw with its ID", got, n1)
	}
	// The first service now uses v1 too (as a person would deploy it).
	e.services["a"].Secrets = []swarm.SecretRef{{SecretID: e.services["b"].Secrets[0].SecretID, SecretName: n1, File: "db_password", UID: "10", GID: "20", Mode: 0o400}}

	// Pass 2: nothing changed.
	e.calls = nil
	r = s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeUnchanged || len(e.writes()) != 0 {
		t.Fatalf("steady pass = %s, writes %v; want unchanged and none", r.Outcome, e.writes())
	}

	// Pass 3: v2 rolls both services, same target/uid/gid/mode; v1 stays (previous specs).
	src.put("secret/apps/db", 2, map[string]string{"password": "value-two"})
	r = s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{Reason: "test"})[0]
	n2 := nameFor(t, dbMap, "value-two")
	if r.Outcome != OutcomeChanged || r.Created != n2 || !slices.Equal(r.Updated, []string{"api", "worker"}) || len(r.Removed) != 0 {
		t.Fatalf("pass 3 = %+v; want %s created, api and worker updated, nothing removed", r, n2)
	}
	a := e.services["a"].Secrets[0]
	if a.SecretName != n2 || a.File != "db_password" || a.UID != "10" || a.GID != "20" || a.Mode != 0o400 {
		t.Errorf("api ref = %+v; want %s with target, uid, gid and mode kept", a, n2)
	}
	if !slices.Equal(secretNames(e), []string{n1, n2}) {
		t.Errorf("secrets = %v; want %s and %s", secretNames(e), n1, n2)
	}

	// Pass 4: once the previous specs no longer name v1, it goes (keep_versions 1).
	for _, id := range []string{"a", "b"} {
		e.services[id].PreviousSecrets = nil
	}
	r = s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if !slices.Equal(r.Removed, []string{n1}) || !slices.Equal(secretNames(e), []string{n2}) {
		t.Fatalf("pass 4 removed %v, secrets %v; want %s removed", r.Removed, secretNames(e), n1)
	}
	if strings.Contains(logs.String(), "value-one") || strings.Contains(logs.String(), "value-two") {
		t.Fatalf("logs leak a value:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "pointed service at new secret version") {
		t.Errorf("logs do not tell of the rollout:\n%s", logs.String())
	}
}

func TestSyncVaultUnreachableChangesNothing(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{err: secrets.ErrUnreachable}
	s := newSyncer(e, src, &logs)
	e.addSecret("db_password-11111111", map[string]string{secrets.LabelManaged: "true", secrets.LabelSecret: "db_password"})
	rs := s.Pass(t.Context(), []secrets.Mapping{dbMap, {Name: "other", FromPath: "secret/o", FromKey: "k"}}, Options{})
	for _, r := range rs {
		if r.Outcome != OutcomeError || !errors.Is(r.Err, secrets.ErrUnreachable) {
			t.Errorf("result %s = %s, %v; want error wrapping ErrUnreachable", r.Mapping, r.Outcome, r.Err)
		}
	}
	if len(e.calls) != 0 {
		t.Errorf("engine calls = %v; want none", e.calls)
	}
}

func TestSyncEngineListFailureChangesNothing(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	src.put("secret/apps/db", 1, map[string]string{"password": "x"})
	e.failList = errors.New("daemon unreachable")
	s := newSyncer(e, src, &logs)
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeError || len(e.writes()) != 0 {
		t.Fatalf("pass = %s, writes %v; want error and no writes", r.Outcome, e.writes())
	}
}

// threeServicesOneFailing: services svc-a, svc-b and svc-c use version 1 of dbMap, whose Vault value is at
// version 2; the rollout of the service with the given ID rolls back.
func threeServicesOneFailing(t *testing.T, failing string) (e *fakeEngine, s *Syncer, v1 string) {
	t.Helper()
	var logs bytes.Buffer
	src := &fakeSource{}
	e = newFakeEngine()
	s = newSyncer(e, src, &logs)
	v1 = nameFor(t, dbMap, "one")
	id1 := e.addSecret(v1, dbMap.SecretLabels("x", 1))
	for _, id := range []string{"a", "b", "c"} {
		e.addService(swarm.ServiceSecrets{ID: id, Name: "svc-" + id, Secrets: []swarm.SecretRef{{SecretID: id1, SecretName: v1, File: "pw"}}})
	}
	e.onUpdate = func(svc *swarm.ServiceSecrets) string {
		if svc.ID == failing {
			return swarm.UpdateRollbackCompleted
		}
		return swarm.UpdateCompleted
	}
	src.put("secret/apps/db", 2, map[string]string{"password": "two"})
	return e, s, v1
}

func TestSyncRollbackStopsMapping(t *testing.T) {
	e, s, n1 := threeServicesOneFailing(t, "b")
	s.RolloutConcurrency = 1 // one service at a time: a failed rollout stops those not yet started
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	var re *swarm.RolloutError
	if r.Outcome != OutcomeFailed || !errors.As(r.Err, &re) || re.State != swarm.UpdateRollbackCompleted || r.FailedService != "svc-b" {
		t.Fatalf("pass = %+v; want failed at svc-b with rollback_completed", r)
	}
	if e.services["c"].Secrets[0].SecretName != n1 {
		t.Errorf("svc-c was touched: %+v", e.services["c"].Secrets)
	}
	if e.services["b"].Secrets[0].SecretName != n1 {
		t.Errorf("svc-b after rollback uses %s; want %s", e.services["b"].Secrets[0].SecretName, n1)
	}
	if len(r.Removed) != 0 || !slices.Contains(secretNames(e), n1) {
		t.Errorf("old secret removed: %v", secretNames(e))
	}
	if !strings.Contains(r.Error, "rotate secret") {
		t.Errorf("error %q does not say what to do", r.Error)
	}
	// The controller does not retry the same version by itself...
	e.calls = nil
	r = s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeFailed || len(e.writes()) != 0 {
		t.Fatalf("automatic retry = %s, writes %v; want failed and no writes", r.Outcome, e.writes())
	}
	// ...a person's rotate does, and with the service fixed it completes.
	e.onUpdate = nil
	r = s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{Force: true})[0]
	if r.Outcome != OutcomeChanged || !slices.Equal(r.Updated, []string{"svc-b", "svc-c"}) {
		t.Fatalf("forced retry = %+v; want svc-b and svc-c updated", r)
	}
}

func TestSyncPausedAndTimeout(t *testing.T) {
	for _, tc := range []struct{ state, want string }{{swarm.UpdatePaused, swarm.UpdatePaused}, {swarm.UpdateUpdating, "timeout"}} {
		t.Run(tc.state, func(t *testing.T) {
			var logs bytes.Buffer
			e, src := newFakeEngine(), &fakeSource{}
			s := newSyncer(e, src, &logs)
			s.RolloutTimeout = time.Minute
			n1 := nameFor(t, dbMap, "one")
			id1 := e.addSecret(n1, dbMap.SecretLabels("x", 1))
			e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{{SecretID: id1, SecretName: n1, File: "pw"}}})
			e.onUpdate = func(*swarm.ServiceSecrets) string { return tc.state }
			src.put("secret/apps/db", 2, map[string]string{"password": "two"})
			r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
			var re *swarm.RolloutError
			if r.Outcome != OutcomeFailed || !errors.As(r.Err, &re) || re.State != tc.want {
				t.Fatalf("pass = %s, %v; want failed with %s", r.Outcome, r.Err, tc.want)
			}
		})
	}
}

func TestSyncNoUpdateStatusWaitsForTasks(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	n1 := nameFor(t, dbMap, "one")
	n2 := nameFor(t, dbMap, "two")
	id1 := e.addSecret(n1, dbMap.SecretLabels("x", 1))
	e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{{SecretID: id1, SecretName: n1, File: "pw"}}})
	e.tasks = []swarm.TaskSecrets{{ID: "t1", ServiceID: "a", State: "running", DesiredState: "running", Secrets: []swarm.SecretRef{{SecretName: n1}}}}
	polls := 0
	e.onUpdate = func(*swarm.ServiceSecrets) string { return "" }
	s.After = func(time.Duration) <-chan time.Time {
		polls++
		if polls == 2 { // the new task comes up on the second poll
			e.tasks = []swarm.TaskSecrets{
				{ID: "t1", ServiceID: "a", State: "shutdown", DesiredState: "shutdown", Secrets: []swarm.SecretRef{{SecretName: n1}}},
				{ID: "t2", ServiceID: "a", State: "running", DesiredState: "running", Secrets: []swarm.SecretRef{{SecretName: n2}}},
			}
		}
		ch := make(chan time.Time, 1)
		ch <- t0
		return ch
	}
	src.put("secret/apps/db", 2, map[string]string{"password": "two"})
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeChanged || polls != 2 {
		t.Fatalf("pass = %s after %d polls; want changed after 2", r.Outcome, polls)
	}
}

func TestSyncCrashBetweenCreateAndUpdate(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	n1 := nameFor(t, dbMap, "one")
	id1 := e.addSecret(n1, dbMap.SecretLabels("x", 1))
	e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{{SecretID: id1, SecretName: n1, File: "pw"}}})
	src.put("secret/apps/db", 2, map[string]string{"password": "two"})
	s.BeforeUpdate = func(string) { panic("crash") }
	func() {
		defer func() { _ = recover() }()
		s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})
	}()
	if e.callCount("create") != 1 || e.callCount("update") != 0 {
		t.Fatalf("before the crash: calls %v; want one create and no update", e.calls)
	}
	// A new process: new syncer, same engine.
	s2 := newSyncer(e, src, &logs)
	r := s2.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	n2 := nameFor(t, dbMap, "two")
	if r.Outcome != OutcomeChanged || r.Created != "" || !slices.Equal(r.Updated, []string{"api"}) {
		t.Fatalf("after the crash = %+v; want no create and api updated", r)
	}
	if e.callCount("create") != 1 || !slices.Equal(secretNames(e), []string{n1, n2}) {
		t.Fatalf("secrets %v after %d creates; want exactly one new secret", secretNames(e), e.callCount("create"))
	}
}

func TestSyncCreateRaceAndRemoveInUse(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	n2 := nameFor(t, dbMap, "two")
	src.put("secret/apps/db", 2, map[string]string{"password": "two"})
	want, _ := s.Desire(t.Context(), dbMap)
	obs, _ := s.Observe(t.Context())
	p := ComputePlan(dbMap, want, obs)
	// Another replica creates it between our observation and our create.
	e.addSecret(n2, want.Labels)
	r := s.Apply(t.Context(), dbMap, want, p, Options{})
	if r.Err != nil || r.Created != "" {
		t.Fatalf("Apply after a lost create race = %+v; want success without a create of ours", r)
	}
	// An unlabelled secret of the same name is not adopted.
	e2 := newFakeEngine()
	e2.secrets = []swarm.Secret{{ID: "x", Name: n2}}
	s2 := newSyncer(e2, src, &logs)
	r = s2.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeError || !strings.Contains(r.Error, "will not adopt") {
		t.Fatalf("pass over a foreign secret = %+v; want an error", r)
	}
	// Docker refusing a removal counts as in use, not as a failure.
	e3 := newFakeEngine()
	old := e3.addSecret(nameFor(t, dbMap, "one"), dbMap.SecretLabels("x", 1))
	e3.addSecret(n2, want.Labels)
	e3.removeErr = map[string]error{old: swarm.ErrInUse}
	s3 := newSyncer(e3, src, &logs)
	r = s3.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeUnchanged || r.Err != nil || e3.callCount("remove") != 1 {
		t.Fatalf("pass with an in-use refusal = %+v; want unchanged, no error, one remove tried", r)
	}
}

func TestSyncUpdateConflictRetries(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	n1 := nameFor(t, dbMap, "one")
	id1 := e.addSecret(n1, dbMap.SecretLabels("x", 1))
	e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{{SecretID: id1, SecretName: n1, File: "pw"}}})
	e.conflicts = 2
	src.put("secret/apps/db", 2, map[string]string{"password": "two"})
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeChanged || e.callCount("update") != 3 {
		t.Fatalf("pass = %+v after %d updates; want changed after 3", r, e.callCount("update"))
	}
}

func TestSyncDryRunAndBadMappingsGoOn(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	src.put("secret/apps/db", 1, map[string]string{"password": "one"})
	bad := secrets.Mapping{Name: "bad", FromPath: "secret/apps/db", FromKey: "nokey"}
	rs := s.Pass(t.Context(), []secrets.Mapping{bad, dbMap}, Options{DryRun: true})
	if rs[0].Outcome != OutcomeError || !strings.Contains(rs[0].Error, `mapping "bad"`) {
		t.Errorf("bad mapping = %+v; want an error naming it", rs[0])
	}
	if rs[1].Outcome != OutcomePlanned || rs[1].Plan.Create == nil || len(e.writes()) != 0 {
		t.Errorf("dry run = %+v, writes %v; want planned create and no writes", rs[1], e.writes())
	}
}

func TestTasksOnVersion(t *testing.T) {
	on := []swarm.SecretRef{{SecretName: "new"}}
	off := []swarm.SecretRef{{SecretName: "old"}}
	tests := []struct {
		name  string
		tasks []swarm.TaskSecrets
		want  bool
	}{
		{"none", nil, false},
		{"running new", []swarm.TaskSecrets{{State: "running", DesiredState: "running", Secrets: on}}, true},
		{"old still meant to run", []swarm.TaskSecrets{{State: "running", DesiredState: "running", Secrets: on}, {State: "running", DesiredState: "running", Secrets: off}}, false},
		{"new one waiting (stop-first)", []swarm.TaskSecrets{{State: "running", DesiredState: "shutdown", Secrets: off}, {State: "assigned", DesiredState: "ready", Secrets: on}}, false},
		{"new one starting", []swarm.TaskSecrets{{State: "starting", DesiredState: "running", Secrets: on}}, false},
		{"old shut down", []swarm.TaskSecrets{{State: "shutdown", DesiredState: "shutdown", Secrets: off}, {State: "running", DesiredState: "running", Secrets: on}}, true},
	}
	for _, tt := range tests {
		if got := tasksOnVersion(tt.tasks, "new"); got != tt.want {
			t.Errorf("tasksOnVersion(%s) = %v; want %v", tt.name, got, tt.want)
		}
	}
}

func TestSyncZeroReplicasNeedsNoWait(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	zero := uint64(0)
	e.addService(swarm.ServiceSecrets{ID: "z", Name: "zero", Replicas: &zero, Labels: map[string]string{secrets.LabelOptIn: "db_password"}})
	e.onUpdate = func(*swarm.ServiceSecrets) string { return "" } // Docker sets no update status when no task changes
	src.put("secret/apps/db", 1, map[string]string{"password": "one"})
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeChanged || e.callCount("list tasks z") != 0 {
		t.Fatalf("pass over a 0-replica service = %+v (calls %v); want changed without waiting on tasks", r, e.calls)
	}
}

// Many changed mappings over services that share them: one Vault read per distinct path, each service
// updated once with all of its changes, every mapping's result naming the services it rolled.
func TestSyncOneUpdatePerService(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	var ms []secrets.Mapping
	var refs []swarm.SecretRef
	for i, n := range []string{"m1", "m2", "m3"} {
		m := secrets.Mapping{Name: n, FromPath: "secret/shared", FromKey: n, KeepVersions: 1}
		ms = append(ms, m)
		old := nameFor(t, m, "old")
		id := e.addSecret(old, m.SecretLabels("x", 1))
		refs = append(refs, swarm.SecretRef{SecretID: id, SecretName: old, File: fmt.Sprintf("f%d", i)})
	}
	for _, id := range []string{"a", "b"} {
		e.addService(swarm.ServiceSecrets{ID: id, Name: "svc-" + id, Secrets: slices.Clone(refs)})
	}
	src.put("secret/shared", 2, map[string]string{"m1": "new1", "m2": "new2", "m3": "new3"})
	rs := s.Pass(t.Context(), ms, Options{})
	if src.reads != 1 {
		t.Errorf("vault reads = %d; want 1 for one distinct path", src.reads)
	}
	if n := e.callCount("update"); n != 2 {
		t.Errorf("service updates = %d (%v); want 2, one per service", n, e.writes())
	}
	for i, r := range rs {
		if r.Outcome != OutcomeChanged || !slices.Equal(r.Updated, []string{"svc-a", "svc-b"}) || len(r.Removed) != 0 {
			t.Errorf("result %d = %+v; want changed, svc-a and svc-b updated, the old version kept (the previous specs use it)", i, r)
		}
	}
	for _, id := range []string{"a", "b"} {
		for i, ref := range e.services[id].Secrets {
			if want := nameFor(t, ms[i], fmt.Sprintf("new%d", i+1)); ref.SecretName != want || ref.File != fmt.Sprintf("f%d", i) {
				t.Errorf("service %s ref %d = %+v; want %s at f%d", id, i, ref, want, i)
			}
		}
	}
}

// A service's own secret whose name only looks like a version of a mapping (app-20240101 beside mapping
// app, not labelled as its version) is not taken over.
func TestSyncUnlabelledLookalikeNotTakenOver(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	app := secrets.Mapping{Name: "app", FromPath: "secret/app", FromKey: "v", KeepVersions: 1}
	own := e.addSecret("app-20240101", map[string]string{"owner": "team"})
	e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{{SecretID: own, SecretName: "app-20240101", File: "app"}}})
	src.put("secret/app", 1, map[string]string{"v": "value"})
	r := s.Pass(t.Context(), []secrets.Mapping{app}, Options{})[0]
	if r.Err != nil || len(r.Updated) != 0 || e.callCount("update") != 0 {
		t.Fatalf("pass = %+v, writes %v; want the service's own app-20240101 left alone", r, e.writes())
	}
	if got := e.services["a"].Secrets[0].SecretName; got != "app-20240101" {
		t.Errorf("service now uses %s; want app-20240101", got)
	}
}

// A rollout the ledger says failed for this very version (another process's pass, before a failover) is
// not retried by itself; a forced one is.
func TestSyncFailedBeforeIsNotRetried(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	n1 := nameFor(t, dbMap, "one")
	id1 := e.addSecret(n1, dbMap.SecretLabels("x", 1))
	e.addService(swarm.ServiceSecrets{ID: "a", Name: "api", Secrets: []swarm.SecretRef{{SecretID: id1, SecretName: n1, File: "pw"}}})
	src.put("secret/apps/db", 2, map[string]string{"password": "two"})
	n2 := nameFor(t, dbMap, "two")
	var asked []string
	s.FailedBefore = func(_ context.Context, mapping, wanted string) (string, string, bool, error) {
		asked = append(asked, mapping+"="+wanted)
		return "api", "rollback_completed", wanted == n2, nil
	}
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	var re *swarm.RolloutError
	if r.Outcome != OutcomeFailed || !errors.As(r.Err, &re) || re.Service != "api" || len(e.writes()) != 0 {
		t.Fatalf("pass = %+v, writes %v; want failed (from the ledger) with no writes", r, e.writes())
	}
	if !slices.Equal(asked, []string{"db_password=" + n2}) {
		t.Errorf("FailedBefore asked %v; want once for %s", asked, n2)
	}
	r = s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{Force: true})[0]
	if r.Outcome != OutcomeChanged || !slices.Equal(r.Updated, []string{"api"}) {
		t.Fatalf("forced pass = %+v; want api updated", r)
	}
}

// Services roll in parallel, but a mapping's first service goes alone first: when it fails, no other
// service of the mapping is touched.
func TestSyncCanaryFailureTouchesNoOtherService(t *testing.T) {
	e, s, _ := threeServicesOneFailing(t, "a")
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{})[0]
	if r.Outcome != OutcomeFailed || r.FailedService != "svc-a" || e.callCount("update") != 1 {
		t.Fatalf("pass = %+v, writes %v; want failed at svc-a, the only service updated", r, e.writes())
	}
	e.onUpdate = nil
	r = s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{Force: true})[0]
	if r.Outcome != OutcomeChanged || !slices.Equal(r.Updated, []string{"svc-a", "svc-b", "svc-c"}) {
		t.Fatalf("forced pass = %+v; want all three updated", r)
	}
}

// Reads started ahead (while the caller takes the lease) are the pass's when fresh: the pass reads no path
// they hold and acts on their value; a path they lack is read by the pass.
func TestSyncPassUsesFreshReadsAhead(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	src.put("secret/apps/db", 1, map[string]string{"password": "value-one"})
	src.put("secret/o", 1, map[string]string{"k": "other-one"})
	other := secrets.Mapping{Name: "other", FromPath: "secret/o", FromKey: "k"}
	ahead := s.ReadAhead(t.Context(), []secrets.Mapping{dbMap})
	if _, fresh := ahead.usable(time.Now()); !fresh || src.reads != 1 {
		t.Fatalf("read ahead: fresh %v after %d reads; want fresh after 1", fresh, src.reads)
	}
	// Vault changes after the read ahead: the pass acts on what was read ahead (the next pass sees it).
	src.put("secret/apps/db", 2, map[string]string{"password": "value-two"})
	rs := s.Pass(t.Context(), []secrets.Mapping{dbMap, other}, Options{Reads: ahead})
	if src.reads != 2 {
		t.Errorf("reads after the pass = %d; want 2 (one ahead, one for the path the reads ahead lack)", src.reads)
	}
	if rs[0].Created != nameFor(t, dbMap, "value-one") || rs[0].VaultVersion != 1 || rs[1].Created != nameFor(t, other, "other-one") {
		t.Errorf("pass = %+v, %+v; want version 1 of db (read ahead) and other created", rs[0], rs[1])
	}
}

// Reads ahead older than ReadAheadMaxAge when the pass begins (the lease came late) are read again.
func TestSyncPassRereadsStaleReadsAhead(t *testing.T) {
	var logs bytes.Buffer
	e, src := newFakeEngine(), &fakeSource{}
	s := newSyncer(e, src, &logs)
	src.put("secret/apps/db", 1, map[string]string{"password": "value-one"})
	ahead := s.ReadAhead(t.Context(), []secrets.Mapping{dbMap})
	<-ahead.done
	ahead.began = ahead.began.Add(-ReadAheadMaxAge - time.Second)
	src.put("secret/apps/db", 2, map[string]string{"password": "value-two"})
	r := s.Pass(t.Context(), []secrets.Mapping{dbMap}, Options{Reads: ahead})[0]
	if src.reads != 2 || r.Created != nameFor(t, dbMap, "value-two") || r.VaultVersion != 2 {
		t.Errorf("pass over stale reads ahead: %d reads, created %s (vault version %d); want 2 reads and version 2", src.reads, r.Created, r.VaultVersion)
	}
	if !strings.Contains(logs.String(), "too old") {
		t.Errorf("log does not say the reads ahead were too old:\n%s", logs.String())
	}
}
