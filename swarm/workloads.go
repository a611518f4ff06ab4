package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// Labels of the workload hardening, on a service's own labels (docker service create --label).
const (
	// LabelWorkloadProfile is the service's security profile by role: general (the default) or system.
	LabelWorkloadProfile = "swarmguard.workloads.profile"
	// LabelWorkloadExempt names the workload checks (comma separated, with or without "workloads.")
	// the service is exempt from; it needs LabelWorkloadExemptReason.
	LabelWorkloadExempt       = "swarmguard.workloads.exempt"
	LabelWorkloadExemptReason = "swarmguard.workloads.exempt.reason"
	// LabelWorkloadEnforce=true opts a service in to enforcement under workloads.mode enforce.
	LabelWorkloadEnforce = "swarmguard.workloads.enforce"
)

// PrivilegesMinAPI is the first Engine API whose service spec carries Seccomp, AppArmor and
// NoNewPrivileges in ContainerSpec.Privileges (Docker 25). Older engines neither report nor keep them.
const PrivilegesMinAPI = "1.44"

// APIAtLeast says whether the Engine API version v ("1.41") is at least min; an unreadable version is not.
func APIAtLeast(v, min string) bool {
	a, ok1 := apiParts(v)
	b, ok2 := apiParts(min)
	if !ok1 || !ok2 {
		return false
	}
	if a[0] != b[0] {
		return a[0] > b[0]
	}
	return a[1] >= b[1]
}

func apiParts(v string) ([2]int, bool) {
	maj, min, ok := strings.Cut(strings.TrimPrefix(v, "v"), ".")
	if !ok {
		return [2]int{}, false
	}
	x, err1 := strconv.Atoi(maj)
	y, err2 := strconv.Atoi(min)
	return [2]int{x, y}, err1 == nil && err2 == nil
}

// WorkloadMount is one mount of a service's container spec.
type WorkloadMount struct {
	Type     string // bind, volume, tmpfs, npipe, cluster
	Source   string
	Target   string
	ReadOnly bool
	// Propagation is a bind mount's propagation mode as the spec sets it ("" when not set: rprivate).
	Propagation string
}

// WorkloadPort is one port a service's endpoint spec publishes.
type WorkloadPort struct {
	Protocol  string // tcp, udp, sctp
	Target    uint32 // the container's port
	Published uint32 // the port on the nodes; 0: the engine picks one (30000 and up)
	Mode      string // ingress (the routing mesh) or host
}

// Health check settings as a service spec or an image config holds them. The command itself is never read
// into a Workload: a health command may carry credentials.
const (
	HealthInherit  = ""         // the spec sets no test: the image's health check applies
	HealthDisabled = "disabled" // test NONE: health checks are off
	HealthSet      = "command"  // a test command is set
)

// healthOf says which of HealthInherit, HealthDisabled, HealthSet a health check test is.
func healthOf(test []string) string {
	switch {
	case len(test) == 0:
		return HealthInherit
	case strings.EqualFold(test[0], "NONE"):
		return HealthDisabled
	default:
		return HealthSet
	}
}

// Workload is what the workload checks read of one service's spec: the container's defence-in-depth
// layers. It carries no environment values and no secret data.
type Workload struct {
	ID       string
	Name     string
	Version  uint64
	Labels   map[string]string
	Mode     string // replicated | global | replicated-job | global-job
	Replicas *uint64
	// Container is false for a plugin service (no container spec): nothing below applies.
	Container bool
	Image     string
	User      string
	CapAdd    []string
	CapDrop   []string
	Mounts    []WorkloadMount
	ReadOnly  bool
	// Limits (0: none). PidsLimit is read from Resources.Limits.Pids.
	MemoryLimit int64
	NanoCPUs    int64
	PidsLimit   int64
	// HostNetwork is set when the service is attached to the host network: by name, by a node's local
	// host network ID, or by the swarm-scope host network's ID (what engines from 23 store for --network host).
	HostNetwork bool
	Sysctls     map[string]string
	Ports       []WorkloadPort
	// RestartCondition is the restart policy's condition (none, on-failure, any; "" when the spec has no
	// restart policy: the engine restarts on any exit). RestartMaxAttempts is its MaxAttempts (0: unlimited).
	RestartCondition   string
	RestartMaxAttempts uint64
	// Healthcheck is the spec's health check: HealthInherit, HealthDisabled or HealthSet.
	Healthcheck string
	// Privileges: the spec's Seccomp and AppArmor modes ("" when not set: the engine default) and
	// NoNewPrivileges. Only engines with API 1.44+ have them (see PrivilegesMinAPI).
	Seccomp         string
	AppArmor        string
	NoNewPrivileges bool
	UpdateState     string
	UpdateMessage   string
}

// Workloads lists every service's container hardening, sorted by name: one service list, one list of the
// local host network, and one inspect of each other network a service is attached to, because engines from
// Docker 23 store `--network host` as the swarm-scope host network's ID, which the network list leaves out.
func (c *Client) Workloads(ctx context.Context) ([]Workload, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ServiceList(cctx, client.ServiceListOptions{})
	if err != nil {
		return nil, mapErr("listing services", err)
	}
	hostIDs, err := c.hostNetworks(ctx, res.Items)
	if err != nil {
		return nil, err
	}
	out := make([]Workload, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, workloadFrom(s, hostIDs))
	}
	slices.SortStableFunc(out, func(a, b Workload) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// hostNetworks answers, for the name "host" and every network the services are attached to, whether it is
// the host network (driver host): the local one from the network list, any other by inspecting it. A network
// the engine does not find is not the host network (the predefined ones always exist); any other failed
// read fails the whole list, so no service is judged on a guess.
func (c *Client) hostNetworks(ctx context.Context, services []swarmtypes.Service) (map[string]bool, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	nets, err := c.api.NetworkList(cctx, client.NetworkListOptions{Filters: make(client.Filters).Add("driver", "host")})
	if err != nil {
		return nil, mapErr("listing the host network", err)
	}
	host := map[string]bool{"host": true}
	for _, n := range nets.Items {
		host[n.ID] = true
	}
	for _, s := range services {
		for _, a := range s.Spec.TaskTemplate.Networks {
			id := a.Target
			if _, known := host[id]; known || id == "" {
				continue
			}
			ictx, icancel := c.call(ctx)
			n, ierr := c.api.NetworkInspect(ictx, id, client.NetworkInspectOptions{})
			icancel()
			switch {
			case ierr == nil:
				host[id] = n.Network.Driver == "host"
			case cerrdefs.IsNotFound(ierr):
				host[id] = false
			default:
				return nil, mapErr(fmt.Sprintf("inspecting network %s (service %s is attached to it) to tell whether it is the host network",
					short(id), s.Spec.Name), ierr)
			}
		}
	}
	return host, nil
}

func workloadFrom(s swarmtypes.Service, hostIDs map[string]bool) Workload {
	w := Workload{ID: s.ID, Name: s.Spec.Name, Version: s.Version.Index, Labels: maps.Clone(s.Spec.Labels)}
	switch m := s.Spec.Mode; {
	case m.Replicated != nil:
		w.Mode, w.Replicas = "replicated", m.Replicated.Replicas
	case m.Global != nil:
		w.Mode = "global"
	case m.ReplicatedJob != nil:
		w.Mode = "replicated-job"
	case m.GlobalJob != nil:
		w.Mode = "global-job"
	}
	if u := s.UpdateStatus; u != nil {
		w.UpdateState, w.UpdateMessage = string(u.State), u.Message
	}
	for _, n := range s.Spec.TaskTemplate.Networks {
		if hostIDs[n.Target] {
			w.HostNetwork = true
		}
	}
	if e := s.Spec.EndpointSpec; e != nil {
		for _, p := range e.Ports {
			w.Ports = append(w.Ports, WorkloadPort{Protocol: string(p.Protocol), Target: p.TargetPort, Published: p.PublishedPort, Mode: string(p.PublishMode)})
		}
	}
	if rp := s.Spec.TaskTemplate.RestartPolicy; rp != nil {
		w.RestartCondition = string(rp.Condition)
		if rp.MaxAttempts != nil {
			w.RestartMaxAttempts = *rp.MaxAttempts
		}
	}
	if r := s.Spec.TaskTemplate.Resources; r != nil && r.Limits != nil {
		w.MemoryLimit, w.NanoCPUs, w.PidsLimit = r.Limits.MemoryBytes, r.Limits.NanoCPUs, r.Limits.Pids
	}
	cs := s.Spec.TaskTemplate.ContainerSpec
	if cs == nil {
		return w
	}
	w.Container = true
	w.Image, w.User, w.ReadOnly = cs.Image, cs.User, cs.ReadOnly
	w.CapAdd, w.CapDrop = slices.Clone(cs.CapabilityAdd), slices.Clone(cs.CapabilityDrop)
	w.Sysctls = maps.Clone(cs.Sysctls)
	if cs.Healthcheck != nil {
		w.Healthcheck = healthOf(cs.Healthcheck.Test)
	}
	for _, m := range cs.Mounts {
		wm := WorkloadMount{Type: string(m.Type), Source: m.Source, Target: m.Target, ReadOnly: m.ReadOnly}
		if m.BindOptions != nil {
			wm.Propagation = string(m.BindOptions.Propagation)
		}
		w.Mounts = append(w.Mounts, wm)
	}
	if p := cs.Privileges; p != nil {
		w.NoNewPrivileges = p.NoNewPrivileges
		if p.Seccomp != nil {
			w.Seccomp = string(p.Seccomp.Mode)
		}
		if p.AppArmor != nil {
			w.AppArmor = string(p.AppArmor.Mode)
		}
	}
	return w
}

// ImageConfig is what the workload checks read of an image's config: its user and whether it has a health
// check (HealthInherit: none, HealthDisabled, HealthSet). The health command itself is not read.
type ImageConfig struct {
	User        string
	Healthcheck string
}

// ImageConfig reads an image's config as the engine we talk to has it. Found is false when this engine does
// not have the image (the image may still exist on the nodes that run the service).
func (c *Client) ImageConfig(ctx context.Context, ref string) (cfg ImageConfig, found bool, err error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ImageInspect(cctx, ref)
	if err != nil {
		err = mapErr(fmt.Sprintf("inspecting image %s", ref), err)
		if errors.Is(err, ErrNotFound) {
			return ImageConfig{}, false, nil
		}
		return ImageConfig{}, false, err
	}
	if res.Config != nil {
		cfg.User = res.Config.User
		if res.Config.Healthcheck != nil {
			cfg.Healthcheck = healthOf(res.Config.Healthcheck.Test)
		}
	}
	return cfg, true, nil
}

// Hardening is what the workload enforcement sets on a service's spec.
type Hardening struct {
	NoNewPrivileges bool // set Privileges.NoNewPrivileges=true
	SeccompDefault  bool // set Privileges.Seccomp.Mode=default (only where it is unconfined)
}

// HardenService writes h into the service's spec, against version: a service changed since then is
// ErrConflict (re-read and decide again). The rest of the spec is kept, so the service's own update config
// drives the rollout.
func (c *Client) HardenService(ctx context.Context, id string, version uint64, h Hardening) error {
	return c.updateContainerSpec(ctx, id, version, "hardening service %s", "a plugin service has no privileges to set",
		func(cs *swarmtypes.ContainerSpec) {
			p := swarmtypes.Privileges{}
			if cs.Privileges != nil {
				p = *cs.Privileges
			}
			if h.NoNewPrivileges {
				p.NoNewPrivileges = true
			}
			if h.SeccompDefault && p.Seccomp != nil && p.Seccomp.Mode == swarmtypes.SeccompModeUnconfined {
				p.Seccomp = &swarmtypes.SeccompOpts{Mode: swarmtypes.SeccompModeDefault}
			}
			cs.Privileges = &p
		})
}

// RollbackService asks the engine to return the service to its previous spec (docker service rollback).
func (c *Client) RollbackService(ctx context.Context, id string) error {
	s, err := c.inspectService(ctx, id)
	if err != nil {
		return err
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	_, err = c.api.ServiceUpdate(cctx, s.ID, client.ServiceUpdateOptions{Version: s.Version, Spec: s.Spec,
		RegistryAuthFrom: swarmtypes.RegistryAuthFromPreviousSpec, Rollback: "previous"})
	return mapErr(fmt.Sprintf("rolling back service %s", s.Spec.Name), err)
}
