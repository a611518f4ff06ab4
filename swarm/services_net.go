package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// NetworkAttachment is one network a service's tasks are attached to, as its spec says.
type NetworkAttachment struct {
	// Target is the network as the spec names it (the engine stores the ID).
	Target  string
	Aliases []string
}

// Service is what swarmguard reads of a service for network and compliance checks. It carries the names of
// the environment variables, never their values.
type Service struct {
	ID       string
	Name     string
	Version  uint64
	Labels   map[string]string
	Image    string
	Mode     string // replicated | global | replicated-job | global-job
	Replicas *uint64
	Networks []NetworkAttachment
	// VIPNetworks are the network IDs the service has a virtual IP on (ingress appears here for
	// services publishing ports through the routing mesh).
	VIPNetworks  []string
	EndpointMode string
	// EnvNames are the names of the variables in ContainerSpec.Env. Values are dropped when read.
	EnvNames []string
	// SecretNames are the Docker secrets the service mounts.
	SecretNames []string
	// UpdateState is the state of the latest update (updating, completed, rollback_completed, ...), "" when none.
	UpdateState   string
	UpdateMessage string
}

// StackNamespace is the stack that deployed the service, "" when none.
func (s Service) StackNamespace() string { return s.Labels[LabelStackNamespace] }

// OnNetwork says whether the service's spec attaches it to the network (by ID or name), or it has a VIP on it.
func (s Service) OnNetwork(n Network) bool {
	for _, a := range s.Networks {
		if a.Target == n.ID || a.Target == n.Name {
			return true
		}
	}
	return slices.Contains(s.VIPNetworks, n.ID)
}

// Attachment returns the spec's attachment to the network, if any.
func (s Service) Attachment(n Network) (NetworkAttachment, bool) {
	for _, a := range s.Networks {
		if a.Target == n.ID || a.Target == n.Name {
			return a, true
		}
	}
	return NetworkAttachment{}, false
}

// Services lists every service (one API call), sorted by name.
func (c *Client) Services(ctx context.Context) ([]Service, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ServiceList(cctx, client.ServiceListOptions{})
	if err != nil {
		return nil, mapErr("listing services", err)
	}
	out := make([]Service, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, serviceFrom(s))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Service reads one service by ID or name.
func (c *Client) Service(ctx context.Context, id string) (Service, error) {
	s, err := c.inspectService(ctx, id)
	if err != nil {
		return Service{}, err
	}
	return serviceFrom(s), nil
}

func (c *Client) inspectService(ctx context.Context, id string) (swarmtypes.Service, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ServiceInspect(cctx, id, client.ServiceInspectOptions{})
	if err != nil {
		return swarmtypes.Service{}, mapErr(fmt.Sprintf("inspecting service %s", id), err)
	}
	return res.Service, nil
}

func serviceFrom(s swarmtypes.Service) Service {
	out := Service{
		ID:      s.ID,
		Name:    s.Spec.Name,
		Version: s.Version.Index,
		Labels:  s.Spec.Labels,
	}
	switch m := s.Spec.Mode; {
	case m.Replicated != nil:
		out.Mode = "replicated"
		out.Replicas = m.Replicated.Replicas
	case m.Global != nil:
		out.Mode = "global"
	case m.ReplicatedJob != nil:
		out.Mode = "replicated-job"
	case m.GlobalJob != nil:
		out.Mode = "global-job"
	}
	for _, n := range s.Spec.TaskTemplate.Networks {
		out.Networks = append(out.Networks, NetworkAttachment{Target: n.Target, Aliases: slices.Clone(n.Aliases)})
	}
	for _, v := range s.Endpoint.VirtualIPs {
		if v.NetworkID != "" {
			out.VIPNetworks = append(out.VIPNetworks, v.NetworkID)
		}
	}
	if s.Spec.EndpointSpec != nil {
		out.EndpointMode = string(s.Spec.EndpointSpec.Mode)
	}
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
		out.Image = cs.Image
		for _, kv := range cs.Env {
			name, _, _ := strings.Cut(kv, "=") // the value is dropped here and never leaves this function
			if name != "" {
				out.EnvNames = append(out.EnvNames, name)
			}
		}
		for _, sr := range cs.Secrets {
			if sr != nil {
				out.SecretNames = append(out.SecretNames, sr.SecretName)
			}
		}
	}
	if u := s.UpdateStatus; u != nil {
		out.UpdateState = string(u.State)
		out.UpdateMessage = u.Message
	}
	return out
}

// AttachNetwork adds the network to the service's spec with the given aliases, written with the service's
// version (compare-and-swap; a lost race re-reads and tries again). A service already attached to it is
// left as it is. It returns whether the spec changed.
func (c *Client) AttachNetwork(ctx context.Context, service, networkID string, aliases []string) (bool, error) {
	return c.updateServiceNetworks(ctx, service, fmt.Sprintf("attaching network %s to service %s", short(networkID), service),
		func(nets []swarmtypes.NetworkAttachmentConfig) ([]swarmtypes.NetworkAttachmentConfig, bool) {
			for _, n := range nets {
				if n.Target == networkID {
					return nets, false
				}
			}
			return append(nets, swarmtypes.NetworkAttachmentConfig{Target: networkID, Aliases: slices.Clone(aliases)}), true
		})
}

// DetachNetwork removes the network (by ID or name) from the service's spec, keeping every other attachment
// and its aliases, by compare-and-swap. A service not attached to it is left as it is.
func (c *Client) DetachNetwork(ctx context.Context, service string, net Network) (bool, error) {
	return c.updateServiceNetworks(ctx, service, fmt.Sprintf("detaching network %s from service %s", net.Name, service),
		func(nets []swarmtypes.NetworkAttachmentConfig) ([]swarmtypes.NetworkAttachmentConfig, bool) {
			out := make([]swarmtypes.NetworkAttachmentConfig, 0, len(nets))
			changed := false
			for _, n := range nets {
				if n.Target == net.ID || (net.Name != "" && n.Target == net.Name) {
					changed = true
					continue
				}
				out = append(out, n)
			}
			return out, changed
		})
}

func (c *Client) updateServiceNetworks(ctx context.Context, service, doing string,
	edit func([]swarmtypes.NetworkAttachmentConfig) ([]swarmtypes.NetworkAttachmentConfig, bool)) (bool, error) {
	var lastErr error
	for attempt := 0; attempt < maxSpecRetries; attempt++ {
		s, err := c.inspectService(ctx, service)
		if err != nil {
			return false, err
		}
		spec := s.Spec
		nets, changed := edit(slices.Clone(spec.TaskTemplate.Networks))
		if !changed {
			return false, nil
		}
		spec.TaskTemplate.Networks = nets
		cctx, cancel := c.call(ctx)
		_, err = c.api.ServiceUpdate(cctx, s.ID, client.ServiceUpdateOptions{
			Version:          s.Version,
			Spec:             spec,
			RegistryAuthFrom: swarmtypes.RegistryAuthFromSpec,
			QueryRegistry:    false, // keep the image reference as it is: no registry lookup, no digest pinning
		})
		cancel()
		if err == nil {
			return true, nil
		}
		lastErr = mapErr(doing, err)
		if !errors.Is(lastErr, ErrConflict) {
			return false, lastErr
		}
	}
	return false, fmt.Errorf("%s: gave up after %d conflicting writes: %w", doing, maxSpecRetries, lastErr)
}

// ServiceTask is one task of a service as the network remediation follows it.
type ServiceTask struct {
	ID           string
	NodeID       string
	State        string // running, failed, ...
	DesiredState string
	Err          string
	NetworkIDs   []string
}

// ServiceTasks lists a service's tasks whose desired state is running (one TaskList call).
func (c *Client) ServiceTasks(ctx context.Context, service string) ([]ServiceTask, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.TaskList(cctx, client.TaskListOptions{Filters: make(client.Filters).Add("service", service).Add("desired-state", "running")})
	if err != nil {
		return nil, mapErr(fmt.Sprintf("listing tasks of service %s", service), err)
	}
	out := make([]ServiceTask, 0, len(res.Items))
	for _, t := range res.Items {
		st := ServiceTask{ID: t.ID, NodeID: t.NodeID, State: string(t.Status.State), DesiredState: string(t.DesiredState), Err: t.Status.Err}
		for _, a := range t.NetworksAttachments {
			st.NetworkIDs = append(st.NetworkIDs, a.Network.ID)
		}
		out = append(out, st)
	}
	return out, nil
}
