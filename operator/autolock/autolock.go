package autolock

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/sensitive"
	"github.com/swarmguard/swarmguard/swarm"
)

// Engine is what the autolock pass needs of the engine. *swarm.Client satisfies it.
type Engine interface {
	Cluster(ctx context.Context) (swarm.Cluster, error)
	Nodes(ctx context.Context) ([]swarm.Node, error)
	UnlockKey(ctx context.Context) (sensitive.Value, error)
	SetAutolock(ctx context.Context, on bool) (changed bool, err error)
	RotateUnlockKey(ctx context.Context) (old, cur sensitive.Value, err error)
	ServiceEndpoints(ctx context.Context) ([]swarm.ServiceEndpoint, error)
}

// KeyEscrow keeps the unlock key in Vault. *secrets.Escrow satisfies it.
type KeyEscrow interface {
	StoreKey(ctx context.Context, path, swarmID string, key sensitive.Value, at time.Time) (secrets.Receipt, error)
	LoadKey(ctx context.Context, path string) (secrets.EscrowRecord, error)
}

var (
	_ Engine    = (*swarm.Client)(nil)
	_ KeyEscrow = (*secrets.Escrow)(nil)
)

// ErrManagersUnreachable means a manager is not reachable: after an unlock-key rotation it would still
// hold its key encrypted with the old one, and need the old key to unlock.
var ErrManagersUnreachable = errors.New("a manager is not reachable")

// ErrNoEscrow means no Vault is configured to escrow the unlock key to.
var ErrNoEscrow = errors.New("no vault is configured for the unlock-key escrow")

// EscrowError means the unlock key is in the swarm (rotated or enabled, and recorded) but could not be
// escrowed to Vault, or what Vault gave back did not match. The message says what to do.
type EscrowError struct {
	Path        string
	Fingerprint string // short
	Err         error
}

func (e *EscrowError) Error() string {
	return fmt.Sprintf("the unlock key (sha256:%s) is safe in the swarm, but escrowing it to vault at %q failed: %v. "+
		"Once vault answers, escrow it with `swarmguard escrow unlock-key`; until then `docker swarm unlock-key` on an unlocked manager shows it. "+
		"Do not restart every manager before it is escrowed", e.Fingerprint, e.Path, e.Err)
}

func (e *EscrowError) Unwrap() error { return e.Err }

// Autolock is the autolock domain: turning autolock on, rotating the unlock key, escrowing it to Vault.
type Autolock struct {
	Engine Engine
	Ledger operator.LedgerStore
	Config config.AutolockConfig
	// Escrow returns the Vault escrow; nil means no Vault is configured.
	Escrow func(ctx context.Context) (KeyEscrow, error)
	// Ages, when not nil, gets the unlock key's age and max age from the decision of each pass.
	Ages *operator.CredentialAges
	// VaultAddr is the Vault address in use, for the warning about a Vault that runs in this swarm.
	VaultAddr string
	// LookupHost resolves a host name for that warning; nil skips resolution.
	LookupHost func(ctx context.Context, host string) ([]string, error)
	// Gauges, when not nil, gets the domain's compliance gauges (its report section's check statuses) from
	// each autolock pass's own observation.
	Gauges func([]report.Gauge)
}

// offGauges refreshes the gauges under mode off, where the pass acts on nothing: reads only, and a failed
// read leaves the gauges as they were (the pass has nothing else to fail).
func (a *Autolock) offGauges(ctx context.Context, env operator.TaskEnv) {
	if a.Gauges == nil || env.DryRun {
		return
	}
	entries, err := a.Ledger.Entries(ctx)
	if err != nil {
		env.Logger().Debug("autolock gauges not refreshed", "err", err)
		return
	}
	cl, err := a.Engine.Cluster(ctx)
	if err != nil {
		env.Logger().Debug("autolock gauges not refreshed", "err", err)
		return
	}
	a.gauges(cl, entries, a.Observe(ctx, cl), env.Time())
}

// gauges hands the report section's check statuses for this pass's observation to Gauges.
func (a *Autolock) gauges(cl swarm.Cluster, entries []swarm.Entry, o Observation, now time.Time) {
	if a.Gauges == nil {
		return
	}
	if o.Escrow.Path == "" {
		o.Escrow.Path = a.Config.EscrowPath(cl.ID)
	}
	a.Gauges(SectionGauges(cl, entries, o, a.Config, now))
}

// EscrowOutcome says where the key was escrowed and that it was read back.
type EscrowOutcome struct {
	Path        string    `json:"path"`
	Version     int       `json:"version"`
	Fingerprint string    `json:"fingerprint"`
	Verified    bool      `json:"verified"`  // read back from Vault, fingerprints equal
	Unchanged   bool      `json:"unchanged"` // Vault already held this key: nothing written
	At          time.Time `json:"at"`
}

// UnlockKeyResult is what an unlock-key action did. Key is the current key: print it masked unless asked.
type UnlockKeyResult struct {
	SwarmID        string
	Rotated        bool
	Enabled        bool // autolock was turned on
	At             time.Time
	Key            sensitive.Value
	OldFingerprint string
	Escrow         *EscrowOutcome
	Warnings       []string
	// Plan is what a dry run would do (set only then): the caller prints it; nothing is printed here.
	Plan *operator.Plan
}

// RotateKeyOptions tune a manual rotation.
type RotateKeyOptions struct {
	// Force rotates even when a manager is unreachable.
	Force bool
}

// UnlockKeyDecision is what the policy says of the unlock key.
type UnlockKeyDecision struct {
	Clock  operator.CredentialClock
	MaxAge time.Duration
	Adopt  bool // never rotated by us: start its clock now
	Due    bool
	Why    string
	// ChangedOutside: the swarm's key is not the one the ledger's clock recorded (rotated by hand, or by a
	// holder killed between the rotation and its record, or whose read of the new key failed). It is
	// adopted and escrowed, never rotated again for the same due time: a second rotation would leave the
	// key in between escrowed nowhere.
	ChangedOutside bool
	// AdoptReason is the ledger reason of an adoption.
	AdoptReason string
}

// adoptFirstSeen is the ledger reason of a key adopted when first seen.
const adoptFirstSeen = "first seen: clock started"

// DecideCurrentKey is DecideUnlockKey for the swarm's current key, given by its fingerprint: a key that
// differs from the one the ledger's clock recorded is adopted (ChangedOutside), not rotated. An empty
// fingerprint (not read) decides from the ledger alone.
func DecideCurrentKey(entries []swarm.Entry, maxAge time.Duration, fingerprint string, now time.Time) UnlockKeyDecision {
	d := DecideUnlockKey(entries, maxAge, now)
	if d.Clock.Tracked && fingerprint != "" && d.Clock.Fingerprint != "" && d.Clock.Fingerprint != fingerprint {
		d.ChangedOutside, d.Adopt, d.Due = true, true, false
		d.Clock = operator.CredentialClock{Tracked: true, Adopted: true, Since: now, Fingerprint: fingerprint}
		d.Why = "unlock key changed outside the ledger: adopted and escrowed, its clock starts now"
		d.AdoptReason = "changed outside the ledger (a manual rotation, or a holder stopped between rotating and recording): clock started"
	}
	return d
}

// DecideUnlockKey decides for the unlock key of an autolocked swarm from the ledger, the policy and now.
// A key swarmguard never rotated starts its clock when first seen (as join tokens do by default); a max
// age of zero means never by schedule.
func DecideUnlockKey(entries []swarm.Entry, maxAge time.Duration, now time.Time) UnlockKeyDecision {
	d := UnlockKeyDecision{Clock: operator.ReadClock(entries, swarm.KindUnlockKey, now), MaxAge: maxAge}
	switch {
	case !d.Clock.Tracked:
		d.Adopt, d.AdoptReason = true, adoptFirstSeen
		d.Why = "unlock key never rotated by swarmguard: its clock starts now"
	case maxAge <= 0:
		d.Why = "unlock key: no autolock.rotate.max_age, not rotated by schedule"
	case d.Clock.Age >= maxAge:
		d.Due = true
		d.Why = fmt.Sprintf("unlock key older than %s (%s since %s)", config.Duration(maxAge), config.Duration(d.Clock.Age.Round(time.Second)), d.Clock.Since.UTC().Format(time.RFC3339))
	default:
		d.Why = fmt.Sprintf("unlock key not due: %s of %s left", config.Duration((maxAge - d.Clock.Age).Round(time.Second)), config.Duration(maxAge))
	}
	return d
}

// unreachableManagers names the managers that are not reachable.
func unreachableManagers(nodes []swarm.Node) []string {
	var out []string
	for _, n := range nodes {
		if n.Role == "manager" && n.Reachability != "reachable" {
			out = append(out, fmt.Sprintf("%s (%s, %s)", n.Hostname, n.ID, n.Reachability))
		}
	}
	return out
}

// preflight finds the escrow and checks the escrow path before anything changes. fatal means do not
// go on (no Vault configured, permission denied, another swarm's record at the path). soft means Vault
// did not answer: the key could not be escrowed now.
func (a *Autolock) preflight(ctx context.Context, swarmID string) (esc KeyEscrow, soft, fatal error) {
	path := a.Config.EscrowPath(swarmID)
	if a.Escrow == nil {
		return nil, nil, fmt.Errorf("%w: set vault.address (or VAULT_ADDR) and vault.auth; swarmguard does not change the unlock key without a place to escrow it", ErrNoEscrow)
	}
	esc, err := a.Escrow(ctx)
	if err != nil {
		if errors.Is(err, secrets.ErrUnreachable) {
			return nil, err, nil
		}
		return nil, nil, fmt.Errorf("connecting to vault for the unlock-key escrow: %w", err)
	}
	rec, err := esc.LoadKey(ctx, path)
	switch {
	case err == nil:
		if rec.SwarmID != swarmID {
			return esc, nil, fmt.Errorf("escrow path %q: %w: it holds swarm %q's key, this is swarm %q; set autolock.escrow.vault_path to another path",
				path, secrets.ErrOtherSwarm, rec.SwarmID, swarmID)
		}
	case errors.Is(err, secrets.ErrNotFound):
	case errors.Is(err, secrets.ErrUnreachable):
		return esc, err, nil
	default:
		return esc, nil, fmt.Errorf("checking the escrow path %q: %w", path, err)
	}
	return esc, nil, nil
}

// RotateKey rotates the unlock key now (the CLI's `rotate unlock-key`, and the enforcement pass when the
// key is past its max age): it refuses when autolock is off and, unless opts.Force, when a manager is
// unreachable; it records the rotation, then escrows the new key and reads it back before it returns
// success. When the escrow fails the result still describes the rotation and the error is *EscrowError.
func (a *Autolock) RotateKey(ctx context.Context, opts RotateKeyOptions, env operator.TaskEnv) (UnlockKeyResult, error) {
	var rec pass
	res, err := a.rotateKey(ctx, opts, env, &rec)
	return res, rec.flush(ctx, a.Ledger, env, err, "the unlock key was rotated")
}

func (a *Autolock) rotateKey(ctx context.Context, opts RotateKeyOptions, env operator.TaskEnv, rec *pass) (UnlockKeyResult, error) {
	log := env.Logger().With("component", "autolock")
	cl, err := a.Engine.Cluster(ctx)
	if err != nil {
		return UnlockKeyResult{}, fmt.Errorf("reading the swarm: %w", err)
	}
	res := UnlockKeyResult{SwarmID: cl.ID}
	if !cl.AutoLock {
		return res, fmt.Errorf("%w: nothing to rotate; turn it on with autolock.mode: enforce, or `docker swarm update --autolock=true` then `swarmguard escrow unlock-key`", swarm.ErrAutolockOff)
	}
	nodes, err := a.Engine.Nodes(ctx)
	if err != nil {
		return res, fmt.Errorf("listing managers: %w", err)
	}
	if bad := unreachableManagers(nodes); len(bad) > 0 {
		if !opts.Force {
			return res, fmt.Errorf("%w: %s; a manager that misses the new key needs the old one to unlock after a restart. "+
				"Bring it back first, or rotate with --force (the old key stays in vault as the previous version of the escrow)",
				ErrManagersUnreachable, strings.Join(bad, ", "))
		}
		log.Warn("rotating with unreachable managers (--force): they will need the old unlock key to unlock", "managers", strings.Join(bad, ", "))
	}
	res.Warnings = a.colocationWarnings(ctx, nodes)
	for _, w := range res.Warnings {
		log.Warn("vault escrow target may run in this swarm", "why", w)
	}
	esc, soft, fatal := a.preflight(ctx, cl.ID)
	if fatal != nil {
		return res, fatal
	}
	path := a.Config.EscrowPath(cl.ID)
	switch {
	case soft != nil && env.DryRun:
		log.Warn("vault does not answer: a rotation now would leave the new key only in the swarm until it is escrowed", "vault_path", path, "err", soft)
	case soft != nil:
		log.Warn("vault does not answer before the rotation; rotating anyway, the new key stays in the swarm until it is escrowed", "vault_path", path, "err", soft)
	}
	if env.DryRun {
		p := operator.Plan{Domain: Domain}
		p.Add(swarm.KindUnlockKey, "unlock key of swarm "+cl.ID, "rotate the unlock key", env.Reason)
		p.Add(swarm.KindUnlockKeyEscrow, "unlock key of swarm "+cl.ID, "escrow the new unlock key to vault at "+path, "a new key is escrowed before the step counts as done")
		res.Plan = &p
		return res, nil
	}
	if err := env.CheckHolder(ctx); err != nil {
		return res, err
	}
	old, cur, err := a.Engine.RotateUnlockKey(ctx)
	at := env.Time()
	if err != nil {
		err = sensitive.RedactErr(err, old, cur)
		rec.add(swarm.Entry{Kind: swarm.KindUnlockKey, At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultFailed,
			Details: map[string]string{operator.DetailError: operator.ShortErr(err), operator.DetailOldFingerprint: old.Fingerprint(), operator.DetailSwarmID: cl.ID}})
		return res, fmt.Errorf("rotating the unlock key: %w", err)
	}
	crashpoint.At("unlock-key.after-rotate") // rotated, not escrowed, not recorded: the next pass adopts and escrows it
	res.Rotated, res.At, res.Key, res.OldFingerprint = true, at, cur, old.Fingerprint()
	log.Info("rotated unlock key", "old_fingerprint", old.Short(), "new_fingerprint", cur.Short(), "actor", env.Actor, "reason", env.Reason)
	rec.add(swarm.Entry{Kind: swarm.KindUnlockKey, At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK,
		Details: map[string]string{operator.DetailOldFingerprint: old.Fingerprint(), operator.DetailNewFingerprint: cur.Fingerprint(), operator.DetailFingerprint: cur.Fingerprint(), operator.DetailSwarmID: cl.ID}})
	// Escrow before the step counts as done: the key is in Vault before the ledger says it was rotated.
	out, err := a.escrowKey(ctx, esc, cl.ID, cur, env, rec)
	crashpoint.At("unlock-key.after-escrow") // escrowed, not recorded: the next pass adopts it, finds it escrowed
	res.Escrow = out
	return res, err
}

// EscrowCurrent re-reads the swarm's current unlock key and escrows it (`swarmguard escrow unlock-key`).
func (a *Autolock) EscrowCurrent(ctx context.Context, env operator.TaskEnv) (UnlockKeyResult, error) {
	var rec pass
	res, err := a.escrowCurrent(ctx, env, &rec)
	return res, rec.flush(ctx, a.Ledger, env, err, "the unlock key was escrowed")
}

func (a *Autolock) escrowCurrent(ctx context.Context, env operator.TaskEnv, rec *pass) (UnlockKeyResult, error) {
	cl, err := a.Engine.Cluster(ctx)
	if err != nil {
		return UnlockKeyResult{}, fmt.Errorf("reading the swarm: %w", err)
	}
	res := UnlockKeyResult{SwarmID: cl.ID}
	if !cl.AutoLock {
		return res, fmt.Errorf("%w: nothing to escrow; turn autolock on first", swarm.ErrAutolockOff)
	}
	key, err := a.Engine.UnlockKey(ctx)
	if err != nil {
		return res, err
	}
	if key.IsZero() {
		return res, fmt.Errorf("the engine returned no unlock key although autolock is on; check `docker swarm unlock-key` on a manager")
	}
	res.Key, res.At = key, env.Time()
	if nodes, err := a.Engine.Nodes(ctx); err == nil {
		res.Warnings = a.colocationWarnings(ctx, nodes)
		for _, w := range res.Warnings {
			env.Logger().Warn("vault escrow target may run in this swarm", "why", w)
		}
	}
	if env.DryRun {
		p := operator.Plan{Domain: Domain}
		p.Add(swarm.KindUnlockKeyEscrow, "unlock key of swarm "+cl.ID+" sha256:"+key.Short(), "escrow the unlock key to vault at "+a.Config.EscrowPath(cl.ID), env.Reason)
		res.Plan = &p
		return res, nil
	}
	if err := env.CheckHolder(ctx); err != nil {
		return res, err
	}
	out, err := a.escrowKey(ctx, nil, cl.ID, key, env, rec)
	res.Escrow = out
	return res, err
}

// escrowKey writes key to the escrow path (check-and-set), reads it back, compares fingerprints and
// adds the outcome to the pass's ledger record. esc may be nil: it is then asked for now.
func (a *Autolock) escrowKey(ctx context.Context, esc KeyEscrow, swarmID string, key sensitive.Value, env operator.TaskEnv, rec *pass) (*EscrowOutcome, error) {
	log := env.Logger().With("component", "autolock")
	path := a.Config.EscrowPath(swarmID)
	at := env.Time()
	fail := func(err error) (*EscrowOutcome, error) {
		err = sensitive.RedactErr(err, key)
		rec.add(swarm.Entry{Kind: swarm.KindUnlockKeyEscrow, At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultFailed,
			Details: map[string]string{operator.DetailFingerprint: key.Fingerprint(), operator.DetailVaultPath: path, operator.DetailSwarmID: swarmID, operator.DetailError: operator.ShortErr(err)}})
		return nil, &EscrowError{Path: path, Fingerprint: key.Short(), Err: err}
	}
	if esc == nil {
		if a.Escrow == nil {
			return fail(ErrNoEscrow)
		}
		var err error
		if esc, err = a.Escrow(ctx); err != nil {
			return fail(err)
		}
	}
	rc, err := esc.StoreKey(ctx, path, swarmID, key, at)
	if err != nil {
		return fail(err)
	}
	back, err := esc.LoadKey(ctx, path)
	if err != nil {
		return fail(fmt.Errorf("reading the escrowed key back: %w", err))
	}
	if back.Key.Fingerprint() != key.Fingerprint() || back.Fingerprint != key.Fingerprint() || back.SwarmID != swarmID {
		return fail(fmt.Errorf("reading the escrowed key back: %w (vault version %d holds sha256:%s)", secrets.ErrFingerprintMismatch, back.Version, sensitive.Short(back.Key.Fingerprint())))
	}
	out := &EscrowOutcome{Path: path, Version: rc.Version, Fingerprint: key.Fingerprint(), Verified: true, Unchanged: rc.Unchanged, At: at}
	rec.add(swarm.Entry{Kind: swarm.KindUnlockKeyEscrow, At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK,
		Details: map[string]string{operator.DetailFingerprint: key.Fingerprint(), operator.DetailVaultPath: path, operator.DetailVaultVersion: fmt.Sprint(rc.Version), operator.DetailSwarmID: swarmID}})
	log.Info("escrowed unlock key", "vault_path", path, "vault_version", rc.Version, "fingerprint", key.Short(), "unchanged", rc.Unchanged)
	return out, nil
}

// enable turns autolock on and escrows the first key at once. It refuses when the key could not be
// escrowed right away: a key that exists only in the swarm is one full restart away from being lost.
func (a *Autolock) enable(ctx context.Context, cl swarm.Cluster, env operator.TaskEnv, rec *pass) error {
	log := env.Logger().With("component", "autolock")
	esc, soft, fatal := a.preflight(ctx, cl.ID)
	if fatal != nil {
		return fatal
	}
	if soft != nil {
		return fmt.Errorf("not turning autolock on while vault does not answer (the key could not be escrowed): %w", soft)
	}
	if nodes, err := a.Engine.Nodes(ctx); err == nil {
		for _, w := range a.colocationWarnings(ctx, nodes) {
			log.Warn("vault escrow target may run in this swarm", "why", w)
		}
	}
	if err := env.CheckHolder(ctx); err != nil {
		return err
	}
	if _, err := a.Engine.SetAutolock(ctx, true); err != nil {
		return fmt.Errorf("turning autolock on: %w", err)
	}
	crashpoint.At("autolock.after-enable") // on, neither escrowed nor recorded: the next pass adopts the key and escrows it
	key, err := a.Engine.UnlockKey(ctx)
	if err != nil {
		return fmt.Errorf("autolock is on, but reading its unlock key failed: %w; run `swarmguard escrow unlock-key`", err)
	}
	at := env.Time()
	log.Info("turned autolock on", "fingerprint", key.Short(), "actor", env.Actor)
	rec.add(swarm.Entry{Kind: swarm.KindUnlockKey, At: at, Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK,
		Details: map[string]string{operator.DetailAction: "enable-autolock", operator.DetailFingerprint: key.Fingerprint(), operator.DetailNewFingerprint: key.Fingerprint(), operator.DetailSwarmID: cl.ID}})
	_, err = a.escrowKey(ctx, esc, cl.ID, key, env, rec)
	crashpoint.At("autolock.after-enable-escrow") // on and escrowed, not recorded: the next pass adopts the key, finds it escrowed
	return err
}

// Task is the controller's autolock pass.
func (a *Autolock) Task() operator.Task {
	return operator.Task{Name: "autolock", Schedule: a.Config.Schedule, Run: a.Run}
}

// Run is one pass: Decide, then Apply the plan (a dry run prints it instead). Under enforce: turn
// autolock on when off (escrowing the first key at once), rotate the key past its max age, and escrow the
// current key when Vault does not hold it. Under audit: adopt the key's clock and report. Under off: nothing.
func (a *Autolock) Run(ctx context.Context, env operator.TaskEnv) error {
	pp, err := a.Decide(ctx, env.Time())
	if err != nil {
		return err
	}
	// The domain's compliance gauges come from this pass's own observation.
	if a.Config.Mode == config.ModeOff {
		a.offGauges(ctx, env)
	} else {
		a.gauges(pp.cluster, pp.entries, Observation{KeyFingerprint: pp.in.KeyFingerprint, Escrow: pp.in.Escrow}, env.Time())
	}
	if env.DryRun {
		p := pp.Plan()
		operator.PrintPlan(env, p)
		return p.Err
	}
	return a.Apply(ctx, pp, env)
}

// Apply acts on the pass's plan, nothing else: each action in order, each change after re-checking the
// lease, and records one ledger entry per action (its kind), in one write at its end. A plan that could not
// be decided (its Err) does nothing and returns that error. It prints nothing; it logs what it changed.
func (a *Autolock) Apply(ctx context.Context, pp PassPlan, env operator.TaskEnv) error {
	var rec pass
	err := a.apply(ctx, pp, env, &rec)
	return rec.flush(ctx, a.Ledger, env, err, "the unlock key was handled")
}

func (a *Autolock) apply(ctx context.Context, pp PassPlan, env operator.TaskEnv, rec *pass) error {
	log := env.Logger().With("component", "autolock")
	in, d := pp.in, pp.in.Decision
	if in.Mode == config.ModeOff {
		return nil
	}
	if in.AutoLock {
		// An adopted key's clock starts at this pass.
		a.Ages.Set(swarm.KindUnlockKey, operator.CredentialAge{Known: true, Age: d.Clock.Age, MaxAge: d.MaxAge})
		log.Debug("unlock key decision", "due", d.Due, "adopt", d.Adopt, "why", d.Why, "escrow_matches", in.Escrow.Matches)
	}
	switch {
	case !in.AutoLock && in.Mode != config.ModeEnforce:
		log.Warn("autolock is off; a stolen manager disk holds the swarm's keys in clear", "mode", in.Mode)
	case in.AutoLock && in.Mode != config.ModeEnforce && d.Due:
		log.Warn("unlock key is past its max age (mode audit: not rotated)", "why", d.Why)
	case in.AutoLock && in.Mode == config.ModeEnforce && d.Due && len(in.Unreachable) > 0:
		log.Warn("unlock key is due, but a manager is unreachable: rotation deferred", "managers", strings.Join(in.Unreachable, ", "))
	case in.AutoLock && in.Mode == config.ModeEnforce && !d.Due && !in.EscrowConfigured:
		log.Warn("no vault configured: the unlock key is not escrowed")
	}
	if in.AutoLock && in.Mode != config.ModeEnforce && !in.Escrow.Matches {
		log.Warn("vault does not hold the current unlock key (mode audit: not escrowed); run `swarmguard escrow unlock-key`", "escrow", in.Escrow.describe())
	}
	if pp.plan.Err != nil {
		return pp.plan.Err
	}
	cl, key := pp.cluster, pp.key
	for i := 0; i < len(pp.steps); i++ {
		s := pp.steps[i]
		// A step that makes a new key is followed by that key's escrow: the two are done (and recorded) together.
		pairedEscrow := i+1 < len(pp.steps) && pp.steps[i+1].do == opEscrowNew
		var err error
		switch s.do {
		case opEnable:
			if !pairedEscrow {
				return fmt.Errorf("autolock plan: turning autolock on without escrowing its key is not a plan this pass applies")
			}
			i++
			err = a.enable(ctx, cl, env, rec)
		case opAdopt:
			if err := env.CheckHolder(ctx); err != nil {
				return err
			}
			details := map[string]string{operator.DetailFingerprint: key.Fingerprint(), operator.DetailSwarmID: cl.ID}
			if in.Escrow.Matches {
				// Found escrowed (by a holder stopped before recording its escrow, or by hand): the adoption is
				// that escrow's record, so the audit trail says where the key is without a second write.
				details[operator.DetailVaultPath], details[operator.DetailVaultVersion] = in.Escrow.Path, strconv.Itoa(in.Escrow.Version)
			}
			rec.add(swarm.Entry{Kind: swarm.KindUnlockKey, At: env.Time(), Actor: env.Actor, Reason: d.AdoptReason,
				Result: swarm.ResultAdopted, Details: details})
			log.Info("adopted unlock key: its clock starts now", "fingerprint", key.Short(), "changed_outside", d.ChangedOutside)
		case opRotate:
			if !pairedEscrow {
				return fmt.Errorf("autolock plan: rotating the unlock key without escrowing the new one is not a plan this pass applies")
			}
			i++
			renv := env
			if renv.Reason == "" {
				renv.Reason = "scheduled: " + d.Why
			}
			_, err = a.rotateKey(ctx, RotateKeyOptions{}, renv, rec)
		case opEscrowCurrent:
			if err := env.CheckHolder(ctx); err != nil {
				return err
			}
			renv := env
			if renv.Reason == "" {
				renv.Reason = "scheduled: vault does not hold the current unlock key"
			}
			_, err = a.escrowKey(ctx, nil, cl.ID, key, renv, rec)
		default:
			return fmt.Errorf("autolock plan: action %q (%s) has no step before it that makes its key", s.action.Change, s.action.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// EscrowObservation is what Vault holds at the escrow path.
type EscrowObservation struct {
	Path    string
	Checked bool // Vault answered (found or not found)
	Found   bool
	// Fingerprint is the stored key's fingerprint, when the record is intact.
	Fingerprint string
	SwarmID     string
	Time        time.Time
	Version     int
	// Matches: the stored key is the swarm's current one, of this swarm, and the record is intact.
	Matches bool
	Err     error
}

func (o EscrowObservation) describe() string {
	switch {
	case o.Err != nil:
		return "could not be checked: " + o.Err.Error()
	case !o.Checked:
		return "not checked (no vault configured)"
	case !o.Found:
		return "empty at " + o.Path
	case o.Matches:
		return fmt.Sprintf("holds the current key at %s (version %d)", o.Path, o.Version)
	default:
		return fmt.Sprintf("holds another key at %s (version %d, sha256:%s)", o.Path, o.Version, sensitive.Short(o.Fingerprint))
	}
}

// ObserveEscrow reads what the escrow holds at path and compares it with the swarm's current key.
func ObserveEscrow(ctx context.Context, esc KeyEscrow, path, swarmID string, key sensitive.Value) EscrowObservation {
	o := EscrowObservation{Path: path}
	rec, err := esc.LoadKey(ctx, path)
	if errors.Is(err, secrets.ErrNotFound) {
		o.Checked = true
		return o
	}
	if err != nil {
		o.Err = sensitive.RedactErr(err, key)
		return o
	}
	o.Checked, o.Found, o.SwarmID, o.Time, o.Version = true, true, rec.SwarmID, rec.Time, rec.Version
	stored := rec.Key.Fingerprint()
	if stored == rec.Fingerprint {
		o.Fingerprint = stored
	}
	o.Matches = o.Fingerprint != "" && o.Fingerprint == key.Fingerprint() && rec.SwarmID == swarmID
	return o
}

func (a *Autolock) observeEscrow(ctx context.Context, swarmID string, key sensitive.Value) EscrowObservation {
	path := a.Config.EscrowPath(swarmID)
	esc, err := a.Escrow(ctx)
	if err != nil {
		return EscrowObservation{Path: path, Err: err}
	}
	return ObserveEscrow(ctx, esc, path, swarmID, key)
}

// Finding is what the compliance report shows of autolock and the unlock key.
type Finding struct {
	Mode           string          `json:"mode"`
	Enabled        bool            `json:"enabled"`
	KeyFingerprint string          `json:"key_fingerprint,omitempty"` // short
	KeyTracked     bool            `json:"key_tracked"`
	KeyAdopted     bool            `json:"key_adopted"`
	KeySince       time.Time       `json:"key_since,omitzero"`
	KeyAge         config.Duration `json:"key_age"`
	MaxAge         config.Duration `json:"max_age"`
	KeyDue         bool            `json:"key_due"`
	EscrowPath     string          `json:"escrow_path"`
	// LastEscrow is the ledger's newest successful escrow.
	LastEscrow time.Time `json:"last_escrow,omitzero"`
	// EscrowChecked: Vault was read; EscrowFound: it holds a record; EscrowMatches: the record is intact,
	// of this swarm, and its key is the swarm's current one.
	EscrowChecked bool   `json:"escrow_checked"`
	EscrowFound   bool   `json:"escrow_found"`
	EscrowMatches bool   `json:"escrow_matches"`
	EscrowError   string `json:"escrow_error,omitempty"`
}

// Findings describes autolock for the compliance report, from the swarm, the current key's
// fingerprint (empty when autolock is off), the ledger, what Vault holds, and now.
func Findings(cfg config.AutolockConfig, cl swarm.Cluster, keyFingerprint string, entries []swarm.Entry, esc EscrowObservation, now time.Time) Finding {
	f := Finding{Mode: cfg.Mode, Enabled: cl.AutoLock, EscrowPath: cfg.EscrowPath(cl.ID), MaxAge: cfg.Rotate.MaxAge}
	if e, ok := swarm.Latest(entries, swarm.KindUnlockKeyEscrow, swarm.ResultOK); ok {
		f.LastEscrow = e.At
	}
	if !cl.AutoLock {
		return f
	}
	f.KeyFingerprint = sensitive.Short(keyFingerprint)
	d := DecideCurrentKey(entries, cfg.Rotate.MaxAge.D(), keyFingerprint, now)
	f.KeyTracked, f.KeyAdopted, f.KeySince, f.KeyAge, f.KeyDue = d.Clock.Tracked, d.Clock.Adopted, d.Clock.Since, config.Duration(d.Clock.Age), d.Due
	f.EscrowChecked, f.EscrowFound = esc.Checked, esc.Found
	f.EscrowMatches = esc.Found && esc.Fingerprint != "" && esc.Fingerprint == keyFingerprint && esc.SwarmID == cl.ID
	if esc.Err != nil {
		f.EscrowError = esc.Err.Error()
	}
	return f
}

// Findings reads what Findings needs and returns the finding.
func (a *Autolock) Findings(ctx context.Context, now time.Time) (Finding, error) {
	cl, err := a.Engine.Cluster(ctx)
	if err != nil {
		return Finding{}, fmt.Errorf("reading the swarm: %w", err)
	}
	entries, err := a.Ledger.Entries(ctx)
	if err != nil {
		return Finding{}, fmt.Errorf("reading the ledger: %w", err)
	}
	var key sensitive.Value
	obs := EscrowObservation{Path: a.Config.EscrowPath(cl.ID)}
	if cl.AutoLock {
		if key, err = a.Engine.UnlockKey(ctx); err != nil {
			return Finding{}, err
		}
		if a.Escrow != nil {
			obs = a.observeEscrow(ctx, cl.ID, key)
		}
	}
	return Findings(a.Config, cl, key.Fingerprint(), entries, obs, now), nil
}

// pass collects the ledger entries of one action, to be written in one Append at its end.
type pass struct{ entries []swarm.Entry }

func (p *pass) add(e swarm.Entry) { p.entries = append(p.entries, e) }

// flush records the pass's entries once. err is the pass's own outcome; a failed record is added to it
// when the pass succeeded (did says what was done), and logged when the pass failed anyway.
func (p *pass) flush(ctx context.Context, ledger operator.LedgerStore, env operator.TaskEnv, err error, did string) error {
	lerr := operator.Record(ctx, ledger, p.entries...)
	switch {
	case lerr == nil:
		return err
	case err != nil:
		env.Logger().Warn("recording in the ledger failed", "err", lerr)
		return err
	}
	return fmt.Errorf("%s, but recording it in the ledger failed: %w", did, lerr)
}
