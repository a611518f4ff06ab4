package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/swarm"
)

// The tests that start goroutines (take-over passes, Run, retries) run in a synctest bubble: the fake clock
// stands still while a goroutine can run, and synctest.Wait returns once every goroutine of the test is blocked,
// so "the pass has ended" is a fact to assert after Wait rather than a condition to poll real time for.

// passesRunning is how many passes are between begin and end.
func passesRunning(rt *Runtime) int {
	rt.act.mu.Lock()
	defer rt.act.mu.Unlock()
	return rt.act.running
}

func newTestRuntime(t *testing.T, s LeaseStore, node string, tasks ...Task) *Runtime {
	t.Helper()
	rt, err := NewRuntime(RuntimeOptions{Store: s, LeaseName: "swarmguard-lease", TTL: testTTL, Node: node, Tasks: tasks,
		Metrics: NewMetrics(), Backoff: Backoff{Base: time.Hour, Max: time.Hour}})
	if err != nil {
		t.Fatalf("NewRuntime = %v", err)
	}
	rt.passCtx = t.Context()
	return rt
}

func loopOf(rt *Runtime, name string) *loop {
	for _, l := range rt.loops {
		if l.task.Name == name {
			return l
		}
	}
	return nil
}

func TestRuntimeSkipIfStillRunning(t *testing.T) {
	synctest.Test(t, testRuntimeSkipIfStillRunning)
}

func testRuntimeSkipIfStillRunning(t *testing.T) {
	var runs atomic.Int32
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	slow := Task{Name: "slow", Schedule: "@every 1h", Run: func(ctx context.Context, _ TaskEnv) error {
		runs.Add(1)
		started <- struct{}{}
		<-release
		return nil
	}}
	rt := newTestRuntime(t, newFakeStore(), "A", slow)
	tick(t, rt.lease) // takes the lease: onLease triggers the take-over pass
	<-started
	l := loopOf(rt, "slow")
	l.trigger(TriggerScheduled) // returns at once: skipped
	l.trigger(TriggerScheduled)
	if n := runs.Load(); n != 1 {
		t.Fatalf("runs while the first pass still runs = %d; want 1 (SkipIfStillRunning)", n)
	}
	close(release)
	synctest.Wait() // the take-over pass has returned
	if n := passesRunning(rt); n != 0 {
		t.Fatalf("passes running after the first one was released = %d; want 0", n)
	}
	l.trigger(TriggerScheduled)
	if n := runs.Load(); n != 2 {
		t.Fatalf("runs after the first pass ended = %d; want 2", n)
	}
}

func TestRuntimeStandbyDoesNotRun(t *testing.T) {
	synctest.Test(t, testRuntimeStandbyDoesNotRun)
}

func testRuntimeStandbyDoesNotRun(t *testing.T) {
	s := newFakeStore()
	var runsA, runsB atomic.Int32
	a := newTestRuntime(t, s, "A", Task{Name: "tokens", Schedule: "@every 1h", Run: func(context.Context, TaskEnv) error { runsA.Add(1); return nil }})
	b := newTestRuntime(t, s, "B", Task{Name: "tokens", Schedule: "@every 1h", Run: func(context.Context, TaskEnv) error { runsB.Add(1); return nil }})
	tick(t, a.lease)
	synctest.Wait() // A's take-over pass has run
	if n := runsA.Load(); n != 1 {
		t.Fatalf("holder A ran %d take-over passes; want 1", n)
	}
	if st := tick(t, b.lease); st.Role != RoleStandby {
		t.Fatalf("B role = %s; want standby", st.Role)
	}
	loopOf(b, "tokens").trigger(TriggerScheduled)
	if n := runsB.Load(); n != 0 {
		t.Fatalf("standby B ran %d passes; want 0", n)
	}
	if v := testutil.ToFloat64(b.opts.Metrics.leaseHolder.WithLabelValues("B")); v != 0 {
		t.Fatalf("swarmguard_lease_holder{node=B} = %v; want 0", v)
	}
	if v := testutil.ToFloat64(a.opts.Metrics.leaseHolder.WithLabelValues("A")); v != 1 {
		t.Fatalf("swarmguard_lease_holder{node=A} = %v; want 1", v)
	}
}

func TestRuntimeErrorBacksOffAndOthersGoOn(t *testing.T) {
	synctest.Test(t, testRuntimeErrorBacksOffAndOthersGoOn)
}

func testRuntimeErrorBacksOffAndOthersGoOn(t *testing.T) {
	var good, bad, panicky atomic.Int32
	tasks := []Task{
		{Name: "bad", Schedule: "@every 1h", Run: func(context.Context, TaskEnv) error { bad.Add(1); return errors.New("vault sealed") }},
		{Name: "panicky", Schedule: "@every 1h", Run: func(context.Context, TaskEnv) error { panicky.Add(1); panic("boom") }},
		{Name: "good", Schedule: "@every 1h", Run: func(context.Context, TaskEnv) error { good.Add(1); return nil }},
	}
	rt := newTestRuntime(t, newFakeStore(), "A", tasks...)
	tick(t, rt.lease)
	synctest.Wait() // every loop's take-over pass has ended
	if good.Load() != 1 || bad.Load() != 1 || panicky.Load() != 1 {
		t.Fatalf("take-over passes: good %d, bad %d, panicky %d; want 1 each", good.Load(), bad.Load(), panicky.Load())
	}
	for _, name := range []string{"bad", "panicky"} {
		l := loopOf(rt, name)
		l.mu.Lock()
		failures, retry := l.failures, l.retry != nil
		l.mu.Unlock()
		if failures != 1 || !retry {
			t.Errorf("loop %s after its failed pass: failures %d, retry scheduled %v; want 1, true", name, failures, retry)
		}
		if v := testutil.ToFloat64(rt.opts.Metrics.reconcileErrors.WithLabelValues(name)); v != 1 {
			t.Errorf("swarmguard_reconcile_errors_total{loop=%s} = %v; want 1", name, v)
		}
	}
	// The good loop still runs on its schedule.
	loopOf(rt, "good").trigger(TriggerScheduled)
	if good.Load() != 2 {
		t.Fatalf("good loop runs = %d; want 2", good.Load())
	}
	if v := testutil.ToFloat64(rt.opts.Metrics.reconcileErrors.WithLabelValues("good")); v != 0 {
		t.Errorf("swarmguard_reconcile_errors_total{loop=good} = %v; want 0", v)
	}
	for _, l := range rt.loops {
		l.stopRetry()
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Base: 10 * time.Second, Max: 5 * time.Minute}
	tests := []struct {
		failures int
		max      time.Duration
	}{
		{1, 10 * time.Second}, {2, 20 * time.Second}, {3, 40 * time.Second}, {5, 160 * time.Second}, {6, 5 * time.Minute}, {60, 5 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.failures), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for i := 0; i < 200; i++ {
				d := b.Delay(tt.failures)
				if d < tt.max/2 || d > tt.max {
					t.Fatalf("Delay(%d) = %s; want within [%s, %s]", tt.failures, d, tt.max/2, tt.max)
				}
				seen[d] = true
			}
			if len(seen) < 2 {
				t.Fatalf("Delay(%d) gave the same value 200 times; want jitter", tt.failures)
			}
		})
	}
	if d := (Backoff{}).Delay(1); d < DefaultRetryBase/2 || d > DefaultRetryBase {
		t.Fatalf("zero Backoff Delay(1) = %s; want the defaults", d)
	}
}

// The pass outlives the stop grace: it is cancelled exactly when the grace runs out, not a moment before, and
// Run then releases the lease.
func TestRuntimeRunShutdownReleases(t *testing.T) {
	synctest.Test(t, testRuntimeRunShutdownReleases)
}

func testRuntimeRunShutdownReleases(t *testing.T) {
	const grace = 200 * time.Millisecond
	s := newFakeStore()
	var passes atomic.Int32
	var sawCancel atomic.Bool
	block := make(chan struct{})
	task := Task{Name: "tokens", Schedule: "@every 1h", Run: func(ctx context.Context, env TaskEnv) error {
		passes.Add(1)
		if env.Actor != "operator:A" || env.Reason != "" || env.Guard == nil || env.DryRun {
			return fmt.Errorf("env = %+v; want actor operator:A, empty reason, a Guard, not dry", env)
		}
		if err := env.CheckHolder(ctx); err != nil {
			return err
		}
		select {
		case <-block:
		case <-ctx.Done():
			sawCancel.Store(true)
		}
		return nil
	}}
	rt, err := NewRuntime(RuntimeOptions{Store: s, LeaseName: "swarmguard-lease", TTL: testTTL, Node: "A", Tasks: []Task{task},
		Metrics: NewMetrics(), StopGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	synctest.Wait() // the lease is taken and the take-over pass blocks
	if n := passes.Load(); n != 1 {
		t.Fatalf("take-over passes = %d; want 1", n)
	}
	if h := s.holder("swarmguard-lease"); h != rt.Lease().ID() {
		t.Fatalf("holder = %q; want %s", h, rt.Lease().ID())
	}
	cancel()
	time.Sleep(grace - time.Nanosecond)
	synctest.Wait()
	select {
	case err := <-done:
		t.Fatalf("Run returned (%v) %s after cancel; want it to wait the whole stop grace %s for the pass", err, grace-time.Nanosecond, grace)
	default:
	}
	if sawCancel.Load() {
		t.Fatalf("the pass was cancelled %s after the stop began; want only once the grace of %s runs out", grace-time.Nanosecond, grace)
	}
	if h := s.holder("swarmguard-lease"); h != rt.Lease().ID() {
		t.Fatalf("holder during the stop grace = %q; want still %s (released only after the passes)", h, rt.Lease().ID())
	}
	time.Sleep(time.Nanosecond)
	synctest.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v; want nil", err)
		}
	default:
		t.Fatalf("Run did not return once the stop grace of %s ran out", grace)
	}
	if !sawCancel.Load() {
		t.Fatal("the pass running past the stop grace was not cancelled")
	}
	if h := s.holder("swarmguard-lease"); h != "" {
		t.Fatalf("holder after shutdown = %q; want released", h)
	}
}

func TestRuntimeBadSchedule(t *testing.T) {
	_, err := NewRuntime(RuntimeOptions{Store: newFakeStore(), LeaseName: "l", TTL: testTTL, Node: "A", Tasks: []Task{
		{Name: "x", Schedule: "every hour", Run: func(context.Context, TaskEnv) error { return nil }},
		{Name: "y", Schedule: "@daily", Run: func(context.Context, TaskEnv) error { return nil }},
		{Name: "y", Schedule: "@daily", Run: func(context.Context, TaskEnv) error { return nil }},
	}})
	if err == nil || !strings.Contains(err.Error(), `loop x "every hour"`) || !strings.Contains(err.Error(), `"y" is registered twice`) {
		t.Fatalf("NewRuntime with a bad schedule and a duplicate = %v; want both named", err)
	}
}

func TestRuntimeHandOverWaitsForIdle(t *testing.T) {
	synctest.Test(t, testRuntimeHandOverWaitsForIdle)
}

func testRuntimeHandOverWaitsForIdle(t *testing.T) {
	s := newFakeStore()
	release := make(chan struct{})
	var running atomic.Bool
	rt := newTestRuntime(t, s, "A", Task{Name: "secrets", Schedule: "@every 1h", Run: func(context.Context, TaskEnv) error {
		running.Store(true)
		<-release
		running.Store(false)
		return nil
	}})
	tick(t, rt.lease)
	synctest.Wait() // the take-over pass has started and blocks
	if !running.Load() {
		t.Fatal("the take-over pass is not running; want it blocked in the task")
	}
	cli := newTestLease(s, "A", time.Now, func(o *LeaseOptions) { o.Instance, o.Request = "cli", true })
	tick(t, cli)
	tick(t, rt.lease)
	if h := s.holder("swarmguard-lease"); h != rt.Lease().ID() {
		t.Fatalf("holder while a pass runs = %q; want the controller kept it", h)
	}
	close(release)
	synctest.Wait() // the pass has ended
	if n := passesRunning(rt); n != 0 {
		t.Fatalf("passes running after release = %d; want 0", n)
	}
	tick(t, rt.lease)
	if h := s.holder("swarmguard-lease"); h != cli.ID() {
		t.Fatalf("holder after the pass = %q; want handed to %s", h, cli.ID())
	}
	rt.act.mu.Lock()
	paused := rt.act.paused
	rt.act.mu.Unlock()
	if paused {
		t.Fatal("passes still paused after the hand-over")
	}
}

func TestRuntimeAuditsEachAction(t *testing.T) {
	synctest.Test(t, testRuntimeAuditsEachAction)
}

// A pass's actions are audited when they are recorded (Record, through the auditor the pass's context
// carries), not rebuilt from the ledger: an entry someone else wrote earlier is not audited again.
func testRuntimeAuditsEachAction(t *testing.T) {
	led := ledgertest.New()
	_, _ = led.Append(t.Context(), swarm.Entry{Kind: swarm.KindCA, At: time.Unix(1000, 0), Actor: "cli:someone@host", Result: swarm.ResultOK})
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	task := Task{Name: "tokens", Schedule: "@every 1h", Run: func(ctx context.Context, env TaskEnv) error {
		return Record(ctx, led, swarm.Entry{Kind: swarm.KindJoinTokenWorker, At: time.Unix(2000, 0), Actor: env.Actor, Reason: "scheduled: too old",
			Result: swarm.ResultOK, Details: map[string]string{"old_fingerprint": "aaaa", "new_fingerprint": "bbbb", "swarm_id": "s1"}})
	}}
	rt, err := NewRuntime(RuntimeOptions{Store: newFakeStore(), LeaseName: "l", TTL: testTTL, Node: "A", Tasks: []Task{task},
		Ledger: led, Metrics: NewMetrics(), Audit: audit.New(t.Context(), log, nil), Log: log})
	if err != nil {
		t.Fatal(err)
	}
	rt.passCtx = t.Context()
	tick(t, rt.lease)
	synctest.Wait() // the take-over pass and its ledger sync are done
	out := buf.String()
	for _, want := range []string{`"kind":"join-token-worker"`, `"actor":"operator:A"`, `"reason":"scheduled: too old"`, `"new_fingerprint":"bbbb"`, `"event":"lease_acquired"`} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log lacks %s:\n%s", want, out)
		}
	}
	if strings.Count(out, `"event":"action"`) != 1 {
		t.Errorf("audit log has %d action records; want 1 (the CLI's older entry is not ours):\n%s", strings.Count(out, `"event":"action"`), out)
	}
	if v := testutil.ToFloat64(rt.opts.Metrics.lastAction.WithLabelValues(swarm.KindJoinTokenWorker)); v != 2000 {
		t.Errorf("swarmguard_last_action_timestamp_seconds{kind=join-token-worker} = %v; want 2000", v)
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestRunOnce(t *testing.T) {
	var order []string
	tasks := []Task{
		{Name: "a", Run: func(_ context.Context, env TaskEnv) error { order = append(order, "a"); return errors.New("nope") }},
		{Name: "b", Run: func(_ context.Context, env TaskEnv) error {
			order = append(order, "b")
			if !env.DryRun {
				return errors.New("not dry")
			}
			return nil
		}},
	}
	res := RunOnce(t.Context(), tasks, TaskEnv{DryRun: true}, NewMetrics())
	if len(res) != 2 || res[0].Err == nil || res[1].Err != nil || strings.Join(order, ",") != "a,b" {
		t.Fatalf("RunOnce = %+v (order %v); want a failed, b ok, both run in order", res, order)
	}
}

func TestRuntimeLapseIsLogged(t *testing.T) {
	s, clk := newFakeStore(), newFakeClock()
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	rt, err := NewRuntime(RuntimeOptions{Store: s, LeaseName: "l", TTL: testTTL, Node: "A", Metrics: NewMetrics(), Log: log,
		Audit: audit.New(t.Context(), log, nil), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	rt.passCtx = t.Context()
	tick(t, rt.lease)
	s.setReadErr(fmt.Errorf("listing config: %w", swarm.ErrUnreachable))
	clk.Advance(testTTL)
	_, _ = rt.lease.Tick(t.Context())
	out := buf.String()
	for _, want := range []string{`"msg":"standby: this replica could not renew the lease within its TTL; it acts again once it renews"`, `"event":"lease_lost"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if v := testutil.ToFloat64(rt.opts.Metrics.leaseHolder.WithLabelValues("A")); v != 0 {
		t.Errorf("swarmguard_lease_holder{node=A} after the lapse = %v; want 0", v)
	}
}

// A scheduled pass (cron's trigger, not the take-over) that outlives the stop grace, following a stalled CA
// rotation for instance: SIGTERM cancels it when the grace runs out and Run releases the lease then; the cron
// stop must not wait for it first (issue 21, finding 5).
func TestRuntimeStopCancelsScheduledPass(t *testing.T) {
	synctest.Test(t, testRuntimeStopCancelsScheduledPass)
}

func testRuntimeStopCancelsScheduledPass(t *testing.T) {
	const grace = 10 * time.Second
	s := newFakeStore()
	var scheduled atomic.Int32
	var sawCancel atomic.Bool
	task := Task{Name: "ca", Schedule: "@every 3s", Run: func(ctx context.Context, env TaskEnv) error {
		if scheduled.Add(1) == 1 {
			return nil // the take-over pass: nothing due
		}
		select { // the scheduled pass follows a rotation that a node down holds
		case <-ctx.Done():
			sawCancel.Store(true)
			return ctx.Err()
		case <-time.After(time.Hour):
			return nil
		}
	}}
	rt, err := NewRuntime(RuntimeOptions{Store: s, LeaseName: "swarmguard-lease", TTL: testTTL, Node: "A", Tasks: []Task{task},
		Metrics: NewMetrics(), StopGrace: grace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()
	time.Sleep(5 * time.Second) // the take-over pass, then the scheduled one at 3 s, which blocks
	synctest.Wait()
	if n := scheduled.Load(); n != 2 {
		t.Fatalf("passes = %d; want the take-over pass and one scheduled pass", n)
	}
	if h := s.holder("swarmguard-lease"); h != rt.Lease().ID() {
		t.Fatalf("holder = %q; want %s", h, rt.Lease().ID())
	}
	cancel() // SIGTERM
	time.Sleep(grace + releaseTimeout)
	synctest.Wait()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v; want nil", err)
		}
	default:
		t.Errorf("Run still runs %s after SIGTERM with a stop grace of %s: the scheduled pass was never cancelled", grace+releaseTimeout, grace)
	}
	if !sawCancel.Load() {
		t.Errorf("the scheduled pass running past the stop grace was not cancelled")
	}
	if h := s.holder("swarmguard-lease"); h != "" {
		t.Errorf("holder %s after SIGTERM = %q; want released", grace+releaseTimeout, h)
	}
	time.Sleep(2 * time.Hour) // on the old code the pass ends by itself; let everything drain
	synctest.Wait()
}
