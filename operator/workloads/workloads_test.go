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
		CapDrop: []string{"ALL"}, ReadOnly: true, MemoryLimit: 64 << 20, NanoCPUs: 1e9, PidsLimit: 50, NoNewPrivileges: true,
		RestartCondition: "on-failure", RestartMaxAttempts: 3, Healthcheck: swarm.HealthSet}
	if mut != nil {
		mut(&w)
	}
	return w
}

func TestChecks(t *testing.T) {
	obs := func(w swarm.Workload) Observation {
		return Observation{APIVersion: "1.56", Services: []swarm.Workload{w},
			Images: map[string]Image{"root:1": {Found: true}, "app:1": {Found: true, ImageConfig: swarm.ImageConfig{User: "app", Healthcheck: swarm.HealthSet}},
				"gone:1": {}, "nohealth:1": {Found: true, ImageConfig: swarm.ImageConfig{Healthcheck: swarm.HealthDisabled}},
				"broken:1": {Err: errors.New("inspecting image broken:1: context deadline exceeded")}}}
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
		{"socket ro", CheckDockerSocket, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/var/run/docker.sock", Target: "/s", ReadOnly: true}}
		}), "", report.StatusFail, "docker.sock"},
		{"socket: host-mounts fails too, naming 5.32", CheckHostMounts, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/var/run/docker.sock", Target: "/s", ReadOnly: true}}
		}), "", report.StatusFail, "docker.sock (the Docker socket"},
		{"control socket", CheckDockerSocket, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/run/docker/swarm/control.sock", Target: "/c"}}
		}), "", report.StatusFail, "control.sock"},
		{"no socket", CheckDockerSocket, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/etc/ssl", Target: "/ssl", ReadOnly: true}}
		}), "", report.StatusPass, "socket_mounts=none"},
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
		{"own net", CheckHostNetwork, svc(nil), "", report.StatusPass, "host_network=false"},
		{"memory", CheckMemory, svc(nil), "", report.StatusPass, "memory_limit=64MiB"},
		{"no memory", CheckMemory, svc(func(w *swarm.Workload) { w.MemoryLimit = 0 }), "", report.StatusFail, "no memory limit"},
		{"cpu", CheckCPU, svc(nil), "", report.StatusPass, "cpu_limit=1"},
		{"no cpu", CheckCPU, svc(func(w *swarm.Workload) { w.NanoCPUs = 0 }), "", report.StatusWarn, "no CPU limit"},
		{"no cpu is not 5.11", CheckMemory, svc(func(w *swarm.Workload) { w.NanoCPUs = 0 }), "", report.StatusPass, ""},
		{"limits: memory and cpu", CheckLimits, svc(nil), "", report.StatusPass, "memory and CPU limited"},
		{"limits: no memory fails, naming it", CheckLimits, svc(func(w *swarm.Workload) { w.MemoryLimit = 0 }), "", report.StatusFail, "no memory limit"},
		{"limits: no cpu warns, naming it", CheckLimits, svc(func(w *swarm.Workload) { w.NanoCPUs = 0 }), "", report.StatusWarn, "no CPU limit"},
		{"limits: no pids limit is not limits", CheckLimits, svc(func(w *swarm.Workload) { w.PidsLimit = 0 }), "", report.StatusPass, ""},
		{"pids", CheckPids, svc(nil), "", report.StatusPass, "pids_limit=50"},
		{"no pids", CheckPids, svc(func(w *swarm.Workload) { w.PidsLimit = 0 }), "", report.StatusWarn, "no pids limit"},
		{"no ports", CheckPorts, svc(nil), "", report.StatusPass, "published_ports=none"},
		{"high port", CheckPorts, svc(func(w *swarm.Workload) {
			w.Ports = []swarm.WorkloadPort{{Protocol: "tcp", Target: 80, Published: 8080, Mode: "ingress"}}
		}),
			"", report.StatusPass, "8080->80/tcp ingress"},
		{"engine-chosen port", CheckPorts, svc(func(w *swarm.Workload) { w.Ports = []swarm.WorkloadPort{{Target: 80}} }), "", report.StatusPass, "(any)->80/tcp"},
		{"port 80", CheckPorts, svc(func(w *swarm.Workload) {
			w.Ports = []swarm.WorkloadPort{{Protocol: "tcp", Target: 8080, Published: 8443, Mode: "ingress"}, {Protocol: "udp", Target: 53, Published: 53, Mode: "host"}}
		}), "", report.StatusWarn, "below 1024 on the nodes: 53->53/udp host"},
		{"port 1023", CheckPorts, svc(func(w *swarm.Workload) { w.Ports = []swarm.WorkloadPort{{Target: 1, Published: 1023}} }), "", report.StatusWarn, "1023->1"},
		{"port 1024", CheckPorts, svc(func(w *swarm.Workload) { w.Ports = []swarm.WorkloadPort{{Target: 1, Published: 1024}} }), "", report.StatusPass, "1024->1"},
		{"restart 3", CheckRestart, svc(nil), "", report.StatusPass, "restart_max_attempts=3"},
		{"restart 5", CheckRestart, svc(func(w *swarm.Workload) { w.RestartMaxAttempts = 5 }), "", report.StatusPass, "at most 5 times"},
		{"restart 6", CheckRestart, svc(func(w *swarm.Workload) { w.RestartMaxAttempts = 6 }), "", report.StatusWarn, "up to 6 times"},
		{"restart unlimited", CheckRestart, svc(func(w *swarm.Workload) { w.RestartCondition, w.RestartMaxAttempts = "any", 0 }), "", report.StatusWarn,
			"without limit"},
		{"no restart policy", CheckRestart, svc(func(w *swarm.Workload) { w.RestartCondition, w.RestartMaxAttempts = "", 0 }), "", report.StatusWarn,
			"engine's default"},
		{"never restarted", CheckRestart, svc(func(w *swarm.Workload) { w.RestartCondition, w.RestartMaxAttempts = "none", 0 }), "", report.StatusPass, "not restarted"},
		{"private propagation", CheckPropagation, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/srv", Target: "/srv", Propagation: "rslave"}}
		}), "", report.StatusPass, "/srv:/srv:rslave"},
		{"rshared", CheckPropagation, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/a", Target: "/a"}, {Type: "bind", Source: "/srv", Target: "/srv", Propagation: "rshared"}}
		}), "", report.StatusWarn, "shared propagation (mounts made in the container reach the host): /srv:/srv:rshared"},
		{"shared", CheckPropagation, svc(func(w *swarm.Workload) {
			w.Mounts = []swarm.WorkloadMount{{Type: "bind", Source: "/srv", Target: "/srv", Propagation: "shared"}}
		}), "", report.StatusWarn, "/srv:/srv:shared"},
		{"spec health", CheckHealthcheck, svc(nil), "", report.StatusPass, "in the service spec"},
		{"spec health off", CheckHealthcheck, svc(func(w *swarm.Workload) { w.Healthcheck = swarm.HealthDisabled }), "", report.StatusWarn, "disables"},
		{"image health", CheckHealthcheck, svc(func(w *swarm.Workload) { w.Healthcheck, w.Image = "", "app:1" }), "", report.StatusPass,
			"image's config"},
		{"no health", CheckHealthcheck, svc(func(w *swarm.Workload) { w.Healthcheck, w.Image = "", "root:1" }), "", report.StatusWarn,
			"no health check in the service spec or the image"},
		{"image disables health", CheckHealthcheck, svc(func(w *swarm.Workload) { w.Healthcheck, w.Image = "", "nohealth:1" }), "", report.StatusWarn,
			"the image disables it"},
		{"image not on the manager", CheckHealthcheck, svc(func(w *swarm.Workload) { w.Healthcheck, w.Image = "", "gone:1" }), "", report.StatusWarn,
			"not determinable: no health check in the spec and the manager swarmguard reads does not have the image"},
		{"image unreadable", CheckHealthcheck, svc(func(w *swarm.Workload) { w.Healthcheck, w.Image = "", "broken:1" }), "", report.StatusWarn,
			"not determinable: no health check in the spec and the image could not be read: inspecting image broken:1: context deadline exceeded"},
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
		{"former limits check", map[string]string{swarm.LabelWorkloadExempt: "limits", swarm.LabelWorkloadExemptReason: "batch"},
			"workloads.cpu,workloads.limits,workloads.memory,workloads.pids", ""},
		{"one of the split checks", map[string]string{swarm.LabelWorkloadExempt: "docker-socket,workloads.pids", swarm.LabelWorkloadExemptReason: "agent"},
			"workloads.docker-socket,workloads.pids", ""},
	} {
		checks, _, problem := exemptions(tc.labels)
		if strings.Join(checks, ",") != tc.checks || (tc.problem == "") != (problem == "") || !strings.Contains(problem, tc.problem) {
			t.Errorf("exemptions(%s) = %v, %q; want %s, %q", tc.name, checks, problem, tc.checks, tc.problem)
		}
	}
}

// imageEngine answers image configs by reference and records which it was asked for.
type imageEngine struct {
	services []swarm.Workload
	images   map[string]swarm.ImageConfig
	asked    []string
}

func (f *imageEngine) Workloads(context.Context) ([]swarm.Workload, error) { return f.services, nil }
func (f *imageEngine) APIVersion() string                                  { return "1.56" }
func (f *imageEngine) ImageConfig(_ context.Context, ref string) (swarm.ImageConfig, bool, error) {
	f.asked = append(f.asked, ref)
	if ref == "broken:1" {
		return swarm.ImageConfig{}, false, errors.New("inspecting image broken:1: connection reset")
	}
	c, ok := f.images[ref]
	return c, ok, nil
}

// Observe reads an image's config once, and only for services that take their user or health check from it.
func TestObserveReadsImages(t *testing.T) {
	eng := &imageEngine{images: map[string]swarm.ImageConfig{"nouser:1": {User: "app"}, "nohealth:1": {Healthcheck: swarm.HealthSet}}}
	eng.services = []swarm.Workload{
		svc(func(w *swarm.Workload) { w.Name, w.Image = "both-in-spec", "spec:1" }),
		svc(func(w *swarm.Workload) { w.Name, w.Image, w.User = "no-user", "nouser:1", "" }),
		svc(func(w *swarm.Workload) {
			w.Name, w.Image, w.Healthcheck = "no-health", "nohealth:1", swarm.HealthInherit
		}),
		svc(func(w *swarm.Workload) {
			w.Name, w.Image, w.Healthcheck = "no-health-again", "nohealth:1", swarm.HealthInherit
		}),
		svc(func(w *swarm.Workload) {
			w.Name, w.Image, w.Healthcheck = "unreadable", "broken:1", swarm.HealthInherit
		}),
	}
	o := Observe(t.Context(), eng)
	if got := strings.Join(eng.asked, ","); got != "nouser:1,nohealth:1,broken:1" {
		t.Errorf("Observe asked for images %s; want nouser:1,nohealth:1,broken:1 (once each, none for a spec with user and health check)", got)
	}
	vs, err := Verdicts(o, config.WorkloadsConfig{Mode: config.ModeAudit})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Service.Name == "no-health" && v.Findings[CheckHealthcheck].Status != report.StatusPass {
			t.Errorf("healthcheck of %s = %+v; want pass from the image", v.Service.Name, v.Findings[CheckHealthcheck])
		}
		if f := v.Findings[CheckHealthcheck]; v.Service.Name == "unreadable" && (f.Status != report.StatusWarn || !strings.Contains(f.Note, "could not be read: inspecting image broken:1")) {
			t.Errorf("healthcheck of %s = %+v; want warn saying the image could not be read", v.Service.Name, f)
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
func (f *fakeEngine) ImageConfig(context.Context, string) (swarm.ImageConfig, bool, error) {
	return swarm.ImageConfig{}, false, nil
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
