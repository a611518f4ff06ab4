package secretsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/audit"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// Tunables of the secrets controller.
const (
	// secretsTick is how often the controller looks for mappings whose refresh is due; a mapping's own
	// refresh (default 1m) decides when it is read.
	secretsTick = "@every 5s"
	// secretsMinBackoff and secretsMaxBackoff bound the wait after a failed read or write: short enough that
	// a Vault restart is noticed soon, long enough not to hammer it.
	secretsMinBackoff = 5 * time.Second
	secretsMaxBackoff = 5 * time.Minute
)

// Mappings turns the configuration's secrets.mappings into the sync's mappings, with each one's problems
// named by its key (secrets.mappings[2].template: ...).
func Mappings(c config.SecretsConfig) ([]secrets.Mapping, config.Problems) {
	out := make([]secrets.Mapping, 0, len(c.Mappings))
	var probs config.Problems
	for i, m := range c.Mappings {
		sm := secrets.Mapping{Name: m.Name, FromPath: m.From.Path, FromKey: m.From.Key, Template: m.Template,
			Refresh: m.Refresh.D(), KeepVersions: m.KeepVersions, Labels: m.Labels}
		if err := sm.Validate(); err != nil {
			for _, e := range unjoin(err) {
				var fe *secrets.FieldError
				if errors.As(e, &fe) {
					probs = append(probs, config.Problem{Key: fmt.Sprintf("secrets.mappings[%d].%s", i, fe.Field), Msg: fe.Msg})
				} else {
					probs = append(probs, config.Problem{Key: fmt.Sprintf("secrets.mappings[%d]", i), Msg: e.Error()})
				}
			}
		}
		out = append(out, sm)
	}
	return out, probs
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// SecretState is the status of one mapping, for `status`, logs and metrics.
type SecretState struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// State is ok, failed (a rollout did not complete), error (a read or write failed) or pending (not synced yet).
	State        string    `json:"state"`
	Current      string    `json:"current,omitempty"`
	VaultVersion int       `json:"vault_version"`
	LastAttempt  time.Time `json:"last_attempt,omitzero"`
	LastSuccess  time.Time `json:"last_success,omitzero"`
	// FailingSince is when the mapping's sync last went from working to not; zero while it works.
	FailingSince time.Time `json:"failing_since,omitzero"`
	Error        string    `json:"error,omitempty"`
	// Cause is Error's cause class (operator.Cause), what /status/secrets serves in place of the text.
	Cause      string   `json:"cause,omitempty"`
	Dependents []string `json:"dependents,omitempty"`
}

// SecretsObserver receives each mapping's result; the runtime's metrics implement it.
type SecretsObserver interface {
	SecretSynced(st SecretState, outcome string)
}

// SecretsSync runs the secrets sync for the controller and the CLI: which mappings are due, each one's
// status, the ledger entries and the metrics.
type SecretsSync struct {
	Syncer   *Syncer
	Mappings []secrets.Mapping
	// DefaultRefresh applies to a mapping without its own refresh.
	DefaultRefresh time.Duration
	Ledger         operator.LedgerStore // optional
	Observer       SecretsObserver      // optional
	// Gauges, when not nil, gets the domain's compliance gauges (secrets.sync's status) after each pass
	// that synced something, from each mapping's latest result (this pass's or an earlier one's).
	Gauges func([]report.Gauge)

	mu      sync.Mutex
	last    map[string]Result // each mapping's latest result of a real (not dry) pass
	status  map[string]*SecretState
	due     map[string]time.Time
	backoff map[string]time.Duration
}

// NewSecretsSync builds the sync over mappings.
func NewSecretsSync(s *Syncer, mappings []secrets.Mapping, ledger operator.LedgerStore, obs SecretsObserver) *SecretsSync {
	ss := &SecretsSync{Syncer: s, Mappings: mappings, DefaultRefresh: time.Minute, Ledger: ledger, Observer: obs,
		status: map[string]*SecretState{}, due: map[string]time.Time{}, backoff: map[string]time.Duration{}}
	for _, m := range mappings {
		ss.status[m.Name] = &SecretState{Name: m.Name, Source: m.Source(), State: "pending"}
	}
	return ss
}

// Select returns the named mappings (all when names is empty); an unknown name is an error listing the known ones.
func (ss *SecretsSync) Select(names []string) ([]secrets.Mapping, error) {
	if len(names) == 0 {
		return ss.Mappings, nil
	}
	var out []secrets.Mapping
	for _, n := range names {
		i := slices.IndexFunc(ss.Mappings, func(m secrets.Mapping) bool { return m.Name == n })
		if i < 0 {
			known := make([]string, len(ss.Mappings))
			for j, m := range ss.Mappings {
				known[j] = m.Name
			}
			return nil, fmt.Errorf("no mapping named %q in secrets.mappings (known: %s)", n, strings.Join(known, ", "))
		}
		out = append(out, ss.Mappings[i])
	}
	return out, nil
}

// Due returns the mappings whose refresh (or back-off after a failure) has come.
func (ss *SecretsSync) Due(now time.Time) []secrets.Mapping {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	var out []secrets.Mapping
	for _, m := range ss.Mappings {
		if t, ok := ss.due[m.Name]; !ok || !now.Before(t) {
			out = append(out, m)
		}
	}
	return out
}

// Status returns each mapping's state, in configuration order.
func (ss *SecretsSync) Status() []SecretState {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	out := make([]SecretState, 0, len(ss.Mappings))
	for _, m := range ss.Mappings {
		out = append(out, *ss.status[m.Name])
	}
	return out
}

// Run syncs the given mappings once and records what happened. It returns the results and an error when
// any mapping failed (the others still ran).
func (ss *SecretsSync) Run(ctx context.Context, env operator.TaskEnv, ms []secrets.Mapping, opt Options) ([]Result, error) {
	log := env.Logger().With("component", "secrets")
	now := env.Time()
	if env.Guard != nil {
		ss.Syncer.Guard = env.Guard.Check
	}
	if ss.Ledger != nil {
		ss.Syncer.FailedBefore = ss.failedBefore()
	}
	// Each action is audited when its mapping's sync ends, with its own duration; the ledger entries of the
	// pass are written once, at its end, one per action in the plan's order (the mappings'), whatever order
	// the actions ended in.
	at := make(map[string]int, len(ms))
	for i, m := range ms {
		at[m.Name] = i
	}
	byAction := make([]*swarm.Entry, len(ms))
	opt.Done = func(r Result) {
		if opt.DryRun || (r.Outcome != OutcomeChanged && r.Outcome != OutcomeFailed) {
			return
		}
		e := ss.entry(env, r)
		audit.Action(ctx, e, r.Duration)
		byAction[at[r.Mapping]] = &e
	}
	results := ss.Syncer.Pass(ctx, ms, opt)
	var entries []swarm.Entry
	for _, e := range byAction {
		if e != nil {
			entries = append(entries, *e)
		}
	}
	if ss.Ledger != nil {
		if err := operator.RecordAudited(ctx, ss.Ledger, entries...); err != nil {
			log.Warn("recording the secret sync in the ledger failed (each action was audited)", "entries", len(entries), "err", err)
		}
	}
	var errs []error
	for i, r := range results {
		m := ms[i]
		ss.record(m, r, now)
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("secret %s: %w", r.Mapping, r.Err))
			if r.Outcome != OutcomeFailed { // a failed rollout was logged as an error by the sync
				log.Warn("secret sync failed, will retry", "secret", r.Mapping, "err", r.Err)
			}
		} else if r.Outcome == OutcomeUnchanged {
			log.Debug("secret in sync", "secret", r.Mapping, "vault_version", r.VaultVersion)
		}
		if r.Plan != nil {
			for _, w := range r.Plan.Warnings {
				log.Warn("secret sync warning", "secret", r.Mapping, "warning", w)
			}
		}
		if env.Out != nil && !opt.DryRun {
			writeSecretResult(env.Out, r)
		}
	}
	if opt.DryRun && env.Out != nil {
		_ = operator.WritePlans(env.Out, LedgerPlan(results)) // a dry run prints its plan
	}
	if !opt.DryRun && ss.Gauges != nil {
		ss.Gauges(ss.sectionGauges(ctx, results, now))
	}
	return results, errors.Join(errs...)
}

// sectionGauges keeps results as their mappings' latest and returns the secret sync section's check
// statuses over every mapping's latest result: a mapping synced (changed or unchanged) is in step with
// Vault now, so what a sync would still do for it is nothing.
func (ss *SecretsSync) sectionGauges(ctx context.Context, results []Result, now time.Time) []report.Gauge {
	ss.mu.Lock()
	if ss.last == nil {
		ss.last = map[string]Result{}
	}
	for _, r := range results {
		if (r.Outcome == OutcomeChanged || r.Outcome == OutcomeUnchanged) && r.Plan != nil {
			p := *r.Plan
			wanted := p.Wanted
			p.Current, p.Create, p.Updates, p.Remove = &wanted, nil, nil, nil
			r.Plan = &p
		}
		ss.last[r.Mapping] = r
	}
	all := make([]Result, 0, len(ss.last))
	for _, r := range ss.last {
		all = append(all, r)
	}
	ss.mu.Unlock()
	var entries []swarm.Entry
	ledgerErr := errors.New("no ledger configured")
	if ss.Ledger != nil {
		entries, ledgerErr = ss.Ledger.Entries(ctx)
	}
	return SectionGauges(all, entries, ledgerErr, now)
}

func (ss *SecretsSync) record(m secrets.Mapping, r Result, now time.Time) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	st := ss.status[m.Name]
	if st == nil {
		st = &SecretState{Name: m.Name, Source: m.Source()}
		ss.status[m.Name] = st
	}
	st.LastAttempt = now
	refresh := m.Refresh
	if refresh <= 0 {
		refresh = ss.DefaultRefresh
	}
	ok := r.Err == nil
	if r.Outcome == OutcomePlanned {
		return // a dry run says nothing about the sync's health
	}
	if ok {
		st.State, st.Error, st.Cause, st.FailingSince, st.LastSuccess = "ok", "", "", time.Time{}, now
		st.VaultVersion = r.VaultVersion
		if r.Plan != nil {
			st.Current = r.Plan.Wanted.Name
			st.Dependents = r.Plan.Dependents
		}
		ss.due[m.Name] = now.Add(refresh)
		ss.backoff[m.Name] = 0
	} else {
		st.State = "error"
		if r.Outcome == OutcomeFailed {
			st.State = "failed"
		}
		st.Error, st.Cause = r.Err.Error(), operator.Cause(r.Err)
		if st.FailingSince.IsZero() {
			st.FailingSince = now
		}
		b := ss.backoff[m.Name]
		b = min(max(b*2, secretsMinBackoff), secretsMaxBackoff, max(refresh, secretsMinBackoff))
		ss.backoff[m.Name] = b
		// Jitter over [b/2, b] so replicas and mappings do not retry in step.
		ss.due[m.Name] = now.Add(b/2 + time.Duration(rand.Int64N(int64(b/2)+1)))
	}
	if ss.Observer != nil {
		ss.Observer.SecretSynced(*st, r.Outcome)
	}
}

// Unavailable records that no mapping could be synced because Vault could not be reached or logged in to:
// each mapping's status turns to error with the cause, since the first such pass. Nothing else changes; the
// loop's own back-off paces the retries.
func (ss *SecretsSync) Unavailable(err error, now time.Time) {
	ss.mu.Lock()
	states := make([]SecretState, 0, len(ss.Mappings))
	for _, m := range ss.Mappings {
		st := ss.status[m.Name]
		st.LastAttempt, st.State, st.Error, st.Cause = now, "error", err.Error(), operator.Cause(err)
		if st.FailingSince.IsZero() {
			st.FailingSince = now
		}
		states = append(states, *st)
	}
	ss.mu.Unlock()
	if ss.Observer != nil {
		for _, st := range states {
			ss.Observer.SecretSynced(st, OutcomeError)
		}
	}
}

// failedBefore is the Syncer's FailedBefore for one pass: the ledger, read once when first asked, says
// whether a mapping's newest entry is a failed rollout of the same wanted version (written by any replica,
// so a holder that took over does not retry a rollout known to fail).
func (ss *SecretsSync) failedBefore() func(ctx context.Context, mapping, wanted string) (string, string, bool, error) {
	var once sync.Once
	var newest map[string]swarm.Entry
	var err error
	return func(ctx context.Context, mapping, wanted string) (string, string, bool, error) {
		once.Do(func() {
			var entries []swarm.Entry
			entries, err = ss.Ledger.Entries(ctx)
			newest = map[string]swarm.Entry{}
			for _, e := range entries {
				if e.Kind != swarm.KindSecret {
					continue
				}
				if n, ok := newest[e.Details["secret"]]; !ok || e.Seq > n.Seq {
					newest[e.Details["secret"]] = e
				}
			}
		})
		if err != nil {
			return "", "", false, err
		}
		e, ok := newest[mapping]
		if !ok || e.Result != swarm.ResultFailed || e.Details["to"] != wanted || e.Details["failed_service"] == "" {
			return "", "", false, nil
		}
		return e.Details["failed_service"], e.Details["error"], true, nil
	}
}

// entry is the ledger entry (and audit record) of one mapping's changed or failed sync.
func (ss *SecretsSync) entry(env operator.TaskEnv, r Result) swarm.Entry {
	res := swarm.ResultOK
	if r.Outcome == OutcomeFailed {
		res = swarm.ResultFailed
	}
	d := map[string]string{"secret": r.Mapping, "vault_version": strconv.Itoa(r.VaultVersion)}
	if r.Plan != nil {
		d["to"] = r.Plan.Wanted.Name
		if r.Plan.Current != nil && r.Plan.Current.Name != r.Plan.Wanted.Name {
			d["from"] = r.Plan.Current.Name
		}
	}
	if len(r.Updated) > 0 {
		d["services"] = strings.Join(r.Updated, ",")
	}
	if len(r.Removed) > 0 {
		d["removed"] = strings.Join(r.Removed, ",")
	}
	if r.FailedService != "" {
		d["failed_service"] = r.FailedService
	}
	if r.Err != nil {
		d["error"] = operator.ShortErr(r.Err)
		var re *swarm.RolloutError
		if errors.As(r.Err, &re) && re.Earlier && re.Message != "" {
			// The failure as first recorded: wrapped again at every failover, it would soon be cut away.
			d["error"] = operator.ShortErr(errors.New(re.Message))
		}
	}
	reason := env.Reason
	if reason == "" {
		reason = "vault value changed"
	}
	return swarm.Entry{Kind: swarm.KindSecret, At: env.Time(), Actor: env.Actor, Reason: reason, Result: res, Details: d}
}

// Task is the controller's loop: every few seconds it syncs the mappings whose refresh has come (each on its
// own refresh, backing off with jitter after a failure).
func (ss *SecretsSync) Task() operator.Task {
	return operator.Task{Name: "secrets", Schedule: secretsTick, Run: func(ctx context.Context, env operator.TaskEnv) error {
		due := ss.Due(env.Time())
		if len(due) == 0 {
			return nil
		}
		_, err := ss.Run(ctx, env, due, Options{DryRun: env.DryRun, Reason: env.Reason})
		return err
	}}
}

// writeSecretResult prints one line per mapping for `run --once` (names, versions and services only).
func writeSecretResult(w io.Writer, r Result) {
	line := fmt.Sprintf("secret %s: %s", r.Mapping, r.Outcome)
	if p := r.Plan; p != nil {
		line += fmt.Sprintf(" (vault version %d, %s)", r.VaultVersion, p.Wanted.Name)
		if r.Outcome == OutcomePlanned {
			var what []string
			if p.Create != nil {
				what = append(what, "create "+p.Create.Name)
			}
			for _, u := range p.Updates {
				what = append(what, "update service "+u.ServiceName)
			}
			for _, v := range p.Remove {
				what = append(what, "remove "+v.Name)
			}
			if len(what) == 0 {
				line += ": nothing to do"
			} else {
				line += ": would " + strings.Join(what, ", ")
			}
		}
	}
	if len(r.Updated) > 0 {
		line += "; updated " + strings.Join(r.Updated, ", ")
	}
	if len(r.Removed) > 0 {
		line += "; removed " + strings.Join(r.Removed, ", ")
	}
	if r.Err != nil {
		line += ": " + r.Error
	}
	fmt.Fprintln(w, line)
}
