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
