// Package operator is swarmguard's controller and the home of its configuration model: the lease, the
// schedules, the reconcile loops of each domain, the HTTP endpoints (health, readiness, metrics), the audit
// trail, and the status and report models. It connects the swarm, secrets and pki packages, which never
// import it. It reads no flags, environment or files: cmd hands it a Config and built clients.
package operator
