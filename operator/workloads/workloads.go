package workloads

import (
	"context"
	"fmt"
	"maps"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// The checks of the domain, each judged per service.
const (
	CheckUser         = "workloads.user"
	CheckCapabilities = "workloads.capabilities"
	CheckHostMounts   = "workloads.host-mounts"
	CheckDockerSocket = "workloads.docker-socket"
	CheckHostNetwork  = "workloads.host-network"
	CheckMemory       = "workloads.memory"
	CheckCPU          = "workloads.cpu"
	CheckPids         = "workloads.pids"
	// CheckLimits is memory and CPU together (CIS 5.11 and 5.12), the check earlier releases had: kept so
	// dashboards, alerts and exemptions that name it keep working; workloads.memory and workloads.cpu say
	// which of the two is missing.
	CheckLimits      = "workloads.limits"
	CheckReadOnly    = "workloads.read-only"
	CheckPrivileges  = "workloads.privileges"
	CheckPorts       = "workloads.ports"
	CheckRestart     = "workloads.restart"
	CheckPropagation = "workloads.propagation"
	CheckHealthcheck = "workloads.healthcheck"
	CheckImagePinned = "workloads.image-pinned"
	CheckSysctls     = "workloads.sysctls"
	CheckExemptions  = "workloads.exemptions"
)

// Checks are the per-service checks in report order (the exemptions check comes after them). Each judges
// one CIS recommendation (workloads.privileges: three, which enforcement mends together), so a report
// line says which recommendation a service misses.
var Checks = []string{CheckUser, CheckCapabilities, CheckHostMounts, CheckDockerSocket, CheckHostNetwork, CheckMemory,
	CheckCPU, CheckLimits, CheckPids, CheckReadOnly, CheckPrivileges, CheckPorts, CheckRestart, CheckPropagation, CheckHealthcheck,
	CheckImagePinned, CheckSysctls}

// formerChecks are check names of earlier releases that exemption labels may still name, and the checks
// each now stands for: an exemption from workloads.limits covers memory, CPU and pids, as it did.
var formerChecks = map[string][]string{CheckLimits: {CheckLimits, CheckMemory, CheckCPU, CheckPids}}

// PrivilegedPortMax is the highest privileged port (CIS 5.8): ports below 1024 need root to bind.
const PrivilegedPortMax = 1023

// RestartMaxAttemptsMax is the most restart attempts CIS 5.15 accepts ("on-failure:5").
const RestartMaxAttemptsMax = 5

// Profiles by role, after the write-up's "security by container role" table.
const (
	// ProfileGeneral (the default): web servers, API services. Non-root, --cap-drop ALL, limits, read-only.
	ProfileGeneral = "general"
	// ProfileSystem: high-level system services (sshd, cron, syslogd, agents) that may run as root and keep
	// the default capability set and a writable root; dangerous capabilities, host mounts and unconfined
	// privileges are still findings.
	ProfileSystem = "system"
)

// DangerousCapabilities are the capabilities whose addition gives a container powers over the host or
// other containers (CAP_ prefix dropped). ALL is every one of them.
var DangerousCapabilities = []string{"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH",
	"SYS_RAWIO", "SYS_BOOT", "SYS_TIME", "SYS_RESOURCE", "MAC_ADMIN", "MAC_OVERRIDE", "BPF", "PERFMON",
	"SYSLOG", "LINUX_IMMUTABLE", "NET_BROADCAST", "SETFCAP", "AUDIT_CONTROL", "IPC_OWNER", "WAKE_ALARM", "BLOCK_SUSPEND"}

// dockerSockets are host paths of the Docker and swarm control sockets: a container that can reach one
// is root on the host ("equivalent to host root") whether the mount is read-only or not.
var dockerSockets = []string{"/var/run/docker.sock", "/run/docker.sock", "/var/run/docker/swarm/control.sock",
	"/run/docker/swarm/control.sock", "/run/containerd/containerd.sock", "/var/run/containerd/containerd.sock"}

// sensitiveDirs are host directories that must not be bind-mounted (CIS 5.6's list plus the engine's data
// root and its run directory); a mount of one of them or of anything below it counts. "/" counts only as
// itself.
var sensitiveDirs = []string{"/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/var/lib/docker", "/var/run/docker", "/run/docker"}

// Image is an image's config (user, health check) as the engine swarmguard talks to (a manager) has it.
type Image struct {
	swarm.ImageConfig
	Found bool // false: this engine does not have the image
	Err   error
}

// Observation is what the domain reads: every service's container hardening, the Engine API version in
// use, and the config of the images the services run (where the manager has them).
type Observation struct {
	Services    []swarm.Workload
	ServicesErr error
	APIVersion  string
	Images      map[string]Image
}

// ObserveEngine is what Observe reads. *swarm.Client satisfies it.
type ObserveEngine interface {
	Workloads(ctx context.Context) ([]swarm.Workload, error)
	ImageConfig(ctx context.Context, ref string) (swarm.ImageConfig, bool, error)
	APIVersion() string
}

var _ ObserveEngine = (*swarm.Client)(nil)

// Observe reads the services, then the config of each image a service takes its user or its health check
// from (no user, or no health check, in the spec).
func Observe(ctx context.Context, eng ObserveEngine) Observation {
	var o Observation
	o.Services, o.ServicesErr = eng.Workloads(ctx)
	o.APIVersion = eng.APIVersion()
	o.Images = map[string]Image{}
	for _, s := range o.Services {
		if !s.Container || s.Image == "" || (s.User != "" && s.Healthcheck != swarm.HealthInherit) {
			continue
		}
		if _, done := o.Images[s.Image]; done {
			continue
		}
		cfg, found, err := eng.ImageConfig(ctx, s.Image)
		o.Images[s.Image] = Image{ImageConfig: cfg, Found: found, Err: err}
	}
	return o
}

// PrivilegesSettable says whether the engine keeps Seccomp, AppArmor and NoNewPrivileges in a service spec.
func (o Observation) PrivilegesSettable() bool {
	return swarm.APIAtLeast(o.APIVersion, swarm.PrivilegesMinAPI)
}

// Finding is one check's verdict on one service.
type Finding struct {
	Status report.CheckStatus
	Facts  map[string]string
	Note   string
	// Exempt is true when a valid exemption turned a finding into info; Would is the status it would have.
	Exempt bool
	Would  report.CheckStatus
	// Fix is what enforcement would set to mend the finding (workloads.privileges only; zero: nothing it
	// can set). The report shows it as fact FactEnforceable and PlanEnforcement acts on it: one decision.
	Fix swarm.Hardening
}

// FactEnforceable is the workloads.privileges fact naming what enforcement would set ("none": nothing).
const FactEnforceable = "enforceable"

// describeFix names what a hardening sets, "none" when it sets nothing.
func describeFix(h swarm.Hardening) string {
	var out []string
	if h.NoNewPrivileges {
		out = append(out, "no-new-privileges=true")
	}
	if h.SeccompDefault {
		out = append(out, "seccomp=default")
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// Verdict is one service judged by every check.
type Verdict struct {
	Service  swarm.Workload
	Profile  string
	Findings map[string]Finding // by check ID
	// Exempt are the checks the service is validly exempt from; Reason is the label's reason.
	Exempt []string
	Reason string
	// ExemptProblem is set when the exemption labels do not hold (no reason, unknown check names).
	ExemptProblem string
	// Enforce says the service opted in to enforcement (label swarmguard.workloads.enforce=true).
	Enforce bool
}

// Verdicts is the one decision of the domain: each service judged, or the read error that leaves them
// undecided. The report's checks, the metrics and the enforcement plan come from it.
func Verdicts(o Observation, c config.WorkloadsConfig) ([]Verdict, error) {
	if o.ServicesErr != nil {
		return nil, o.ServicesErr
	}
	out := make([]Verdict, 0, len(o.Services))
	for _, s := range o.Services {
		out = append(out, judge(s, o, c))
	}
	return out, nil
}

func judge(s swarm.Workload, o Observation, c config.WorkloadsConfig) Verdict {
	v := Verdict{Service: s, Profile: ProfileGeneral, Findings: map[string]Finding{},
		Enforce: strings.EqualFold(s.Labels[swarm.LabelWorkloadEnforce], "true")}
	profileProblem := ""
	switch p := s.Labels[swarm.LabelWorkloadProfile]; p {
	case "", ProfileGeneral:
	case ProfileSystem:
		v.Profile = ProfileSystem
	default:
		profileProblem = fmt.Sprintf("label %s=%q is not a profile (general or system); judged as general", swarm.LabelWorkloadProfile, p)
	}
	v.Exempt, v.Reason, v.ExemptProblem = exemptions(s.Labels)
	if profileProblem != "" {
		v.ExemptProblem = strings.TrimPrefix(v.ExemptProblem+"; "+profileProblem, "; ")
	}
	if !s.Container {
		for _, id := range Checks {
			v.Findings[id] = Finding{Status: report.StatusInfo, Note: "plugin service: no container spec to judge"}
		}
		return v
	}
	sys := v.Profile == ProfileSystem
	img := o.Images[s.Image]
	v.Findings[CheckUser] = judgeUser(s, img, sys)
	v.Findings[CheckCapabilities] = judgeCapabilities(s, sys)
	v.Findings[CheckHostMounts] = judgeHostMounts(s)
	v.Findings[CheckDockerSocket] = judgeDockerSocket(s)
	v.Findings[CheckHostNetwork] = judgeHostNetwork(s, sys)
	v.Findings[CheckMemory] = judgeMemory(s)
	v.Findings[CheckCPU] = judgeCPU(s)
	v.Findings[CheckLimits] = judgeLimits(v.Findings[CheckMemory], v.Findings[CheckCPU])
	v.Findings[CheckPids] = judgePids(s)
	v.Findings[CheckReadOnly] = judgeReadOnly(s, sys)
	v.Findings[CheckPrivileges] = judgePrivileges(s, o)
	v.Findings[CheckPorts] = judgePorts(s)
	v.Findings[CheckRestart] = judgeRestart(s)
	v.Findings[CheckPropagation] = judgePropagation(s)
	v.Findings[CheckHealthcheck] = judgeHealthcheck(s, img)
	v.Findings[CheckImagePinned] = judgeImage(s, c.AllowedRegistries)
	v.Findings[CheckSysctls] = judgeSysctls(s)
	for _, id := range v.Exempt {
		f := v.Findings[id]
		if f.Status == report.StatusPass || f.Status == report.StatusInfo {
			continue
		}
		f.Exempt, f.Would = true, f.Status
		f.Note = fmt.Sprintf("exempt (%s): %s; without the exemption: %s, %s", swarm.LabelWorkloadExempt, v.Reason, f.Status, f.Note)
		f.Status = report.StatusInfo
		v.Findings[id] = f
	}
	if sys {
		for id, f := range v.Findings {
			if f.Facts == nil {
				f.Facts = map[string]string{}
			}
			f.Facts["profile"] = ProfileSystem
			v.Findings[id] = f
		}
	}
	return v
}

// exemptions reads the exemption labels: the checks named (with or without the "workloads." prefix) and
// the reason. Without a reason, or naming a check that does not exist, the exemption does not hold.
func exemptions(labels map[string]string) (checks []string, reason, problem string) {
	raw, ok := labels[swarm.LabelWorkloadExempt]
	if !ok {
		return nil, "", ""
	}
	reason = strings.TrimSpace(labels[swarm.LabelWorkloadExemptReason])
	var unknown []string
	for _, name := range strings.Split(raw, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		id := name
		if !strings.HasPrefix(id, "workloads.") {
			id = "workloads." + id
		}
		if now, ok := formerChecks[id]; ok {
			checks = append(checks, now...)
			continue
		}
		if !slices.Contains(Checks, id) {
			unknown = append(unknown, name)
			continue
		}
		checks = append(checks, id)
	}
	var probs []string
	if reason == "" {
		probs = append(probs, fmt.Sprintf("label %s=%q has no %s label: the exemption is not valid", swarm.LabelWorkloadExempt, raw, swarm.LabelWorkloadExemptReason))
	}
	if len(unknown) > 0 {
		probs = append(probs, fmt.Sprintf("label %s names no such check: %s (checks: %s)", swarm.LabelWorkloadExempt, strings.Join(unknown, ", "), shortNames()))
	}
	if len(checks) == 0 && len(unknown) == 0 {
		probs = append(probs, fmt.Sprintf("label %s names no check", swarm.LabelWorkloadExempt))
	}
	if reason == "" {
		return nil, "", strings.Join(probs, "; ")
	}
	sort.Strings(checks)
	return slices.Compact(checks), reason, strings.Join(probs, "; ")
}

func shortNames() string {
	out := make([]string, len(Checks))
	for i, c := range Checks {
		out[i] = strings.TrimPrefix(c, "workloads.")
	}
	return strings.Join(out, ", ")
}

// isRootUser says whether a user spec (name or uid, with an optional :group) is root.
func isRootUser(u string) bool {
	name, _, _ := strings.Cut(strings.TrimSpace(u), ":")
	return name == "" || name == "root" || name == "0"
}

func judgeUser(s swarm.Workload, img Image, sys bool) Finding {
	f := Finding{Facts: map[string]string{"spec_user": orNone(s.User), "image": s.Image}}
	root := false
	switch {
	case s.User != "":
		root = isRootUser(s.User)
		f.Note = "user " + s.User + " from the service spec"
	case img.Err != nil:
		f.Status, f.Note = report.StatusWarn, "not determinable: no user in the spec and the image could not be read: "+img.Err.Error()
		return f
	case !img.Found:
		f.Facts["image_user"] = "unknown"
		f.Status, f.Note = report.StatusWarn, "not determinable: no user in the spec and the manager swarmguard reads does not have the image"
		return f
	default:
		f.Facts["image_user"] = orNone(img.User)
		root = isRootUser(img.User)
		f.Note = "no user in the spec; the image's config user is " + orNone(img.User)
	}
	switch {
	case !root:
		f.Status = report.StatusPass
	case sys:
		f.Status, f.Note = report.StatusInfo, "runs as root, allowed by profile system ("+f.Note+")"
	default:
		f.Status, f.Note = report.StatusFail, "runs as root ("+f.Note+")"
	}
	return f
}

func normCap(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

func judgeCapabilities(s swarm.Workload, sys bool) Finding {
	f := Finding{Facts: map[string]string{"cap_add": report.ListOrNone(s.CapAdd), "cap_drop": report.ListOrNone(s.CapDrop)}}
	var danger []string
	for _, c := range s.CapAdd {
		if slices.Contains(DangerousCapabilities, normCap(c)) {
			danger = append(danger, normCap(c))
		}
	}
	dropAll := slices.ContainsFunc(s.CapDrop, func(c string) bool { return normCap(c) == "ALL" })
	switch {
	case len(danger) > 0:
		f.Status, f.Note = report.StatusFail, "adds dangerous capabilities: "+strings.Join(danger, ", ")
	case !dropAll && !sys:
		f.Status, f.Note = report.StatusWarn, "keeps the engine's default capability set (no --cap-drop ALL)"
	case !dropAll:
		f.Status, f.Note = report.StatusInfo, "keeps the engine's default capability set, allowed by profile system"
	default:
		f.Status, f.Note = report.StatusPass, "drops ALL"
		if len(s.CapAdd) > 0 {
			f.Note += ", adds back " + strings.Join(s.CapAdd, ", ")
		}
	}
	return f
}

// isDockerSocket says whether a mount is a bind mount of the Docker, swarm control or containerd socket.
func isDockerSocket(m swarm.WorkloadMount) bool {
	src := path.Clean(m.Source)
	return m.Type == "bind" && (slices.Contains(dockerSockets, src) || strings.HasSuffix(src, "/docker.sock"))
}

// hostMountProblem says how bad a bind mount's source is under CIS 5.6: fail, warn, or "" when it is not a
// sensitive host directory. The Docker socket fails here too, as it always did (root on the host, read-only
// or not); workloads.docker-socket judges it on its own as CIS 5.32, so a fail there names the socket alone.
func hostMountProblem(m swarm.WorkloadMount) (report.CheckStatus, string) {
	if m.Type != "bind" {
		return "", ""
	}
	if isDockerSocket(m) {
		return report.StatusFail, "the Docker socket: equivalent to root on the host, read-only or not (also workloads.docker-socket, CIS 5.32)"
	}
	src := path.Clean(m.Source)
	sensitive := src == "/"
	for _, d := range sensitiveDirs {
		if src == d || strings.HasPrefix(src, d+"/") {
			sensitive = true
		}
	}
	switch {
	case !sensitive:
		return "", ""
	case m.ReadOnly:
		return report.StatusWarn, "a sensitive host directory, read-only"
	default:
		return report.StatusFail, "a sensitive host directory, read-write"
	}
}

func judgeHostMounts(s swarm.Workload) Finding {
	f := Finding{Status: report.StatusPass, Facts: map[string]string{}}
	var binds, notes []string
	for _, m := range s.Mounts {
		if m.Type == "bind" {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			binds = append(binds, fmt.Sprintf("%s:%s:%s", m.Source, m.Target, mode))
		}
		st, why := hostMountProblem(m)
		if st == "" {
			continue
		}
		f.Status = report.Worse(f.Status, st)
		notes = append(notes, fmt.Sprintf("%s (%s)", m.Source, why))
	}
	f.Facts["bind_mounts"] = report.ListOrNone(binds)
	if len(notes) == 0 {
		f.Note = "no sensitive host directory is mounted"
	} else {
		f.Note = "mounts " + strings.Join(notes, "; ")
	}
	return f
}

func judgeDockerSocket(s swarm.Workload) Finding {
	var socks []string
	for _, m := range s.Mounts {
		if isDockerSocket(m) {
			mode := "rw"
			if m.ReadOnly {
				mode = "ro"
			}
			socks = append(socks, fmt.Sprintf("%s:%s:%s", m.Source, m.Target, mode))
		}
	}
	f := Finding{Status: report.StatusPass, Facts: map[string]string{"socket_mounts": report.ListOrNone(socks)}, Note: "no engine socket is mounted"}
	if len(socks) > 0 {
		f.Status = report.StatusFail
		f.Note = "mounts " + strings.Join(socks, ", ") + ": the engine's socket is equivalent to root on the host, read-only or not"
	}
	return f
}

func judgeHostNetwork(s swarm.Workload, sys bool) Finding {
	f := Finding{Facts: map[string]string{"host_network": strconv.FormatBool(s.HostNetwork)}}
	switch {
	case !s.HostNetwork:
		f.Status = report.StatusPass
	case sys:
		f.Status, f.Note = report.StatusWarn, "on the host's network namespace (profile system)"
	default:
		f.Status, f.Note = report.StatusFail, "on the host's network namespace: no network isolation"
	}
	return f
}

func judgeMemory(s swarm.Workload) Finding {
	f := Finding{Facts: map[string]string{"memory_limit": bytesOrNone(s.MemoryLimit)}}
	if s.MemoryLimit <= 0 {
		f.Status, f.Note = report.StatusFail, "no memory limit: one service can take the node's memory"
	} else {
		f.Status, f.Note = report.StatusPass, "memory limited to "+bytesOrNone(s.MemoryLimit)
	}
	return f
}

func judgeCPU(s swarm.Workload) Finding {
	f := Finding{Facts: map[string]string{"cpu_limit": cpusOrNone(s.NanoCPUs)}}
	if s.NanoCPUs <= 0 {
		f.Status, f.Note = report.StatusWarn, "no CPU limit"
	} else {
		f.Status, f.Note = report.StatusPass, "CPU limited to "+cpusOrNone(s.NanoCPUs)
	}
	return f
}

// judgeLimits is workloads.limits from the memory and CPU findings: the worse of the two, naming what is
// missing.
func judgeLimits(mem, cpu Finding) Finding {
	f := Finding{Status: report.Worse(mem.Status, cpu.Status), Facts: map[string]string{}}
	var missing []string
	for _, x := range []Finding{mem, cpu} {
		maps.Copy(f.Facts, x.Facts)
		if x.Status != report.StatusPass {
			missing = append(missing, x.Note)
		}
	}
	if len(missing) == 0 {
		f.Note = "memory and CPU limited"
	} else {
		f.Note = strings.Join(missing, "; ") + " (workloads.memory, workloads.cpu)"
	}
	return f
}

func judgePids(s swarm.Workload) Finding {
	f := Finding{Facts: map[string]string{"pids_limit": intOrNone(s.PidsLimit)}}
	if s.PidsLimit <= 0 {
		f.Status, f.Note = report.StatusWarn, "no pids limit: a fork bomb in the container takes the node (--limit-pids, engines with API 1.41+)"
	} else {
		f.Status, f.Note = report.StatusPass, "at most "+intOrNone(s.PidsLimit)+" processes"
	}
	return f
}

func judgePorts(s swarm.Workload) Finding {
	var all, low []string
	for _, p := range s.Ports {
		d := fmt.Sprintf("%d->%d/%s %s", p.Published, p.Target, orDefaultTo(p.Protocol, "tcp"), orDefaultTo(p.Mode, "ingress"))
		if p.Published == 0 {
			d = fmt.Sprintf("(any)->%d/%s %s", p.Target, orDefaultTo(p.Protocol, "tcp"), orDefaultTo(p.Mode, "ingress"))
		}
		all = append(all, d)
		if p.Published > 0 && p.Published <= PrivilegedPortMax {
			low = append(low, d)
		}
	}
	f := Finding{Facts: map[string]string{"published_ports": report.ListOrNone(all)}}
	switch {
	case len(low) > 0:
		f.Status, f.Note = report.StatusWarn, "publishes privileged port(s) below 1024 on the nodes: "+strings.Join(low, ", ")
	case len(all) > 0:
		f.Status, f.Note = report.StatusPass, "publishes no port below 1024"
	default:
		f.Status, f.Note = report.StatusPass, "publishes no port"
	}
	return f
}

func judgeRestart(s swarm.Workload) Finding {
	cond := s.RestartCondition
	if cond == "" {
		cond = "any (no restart policy in the spec: the engine's default)"
	}
	attempts := "unlimited"
	if s.RestartMaxAttempts > 0 {
		attempts = strconv.FormatUint(s.RestartMaxAttempts, 10)
	}
	f := Finding{Facts: map[string]string{"restart_condition": cond, "restart_max_attempts": attempts}}
	switch {
	case s.RestartCondition == "none":
		f.Status, f.Note = report.StatusPass, "tasks are not restarted"
	case s.RestartMaxAttempts == 0:
		f.Status, f.Note = report.StatusWarn, "restarts a failing task without limit (--restart-max-attempts 5 or fewer)"
	case s.RestartMaxAttempts > RestartMaxAttemptsMax:
		f.Status, f.Note = report.StatusWarn, fmt.Sprintf("restarts a failing task up to %d times; at most %d recommended", s.RestartMaxAttempts, RestartMaxAttemptsMax)
	default:
		f.Status, f.Note = report.StatusPass, "restarts a failing task at most "+attempts+" times"
	}
	return f
}

func judgePropagation(s swarm.Workload) Finding {
	var set, shared []string
	for _, m := range s.Mounts {
		if m.Propagation == "" {
			continue
		}
		d := m.Source + ":" + m.Target + ":" + m.Propagation
		set = append(set, d)
		if m.Propagation == "shared" || m.Propagation == "rshared" {
			shared = append(shared, d)
		}
	}
	f := Finding{Facts: map[string]string{"bind_propagation": report.ListOrNone(set)}}
	if len(shared) > 0 {
		f.Status, f.Note = report.StatusWarn, "mounts with shared propagation (mounts made in the container reach the host): "+strings.Join(shared, ", ")
	} else {
		f.Status, f.Note = report.StatusPass, "no mount with shared propagation"
	}
	return f
}

func judgeHealthcheck(s swarm.Workload, img Image) Finding {
	f := Finding{Facts: map[string]string{"spec_healthcheck": orDefaultTo(s.Healthcheck, "none (inherits the image's)"), "image": s.Image}}
	switch s.Healthcheck {
	case swarm.HealthSet:
		f.Status, f.Note = report.StatusPass, "health check in the service spec"
		return f
	case swarm.HealthDisabled:
		f.Status, f.Note = report.StatusWarn, "the service spec disables the health check (--no-healthcheck)"
		return f
	}
	switch {
	case img.Err != nil:
		f.Facts["image_healthcheck"] = "unknown"
		f.Status, f.Note = report.StatusWarn, "not determinable: no health check in the spec and the image could not be read: "+img.Err.Error()
	case !img.Found:
		f.Facts["image_healthcheck"] = "unknown"
		f.Status, f.Note = report.StatusWarn, "not determinable: no health check in the spec and the manager swarmguard reads does not have the image"
	case img.Healthcheck == swarm.HealthSet:
		f.Facts["image_healthcheck"] = swarm.HealthSet
		f.Status, f.Note = report.StatusPass, "health check from the image's config"
	case img.Healthcheck == swarm.HealthDisabled:
		f.Facts["image_healthcheck"] = swarm.HealthDisabled
		f.Status, f.Note = report.StatusWarn, "no health check: none in the spec and the image disables it"
	default:
		f.Facts["image_healthcheck"] = "none"
		f.Status, f.Note = report.StatusWarn, "no health check in the service spec or the image (--health-cmd)"
	}
	return f
}

func judgeReadOnly(s swarm.Workload, sys bool) Finding {
	f := Finding{Facts: map[string]string{"read_only": strconv.FormatBool(s.ReadOnly)}}
	switch {
	case s.ReadOnly:
		f.Status = report.StatusPass
	case sys:
		f.Status, f.Note = report.StatusInfo, "writable root file system, allowed by profile system"
	default:
		f.Status, f.Note = report.StatusWarn, "writable root file system (no --read-only)"
	}
	return f
}

func judgePrivileges(s swarm.Workload, o Observation) Finding {
	f := Finding{Facts: map[string]string{"api_version": report.OrUnknown(o.APIVersion)}}
	if !o.PrivilegesSettable() {
		f.Status = report.StatusInfo
		f.Note = fmt.Sprintf("not settable on this engine: seccomp, AppArmor and no-new-privileges are in a service spec from API %s (this engine speaks %s)",
			swarm.PrivilegesMinAPI, report.OrUnknown(o.APIVersion))
		return f
	}
	f.Facts["seccomp"] = orDefault(s.Seccomp)
	f.Facts["apparmor"] = orDefault(s.AppArmor)
	f.Facts["no_new_privileges"] = strconv.FormatBool(s.NoNewPrivileges)
	var fails, warns []string
	if s.Seccomp == "unconfined" {
		fails = append(fails, "seccomp unconfined")
	}
	if s.AppArmor == "disabled" || s.AppArmor == "unconfined" {
		fails = append(fails, "AppArmor "+s.AppArmor)
	}
	if !s.NoNewPrivileges {
		warns = append(warns, "no no-new-privileges")
	}
	f.Fix = swarm.Hardening{NoNewPrivileges: !s.NoNewPrivileges, SeccompDefault: s.Seccomp == "unconfined"}
	f.Facts[FactEnforceable] = describeFix(f.Fix)
	switch {
	case len(fails) > 0:
		f.Status, f.Note = report.StatusFail, strings.Join(append(fails, warns...), ", ")
		if s.AppArmor == "disabled" || s.AppArmor == "unconfined" {
			f.Note += " (enforcement does not change AppArmor)"
		}
	case len(warns) > 0:
		f.Status, f.Note = report.StatusWarn, strings.Join(warns, ", ")
	default:
		f.Status, f.Note = report.StatusPass, "seccomp and AppArmor confined, no-new-privileges"
	}
	return f
}

// imageRegistry is the registry of an image reference as the engine resolves it: the first path part
// when it looks like a host (a dot, a port, or localhost), else docker.io.
func imageRegistry(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// allowedBy says whether ref comes from one of the allowed registries (host, or host/path prefix).
func allowedBy(ref string, allowed []string) bool {
	reg := imageRegistry(ref)
	full := ref
	switch {
	case reg == "docker.io" && !strings.Contains(ref, "/"):
		full = "docker.io/library/" + ref // an official image
	case reg == "docker.io" && !strings.HasPrefix(ref, "docker.io/"):
		full = "docker.io/" + ref
	}
	for _, a := range allowed {
		a = strings.TrimSuffix(a, "/")
		if reg == a || strings.HasPrefix(full, a+"/") {
			return true
		}
	}
	return false
}

func judgeImage(s swarm.Workload, allowed []string) Finding {
	f := Finding{Facts: map[string]string{"image": s.Image, "registry": imageRegistry(s.Image)}}
	pinned := strings.Contains(s.Image, "@sha256:")
	f.Facts["pinned"] = strconv.FormatBool(pinned)
	var notes []string
	f.Status = report.StatusPass
	if len(allowed) > 0 && !allowedBy(s.Image, allowed) {
		f.Status = report.StatusFail
		notes = append(notes, "registry "+imageRegistry(s.Image)+" is not in workloads.allowed_registries")
	}
	if !pinned {
		f.Status = report.Worse(f.Status, report.StatusWarn)
		notes = append(notes, "not pinned by digest (a tag can be moved to other content)")
	}
	f.Note = strings.Join(notes, "; ")
	if f.Note == "" {
		f.Note = "pinned by digest"
	}
	return f
}

func judgeSysctls(s swarm.Workload) Finding {
	if len(s.Sysctls) == 0 {
		return Finding{Status: report.StatusPass, Facts: map[string]string{"sysctls": "none"}}
	}
	keys := slices.Sorted(maps.Keys(s.Sysctls))
	kv := make([]string, len(keys))
	for i, k := range keys {
		kv[i] = k + "=" + s.Sysctls[k]
	}
	return Finding{Status: report.StatusInfo, Facts: map[string]string{"sysctls": strings.Join(kv, ", ")},
		Note: "sets namespaced kernel parameters; review that each is needed"}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func orDefaultTo(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}

func intOrNone(n int64) string {
	if n <= 0 {
		return "none"
	}
	return strconv.FormatInt(n, 10)
}

func bytesOrNone(n int64) string {
	if n <= 0 {
		return "none"
	}
	if n%(1<<20) == 0 {
		return strconv.FormatInt(n>>20, 10) + "MiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

func cpusOrNone(n int64) string {
	if n <= 0 {
		return "none"
	}
	return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64)
}
