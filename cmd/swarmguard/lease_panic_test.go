package main

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/swarm"
)

// panickingStore panics at every lease read, as a bug in a store call would.
type panickingStore struct{}

func (panickingStore) ConfigByName(context.Context, string) (swarm.ConfigObject, error) {
	panic("reading the lease")
}

func (panickingStore) CreateConfig(context.Context, string, map[string]string, string) (swarm.ConfigObject, error) {
	panic("creating the lease")
}

func (panickingStore) UpdateConfigLabels(context.Context, swarm.ConfigObject, map[string]string) error {
	panic("writing the lease")
}

// TestKeepLeaseSurvivesAPanickingTick: a panic while a CLI renews its lease is a failed renewal: the action's
// context ends with ErrLeaseLost, and the process lives.
func TestKeepLeaseSurvivesAPanickingTick(t *testing.T) {
	l := operator.NewLease(panickingStore{}, operator.LeaseOptions{Name: "l", TTL: 2 * time.Second, Node: "n"})
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	done := make(chan struct{})
	go func() { defer close(done); keepLease(ctx, l, cancel, slog.New(slog.DiscardHandler)) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("keepLease still runs 10 s after a panicking renewal; want it to end")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, operator.ErrLeaseLost) {
		t.Fatalf("the action's context cause = %v; want ErrLeaseLost", cause)
	}
}
