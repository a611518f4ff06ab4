package secretsync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// fakeSecretsSwarm is an in-memory engine for the secrets glue.
type fakeSecretsSwarm struct {
	mu       sync.Mutex
	secrets  []swarm.Secret
	services map[string]*swarm.ServiceSecrets
	calls    []string
	listErr  error
	n        int
}

func (f *fakeSecretsSwarm) ManagedSecrets(context.Context) ([]swarm.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "list secrets")
	return append([]swarm.Secret(nil), f.secrets...), f.listErr
}

func (f *fakeSecretsSwarm) CreateSecret(_ context.Context, name string, _ []byte, labels map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "create "+name)
	for _, s := range f.secrets {
		if s.Name == name {
			return "", fmt.Errorf("creating secret %s: %w", name, swarm.ErrAlreadyExists)
		}
	}
	f.n++
	id := fmt.Sprintf("id%d", f.n)
	f.secrets = append(f.secrets, swarm.Secret{ID: id, Name: name, Labels: labels, CreatedAt: time.Unix(int64(f.n), 0)})
	return id, nil
}

func (f *fakeSecretsSwarm) RemoveSecret(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "remove "+id)
	return fmt.Errorf("removing secret %s: %w", id, swarm.ErrInUse)
}

func (f *fakeSecretsSwarm) ServicesSecrets(context.Context) ([]swarm.ServiceSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "list services")
	var out []swarm.ServiceSecrets
	for _, s := range f.services {
		out = append(out, *s)
	}
	return out, f.listErr
}

func (f *fakeSecretsSwarm) ServiceSecrets(_ context.Context, id string) (swarm.ServiceSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[id]
	if !ok {
		return swarm.ServiceSecrets{}, fmt.Errorf("inspecting service %s: %w", id, swarm.ErrNotFound)
	}
	return *s, nil
}

func (f *fakeSecretsSwarm) UpdateServiceSecrets(_ context.Context, id string, version uint64, refs []swarm.SecretRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "update "+id)
	s := f.services[id]
	if s.Version != version {
		return fmt.Errorf("updating %s: %w", id, swarm.ErrConflict)
	}
	s.PreviousSecrets, s.Secrets = s.Secrets, refs
	s.Version++
	s.UpdateState, s.UpdateStartedAt = "completed", time.Unix(int64(version), 0)
	return nil
}

func (f *fakeSecretsSwarm) TasksSecrets(context.Context, string) ([]swarm.TaskSecrets, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "list tasks")
	return nil, f.listErr
}

type fakeVaultSource struct {
	val secrets.Value
	err error
}

func (s *fakeVaultSource) Read(context.Context, string) (secrets.Value, error) { return s.val, s.err }

func TestMappingsProblems(t *testing.T) {
	c := config.SecretsConfig{Mappings: []config.SecretMapping{
		{Name: "ok", From: config.SecretSource{Path: "secret/a", Key: "k"}},
		{Name: "bad", From: config.SecretSource{Path: "secret/a"}, Template: "{{.x"},
	}}
	ms, probs := Mappings(c)
	if len(ms) != 2 || len(probs) != 1 || probs[0].Key != "secrets.mappings[1].template" || !strings.Contains(probs[0].Msg, "does not parse") {
		t.Fatalf("Mappings() = %d mappings, %v; want one problem at secrets.mappings[1].template", len(ms), probs)
	}
}

func TestSecretsSyncStatusMetricsLedger(t *testing.T) {
	const value = "s3cr3t-value-for-the-scan"
	f := &fakeSecretsSwarm{services: map[string]*swarm.ServiceSecrets{
		"a": {ID: "a", Name: "api", Version: 3, Labels: map[string]string{secrets.LabelOptIn: "db"}},
	}}
	src := &fakeVaultSource{val: secrets.NewValue("secret/db", 4, map[string]string{"password": value})}
	syncer := &Syncer{Engine: f, Source: src, Key: sensitive.New("k"), PollInterval: time.Millisecond}
	m := secrets.Mapping{Name: "db", FromPath: "secret/db", FromKey: "password", Refresh: time.Minute}
	reg := prometheus.NewRegistry()
	met, err := NewSecretMetrics(reg, []string{"db"})
	if err != nil {
		t.Fatal(err)
	}
	led := ledgertest.New()
	ss := NewSecretsSync(syncer, []secrets.Mapping{m}, led, met)
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	env := operator.TaskEnv{Actor: "test", Now: func() time.Time { return now }}

	if _, err := ss.Run(t.Context(), env, ss.Due(now), Options{}); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	st := ss.Status()[0]
	if st.State != "ok" || st.VaultVersion != 4 || !st.LastSuccess.Equal(now) || !strings.HasPrefix(st.Current, "db-") || len(st.Dependents) != 1 {
		t.Errorf("status after a sync = %+v", st)
	}
	if len(led.All()) != 1 || led.All()[0].Kind != swarm.KindSecret || led.All()[0].Result != swarm.ResultOK || led.All()[0].Details["services"] != "api" {
		t.Errorf("ledger = %+v; want one ok secret entry naming api", led.All())
	}
	if got := testutil.ToFloat64(met.vaultVersion.WithLabelValues("db")); got != 4 {
		t.Errorf("%s = %v; want 4", MetricSecretVaultVersion, got)
	}
	if len(ss.Due(now.Add(30*time.Second))) != 0 || len(ss.Due(now.Add(time.Minute))) != 1 {
		t.Errorf("due: a mapping must wait for its refresh")
	}

	// Vault down: error status since now, backoff, no engine writes; it stays failing since the first failure.
	src.err = fmt.Errorf("reading: %w", secrets.ErrUnreachable)
	f.calls = nil
	later := now.Add(time.Minute)
	env.Now = func() time.Time { return later }
	if _, err := ss.Run(t.Context(), env, ss.Due(later), Options{}); !errors.Is(err, secrets.ErrUnreachable) {
		t.Fatalf("Run(vault down) = %v; want ErrUnreachable", err)
	}
	if len(f.calls) != 0 {
		t.Errorf("engine calls with vault down: %v", f.calls)
	}
	later2 := later.Add(time.Hour)
	env.Now = func() time.Time { return later2 }
	_, _ = ss.Run(t.Context(), env, ss.Due(later2), Options{})
	st = ss.Status()[0]
	if st.State != "error" || !st.FailingSince.Equal(later) || !strings.Contains(st.Error, "vault unreachable") {
		t.Errorf("status with vault down = %+v; want error failing since %v", st, later)
	}
	if d := ss.Due(later2.Add(secretsMaxBackoff / 2)); len(d) != 0 && ss.backoff["db"] < secretsMinBackoff {
		t.Errorf("no backoff after failures")
	}
	if got := testutil.ToFloat64(met.failingSince.WithLabelValues("db")); got != float64(later.Unix()) {
		t.Errorf("%s = %v; want %d", MetricSecretFailingSince, got, later.Unix())
	}
	if got := testutil.ToFloat64(met.sync.WithLabelValues("db", "error")); got != 2 {
		t.Errorf("sync_total{result=error} = %v; want 2", got)
	}
	// Recovery clears the failure.
	src.err = nil
	later3 := later2.Add(time.Hour)
	env.Now = func() time.Time { return later3 }
	if _, err := ss.Run(t.Context(), env, ss.Due(later3), Options{}); err != nil {
		t.Fatal(err)
	}
	if st := ss.Status()[0]; st.State != "ok" || !st.FailingSince.IsZero() {
		t.Errorf("status after recovery = %+v", st)
	}
	// Nothing printed anywhere holds the value.
	mfs, _ := reg.Gather()
	text := fmt.Sprint(mfs, led.All(), ss.Status())
	if strings.Contains(text, value) {
		t.Errorf("metrics, ledger or status hold the secret value")
	}
	if _, err := ss.Select([]string{"nope"}); err == nil || !strings.Contains(err.Error(), "known: db") {
		t.Errorf("Select(unknown) = %v; want the known names", err)
	}
}

// Vault unreachable before the first login: every mapping says so, since the first failed pass, in its
// status and metrics.
func TestSecretsSyncUnavailableBeforeLogin(t *testing.T) {
	reg := prometheus.NewRegistry()
	met, err := NewSecretMetrics(reg, []string{"db", "api"})
	if err != nil {
		t.Fatal(err)
	}
	ms := []secrets.Mapping{{Name: "db", FromPath: "secret/db", FromKey: "password"}, {Name: "api", FromPath: "secret/api", FromKey: "token"}}
	ss := NewSecretsSync(nil, ms, nil, met)
	for _, st := range ss.Status() {
		if st.State != "pending" {
			t.Fatalf("status before any pass = %+v; want pending", st)
		}
	}
	if got := testutil.ToFloat64(met.mappings.WithLabelValues("pending")); got != 2 {
		t.Errorf("%s{state=pending} before any pass = %v; want 2", MetricSecretMappings, got)
	}
	first := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cause := fmt.Errorf("vault at http://vault:8200: %w", secrets.ErrUnreachable)
	ss.Unavailable(cause, first)
	ss.Unavailable(cause, first.Add(time.Minute))
	for _, st := range ss.Status() {
		if st.State != "error" || !st.FailingSince.Equal(first) || !st.LastAttempt.Equal(first.Add(time.Minute)) || !strings.Contains(st.Error, "vault unreachable") {
			t.Errorf("status = %+v; want error since %v, last attempt a minute later, naming the cause", st, first)
		}
		if got := testutil.ToFloat64(met.failingSince.WithLabelValues(st.Name)); got != float64(first.Unix()) {
			t.Errorf("%s{secret=%q} = %v; want %d", MetricSecretFailingSince, st.Name, got, first.Unix())
		}
		if got := testutil.ToFloat64(met.sync.WithLabelValues(st.Name, "error")); got != 2 {
			t.Errorf("sync_total{secret=%q,result=error} = %v; want 2", st.Name, got)
		}
	}
	for state, want := range map[string]float64{"error": 2, "pending": 0, "ok": 0, "failed": 0} {
		if got := testutil.ToFloat64(met.mappings.WithLabelValues(state)); got != want {
			t.Errorf("%s{state=%q} = %v; want %v", MetricSecretMappings, state, got, want)
		}
	}
}

// countingLedger counts writes and can refuse them.
type countingLedger struct {
	*ledgertest.Ledger
	fail    error
	appends int
}

func (l *countingLedger) Append(ctx context.Context, es ...swarm.Entry) ([]swarm.Entry, error) {
	l.appends++
	if l.fail != nil {
		return nil, l.fail
	}
	return l.Ledger.Append(ctx, es...)
}

// One pass of many actions: one audit record per action, as it happens, and one ledger write for the pass;
// the records are delivered also when that write fails.
func TestSecretsSyncAuditsEachActionWritesLedgerOnce(t *testing.T) {
	for _, ledgerErr := range []error{nil, errors.New("ledger over its size")} {
		f := &fakeSecretsSwarm{services: map[string]*swarm.ServiceSecrets{}}
		src := &fakeVaultSource{val: secrets.NewValue("secret/x", 2, map[string]string{"v": "value"})}
		syncer := &Syncer{Engine: f, Source: src, Key: sensitive.New("k"), PollInterval: time.Millisecond}
		var ms []secrets.Mapping
		for i := range 120 {
			ms = append(ms, secrets.Mapping{Name: fmt.Sprintf("m%03d", i), FromPath: "secret/x", FromKey: "v"})
		}
		led := &countingLedger{Ledger: ledgertest.New(), fail: ledgerErr}
		ss := NewSecretsSync(syncer, ms, led, nil)
		var buf strings.Builder
		var mu sync.Mutex
		w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) })
		aud := audit.New(t.Context(), slog.New(slog.NewJSONHandler(w, nil)), nil)
		ctx := audit.With(t.Context(), aud)
		if _, err := ss.Run(ctx, operator.TaskEnv{Actor: "test"}, ms, Options{}); err != nil {
			t.Fatalf("Run() = %v", err)
		}
		if led.appends != 1 {
			t.Errorf("ledger writes in one pass = %d; want 1", led.appends)
		}
		ids, names := map[string]bool{}, map[string]bool{}
		for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			var l struct {
				Msg    string       `json:"msg"`
				Record audit.Record `json:"record"`
			}
			if json.Unmarshal([]byte(line), &l) != nil || l.Msg != "audit" || l.Record.Kind != swarm.KindSecret {
				continue
			}
			ids[l.Record.ID], names[l.Record.Details["secret"]] = true, true
		}
		if len(ids) != 120 || len(names) != 120 {
			t.Errorf("ledger error %v: audit records = %d ids, %d secrets; want 120 of each", ledgerErr, len(ids), len(names))
		}
		if ledgerErr == nil && len(led.All()) != 120 {
			t.Errorf("ledger entries = %d; want 120", len(led.All()))
		}
		if ledgerErr == nil {
			// one entry per action, in the plan's order (the mappings'), whatever order the actions ended in
			for i, e := range led.All() {
				if i < len(ms) && e.Details["secret"] != ms[i].Name {
					t.Errorf("ledger entry %d is of %s; want %s (the plan's order)", i, e.Details["secret"], ms[i].Name)
					break
				}
			}
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A rollout that failed in another process (the ledger's newest entry of the mapping says so, for the same
// version) is not retried after a failover; a newer ok entry, or another version, lets it go.
func TestSecretsSyncRemembersFailedRolloutThroughTheLedger(t *testing.T) {
	m := secrets.Mapping{Name: "db", FromPath: "secret/db", FromKey: "password"}
	val := secrets.NewValue("secret/db", 4, map[string]string{"password": "v4"})
	want, err := m.Desire(sensitive.New("k"), val)
	if err != nil {
		t.Fatal(err)
	}
	old := swarm.Secret{ID: "old", Name: "db-00000000", Labels: m.SecretLabels("x", 3)}
	for _, tc := range []struct {
		name   string
		ledger []swarm.Entry
		writes bool
	}{
		{"failed for this version", []swarm.Entry{{Kind: swarm.KindSecret, Seq: 1, Result: swarm.ResultFailed,
			Details: map[string]string{"secret": "db", "to": want.Name, "failed_service": "api", "error": "rollback_completed"}}}, false},
		{"failed, then done", []swarm.Entry{
			{Kind: swarm.KindSecret, Seq: 1, Result: swarm.ResultFailed, Details: map[string]string{"secret": "db", "to": want.Name, "failed_service": "api"}},
			{Kind: swarm.KindSecret, Seq: 2, Result: swarm.ResultOK, Details: map[string]string{"secret": "db", "to": want.Name}}}, true},
		{"failed for another version", []swarm.Entry{{Kind: swarm.KindSecret, Seq: 1, Result: swarm.ResultFailed,
			Details: map[string]string{"secret": "db", "to": "db-ffffffff", "failed_service": "api"}}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSecretsSwarm{secrets: []swarm.Secret{old}, services: map[string]*swarm.ServiceSecrets{
				"a": {ID: "a", Name: "api", Version: 3, Secrets: []swarm.SecretRef{{SecretID: "old", SecretName: old.Name, File: "pw"}}},
			}}
			syncer := &Syncer{Engine: f, Source: &fakeVaultSource{val: val}, Key: sensitive.New("k"), PollInterval: time.Millisecond}
			ss := NewSecretsSync(syncer, []secrets.Mapping{m}, ledgertest.New(tc.ledger...), nil)
			rs, _ := ss.Run(t.Context(), operator.TaskEnv{Actor: "test"}, []secrets.Mapping{m}, Options{})
			wrote := false
			for _, c := range f.calls {
				wrote = wrote || strings.HasPrefix(c, "create") || strings.HasPrefix(c, "update")
			}
			if wrote != tc.writes {
				t.Fatalf("result %+v, engine calls %v; want writes=%v", rs[0], f.calls, tc.writes)
			}
			if !tc.writes && rs[0].Outcome != OutcomeFailed {
				t.Errorf("outcome = %s; want failed (remembered through the ledger)", rs[0].Outcome)
			}
		})
	}
}

// The mappings-by-state gauge follows every change of state, whatever the order, as a recount would.
func TestSecretMetricsMappingsByStateFollowChanges(t *testing.T) {
	names := []string{"a", "b", "c", "d"}
	met, err := NewSecretMetrics(prometheus.NewRegistry(), names)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a": "pending", "b": "pending", "c": "pending", "d": "pending"}
	steps := []struct{ name, state string }{
		{"a", "ok"}, {"b", "ok"}, {"a", "ok"}, {"c", "error"}, {"a", "failed"}, {"c", "ok"}, {"d", "error"}, {"a", "ok"}, {"b", "error"},
	}
	for i, s := range steps {
		met.SecretSynced(SecretState{Name: s.name, State: s.state}, "unchanged")
		want[s.name] = s.state
		counts := map[string]float64{}
		for _, st := range want {
			counts[st]++
		}
		for _, st := range secretStates {
			if got := testutil.ToFloat64(met.mappings.WithLabelValues(st)); got != counts[st] {
				t.Errorf("after step %d (%s -> %s): %s{state=%q} = %v; want %v", i, s.name, s.state, MetricSecretMappings, st, got, counts[st])
			}
		}
	}
}

// One pass's worth of results over 1,000 mappings: linear in the mappings (it recounted every state at
// each result before, 1,000,000 map steps a pass).
func BenchmarkSecretMetricsPass1000(b *testing.B) {
	names := make([]string, 1000)
	for i := range names {
		names[i] = fmt.Sprintf("m%04d", i)
	}
	met, err := NewSecretMetrics(prometheus.NewRegistry(), names)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	for b.Loop() {
		for _, n := range names {
			met.SecretSynced(SecretState{Name: n, State: "ok", LastSuccess: now, VaultVersion: 3}, "unchanged")
		}
	}
}

// A rollout known to fail stays known through any number of failovers: the holder that finds the failure in
// the ledger records its own failed entry with the service that failed (failed_service), so the holder after
// it (a restart, a redeploy of swarmguard) does not roll the bad value onto that service again.
func TestSecretsSyncFailedRolloutSurvivesTwoFailovers(t *testing.T) {
	m := secrets.Mapping{Name: "db", FromPath: "secret/db", FromKey: "password"}
	val := secrets.NewValue("secret/db", 4, map[string]string{"password": "v4"})
	want, err := m.Desire(sensitive.New("k"), val)
	if err != nil {
		t.Fatal(err)
	}
	old := swarm.Secret{ID: "old", Name: "db-00000000", Labels: m.SecretLabels("x", 3)}
	led := ledgertest.New(swarm.Entry{Kind: swarm.KindSecret, Result: swarm.ResultFailed,
		Details: map[string]string{"secret": "db", "to": want.Name, "failed_service": "api", "error": "rollout of service api ended paused"}})
	for holder := 2; holder <= 5; holder++ {
		// Each holder is a new process: a new Syncer, nothing remembered but the ledger.
		f := &fakeSecretsSwarm{secrets: []swarm.Secret{old}, services: map[string]*swarm.ServiceSecrets{
			"a": {ID: "a", Name: "api", Version: 3, Secrets: []swarm.SecretRef{{SecretID: "old", SecretName: old.Name, File: "pw"}}},
		}}
		syncer := &Syncer{Engine: f, Source: &fakeVaultSource{val: val}, Key: sensitive.New("k"), PollInterval: time.Millisecond}
		ss := NewSecretsSync(syncer, []secrets.Mapping{m}, led, nil)
		rs, _ := ss.Run(t.Context(), operator.TaskEnv{Actor: fmt.Sprintf("operator:n%d", holder)}, []secrets.Mapping{m}, Options{})
		for _, c := range f.calls {
			if strings.HasPrefix(c, "create") || strings.HasPrefix(c, "update") {
				t.Fatalf("holder %d: engine calls %v; want no create or update (the rollout of %s failed on api before)", holder, f.calls, want.Name)
			}
		}
		if rs[0].Outcome != OutcomeFailed || rs[0].FailedService != "api" {
			t.Errorf("holder %d: result %s, failed service %q; want failed on api", holder, rs[0].Outcome, rs[0].FailedService)
		}
		newest, _ := swarm.Latest(led.All(), swarm.KindSecret)
		if newest.Result != swarm.ResultFailed || newest.Details["failed_service"] != "api" || newest.Details["to"] != want.Name {
			t.Errorf("holder %d: newest secret entry = %s %v; want failed with failed_service api and to %s", holder, newest.Result, newest.Details, want.Name)
		}
		if newest.Details["error"] != "rollout of service api ended paused" {
			t.Errorf("holder %d: newest entry's error = %q; want the failure as first recorded", holder, newest.Details["error"])
		}
	}
}

// The ledger keeps a failed rollout as state by the details the sync writes.
func TestSecretEntryDetailsAreTheLedgerState(t *testing.T) {
	e := (&SecretsSync{}).entry(operator.TaskEnv{}, Result{Mapping: "db", Outcome: OutcomeFailed, FailedService: "api", Err: errors.New("paused"),
		Plan: &Plan{Wanted: Version{Name: "db-1"}}})
	for _, k := range []string{swarm.StateDetailSecret, swarm.StateDetailTo, swarm.StateDetailFailedService, swarm.StateDetailError} {
		if e.Details[k] == "" {
			t.Errorf("failed entry details %v: no %q, which the ledger keeps the failure's state by", e.Details, k)
		}
	}
}
