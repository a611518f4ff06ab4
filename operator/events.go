package operator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmguard/swarmguard/swarm"
)

// Event tunables.
const (
	// DefaultEventQuiet is how long a loop waits after the last event before it reconciles: a stack deploy
	// creates its services back to back (tens of milliseconds apart), so one quiet gap ends the burst and
	// its services are reconciled together, once each.
	DefaultEventQuiet = 300 * time.Millisecond
	// DefaultEventMaxWait bounds that wait from the first pending event, so a steady stream of events (a
	// long deploy, a flapping service) still gets reconciled every couple of seconds.
	DefaultEventMaxWait = 2 * time.Second
	// eventRetryBase and eventRetryMax pace reconnections after the stream broke: 1 s doubling to 30 s.
	eventRetryBase = time.Second
	eventRetryMax  = 30 * time.Second
)

// Triggers of event-driven passes.
const (
	TriggerEventsConnected = "event stream (re)connected: a full pass, since events may have been missed meanwhile"
	TriggerEvents          = "engine events"
)

// Metric names of the event follower.
const (
	MetricEventsSeen      = "swarmguard_events_total"
	MetricEventReconciles = "swarmguard_event_reconciles_total"
	MetricEventLag        = "swarmguard_event_lag_seconds"
	MetricEventStreamUp   = "swarmguard_event_stream_connected"
	MetricEventReconnects = "swarmguard_event_stream_reconnects_total"
)

// EventSource is the engine's event stream. *swarm.Client satisfies it.
type EventSource interface {
	Events(ctx context.Context) (<-chan swarm.Event, <-chan error)
}

var _ EventSource = (*swarm.Client)(nil)

// Changes is what a batch of coalesced events names: the IDs of the changed objects per type, each once,
// and what the events were (for logs and the ledger's reason).
type Changes struct {
	// IDs holds, per object type (swarm.EventService, ...), the IDs the events named, sorted, each once.
	IDs map[string][]string
	// Names holds the objects' names by ID where the events gave one.
	Names map[string]string
	// Events is how many events the batch coalesced; Oldest is the engine time of the oldest.
	Events int
	Oldest time.Time
}

// Of is the IDs of the changed objects of one type.
func (c Changes) Of(typ string) []string { return c.IDs[typ] }

// Describe says what changed in a few words, for a log line or a ledger reason: "engine events: 3 service
// change(s) (web, api, db)".
func (c Changes) Describe() string {
	types := make([]string, 0, len(c.IDs))
	for t := range c.IDs {
		types = append(types, t)
	}
	sort.Strings(types)
	parts := make([]string, 0, len(types))
	for _, t := range types {
		ids := c.IDs[t]
		names := make([]string, 0, min(len(ids), 3))
		for _, id := range ids[:min(len(ids), 3)] {
			names = append(names, cmpOrStr(c.Names[id], id))
		}
		more := ""
		if len(ids) > 3 {
			more = ", ..."
		}
		parts = append(parts, fmt.Sprintf("%d %s change(s) (%s%s)", len(ids), t, strings.Join(names, ", "), more))
	}
	return TriggerEvents + ": " + strings.Join(parts, "; ")
}

func cmpOrStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// pendingEvents is what a loop has to reconcile: events not yet handled, or a full pass.
type pendingEvents struct {
	mu        sync.Mutex
	full      bool      // a full pass is due (the stream (re)connected)
	fullSince time.Time // when the stream connected: a pass started after it covers the full pass
	ids       map[string]map[string]bool
	names     map[string]string
	n         int
	oldest    time.Time
	first     time.Time // when the first pending event arrived (local clock)
	last      time.Time // when the last one arrived
}

func (p *pendingEvents) add(ev swarm.Event, at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ids == nil {
		p.ids, p.names = map[string]map[string]bool{}, map[string]string{}
	}
	if p.ids[ev.Type] == nil {
		p.ids[ev.Type] = map[string]bool{}
	}
	if ev.ID != "" {
		p.ids[ev.Type][ev.ID] = true
	}
	if ev.Name != "" {
		p.names[ev.ID] = ev.Name
	}
	if p.n == 0 && !p.full {
		p.first = at
	}
	if p.n == 0 || (!ev.Time.IsZero() && ev.Time.Before(p.oldest)) {
		p.oldest = ev.Time
	}
	p.n++
	p.last = at
}

func (p *pendingEvents) setFull(at time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.full && p.n == 0 {
		p.first = at
	}
	p.full, p.fullSince, p.last = true, at, at
}

// due says how long to wait before taking the batch: until quiet has passed since the last event, at most
// maxWait from the first; 0 when it is due now, -1 when nothing is pending.
func (p *pendingEvents) due(now time.Time, quiet, maxWait time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n == 0 && !p.full {
		return -1
	}
	w := min(p.last.Add(quiet).Sub(now), p.first.Add(maxWait).Sub(now))
	return max(w, 0)
}

// take empties the pending set and returns it.
func (p *pendingEvents) take() (full bool, fullSince time.Time, ch Changes) {
	p.mu.Lock()
	defer p.mu.Unlock()
	full, fullSince = p.full, p.fullSince
	ch = Changes{IDs: map[string][]string{}, Names: p.names, Events: p.n, Oldest: p.oldest}
	for t, set := range p.ids {
		ids := make([]string, 0, len(set))
		for id := range set {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		ch.IDs[t] = ids
	}
	p.full, p.ids, p.names, p.n = false, nil, nil, 0
	return full, fullSince, ch
}

// eventMetrics are the follower's metrics; nil-safe like Metrics.
type eventMetrics struct {
	seen       *prometheus.CounterVec
	reconciles *prometheus.CounterVec
	lag        *prometheus.HistogramVec
	up         prometheus.Gauge
	reconnects prometheus.Counter
}

func newEventMetrics(m *Metrics) *eventMetrics {
	if m == nil {
		return nil
	}
	em := &eventMetrics{
		seen: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEventsSeen,
			Help: "Engine events the lease holder received, by object type and action."}, []string{"type", "action"}),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{Name: MetricEventReconciles,
			Help: "Reconciles started by engine events, by loop and kind (changed: only what the events named; full: a whole pass)."},
			[]string{"loop", "kind"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: MetricEventLag,
			Help:    "From the engine's time of the oldest event of a batch to the end of the reconcile that handled it.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60, 300}}, []string{"loop"}),
		up: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricEventStreamUp,
			Help: "1 while this replica follows the engine's event stream (the holder only)."}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricEventReconnects,
			Help: "Times the event stream broke and was opened again."}),
	}
	m.reg.MustRegister(em.seen, em.reconciles, em.lag, em.up, em.reconnects)
	return em
}

func (em *eventMetrics) event(ev swarm.Event) {
	if em != nil {
		em.seen.WithLabelValues(ev.Type, ev.Action).Inc()
	}
}

func (em *eventMetrics) reconcile(loop, kind string) {
	if em != nil {
		em.reconciles.WithLabelValues(loop, kind).Inc()
	}
}

func (em *eventMetrics) observeLag(loop string, d time.Duration) {
	if em != nil {
		em.lag.WithLabelValues(loop).Observe(d.Seconds())
	}
}

func (em *eventMetrics) connected(up bool) {
	if em == nil {
		return
	}
	if up {
		em.up.Set(1)
	} else {
		em.up.Set(0)
	}
}

func (em *eventMetrics) reconnect() {
	if em != nil {
		em.reconnects.Inc()
	}
}

// eventLoops are the loops that follow events.
func (rt *Runtime) eventLoops() []*loop {
	var out []*loop
	for _, l := range rt.loops {
		if len(l.task.Events) > 0 {
			out = append(out, l)
		}
	}
	return out
}

// startEvents starts the follower and one worker per event-following loop; the channel closes when all
// have returned after ctx ended.
func (rt *Runtime) startEvents(ctx context.Context) <-chan struct{} {
	done := make(chan struct{})
	loops := rt.eventLoops()
	if rt.opts.Events == nil || len(loops) == 0 {
		close(done)
		return done
	}
	var wg sync.WaitGroup
	wg.Add(1 + len(loops))
	go func() { defer wg.Done(); rt.followEvents(ctx, loops) }()
	for _, l := range loops {
		go func() { defer wg.Done(); l.eventWorker(ctx) }()
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// followEvents follows the engine's event stream while this replica holds the lease: a standby does not
// subscribe. Each (re)connection asks every event-following loop for a full pass (what happened while the
// stream was down is unknown), and each event is handed to the loops that follow its type. A broken stream
// is opened again after a backoff.
func (rt *Runtime) followEvents(ctx context.Context, loops []*loop) {
	log := rt.log.With("component", "events")
	failures := 0
	for ctx.Err() == nil {
		if !rt.lease.Holding() {
			select {
			case <-ctx.Done():
				return
			case <-rt.roleCh:
			}
			continue
		}
		err := rt.followOnce(ctx, log, loops)
		rt.ev.connected(false)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNotHolder) {
			log.Info("event stream closed: this replica no longer holds the lease")
			failures = 0
			continue
		}
		failures++
		delay := Backoff{Base: eventRetryBase, Max: eventRetryMax}.Delay(failures)
		rt.ev.reconnect()
		log.Warn("event stream broke, reconnecting; schedules go on meanwhile", "err", err, "retry_in", delay.Round(10*time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

var errNotHolder = errors.New("not the lease holder")

func (rt *Runtime) followOnce(ctx context.Context, log *slog.Logger, loops []*loop) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	evs, errc := rt.opts.Events.Events(sctx)
	connectedAt := time.Now()
	rt.ev.connected(true)
	log.Info("following the engine's events", "loops", loopNames(loops))
	for _, l := range loops {
		l.pending.setFull(connectedAt)
		l.poke()
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-rt.roleCh:
			if !rt.lease.Holding() {
				return errNotHolder
			}
		case err, ok := <-errc:
			if !ok {
				err = swarm.ErrEventStreamEnded
			}
			return err
		case ev, ok := <-evs:
			if !ok {
				continue // the reason follows on errc
			}
			rt.ev.event(ev)
			log.Debug("engine event", "type", ev.Type, "action", ev.Action, "id", ev.ID, "name", ev.Name)
			if !rt.lease.Holding() {
				return errNotHolder
			}
			now := time.Now()
			for _, l := range loops {
				if slices.Contains(l.task.Events, ev.Type) {
					l.pending.add(ev, now)
					l.poke()
				}
			}
		}
	}
}

func loopNames(loops []*loop) []string {
	out := make([]string, len(loops))
	for i, l := range loops {
		out[i] = l.task.Name
	}
	return out
}

func (l *loop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// eventWorker waits for pending events, lets them settle (EventQuiet after the last, EventMaxWait after the
// first) and reconciles them in one go: the changed objects only through Task.React, or a full pass when
// the stream (re)connected or the task has no React.
func (l *loop) eventWorker(ctx context.Context) {
	rt := l.rt
	for {
		w := l.pending.due(time.Now(), rt.opts.EventQuiet, rt.opts.EventMaxWait)
		var timer <-chan time.Time
		if w >= 0 {
			if w == 0 {
				l.reconcileEvents()
				continue
			}
			timer = time.After(w)
		}
		select {
		case <-ctx.Done():
			return
		case <-l.wake:
		case <-timer:
		}
	}
}

// reconcileEvents takes the pending batch and runs it.
func (l *loop) reconcileEvents() {
	rt := l.rt
	full, fullSince, ch := l.pending.take()
	if !rt.startPass() {
		return
	}
	defer rt.passes.Done()
	switch {
	case full:
		// Events that came with the full pass are covered by it.
		if l.execute(TriggerEventsConnected, fullSince, l.task.Run) {
			rt.ev.reconcile(l.task.Name, "full")
		}
	case l.task.React == nil:
		if l.execute(ch.Describe(), time.Time{}, l.task.Run) {
			rt.ev.reconcile(l.task.Name, "full")
			l.lag(ch)
		}
	default:
		react := l.task.React
		if l.execute(ch.Describe(), time.Time{}, func(ctx context.Context, env TaskEnv) error {
			env.Reason = ch.Describe()
			return react(ctx, env, ch)
		}) {
			rt.ev.reconcile(l.task.Name, "changed")
			l.lag(ch)
		}
	}
}

func (l *loop) lag(ch Changes) {
	if ch.Oldest.IsZero() {
		return
	}
	d := time.Since(ch.Oldest)
	l.rt.ev.observeLag(l.task.Name, d)
	l.log.Debug("events reconciled", "events", ch.Events, "lag", d.Round(time.Millisecond), "what", ch.Describe())
}
