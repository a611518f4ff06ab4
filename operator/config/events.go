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
	// EventFinding: a check loop sees a critical finding it did not see on its previous pass (a node
	// certificate that lapses while its node is down, an expired certificate, an unreadable root CA). It is
	// sent again only after it cleared and came back; a new holder sends what it finds once more.
	EventFinding = "finding"
	// EventCertIssued: the external CA bridge answered a sign request: issued (result ok, with the node, its
	// role, the serial and Vault's request ID), refused or failed.
	EventCertIssued = "cert_issued"
)

// AuditEvents lists every event name.
var AuditEvents = []string{EventAction, EventLeaseAcquired, EventLeaseLost, EventLeaseReleased, EventReconcileFailed, EventFinding, EventCertIssued}
