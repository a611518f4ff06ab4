package operator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmguard/swarmguard/swarm"
)

// fakeEvents is an event stream: each subscription gets its own channels; the test sends events and breaks
// the stream.
type fakeEvents struct {
	mu   sync.Mutex
	subs int
	evs  chan swarm.Event
	errc chan error
}

func (f *fakeEvents) Events(ctx context.Context) (<-chan swarm.Event, <-chan error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs++
	f.evs, f.errc = make(chan swarm.Event), make(chan error, 1)
	return f.evs, f.errc
}

func (f *fakeEvents) subscriptions() int { f.mu.Lock(); defer f.mu.Unlock(); return f.subs }

func (f *fakeEvents) send(t *testing.T, ev swarm.Event) {
	t.Helper()
	f.mu.Lock()
	c := f.evs
	f.mu.Unlock()
	select {
	case c <- ev:
	case <-time.After(time.Second):
		t.Fatalf("event %+v not taken: nobody follows the stream", ev)
	}
}

func (f *fakeEvents) breakStream(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errc <- err
}

// eventTask counts full passes and reactions, and what each reaction was given.
type eventTask struct {
	full, reacts atomic.Int32
	mu           sync.Mutex
	batches      []Changes
}

func (e *eventTask) task() Task {
	return Task{Name: "workloads", Schedule: "@every 1h", Events: []string{swarm.EventService},
		Run: func(context.Context, TaskEnv) error { e.full.Add(1); return nil },
		React: func(_ context.Context, env TaskEnv, ch Changes) error {
			e.reacts.Add(1)
			e.mu.Lock()
			e.batches = append(e.batches, ch)
			e.mu.Unlock()
			return nil
		}}
}

func startEventRuntime(t *testing.T, s LeaseStore, node string, src EventSource, tasks ...Task) (*Runtime, func()) {
	t.Helper()
	rt, err := NewRuntime(RuntimeOptions{Store: s, LeaseName: "swarmguard-lease", TTL: testTTL, Node: node, Tasks: tasks,
		Metrics: NewMetrics(), Events: src, Backoff: Backoff{Base: time.Hour, Max: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	return rt, func() { cancel(); <-done }
}

// TestEventsCoalesce: the holder subscribes, runs one full pass for the (re)connection, and a burst of 50
// service events (a stack deploy) becomes one reaction naming each service once.
func TestEventsCoalesce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeEvents{}
		et := &eventTask{}
		rt, stop := startEventRuntime(t, newFakeStore(), "A", src, et.task())
		defer stop()
		synctest.Wait()
		if src.subscriptions() != 1 {
			t.Fatalf("subscriptions of the holder = %d; want 1", src.subscriptions())
		}
		time.Sleep(DefaultEventMaxWait)
		synctest.Wait()
		if n := et.full.Load(); n < 1 || n > 2 {
			t.Fatalf("full passes after taking the lease and connecting = %d; want the take-over pass and at most one for the connection", n)
		}
		full := et.full.Load()
		for i := range 50 {
			id := fmt.Sprintf("svc%02d", i%25) // each service twice: create, then its update state
			src.send(t, swarm.Event{Type: swarm.EventService, Action: "create", ID: id, Name: "stack_" + id, Time: time.Now()})
			time.Sleep(10 * time.Millisecond)
		}
		src.send(t, swarm.Event{Type: swarm.EventNetwork, Action: "create", ID: "net1"}) // not followed by this loop
		time.Sleep(DefaultEventQuiet)
		synctest.Wait()
		if n := et.reacts.Load(); n != 1 {
			t.Fatalf("reactions to a burst of 50 events = %d; want 1", n)
		}
		et.mu.Lock()
		ch := et.batches[0]
		et.mu.Unlock()
		if len(ch.Of(swarm.EventService)) != 25 || ch.Events != 50 || len(ch.Of(swarm.EventNetwork)) != 0 {
			t.Fatalf("the reaction got %d services from %d events (%v); want 25 from 50, no network", len(ch.Of(swarm.EventService)), ch.Events, ch.IDs)
		}
		if et.full.Load() != full {
			t.Fatalf("full passes rose from %d to %d on service events; want only the reaction", full, et.full.Load())
		}
		if v := testutil.ToFloat64(rt.ev.seen.WithLabelValues(swarm.EventService, "create")); v != 50 {
			t.Fatalf("%s{service,create} = %v; want 50", MetricEventsSeen, v)
		}
		if v := testutil.ToFloat64(rt.ev.reconciles.WithLabelValues("workloads", "changed")); v != 1 {
			t.Fatalf("%s{workloads,changed} = %v; want 1", MetricEventReconciles, v)
		}
	})
}

// TestEventsReconnectRunsFullPass: a broken stream is opened again after a backoff, and the new connection
// starts with a full pass (events may have been missed meanwhile).
func TestEventsReconnectRunsFullPass(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &fakeEvents{}
		et := &eventTask{}
		rt, stop := startEventRuntime(t, newFakeStore(), "A", src, et.task())
		defer stop()
		time.Sleep(DefaultEventMaxWait)
		synctest.Wait()
		before := et.full.Load()
		src.breakStream(errors.New("connection reset"))
		time.Sleep(eventRetryMax)
		synctest.Wait()
		if src.subscriptions() != 2 {
			t.Fatalf("subscriptions after the stream broke = %d; want 2 (reconnected)", src.subscriptions())
		}
		if n := et.full.Load(); n != before+1 {
			t.Fatalf("full passes after the reconnection = %d; want %d", n, before+1)
		}
		if v := testutil.ToFloat64(rt.ev.reconnects); v != 1 {
			t.Fatalf("%s = %v; want 1", MetricEventReconnects, v)
		}
	})
}

// TestEventsStandbyDoesNothing: a replica that does not hold the lease does not subscribe, so it reacts to
// nothing.
func TestEventsStandbyDoesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFakeStore()
		srcA, srcB := &fakeEvents{}, &fakeEvents{}
		etA, etB := &eventTask{}, &eventTask{}
		_, stopA := startEventRuntime(t, s, "A", srcA, etA.task())
		defer stopA()
		synctest.Wait()
		_, stopB := startEventRuntime(t, s, "B", srcB, etB.task())
		defer stopB()
		time.Sleep(testTTL)
		synctest.Wait()
		if srcA.subscriptions() != 1 || srcB.subscriptions() != 0 {
			t.Fatalf("subscriptions: holder A %d, standby B %d; want 1 and 0", srcA.subscriptions(), srcB.subscriptions())
		}
		if etB.full.Load()+etB.reacts.Load() != 0 {
			t.Fatalf("standby B ran %d passes and %d reactions; want none", etB.full.Load(), etB.reacts.Load())
		}
	})
}
