package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/sensitive"
)

// Engine is the part of the Docker Engine the sync uses, in this package's
// own types. The caller adapts its engine client to it (operator does, over
// swarm.Client). Each list is one API call.
type Engine interface {
	// ListSecrets returns the managed secrets (label swarmguard.managed=true).
	ListSecrets(ctx context.Context) ([]Secret, error)
	// CreateSecret creates a secret; a name taken already is ErrExists.
	CreateSecret(ctx context.Context, name string, data []byte, labels map[string]string) (id string, err error)
	// RemoveSecret removes a secret; one a service uses is ErrInUse, a
	// missing one ErrEngineNotFound.
	RemoveSecret(ctx context.Context, id string) error
	// ListServices returns every service.
	ListServices(ctx context.Context) ([]Service, error)
	// InspectService returns one service; a missing one is ErrEngineNotFound.
	InspectService(ctx context.Context, id string) (Service, error)
	// UpdateServiceSecrets replaces the secret list of the service's spec,
	// written against version (an older version is ErrEngineConflict). The
	// rest of the spec stays as it is.
	UpdateServiceSecrets(ctx context.Context, serviceID string, version uint64, refs []SecretRef) error
	// ListTasks returns the tasks of one service, or of all when serviceID is empty.
	ListTasks(ctx context.Context, serviceID string) ([]Task, error)
}

// Source reads Vault KV; *KV satisfies it.
type Source interface {
	Read(ctx context.Context, path string) (Value, error)
}

// Tunables of the rollout.
const (
	// DefaultPollInterval is how often a rollout is checked; Docker's own
	// `service update` progress polls about this often.
	DefaultPollInterval = time.Second
	// DefaultRolloutTimeout bounds the wait for one service to converge;
	// a service whose update config is slower needs a longer one.
	DefaultRolloutTimeout = 5 * time.Minute
	// maxConflictRetries bounds re-reads after a service changed under us.
	maxConflictRetries = 3
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

// RolloutError says a service's rollout did not complete.
type RolloutError struct {
	Service string
	State   string // Docker's update state, or "timeout"
	Message string
	// Next says what was kept and what to do; empty means the secret sync's own words.
	Next string
}

func (e *RolloutError) Error() string {
	s := fmt.Sprintf("rollout of service %s ended %s", e.Service, e.State)
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Next != "" {
		return s + "; " + e.Next
	}
	return s + "; the old secret is kept and no further service of this mapping was touched; fix the service, then run `swarmguard rotate secret`"
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
// calls. Any failure fails the whole observation; nothing is concluded from
// a partial one.
func (s *Syncer) Observe(ctx context.Context) (Observation, error) {
	sec, err := s.Engine.ListSecrets(ctx)
	if err != nil {
		return Observation{}, fmt.Errorf("listing secrets: %w", err)
	}
	svc, err := s.Engine.ListServices(ctx)
	if err != nil {
		return Observation{}, fmt.Errorf("listing services: %w", err)
	}
	tasks, err := s.Engine.ListTasks(ctx, "")
	if err != nil {
		return Observation{}, fmt.Errorf("listing tasks: %w", err)
	}
	return Observation{Secrets: sec, Services: svc, Tasks: tasks}, nil
}

// Desire reads m's path from Vault and renders the wanted version.
func (s *Syncer) Desire(ctx context.Context, m Mapping) (Desired, error) {
	v, err := s.Source.Read(ctx, m.FromPath)
	if err != nil {
		return Desired{}, fmt.Errorf("mapping %q: %w", m.Name, err)
	}
	return m.Desire(s.Key, v)
}

// Pass syncs each mapping: one observation of the engine for the pass
// (taken again only after a mapping changed something), one Vault read per
// mapping. A mapping's failure does not stop the others.
func (s *Syncer) Pass(ctx context.Context, mappings []Mapping, opt Options) []Result {
	results := make([]Result, 0, len(mappings))
	var ix *Index
	stale := true
	for _, m := range mappings {
		start := time.Now()
		add := func(r Result) {
			r.Duration = time.Since(start)
			results = append(results, r)
			if opt.Done != nil {
				opt.Done(r)
			}
		}
		if ctx.Err() != nil {
			add(s.errResult(m.Name, ctx.Err()))
			continue
		}
		want, err := s.Desire(ctx, m)
		if err != nil {
			// Vault unreachable, denied, missing key, bad template: no Docker changes.
			add(s.errResult(m.Name, err))
			continue
		}
		if stale {
			o, err := s.Observe(ctx)
			if err != nil {
				add(s.errResult(m.Name, err))
				continue
			}
			ix, stale = NewIndex(o), false
		}
		r := s.Apply(ctx, m, want, ix.Plan(m, want), opt)
		if r.Created != "" || len(r.Updated) > 0 || len(r.Removed) > 0 || r.Outcome == OutcomeFailed || r.Outcome == OutcomeError {
			stale = true
		}
		add(r)
	}
	return results
}

func (s *Syncer) errResult(name string, err error) Result {
	return Result{Mapping: name, Outcome: OutcomeError, Err: err, Error: err.Error(), At: s.now()}
}

// Apply carries out plan p for mapping m: create the wanted version if
// missing, roll each service onto it one by one (stopping at the first that
// does not converge), then remove what p says. Every step is safe to repeat.
func (s *Syncer) Apply(ctx context.Context, m Mapping, want Desired, p Plan, opt Options) Result {
	log := s.log().With("secret", m.Name)
	r := Result{Mapping: m.Name, Plan: &p, VaultVersion: want.VaultVersion, At: s.now(), Outcome: OutcomeUnchanged}
	fail := func(err error, outcome string) Result {
		r.Err, r.Error, r.Outcome, r.At = err, err.Error(), outcome, s.now()
		return r
	}
	if opt.DryRun {
		r.Outcome = OutcomePlanned
		return r
	}
	for _, st := range p.Settling {
		if st.State != UpdateUpdating {
			err := &RolloutError{Service: st.ServiceName, State: st.State, Message: st.Message}
			log.Error("secret rollout failed", "service", st.ServiceName, "state", st.State, "err", err)
			return fail(err, OutcomeFailed)
		}
	}
	s.mu.Lock()
	prev, hadFailure := s.failed[m.Name]
	s.mu.Unlock()
	if hadFailure && prev.wanted == want.Name && !opt.Force && len(p.Updates) > 0 {
		// The rollout of this very version failed; trying again on every
		// refresh would roll the service back and forth.
		return fail(prev.err, OutcomeFailed)
	}

	guard := func() error {
		if s.Guard == nil {
			return nil
		}
		return s.Guard(ctx)
	}
	wantedID := p.Wanted.ID
	if p.Create != nil {
		if err := guard(); err != nil {
			return fail(err, OutcomeError)
		}
		id, err := s.Engine.CreateSecret(ctx, want.Name, want.Data.Bytes(), want.Labels)
		switch {
		case errors.Is(err, ErrExists):
			id, err = s.findManaged(ctx, m.Name, want.Name)
			if err != nil {
				return fail(err, OutcomeError)
			}
		case err != nil:
			return fail(fmt.Errorf("creating secret %s: %w", want.Name, err), OutcomeError)
		default:
			r.Created = want.Name
			log.Info("created secret version", "secret_name", want.Name, "vault_version", want.VaultVersion, "reason", opt.Reason)
		}
		wantedID = id
	}
	if s.BeforeUpdate != nil && len(p.Updates) > 0 {
		s.BeforeUpdate(m.Name)
	}
	for _, up := range p.Updates {
		if err := guard(); err != nil {
			return fail(err, OutcomeError)
		}
		if err := s.rollOne(ctx, m, want.Name, wantedID, up, &r); err != nil {
			var re *RolloutError
			if errors.As(err, &re) {
				s.mu.Lock()
				if s.failed == nil {
					s.failed = map[string]failure{}
				}
				s.failed[m.Name] = failure{wanted: want.Name, err: err}
				s.mu.Unlock()
				r.FailedService = up.ServiceName
				log.Error("secret rollout failed", "service", up.ServiceName, "state", re.State, "secret_name", want.Name, "err", err)
				return fail(err, OutcomeFailed)
			}
			return fail(err, OutcomeError)
		}
	}
	s.mu.Lock()
	delete(s.failed, m.Name)
	s.mu.Unlock()
	remove := p.Remove
	if len(r.Updated) > 0 {
		// The rollout moved the services' previous specs onto the version they left; look again, so what
		// nothing refers to any more goes in this pass rather than the next.
		if obs, err := s.Observe(ctx); err == nil {
			remove = ComputePlan(m, Desired{Name: want.Name, HMAC: want.HMAC, VaultVersion: want.VaultVersion}, obs).Remove
		} else {
			log.Warn("looking again after the rollout failed; old versions go in a later pass", "err", err)
		}
	}
	for _, v := range remove {
		if err := guard(); err != nil {
			return fail(err, OutcomeError)
		}
		err := s.Engine.RemoveSecret(ctx, v.ID)
		switch {
		case err == nil:
			r.Removed = append(r.Removed, v.Name)
			log.Info("removed old secret version", "secret_name", v.Name, "vault_version", v.VaultVersion)
		case errors.Is(err, ErrInUse):
			log.Debug("old secret version still in use, kept", "secret_name", v.Name)
		case errors.Is(err, ErrEngineNotFound):
		default:
			// Not fatal: the next pass tries again.
			log.Warn("removing old secret version failed, will retry", "secret_name", v.Name, "err", err)
		}
	}
	if r.Created != "" || len(r.Updated) > 0 || len(r.Removed) > 0 {
		r.Outcome = OutcomeChanged
	}
	r.At = s.now()
	return r
}

// findManaged finds the ID of an existing version after a create met
// "already exists" (another replica, or a retry).
func (s *Syncer) findManaged(ctx context.Context, mapping, name string) (string, error) {
	all, err := s.Engine.ListSecrets(ctx)
	if err != nil {
		return "", fmt.Errorf("listing secrets after %s existed: %w", name, err)
	}
	for _, sec := range ManagedVersions(mapping, all) {
		if sec.Name == name {
			return sec.ID, nil
		}
	}
	return "", fmt.Errorf("a secret named %s exists but is not labelled %s=%s: swarmguard will not adopt it; remove or rename it", name, LabelSecret, mapping)
}

// rollOne writes one service's new secret list and waits for it to converge.
func (s *Syncer) rollOne(ctx context.Context, m Mapping, wantedName, wantedID string, up ServiceUpdate, r *Result) error {
	log := s.log().With("secret", m.Name, "service", up.ServiceName)
	fill := func(refs []SecretRef) []SecretRef {
		out := make([]SecretRef, len(refs))
		for i, ref := range refs {
			if ref.SecretName == wantedName {
				ref.SecretID = wantedID
			}
			out[i] = ref
		}
		return out
	}
	version, refs := up.Version, fill(up.Refs)
	var before Service
	for attempt := 0; ; attempt++ {
		cur, err := s.Engine.InspectService(ctx, up.ServiceID)
		if errors.Is(err, ErrEngineNotFound) {
			log.Info("service gone before its update, skipped")
			return nil
		}
		if err != nil {
			return fmt.Errorf("inspecting service %s: %w", up.ServiceName, err)
		}
		before = cur
		if cur.Version != version {
			// It changed since the observation: decide again on what is there now.
			nu, _, _ := planService(m, Version{ID: wantedID, Name: wantedName}, cur, func(ref SecretRef) bool {
				return ref.SecretName != wantedName && isVersionName(m.Name, ref.SecretName)
			})
			if nu == nil {
				return nil
			}
			version, refs = cur.Version, fill(nu.Refs)
		}
		err = s.Engine.UpdateServiceSecrets(ctx, up.ServiceID, version, refs)
		if err == nil {
			break
		}
		if errors.Is(err, ErrEngineConflict) && attempt < maxConflictRetries {
			log.Debug("service changed during its update, deciding again", "attempt", attempt+1)
			continue
		}
		return fmt.Errorf("updating service %s: %w", up.ServiceName, err)
	}
	r.Updated = append(r.Updated, up.ServiceName)
	log.Info("pointed service at new secret version", "secret_name", wantedName, "from", up.From, "added", up.Added)
	return s.waitRollout(ctx, up.ServiceID, up.ServiceName, wantedName, before)
}

// waitRollout waits for the service's update to converge (Rollout.Wait): converged means its running
// tasks all mount the new version when the service has no update status.
func (s *Syncer) waitRollout(ctx context.Context, id, name, wantedName string, before Service) error {
	r := Rollout{Engine: s.Engine, Log: s.Log, Now: s.Now, After: s.After, PollInterval: s.PollInterval, Timeout: s.RolloutTimeout}
	return r.Wait(ctx, id, name, before, func(tasks []Task) bool { return tasksOnVersion(tasks, wantedName) })
}

// tasksOnVersion: every task meant to run (desired running, or ready: a
// stop-first update's new task waiting for the old one to stop) is running
// and mounts wanted, and at least one is.
func tasksOnVersion(tasks []Task, wanted string) bool {
	n := 0
	for _, t := range tasks {
		if t.DesiredState != "running" && t.DesiredState != "ready" {
			continue
		}
		if t.State != "running" {
			return false
		}
		has := false
		for _, r := range t.Secrets {
			if r.SecretName == wanted {
				has = true
			}
		}
		if !has {
			return false
		}
		n++
	}
	return n > 0
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
