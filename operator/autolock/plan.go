package autolock

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// Domain is the autolock domain's name in plans.
const Domain = "autolock"

// PlanInput is what the autolock pass observed, for PlanFrom.
type PlanInput struct {
	Mode    string
	SwarmID string
	// AutoLock is the swarm's autolock setting.
	AutoLock bool
	// EscrowPath is where the key is escrowed (autolock.escrow.vault_path or its default).
	EscrowPath string
	// Decision is DecideCurrentKey's for the current key (read only when autolock is on).
	Decision UnlockKeyDecision
	// KeyFingerprint is the current key's fingerprint (empty when autolock is off).
	KeyFingerprint string
	// EscrowConfigured: a Vault is configured; Escrow is what it holds (read only then).
	EscrowConfigured bool
	Escrow           EscrowObservation
	// Unreachable names the managers that are not reachable (read only when the key is due under enforce).
	Unreachable []string
}

// PlanFrom is the autolock pass's plan, in the order the pass records: under enforce with autolock off,
// turn it on and escrow the first key; otherwise adopt a key never seen (any mode but off), then under
// enforce rotate a key past its max age and escrow the new one, or escrow the current key when Vault does
// not hold it. A rotation that cannot be done safely (a manager unreachable) is a note, and a Vault that
// cannot be checked is the plan's error. It is pure.
func PlanFrom(in PlanInput) operator.Plan { return decide(in).Plan() }

// step is one action of the pass's plan and what its apply does for it.
type step struct {
	action operator.Action
	do     stepOp
}

// stepOp is what Apply does for an action.
type stepOp int

const (
	opEnable        stepOp = iota + 1 // turn autolock on (its key is escrowed by the opEscrowNew that follows)
	opAdopt                           // record the current key as adopted: its clock starts now
	opRotate                          // rotate the key (its new key is escrowed by the opEscrowNew that follows)
	opEscrowNew                       // escrow the key the step before made
	opEscrowCurrent                   // escrow the current key
)

// PassPlan is the autolock pass's plan (Plan() is what is shown) and, for each of its actions in order,
// what Apply does: the pass decides once and acts on this value.
type PassPlan struct {
	plan  operator.Plan
	in    PlanInput
	steps []step
	// cluster, key and entries are what was observed: the swarm, its current unlock key (zero with
	// autolock off) and the ledger.
	cluster swarm.Cluster
	key     sensitive.Value
	entries []swarm.Entry
}

// Plan is the plan as every dry run and `swarmguard plan` show it.
func (pp PassPlan) Plan() operator.Plan {
	p := pp.plan
	p.Actions = make([]operator.Action, 0, len(pp.steps))
	for _, s := range pp.steps {
		p.Actions = append(p.Actions, s.action)
	}
	return p
}

func (pp *PassPlan) add(do stepOp, kind, subject, change, reason string) {
	pp.steps = append(pp.steps, step{action: operator.Action{Kind: kind, Subject: subject, Change: change, Reason: reason}, do: do})
}

// decide is PlanFrom with the step of each action. It is pure.
func decide(in PlanInput) PassPlan {
	pp := PassPlan{plan: operator.Plan{Domain: Domain}, in: in}
	p := &pp.plan
	if in.Mode == config.ModeOff {
		p.Note("autolock.mode off: nothing is checked")
		return pp
	}
	subject := "unlock key of swarm " + in.SwarmID
	if !in.AutoLock {
		if in.Mode != config.ModeEnforce {
			p.Note("autolock is off (mode %s: report only)", in.Mode)
			return pp
		}
		if !in.EscrowConfigured {
			p.Err = fmt.Errorf("%w: set vault.address (or VAULT_ADDR) and vault.auth; swarmguard does not turn autolock on without a place to escrow its key", ErrNoEscrow)
			return pp
		}
		pp.add(opEnable, swarm.KindUnlockKey, "swarm "+in.SwarmID, "turn autolock on", "autolock.mode enforce: autolock is off")
		pp.add(opEscrowNew, swarm.KindUnlockKeyEscrow, subject, "escrow the new unlock key to vault at "+in.EscrowPath, "a new key is escrowed before the step counts as done")
		return pp
	}
	d := in.Decision
	keySubject := subject
	if in.KeyFingerprint != "" {
		keySubject += " sha256:" + sensitive.Short(in.KeyFingerprint)
	}
	if d.Adopt {
		pp.add(opAdopt, swarm.KindUnlockKey, keySubject, "adopt the unlock key: its clock starts now", d.Why)
	}
	if in.Mode != config.ModeEnforce {
		if d.Due {
			p.Note("unlock key is past its max age (mode %s: not rotated): %s", in.Mode, d.Why)
		}
		if in.EscrowConfigured && !in.Escrow.Matches {
			p.Note("vault does not hold the current unlock key (mode %s: not escrowed; run `swarmguard escrow unlock-key`): escrow %s", in.Mode, in.Escrow.describe())
		}
		return pp
	}
	switch {
	case d.Due && len(in.Unreachable) > 0:
		p.Note("unlock key is due, but a manager is unreachable: rotation deferred (%s)", strings.Join(in.Unreachable, ", "))
	case d.Due && in.Escrow.Err != nil && errors.Is(in.Escrow.Err, secrets.ErrUnreachable):
		p.Err = fmt.Errorf("unlock key is due, but vault does not answer: rotation deferred: %w", in.Escrow.Err)
		pp.steps = nil
	case d.Due:
		pp.add(opRotate, swarm.KindUnlockKey, keySubject, "rotate the unlock key", d.Why)
		pp.add(opEscrowNew, swarm.KindUnlockKeyEscrow, subject, "escrow the new unlock key to vault at "+in.EscrowPath, "a new key is escrowed before the step counts as done")
	case in.Escrow.Err != nil:
		p.Err = fmt.Errorf("checking the unlock-key escrow: %w", in.Escrow.Err)
		pp.steps = nil
	case !in.EscrowConfigured:
		p.Note("no vault configured: the unlock key is not escrowed")
	case !in.Escrow.Matches:
		pp.add(opEscrowCurrent, swarm.KindUnlockKeyEscrow, keySubject, "escrow the current unlock key to vault at "+in.EscrowPath, "vault does not hold the current unlock key: escrow "+in.Escrow.describe())
	default:
		p.Note("%s; escrow %s", d.Why, in.Escrow.describe())
	}
	return pp
}

// observePlan reads what PlanFrom needs (reads only). A read that fails is returned.
func (a *Autolock) observePlan(ctx context.Context, entries []swarm.Entry, cl swarm.Cluster, key sensitive.Value, now time.Time) (PlanInput, error) {
	in := PlanInput{Mode: a.Config.Mode, SwarmID: cl.ID, AutoLock: cl.AutoLock, EscrowPath: a.Config.EscrowPath(cl.ID), EscrowConfigured: a.Escrow != nil}
	if !cl.AutoLock {
		return in, nil
	}
	in.KeyFingerprint = key.Fingerprint()
	in.Decision = DecideCurrentKey(entries, a.Config.Rotate.MaxAge.D(), in.KeyFingerprint, now)
	if a.Escrow != nil {
		in.Escrow = a.observeEscrow(ctx, cl.ID, key)
	}
	if in.Decision.Due && in.Mode == config.ModeEnforce {
		nodes, err := a.Engine.Nodes(ctx)
		if err != nil {
			return in, fmt.Errorf("listing managers: %w", err)
		}
		in.Unreachable = unreachableManagers(nodes)
	}
	return in, nil
}

// Plan observes the swarm, the ledger and the escrow (reads only) and returns the autolock pass's plan as
// of now. A failed read plans nothing and says why.
func (a *Autolock) Plan(ctx context.Context, now time.Time) operator.Plan {
	pp, err := a.Decide(ctx, now)
	if err != nil {
		return operator.Failed(Domain, err)
	}
	return pp.Plan()
}

// Decide observes the swarm, the ledger and the escrow (reads only) and decides the pass as of now: the
// plan Apply acts on. A failed read is returned and plans nothing.
func (a *Autolock) Decide(ctx context.Context, now time.Time) (PassPlan, error) {
	if a.Config.Mode == config.ModeOff {
		return decide(PlanInput{Mode: config.ModeOff}), nil
	}
	entries, err := a.Ledger.Entries(ctx)
	if err != nil {
		return PassPlan{}, fmt.Errorf("reading the ledger: %w", err)
	}
	cl, err := a.Engine.Cluster(ctx)
	if err != nil {
		return PassPlan{}, fmt.Errorf("reading the swarm: %w", err)
	}
	var key sensitive.Value
	if cl.AutoLock {
		if key, err = a.Engine.UnlockKey(ctx); err != nil {
			return PassPlan{}, err
		}
	}
	in, err := a.observePlan(ctx, entries, cl, key, now)
	if err != nil {
		return PassPlan{}, err
	}
	pp := decide(in)
	pp.cluster, pp.key, pp.entries = cl, key, entries
	return pp, nil
}
