package config

// Audit events: what an audit record is about. Webhooks subscribe to them by name (notify.webhooks[].events).
const (
	// EventAction is one action recorded in the ledger (a rotation, an adoption, a failed attempt).
	EventAction = "action"
	// EventLeaseAcquired: this replica became the actor.
	EventLeaseAcquired = "lease_acquired"
	// EventLeaseLost: this replica stopped being the actor without releasing (lapsed, taken over).
	EventLeaseLost = "lease_lost"
	// EventLeaseReleased: this replica released the lease (shutdown, end of a CLI action).
	EventLeaseReleased = "lease_released"
	// EventReconcileFailed: a pass of a loop failed; it is retried with backoff.
	EventReconcileFailed = "reconcile_failed"
)

// AuditEvents lists every event name.
var AuditEvents = []string{EventAction, EventLeaseAcquired, EventLeaseLost, EventLeaseReleased, EventReconcileFailed}
