// Package operator is swarmguard's controller runtime: the lease, the schedules and reconcile loops, the
// HTTP endpoints (health, readiness, metrics, status), the metrics registry, the audit trail and webhooks,
// and what a pass is given (Task, TaskEnv) and records with (LedgerStore, Record, the credential clock). It
// knows no domain: cmd hands it an explicit, ordered list of tasks built by the domain packages under
// operator/ (tokens, autolock, certs, networks, secretsync). It reads no flags, environment or files.
package operator
