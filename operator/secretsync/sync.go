package secretsync

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// Engine is the part of the Docker Engine the sync uses, in the swarm adapter's own types. *swarm.Client
// satisfies it. Each list is one API call.
type Engine interface {
	// ManagedSecrets returns the managed secrets (label swarmguard.managed=true).
	ManagedSecrets(ctx context.Context) ([]swarm.Secret, error)
	// CreateSecret creates a secret; a name taken already is swarm.ErrAlreadyExists.
	CreateSecret(ctx context.Context, name string, data []byte, labels map[string]string) (id string, err error)
	// RemoveSecret removes a secret; one a service uses is swarm.ErrInUse, a missing one swarm.ErrNotFound.
	RemoveSecret(ctx context.Context, id string) error
	// ServicesSecrets returns every service.
	ServicesSecrets(ctx context.Context) ([]swarm.ServiceSecrets, error)
	// ServiceSecrets returns one service; a missing one is swarm.ErrNotFound.
	ServiceSecrets(ctx context.Context, id string) (swarm.ServiceSecrets, error)
	// UpdateServiceSecrets replaces the secret list of the service's spec, written against version (an
	// older version is swarm.ErrConflict). The rest of the spec stays as it is.
	UpdateServiceSecrets(ctx context.Context, serviceID string, version uint64, refs []swarm.SecretRef) error
	// TasksSecrets returns the tasks of one service, or of all when serviceID is empty.
	TasksSecrets(ctx context.Context, serviceID string) ([]swarm.TaskSecrets, error)
}

var _ Engine = (*swarm.Client)(nil)

// Source reads Vault KV; *KV satisfies it.
type Source interface {
	Read(ctx context.Context, path string) (secrets.Value, error)
}

// Tunables of the rollout.
const (
	// maxConflictRetries bounds re-reads after a service changed under us.
	maxConflictRetries = 3
	// DefaultConcurrency is how many Vault reads, creates or removals a pass runs at once (secrets.concurrency).
	DefaultConcurrency = 8
	// DefaultRolloutConcurrency is how many services a pass rolls at once (secrets.rollout_concurrency).
	DefaultRolloutConcurrency = 8
)

// Outcomes of a mapping's sync, the result label of swarmguard_secret_sync_total.
const (
	OutcomeUnchanged = "unchanged" // nothing to do
	OutcomeChanged   = "changed"   // created, updated or removed something
	OutcomePlanned   = "planned"   // dry run
	OutcomeFailed    = "failed"    // a rollout was paused, rolled back or timed out
	OutcomeError     = "error"     // could not read or render or write
)

// Options change one pass.
type Options struct {
	// DryRun plans and changes nothing.
	DryRun bool
	// Force retries a rollout that failed before for the same version (a
	// person's `rotate secret`); the controller does not retry by itself.
	Force bool
	// Reason is recorded by the caller; the sync only logs it.
	Reason string
	// Done, when set, is called with each mapping's result as soon as it is known, before the pass goes
	// on: the caller audits each action when it happens.
	Done func(Result)
	// Reads, when set, are the pass's Vault reads started ahead (Syncer.ReadAhead, while the caller took
	// the lease): the pass uses them if they began at most ReadAheadMaxAge before it, and reads again
	// otherwise, or any path they do not hold.
	Reads *ReadAhead
}

// ReadAheadMaxAge is how old reads started ahead may be when a pass begins; older ones (the lease took long
// to come) are read again, so a pass never acts on a value read long before.
const ReadAheadMaxAge = 2 * time.Second

// ReadAhead is the Vault reads of a set of mappings, started before the pass that uses them.
type ReadAhead struct {
	began  time.Time
	done   chan struct{}
	values map[string]readResult
}

// ReadAhead starts reading every distinct path of mappings now (Concurrency at a time), for a pass that
// will begin soon: a command reads Vault while it connects to the engine and takes the lease, which
// reading does not need. Nothing is changed by it.
func (s *Syncer) ReadAhead(ctx context.Context, mappings []secrets.Mapping) *ReadAhead {
	ra := &ReadAhead{began: time.Now(), done: make(chan struct{})}
	go func() {
		defer close(ra.done)
		if err := guard.Do("reading vault ahead", func() { ra.values = s.readAll(ctx, mappings, func() {}) }); err != nil {
			s.logPanic(err)
			ra.values = nil // the pass reads every path itself
		}
	}()
	return ra
}

// usable waits for the reads and says whether a pass beginning now may use them.
func (ra *ReadAhead) usable(now time.Time) (map[string]readResult, bool) {
	<-ra.done
	return ra.values, now.Sub(ra.began) <= ReadAheadMaxAge
}

// Result is what one mapping's sync did.
type Result struct {
	Mapping string    `json:"mapping"`
	Outcome string    `json:"outcome"`
	Plan    *Plan     `json:"plan,omitempty"`
	Err     error     `json:"-"`
	Error   string    `json:"error,omitempty"`
	Created string    `json:"created,omitempty"`
	Updated []string  `json:"updated,omitempty"`
	Removed []string  `json:"removed,omitempty"`
	At      time.Time `json:"at"`
	// FailedService is the service whose rollout failed.
	FailedService string `json:"failed_service,omitempty"`
	// VaultVersion is the version read, when the read worked.
	VaultVersion int `json:"vault_version"`
	// Duration is how long this mapping's own sync took.
	Duration time.Duration `json:"-"`
}

// Syncer runs passes: observe the engine, read Vault, plan, apply.
type Syncer struct {
	Engine Engine
	Source Source
	// Key is the operator's HMAC key.
	Key sensitive.Value
	Log *slog.Logger
	// Now and After are the clock; nil means the real one.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// PollInterval and RolloutTimeout; 0 means the defaults.
	PollInterval   time.Duration
	RolloutTimeout time.Duration
	// BeforeUpdate, when set, runs after the new secret exists and before
	// the first service is updated: the crash-test hook.
	BeforeUpdate func(mapping string)
	// Guard, when set, runs before every write (create, service update,
	// removal); an error stops the mapping's apply there. The controller
	// re-checks that it still holds the lease with it.
	Guard func(ctx context.Context) error

	// Concurrency bounds the Vault reads, the creates and the removals a pass runs at once;
	// RolloutConcurrency the services rolled at once. 0 means DefaultConcurrency and
	// DefaultRolloutConcurrency.
	Concurrency        int
	RolloutConcurrency int
	// FailedBefore, when set, says whether the rollout of version wanted of mapping failed in an earlier
	// pass of any process (the ledger's newest entry of the mapping says so), and where: a holder that
	// took over does not retry a rollout known to fail.
	// An error (the ledger unreadable) fails the mapping for this pass: a failed read is not "never failed".
	FailedBefore func(ctx context.Context, mapping, wanted string) (service, message string, failed bool, err error)

	mu     sync.Mutex
	failed map[string]failure // by mapping: a rollout that failed, not retried for the same version
}

type failure struct {
	wanted string
	err    error
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Syncer) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Observe lists the managed secrets, the services and the tasks: three
// calls, made side by side. Any failure fails the whole observation; nothing
// is concluded from a partial one.
func (s *Syncer) Observe(ctx context.Context) (Observation, error) {
	var o Observation
	var errs [3]error
	var wg sync.WaitGroup
	list := func(i int, fn func() error) {
		wg.Go(func() {
			if err := guard.Do("observing the engine", func() { errs[i] = fn() }); err != nil {
				s.logPanic(err)
				errs[i] = err
			}
		})
	}
	list(0, func() (err error) { o.Secrets, err = s.Engine.ManagedSecrets(ctx); return err })
	list(1, func() (err error) { o.Services, err = s.Engine.ServicesSecrets(ctx); return err })
	list(2, func() (err error) { o.Tasks, err = s.Engine.TasksSecrets(ctx, ""); return err })
	wg.Wait()
	for i, what := range []string{"listing secrets", "listing services", "listing tasks"} {
		if errs[i] != nil {
			return Observation{}, fmt.Errorf("%s: %w", what, errs[i])
		}
	}
	return o, nil
}

// observeAhead starts Observe now, beside whatever the caller does next (the pass's Vault reads); wait
// gives its result. The observation ends when ctx does: a pass that needs none cancels it on return.
func (s *Syncer) observeAhead(ctx context.Context) (wait func() (Observation, error)) {
	var o Observation
	var err error
	done := make(chan struct{})
	go func() {
		defer close(done)
		if perr := guard.Do("observing the engine", func() { o, err = s.Observe(ctx) }); perr != nil {
			s.logPanic(perr)
			o, err = Observation{}, perr
		}
	}()
	return func() (Observation, error) {
		<-done
		return o, err
	}
}

// Desire reads m's path from Vault and renders the wanted version.
func (s *Syncer) Desire(ctx context.Context, m secrets.Mapping) (secrets.Desired, error) {
	v, err := s.Source.Read(ctx, m.FromPath)
	if err != nil {
		return secrets.Desired{}, fmt.Errorf("mapping %q: %w", m.Name, err)
	}
	return m.Desire(s.Key, v)
}

// Pass syncs the mappings together: one Vault read per distinct path (Concurrency at a time), one
// observation of the engine, a plan for every mapping, then the new versions created (Concurrency at a
// time), then each affected service updated once with all of its mappings' changes (RolloutConcurrency
// services at a time, each by its own update config, waiting for it to converge; each mapping's first
// service goes in a first wave, before its others), then one more observation and the old versions removed.
// A rollout that fails stops its mappings: no service not yet started is updated for them (the others'
// changes still go). A mapping's failure does not stop the others. Results
// are in the order of mappings; Options.Done gets each as soon as it is final.
func (s *Syncer) Pass(ctx context.Context, mappings []secrets.Mapping, opt Options) []Result {
	results := make([]Result, len(mappings))
	start := time.Now()
	final := func(i int, r Result) {
		if r.Duration == 0 {
			r.Duration = time.Since(start)
		}
		results[i] = r
		if opt.Done != nil {
			opt.Done(r)
		}
	}
	// The engine is observed while Vault is read, from the first read that succeeds: the plan needs both,
	// neither depends on the other, and a pass whose every read fails (Vault down) does not touch the
	// engine at all.
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	var startObserve sync.Once
	var observed func() (Observation, error)
	observe := func() { startObserve.Do(func() { observed = s.observeAhead(octx) }) }
	values := s.values(ctx, mappings, opt.Reads, observe)
	var ix *Index
	var obsErr error
	var items []*item
	for i, m := range mappings {
		if err := ctx.Err(); err != nil {
			final(i, s.errResult(m.Name, err))
			continue
		}
		rv := values[m.FromPath]
		if rv.err != nil {
			// Vault unreachable, denied, missing: no Docker changes.
			final(i, s.errResult(m.Name, fmt.Errorf("mapping %q: %w", m.Name, rv.err)))
			continue
		}
		want, err := m.Desire(s.Key, rv.v)
		if err != nil {
			final(i, s.errResult(m.Name, err)) // missing key, bad template
			continue
		}
		if ix == nil && obsErr == nil {
			observe()
			o, err := observed()
			if err != nil {
				obsErr = err
			} else {
				ix = NewIndex(o)
			}
		}
		if obsErr != nil {
			final(i, s.errResult(m.Name, obsErr))
			continue
		}
		items = append(items, &item{i: i, m: m, want: want, plan: ix.Plan(m, want), isOld: ix.isOld(m.Name, want.Name)})
	}
	s.applyAll(ctx, ix, items, opt, func(it *item) { final(it.i, it.r) })
	return results
}

type readResult struct {
	v   secrets.Value
	err error
}

// values is each distinct path's read for a pass: the reads started ahead when they are fresh (the
// observation then starts at once, beside the wait for them), the paths they lack read now.
func (s *Syncer) values(ctx context.Context, mappings []secrets.Mapping, ahead *ReadAhead, ok func()) map[string]readResult {
	if ahead == nil {
		return s.readAll(ctx, mappings, ok)
	}
	ok()
	got, fresh := ahead.usable(time.Now())
	if !fresh {
		s.log().Info("reads started ahead are too old; reading vault again", "max_age", ReadAheadMaxAge)
		return s.readAll(ctx, mappings, func() {})
	}
	var missing []secrets.Mapping
	for _, m := range mappings {
		if _, ok := got[m.FromPath]; !ok {
			missing = append(missing, m)
		}
	}
	out := maps.Clone(got)
	maps.Copy(out, s.readAll(ctx, missing, func() {}))
	return out
}

// readAll reads each distinct path of mappings once, Concurrency reads at a time; ok is called after each
// read that succeeded.
func (s *Syncer) readAll(ctx context.Context, mappings []secrets.Mapping, ok func()) map[string]readResult {
	out := make(map[string]readResult, len(mappings))
	var paths []string
	for _, m := range mappings {
		if _, ok := out[m.FromPath]; !ok {
			out[m.FromPath] = readResult{}
			paths = append(paths, m.FromPath)
		}
	}
	got := make([]readResult, len(paths))
	s.each(len(paths), s.concurrency(), func(i int) {
		v, err := s.Source.Read(ctx, paths[i])
		got[i] = readResult{v: v, err: err}
		if err == nil {
			ok()
		}
	}, func(i int, err error) {
		got[i] = readResult{err: fmt.Errorf("reading %s: %w", paths[i], err)}
	})
	for i, p := range paths {
		out[p] = got[i]
	}
	return out
}

// each runs fn(0..n-1), at most limit at a time, and waits for all. A panic in fn(i) is recovered and
// given to failed(i, err) (err matches guard.ErrPanic and does not carry the panic's value): it fails that
// item, and the others go on.
func (s *Syncer) each(n, limit int, fn func(i int), failed func(i int, err error)) {
	if n == 0 {
		return
	}
	limit = max(1, min(limit, n))
	next := make(chan int)
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() {
			for i := range next {
				if err := guard.Do("secret sync worker", func() { fn(i) }); err != nil {
					s.logPanic(err)
					failed(i, err)
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// logPanic logs a recovered panic with its stack (no values: see guard): it is a bug for a person to report.
func (s *Syncer) logPanic(err error) {
	var pe *guard.PanicError
	if errors.As(err, &pe) {
		s.log().Error("secret sync worker panicked; its item failed", "what", pe.What, "panic", pe.Kind, "where", pe.Where, "stack", string(pe.Stack))
	}
}

func (s *Syncer) concurrency() int {
	if s.Concurrency > 0 {
		return s.Concurrency
	}
	return DefaultConcurrency
}

func (s *Syncer) rolloutConcurrency() int {
	if s.RolloutConcurrency > 0 {
		return s.RolloutConcurrency
	}
	return DefaultRolloutConcurrency
}

func (s *Syncer) errResult(name string, err error) Result {
	return Result{Mapping: name, Outcome: OutcomeError, Err: err, Error: err.Error(), At: s.now()}
}

// item is one mapping being applied in a pass.
type item struct {
	i        int
	m        secrets.Mapping
	want     secrets.Desired
	plan     Plan
	isOld    func(swarm.SecretRef) bool
	wantedID string
	r        Result
	began    time.Time
	// done: the result is final (an error or failure before or during the rollout); reported: given to
	// the pass's final.
	done, reported bool
}

func (it *item) fail(now time.Time, err error, outcome string) {
	it.r.Err, it.r.Error, it.r.Outcome, it.r.At, it.done = err, err.Error(), outcome, now, true
}

// Apply carries out plan p for mapping m alone (Pass does many at once): create the wanted version if
// missing, roll each service onto it, then remove what is no longer used. Every step is safe to repeat.
func (s *Syncer) Apply(ctx context.Context, m secrets.Mapping, want secrets.Desired, p Plan, opt Options) Result {
	var ix *Index
	isOld := func(swarm.SecretRef) bool { return false }
	if o, err := s.Observe(ctx); err == nil {
		ix = NewIndex(o)
		isOld = ix.isOld(m.Name, want.Name)
	} else if !opt.DryRun && len(p.Updates) > 0 {
		return s.errResult(m.Name, err)
	}
	it := &item{m: m, want: want, plan: p, isOld: isOld}
	s.applyAll(ctx, ix, []*item{it}, opt, func(*item) {})
	return it.r
}

// applyAll applies the items' plans together (see Pass); final is called with each item once its result is.
func (s *Syncer) applyAll(ctx context.Context, ix *Index, items []*item, opt Options, final func(*item)) {
	log := s.log()
	for _, it := range items {
		p := it.plan
		it.r = Result{Mapping: it.m.Name, Plan: &it.plan, VaultVersion: it.want.VaultVersion, At: s.now(), Outcome: OutcomeUnchanged}
		it.wantedID = p.Wanted.ID
		if opt.DryRun {
			it.r.Outcome, it.done = OutcomePlanned, true
			continue
		}
		for _, st := range p.Settling {
			if st.State != swarm.UpdateUpdating {
				err := &swarm.RolloutError{Service: st.ServiceName, State: st.State, Message: st.Message}
				log.Error("secret rollout failed", "secret", it.m.Name, "service", st.ServiceName, "state", st.State, "err", err)
				it.fail(s.now(), err, OutcomeFailed)
				break
			}
		}
		if it.done || opt.Force || len(p.Updates) == 0 {
			continue
		}
		switch err, ok, rerr := s.failedBefore(ctx, it.m.Name, it.want.Name); {
		case rerr != nil:
			it.fail(s.now(), rerr, OutcomeError)
		case ok:
			// The rollout of this very version failed; trying again on every refresh would roll the
			// service back and forth. The result names the service that failed, as the failing pass's
			// did: the ledger entry written from it is what the next holder reads (FailedBefore).
			var re *swarm.RolloutError
			if errors.As(err, &re) {
				it.r.FailedService = re.Service
			}
			it.fail(s.now(), err, OutcomeFailed)
		}
	}
	report := func(it *item) {
		if !it.reported {
			it.reported = true
			final(it)
		}
	}
	for _, it := range items {
		if it.done {
			report(it)
		}
	}
	if opt.DryRun {
		return
	}
	var mu sync.Mutex // guards the items' results while services roll in parallel
	g := &guardCache{guard: s.Guard}

	// Creates, Concurrency at a time.
	var creates []*item
	for _, it := range items {
		if !it.done && it.plan.Create != nil {
			creates = append(creates, it)
		}
	}
	s.each(len(creates), s.concurrency(), func(k int) {
		it := creates[k]
		it.began = time.Now()
		if err := g.check(ctx); err != nil {
			it.fail(s.now(), err, OutcomeError)
			return
		}
		id, err := s.Engine.CreateSecret(ctx, it.want.Name, it.want.Data.Bytes(), it.want.Labels)
		switch {
		case errors.Is(err, swarm.ErrAlreadyExists):
			id, err = s.findManaged(ctx, it.m.Name, it.want.Name)
			if err != nil {
				it.fail(s.now(), err, OutcomeError)
				return
			}
		case err != nil:
			it.fail(s.now(), fmt.Errorf("creating secret %s: %w", it.want.Name, err), OutcomeError)
			return
		default:
			it.r.Created = it.want.Name
			log.Info("created secret version", "secret", it.m.Name, "secret_name", it.want.Name, "vault_version", it.want.VaultVersion, "reason", opt.Reason)
		}
		it.wantedID = id
	}, func(k int, err error) {
		creates[k].fail(s.now(), fmt.Errorf("creating secret %s: %w", creates[k].want.Name, err), OutcomeError)
	})
	for _, it := range creates {
		if it.done {
			report(it)
		}
	}

	// One update per affected service, with all of its mappings' changes.
	type svcWork struct {
		svc   swarm.ServiceSecrets
		items []*item
	}
	bySvc := map[string]*svcWork{}
	var order []*svcWork
	for _, it := range items {
		if it.done {
			continue
		}
		if s.BeforeUpdate != nil && len(it.plan.Updates) > 0 {
			s.BeforeUpdate(it.m.Name)
		}
		for _, up := range it.plan.Updates {
			w := bySvc[up.ServiceID]
			if w == nil {
				svc, ok := swarm.ServiceSecrets{}, false
				if ix != nil {
					svc, ok = ix.byID[up.ServiceID]
				}
				if !ok {
					svc = swarm.ServiceSecrets{ID: up.ServiceID, Name: up.ServiceName, Version: up.Version}
				}
				w = &svcWork{svc: svc}
				bySvc[up.ServiceID] = w
				order = append(order, w)
			}
			w.items = append(w.items, it)
		}
	}
	slices.SortFunc(order, func(a, b *svcWork) int { return cmp.Compare(a.svc.Name, b.svc.Name) })
	// Canaries: each mapping's first service (by name) converges before any other service of that mapping
	// starts, and a mapping whose canary fails touches no further service. A service carries all of its
	// mappings' changes in one update, so it starts only once the canary of every mapping it has a change
	// for, other than those it is the canary of, has ended: it rolls in the wave after the latest of those
	// canaries. (With mappings that share services, svc-b can be api_key's canary and db_password's second
	// service: it waits for db_password's canary svc-a.) A canary comes before its mapping's other services
	// by name, so the waves are found in one pass over the services in name order. Within a wave services
	// go RolloutConcurrency at a time; a wave starts when the one before it has ended.
	canary := map[*item]*svcWork{}
	wave := map[*svcWork]int{}
	var waves [][]*svcWork
	for _, w := range order {
		n := 0
		for _, it := range w.items {
			c, ok := canary[it]
			if !ok {
				canary[it] = w
				continue
			}
			n = max(n, wave[c]+1)
		}
		wave[w] = n
		if n == len(waves) {
			waves = append(waves, nil)
		}
		waves[n] = append(waves[n], w)
	}
	roll := func(w *svcWork) {
		mu.Lock()
		var live []*item
		for _, it := range w.items {
			if !it.done {
				live = append(live, it)
				if it.began.IsZero() {
					it.began = time.Now()
				}
			}
		}
		mu.Unlock()
		if len(live) == 0 {
			return // every mapping it had a change for stopped at a failed rollout
		}
		if err := g.check(ctx); err != nil {
			mu.Lock()
			for _, it := range live {
				if !it.done {
					it.fail(s.now(), err, OutcomeError)
				}
			}
			mu.Unlock()
			return
		}
		rolled, err := s.rollService(ctx, w.svc, live)
		mu.Lock()
		defer mu.Unlock()
		var re *swarm.RolloutError
		switch {
		case err == nil:
			for _, it := range rolled {
				it.r.Updated = append(it.r.Updated, w.svc.Name)
			}
		case errors.As(err, &re):
			for _, it := range live {
				if it.done {
					continue
				}
				s.remember(it.m.Name, it.want.Name, err)
				it.r.FailedService = w.svc.Name
				it.r.Updated = append(it.r.Updated, w.svc.Name)
				log.Error("secret rollout failed", "secret", it.m.Name, "service", w.svc.Name, "state", re.State, "secret_name", it.want.Name, "err", err)
				it.fail(s.now(), err, OutcomeFailed)
			}
		default:
			for _, it := range live {
				if !it.done {
					it.fail(s.now(), err, OutcomeError)
				}
			}
		}
	}
	for _, wv := range waves {
		s.each(len(wv), s.rolloutConcurrency(), func(k int) { roll(wv[k]) }, func(k int, err error) {
			mu.Lock()
			defer mu.Unlock()
			for _, it := range wv[k].items {
				if !it.done {
					it.fail(s.now(), fmt.Errorf("rolling service %s: %w", wv[k].svc.Name, err), OutcomeError)
				}
			}
		})
	}
	// Old versions: the plan's removals, checked once more after the rollouts against a fresh observation
	// (what the services and their tasks refer to now), then removed, Concurrency at a time.
	anyUpdated := false
	for _, it := range items {
		anyUpdated = anyUpdated || len(it.r.Updated) > 0
	}
	fresh := ix
	if anyUpdated {
		if o, err := s.Observe(ctx); err == nil {
			fresh = NewIndex(o)
		} else {
			fresh = nil
			log.Warn("looking again after the rollouts failed; old versions go in a later pass", "err", err)
		}
	}
	type removal struct {
		it *item
		v  Version
	}
	var removals []removal
	for _, it := range items {
		if it.done {
			continue
		}
		s.forget(it.m.Name)
		// The plan's removals, each only once nothing refers to it as the services are now: a version a
		// service's previous spec or task still uses (a rollout not done, a task still stopping) goes in a
		// later pass.
		var remove []Version
		for _, v := range it.plan.Remove {
			if !anyUpdated || fresh != nil && !fresh.referenced[v.ID] && !fresh.referenced[v.Name] {
				remove = append(remove, v)
			}
		}
		for _, v := range remove {
			removals = append(removals, removal{it: it, v: v})
		}
	}
	s.each(len(removals), s.concurrency(), func(k int) {
		rm := removals[k]
		if err := g.check(ctx); err != nil {
			mu.Lock()
			if !rm.it.done {
				rm.it.fail(s.now(), err, OutcomeError)
			}
			mu.Unlock()
			return
		}
		crashpoint.At("secret.before-remove") // every service is on the new version; the old one is still there
		err := s.Engine.RemoveSecret(ctx, rm.v.ID)
		switch {
		case err == nil:
			mu.Lock()
			rm.it.r.Removed = append(rm.it.r.Removed, rm.v.Name)
			mu.Unlock()
			log.Info("removed old secret version", "secret", rm.it.m.Name, "secret_name", rm.v.Name, "vault_version", rm.v.VaultVersion)
		case errors.Is(err, swarm.ErrInUse):
			log.Debug("old secret version still in use, kept", "secret_name", rm.v.Name)
		case errors.Is(err, swarm.ErrNotFound):
		default:
			// Not fatal: the next pass tries again.
			log.Warn("removing old secret version failed, will retry", "secret_name", rm.v.Name, "err", err)
		}
	}, func(k int, err error) {
		// Not fatal either (logged with its stack by each): the next pass tries again.
		log.Warn("removing old secret version failed, will retry", "secret_name", removals[k].v.Name, "err", err)
	})
	for _, it := range items {
		if it.reported {
			continue
		}
		slices.Sort(it.r.Updated)
		slices.Sort(it.r.Removed)
		if !it.done && (it.r.Created != "" || len(it.r.Updated) > 0 || len(it.r.Removed) > 0) {
			it.r.Outcome = OutcomeChanged
		}
		if !it.done {
			it.r.At = s.now()
		}
		if !it.began.IsZero() {
			it.r.Duration = time.Since(it.began)
		}
		report(it)
	}
}

// rollService writes one service's new secret list, with the changes of every item, and waits for it to
// converge. It returns the items that had a change for it (a service changed since the observation is
// decided again on what is there now; one gone is skipped).
func (s *Syncer) rollService(ctx context.Context, obs swarm.ServiceSecrets, items []*item) ([]*item, error) {
	log := s.log().With("service", obs.Name)
	compose := func(svc swarm.ServiceSecrets) ([]swarm.SecretRef, []*item, []string) {
		var rolled []*item
		var names []string
		cur := svc
		for _, it := range items {
			nu, _, _ := planService(it.m, Version{ID: it.wantedID, Name: it.want.Name}, cur, it.isOld)
			names = append(names, it.want.Name)
			if nu == nil {
				continue
			}
			cur.Secrets = nu.Refs
			rolled = append(rolled, it)
		}
		return cur.Secrets, rolled, names
	}
	var before swarm.ServiceSecrets
	var rolled []*item
	var wanted []string
	for attempt := 0; ; attempt++ {
		cur, err := s.Engine.ServiceSecrets(ctx, obs.ID)
		if errors.Is(err, swarm.ErrNotFound) {
			log.Info("service gone before its update, skipped")
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("inspecting service %s: %w", obs.Name, err)
		}
		before = cur
		var refs []swarm.SecretRef
		refs, rolled, wanted = compose(cur)
		if len(rolled) == 0 {
			return nil, nil
		}
		err = s.Engine.UpdateServiceSecrets(ctx, obs.ID, cur.Version, refs)
		if err == nil {
			break
		}
		if errors.Is(err, swarm.ErrConflict) && attempt < maxConflictRetries {
			log.Debug("service changed during its update, deciding again", "attempt", attempt+1)
			continue
		}
		return nil, fmt.Errorf("updating service %s: %w", obs.Name, err)
	}
	log.Info("pointed service at new secret version", "secret_names", wanted)
	crashpoint.At("secret.after-repoint") // the service points at the new versions; its rollout is not followed yet
	r := swarm.Rollout{Engine: s.Engine, Log: s.Log, Now: s.Now, After: s.After, PollInterval: s.PollInterval, Timeout: s.RolloutTimeout}
	err := r.Wait(ctx, obs.ID, obs.Name, before, func(tasks []swarm.TaskSecrets) bool {
		for _, w := range wanted {
			if !tasksOnVersion(tasks, w) {
				return false
			}
		}
		return true
	})
	return rolled, err
}

// guardCache runs the guard (the lease re-check, a CAS write on the engine) before writes, but at most once
// per guardFresh: the writes of a pass that come together (creates, service updates, removals in
// parallel) share one check, and a check less than guardFresh old (it renewed the lease for a whole TTL)
// stands for the next writes. The pass's context still ends the moment the hold ends.
type guardCache struct {
	guard func(context.Context) error
	mu    sync.Mutex
	at    time.Time
}

// guardFresh is how long a successful lease re-check stands for the writes after it.
const guardFresh = time.Second

func (g *guardCache) check(ctx context.Context) error {
	if g.guard == nil {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.at.IsZero() && time.Since(g.at) < guardFresh {
		return ctx.Err()
	}
	if err := g.guard(ctx); err != nil {
		g.at = time.Time{}
		return err
	}
	g.at = time.Now()
	return nil
}

// remember keeps that the rollout of wanted for mapping failed, so it is not retried by itself.
func (s *Syncer) remember(mapping, wanted string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failed == nil {
		s.failed = map[string]failure{}
	}
	s.failed[mapping] = failure{wanted: wanted, err: err}
}

func (s *Syncer) forget(mapping string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failed, mapping)
}

// failedBefore says whether the rollout of wanted for mapping failed before: in this process, or as
// FailedBefore (the ledger) says for another process (after a failover).
func (s *Syncer) failedBefore(ctx context.Context, mapping, wanted string) (failure error, failed bool, readErr error) {
	s.mu.Lock()
	prev, ok := s.failed[mapping]
	s.mu.Unlock()
	if ok {
		if prev.wanted == wanted {
			return prev.err, true, nil
		}
		return nil, false, nil
	}
	if s.FailedBefore == nil {
		return nil, false, nil
	}
	svc, msg, ok, err := s.FailedBefore(ctx, mapping, wanted)
	if err != nil {
		return nil, false, fmt.Errorf("mapping %q: reading whether its rollout failed before: %w", mapping, err)
	}
	if !ok {
		return nil, false, nil
	}
	ferr := &swarm.RolloutError{Service: svc, State: "failed in an earlier pass", Message: msg, Earlier: true}
	s.remember(mapping, wanted, ferr)
	return ferr, true, nil
}

// findManaged finds the ID of an existing version after a create met
// "already exists" (another replica, or a retry).
func (s *Syncer) findManaged(ctx context.Context, mapping, name string) (string, error) {
	all, err := s.Engine.ManagedSecrets(ctx)
	if err != nil {
		return "", fmt.Errorf("listing secrets after %s existed: %w", name, err)
	}
	for _, sec := range ManagedVersions(mapping, all) {
		if sec.Name == name {
			return sec.ID, nil
		}
	}
	return "", fmt.Errorf("a secret named %s exists but is not labelled %s=%s: swarmguard will not adopt it; remove or rename it", name, secrets.LabelSecret, mapping)
}

// tasksOnVersion: every task meant to run (desired running, or ready: a stop-first update's new task
// waiting for the old one to stop) is running and mounts wanted, and at least one is.
func tasksOnVersion(tasks []swarm.TaskSecrets, wanted string) bool {
	return swarm.TasksRunning(tasks, func(t swarm.TaskSecrets) bool {
		return slices.ContainsFunc(t.Secrets, func(r swarm.SecretRef) bool { return r.SecretName == wanted })
	})
}
