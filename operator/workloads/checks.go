package workloads

import (
	"fmt"
	"strings"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
)

// checkDef is one check's fixed text. CIS numbers are those of CIS Docker Benchmark v1.6.0 as
// docker-bench-security (tests/4_container_images.sh, tests/5_container_runtime.sh, commit ff26d67)
// numbers them; each check judges one recommendation, except workloads.privileges, which names the other two
// in its title.
type checkDef struct {
	cis, title, remediation, passed string
}

var defs = map[string]checkDef{
	CheckUser: {"4.1", "Services do not run as root",
		"Set a non-root user: `docker service update --user 65534:65534 NAME` (or USER in the image), or label a " +
			"system service swarmguard.workloads.profile=system.", "run as a non-root user"},
	CheckCapabilities: {"5.4", "Capabilities are dropped and no dangerous one is added",
		"Use `--cap-drop ALL` and add back only what the service needs (`--cap-add NET_BIND_SERVICE`); never SYS_ADMIN, " +
			"NET_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH or ALL without an exemption with a reason.", "drop their capabilities"},
	CheckHostMounts: {"5.6", "No sensitive host directory is mounted",
		"Remove the bind mount (`docker service update --mount-rm TARGET NAME`) or mount it read-only; a service that " +
			"needs it needs an exemption with a reason.", "mount no sensitive host directory"},
	CheckDockerSocket: {"5.32", "The Docker socket is not mounted",
		"Remove the bind mount (`docker service update --mount-rm TARGET NAME`); a service that must manage the engine " +
			"needs an exemption with a reason and belongs on the managers only.", "mount no engine socket"},
	CheckHostNetwork: {"5.10", "Services do not share the host's network namespace",
		"Attach the service to an overlay network instead of `--network host`.", "use their own network namespace"},
	CheckMemory: {"5.11", "Memory is limited",
		"Set `--limit-memory` on the service.", "have a memory limit"},
	CheckCPU: {"5.12", "CPU is limited",
		"Set `--limit-cpu` on the service.", "have a CPU limit"},
	CheckLimits: {"5.11", "Memory and CPU are limited (CIS 5.11 and 5.12; workloads.memory and workloads.cpu judge each)",
		"Set `--limit-memory` and `--limit-cpu` on the service.", "have memory and CPU limits"},
	CheckPids: {"5.29", "The number of processes is limited",
		"Set `--limit-pids` on the service (engines with API 1.41+).", "have a pids limit"},
	CheckReadOnly: {"5.13", "The root file system is read-only",
		"Use `--read-only` and mount a tmpfs or volume where the service writes.", "have a read-only root"},
	CheckPrivileges: {"5.26", "No-new-privileges is set; seccomp (5.22) and AppArmor (5.2) are not unconfined",
		"Set Privileges.NoNewPrivileges and keep seccomp and AppArmor at the engine default in the service spec (engines " +
			"with API 1.44+); under workloads.mode enforce swarmguard sets them on services labelled swarmguard.workloads.enforce=true.", "are confined"},
	CheckPorts: {"5.8", "No privileged port is published",
		"Publish on a port of 1024 or above (`docker service update --publish-rm TARGET --publish-add 8080:TARGET NAME`) and put a " +
			"load balancer in front where port 80 or 443 is needed.", "publish no port below 1024"},
	CheckRestart: {"5.15", "Restart attempts are limited to 5",
		"Set `--restart-condition on-failure --restart-max-attempts 5` on the service.", "limit their restart attempts"},
	CheckPropagation: {"5.20", "No mount has shared propagation",
		"Mount without `bind-propagation=shared` or `rshared` (the default is rprivate).", "share no mount with the host"},
	CheckHealthcheck: {"5.27", "Container health is checked",
		"Set `--health-cmd` on the service, or a HEALTHCHECK in the image.", "have a health check"},
	CheckImagePinned: {"", "Images are pinned by digest and come from allowed registries",
		"Deploy by digest (`image@sha256:...`, what `docker service create` resolves by default) from a registry listed " +
			"in workloads.allowed_registries.", "are pinned by digest"},
	CheckSysctls: {"", "Kernel parameters set by services are reviewed",
		"Keep only the sysctls the service needs; swarm allows namespaced ones only.", "set no sysctls"},
}

// Section is the domain's part of the compliance report: one check per layer with one evidence per
// service, the exemptions check, and the findings chart.
func Section(o Observation, c config.WorkloadsConfig) report.Section {
	vs, err := Verdicts(o, c)
	sec := report.Section{Err: err}
	for _, id := range Checks {
		sec.Checks = append(sec.Checks, buildCheck(id, vs, err))
	}
	sec.Checks = append(sec.Checks, checkExemptions(vs, err))
	if err == nil {
		sec.Findings = FindingBars(vs)
	}
	return sec
}

func buildCheck(id string, vs []Verdict, err error) report.Check {
	d := defs[id]
	c := report.Check{ID: id, CIS: d.cis, Title: d.title, Remediation: d.remediation}
	if err != nil {
		return c.Errored(err)
	}
	c.Status = report.StatusPass
	var bad, exempt []string
	for _, v := range vs {
		f := v.Findings[id]
		e := report.Evidence{Subject: "service " + v.Service.Name, Status: f.Status, Facts: f.Facts, Note: f.Note}
		c.Evidence = append(c.Evidence, e)
		c.Status = report.Worse(c.Status, f.Status)
		if f.Status == report.StatusFail || f.Status == report.StatusWarn {
			bad = append(bad, v.Service.Name)
		}
		if f.Exempt {
			exempt = append(exempt, v.Service.Name)
		}
	}
	switch {
	case len(vs) == 0:
		c.Summary = "no services"
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "swarm", Note: "no services exist"})
	case len(bad) > 0:
		c.Summary = fmt.Sprintf("%d of %d service(s) do not: %s", len(bad), len(vs), strings.Join(bad, ", "))
	default:
		c.Summary = fmt.Sprintf("%d service(s) %s or are judged by their profile", len(vs), d.passed)
	}
	if len(exempt) > 0 {
		c.Summary += fmt.Sprintf("; exempt with a reason: %s", strings.Join(exempt, ", "))
	}
	return c
}

func checkExemptions(vs []Verdict, err error) report.Check {
	c := report.Check{ID: CheckExemptions, Title: "Workload exemptions and profiles are deliberate and explained",
		Remediation: "Give every swarmguard.workloads.exempt label a swarmguard.workloads.exempt.reason label, name only " +
			"existing checks (" + shortNames() + "), and use swarmguard.workloads.profile=general or system."}
	if err != nil {
		return c.Errored(err)
	}
	problems, exempt := 0, 0
	for _, v := range vs {
		facts := map[string]string{"profile": v.Profile}
		switch {
		case v.ExemptProblem != "":
			problems++
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "service " + v.Service.Name, Status: report.StatusFail, Facts: facts, Note: v.ExemptProblem})
		case len(v.Exempt) > 0:
			exempt++
			facts["exempt"], facts["exempt_reason"] = strings.Join(v.Exempt, ", "), v.Reason
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "service " + v.Service.Name, Status: report.StatusInfo, Facts: facts})
		case v.Profile == ProfileSystem:
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "service " + v.Service.Name, Status: report.StatusInfo, Facts: facts,
				Note: "profile system: root, default capabilities and a writable root are allowed"})
		}
	}
	switch {
	case problems > 0:
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("%d service(s) with exemption or profile labels that do not hold", problems)
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%d exempt service(s), each with a reason", exempt)
		if len(c.Evidence) == 0 {
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "swarm", Note: "no service is exempt or has a profile other than general"})
		}
	}
	return c
}

// FindingBars are the HTML chart's series: per check, how many services fail and warn.
func FindingBars(vs []Verdict) []report.FindingBar {
	out := make([]report.FindingBar, 0, len(Checks))
	for _, id := range Checks {
		b := report.FindingBar{Check: id}
		for _, v := range vs {
			switch v.Findings[id].Status {
			case report.StatusFail:
				b.Fail++
			case report.StatusWarn:
				b.Warn++
			}
		}
		b.Total = len(vs)
		out = append(out, b)
	}
	return out
}

// MetricFindings is the metric of the services each check finds wanting.
const MetricFindings = "swarmguard_workload_findings"

// Gauges are swarmguard_workload_findings{check,status} (services at fail and at warn) for every check;
// none when the services could not be read.
func Gauges(o Observation, c config.WorkloadsConfig) []report.Gauge {
	vs, err := Verdicts(o, c)
	if err != nil {
		return nil
	}
	var out []report.Gauge
	for _, b := range FindingBars(vs) {
		for _, s := range []struct {
			st string
			n  int
		}{{"fail", b.Fail}, {"warn", b.Warn}} {
			out = append(out, report.Gauge{Name: MetricFindings, Help: "Services a workload check finds at fail or warn.",
				Labels: map[string]string{"check": b.Check, "status": s.st}, Value: float64(s.n)})
		}
	}
	return out
}

// SectionGauges are the workload domain's gauges for one observation: its metrics (Gauges) and its report
// section's check statuses, what the workloads pass refreshes.
func SectionGauges(o Observation, c config.WorkloadsConfig) []report.Gauge {
	return append(Gauges(o, c), report.CheckGauges(Section(o, c).Checks)...)
}
