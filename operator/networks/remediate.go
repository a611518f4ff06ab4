package networks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/crashpoint"
	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// RemediateEngine is what the network remediation reads and changes. *swarm.Client satisfies it.
type RemediateEngine interface {
	Networks(ctx context.Context) ([]swarm.Network, error)
	Services(ctx context.Context) ([]swarm.Service, error)
	swarm.RolloutEngine // the rollout of each update: the service's update status and its tasks
	CreateNetwork(ctx context.Context, spec swarm.NetworkSpec) (swarm.Network, error)
	RemoveNetwork(ctx context.Context, id string) error
	AttachNetwork(ctx context.Context, service, networkID string, aliases []string) (bool, error)
	DetachNetwork(ctx context.Context, service string, net swarm.Network) (bool, error)
}

var _ RemediateEngine = (*swarm.Client)(nil)

// TwinSuffix names the encrypted twin of a network: <name>-enc.
const TwinSuffix = "-enc"

// PlanService is one service the remediation moves.
type PlanService struct {
	ID      string
	Name    string
	Aliases []string
}

// NetworkPlan is what `swarmguard remediate network NAME` would do.
type NetworkPlan struct {
	Network  swarm.Network
	TwinName string
	// Twin is set when the twin already exists (a retry of an interrupted run resumes with it).
	Twin     *swarm.Network
	Subnet   string // "" means a fresh subnet from the swarm's default address pool
	Services []PlanService
	// Refused says why the network must not be remediated by swarmguard; Advice is what to do instead.
	Refused string
	Advice  string
	// Nothing is set when there is nothing to do (the network is already encrypted).
	Nothing string
}

// PlanNetworkRemediation decides how to move a network's services to an encrypted twin. It is a pure
// function of what was read.
func PlanNetworkRemediation(name string, nets []swarm.Network, services []swarm.Service, c config.NetworksConfig) (NetworkPlan, error) {
	var matches []swarm.Network
	for _, n := range nets {
		if n.Name == name || n.ID == name {
			matches = append(matches, n)
		}
	}
	switch len(matches) {
	case 0:
		return NetworkPlan{}, fmt.Errorf("no swarm overlay network named %q (see `docker network ls --filter driver=overlay`): %w", name, swarm.ErrNotFound)
	case 1:
	default:
		ids := make([]string, 0, len(matches))
		for _, m := range matches {
			ids = append(ids, m.ID)
		}
		return NetworkPlan{}, fmt.Errorf("network name %q is ambiguous (ids %s): name it by ID", name, strings.Join(ids, ", "))
	}
	n := matches[0]
	p := NetworkPlan{Network: n, TwinName: n.Name + TwinSuffix, Subnet: c.RemediateSubnet}
	for _, s := range services {
		if a, ok := s.Attachment(n); ok {
			p.Services = append(p.Services, PlanService{ID: s.ID, Name: s.Name, Aliases: a.Aliases})
		}
	}
	switch {
	case n.Encrypted:
		p.Nothing = fmt.Sprintf("network %s is already encrypted: nothing to do", n.Name)
		return p, nil
	case n.Ingress || n.Name == "ingress":
		p.Refused = "the ingress network carries the routing mesh of every published port; it cannot be moved service by service"
		p.Advice = ingressProcedure(n)
		return p, nil
	case n.Labels[swarm.LabelStackNamespace] != "":
		ns := n.Labels[swarm.LabelStackNamespace]
		p.Refused = fmt.Sprintf("network %s belongs to stack %q: the next `docker stack deploy` would bring the unencrypted network back", n.Name, ns)
		p.Advice = stackProcedure(n, ns)
		return p, nil
	}
	for _, x := range nets {
		if x.Name != p.TwinName {
			continue
		}
		if x.Labels[swarm.LabelTwinOf] != n.Name || !x.Encrypted {
			p.Refused = fmt.Sprintf("a network named %s already exists and is not swarmguard's encrypted twin of %s (label %s=%q, encrypted=%v)",
				x.Name, n.Name, swarm.LabelTwinOf, x.Labels[swarm.LabelTwinOf], x.Encrypted)
			p.Advice = "rename or remove that network, then run this again"
			return p, nil
		}
		twin := x
		p.Twin = &twin
	}
	for _, s := range services {
		if ns := s.StackNamespace(); ns != "" && s.OnNetwork(n) {
			p.Refused = fmt.Sprintf("service %s on network %s belongs to stack %q: the next `docker stack deploy` would put it back", s.Name, n.Name, ns)
			p.Advice = "declare the network in the stack's compose file as external (the encrypted twin " + p.TwinName + ") instead, and redeploy the stack"
			return p, nil
		}
	}
	return p, nil
}

func ingressProcedure(n swarm.Network) string {
	subnet := "<subnet>"
	if len(n.Subnets) > 0 {
		subnet = n.Subnets[0]
	}
	return strings.Join([]string{
		"Encrypting the ingress network (Docker's documented procedure; plan a maintenance window: published ports stop answering through the routing mesh meanwhile):",
		"  1. list the services publishing ports in ingress mode: docker service ls --format '{{.Name}} {{.Ports}}'",
		"  2. remove their published ports (docker service update --publish-rm ...) or remove the services",
		"  3. docker network rm ingress",
		"  4. docker network create --driver overlay --ingress --opt encrypted --subnet " + subnet + " ingress",
		"  5. publish the ports again (docker service update --publish-add ...) or redeploy the services",
		"Or exempt it with a reason: networks.exempt: [ingress] in the configuration.",
	}, "\n")
}

func stackProcedure(n swarm.Network, ns string) string {
	key := strings.TrimPrefix(n.Name, ns+"_")
	return strings.Join([]string{
		"Change the stack's compose file and redeploy (docker stack deploy cannot change an existing network's options, so give it a new key):",
		"  networks:",
		"    " + key + "_enc:          # was: " + key,
		"      driver: overlay",
		"      driver_opts:",
		"        encrypted: \"\"",
		"  and in each service, replace `" + key + "` by `" + key + "_enc` under networks: (keep the aliases).",
		"Then: docker stack deploy -c <compose file> " + ns + "   and, once no task uses it: docker network rm " + n.Name,
	}, "\n")
}

// Render prints the plan for a person.
func (p NetworkPlan) Render(w io.Writer) {
	n := p.Network
	fmt.Fprintf(w, "network %s (id %s): encrypted=%v attachable=%v subnets=%s\n", n.Name, n.ID, n.Encrypted, n.Attachable, report.ListOrNone(n.Subnets))
	switch {
	case p.Nothing != "":
		fmt.Fprintln(w, p.Nothing)
		return
	case p.Refused != "":
		fmt.Fprintf(w, "refused: %s\n%s\n", p.Refused, p.Advice)
		return
	}
	subnet := "a fresh subnet from the swarm's default address pool"
	if p.Subnet != "" {
		subnet = "subnet " + p.Subnet + " (networks.remediate_subnet)"
	}
	fmt.Fprintln(w, "plan:")
	if p.Twin != nil {
		fmt.Fprintf(w, "  1. reuse the encrypted twin %s (id %s) left by an earlier run\n", p.TwinName, p.Twin.ID)
	} else {
		fmt.Fprintf(w, "  1. create overlay network %s with --opt encrypted, attachable=%v, %s\n", p.TwinName, n.Attachable, subnet)
	}
	fmt.Fprintf(w, "  2. attach %s to each service on %s, keeping its aliases, and wait until every task runs on it:\n", p.TwinName, n.Name)
	if len(p.Services) == 0 {
		fmt.Fprintln(w, "       (no service uses the network)")
	}
	for _, s := range p.Services {
		fmt.Fprintf(w, "       - %s (aliases: %s)\n", s.Name, report.ListOrNone(s.Aliases))
	}
	fmt.Fprintf(w, "  3. detach %s from each of them and wait until their tasks have left it\n", n.Name)
	fmt.Fprintf(w, "  4. remove %s once nothing uses it (standalone containers on an attachable network keep it in place)\n", n.Name)
	fmt.Fprintln(w, "  if a step fails, the steps already done are undone in reverse order")
	fmt.Fprintln(w, "  note: services that reach this network's services by network name must use "+p.TwinName+" after this")
}

// RemediateOptions tune ApplyNetworkRemediation.
type RemediateOptions struct {
	// Converge bounds the wait for a service's tasks to move after each update.
	Converge time.Duration
	// RemoveWait bounds the wait for the old network to be free of tasks before removing it.
	RemoveWait time.Duration
	// Poll is how often the wait re-reads the tasks.
	Poll time.Duration
	Log  *slog.Logger
	// Progress, when not nil, is told each step as it is done (the CLI prints it); the apply prints nothing.
	Progress func(RemediateEvent)
	// Guard is the lease's guard over the action (TaskEnv.Guard): checked before each mutating step, undo
	// steps included; it bounds the undo, which runs on a context of its own (the caller's may be what was
	// cancelled), to the hold of the lease.
	Guard operator.Guard
}

// RemediateEvent is one step ApplyNetworkRemediation has done (or an undo it is about to do).
type RemediateEvent struct {
	// Step is one of the RemediateStep* constants.
	Step string
	// Network is the network the step made, changed or removed: the twin, or the old network.
	Network swarm.Network
	// Service and Aliases name the service attached or detached.
	Service string
	Aliases []string
	// What is an undo step's description (StepUndo), or what is left to undo (StepNotUndone); Err says why
	// (StepNotUndone, StepLeftOld).
	What string
	Err  error
}

// The steps of a RemediateEvent.
const (
	StepReusedTwin  = "reused-twin"
	StepCreatedTwin = "created-twin"
	StepAttached    = "attached"
	StepDetached    = "detached"
	StepRemovedOld  = "removed-old"
	StepLeftOld     = "left-old"
	StepUndo        = "undo"
	StepNotUndone   = "not-undone"
)

// Remediation defaults: a rollout of a small service takes seconds (LAB.md: 7 to 25 s); a minute per
// service leaves room for image-less restarts without hanging a person's terminal forever.
const (
	DefaultRemediateConverge   = 2 * time.Minute
	DefaultRemediateRemoveWait = time.Minute
	remediatePoll              = 500 * time.Millisecond
)

// RemediateResult is what an apply did.
type RemediateResult struct {
	Twin          swarm.Network
	CreatedTwin   bool
	Moved         []string
	RemovedOld    bool
	LeftOldReason string
	UndoErrors    []error
	// LeftToUndo are the undo steps not done because the lease no longer held (another actor may be acting
	// now): what a person must undo by hand, in order.
	LeftToUndo []string
}

// LedgerDetails are the result's ledger entry details.
func (r RemediateResult) LedgerDetails(p NetworkPlan) map[string]string {
	d := map[string]string{
		"network": p.Network.Name, "network_id": p.Network.ID, "twin": p.TwinName,
		"services": strings.Join(r.Moved, ","), "removed_old": strconv.FormatBool(r.RemovedOld),
	}
	if r.Twin.ID != "" {
		d["twin_id"] = r.Twin.ID
	}
	if r.LeftOldReason != "" {
		d["left_old"] = r.LeftOldReason
	}
	if len(r.LeftToUndo) > 0 {
		d["left_to_undo"] = strings.Join(r.LeftToUndo, "; ")
	}
	return d
}

type undoStep struct {
	what string
	do   func(ctx context.Context) error
}

// ApplyNetworkRemediation carries out a plan (and nothing else; it prints nothing, it tells each step to
// o.Progress): create the encrypted twin, attach it to every service (and
// wait until their tasks run on it), then detach the old network (and wait), then remove the old network
// when nothing uses it. A failure before the old network is detached everywhere undoes the steps done, in
// reverse order, so no service is left split across networks.
func ApplyNetworkRemediation(ctx context.Context, eng RemediateEngine, p NetworkPlan, o RemediateOptions) (RemediateResult, error) {
	var res RemediateResult
	if p.Nothing != "" {
		return res, nil
	}
	if p.Refused != "" {
		return res, fmt.Errorf("remediating network %s refused: %s", p.Network.Name, p.Refused)
	}
	if o.Converge <= 0 {
		o.Converge = DefaultRemediateConverge
	}
	if o.RemoveWait <= 0 {
		o.RemoveWait = DefaultRemediateRemoveWait
	}
	if o.Poll <= 0 {
		o.Poll = remediatePoll
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	tell := func(ev RemediateEvent) {
		if o.Progress != nil {
			o.Progress(ev)
		}
	}
	env := operator.TaskEnv{Guard: o.Guard}
	holder := env.CheckHolder
	var undo []undoStep
	fail := func(err error) (RemediateResult, error) {
		// Undo with a context of its own (the caller's may be what was cancelled), but only while the lease
		// holds: once it is lost another actor may be acting, and an undo then would be a second actor.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), o.Converge+o.RemoveWait)
		defer cancel()
		uctx, fcancel := env.Fence(uctx)
		defer fcancel()
		for i := len(undo) - 1; i >= 0; i-- {
			herr := holder(uctx)
			if herr == nil {
				crashpoint.At("network.undo")
				tell(RemediateEvent{Step: StepUndo, What: undo[i].what})
				uerr := undo[i].do(uctx)
				if uerr == nil {
					continue
				}
				if uctx.Err() == nil {
					o.Log.Error("undo step failed", "step", undo[i].what, "err", uerr)
					res.UndoErrors = append(res.UndoErrors, fmt.Errorf("%s: %w", undo[i].what, uerr))
					continue
				}
				herr = fmt.Errorf("the hold ended during it: %w", uerr)
			}
			for j := i; j >= 0; j-- {
				res.LeftToUndo = append(res.LeftToUndo, undo[j].what)
			}
			left := strings.Join(res.LeftToUndo, "; ")
			tell(RemediateEvent{Step: StepNotUndone, What: left, Err: herr})
			o.Log.Error("remediation not undone: the lease no longer holds", "network", p.Network.Name, "left_to_undo", left, "err", herr)
			return res, fmt.Errorf("%w; not undone, the lease no longer holds (%w): left to undo by hand, in order: %s", err, herr, left)
		}
		if len(res.UndoErrors) > 0 {
			return res, fmt.Errorf("%w; undoing also failed (fix by hand): %w", err, errors.Join(res.UndoErrors...))
		}
		return res, fmt.Errorf("%w (the steps done were undone)", err)
	}

	// 1. the twin
	if err := holder(ctx); err != nil {
		return res, err
	}
	if p.Twin != nil {
		res.Twin = *p.Twin
		tell(RemediateEvent{Step: StepReusedTwin, Network: res.Twin})
	} else {
		labels := maps.Clone(p.Network.Labels)
		if labels == nil {
			labels = map[string]string{}
		}
		delete(labels, swarm.LabelEncryption)
		delete(labels, swarm.LabelEncryptionReason)
		labels[swarm.LabelTwinOf] = p.Network.Name
		opts := maps.Clone(p.Network.Options)
		delete(opts, "com.docker.network.driver.overlay.vxlanid_list") // the managers allocate the twin's own VNI
		twin, err := eng.CreateNetwork(ctx, swarm.NetworkSpec{Name: p.TwinName, Encrypted: true, Attachable: p.Network.Attachable,
			Internal: p.Network.Internal, EnableIPv6: p.Network.EnableIPv6, Subnet: p.Subnet, Options: opts, Labels: labels})
		if err != nil {
			return res, fmt.Errorf("creating the encrypted twin %s: %w", p.TwinName, err)
		}
		res.Twin, res.CreatedTwin = twin, true
		crashpoint.At("network.after-create-twin")
		tell(RemediateEvent{Step: StepCreatedTwin, Network: twin})
		o.Log.Info("created encrypted twin network", "network", p.Network.Name, "twin", twin.Name, "twin_id", twin.ID)
		undo = append(undo, undoStep{what: "remove network " + twin.Name, do: func(ctx context.Context) error {
			return removeWhenFree(ctx, eng, twin.ID, o.RemoveWait, o.Poll)
		}})
	}
	twinID := res.Twin.ID

	// 2. attach the twin everywhere first, so the application is never split across networks
	before := map[string]swarm.ServiceSecrets{} // each service as read right before its update was written
	for _, s := range p.Services {
		if err := holder(ctx); err != nil {
			return fail(err)
		}
		b, err := eng.ServiceSecrets(ctx, s.ID)
		if err != nil {
			return fail(fmt.Errorf("inspecting service %s before attaching %s: %w", s.Name, res.Twin.Name, err))
		}
		changed, err := eng.AttachNetwork(ctx, s.ID, twinID, s.Aliases)
		if err != nil {
			return fail(fmt.Errorf("attaching %s to service %s: %w", res.Twin.Name, s.Name, err))
		}
		before[s.ID] = updateBefore(b, changed)
		crashpoint.At("network.after-attach")
		tell(RemediateEvent{Step: StepAttached, Network: res.Twin, Service: s.Name, Aliases: s.Aliases})
		if changed {
			svc := s
			undo = append(undo, undoStep{what: "detach " + res.Twin.Name + " from service " + s.Name, do: func(ctx context.Context) error {
				_, err := eng.DetachNetwork(ctx, svc.ID, res.Twin)
				return err
			}})
		}
	}
	for _, s := range p.Services {
		if err := waitTasks(ctx, eng, s, before[s.ID], o, func(nets []string) bool { return slices.Contains(nets, twinID) }); err != nil {
			return fail(fmt.Errorf("service %s did not come up on %s: %w", s.Name, res.Twin.Name, err))
		}
	}

	// 3. detach the old network
	for _, s := range p.Services {
		if err := holder(ctx); err != nil {
			return fail(err)
		}
		b, err := eng.ServiceSecrets(ctx, s.ID)
		if err != nil {
			return fail(fmt.Errorf("inspecting service %s before detaching %s: %w", s.Name, p.Network.Name, err))
		}
		changed, err := eng.DetachNetwork(ctx, s.ID, p.Network)
		if err != nil {
			return fail(fmt.Errorf("detaching %s from service %s: %w", p.Network.Name, s.Name, err))
		}
		before[s.ID] = updateBefore(b, changed)
		crashpoint.At("network.after-detach")
		tell(RemediateEvent{Step: StepDetached, Network: p.Network, Service: s.Name})
		if changed {
			svc := s
			undo = append(undo, undoStep{what: "attach " + p.Network.Name + " to service " + s.Name + " again", do: func(ctx context.Context) error {
				_, err := eng.AttachNetwork(ctx, svc.ID, p.Network.ID, svc.Aliases)
				return err
			}})
		}
	}
	for _, s := range p.Services {
		if err := waitTasks(ctx, eng, s, before[s.ID], o, func(nets []string) bool {
			return slices.Contains(nets, twinID) && !slices.Contains(nets, p.Network.ID)
		}); err != nil {
			return fail(fmt.Errorf("service %s did not leave %s: %w", s.Name, p.Network.Name, err))
		}
		res.Moved = append(res.Moved, s.Name)
	}

	// 4. the services are moved; the old network goes when nothing uses it (no undo past this point)
	crashpoint.At("network.before-remove-old")
	if err := holder(ctx); err != nil {
		res.LeftOldReason = "lease lost before removal: " + err.Error()
		return res, nil
	}
	err := removeWhenFree(ctx, eng, p.Network.ID, o.RemoveWait, o.Poll)
	switch {
	case err == nil:
		res.RemovedOld = true
		tell(RemediateEvent{Step: StepRemovedOld, Network: p.Network})
		o.Log.Info("removed unencrypted network", "network", p.Network.Name, "network_id", p.Network.ID)
	default:
		res.LeftOldReason = err.Error()
		tell(RemediateEvent{Step: StepLeftOld, Network: p.Network, Err: err})
		o.Log.Warn("unencrypted network left in place", "network", p.Network.Name, "err", err)
	}
	return res, nil
}

// updateBefore is what the rollout of a network change compares the service with: the service as read
// before the write, or, when the write changed nothing (a run after a kill finds the change made), no update
// status at all, so that whatever update the engine reports (the earlier run's) is the one followed.
func updateBefore(b swarm.ServiceSecrets, changed bool) swarm.ServiceSecrets {
	if !changed {
		return swarm.ServiceSecrets{ID: b.ID, Name: b.Name, Version: b.Version, Replicas: b.Replicas}
	}
	return b
}

// waitTasks follows the service's update with the one rollout (swarm.Rollout): it has converged when the
// update completed, or, with no update status, when every task the service wants running (as many as its
// replicas) runs with networks that satisfy ok; a paused or rolled back update, or none of these within
// o.Converge, is its error.
func waitTasks(ctx context.Context, eng RemediateEngine, s PlanService, before swarm.ServiceSecrets, o RemediateOptions, ok func([]string) bool) error {
	r := swarm.Rollout{Engine: eng, Log: o.Log, PollInterval: o.Poll, Timeout: o.Converge,
		Next: "the network remediation undoes the steps done"}
	return r.Wait(ctx, s.ID, s.Name, before, func(tasks []swarm.TaskSecrets) bool {
		n := 0
		for _, t := range tasks {
			if t.DesiredState == "running" || t.DesiredState == "ready" {
				n++
			}
		}
		if before.Replicas != nil && uint64(n) < *before.Replicas {
			return false
		}
		return swarm.TasksRunning(tasks, func(t swarm.TaskSecrets) bool { return ok(t.NetworkIDs) })
	})
}

// removeWhenFree removes a network, retrying while tasks still use it (a task's endpoint goes shortly after
// the task stops). A network already gone counts as removed.
func removeWhenFree(ctx context.Context, eng RemediateEngine, id string, wait, poll time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		err := eng.RemoveNetwork(ctx, id)
		if err == nil || errors.Is(err, swarm.ErrNotFound) {
			return nil
		}
		if !errors.Is(err, swarm.ErrInUse) && !errors.Is(err, swarm.ErrAlreadyExists) {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still in use after %s: %w", wait, err)
		}
		t := time.NewTimer(poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
