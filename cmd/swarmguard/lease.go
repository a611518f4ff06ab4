package main

import "context"

// withLease runs fn while holding the swarm-wide lease (DESIGN.md decision 2), so that a person's rotate,
// `run --once` and the controller never act at once. what names the action for the holder record.
//
// The lease itself lands with the operator runtime (operator/lease.go); until then this runs fn directly.
func (a *app) withLease(ctx context.Context, what string, fn func(ctx context.Context) error) error {
	_ = what
	return fn(ctx)
}
