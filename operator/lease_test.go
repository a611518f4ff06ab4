package operator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

// fakeStore is an in-memory LeaseStore with Docker's semantics: names are unique, every write bumps the
// version, and a write with a stale version fails with ErrConflict.
type fakeStore struct {
	mu      sync.Mutex
	objs    map[string]swarm.ConfigObject
	version uint64
	readErr error
	// beforeUpdate, when set, runs (without the lock) before an update is applied; a test uses it to let
	// another writer in between a read and a write.
	beforeUpdate func()
	writes       int
}

// newFakeStore is a swarm where the leases the tests use ("swarmguard-lease", "l") exist, released: a
// process that takes them may act at once. newEmptyFakeStore has none (see TestLeaseCreatedWaitsATTL).
func newFakeStore() *fakeStore {
	s := newEmptyFakeStore()
	for _, name := range []string{"swarmguard-lease", "l"} {
		s.version++
		s.objs[name] = swarm.ConfigObject{ID: "id-" + name, Name: name, Version: s.version,
			Labels: map[string]string{leaseLabelSchema: leaseSchema, leaseLabelHolder: "", leaseLabelSeq: "1"}}
	}
	return s
}

func newEmptyFakeStore() *fakeStore {
	return &fakeStore{objs: map[string]swarm.ConfigObject{}, version: 10}
}

func (s *fakeStore) remove(name string) {
	s.mu.Lock()
	delete(s.objs, name)
	s.mu.Unlock()
}

func (s *fakeStore) ConfigByName(_ context.Context, name string) (swarm.ConfigObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return swarm.ConfigObject{}, s.readErr
	}
	o, ok := s.objs[name]
	if !ok {
		return swarm.ConfigObject{}, fmt.Errorf("config %q: %w", name, swarm.ErrNotFound)
	}
	o.Labels = maps.Clone(o.Labels)
	return o, nil
}

func (s *fakeStore) CreateConfig(_ context.Context, name string, labels map[string]string, _ string) (swarm.ConfigObject, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return swarm.ConfigObject{}, s.readErr
	}
	if _, ok := s.objs[name]; ok {
		return swarm.ConfigObject{}, fmt.Errorf("creating config %q: %w", name, swarm.ErrAlreadyExists)
	}
	s.version++
	s.writes++
	o := swarm.ConfigObject{ID: "id-" + name, Name: name, Version: s.version, Labels: maps.Clone(labels)}
	s.objs[name] = o
	return o, nil
}

func (s *fakeStore) UpdateConfigLabels(_ context.Context, obj swarm.ConfigObject, labels map[string]string) error {
	s.mu.Lock()
	hook := s.beforeUpdate
	s.beforeUpdate = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return s.readErr
	}
	cur, ok := s.objs[obj.Name]
	if !ok {
		return fmt.Errorf("updating config %q: %w", obj.Name, swarm.ErrNotFound)
	}
	if cur.Version != obj.Version {
		return fmt.Errorf("updating config %q: %w", obj.Name, swarm.ErrConflict)
	}
	s.version++
	s.writes++
	cur.Version = s.version
	cur.Labels = maps.Clone(labels)
	s.objs[obj.Name] = cur
	return nil
}

func (s *fakeStore) holder(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.objs[name].Labels[leaseLabelHolder]
}

func (s *fakeStore) setReadErr(err error) {
	s.mu.Lock()
	s.readErr = err
	s.mu.Unlock()
}

// fakeClock is a manual clock shared by the leases of a test; each lease may get its own offset, to show
// that nothing compares clocks across nodes.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// skewed returns this clock shifted by off: another node's wall clock.
func (c *fakeClock) skewed(off time.Duration) func() time.Time {
	return func() time.Time { return c.Now().Add(off) }
}

const testTTL = 30 * time.Second

func newTestLease(s LeaseStore, node string, now func() time.Time, mod ...func(*LeaseOptions)) *Lease {
	o := LeaseOptions{Name: "swarmguard-lease", TTL: testTTL, Node: node, Instance: "i-" + node, Actor: "operator:" + node, What: "controller", Now: now}
	for _, m := range mod {
		m(&o)
	}
	return NewLease(s, o)
}

func tick(t *testing.T, l *Lease) LeaseStatus {
	t.Helper()
	st, err := l.Tick(t.Context())
	if err != nil {
		t.Fatalf("Tick(%s) = %v; want no error", l.ID(), err)
	}
	return st
}

func TestLeaseTakeRenewStandby(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	b := newTestLease(s, "B", clk.skewed(-7*time.Hour)) // B's wall clock is hours behind: irrelevant

	if st := tick(t, a); st.Role != RoleHolder || !a.Holding() {
		t.Fatalf("first Tick(A) = role %s, Holding %v; want holder (lease created)", st.Role, a.Holding())
	}
	if st := tick(t, b); st.Role != RoleStandby || st.Holder != a.ID() || b.Holding() {
		t.Fatalf("Tick(B) = %+v; want standby with holder %s", st, a.ID())
	}
	// A renews every third of the TTL: B never judges it expired.
	for i := 0; i < 10; i++ {
		clk.Advance(testTTL / 3)
		tick(t, a)
		if st := tick(t, b); st.Role != RoleStandby || st.Holder != a.ID() {
			t.Fatalf("round %d: Tick(B) = %+v; want standby", i, st)
		}
	}
	if !a.Holding() {
		t.Fatal("A.Holding() = false after renewing; want true")
	}
}

func TestLeaseExpiryByObserverClock(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.skewed(10*time.Hour)) // A's wall clock runs far ahead
	tick(t, a)
	b := newTestLease(s, "B", clk.Now)
	tick(t, b) // B first sees the lease now; its expiry clock starts here, whatever A's labels say

	clk.Advance(testTTL - time.Second)
	if st := tick(t, b); st.Role != RoleStandby {
		t.Fatalf("Tick(B) %s after its first sight = %s; want standby (not yet expired by B's clock)", testTTL-time.Second, st.Role)
	}
	if a.Holding() {
		// A's own validity ends before B may judge it expired (start of its write + TTL - margin).
		t.Fatal("A.Holding() = true a second before expiry; want false (A stops acting before observers may take over)")
	}
	clk.Advance(time.Second)
	if st := tick(t, b); st.Role != RoleHolder || s.holder("swarmguard-lease") != b.ID() {
		t.Fatalf("Tick(B) at expiry = %+v; want B holder", st)
	}
	st := tick(t, a)
	if st.Role != RoleStandby || a.Holding() || st.Holder != b.ID() {
		t.Fatalf("Tick(A) after takeover = %+v, Holding %v; want standby under %s", st, a.Holding(), b.ID())
	}
}

// slowReadStore delays one read: during runs while the read is in flight (a raft re-election, a busy
// engine), before the read returns what the store holds then.
type slowReadStore struct {
	*fakeStore
	during func()
}

func (s *slowReadStore) ConfigByName(ctx context.Context, name string) (swarm.ConfigObject, error) {
	if f := s.during; f != nil {
		s.during = nil
		f()
	}
	return s.fakeStore.ConfigByName(ctx, name)
}

// A renewal written while an observer's read waited is as fresh as the moment the read returns: the
// observer's expiry clock starts then, not when it sent the read, or it would take the lease while the
// holder still acts.
func TestLeaseObserverClockStartsWhenSlowReadReturns(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	tick(t, a)
	slow := &slowReadStore{fakeStore: s}
	b := newTestLease(slow, "B", clk.Now)
	tick(t, b)

	clk.Advance(5 * time.Second)
	slow.during = func() {
		clk.Advance(20 * time.Second) // B's read waits 20 s ...
		tick(t, a)                    // ... and A renews meanwhile
	}
	if st := tick(t, b); st.Role != RoleStandby {
		t.Fatalf("Tick(B) with a slow read = %s; want standby", st.Role)
	}
	clk.Advance(11 * time.Second) // over a TTL after B sent its read
	if !a.Holding() {
		t.Fatal("A.Holding() = false; want true (it renewed 11 s ago)")
	}
	if st := tick(t, b); st.Role != RoleStandby || s.holder("swarmguard-lease") != a.ID() {
		t.Fatalf("Tick(B) while A still holds = %+v; want standby (two actors otherwise)", st)
	}
	clk.Advance(testTTL - 12*time.Second) // a second short of a TTL after the slow read returned
	if st := tick(t, b); st.Role != RoleStandby {
		t.Fatalf("Tick(B) a second before expiry = %s; want standby", st.Role)
	}
	clk.Advance(time.Second)
	if st := tick(t, b); st.Role != RoleHolder {
		t.Fatalf("Tick(B) a TTL after its slow read returned = %s; want holder", st.Role)
	}
}

func TestLeaseLateObserverWaitsFullTTL(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	tick(t, a)
	clk.Advance(time.Hour) // A is long dead, and its "renewed" label says so
	b := newTestLease(s, "B", clk.Now)
	if st := tick(t, b); st.Role != RoleStandby {
		t.Fatalf("Tick(B) at first sight of a stale lease = %s; want standby (B cannot know how long it has been unchanged)", st.Role)
	}
	clk.Advance(testTTL)
	if st := tick(t, b); st.Role != RoleHolder {
		t.Fatalf("Tick(B) a TTL after first sight = %s; want holder", st.Role)
	}
}

func TestLeaseCASConflictOneWinner(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	tick(t, a)
	b := newTestLease(s, "B", clk.Now)
	c := newTestLease(s, "C", clk.Now)
	tick(t, b)
	tick(t, c)
	clk.Advance(testTTL)
	// B and C both judge A expired; C's write lands between B's read and B's write.
	s.mu.Lock()
	s.beforeUpdate = func() { tick(t, c) }
	s.mu.Unlock()
	stB := tick(t, b)
	if s.holder("swarmguard-lease") != c.ID() {
		t.Fatalf("holder = %q; want %s (the write that landed first)", s.holder("swarmguard-lease"), c.ID())
	}
	if stB.Role == RoleHolder || b.Holding() {
		t.Fatalf("B after losing the CAS: role %s, Holding %v; want not holder", stB.Role, b.Holding())
	}
	if !c.Holding() {
		t.Fatal("C.Holding() = false; want true")
	}
	stB = tick(t, b)
	if stB.Role != RoleStandby || stB.Holder != c.ID() {
		t.Fatalf("Tick(B) after the race = %+v; want standby under C", stB)
	}
}

func TestLeaseCreateRace(t *testing.T) {
	s, clk := newEmptyFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	b := newTestLease(s, "B", clk.Now)
	var wg sync.WaitGroup
	for _, l := range []*Lease{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = l.Tick(t.Context()) }()
	}
	wg.Wait()
	tick(t, a)
	tick(t, b)
	if a.Holding() || b.Holding() {
		t.Fatalf("A.Holding() = %v, B.Holding() = %v right after the lease was created; want neither before a full TTL", a.Holding(), b.Holding())
	}
	for range 4 {
		clk.Advance(testTTL / 3)
		tick(t, a)
		tick(t, b)
	}
	if a.Holding() == b.Holding() {
		t.Fatalf("A.Holding() = %v, B.Holding() = %v after a TTL; want exactly one holder", a.Holding(), b.Holding())
	}
}

// TestLeaseCreatedWaitsATTL: a process that creates the lease object acts on it only after a full TTL, and
// renews its record meanwhile.
func TestLeaseCreatedWaitsATTL(t *testing.T) {
	s, clk := newEmptyFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	if st := tick(t, a); a.Holding() || st.Holder != a.ID() || !a.WaitingFresh() {
		t.Fatalf("Tick after creating the lease: Holding %v, holder %q, waiting %v; want not holding, holder A, waiting", a.Holding(), st.Holder, a.WaitingFresh())
	}
	for i := 1; i <= 3; i++ {
		clk.Advance(testTTL/3 - time.Second)
		tick(t, a)
		if a.Holding() {
			t.Fatalf("Holding() = true %s after creating the lease; want false before %s", time.Duration(i)*(testTTL/3-time.Second), testTTL)
		}
	}
	clk.Advance(3 * time.Second)
	tick(t, a)
	if !a.Holding() || a.WaitingFresh() {
		t.Fatalf("Holding() = %v a TTL after creating the lease; want true", a.Holding())
	}
}

// TestLeaseDeletedWhileHeld: the object deleted under holder A; B creates it anew. A stops acting at its
// next read (tick or check) and B acts only a TTL after its creation, when A's validity has surely ended:
// at no instant do both hold, whatever order they tick in.
func TestLeaseDeletedWhileHeld(t *testing.T) {
	for _, aFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("a ticks first %v", aFirst), func(t *testing.T) {
			s, clk := newFakeStore(), newFakeClock()
			a := newTestLease(s, "A", clk.Now)
			b := newTestLease(s, "B", clk.Now)
			tick(t, a)
			tick(t, b)
			if !a.Holding() || b.Holding() {
				t.Fatalf("before: A %v, B %v; want A holding", a.Holding(), b.Holding())
			}
			s.remove("swarmguard-lease")
			order := []*Lease{b, a}
			if aFirst {
				order = []*Lease{a, b}
			}
			for step := 0; step < 20; step++ {
				for _, l := range order {
					_, _ = l.Tick(t.Context())
					if a.Holding() && b.Holding() {
						t.Fatalf("step %d: both hold the lease", step)
					}
				}
				if step == 0 && a.Holding() {
					t.Fatalf("A still holds after a tick that found the object gone or someone else's")
				}
				clk.Advance(testTTL / 6)
			}
			if a.Holding() == b.Holding() {
				t.Fatalf("after 20 steps: A %v, B %v; want one holder", a.Holding(), b.Holding())
			}
		})
	}
	t.Run("check finds it gone", func(t *testing.T) {
		s, clk := newFakeStore(), newFakeClock()
		a := newTestLease(s, "A", clk.Now)
		tick(t, a)
		s.remove("swarmguard-lease")
		if err := a.Check(t.Context()); !errors.Is(err, ErrLeaseLost) || a.Holding() {
			t.Fatalf("Check with the object gone = %v, Holding %v; want ErrLeaseLost, not holding", err, a.Holding())
		}
		if _, err := s.ConfigByName(t.Context(), "swarmguard-lease"); !errors.Is(err, swarm.ErrNotFound) {
			t.Errorf("Check re-created the lease (%v); only a tick creates it", err)
		}
	})
}

func TestLeaseReleaseTakenAtNextTick(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	b := newTestLease(s, "B", clk.Now)
	tick(t, a)
	tick(t, b)
	if err := a.Release(t.Context()); err != nil {
		t.Fatalf("Release(A) = %v; want nil", err)
	}
	if a.Holding() || s.holder("swarmguard-lease") != "" {
		t.Fatalf("after Release: A.Holding() = %v, holder %q; want false and empty", a.Holding(), s.holder("swarmguard-lease"))
	}
	clk.Advance(time.Second) // far less than the TTL
	if st := tick(t, b); st.Role != RoleHolder {
		t.Fatalf("Tick(B) right after release = %s; want holder (no waiting for expiry)", st.Role)
	}
	// Releasing a lease one does not hold changes nothing.
	if err := a.Release(t.Context()); err != nil || s.holder("swarmguard-lease") != b.ID() {
		t.Fatalf("Release(A) when B holds = %v, holder %q; want nil and %s", err, s.holder("swarmguard-lease"), b.ID())
	}
}

func TestLeaseLapsesWhenUnreachable(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	tick(t, a)
	s.setReadErr(fmt.Errorf("listing config: %w", swarm.ErrUnreachable))
	for i := 0; i < 2; i++ {
		clk.Advance(testTTL / 3)
		if _, err := a.Tick(t.Context()); !errors.Is(err, swarm.ErrUnreachable) {
			t.Fatalf("Tick(A) with the engine down = %v; want ErrUnreachable", err)
		}
	}
	if !a.Holding() {
		t.Fatal("A.Holding() = false two thirds of a TTL after its last renewal; want true")
	}
	clk.Advance(testTTL / 3)
	st, _ := a.Tick(t.Context())
	if a.Holding() || st.Role != RoleStandby {
		t.Fatalf("a TTL after the last renewal: Holding %v, role %s; want false, standby", a.Holding(), st.Role)
	}
	if st.Err == "" {
		t.Fatal("Status().Err is empty; want the read error")
	}
}

func TestLeaseCheck(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	b := newTestLease(s, "B", clk.Now)
	if err := a.Check(t.Context()); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Check before taking = %v; want ErrLeaseLost", err)
	}
	tick(t, a)
	tick(t, b)
	clk.Advance(testTTL / 2)
	writes := s.writes
	if err := a.Check(t.Context()); err != nil {
		t.Fatalf("Check while holding = %v; want nil", err)
	}
	if s.writes != writes+1 {
		t.Fatalf("Check wrote %d times; want 1 (a renewal)", s.writes-writes)
	}
	// The renewal by Check restarts B's expiry clock.
	clk.Advance(testTTL / 2)
	if st := tick(t, b); st.Role != RoleStandby {
		t.Fatalf("Tick(B) half a TTL after Check = %s; want standby", st.Role)
	}
	// A stale holder (paused past its TTL) that B took over from must not act.
	clk.Advance(testTTL)
	tick(t, b)
	if err := a.Check(t.Context()); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Check after B took over = %v; want ErrLeaseLost", err)
	}
	// A request label written between Check's read and write makes it retry, not fail.
	s2 := newFakeStore()
	c := newTestLease(s2, "C", clk.Now)
	tick(t, c)
	s2.mu.Lock()
	s2.beforeUpdate = func() {
		o, _ := s2.ConfigByName(t.Context(), "swarmguard-lease")
		o.Labels[leaseLabelRequest] = "cli/x"
		_ = s2.UpdateConfigLabels(t.Context(), o, o.Labels)
	}
	s2.mu.Unlock()
	if err := c.Check(t.Context()); err != nil {
		t.Fatalf("Check racing a request write = %v; want nil after a retry", err)
	}
}

func TestLeaseHandOverToCLI(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	busy := true
	var resumed int
	ctl := newTestLease(s, "A", clk.Now, func(o *LeaseOptions) {
		o.Yield = func() (func(), bool) {
			if busy {
				return nil, false
			}
			return func() { resumed++ }, true
		}
	})
	standby := newTestLease(s, "B", clk.Now)
	cli := newTestLease(s, "A", clk.Now, func(o *LeaseOptions) {
		o.Instance, o.Actor, o.What, o.Request, o.TTL = "cli", "cli:ops@host", "rotate join-token worker", true, 10*time.Second
	})
	tick(t, ctl)
	tick(t, standby)
	if st := tick(t, cli); st.Role != RoleStandby {
		t.Fatalf("Tick(cli) while the controller holds = %s; want standby (request written)", st.Role)
	}
	clk.Advance(testTTL / 3)
	tick(t, cli) // a waiting CLI polls (Acquire), renewing its request
	tick(t, ctl) // busy: renews instead of handing over
	if s.holder("swarmguard-lease") != ctl.ID() {
		t.Fatalf("holder = %q while the controller is busy; want %s", s.holder("swarmguard-lease"), ctl.ID())
	}
	busy = false
	clk.Advance(testTTL / 3)
	tick(t, cli)
	tick(t, ctl)
	if s.holder("swarmguard-lease") != cli.ID() || ctl.Holding() || resumed != 1 {
		t.Fatalf("after hand-over: holder %q, controller Holding %v, resumed %d; want %s, false, 1", s.holder("swarmguard-lease"), ctl.Holding(), resumed, cli.ID())
	}
	if st := tick(t, cli); st.Role != RoleHolder {
		t.Fatalf("Tick(cli) after hand-over = %s; want holder", st.Role)
	}
	// The standby does not take a lease that was handed over: its clock restarted at the hand-over.
	clk.Advance(testTTL / 2)
	if st := tick(t, standby); st.Role != RoleStandby {
		t.Fatalf("Tick(standby) = %s; want standby", st.Role)
	}
	if err := cli.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := tick(t, ctl); st.Role != RoleHolder {
		t.Fatalf("Tick(controller) after the CLI released = %s; want holder", st.Role)
	}
}

// Acquire polls on real timers (time.NewTimer): in a bubble its wait is exact on the fake clock.
func TestLeaseAcquireFailsSayingWho(t *testing.T) {
	synctest.Test(t, testLeaseAcquireFailsSayingWho)
}

func testLeaseAcquireFailsSayingWho(t *testing.T) {
	const wait = 2500 * time.Millisecond // polls at 0, 1 s, 2 s (acquirePollMax) and 2.5 s
	s := newFakeStore()
	holder := newTestLease(s, "A", time.Now)
	tick(t, holder)
	cli := newTestLease(s, "B", time.Now, func(o *LeaseOptions) { o.Instance, o.Request, o.Actor = "cli", true, "cli:ops@host" })
	start := time.Now()
	err := cli.Acquire(t.Context(), wait)
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("Acquire with the lease held = %v; want *HeldError", err)
	}
	if took := time.Since(start); took != wait || he.Waited != wait {
		t.Fatalf("Acquire gave up after %s (HeldError.Waited %s); want exactly the wait, %s", took, he.Waited, wait)
	}
	if he.Status.Holder != holder.ID() || he.Status.HolderNode != "A" {
		t.Fatalf("HeldError.Status = %+v; want holder %s on node A", he.Status, holder.ID())
	}
	o, _ := s.ConfigByName(t.Context(), "swarmguard-lease")
	if o.Labels[leaseLabelRequest] != "" {
		t.Fatalf("request label %q left after giving up; want it withdrawn", o.Labels[leaseLabelRequest])
	}
	if err := holder.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := cli.Acquire(t.Context(), time.Second); err != nil || !cli.Holding() {
		t.Fatalf("Acquire of a released lease = %v, Holding %v; want nil, true", err, cli.Holding())
	}
	if took := time.Since(start); took != 0 {
		t.Fatalf("Acquire of a released lease took %s; want no wait", took)
	}
}

func TestLeaseTTLLabel(t *testing.T) {
	tests := []struct {
		name  string
		label string
		own   time.Duration
		want  time.Duration
	}{
		{"holder's own", "2s", 30 * time.Second, 2 * time.Second},
		{"missing: conservative", "", 30 * time.Second, 5 * time.Minute},
		{"garbage: conservative", "soon", 10 * time.Minute, 20 * time.Minute},
		{"negative: conservative", "-1s", time.Second, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leaseTTL(tt.label, tt.own); got != tt.want {
				t.Errorf("leaseTTL(%q, %s) = %s; want %s", tt.label, tt.own, got, tt.want)
			}
		})
	}
}

func TestLeaseInterval(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	for i := 0; i < 100; i++ {
		want := min(testTTL/observeFraction, maxObserveInterval)
		if d := a.Interval(); d > want || d < want*4/5 {
			t.Fatalf("standby Interval() = %s; want within [%s, %s]", d, want*4/5, want)
		}
	}
	tick(t, a)
	for i := 0; i < 100; i++ {
		if d := a.Interval(); d > testTTL/renewFraction || d < testTTL/renewFraction*4/5 {
			t.Fatalf("holder Interval() = %s; want within [%s, %s]", d, testTTL/renewFraction*4/5, testTTL/renewFraction)
		}
	}
}

// The lease runs on a manual clock; the fence's watch goroutine waits on timers, which the bubble runs on its
// own fake clock, so the parent's end is seen without waiting on real time.
func TestLeaseFence(t *testing.T) {
	synctest.Test(t, testLeaseFence)
}

func testLeaseFence(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	a := newTestLease(s, "A", clk.Now)
	tick(t, a)
	ctx, cancel := a.Fence(t.Context())
	defer cancel()
	if ctx.Err() != nil {
		t.Fatalf("fenced ctx while holding: Err() = %v; want nil", ctx.Err())
	}
	clk.Advance(testTTL / 3)
	tick(t, a) // renewed: still fine
	clk.Advance(testTTL / 3)
	if ctx.Err() != nil {
		t.Fatalf("fenced ctx after a renewal: Err() = %v; want nil", ctx.Err())
	}
	// The process stalls past its TTL (SIGSTOP): right after it resumes, before any tick, the context is over,
	// and so is every context an API call derives from it.
	clk.Advance(testTTL)
	child, ccancel := context.WithTimeout(ctx, time.Minute)
	defer ccancel()
	if !errors.Is(child.Err(), context.DeadlineExceeded) || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("after a stall past the TTL: Err() = %v, derived Err() = %v; want DeadlineExceeded", ctx.Err(), child.Err())
	}
	select {
	case <-ctx.Done():
	default:
		t.Fatal("Done() not closed after the hold lapsed")
	}
	// A lease not held fences at once; the parent's end ends it too.
	b := newTestLease(s, "B", clk.Now)
	bctx, bcancel := b.Fence(t.Context())
	defer bcancel()
	if bctx.Err() == nil {
		t.Fatal("Fence of a lease not held: Err() = nil; want ended")
	}
	tick(t, a)
	pctx, pcancel := context.WithCancel(t.Context())
	fctx, fcancel := a.Fence(pctx)
	defer fcancel()
	pcancel()
	synctest.Wait() // the watch goroutine has seen the parent end
	select {
	case <-fctx.Done(): // a's hold is valid: Done's own check does not end it, only the watch can have
	default:
		t.Fatal("fenced ctx not done after its parent ended")
	}
	if err := fctx.Err(); !errors.Is(err, context.Canceled) {
		t.Fatalf("fenced ctx Err() after its parent was cancelled = %v; want Canceled", err)
	}
}

// Work that blocks on Done (without calling it again) sees the hold lapse exactly when it does: at the start of
// the last renewal's write plus TTL less the validity margin, by the bubble's fake clock.
func TestLeaseFenceWatchEndsAtLapse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		a := newTestLease(s, "A", time.Now)
		taken := time.Now()
		tick(t, a)
		ctx, cancel := a.Fence(t.Context())
		defer cancel()
		<-ctx.Done()
		if took, want := time.Since(taken), testTTL-testTTL/validityMargin; took != want {
			t.Fatalf("fenced ctx ended %s after the lease was taken; want %s (TTL less the margin)", took, want)
		}
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) || a.Holding() {
			t.Fatalf("after the lapse: Err() = %v, Holding %v; want DeadlineExceeded, false", ctx.Err(), a.Holding())
		}
	})
}

// BenchmarkLeaseTick is one renewal of a held lease against an in-memory store: the lease's own cost per
// tick, without the Engine API round trips.
func BenchmarkLeaseTick(b *testing.B) {
	s := newFakeStore()
	l := newTestLease(s, "A", time.Now)
	ctx := context.Background()
	for b.Loop() {
		if _, err := l.Tick(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFenceDone is the live lease check a fenced context makes at every Done call (each Engine API
// call derives a context from it).
func BenchmarkFenceDone(b *testing.B) {
	s := newFakeStore()
	l := newTestLease(s, "A", time.Now)
	if _, err := l.Tick(context.Background()); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := l.Fence(context.Background())
	defer cancel()
	for b.Loop() {
		child, c := context.WithTimeout(ctx, time.Minute)
		c()
		_ = child
	}
}
