// Package workloads is the workload hardening domain: every service's container spec judged against the
// defence-in-depth layers of the Docker security write-up (non-root user, dropped capabilities, no host
// mounts of the Docker socket or system directories, resource limits, read-only root, seccomp / AppArmor /
// no-new-privileges, a pinned image from an allowed registry, no host network), by the service's security
// profile (role), with exemptions that carry a reason; and, under workloads.mode enforce, no-new-privileges
// and the default seccomp profile set on the opted-in services through the secret sync's rollout.
// Observe -> Decide (Verdicts, PlanEnforcement: pure) -> act (Task) -> record once; the report checks
// (Section) and the metrics (Gauges) are derived from the same verdicts.
package workloads
