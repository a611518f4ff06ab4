package operator

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

// setLabels writes labels onto a stored lease object as another process would (a CLI's request).
func (s *fakeStore) setLabels(name string, kv map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.objs[name]
	o.Labels = maps.Clone(o.Labels)
	for k, v := range kv {
		if v == "" {
			delete(o.Labels, k)
			continue
		}
		o.Labels[k] = v
	}
	s.version++
	o.Version = s.version
	s.objs[name] = o
}

func (s *fakeStore) label(name, key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objs[name].Labels[key]
}

// staleRequest is the request a CLI left behind when it was killed (SIGKILL, a lost SSH session): it never
// withdraws it, and never takes the lease it asked for.
var staleRequest = map[string]string{leaseLabelRequest: "C/dead-cli", leaseLabelReqActor: "cli:ops@host",
	leaseLabelReqWhat: "rotate join-token worker", leaseLabelReqTTL: "10s"}

func idleYield() func() (func(), bool) { return func() (func(), bool) { return func() {}, true } }

// TestLeaseStaleRequestNotHandedOver: a request nobody renews any more is judged stale after its TTL; a
// controller never hands the lease to it (that would leave the swarm without an actor for the dead
// requester's TTL) and clears it.
func TestLeaseStaleRequestNotHandedOver(t *testing.T) {
	t.Run("released lease", func(t *testing.T) {
		s, clk := newFakeStore(), newFakeClock()
		s.setLabels("swarmguard-lease", staleRequest)
		a := newTestLease(s, "A", clk.Now, func(o *LeaseOptions) { o.Yield = idleYield() })
		if tick(t, a); a.Holding() {
			t.Fatal("Tick(A) at first sight of a request on a released lease: holding; want it left to the requester for its TTL")
		}
		clk.Advance(11 * time.Second) // the request's TTL passed: the CLI never took the lease
		if tick(t, a); !a.Holding() {
			t.Fatal("Tick(A) after the request's TTL: not holding; want A to take the lease")
		}
		for i := 0; i < 3; i++ {
			clk.Advance(testTTL / 3)
			tick(t, a)
			if h := s.holder("swarmguard-lease"); h != a.ID() {
				t.Fatalf("holder after A's tick %d = %q; want %s (a stale request gets nothing)", i+1, h, a.ID())
			}
		}
		if r := s.label("swarmguard-lease", leaseLabelRequest); r != "" {
			t.Errorf("request label = %q after it was judged stale; want it cleared", r)
		}
	})
	t.Run("held lease, holder busy past the request's TTL", func(t *testing.T) {
		s, clk := newFakeStore(), newFakeClock()
		busy := true
		a := newTestLease(s, "A", clk.Now, func(o *LeaseOptions) {
			o.Yield = func() (func(), bool) { return func() {}, !busy }
		})
		tick(t, a)
		s.setLabels("swarmguard-lease", staleRequest)
		for i := 0; i < 4; i++ { // a 40 s pass: the CLI died meanwhile
			clk.Advance(testTTL / 3)
			tick(t, a)
		}
		busy = false
		clk.Advance(testTTL / 3)
		tick(t, a)
		if h := s.holder("swarmguard-lease"); h != a.ID() || !a.Holding() {
			t.Fatalf("holder = %q, A holding %v after the pass; want %s holding (the request is stale)", h, a.Holding(), a.ID())
		}
	})
	t.Run("a live CLI waiting longer than its TTL still gets it", func(t *testing.T) {
		s, clk := newFakeStore(), newFakeClock()
		busy := true
		a := newTestLease(s, "A", clk.Now, func(o *LeaseOptions) {
			o.Yield = func() (func(), bool) { return func() {}, !busy }
		})
		cli := newTestLease(s, "C", clk.Now, func(o *LeaseOptions) {
			o.Instance, o.Actor, o.What, o.Request, o.TTL = "cli", "cli:ops@host", "rotate join-token worker", true, 10*time.Second
		})
		tick(t, a)
		for i := 0; i < 40; i++ { // the CLI polls every second for 40 s while A is busy
			clk.Advance(time.Second)
			tick(t, cli)
			if i%10 == 9 {
				tick(t, a)
			}
		}
		busy = false
		clk.Advance(time.Second)
		tick(t, cli)
		tick(t, a)
		if h := s.holder("swarmguard-lease"); h != cli.ID() {
			t.Fatalf("holder = %q after A became idle; want the waiting CLI %s", h, cli.ID())
		}
	})
}

// createInspectFails is a store whose CreateConfig creates the object but then fails to read it back (the
// inspect after the create timed out): the caller cannot know the object exists.
type createInspectFails struct{ *fakeStore }

func (s createInspectFails) CreateConfig(ctx context.Context, name string, labels map[string]string, body string) (swarm.ConfigObject, error) {
	if _, err := s.fakeStore.CreateConfig(ctx, name, labels, body); err != nil {
		return swarm.ConfigObject{}, err
	}
	return swarm.ConfigObject{}, errors.New("inspecting config abc: context deadline exceeded")
}

// TestLeaseCreateInspectFailsWaitsATTL: a create whose answer was lost may have created the object; the
// process that finds its own record at the next tick waits out the full TTL from the create all the same.
func TestLeaseCreateInspectFailsWaitsATTL(t *testing.T) {
	s, clk := newEmptyFakeStore(), newFakeClock()
	a := newTestLease(createInspectFails{s}, "A", clk.Now)
	if _, err := a.Tick(t.Context()); err == nil {
		t.Fatal("Tick with the create's inspect failing = nil; want its error")
	}
	for i := 1; i <= 3; i++ {
		clk.Advance(testTTL/3 - time.Second)
		tick(t, a)
		if a.Holding() {
			t.Fatalf("Holding() = true %s after creating the lease (its inspect failed); want false before %s", time.Duration(i)*(testTTL/3-time.Second), testTTL)
		}
	}
	clk.Advance(3 * time.Second)
	if tick(t, a); !a.Holding() {
		t.Fatalf("Holding() = false a TTL after creating the lease; want true")
	}
}
