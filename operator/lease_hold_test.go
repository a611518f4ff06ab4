package operator

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

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
	l := NewLease(panickingStore{}, LeaseOptions{Name: "l", TTL: 2 * time.Second, Node: "n"})
	ctx, cancel := context.WithCancelCause(t.Context())
	defer cancel(nil)
	done := make(chan struct{})
	go func() { defer close(done); l.keep(ctx, cancel) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("keep still runs 10 s after a panicking renewal; want it to end")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, ErrLeaseLost) {
		t.Fatalf("the action's context cause = %v; want ErrLeaseLost", cause)
	}
}

func holdOpts(s LeaseStore, node string) HoldOptions {
	return HoldOptions{Store: s, Wait: time.Second,
		Lease: LeaseOptions{Name: "swarmguard-lease", TTL: testTTL, Node: node, Instance: "cli", Actor: "cli:ops@host", What: "rotate"}}
}

// TestHoldLease: the action runs holding the lease, with the hold as its env's one guard (Check passes, and
// the env is the caller's otherwise); the lease is released when it returns.
func TestHoldLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		ran := false
		env := TaskEnv{Actor: "cli:ops@host", Reason: "leaked"}
		err := HoldLease(t.Context(), holdOpts(s, "B"), env, func(ctx context.Context, env TaskEnv) error {
			ran = true
			if h := s.holder("swarmguard-lease"); h != "B/cli" {
				t.Errorf("holder during the action = %q; want B/cli", h)
			}
			if env.Guard == nil || env.Actor != "cli:ops@host" || env.Reason != "leaked" {
				t.Errorf("action env = %+v; want the caller's with a guard", env)
			}
			if err := env.CheckHolder(ctx); err != nil {
				t.Errorf("env.CheckHolder under the hold = %v; want nil", err)
			}
			return nil
		})
		if err != nil || !ran {
			t.Fatalf("HoldLease = %v, ran %v; want nil, true", err, ran)
		}
		if h := s.holder("swarmguard-lease"); h != "" {
			t.Fatalf("holder after the action = %q; want released", h)
		}
	})
}

// TestHoldLeaseLost: when the hold ends during the action (another holder took it over), the guard refuses
// the next step, the action's context ends, and the error says the lease was lost.
func TestHoldLeaseLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		err := HoldLease(t.Context(), holdOpts(s, "B"), TaskEnv{Actor: "cli:ops@host"}, func(ctx context.Context, env TaskEnv) error {
			o, _ := s.ConfigByName(ctx, "swarmguard-lease")
			o.Labels[leaseLabelHolder] = "A/other"
			if err := s.UpdateConfigLabels(ctx, o, o.Labels); err != nil {
				t.Fatal(err)
			}
			if err := env.CheckHolder(ctx); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("env.CheckHolder after a take-over = %v; want ErrLeaseLost", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(testTTL):
				t.Error("the action's context still runs a TTL after the hold ended")
			}
			return ctx.Err()
		})
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("HoldLease after losing the hold = %v; want ErrLeaseLost", err)
		}
		if h := s.holder("swarmguard-lease"); h != "A/other" {
			t.Fatalf("holder after the action = %q; want the other holder's record left alone", h)
		}
	})
}

// TestHoldLeaseHeld: a holder that does not hand the lease over within the wait fails the action before it
// runs, with a *HeldError naming the holder.
func TestHoldLeaseHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		holder := newTestLease(s, "A", time.Now)
		tick(t, holder)
		ran := false
		err := HoldLease(t.Context(), holdOpts(s, "B"), TaskEnv{}, func(context.Context, TaskEnv) error { ran = true; return nil })
		var he *HeldError
		if !errors.As(err, &he) || ran || he.Status.Holder != holder.ID() {
			t.Fatalf("HoldLease with the lease held = %v, ran %v; want a *HeldError naming %s, not run", err, ran, holder.ID())
		}
	})
}
