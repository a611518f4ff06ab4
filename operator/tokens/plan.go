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
	p := operator.Plan{Domain: Domain}
	rotate := map[string]string{}
	for _, d := range ds {
		subject := d.Kind + " join token"
		if !d.Token.IsZero() {
			subject += " sha256:" + d.Token.Short()
		}
		switch {
		case d.Adopt:
			p.Add(TokenLedgerKind(d.Kind), subject, "adopt "+d.Kind+" token: its clock starts now", d.Why)
		case d.Due:
			rotate[d.Kind] = d.Why
		default:
			p.Note("%s", d.Why)
		}
	}
	for _, w := range wds {
		if !w.Close {
			p.Note("%s", w.Why)
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
			p.Add(TokenLedgerKind(k), k+" join token", "rotate "+k+" token", why)
		}
	}
	for _, w := range wds {
		if w.Close {
			p.Add(swarm.KindJoinWindow, "join window "+w.Window.ID+" ("+w.Window.Kind+")", "close join window "+w.Window.ID+" (closed by "+w.By+")", w.Why)
		}
	}
	return p
}

// Plan observes the swarm and the ledger (reads only) and returns the join-token pass's plan as of now.
// A failed read plans nothing and says why.
func (t *Tokens) Plan(ctx context.Context, now time.Time) operator.Plan {
	entries, err := t.Ledger.Entries(ctx)
	if err != nil {
		return operator.Failed(Domain, fmt.Errorf("reading the ledger: %w", err))
	}
	cl, err := t.Engine.Cluster(ctx)
	if err != nil {
		return operator.Failed(Domain, fmt.Errorf("reading the swarm: %w", err))
	}
	wds, err := t.decideWindows(ctx, entries, cl, now)
	if err != nil {
		return operator.Failed(Domain, err)
	}
	return PlanFrom(Decide(Observation{Cluster: cl, Entries: entries}, t.Config, now), wds)
}

// PlanRotate is the plan of a manual rotation (`rotate join-token`) of kinds, from the swarm's current
// tokens: one rotation per kind (worker first), each one ledger entry. It is pure.
func PlanRotate(cl swarm.Cluster, kinds []string, reason string) operator.Plan {
	p := operator.Plan{Domain: Domain}
	for _, k := range TokenKinds {
		if !contains(kinds, k) {
			continue
		}
		tok := cl.WorkerToken
		if k == swarm.TokenManager {
			tok = cl.ManagerToken
		}
		p.Add(TokenLedgerKind(k), k+" join token sha256:"+tok.Short(), "rotate the "+k+" join token", reason)
	}
	return p
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
	return PlanFrom(nil, []WindowDecision{d})
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
