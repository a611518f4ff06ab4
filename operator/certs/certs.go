package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// Engine is what the certificate domain reads and changes on the engine. *swarm.Client satisfies it.
type Engine interface {
	CA(ctx context.Context) (swarm.CAState, error)
	Nodes(ctx context.Context) ([]swarm.Node, error)
	SetNodeCertExpiry(ctx context.Context, d time.Duration) (before time.Duration, changed bool, err error)
	RotateCA(ctx context.Context, opts swarm.RotateCAOptions) (swarm.RotateCAResult, error)
}

var _ Engine = (*swarm.Client)(nil)

// Rotation follow-up tunables.
const (
	// caPollInterval: swarm renews node certificates within seconds of a rotation step; polling the
	// manager every 2s costs two small API calls.
	caPollInterval = 2 * time.Second
	// CAStallAfter: with every node up a rotation moves within seconds (LAB.md: about 3.5 s on four
	// nodes), so a minute without movement means a node is stuck or down.
	CAStallAfter = time.Minute
)

// PKIPolicy turns the pki section of the configuration into pki's policy.
func PKIPolicy(c config.PKIConfig) (pki.Policy, error) {
	warn, err := pki.ParseWindow(c.WarnBefore)
	if err != nil {
		return pki.Policy{}, fmt.Errorf("pki.warn_before: %w", err)
	}
	crit, err := pki.ParseWindow(c.CriticalBefore)
	if err != nil {
		return pki.Policy{}, fmt.Errorf("pki.critical_before: %w", err)
	}
	return pki.Policy{
		NodeCertExpiry: c.NodeCertExpiry.D(),
		WarnBefore:     warn,
		CriticalBefore: crit,
		CAMaxAge:       c.CA.MaxAge.D(),
	}, nil
}

// PKICluster maps the swarm's CA state into pki's input.
func PKICluster(ca swarm.CAState) pki.Cluster {
	return pki.Cluster{
		TrustRootPEM:           ca.TrustRootPEM,
		IssuerSubject:          ca.IssuerSubject,
		IssuerPublicKey:        ca.IssuerPublicKey,
		NodeCertExpiry:         ca.NodeCertExpiry,
		RootRotationInProgress: ca.RootRotationInProgress,
	}
}

// PKINodes maps the swarm's nodes into pki's input. UpdatedAt is the best known "down since": the node
// object changes when its status does.
func PKINodes(nodes []swarm.Node) []pki.NodeInput {
	out := make([]pki.NodeInput, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, pki.NodeInput{
			ID: n.ID, Hostname: n.Hostname, Role: n.Role, State: n.State, Availability: n.Availability,
			ManagerAddr: n.ManagerAddr, TrustRootPEM: n.TrustRootPEM,
			IssuerSubject: n.IssuerSubject, IssuerPublicKey: n.IssuerPublicKey,
			StatusChangedAt: n.UpdatedAt,
		})
	}
	return out
}

// Observation is one read of the certificate domain.
type Observation struct {
	CA        swarm.CAState
	Cluster   pki.Cluster
	Nodes     []pki.NodeInput
	Inventory pki.Inventory
}

// ObserveCerts reads the CA, the nodes and every node's certificate (from src, best source first).
func ObserveCerts(ctx context.Context, eng Engine, src pki.Sources) (Observation, error) {
	ca, err := eng.CA(ctx)
	if err != nil {
		return Observation{}, err
	}
	nodes, err := eng.Nodes(ctx)
	if err != nil {
		return Observation{}, err
	}
	o := Observation{CA: ca, Cluster: PKICluster(ca), Nodes: PKINodes(nodes)}
	o.Inventory = pki.Collect(ctx, o.Cluster, o.Nodes, src)
	return o, nil
}

// Report reads the swarm and builds `report certs` as of now (ReportFrom).
func Report(ctx context.Context, eng Engine, src pki.Sources, c config.PKIConfig, now time.Time) (report.Report, error) {
	p, err := PKIPolicy(c)
	if err != nil {
		return report.Report{}, err
	}
	o, err := ObserveCerts(ctx, eng, src)
	if err != nil {
		return report.Report{}, err
	}
	return ReportFrom(o.Inventory, p, now), nil
}

// SeverityStatus is a certificate finding's severity as a report status: critical is fail, warn is warn,
// anything else info. `report certs` applies the one report.fail_on gate (report.Fails) to it.
func SeverityStatus(s pki.Severity) report.CheckStatus {
	switch s {
	case pki.SeverityCritical:
		return report.StatusFail
	case pki.SeverityWarn:
		return report.StatusWarn
	}
	return report.StatusInfo
}

// Task is the controller's certificate pass on pki.schedule: read every certificate, log the
// findings, hand the inventory to onInventory (metrics) and the domain's compliance gauges (its report
// section's check statuses, from this pass's observation) to onGauges, and under pki.mode enforce set the
// cluster's node certificate expiry to the policy. Either hook may be nil.
func Task(eng Engine, ledger operator.LedgerStore, src pki.Sources, c config.PKIConfig, onInventory func(pki.Inventory),
	onGauges func([]report.Gauge)) operator.Task {
	return operator.Task{
		Name:     "certs",
		Schedule: c.Schedule,
		Run: func(ctx context.Context, env operator.TaskEnv) error {
			return certsPass(ctx, eng, ledger, src, c, onInventory, onGauges, env)
		},
	}
}

// sectionGauges are the certificate section's check statuses for one pass's observation: the swarm's CA
// state as the pass read it, the ledger (the root CA's clock) and the inventory.
func sectionGauges(ctx context.Context, ledger operator.LedgerStore, o Observation, c config.PKIConfig, now time.Time) []report.Gauge {
	var entries []swarm.Entry
	ledgerErr := errors.New("no ledger configured")
	if ledger != nil {
		entries, ledgerErr = ledger.Entries(ctx)
	}
	cl := swarm.Cluster{TrustRootPEM: o.CA.TrustRootPEM, NodeCertExpiry: o.CA.NodeCertExpiry, RootRotationInProgress: o.CA.RootRotationInProgress}
	return SectionGauges(cl, entries, ledgerErr, o.Inventory, c, now)
}

func certsPass(ctx context.Context, eng Engine, ledger operator.LedgerStore, src pki.Sources, c config.PKIConfig, onInventory func(pki.Inventory),
	onGauges func([]report.Gauge), env operator.TaskEnv) error {
	log := env.Logger().With("component", "certs")
	p, err := PKIPolicy(c)
	if err != nil {
		return err
	}
	o, err := ObserveCerts(ctx, eng, src)
	if err != nil {
		return fmt.Errorf("reading certificates: %w", err)
	}
	if onInventory != nil {
		onInventory(o.Inventory)
	}
	now := env.Time()
	if onGauges != nil {
		onGauges(sectionGauges(ctx, ledger, o, c, now))
	}
	for _, f := range pki.Evaluate(o.Inventory, p, now) {
		lvl := slog.LevelDebug
		switch f.Severity {
		case pki.SeverityCritical:
			lvl = slog.LevelError
		case pki.SeverityWarn:
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "certificate finding", "finding", f.ID, "node", f.Node, "detail", f.Message)
	}
	return EnforceNodeCertExpiry(ctx, eng, ledger, c, o.CA, env)
}

// EnforceNodeCertExpiry decides (reads the ledger; ca is the CA state the pass observed) and applies the
// certificate pass's plan (ApplyNodeCertExpiry); a dry run prints the plan instead. Under pki.mode enforce
// it sets the cluster's NodeCertExpiry to pki.node_cert_expiry when the two differ and records it (kind
// node-cert-expiry); in audit mode it changes nothing. The write is compare-and-swap and a no-op when
// already set, so a retry after a crash does nothing twice.
func EnforceNodeCertExpiry(ctx context.Context, eng Engine, ledger operator.LedgerStore, c config.PKIConfig, ca swarm.CAState, env operator.TaskEnv) error {
	entries, err := ledger.Entries(ctx)
	if err != nil {
		return fmt.Errorf("reading the ledger: %w", err)
	}
	np := decideNodeCertExpiry(c, ca, entries)
	if env.DryRun {
		operator.PrintPlan(env, np.Plan())
		return nil
	}
	return ApplyNodeCertExpiry(ctx, eng, ledger, np, env)
}

// ApplyNodeCertExpiry acts on the certificate pass's plan, nothing else: its one action, after re-checking
// the lease, recorded once (kind node-cert-expiry). A set that finds the expiry already changed (another
// writer did it between the read and the write) records nothing: the next pass adopts it. It prints nothing.
func ApplyNodeCertExpiry(ctx context.Context, eng Engine, ledger operator.LedgerStore, np NodeCertPlan, env operator.TaskEnv) error {
	log := env.Logger().With("component", "certs")
	for _, s := range np.steps {
		if err := env.CheckHolder(ctx); err != nil {
			return err
		}
		if s.adopt {
			err := operator.Record(ctx, ledger, swarm.Entry{
				Kind: swarm.KindNodeCertExpiry, At: env.Time().UTC(), Actor: env.Actor, Result: swarm.ResultAdopted,
				Reason:  "node certificate expiry found at pki.node_cert_expiry with no ledger entry (set by a process stopped before recording it, by hand, or before swarmguard)",
				Details: map[string]string{"action": "adopted", "to": s.want.String()},
			})
			if err != nil {
				return fmt.Errorf("recording the node certificate expiry found in the ledger: %w", err)
			}
			log.Info("node certificate expiry found as wanted, not in the ledger: recorded as adopted", "node_cert_expiry", s.want.String())
			continue
		}
		before, changed, err := eng.SetNodeCertExpiry(ctx, s.want)
		if err != nil {
			return fmt.Errorf("setting the node certificate expiry to %s: %w", s.want, err)
		}
		if !changed {
			continue
		}
		crashpoint.At("node-cert-expiry.after-set") // set, not recorded
		log.Info("set node certificate expiry", "from", before.String(), "to", s.want.String())
		reason := env.Reason
		if reason == "" {
			reason = s.action.Reason
		}
		err = operator.Record(ctx, ledger, swarm.Entry{
			Kind: swarm.KindNodeCertExpiry, At: env.Time().UTC(), Actor: env.Actor, Reason: reason, Result: swarm.ResultOK,
			Details: map[string]string{"from": before.String(), "to": s.want.String()},
		})
		if err != nil {
			return fmt.Errorf("recording the node certificate expiry in the ledger: %w", err)
		}
	}
	return nil
}

// CATask is the controller's scheduled root CA rotation on pki.ca.schedule: decide (DecideCA, as a plan),
// then apply it: under pki.mode enforce, when pki.ca.max_age is set and the root is due, start a rotation
// (never while one is in progress), then follow it to completion exactly as `rotate ca --wait` does
// (FollowCARotation: progress, a stall naming the nodes, the ledger entry at the end, the join tokens
// republished). republish may be nil (publishing not configured).
//
// ages, when not nil, gets the root CA's age and max age (kind ca) from the decision of each pass, also
// when no max age is set (the clock is then shown against a max age of 0).
func CATask(eng Engine, ledger operator.LedgerStore, c config.PKIConfig, republish func(ctx context.Context, env operator.TaskEnv) error,
	ages *operator.CredentialAges) operator.Task {
	return operator.Task{
		Name:     "ca",
		Schedule: c.CA.Schedule,
		Run: func(ctx context.Context, env operator.TaskEnv) error {
			cp, err := DecideCAPass(ctx, eng, ledger, c, env.Time())
			if err != nil {
				return err
			}
			ages.Set(swarm.KindCA, operator.CredentialAge{Known: true, Age: cp.decision.Age, MaxAge: cp.maxAge})
			if env.DryRun {
				operator.PrintPlan(env, cp.Plan())
				return nil
			}
			return ApplyCA(ctx, eng, ledger, cp, FollowOptions{Republish: republish}, env)
		},
	}
}

// DecideCAPass reads the root CA and the ledger (reads only) and decides the scheduled root CA pass as of
// now: the plan ApplyCA acts on. A failed read decides nothing: the ledger may hold a rotation newer than the
// root's NotBefore.
func DecideCAPass(ctx context.Context, eng Engine, ledger operator.LedgerStore, c config.PKIConfig, now time.Time) (CAPlan, error) {
	ca, err := eng.CA(ctx)
	if err != nil {
		return CAPlan{}, fmt.Errorf("reading the root CA: %w", err)
	}
	root, err := pki.ParseCertificate([]byte(ca.TrustRootPEM))
	if err != nil {
		return CAPlan{}, fmt.Errorf("reading the trust root: %w", err)
	}
	entries, err := ledger.Entries(ctx)
	if err != nil {
		return CAPlan{}, fmt.Errorf("reading the ledger: %w", err)
	}
	return decideCA(c, ca, root, entries, now), nil
}

// ScheduledCARotation decides (DecideCAPass) and applies the plan's adoption and start, not its follow: it
// returns what it started; a zero CARotationStart means nothing was due. A dry run prints the plan.
func ScheduledCARotation(ctx context.Context, eng Engine, ledger operator.LedgerStore, c config.PKIConfig, env operator.TaskEnv) (CARotationStart, error) {
	cp, err := DecideCAPass(ctx, eng, ledger, c, env.Time())
	if err != nil {
		return CARotationStart{}, err
	}
	if env.DryRun {
		operator.PrintPlan(env, cp.Plan())
		return CARotationStart{}, nil
	}
	return applyCAStart(ctx, eng, ledger, cp, env)
}

// ApplyCA acts on a root CA plan, nothing else, in its order: records an adoption, starts a rotation
// (StartCARotation re-reads the CA first: one started meanwhile is attached to, not restarted), and follows
// it (FollowCARotation) when the plan says so; one ledger entry per action. It prints nothing.
func ApplyCA(ctx context.Context, eng Engine, ledger operator.LedgerStore, cp CAPlan, o FollowOptions, env operator.TaskEnv) error {
	start, err := applyCAStart(ctx, eng, ledger, cp, env)
	if err != nil || !cp.follows() || !(start.Started || start.Attached) {
		return err
	}
	return FollowCARotation(ctx, eng, ledger, start, o, env)
}

// applyCAStart does the plan's adoption and start (not its follow).
func applyCAStart(ctx context.Context, eng Engine, ledger operator.LedgerStore, cp CAPlan, env operator.TaskEnv) (CARotationStart, error) {
	log := env.Logger().With("component", "ca")
	d := cp.decision
	if cp.maxAge > 0 && !d.Rotate {
		log.Debug("root CA rotation not due", "age", d.Age.Truncate(time.Second).String(), "age_from", d.SinceSource, "max_age", cp.maxAge.String(),
			"in_progress", cp.ca.RootRotationInProgress, "why", d.Why)
	}
	if cp.maxAge > 0 && d.Rotate && !cp.follows() {
		log.Warn("root CA older than pki.ca.max_age, audit mode: not rotating", "age", d.Age.Truncate(time.Second).String(), "max_age", cp.maxAge.String())
	}
	var start CARotationStart
	for _, s := range cp.steps {
		switch s.do {
		case caAdopt:
			// A rotation the ledger does not know: one started by a process killed before its record, or by
			// `docker swarm ca --rotate`. It is not started again (the root's NotBefore already dates it); it is
			// recorded, so the audit trail says it happened.
			if err := env.CheckHolder(ctx); err != nil {
				return start, err
			}
			log.Warn("root CA rotation not in the ledger: recording it as adopted", "force_rotate", s.n)
			e := swarm.Entry{Kind: swarm.KindCA, At: env.Time().UTC(), Actor: env.Actor, Result: swarm.ResultAdopted, Reason: s.action.Reason,
				Details: map[string]string{"action": "adopted", "force_rotate": strconv.FormatUint(s.n, 10), DetailRootSerial: pki.SerialHex(cp.root),
					"in_progress": strconv.FormatBool(cp.ca.RootRotationInProgress)}}
			if err := operator.Record(ctx, ledger, e); err != nil {
				return start, fmt.Errorf("recording the unrecorded root CA rotation %d in the ledger: %w", s.n, err)
			}
		case caStart:
			renv := env
			if renv.Reason == "" {
				renv.Reason = "scheduled: " + d.Why
			}
			var err error
			if start, err = StartCARotation(ctx, eng, ledger, s.opts, renv); err != nil {
				return start, err
			}
		}
	}
	return start, nil
}

// DetailRootSerial is the ca ledger entries' detail naming the root a rotation ended on (or the root an
// adoption found): the ledger's date is that root's age, not another's.
const DetailRootSerial = "root_serial"

// UnrecordedCARotation says whether the swarm's root CA rotation counter (ForceRotate, bumped by every
// rotation) is one no ca entry of the ledger names: a rotation that happened without its record. Counter 0
// (never rotated) is always known; a ledger entry naming the counter or a later one makes it known.
func UnrecordedCARotation(ca swarm.CAState, entries []swarm.Entry) (uint64, bool) {
	if ca.ForceRotate == 0 {
		return 0, false
	}
	for _, e := range entries {
		if e.Kind != swarm.KindCA {
			continue
		}
		if n, err := strconv.ParseUint(e.Details["force_rotate"], 10, 64); err == nil && n >= ca.ForceRotate {
			return 0, false
		}
	}
	return ca.ForceRotate, true
}

// CARotationDue is the scheduled-rotation decision on an age alone (see DecideCA): the root is at or over
// maxAge (0: never) and no rotation is in progress (starting one again would restart it).
func CARotationDue(age, maxAge time.Duration, inProgress bool) bool {
	return maxAge > 0 && age >= maxAge && !inProgress
}

// FollowOptions tune FollowCARotation.
type FollowOptions struct {
	// Timeout gives up after this long (ErrRotationTimeout); 0 follows until ctx ends.
	Timeout time.Duration
	// Republish writes the join tokens again once the rotation completed (their CA digest changed); nil
	// when publishing is not configured.
	Republish func(ctx context.Context, env operator.TaskEnv) error
	// Poll and StallAfter as in WaitCAOptions (defaults when zero).
	Poll, StallAfter time.Duration
	// Progress, when not nil, is told what the follow sees as it goes (the CLI prints it); the follow itself
	// prints nothing.
	Progress func(CAFollowEvent)
}

// CAFollowEvent is one thing FollowCARotation says while it follows a rotation: a reading that moved, a
// stall (Stalled: nothing moved for StillFor), or the end (Done: every node on the new root, described by Root).
type CAFollowEvent struct {
	// Elapsed is the time since the follow began.
	Elapsed  time.Duration
	Progress pki.RotationProgress
	Stalled  bool
	StillFor time.Duration
	Done     bool
	Root     string
}

// FollowCARotation follows a started (or attached) root CA rotation to its end, the one implementation of
// `rotate ca --wait` and of the controller's scheduled rotation: it tells its progress to o.Progress (it
// prints nothing) and logs it, warns once per stall naming every pending node and whether it is down, records the outcome in the
// ledger (kind ca: completed, or wait-failed with the pending nodes), and on completion republishes the
// join tokens. A cancelled ctx (the lease lost, a signal) records nothing: the rotation goes on in the swarm
// and the next follower attaches to it.
func FollowCARotation(ctx context.Context, eng Engine, ledger operator.LedgerStore, start CARotationStart, o FollowOptions, env operator.TaskEnv) error {
	log := env.Logger().With("component", "ca")
	tell := func(ev CAFollowEvent) {
		if o.Progress != nil {
			o.Progress(ev)
		}
	}
	began := env.Time()
	since := func() time.Duration { return env.Time().Sub(began).Truncate(time.Second) }
	p, werr := WaitCARotation(ctx, eng, WaitCAOptions{
		OldRootPEM: start.Before.TrustRootPEM,
		Timeout:    o.Timeout,
		Poll:       o.Poll,
		StallAfter: o.StallAfter,
		Now:        env.Now,
		OnProgress: func(p pki.RotationProgress) {
			tell(CAFollowEvent{Elapsed: since(), Progress: p})
			log.Info("root CA rotation progress", "on_new_root", p.OnNewRoot, "total", p.Total, "pending", len(p.Pending))
		},
		OnStall: func(p pki.RotationProgress, still time.Duration) {
			tell(CAFollowEvent{Elapsed: since(), Progress: p, Stalled: true, StillFor: still.Truncate(time.Second)})
			log.Warn("root CA rotation stalled", "still_for", still.Truncate(time.Second).String(), "pending", PendingText(p))
		},
	})
	const stopped = "stopped following the root CA rotation; it goes on in the swarm (attach again with: swarmguard rotate ca --wait)"
	if errors.Is(werr, context.Canceled) {
		return errors.New(stopped)
	}
	if werr != nil && ctx.Err() != nil && !errors.Is(werr, ErrRotationTimeout) {
		return fmt.Errorf("%s: %w", stopped, werr)
	}
	// The root the rotation ended on, so the ledger's date is the age of that root only (a root put in by
	// hand later is dated by its own NotBefore).
	var after *x509.Certificate
	if werr == nil {
		if ca, err := eng.CA(ctx); err == nil {
			after, _ = pki.ParseCertificate([]byte(ca.TrustRootPEM))
		}
	}
	crashpoint.At("ca.before-record-outcome") // followed to its end; the outcome not recorded, the tokens not republished
	if lerr := recordCAWait(ctx, ledger, env, p, werr, after); lerr != nil {
		log.Warn("ledger write failed", "err", lerr)
	}
	if werr != nil {
		return fmt.Errorf("%w; run `swarmguard rotate ca --wait` again to attach once they are back", werr)
	}
	root := "unknown"
	if ca, err := eng.CA(ctx); err == nil {
		if cert, err := pki.ParseCertificate([]byte(ca.TrustRootPEM)); err == nil {
			root = fmt.Sprintf("%s serial %s, valid until %s", cert.Subject, pki.SerialHex(cert), cert.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	tell(CAFollowEvent{Elapsed: since(), Progress: p, Done: true, Root: root})
	log.Info("root CA rotation complete", "nodes", p.Total, "root", root)
	// The CA-digest part of every join token changed with the root: publish the tokens again.
	crashpoint.At("ca.before-republish") // completed and recorded; the tokens not republished
	if o.Republish != nil {
		// A write to Vault: only as the holder, or tokens read before the holder rotated and published
		// newer ones would overwrite them.
		if err := env.CheckHolder(ctx); err != nil {
			return fmt.Errorf("the root CA rotation completed, but the join tokens were not republished: %w; the holder's tokens pass republishes them", err)
		}
		if err := o.Republish(ctx, env); err != nil {
			return fmt.Errorf("the root CA rotation completed, but %w; the controller's tokens pass retries it", err)
		}
	}
	return nil
}

// CARotationStart says what StartCARotation did.
type CARotationStart struct {
	Started  bool // ForceRotate was bumped (or would be, in a dry run)
	Attached bool // a rotation was already in progress; we follow it
	// Resumed: the rotation an earlier attempt of the same action started (ResumeCARotation), in progress
	// or finished; Attached too.
	Resumed     bool
	ForceRotate uint64
	// Before is the CA state read before acting; its trust root is the old root.
	Before swarm.CAState
	// Plan is what a dry run would do (set only then): the caller prints it; nothing is printed here.
	Plan *operator.Plan
}

// StartCARotation starts a root CA rotation, or attaches to the one in progress unless opts.Force, and
// records it in the ledger (kind ca): it reads the CA state, plans (PlanStartCA) and acts on that plan's
// start. A dry run changes nothing and returns the plan in the result's Plan for the caller to print.
func StartCARotation(ctx context.Context, eng Engine, ledger operator.LedgerStore, opts swarm.RotateCAOptions, env operator.TaskEnv) (CARotationStart, error) {
	before, err := eng.CA(ctx)
	if err != nil {
		return CARotationStart{}, fmt.Errorf("reading the root CA: %w", err)
	}
	cp := planStartCA(before, opts, env.Reason)
	if env.DryRun {
		p := cp.Plan()
		out := CARotationStart{Before: before, ForceRotate: before.ForceRotate, Plan: &p}
		out.Attached = before.RootRotationInProgress && !opts.Force
		out.Started = !out.Attached
		return out, nil
	}
	return startCA(ctx, eng, ledger, cp, env)
}

// startCA acts on the start of a plan from planStartCA: without a start step it attaches to the rotation in
// progress; with one it starts it (after re-checking the lease) and records it.
func startCA(ctx context.Context, eng Engine, ledger operator.LedgerStore, cp CAPlan, env operator.TaskEnv) (CARotationStart, error) {
	log := env.Logger().With("component", "ca")
	before := cp.ca
	out := CARotationStart{Before: before, ForceRotate: before.ForceRotate}
	var st *caStep
	for i := range cp.steps {
		if cp.steps[i].do == caStart {
			st = &cp.steps[i]
		}
	}
	if st == nil {
		out.Attached = before.RootRotationInProgress
		if out.Attached {
			log.Info("attaching to root CA rotation in progress", "force_rotate", before.ForceRotate)
		}
		return out, nil
	}
	if err := env.CheckHolder(ctx); err != nil {
		return out, err
	}
	res, err := eng.RotateCA(ctx, st.opts)
	if err != nil {
		return out, fmt.Errorf("starting the root CA rotation: %w", err)
	}
	out.ForceRotate = res.ForceRotate
	if !res.Started {
		// Another writer started one between our read and our write: follow it.
		out.Attached = true
		log.Info("attaching to root CA rotation started meanwhile", "force_rotate", res.ForceRotate)
		return out, nil
	}
	crashpoint.At("ca.after-start") // started, not recorded
	out.Started = true
	log.Info("started root CA rotation", "force_rotate", res.ForceRotate, "handed_in", st.opts.CertPEM != "")
	details := map[string]string{
		"action":       "started",
		"force_rotate": strconv.FormatUint(res.ForceRotate, 10),
		"handed_in":    strconv.FormatBool(st.opts.CertPEM != ""),
	}
	if root, err := pki.ParseCertificate([]byte(before.TrustRootPEM)); err == nil {
		details["old_root_serial"] = pki.SerialHex(root)
	}
	if err := operator.Record(ctx, ledger, swarm.Entry{
		Kind: swarm.KindCA, At: env.Time().UTC(), Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK, Details: details,
	}); err != nil {
		return out, fmt.Errorf("recording the root CA rotation in the ledger: %w", err)
	}
	return out, nil
}

// ResumeCARotation starts the follow of an action that already started root CA rotation n (its ledger
// entry says so: an incident resumed with --id after its CA step timed out): once the swarm's ForceRotate is n
// or later, that rotation, or a newer one that replaces the root again, is the swarm's to finish. The action
// follows it, whether still in progress or finished meanwhile (the follow then records its completion and
// republishes the tokens at once), and never starts another: every node would renew twice. oldRootSerial
// is the root before rotation n (the started entry's old_root_serial): while the swarm still shows it, the
// follow waits for it to change. ok is false when the swarm has no rotation n (ForceRotate lower): start one.
func ResumeCARotation(ctx context.Context, eng Engine, n uint64, oldRootSerial string, env operator.TaskEnv) (CARotationStart, bool, error) {
	ca, err := eng.CA(ctx)
	if err != nil {
		return CARotationStart{}, false, fmt.Errorf("reading the root CA: %w", err)
	}
	if n == 0 || ca.ForceRotate < n {
		return CARotationStart{}, false, nil
	}
	out := CARotationStart{Attached: true, Resumed: true, ForceRotate: ca.ForceRotate}
	if r, err := pki.ParseCertificate([]byte(ca.TrustRootPEM)); err == nil && oldRootSerial != "" && pki.SerialHex(r) == oldRootSerial {
		out.Before = ca // the swarm still trusts the old root: done only once it changed
	}
	env.Logger().With("component", "ca").Info("resuming the root CA rotation started earlier: following it, starting none",
		"started_force_rotate", n, "force_rotate", ca.ForceRotate, "in_progress", ca.RootRotationInProgress)
	return out, true, nil
}

// ErrRotationTimeout is returned by WaitCARotation when the timeout passes first.
var ErrRotationTimeout = errors.New("root CA rotation did not complete in time")

// WaitCAOptions tunes WaitCARotation.
type WaitCAOptions struct {
	// OldRootPEM, when set, is the trust root before the rotation: completion also needs the cluster's
	// trust root to have changed (so a rotation just started never looks done).
	OldRootPEM string
	Timeout    time.Duration // 0: until ctx ends
	Poll       time.Duration // caPollInterval when zero
	StallAfter time.Duration // CAStallAfter when zero
	// OnProgress is called with the first reading and every reading that moved.
	OnProgress func(pki.RotationProgress)
	// OnStall is called once per stall, when nothing moved for StallAfter.
	OnStall func(p pki.RotationProgress, still time.Duration)
	Now     func() time.Time
}

// WaitCARotation follows a root CA rotation until it completes, the timeout passes (ErrRotationTimeout,
// with the last progress) or ctx ends.
func WaitCARotation(ctx context.Context, eng Engine, o WaitCAOptions) (pki.RotationProgress, error) {
	clock := o.Now
	if clock == nil {
		clock = time.Now
	}
	poll, stall := o.Poll, o.StallAfter
	if poll <= 0 {
		poll = caPollInterval
	}
	if stall <= 0 {
		stall = CAStallAfter
	}
	start := clock()
	var deadline <-chan time.Time
	if o.Timeout > 0 {
		t := time.NewTimer(o.Timeout)
		defer t.Stop()
		deadline = t.C
	}
	var last pki.RotationProgress
	first, stalled := true, false
	lastMove := start
	for {
		p, err := readProgress(ctx, eng, o.OldRootPEM)
		if err != nil {
			// A failed read is not progress and not failure: a leader election makes the API stutter.
			// Keep the last reading and try again.
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
		} else {
			if first || pki.Moved(last, p) || !samePending(last, p) {
				lastMove, stalled = clock(), false
				if o.OnProgress != nil {
					o.OnProgress(p)
				}
			}
			first, last = false, p
			if p.Done {
				return p, nil
			}
			if still := clock().Sub(lastMove); still >= stall && !stalled {
				stalled = true
				if o.OnStall != nil {
					o.OnStall(p, still)
				}
			}
		}
		select {
		case <-ctx.Done():
			return last, ctx.Err()
		case <-deadline:
			return last, fmt.Errorf("%w after %s: %s", ErrRotationTimeout, o.Timeout, PendingText(last))
		case <-time.After(poll):
		}
	}
}

func readProgress(ctx context.Context, eng Engine, oldRoot string) (pki.RotationProgress, error) {
	ca, err := eng.CA(ctx)
	if err != nil {
		return pki.RotationProgress{}, err
	}
	nodes, err := eng.Nodes(ctx)
	if err != nil {
		return pki.RotationProgress{}, err
	}
	p := pki.Progress(PKICluster(ca), PKINodes(nodes))
	if oldRoot != "" && sameTrustRoot(ca.TrustRootPEM, oldRoot) {
		p.Done = false
		if !p.InProgress {
			// The swarm has not taken up the rotation yet (or it was rejected): every node is pending.
			p.OnNewRoot = 0
		}
	}
	return p, nil
}

func sameTrustRoot(a, b string) bool {
	return strings.TrimSpace(a) == strings.TrimSpace(b)
}

func samePending(a, b pki.RotationProgress) bool {
	if len(a.Pending) != len(b.Pending) {
		return false
	}
	for i := range a.Pending {
		if a.Pending[i].ID != b.Pending[i].ID || a.Pending[i].Down != b.Pending[i].Down {
			return false
		}
	}
	return true
}

// PendingText names every pending node and whether it is down, for people.
func PendingText(p pki.RotationProgress) string {
	if len(p.Pending) == 0 {
		if p.InProgress {
			return fmt.Sprintf("%d/%d nodes on the new root; swarm is switching the trust root", p.OnNewRoot, p.Total)
		}
		return fmt.Sprintf("%d/%d nodes on the new root, none pending", p.OnNewRoot, p.Total)
	}
	parts := make([]string, 0, len(p.Pending))
	for _, n := range p.Pending {
		name := n.Hostname
		if name == "" {
			name = n.ID
		}
		state := n.State
		if n.Down {
			state = "down"
		}
		parts = append(parts, fmt.Sprintf("%s (%s, %s, %s)", name, n.ID, n.Role, state))
	}
	return fmt.Sprintf("%d/%d nodes on the new root; pending: %s", p.OnNewRoot, p.Total, strings.Join(parts, ", "))
}

// RecordCAWait writes the outcome of following a rotation to the ledger (kind ca).
func RecordCAWait(ctx context.Context, ledger operator.LedgerStore, env operator.TaskEnv, p pki.RotationProgress, waitErr error) error {
	return recordCAWait(ctx, ledger, env, p, waitErr, nil)
}

// recordCAWait is RecordCAWait naming the root a completed rotation ended on (root_serial), when known.
func recordCAWait(ctx context.Context, ledger operator.LedgerStore, env operator.TaskEnv, p pki.RotationProgress, waitErr error, root *x509.Certificate) error {
	e := swarm.Entry{Kind: swarm.KindCA, At: env.Time().UTC(), Actor: env.Actor, Reason: env.Reason, Result: swarm.ResultOK,
		Details: map[string]string{"action": "completed", "nodes": strconv.Itoa(p.Total)}}
	if root != nil && waitErr == nil {
		e.Details[DetailRootSerial] = pki.SerialHex(root)
	}
	if waitErr != nil {
		e.Result = swarm.ResultFailed
		e.Details["action"] = "wait-failed"
		var pending []string
		for _, n := range p.Pending {
			pending = append(pending, n.ID)
		}
		e.Details["pending"] = strings.Join(pending, ",")
		e.Details["on_new_root"] = strconv.Itoa(p.OnNewRoot)
	}
	if err := operator.Record(ctx, ledger, e); err != nil {
		return fmt.Errorf("recording the root CA rotation outcome in the ledger: %w", err)
	}
	return nil
}
