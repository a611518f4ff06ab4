package tokens

import (
	"context"
	"fmt"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/swarm"
)

// Domain is the tokens domain's name in plans: join tokens and join windows.
const Domain = "tokens"

// PlanFrom is the join-token pass's plan from its decisions (Decide) and its open windows' decisions
// (DecideWindows), in the order the pass records them: the adoptions, then one rotation per kind (worker
// first: a kind due by age and a closing window of that kind rotate once), then each window's close.
// It is pure.
func PlanFrom(ds []TokenDecision, wds []WindowDecision) operator.Plan {
	return decide(swarm.Cluster{}, ds, wds).Plan()
}

// step is one action of the pass's plan and what Apply does for it: exactly one of adopt, rotate, close.
type step struct {
	action operator.Action
	// adopt is the decision of a token whose clock starts now.
	adopt *TokenDecision
	// rotate is the kind of token rotated; dueWhy is set when it is due by its own policy (age,
	// tokens.require_windows), not only because a window of its kind closes.
	rotate string
	dueWhy string
	// close is the decision of a window that closes.
	close *WindowDecision
}

// PassPlan is a join-token plan (Plan() is what is shown) and, for each of its actions in order, what
// Apply does: the pass, `rotate join-token` and `join-window close` decide once and act on this value.
type PassPlan struct {
	notes   []string
	steps   []step
	cluster swarm.Cluster
	// decisions are the tokens' decisions the plan came from (the pass sets the age gauges from them);
	// entries and at the ledger and the time they were decided on (the pass's compliance gauges).
	decisions []TokenDecision
	entries   []swarm.Entry
	at        time.Time
	// republish: after its actions, write the published tokens again when they are not the swarm's (the
	// scheduled pass does; a person's command publishes only what it rotated).
	republish bool
}

// Plan is the plan as every dry run and `swarmguard plan` show it.
func (pp PassPlan) Plan() operator.Plan {
	p := operator.Plan{Domain: Domain, Notes: pp.notes}
	for _, s := range pp.steps {
		p.Actions = append(p.Actions, s.action)
	}
	return p
}

// decide builds the plan of the decisions ds and window decisions wds of the swarm cl. It is pure.
func decide(cl swarm.Cluster, ds []TokenDecision, wds []WindowDecision) PassPlan {
	pp := PassPlan{cluster: cl, decisions: ds}
	note := func(s string) { pp.notes = append(pp.notes, s) }
	rotate, due := map[string]string{}, map[string]string{}
	for i, d := range ds {
		subject := d.Kind + " join token"
		if !d.Token.IsZero() {
			subject += " sha256:" + d.Token.Short()
		}
		switch {
		case d.Adopt:
			pp.steps = append(pp.steps, step{action: operator.Action{Kind: TokenLedgerKind(d.Kind), Subject: subject,
				Change: "adopt " + d.Kind + " token: its clock starts now", Reason: d.Why}, adopt: &ds[i]})
		case d.Due:
			rotate[d.Kind], due[d.Kind] = d.Why, d.Why
		default:
			note(d.Why)
		}
	}
	for _, w := range wds {
		if !w.Close {
			note(w.Why)
			continue
		}
		if w.Rotate {
			if why, ok := rotate[w.Window.Kind]; ok {
				rotate[w.Window.Kind] = why + "; " + w.Why
			} else {
				rotate[w.Window.Kind] = w.Why
			}
		}
	}
	for _, k := range TokenKinds {
		if why, ok := rotate[k]; ok {
			pp.steps = append(pp.steps, step{action: operator.Action{Kind: TokenLedgerKind(k), Subject: k + " join token",
				Change: "rotate " + k + " token", Reason: why}, rotate: k, dueWhy: due[k]})
		}
	}
	for i, w := range wds {
		if w.Close {
			pp.steps = append(pp.steps, step{action: operator.Action{Kind: swarm.KindJoinWindow, Subject: "join window " + w.Window.ID + " (" + w.Window.Kind + ")",
				Change: "close join window " + w.Window.ID + " (closed by " + w.By + ")", Reason: w.Why}, close: &wds[i]})
		}
	}
	return pp
}

// Plan observes the swarm and the ledger (reads only) and returns the join-token pass's plan as of now.
// A failed read plans nothing and says why.
func (t *Tokens) Plan(ctx context.Context, now time.Time) operator.Plan {
	pp, err := t.Decide(ctx, now)
	if err != nil {
		return operator.Failed(Domain, err)
	}
	return pp.Plan()
}

// Decide observes the swarm and the ledger (reads only) and decides the join-token pass as of now: the
// plan Apply acts on. A failed read decides nothing.
func (t *Tokens) Decide(ctx context.Context, now time.Time) (PassPlan, error) {
	entries, err := t.Ledger.Entries(ctx)
	if err != nil {
		return PassPlan{}, fmt.Errorf("reading the ledger: %w", err)
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return PassPlan{}, fmt.Errorf("reading the swarm: %w", err)
	}
	wds, err := t.decideWindows(ctx, entries, cl, now)
	if err != nil {
		return PassPlan{}, err
	}
	pp := decide(cl, Decide(Observation{Cluster: cl, Entries: entries}, t.Config, now), wds)
	pp.republish, pp.entries, pp.at = true, entries, now
	return pp, nil
}

// PlanRotate is the plan of a manual rotation (`rotate join-token`) of kinds, from the swarm's current
// tokens: one rotation per kind (worker first), each one ledger entry. It is pure.
func PlanRotate(cl swarm.Cluster, kinds []string, reason string) operator.Plan {
	return planRotate(cl, kinds, reason).Plan()
}

func planRotate(cl swarm.Cluster, kinds []string, reason string) PassPlan {
	pp := PassPlan{cluster: cl}
	for _, k := range TokenKinds {
		if !contains(kinds, k) {
			continue
		}
		tok := cl.WorkerToken
		if k == swarm.TokenManager {
			tok = cl.ManagerToken
		}
		pp.steps = append(pp.steps, step{action: operator.Action{Kind: TokenLedgerKind(k), Subject: k + " join token sha256:" + tok.Short(),
			Change: "rotate the " + k + " join token", Reason: reason}, rotate: k, dueWhy: reason})
	}
	return pp
}

// PlanOpenWindow observes the ledger and the swarm (reads only) and returns the plan of OpenWindow: one
// join-window entry, or the reason it would be refused as the plan's error.
func (t *Tokens) PlanOpenWindow(ctx context.Context, o OpenWindowOptions, reason string, now time.Time) operator.Plan {
	_, tok, err := t.observeOpen(ctx, o)
	if err != nil {
		return operator.Failed(Domain, err)
	}
	change := fmt.Sprintf("open a join window for the %s token (sha256:%s) until %s", o.Kind, tok.Short(), now.Add(o.TTL).UTC().Format(time.RFC3339))
	if o.Nodes > 0 {
		change += fmt.Sprintf(" or %d joins", o.Nodes)
	}
	p := operator.Plan{Domain: Domain}
	p.Add(swarm.KindJoinWindow, o.Kind+" join token sha256:"+tok.Short(), change, reason)
	return p
}

// PlanCloseWindow observes the ledger and the swarm (reads only) and returns the plan of CloseWindow(which):
// the rotation of the window's token (unless it was rotated since it opened) and the window's close.
func (t *Tokens) PlanCloseWindow(ctx context.Context, which, actor, reason string, now time.Time) operator.Plan {
	_, d, err := t.decideClose(ctx, which, actor, reason, now)
	if err != nil {
		return operator.Failed(Domain, err)
	}
	return decide(swarm.Cluster{}, nil, []WindowDecision{d}).Plan()
}

// decideClose observes the ledger and the swarm (reads only) and decides the close of the window named
// which (its ID or token kind) by actor: what CloseWindow does and PlanCloseWindow shows.
func (t *Tokens) decideClose(ctx context.Context, which, actor, reason string, now time.Time) (swarm.Cluster, WindowDecision, error) {
	entries, err := t.Ledger.Entries(ctx)
	if err != nil {
		return swarm.Cluster{}, WindowDecision{}, fmt.Errorf("reading the ledger: %w", err)
	}
	var match []Window
	for _, w := range Windows(entries, false) {
		if w.ID == which || w.Kind == which {
			match = append(match, w)
		}
	}
	if len(match) == 0 {
		return swarm.Cluster{}, WindowDecision{}, fmt.Errorf("%w named %q: `swarmguard status` lists the open ones", ErrNoWindow, which)
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return swarm.Cluster{}, WindowDecision{}, fmt.Errorf("reading the swarm: %w", err)
	}
	return cl, closeEarly(DecideWindows(match[:1], cl, now)[0], actor, reason), nil
}

// closeEarly is a window's decision when a person closes it: closed and rotated, unless the token it
// handed out was rotated since (then only closed).
func closeEarly(d WindowDecision, actor, reason string) WindowDecision {
	if d.By != "rotated" {
		d.Close, d.Rotate, d.By = true, true, "manual"
		d.Why = fmt.Sprintf("join window %s closed early by %s", d.Window.ID, actor)
		if reason != "" {
			d.Why += ": " + reason
		}
	}
	return d
}
