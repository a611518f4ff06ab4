package networks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// fakeNetEngine records the remediation's calls and moves tasks at once (each update converges immediately).
type fakeNetEngine struct {
	nets     map[string]swarm.Network  // by ID
	services map[string]*swarm.Service // by ID
	calls    []string
	// failAttach makes AttachNetwork fail for this service ID; failDetach likewise.
	failAttach, failDetach string
	// inUseRemovals makes RemoveNetwork answer ErrInUse this many times first.
	inUseRemovals int
	// monitor, when set, makes every attach or detach start an update that stays "updating" (its monitor
	// period, the tasks already on the new networks) for this many inspections, then completes; a negative
	// one never completes.
	monitor int
	updates map[string]*fakeUpdate // by service ID, the newest
	all     []*fakeUpdate
}

type fakeUpdate struct {
	started time.Time
	polls   int
}

// updated starts the update a change of the service's spec makes, when the fake has a monitor period.
func (f *fakeNetEngine) updated(svc string) {
	if f.monitor == 0 {
		return
	}
	if f.updates == nil {
		f.updates = map[string]*fakeUpdate{}
	}
	f.updates[svc] = &fakeUpdate{started: time.Unix(int64(1000+len(f.calls)), 0)}
	f.all = append(f.all, f.updates[svc])
}

func newFakeNetEngine() *fakeNetEngine {
	f := &fakeNetEngine{nets: map[string]swarm.Network{}, services: map[string]*swarm.Service{}}
	f.nets["old-id"] = swarm.Network{ID: "old-id", Name: "backend", Driver: "overlay", Scope: "swarm", Attachable: true,
		Options: map[string]string{"com.docker.network.driver.overlay.vxlanid_list": "4097"}, Labels: map[string]string{"team": "payments"}}
	f.services["s1"] = &swarm.Service{ID: "s1", Name: "api", Networks: []swarm.NetworkAttachment{{Target: "old-id", Aliases: []string{"api", "api.internal"}}}}
	f.services["s2"] = &swarm.Service{ID: "s2", Name: "worker", Networks: []swarm.NetworkAttachment{{Target: "old-id"}, {Target: "other-id"}}}
	f.services["s3"] = &swarm.Service{ID: "s3", Name: "unrelated", Networks: []swarm.NetworkAttachment{{Target: "other-id"}}}
	return f
}

func (f *fakeNetEngine) Networks(context.Context) ([]swarm.Network, error) {
	var out []swarm.Network
	for _, n := range f.nets {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b swarm.Network) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (f *fakeNetEngine) Services(context.Context) ([]swarm.Service, error) {
	var out []swarm.Service
	for _, id := range []string{"s1", "s2", "s3"} {
		if s, ok := f.services[id]; ok {
			out = append(out, *s)
		}
	}
	return out, nil
}

func (f *fakeNetEngine) ServiceSecrets(_ context.Context, id string) (swarm.ServiceSecrets, error) {
	s, ok := f.services[id]
	if !ok {
		return swarm.ServiceSecrets{}, swarm.ErrNotFound
	}
	out := swarm.ServiceSecrets{ID: s.ID, Name: s.Name, Version: s.Version, Labels: s.Labels, Replicas: s.Replicas}
	if u := f.updates[id]; u != nil {
		out.UpdateState, out.UpdateStartedAt = swarm.UpdateUpdating, u.started
		if u.polls++; f.monitor > 0 && u.polls > f.monitor {
			out.UpdateState = swarm.UpdateCompleted
		}
	}
	return out, nil
}

func (f *fakeNetEngine) TasksSecrets(_ context.Context, id string) ([]swarm.TaskSecrets, error) {
	s := f.services[id]
	var nets []string
	for _, a := range s.Networks {
		nets = append(nets, a.Target)
	}
	return []swarm.TaskSecrets{{ID: id + ".1", ServiceID: id, State: "running", DesiredState: "running", NetworkIDs: nets}}, nil
}

func (f *fakeNetEngine) CreateNetwork(_ context.Context, spec swarm.NetworkSpec) (swarm.Network, error) {
	f.calls = append(f.calls, "create "+spec.Name)
	if _, ok := spec.Options["com.docker.network.driver.overlay.vxlanid_list"]; ok {
		return swarm.Network{}, errors.New("the twin must not copy the VXLAN ID")
	}
	n := swarm.Network{ID: "twin-id", Name: spec.Name, Encrypted: spec.Encrypted, Attachable: spec.Attachable, Labels: spec.Labels}
	f.nets[n.ID] = n
	return n, nil
}

func (f *fakeNetEngine) RemoveNetwork(_ context.Context, id string) error {
	f.calls = append(f.calls, "remove "+f.nets[id].Name)
	if f.inUseRemovals > 0 {
		f.inUseRemovals--
		return fmt.Errorf("removing: %w", swarm.ErrInUse)
	}
	delete(f.nets, id)
	return nil
}

func (f *fakeNetEngine) AttachNetwork(_ context.Context, svc, netID string, aliases []string) (bool, error) {
	s := f.services[svc]
	f.calls = append(f.calls, fmt.Sprintf("attach %s to %s %v", f.nets[netID].Name, s.Name, aliases))
	if svc == f.failAttach {
		return false, errors.New("engine said no")
	}
	for _, a := range s.Networks {
		if a.Target == netID {
			return false, nil
		}
	}
	s.Networks = append(s.Networks, swarm.NetworkAttachment{Target: netID, Aliases: aliases})
	f.updated(svc)
	return true, nil
}

func (f *fakeNetEngine) DetachNetwork(_ context.Context, svc string, n swarm.Network) (bool, error) {
	s := f.services[svc]
	f.calls = append(f.calls, "detach "+n.Name+" from "+s.Name)
	if svc == f.failDetach && n.ID == "old-id" {
		return false, errors.New("engine said no")
	}
	before := len(s.Networks)
	s.Networks = slices.DeleteFunc(s.Networks, func(a swarm.NetworkAttachment) bool { return a.Target == n.ID })
	if len(s.Networks) != before {
		f.updated(svc)
	}
	return len(s.Networks) != before, nil
}

func planFor(t *testing.T, f *fakeNetEngine, name string, c config.NetworksConfig) NetworkPlan {
	t.Helper()
	nets, _ := f.Networks(t.Context())
	svcs, _ := f.Services(t.Context())
	p, err := PlanNetworkRemediation(name, nets, svcs, c)
	if err != nil {
		t.Fatalf("PlanNetworkRemediation(%s) = %v", name, err)
	}
	return p
}

var fastOpts = RemediateOptions{Converge: time.Second, RemoveWait: time.Second, Poll: time.Millisecond}

func TestRemediateApply(t *testing.T) {
	f := newFakeNetEngine()
	p := planFor(t, f, "backend", config.NetworksConfig{})
	if len(p.Services) != 2 || p.Refused != "" || p.TwinName != "backend-enc" {
		t.Fatalf("plan = %+v", p)
	}
	f.inUseRemovals = 2 // the old network is busy while the last tasks stop
	res, err := ApplyNetworkRemediation(t.Context(), f, p, fastOpts)
	if err != nil {
		t.Fatalf("ApplyNetworkRemediation = %v", err)
	}
	want := []string{
		"create backend-enc",
		"attach backend-enc to api [api api.internal]",
		"attach backend-enc to worker []",
		"detach backend from api",
		"detach backend from worker",
		"remove backend", "remove backend", "remove backend",
	}
	if !slices.Equal(f.calls, want) {
		t.Errorf("calls =\n%s\nwant\n%s", strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
	}
	if !res.RemovedOld || !res.CreatedTwin || len(res.Moved) != 2 {
		t.Errorf("result = %+v", res)
	}
	api := f.services["s1"]
	if len(api.Networks) != 1 || api.Networks[0].Target != "twin-id" || !slices.Equal(api.Networks[0].Aliases, []string{"api", "api.internal"}) {
		t.Errorf("api networks = %+v; want only the twin, aliases kept", api.Networks)
	}
	if tw := f.nets["twin-id"]; !tw.Encrypted || !tw.Attachable || tw.Labels[swarm.LabelTwinOf] != "backend" || tw.Labels["team"] != "payments" {
		t.Errorf("twin = %+v", tw)
	}
	if d := res.LedgerDetails(p); d["twin_id"] != "twin-id" || d["services"] != "api,worker" {
		t.Errorf("ledger details = %v", d)
	}
}

// TestRemediateWaitsForTheUpdateToComplete: while a service's update is in its monitor period (updating, its
// tasks already on the new networks) it has not converged: the remediation goes on only once the update
// completed, and an update that never completes is a failure whose steps are undone.
func TestRemediateWaitsForTheUpdateToComplete(t *testing.T) {
	f := newFakeNetEngine()
	f.monitor = 3
	p := planFor(t, f, "backend", config.NetworksConfig{})
	if _, err := ApplyNetworkRemediation(t.Context(), f, p, fastOpts); err != nil {
		t.Fatalf("ApplyNetworkRemediation with a 3-poll monitor period = %v", err)
	}
	// two services, two updates each (attach, detach), each inspected through 3 polls of "updating" and
	// the one that says completed
	if len(f.all) != 4 {
		t.Fatalf("updates = %d; want 4", len(f.all))
	}
	for i, u := range f.all {
		if u.polls < 3+1 {
			t.Errorf("update %d was inspected %d times; want at least 4: converged before it completed", i, u.polls)
		}
	}

	f = newFakeNetEngine()
	f.monitor = -1 // never completes
	p = planFor(t, f, "backend", config.NetworksConfig{})
	o := fastOpts
	o.Converge = 50 * time.Millisecond
	_, err := ApplyNetworkRemediation(t.Context(), f, p, o)
	var re *swarm.RolloutError
	if !errors.As(err, &re) || re.State != "timeout" || !strings.Contains(err.Error(), "undone") {
		t.Fatalf("ApplyNetworkRemediation with an update that stays in its monitor period = %v; want a rollout timeout, undone", err)
	}
	if _, ok := f.nets["twin-id"]; ok {
		t.Errorf("the twin network was not removed by the undo")
	}
}

func TestRemediateUndoesOnFailure(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failAttach string
		failDetach string
	}{
		{"second attach fails", "s2", ""},
		{"second detach fails", "", "s2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNetEngine()
			f.failAttach, f.failDetach = tc.failAttach, tc.failDetach
			p := planFor(t, f, "backend", config.NetworksConfig{})
			var undos []string
			o := fastOpts
			o.Progress = func(ev RemediateEvent) {
				if ev.Step == StepUndo {
					undos = append(undos, ev.What)
				}
			}
			_, err := ApplyNetworkRemediation(t.Context(), f, p, o)
			if err == nil || !strings.Contains(err.Error(), "undone") {
				t.Fatalf("ApplyNetworkRemediation = %v; want an error saying the steps were undone", err)
			}
			// The undo is told to the caller step by step, the twin's removal last.
			if len(undos) == 0 || undos[len(undos)-1] != "remove network backend"+TwinSuffix {
				t.Errorf("undo steps told = %q; want them ending with the twin's removal", undos)
			}
			// every service is back on the old network only, and the twin is gone
			for _, id := range []string{"s1", "s2"} {
				s := f.services[id]
				var targets []string
				for _, a := range s.Networks {
					targets = append(targets, a.Target)
				}
				if !slices.Contains(targets, "old-id") || slices.Contains(targets, "twin-id") {
					t.Errorf("after undo %s is on %v; want old-id and not twin-id", s.Name, targets)
				}
			}
			if a := f.services["s1"].Networks; a[len(a)-1].Target == "old-id" && !slices.Equal(a[len(a)-1].Aliases, []string{"api", "api.internal"}) {
				t.Errorf("api's aliases were not restored: %+v", a)
			}
			if _, ok := f.nets["twin-id"]; ok {
				t.Errorf("the twin network was not removed by the undo")
			}
			if _, ok := f.nets["old-id"]; !ok {
				t.Errorf("the old network was removed although the remediation failed")
			}
		})
	}
}

func TestRemediatePlanRefusals(t *testing.T) {
	base := []swarm.Network{
		{ID: "i", Name: "ingress", Ingress: true, Subnets: []string{"10.0.0.0/24"}},
		{ID: "s", Name: "shop_backend", Labels: map[string]string{swarm.LabelStackNamespace: "shop"}},
		{ID: "e", Name: "secure", Encrypted: true},
		{ID: "c", Name: "clash"},
		{ID: "c2", Name: "clash-enc"},
		{ID: "r", Name: "resume"},
		{ID: "r2", Name: "resume-enc", Encrypted: true, Labels: map[string]string{swarm.LabelTwinOf: "resume"}},
		{ID: "p", Name: "plain"},
	}
	svcs := []swarm.Service{{ID: "x", Name: "shop_web", Labels: map[string]string{swarm.LabelStackNamespace: "shop"}, Networks: []swarm.NetworkAttachment{{Target: "p"}}}}
	for _, tc := range []struct {
		name, net, refused, nothing, advice string
		resume                              bool
	}{
		{name: "ingress", net: "ingress", refused: "routing mesh", advice: "--ingress --opt encrypted --subnet 10.0.0.0/24"},
		{name: "stack network", net: "shop_backend", refused: `stack "shop"`, advice: "backend_enc:"},
		{name: "already encrypted", net: "secure", nothing: "already encrypted"},
		{name: "twin name taken", net: "clash", refused: "not swarmguard's encrypted twin"},
		{name: "resume with existing twin", net: "resume", resume: true},
		{name: "stack service on plain network", net: "plain", refused: "service shop_web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := PlanNetworkRemediation(tc.net, base, svcs, config.NetworksConfig{})
			if err != nil {
				t.Fatal(err)
			}
			if tc.refused != "" && !strings.Contains(p.Refused, tc.refused) {
				t.Errorf("Refused = %q; want it to mention %q", p.Refused, tc.refused)
			}
			if tc.refused == "" && p.Refused != "" {
				t.Errorf("Refused = %q; want none", p.Refused)
			}
			if tc.advice != "" && !strings.Contains(p.Advice, tc.advice) {
				t.Errorf("Advice = %q; want it to mention %q", p.Advice, tc.advice)
			}
			if tc.nothing != "" && !strings.Contains(p.Nothing, tc.nothing) {
				t.Errorf("Nothing = %q; want %q", p.Nothing, tc.nothing)
			}
			if tc.resume && (p.Twin == nil || p.Twin.ID != "r2") {
				t.Errorf("Twin = %+v; want the existing twin r2", p.Twin)
			}
		})
	}
	if _, err := PlanNetworkRemediation("nope", base, nil, config.NetworksConfig{}); !errors.Is(err, swarm.ErrNotFound) {
		t.Errorf("PlanNetworkRemediation(missing) = %v; want ErrNotFound", err)
	}
}

// TestRemediateUndoOnlyUnderTheLease: the lease is lost when a step fails (or during the undo): nothing more
// is undone, and the result and its ledger details say what is left to undo, in order.
func TestRemediateUndoOnlyUnderTheLease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		holdChecks int // Guard checks that succeed; later ones fail
		wantLeft   []string
		wantCalls  int // engine calls after the failing detach
	}{
		{"lost before the undo", 5, []string{"attach backend to service api again", "detach backend-enc from service worker", "detach backend-enc from service api", "remove network backend-enc"}, 0},
		{"lost after the first undo step", 6, []string{"detach backend-enc from service worker", "detach backend-enc from service api", "remove network backend-enc"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeNetEngine()
			f.failDetach = "s2"
			p := planFor(t, f, "backend", config.NetworksConfig{})
			checks := 0
			o := fastOpts
			o.Guard = operator.CheckOnly(func(context.Context) error {
				checks++
				if checks > tc.holdChecks {
					return errors.New("lease lost")
				}
				return nil
			})
			var notUndone []string
			o.Progress = func(ev RemediateEvent) {
				if ev.Step == StepNotUndone {
					notUndone = append(notUndone, ev.What)
				}
			}
			res, err := ApplyNetworkRemediation(t.Context(), f, p, o)
			if err == nil || !strings.Contains(err.Error(), "left to undo by hand") || strings.Contains(err.Error(), "were undone") {
				t.Fatalf("ApplyNetworkRemediation = %v; want an error saying what is left to undo", err)
			}
			if !slices.Equal(res.LeftToUndo, tc.wantLeft) {
				t.Errorf("LeftToUndo =\n%s\nwant\n%s", strings.Join(res.LeftToUndo, "\n"), strings.Join(tc.wantLeft, "\n"))
			}
			if got := res.LedgerDetails(p)["left_to_undo"]; got != strings.Join(tc.wantLeft, "; ") {
				t.Errorf("ledger left_to_undo = %q", got)
			}
			if want := []string{strings.Join(tc.wantLeft, "; ")}; !slices.Equal(notUndone, want) {
				t.Errorf("told the caller left to undo %q; want %q", notUndone, want)
			}
			i := slices.Index(f.calls, "detach backend from worker")
			if i < 0 || len(f.calls)-i-1 != tc.wantCalls {
				t.Errorf("engine calls after the failed detach = %v; want %d (undo steps done before the lease was lost)", f.calls[i+1:], tc.wantCalls)
			}
		})
	}
}

// TestRemediateApplyDoesOnlyThePlan: ApplyNetworkRemediation acts on the plan value it is given: its engine
// writes are the plan's steps for the plan's services, in order (twin, attach each, detach each, remove),
// and a plan naming fewer services touches only those, although the swarm it was read from has more. Each
// write is told to the caller, who prints it; the apply prints nothing.
func TestRemediateApplyDoesOnlyThePlan(t *testing.T) {
	for _, keep := range []int{2, 1} {
		f := newFakeNetEngine()
		p := planFor(t, f, "backend", config.NetworksConfig{})
		if len(p.Services) != 2 {
			t.Fatalf("plan services = %+v; want api and worker", p.Services)
		}
		p.Services = p.Services[:keep]
		var told []string
		o := fastOpts
		o.Progress = func(ev RemediateEvent) { told = append(told, ev.Step+" "+ev.Service) }
		if _, err := ApplyNetworkRemediation(t.Context(), f, p, o); err != nil {
			t.Fatalf("ApplyNetworkRemediation = %v", err)
		}
		want := []string{"create backend" + TwinSuffix}
		wantTold := []string{StepCreatedTwin + " "}
		for _, s := range p.Services {
			want = append(want, fmt.Sprintf("attach backend%s to %s %v", TwinSuffix, s.Name, s.Aliases))
			wantTold = append(wantTold, StepAttached+" "+s.Name)
		}
		for _, s := range p.Services {
			want = append(want, "detach backend from "+s.Name)
			wantTold = append(wantTold, StepDetached+" "+s.Name)
		}
		want = append(want, "remove backend") // step 4 (the fake engine does not hold the network in use)
		if !slices.Equal(f.calls, want) {
			t.Errorf("keep %d: engine writes =\n%s\nthe plan's steps are\n%s", keep, strings.Join(f.calls, "\n"), strings.Join(want, "\n"))
		}
		if !slices.Equal(told[:min(len(told), len(wantTold))], wantTold) {
			t.Errorf("keep %d: told %q; want %q", keep, told, wantTold)
		}
	}
}
