package incident

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/swarm"
)

// Step kinds, in the order of the response.
const (
	KindWorkerToken  = swarm.KindJoinTokenWorker
	KindManagerToken = swarm.KindJoinTokenManager
	KindUnlockKey    = swarm.KindUnlockKey
	KindCA           = swarm.KindCA
	KindSecret       = swarm.KindSecret
	KindReport       = "report"
)

// Step statuses.
const (
	StatusPlanned = "planned"
	StatusDone    = "done"
	StatusSkipped = "skipped"
	StatusFailed  = "failed"
)

// Scopes of `swarmguard incident --scope`.
const (
	ScopeTokens    = "tokens"
	ScopeUnlockKey = "unlock-key"
	ScopeCA        = "ca"
	ScopeSecrets   = "secrets"
)

// AllScopes is the default scope: the whole response.
var AllScopes = []string{ScopeTokens, ScopeUnlockKey, ScopeCA, ScopeSecrets}

// Ledger detail keys of an incident step (kind incident).
const (
	DetailIncident = "incident"
	DetailStep     = "step"
	DetailStatus   = "status"
	DetailDetail   = "detail"
)

// Step is one step of the response.
type Step struct {
	Kind   string `json:"kind"`
	Name   string `json:"name,omitempty"` // the secret mapping of a secret step
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Started, on a resumed incident, is the details of the domain's entry in which an earlier attempt of
	// this incident began the step's change without finishing it (the ca step: action started, force_rotate,
	// old_root_serial); the step follows that change instead of making another. Nil on a first attempt.
	Started map[string]string `json:"-"`
}

// Key names the step in the ledger: its kind, and the mapping for a secret step.
func (s Step) Key() string {
	if s.Name != "" {
		return s.Kind + ":" + s.Name
	}
	return s.Kind
}

// ParseScope reads --scope (comma separated; empty: everything).
func ParseScope(s string) ([]string, error) {
	if strings.TrimSpace(s) == "" {
		return AllScopes, nil
	}
	seen := map[string]bool{}
	var bad []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		ok := false
		for _, x := range AllScopes {
			ok = ok || p == x
		}
		if !ok {
			bad = append(bad, fmt.Sprintf("%q", p))
			continue
		}
		seen[p] = true
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("--scope %s: %s not one of %s", s, strings.Join(bad, ", "), strings.Join(AllScopes, ","))
	}
	var out []string
	for _, x := range AllScopes { // the response's order, whatever order they were given in
		if seen[x] {
			out = append(out, x)
		}
	}
	return out, nil
}

// Plan is the ordered response for a scope: the worker and manager tokens first (no new joins), the unlock
// key, the root CA (the tokens are republished at its end), the named secrets, then the report. The report
// always runs. Secrets in scope with none named are left out: the operator names what leaked.
func Plan(scope []string, secretNames []string) []Step {
	in := map[string]bool{}
	for _, s := range scope {
		in[s] = true
	}
	var steps []Step
	if in[ScopeTokens] {
		steps = append(steps, Step{Kind: KindWorkerToken}, Step{Kind: KindManagerToken})
	}
	if in[ScopeUnlockKey] {
		steps = append(steps, Step{Kind: KindUnlockKey})
	}
	if in[ScopeCA] {
		steps = append(steps, Step{Kind: KindCA})
	}
	if in[ScopeSecrets] {
		for _, n := range secretNames {
			steps = append(steps, Step{Kind: KindSecret, Name: n})
		}
	}
	steps = append(steps, Step{Kind: KindReport})
	for i := range steps {
		steps[i].Status = StatusPlanned
	}
	return steps
}

// idPattern is what an incident ID may be: it goes into ledger labels and reasons.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// CheckID refuses an ID that is not letters, digits, '.', '_' and '-' (at most 64).
func CheckID(id string) error {
	if !idPattern.MatchString(id) {
		return fmt.Errorf("incident ID %q: use letters, digits, '.', '_' and '-' (at most 64, e.g. inc-2026-12-02)", id)
	}
	return nil
}

// NewID is a fresh incident ID: inc-<UTC date and time>-<4 random hex digits>.
func NewID(now time.Time) string {
	var b [2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "inc-" + now.UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
}

// Reason is the ledger reason the domains' own entries carry for a step of incident id: it ties them to it,
// so a step whose entry was written but whose incident record was lost (a kill in between) counts as done.
func Reason(id, reason string) string {
	return "incident " + id + ": " + reason
}

// evidence says whether a domain's own ledger entry shows a step of the incident done.
func evidence(s Step, id string, e swarm.Entry) bool {
	if e.Result != swarm.ResultOK || !strings.HasPrefix(e.Reason, "incident "+id+": ") {
		return false
	}
	switch s.Kind {
	case KindWorkerToken, KindManagerToken:
		return e.Kind == s.Kind
	case KindUnlockKey:
		return e.Kind == swarm.KindUnlockKeyEscrow // escrowed before it counts
	case KindCA:
		return e.Kind == swarm.KindCA && e.Details[operator.DetailAction] == "completed"
	}
	return false // secrets and the report are repeated: a resync of the same value does nothing
}

// started finds the domain's entry in which incident id began step s's change: for the ca step, the
// rotation it started (an entry that finished it makes the step done: evidence). The newest one counts.
func started(s Step, id string, entries []swarm.Entry) map[string]string {
	if s.Kind != KindCA {
		return nil
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Kind == swarm.KindCA && e.Result == swarm.ResultOK && strings.HasPrefix(e.Reason, "incident "+id+": ") &&
			e.Details[operator.DetailAction] == "started" {
			return e.Details
		}
	}
	return nil
}

// Done finds the steps of incident id already done: the incident's own entries (done or skipped), or the
// domain's entry for it. The value says when, and what was recorded.
func Done(entries []swarm.Entry, id string, steps []Step) map[string]Step {
	out := map[string]Step{}
	for _, s := range steps {
		for i := len(entries) - 1; i >= 0; i-- {
			e := entries[i]
			if e.Kind == swarm.KindIncident && e.Result == swarm.ResultOK && e.Details[DetailIncident] == id && e.Details[DetailStep] == s.Key() {
				out[s.Key()] = Step{Kind: s.Kind, Name: s.Name, Status: e.Details[DetailStatus],
					Detail: fmt.Sprintf("%s at %s", e.Details[DetailDetail], e.At.UTC().Format(time.RFC3339))}
				break
			}
			if evidence(s, id, e) {
				out[s.Key()] = Step{Kind: s.Kind, Name: s.Name, Status: StatusDone,
					Detail: fmt.Sprintf("%s %s recorded at %s", e.Kind, e.Result, e.At.UTC().Format(time.RFC3339))}
				break
			}
		}
	}
	return out
}

// Outcome is what an action did (or, planning, would do).
type Outcome struct {
	Detail  string
	Skipped bool // nothing to do (autolock off): recorded as skipped, not failed
}

// Action carries out one kind of step through its domain's own code.
type Action struct {
	// Plan says what the step would do, reading only. Nil: "planned".
	Plan func(ctx context.Context, s Step) (Outcome, error)
	// Do does the step; env.Reason is the incident's Reason.
	Do func(ctx context.Context, s Step, env operator.TaskEnv) (Outcome, error)
}

// Response is one incident response.
type Response struct {
	ID     string
	Reason string
	Ledger operator.LedgerStore
	// Actions by step kind.
	Actions map[string]Action
	// Progress, when set, is told of each step as it starts (status planned) and ends.
	Progress func(i, n int, s Step)
}

// Preview is the dry run: each step planned, or done already under this ID, or skipped; nothing changes.
func (r *Response) Preview(ctx context.Context, steps []Step) ([]Step, error) {
	entries, err := r.Ledger.Entries(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the ledger: %w", err)
	}
	done := Done(entries, r.ID, steps)
	out := make([]Step, len(steps))
	for i, s := range steps {
		if d, ok := done[s.Key()]; ok {
			out[i] = Step{Kind: s.Kind, Name: s.Name, Status: d.Status, Detail: "already done in " + r.ID + ": " + d.Detail}
			continue
		}
		out[i] = s
		out[i].Status = StatusPlanned
		out[i].Started = started(s, r.ID, entries)
		s = out[i]
		a, ok := r.Actions[s.Kind]
		if !ok {
			return nil, fmt.Errorf("no action for incident step %s", s.Kind)
		}
		if a.Plan == nil {
			continue
		}
		o, err := a.Plan(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("planning step %s: %w", s.Key(), err)
		}
		out[i].Detail = o.Detail
		if o.Skipped {
			out[i].Status = StatusSkipped
		}
	}
	return out, nil
}

// Run takes the steps in order, skipping those already done under this ID (and saying so), and records
// each step in the ledger (kind incident) as it ends. It stops at the first failure: the steps after it
// stay planned, and a rerun with the same ID resumes there. Call it under the lease, once for the whole
// response.
func (r *Response) Run(ctx context.Context, steps []Step, env operator.TaskEnv) ([]Step, error) {
	if err := CheckID(r.ID); err != nil {
		return nil, err
	}
	entries, err := r.Ledger.Entries(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the ledger: %w", err)
	}
	done := Done(entries, r.ID, steps)
	out := append([]Step(nil), steps...)
	senv := env
	senv.Reason = Reason(r.ID, r.Reason)
	for i, s := range out {
		if d, ok := done[s.Key()]; ok {
			out[i].Status, out[i].Detail = StatusSkipped, "already done in "+r.ID+": "+d.Detail
			r.progress(i, len(out), out[i])
			continue
		}
		a, ok := r.Actions[s.Kind]
		if !ok || a.Do == nil {
			return out, fmt.Errorf("no action for incident step %s", s.Kind)
		}
		s.Started = started(s, r.ID, entries)
		r.progress(i, len(out), s)
		o, err := a.Do(ctx, s, senv)
		status := StatusDone
		switch {
		case err != nil:
			status = StatusFailed
			o.Detail = operator.ShortErr(err)
		case o.Skipped:
			status = StatusSkipped
		}
		out[i].Status, out[i].Detail = status, o.Detail
		e := swarm.Entry{Kind: swarm.KindIncident, At: env.Time(), Actor: env.Actor, Reason: r.Reason, Result: swarm.ResultOK,
			Details: map[string]string{DetailIncident: r.ID, DetailStep: s.Key(), DetailStatus: status, DetailDetail: shorten(o.Detail)}}
		if err != nil {
			e.Result = swarm.ResultFailed
		}
		lerr := operator.Record(ctx, r.Ledger, e)
		r.progress(i, len(out), out[i])
		if err != nil {
			return out, fmt.Errorf("incident %s: step %s failed: %w; fix it and run the incident again with --id %s to resume", r.ID, s.Key(), err, r.ID)
		}
		if lerr != nil {
			return out, fmt.Errorf("incident %s: step %s is done, but recording it failed: %w; a rerun with --id %s finds its work done", r.ID, s.Key(), lerr, r.ID)
		}
		if ctx.Err() != nil {
			return out, fmt.Errorf("incident %s interrupted after step %s: %w; run it again with --id %s to resume", r.ID, s.Key(), ctx.Err(), r.ID)
		}
	}
	return out, nil
}

func (r *Response) progress(i, n int, s Step) {
	if r.Progress != nil {
		r.Progress(i, n, s)
	}
}

// maxDetail bounds a step's detail in a ledger label.
const maxDetail = 200

func shorten(s string) string {
	if len(s) > maxDetail {
		return s[:maxDetail] + "…"
	}
	return s
}
