package swarm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmguard/swarmguard/sensitive"
)

// ErrAutolockOff means an unlock-key operation was asked of a swarm whose autolock is off: there is no key.
var ErrAutolockOff = errors.New("autolock is off: the swarm has no unlock key")

// UnlockKey reads the swarm's current unlock key (`docker swarm unlock-key`). It is zero when autolock is off.
func (c *Client) UnlockKey(ctx context.Context) (sensitive.Value, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.SwarmGetUnlockKey(cctx)
	if err != nil {
		return sensitive.Value{}, mapErr("reading the unlock key", err)
	}
	return sensitive.New(res.Key), nil
}

// SetAutolock turns autolock on or off with a compare-and-swap spec write. changed is false when the swarm
// already was as asked (nothing was written).
func (c *Client) SetAutolock(ctx context.Context, on bool) (changed bool, err error) {
	_, err = c.updateSwarm(ctx, fmt.Sprintf("setting autolock to %v", on), func(spec *swarmtypes.Spec, _ swarmtypes.Swarm) error {
		if spec.EncryptionConfig.AutoLockManagers == on {
			return errNoChange
		}
		spec.EncryptionConfig.AutoLockManagers = on
		changed = true
		return nil
	}, RotateFlags{})
	if err != nil {
		return false, err
	}
	return changed, nil
}

// RotateUnlockKey replaces the unlock key (`docker swarm unlock-key --rotate`) and returns the key it replaced
// and the new one, read back from the swarm. It fails with ErrAutolockOff when autolock is off, and with
// ErrNotRotated when the key read back is the old one.
func (c *Client) RotateUnlockKey(ctx context.Context) (old, cur sensitive.Value, err error) {
	old, err = c.UnlockKey(ctx)
	if err != nil {
		return sensitive.Value{}, sensitive.Value{}, err
	}
	_, err = c.updateSwarm(ctx, "rotating the unlock key", func(spec *swarmtypes.Spec, _ swarmtypes.Swarm) error {
		if !spec.EncryptionConfig.AutoLockManagers {
			return ErrAutolockOff
		}
		return nil
	}, RotateFlags{UnlockKey: true})
	if err != nil {
		return old, sensitive.Value{}, err
	}
	cur, err = readBack(ctx, c.UnlockKey)
	if err != nil {
		return old, sensitive.Value{}, fmt.Errorf("reading the new unlock key: %w (the rotation itself was accepted; `docker swarm unlock-key` on a manager shows it)", err)
	}
	if cur.IsZero() || cur.Reveal() == old.Reveal() {
		return old, cur, fmt.Errorf("rotating the unlock key: %w (sha256:%s before and after)", ErrNotRotated, cur.Short())
	}
	return old, cur, nil
}

// ServiceEndpoint is what a service exposes: enough to tell whether an address outside the swarm (the
// Vault the unlock key is escrowed to) is in fact served by the swarm itself.
type ServiceEndpoint struct {
	ID    string
	Name  string // the service name; a stack's services are <stack>_<name>
	Stack string // com.docker.stack.namespace, if any
	Image string
	// PublishedPorts are the ports the routing mesh (ingress mode: on every node) or the nodes running a
	// task (host mode) answer on.
	PublishedPorts []uint32
	// VirtualIPs are the service's addresses on its networks, without the prefix length.
	VirtualIPs []string
}

// ServiceEndpoints lists every service with its published ports and virtual IPs (one API call).
func (c *Client) ServiceEndpoints(ctx context.Context) ([]ServiceEndpoint, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ServiceList(cctx, client.ServiceListOptions{})
	if err != nil {
		return nil, mapErr("listing services", err)
	}
	out := make([]ServiceEndpoint, 0, len(res.Items))
	for _, s := range res.Items {
		e := ServiceEndpoint{ID: s.ID, Name: s.Spec.Name, Stack: s.Spec.Labels["com.docker.stack.namespace"]}
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			e.Image = cs.Image
		}
		for _, p := range s.Endpoint.Ports {
			if p.PublishedPort != 0 {
				e.PublishedPorts = append(e.PublishedPorts, p.PublishedPort)
			}
		}
		for _, v := range s.Endpoint.VirtualIPs {
			if v.Addr.IsValid() {
				e.VirtualIPs = append(e.VirtualIPs, v.Addr.Addr().String())
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Name, out[j].Name) < 0 })
	return out, nil
}
