package operator

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestRunTaskPanicHidesItsValue: a pass that panics fails like any other (RunOnce's result, the loop's
// backoff), and neither its error (which goes into the audit record and the webhooks) nor the log carries
// the panic's value, which may be secret material formatted into it.
func TestRunTaskPanicHidesItsValue(t *testing.T) {
	const tok = "SWMTKN-1-49nj1cmql0jkz5s954yi3oex3nedyz0fb0xx14ie39trti4wxv-8vxv8rssmk743ojnwacrr2e7c"
	var logs bytes.Buffer
	task := Task{Name: "tokens", Schedule: "@every 1h", Run: func(context.Context, TaskEnv) error { panic("publishing " + tok) }}
	res := RunOnce(t.Context(), []Task{task}, TaskEnv{Log: slog.New(slog.NewJSONHandler(&logs, nil))}, nil)
	if len(res) != 1 || !errors.Is(res[0].Err, guard.ErrPanic) {
		t.Fatalf("RunOnce(panicking task) = %+v; want an error matching guard.ErrPanic", res)
	}
	if got := res[0].Err.Error(); strings.Contains(got, tok) || !strings.Contains(got, "loop tokens") {
		t.Errorf("error = %q; want it to name the loop and not to carry the panic's value", got)
	}
	if strings.Contains(logs.String(), tok) || !strings.Contains(logs.String(), "pass panicked") {
		t.Errorf("log = %s; want \"pass panicked\" without the panic's value", logs.String())
	}
}

// panicOnce panics at its first lease read, as a bug in a store call would.
type panicOnce struct {
	*fakeStore
	mu    sync.Mutex
	reads int
}

func (p *panicOnce) ConfigByName(ctx context.Context, name string) (swarm.ConfigObject, error) {
	p.mu.Lock()
	p.reads++
	first := p.reads == 1
	p.mu.Unlock()
	if first {
		panic("reading the lease")
	}
	return p.fakeStore.ConfigByName(ctx, name)
}

// TestLeaseRunSurvivesAPanickingTick: a panic in one lease tick is logged and the loop goes on: the next
// tick takes the lease.
func TestLeaseRunSurvivesAPanickingTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		s := &panicOnce{fakeStore: newFakeStore()}
		l := newTestLease(s, "A", time.Now, func(o *LeaseOptions) { o.Log = slog.New(slog.NewJSONHandler(&logs, nil)) })
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); l.Run(ctx) }()
		time.Sleep(testTTL)
		cancel()
		<-done
		if !l.Holding() || s.reads < 2 || !strings.Contains(logs.String(), "lease tick panicked") {
			t.Fatalf("after a panicking first tick: holding %v, reads %d, log %s; want the next ticks to take the lease", l.Holding(), s.reads, logs.String())
		}
	})
}
