package certs

import (
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// FindingAlerts turns the critical certificate findings of successive passes into audit records (event
// finding, so webhooks can subscribe to them): one record when a finding appears, none while it stays, one
// again if it clears and comes back. The findings come from the same pki.Evaluate the pass logs and the
// report renders. What was seen lives in memory: a replica that becomes the holder sends once what it finds.
type FindingAlerts struct {
	Policy pki.Policy
	// Actor is the records' actor (operator:<node ID>).
	Actor string
	// Record receives each record (audit.Auditor.Record; a nil Auditor's Record does nothing).
	Record func(audit.Record)
	// Now is the clock; the wall clock when nil.
	Now func() time.Time

	mu   sync.Mutex
	open map[string]bool // finding ID + node of the previous pass's critical findings
}

// Update judges inv and records the critical findings the previous call did not have. Its signature fits
// Task's onInventory.
func (a *FindingAlerts) Update(inv pki.Inventory) {
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	cur := map[string]bool{}
	var fresh []pki.Finding
	a.mu.Lock()
	for _, f := range pki.Evaluate(inv, a.Policy, now) {
		if f.Severity != pki.SeverityCritical {
			continue
		}
		k := f.ID + "\x00" + f.Node
		if !cur[k] && !a.open[k] {
			fresh = append(fresh, f)
		}
		cur[k] = true
	}
	a.open = cur
	a.mu.Unlock()
	if a.Record == nil {
		return
	}
	for _, f := range fresh {
		a.Record(audit.Record{Time: now, Event: config.EventFinding, Kind: f.ID, Actor: a.Actor, Reason: f.Message,
			Result: swarm.ResultFailed, Node: f.Node, Details: map[string]string{"loop": "certs", "severity": string(f.Severity)}})
	}
}
