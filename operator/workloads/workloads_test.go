package workloads

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func svc(mut func(*swarm.Workload)) swarm.Workload {
	w := swarm.Workload{ID: "id1", Name: "s", Version: 10, Container: true, Image: "nginx:1@sha256:ab", User: "65534",
		CapDrop: []string{"ALL"}, ReadOnly: true, MemoryLimit: 64 << 20, NanoCPUs: 1e9, PidsLimit: 50, NoNewPrivileges: true}
	if mut != nil {
		mut(&w)
	}
	return w
}

func TestChecks(t *testing.T) {
	obs := func(w swarm.Workload) Observation {
		return Observation{APIVersion: "1.56", Services: []swarm.Workload{w},
			ImageUsers: map[string]ImageUser{"root:1": {Found: true, User: ""}, "app:1": {Found: true, User: "app"}, "gone:1": {}}}
	}
	for _, tc := range []struct {
		name  string
		check string
		w     swarm.Workload
		api   string
		want  report.CheckStatus
		note  string
	}{
		{"hardened user", CheckUser, svc(nil), "", report.StatusPass, ""},
		{"spec root", CheckUser, svc(func(w *swarm.Workload) { w.User = "0:0" }), "", report.StatusFail, "runs as root"},
		{"image root", CheckUser, svc(func(w *swarm.Workload) { w.User, w.Image = "", "root:1" }), "", report.StatusFail, "image's config user is none"},
		{"image user", CheckUser, svc(func(w *swarm.Workload) { w.User, w.Image = "", "app:1" }), "", report.StatusPass, ""},
		{"image absent", CheckUser, svc(func(w *swarm.Workload) { w.User, w.Image = "", "gone:1" }), "", report.StatusWarn, "not determinable"},
		{"system root", CheckUser, svc(func(w *swarm.Workload) {
			w.User, w.Labels = "root", map[string]string{swarm.LabelWorkloadProfile: "system"}
		}), "", report.StatusInfo, "profile system"},
		{"caps dropped", CheckCapabilities, svc(func(w *swarm.Workload) { w.CapAdd = []string{"NET_BIND_SERVICE"} }), "", report.StatusPass, "adds back"},
		{"caps default", CheckCapabilities, svc(func(w *swarm.Workload) { w.CapDrop = nil }), "", report.StatusWarn, "no --cap-drop ALL"},
		{"caps sys_admin", CheckCapabilities, svc(func(w *swarm.Workload) { w.CapAdd = []string{"CAP_SYS_ADMIN"} }), "", report.StatusFail, "SYS_ADMIN"},
		{"caps all", CheckCapabilities, svc(func(w *swarm.Workload) { w.CapAdd = []string{"all"} }), "", report.StatusFail, "ALL"},
		{"caps exempt", CheckCapabilities, svc(func(w *swarm.Workload) {
			w.CapAdd = []string{"NET_ADMIN"}
			w.Labels = map[string]string{swarm.LabelWorkloadExempt: "capabilities", swarm.LabelWorkloadExemptReason: "router"}
		}), "", report.StatusInfo, "exempt"},
		{"caps exempt no reason", CheckCapabilities, svc(func(w *swarm.Workload) {
			w.CapAdd = []string{"NET_ADMIN"}
			w.Labels = map[string]string{swarm.LabelWorkloadExempt: "capabilities"}
		}), "", report.StatusFail, "NET_ADMIN"},
		{"socket ro", CheckHostMounts, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/var/run/docker.sock", Target: "/s", ReadOnly: true}}
		}), "", report.StatusFail, "docker.sock"},
		{"etc ro", CheckHostMounts, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/etc/ssl", Target: "/ssl", ReadOnly: true}}
		}), "", report.StatusWarn, "read-only"},
		{"root rw", CheckHostMounts, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/", Target: "/host"}}
		}), "", report.StatusFail, "read-write"},
		{"volume", CheckHostMounts, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "volume", Source: "etc", Target: "/etc"}}
		}), "", report.StatusPass, ""},
		{"data dir", CheckHostMounts, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/srv/data", Target: "/d"}}
		}), "", report.StatusPass, ""},
		{"host net", CheckHostNetwork, svc(func(w *swarm.Workload) { w.HostNetwork = true }), "", report.StatusFail, "host's network"},
		{"no limits", CheckLimits, svc(func(w *swarm.Workload) { w.MemoryLimit, w.NanoCPUs, w.PidsLimit = 0, 0, 0 }), "", report.StatusFail, "no memory or CPU limit"},
		{"no cpu", CheckLimits, svc(func(w *swarm.Workload) { w.NanoCPUs = 0 }), "", report.StatusWarn, "no CPU limit"},
		{"no pids", CheckLimits, svc(func(w *swarm.Workload) { w.PidsLimit = 0 }), "", report.StatusPass, "no pids limit"},
		{"writable", CheckReadOnly, svc(func(w *swarm.Workload) { w.ReadOnly = false }), "", report.StatusWarn, "writable"},
		{"nnp", CheckPrivileges, svc(nil), "", report.StatusPass, ""},
		{"no nnp", CheckPrivileges, svc(func(w *swarm.Workload) { w.NoNewPrivileges = false }), "", report.StatusWarn, "no no-new-privileges"},
		{"seccomp unconfined", CheckPrivileges, svc(func(w *swarm.Workload) { w.Seccomp = "unconfined" }), "", report.StatusFail, "seccomp unconfined"},
		{"apparmor disabled", CheckPrivileges, svc(func(w *swarm.Workload) { w.AppArmor = "disabled" }), "", report.StatusFail, "AppArmor disabled"},
		{"old engine", CheckPrivileges, svc(func(w *swarm.Workload) { w.NoNewPrivileges = false }), "1.41", report.StatusInfo, "not settable on this engine"},
		{"pinned", CheckImagePinned, svc(nil), "", report.StatusPass, ""},
		{"tag", CheckImagePinned, svc(func(w *swarm.Workload) { w.Image = "nginx:1" }), "", report.StatusWarn, "not pinned"},
		{"sysctls", CheckSysctls, svc(func(w *swarm.Workload) { w.Sysctls = map[string]string{"net.core.somaxconn": "1024"} }), "", report.StatusInfo, "somaxconn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := obs(tc.w)
			if tc.api != "" {
				o.APIVersion = tc.api
			}
			vs, err := Verdicts(o, config.WorkloadsConfig{Mode: config.ModeAudit})
			if err != nil {
				t.Fatal(err)
			}
			f := vs[0].Findings[tc.check]
			text := f.Note + " " + report.FactsText(f.Facts)
			if f.Status != tc.want || !strings.Contains(text, tc.note) {
				t.Errorf("%s on %s = %s (%s); want %s with %q", tc.check, tc.name, f.Status, text, tc.want, tc.note)
			}
		})
	}
}

func TestAllowedRegistries(t *testing.T) {
	for _, tc := range []struct {
		image   string
		allowed []string
		want    bool
	}{
		{"nginx:1", []string{"docker.io"}, true},
		{"nginx:1", []string{"docker.io/library"}, true},
		{"ghcr.io/acme/app:1", []string{"ghcr.io/acme"}, true},
		{"ghcr.io/other/app:1", []string{"ghcr.io/acme"}, false},
		{"registry.internal:5000/app@sha256:aa", []string{"registry.internal:5000"}, true},
		{"localhost/app", []string{"registry.internal:5000"}, false},
	} {
		if got := allowedBy(tc.image, tc.allowed); got != tc.want {
			t.Errorf("allowedBy(%q, %v) = %v; want %v", tc.image, tc.allowed, got, tc.want)
		}
	}
}

func TestExemptions(t *testing.T) {
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		checks  string
		problem string
	}{
		{"none", nil, "", ""},
		{"with reason", map[string]string{swarm.LabelWorkloadExempt: "user, workloads.read-only", swarm.LabelWorkloadExemptReason: "legacy"}, "workloads.read-only,workloads.user", ""},
		{"no reason", map[string]string{swarm.LabelWorkloadExempt: "user"}, "", "not valid"},
		{"unknown", map[string]string{swarm.LabelWorkloadExempt: "users", swarm.LabelWorkloadExemptReason: "x"}, "", "no such check: users"},
	} {
		checks, _, problem := exemptions(tc.labels)
		if strings.Join(checks, ",") != tc.checks || (tc.problem == "") != (problem == "") || !strings.Contains(problem, tc.problem) {
			t.Errorf("exemptions(%s) = %v, %q; want %s, %q", tc.name, checks, problem, tc.checks, tc.problem)
		}
	}
}

func TestPlanEnforcement(t *testing.T) {
	opted := func(mut func(*swarm.Workload)) swarm.Workload {
		return svc(func(w *swarm.Workload) {
			w.NoNewPrivileges = false
			w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
			if mut != nil {
				mut(w)
			}
		})
	}
	enforce := config.WorkloadsConfig{Mode: config.ModeEnforce}
	for _, tc := range []struct {
		name      string
		c         config.WorkloadsConfig
		api       string
		w         swarm.Workload
		failed    map[string]string
		actions   int
		skipped   int
		notSettle bool
	}{
		{"audit", config.WorkloadsConfig{Mode: config.ModeAudit}, "1.56", opted(nil), nil, 0, 0, false},
		{"opted in", enforce, "1.56", opted(nil), nil, 1, 0, false},
		{"not opted in", enforce, "1.56", svc(func(w *swarm.Workload) { w.NoNewPrivileges = false }), nil, 0, 0, false},
		{"enforce_all", config.WorkloadsConfig{Mode: config.ModeEnforce, EnforceAll: true}, "1.56", svc(func(w *swarm.Workload) { w.NoNewPrivileges = false }), nil, 1, 0, false},
		{"already hardened", enforce, "1.56", opted(func(w *swarm.Workload) { w.NoNewPrivileges = true }), nil, 0, 0, false},
		{"old engine", enforce, "1.41", opted(nil), nil, 0, 0, true},
		{"exempt", enforce, "1.56", opted(func(w *swarm.Workload) {
			w.Labels[swarm.LabelWorkloadExempt], w.Labels[swarm.LabelWorkloadExemptReason] = "privileges", "needs setuid"
		}), nil, 0, 1, false},
		{"updating", enforce, "1.56", opted(func(w *swarm.Workload) { w.UpdateState = "updating" }), nil, 0, 1, false},
		{"failed before", enforce, "1.56", opted(nil), map[string]string{"id1": SpecKey(opted(nil))}, 0, 1, false},
		{"failed before, at another version", enforce, "1.56", opted(nil), map[string]string{"id1": SpecKey(opted(func(w *swarm.Workload) { w.Version = 13; w.UpdateState = "rollback_completed" }))}, 0, 1, false},
		{"failed on an older spec", enforce, "1.56", opted(nil), map[string]string{"id1": SpecKey(opted(func(w *swarm.Workload) { w.Image = "nginx:0@sha256:cd" }))}, 1, 0, false},
	} {
		o := Observation{APIVersion: tc.api, Services: []swarm.Workload{tc.w}}
		vs, _ := Verdicts(o, tc.c)
		p := PlanEnforcement(o, vs, tc.c, tc.failed)
		if len(p.Actions) != tc.actions || len(p.Skipped) != tc.skipped || (p.NotSettable != "") != tc.notSettle {
			t.Errorf("PlanEnforcement(%s) = %d actions, %d skipped, not settable %q; want %d, %d, %v", tc.name, len(p.Actions), len(p.Skipped), p.NotSettable,
				tc.actions, tc.skipped, tc.notSettle)
		}
	}
}

// fakeEngine is a swarm with services, whose updates end in updateState.
type fakeEngine struct {
	api         string
	services    []swarm.Workload
	updateState string
	hardened    []string
	rolledBack  []string
	started     time.Time
}

func (f *fakeEngine) Workloads(context.Context) ([]swarm.Workload, error) { return f.services, nil }
func (f *fakeEngine) ImageUser(context.Context, string) (string, bool, error) {
	return "", false, nil
}
func (f *fakeEngine) APIVersion() string { return f.api }
func (f *fakeEngine) HardenService(_ context.Context, id string, version uint64, h swarm.Hardening) error {
	for i, s := range f.services {
		if s.ID == id {
			if s.Version != version {
				return swarm.ErrConflict
			}
			f.hardened = append(f.hardened, s.Name)
			f.services[i].Version++
			f.started = f.started.Add(time.Second)
			return nil
		}
	}
	return swarm.ErrNotFound
}
func (f *fakeEngine) RollbackService(_ context.Context, id string) error {
	f.rolledBack = append(f.rolledBack, id)
	return nil
}
func (f *fakeEngine) ServiceSecrets(_ context.Context, id string) (swarm.ServiceSecrets, error) {
	for _, s := range f.services {
		if s.ID == id {
			st := ""
			if len(f.hardened) > 0 {
				st = f.updateState
			}
			return swarm.ServiceSecrets{ID: id, Name: s.Name, Version: s.Version, UpdateState: st, UpdateStartedAt: f.started}, nil
		}
	}
	return swarm.ServiceSecrets{}, swarm.ErrNotFound
}
func (f *fakeEngine) TasksSecrets(context.Context, string) ([]swarm.TaskSecrets, error) {
	return nil, nil
}

type fakeLedger struct{ entries []swarm.Entry }

func (l *fakeLedger) Entries(context.Context) ([]swarm.Entry, error) { return l.entries, nil }
func (l *fakeLedger) Append(_ context.Context, es ...swarm.Entry) ([]swarm.Entry, error) {
	l.entries = append(l.entries, es...)
	return l.entries, nil
}

func TestPass(t *testing.T) {
	two := func() []swarm.Workload {
		a := svc(func(w *swarm.Workload) {
			w.ID, w.Name, w.NoNewPrivileges = "a", "a", false
			w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
		})
		b := svc(func(w *swarm.Workload) {
			w.ID, w.Name, w.NoNewPrivileges = "b", "b", false
			w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
		})
		return []swarm.Workload{a, b}
	}
	for _, tc := range []struct {
		name, api, state string
		dry              bool
		hardened         string
		rolledBack       int
		results          string
		wantErr          bool
		out              string
	}{
		{"converges", "1.56", "completed", false, "a,b", 0, "ok,ok", false, "set no-new-privileges=true on service b"},
		{"paused: rolled back, stops", "1.56", "paused", false, "a", 1, "failed", true, "returned to its previous spec"},
		{"engine rolled back", "1.56", "rollback_completed", false, "a", 0, "failed", true, "rollback_completed"},
		{"dry run", "1.56", "completed", true, "", 0, "", false, "would set no-new-privileges=true on service a"},
		{"old engine", "1.41", "completed", false, "", 0, "", false, "not settable on this engine"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eng := &fakeEngine{api: tc.api, services: two(), updateState: tc.state, started: time.Unix(1000, 0)}
			led := &fakeLedger{}
			e := &Enforcer{Engine: eng, Ledger: led, Config: config.WorkloadsConfig{Mode: config.ModeEnforce, Schedule: "@every 1m"},
				PollInterval: time.Millisecond, RolloutTimeout: time.Second}
			var out strings.Builder
			err := e.Pass(t.Context(), operator.TaskEnv{DryRun: tc.dry, Actor: "test", Out: &out})
			var results []string
			for _, en := range led.entries {
				if en.Kind != swarm.KindWorkload {
					t.Errorf("ledger entry kind %q; want %q", en.Kind, swarm.KindWorkload)
				}
				results = append(results, en.Result)
			}
			if strings.Join(eng.hardened, ",") != tc.hardened || len(eng.rolledBack) != tc.rolledBack || strings.Join(results, ",") != tc.results ||
				(err != nil) != tc.wantErr || !strings.Contains(out.String(), tc.out) {
				t.Errorf("Pass(%s): hardened %v, rolled back %v, ledger %v, err %v, out %q; want %s, %d, %s, err %v, out with %q",
					tc.name, eng.hardened, eng.rolledBack, results, err, out.String(), tc.hardened, tc.rolledBack, tc.results, tc.wantErr, tc.out)
			}
			if tc.wantErr {
				// the failed service is not tried again at the same spec version
				eng.updateState = "completed"
				out.Reset()
				_ = e.Pass(t.Context(), operator.TaskEnv{Actor: "test", Out: &out})
				if !strings.Contains(out.String(), "skip a") {
					t.Errorf("second Pass after a failed rollout = %q; want service a skipped", out.String())
				}
			}
		})
	}
}

// TestPassNoRollbackWithoutTheLease: the hardening rollout paused and the lease is lost before the rollback:
// the service is not rolled back (another actor may be acting), and the ledger entry says what is left to undo.
func TestPassNoRollbackWithoutTheLease(t *testing.T) {
	w := svc(func(w *swarm.Workload) {
		w.ID, w.Name, w.NoNewPrivileges = "a", "a", false
		w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
	})
	eng := &fakeEngine{api: "1.56", services: []swarm.Workload{w}, updateState: "paused", started: time.Unix(1000, 0)}
	led := &fakeLedger{}
	e := &Enforcer{Engine: eng, Ledger: led, Config: config.WorkloadsConfig{Mode: config.ModeEnforce, Schedule: "@every 1m"},
		PollInterval: time.Millisecond, RolloutTimeout: time.Second}
	checks := 0
	env := operator.TaskEnv{Actor: "test", Out: io.Discard, Guard: operator.CheckOnly(func(context.Context) error {
		checks++
		if checks > 1 { // the check before the hardening passes; the one before the rollback does not
			return errors.New("lease lost")
		}
		return nil
	})}
	if err := e.Pass(t.Context(), env); err == nil {
		t.Fatal("Pass with a paused rollout = nil; want its error")
	}
	if len(eng.hardened) != 1 || len(eng.rolledBack) != 0 {
		t.Fatalf("hardened %v, rolled back %v; want a hardened and no rollback without the lease", eng.hardened, eng.rolledBack)
	}
	if len(led.entries) != 1 || !strings.Contains(led.entries[0].Details[DetailLeftToUndo], "docker service rollback a") ||
		!strings.HasPrefix(led.entries[0].Details[DetailRolledBack], "false: the lease no longer holds") {
		t.Errorf("ledger = %+v; want one entry saying the rollback is left to do", led.entries)
	}
}
