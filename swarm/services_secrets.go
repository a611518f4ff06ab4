package swarm

import (
	"context"
	"fmt"
	"os"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// SecretRef is one secret a service's or task's spec mounts.
type SecretRef struct {
	SecretID   string
	SecretName string
	// File is the target (a name under /run/secrets or an absolute path); "" when the ref has no file target.
	File string
	UID  string
	GID  string
	Mode uint32
}

// ServiceSecrets is what the secrets sync reads of a service.
type ServiceSecrets struct {
	ID              string
	Name            string
	Version         uint64
	Labels          map[string]string
	Secrets         []SecretRef // current spec
	PreviousSecrets []SecretRef // previous spec (what `docker service rollback` returns to)
	UpdateState     string
	UpdateMessage   string
	UpdateStartedAt time.Time
	// Replicas is the replica count of a replicated service; nil for other modes.
	Replicas *uint64
}

// TaskSecrets is a task with the secrets its spec mounts and the privileges its spec sets: what a rollout
// judges a task by (is it of the new spec?).
type TaskSecrets struct {
	ID           string
	ServiceID    string
	State        string
	DesiredState string
	Secrets      []SecretRef
	// NoNewPrivileges and SeccompMode are the task spec's Privileges.NoNewPrivileges and Seccomp.Mode ("" when unset).
	NoNewPrivileges bool
	SeccompMode     string
	// NetworkIDs are the networks the task is attached to; Err is its status's error, "" when none.
	NetworkIDs []string
	Err        string
}

func refsFrom(spec *swarmtypes.ServiceSpec) []SecretRef {
	if spec == nil || spec.TaskTemplate.ContainerSpec == nil {
		return nil
	}
	return refsOf(spec.TaskTemplate.ContainerSpec.Secrets)
}

func refsOf(in []*swarmtypes.SecretReference) []SecretRef {
	out := make([]SecretRef, 0, len(in))
	for _, r := range in {
		if r == nil {
			continue
		}
		ref := SecretRef{SecretID: r.SecretID, SecretName: r.SecretName}
		if r.File != nil {
			ref.File, ref.UID, ref.GID, ref.Mode = r.File.Name, r.File.UID, r.File.GID, uint32(r.File.Mode)
		}
		out = append(out, ref)
	}
	return out
}

func serviceSecretsFrom(s swarmtypes.Service) ServiceSecrets {
	out := ServiceSecrets{ID: s.ID, Name: s.Spec.Name, Version: s.Version.Index, Labels: s.Spec.Labels,
		Secrets: refsFrom(&s.Spec), PreviousSecrets: refsFrom(s.PreviousSpec)}
	if r := s.Spec.Mode.Replicated; r != nil && r.Replicas != nil {
		n := *r.Replicas
		out.Replicas = &n
	}
	if u := s.UpdateStatus; u != nil {
		out.UpdateState, out.UpdateMessage = string(u.State), u.Message
		if u.StartedAt != nil {
			out.UpdateStartedAt = *u.StartedAt
		}
	}
	return out
}

// ServicesSecrets lists every service with its secret references (one API call).
func (c *Client) ServicesSecrets(ctx context.Context) ([]ServiceSecrets, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ServiceList(cctx, client.ServiceListOptions{})
	if err != nil {
		return nil, mapErr("listing services", err)
	}
	out := make([]ServiceSecrets, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, serviceSecretsFrom(s))
	}
	return out, nil
}

// ServiceSecrets reads one service's secret references and update state.
func (c *Client) ServiceSecrets(ctx context.Context, id string) (ServiceSecrets, error) {
	s, err := c.inspectService(ctx, id)
	if err != nil {
		return ServiceSecrets{}, err
	}
	return serviceSecretsFrom(s), nil
}

// UpdateServiceSecrets replaces the secret list of the service's spec, written against version: a service
// changed since then is ErrConflict (re-read and decide again). The rest of the spec is kept as it is, so
// the service's own update config drives the rollout.
func (c *Client) UpdateServiceSecrets(ctx context.Context, id string, version uint64, refs []SecretRef) error {
	return c.updateContainerSpec(ctx, id, version, "updating the secrets of service %s", "a plugin service cannot mount secrets",
		func(cs *swarmtypes.ContainerSpec) {
			cs.Secrets = make([]*swarmtypes.SecretReference, 0, len(refs))
			for _, r := range refs {
				ref := &swarmtypes.SecretReference{SecretID: r.SecretID, SecretName: r.SecretName}
				if r.File != "" {
					ref.File = &swarmtypes.SecretReferenceFileTarget{Name: r.File, UID: r.UID, GID: r.GID, Mode: os.FileMode(r.Mode)}
				}
				cs.Secrets = append(cs.Secrets, ref)
			}
		})
}

// updateContainerSpec changes the service's container spec with edit and writes the spec back against
// version: a service changed since then is ErrConflict (re-read and decide again). Everything else in the
// spec is kept, so the service's own update config drives the rollout, and the image reference is not
// resolved again. doing names the action (a format with the service name); noContainer says why a service
// without a container spec (a plugin) cannot take it.
func (c *Client) updateContainerSpec(ctx context.Context, id string, version uint64, doing, noContainer string, edit func(*swarmtypes.ContainerSpec)) error {
	s, err := c.inspectService(ctx, id)
	if err != nil {
		return err
	}
	doing = fmt.Sprintf(doing, s.Spec.Name)
	if s.Version.Index != version {
		return fmt.Errorf("%s: %w (version %d, written against %d)", doing, ErrConflict, s.Version.Index, version)
	}
	spec := s.Spec
	if spec.TaskTemplate.ContainerSpec == nil {
		return fmt.Errorf("%s: it has no container spec (%s)", doing, noContainer)
	}
	cs := *spec.TaskTemplate.ContainerSpec
	edit(&cs)
	spec.TaskTemplate.ContainerSpec = &cs
	cctx, cancel := c.call(ctx)
	defer cancel()
	_, err = c.api.ServiceUpdate(cctx, s.ID, client.ServiceUpdateOptions{
		Version:          swarmtypes.Version{Index: version},
		Spec:             spec,
		RegistryAuthFrom: swarmtypes.RegistryAuthFromSpec,
		QueryRegistry:    false, // keep the image reference as it is
	})
	return mapErr(doing, err)
}

// TasksSecrets lists the tasks of one service, or of all when serviceID is "" (one API call).
func (c *Client) TasksSecrets(ctx context.Context, serviceID string) ([]TaskSecrets, error) {
	f := client.Filters{}
	if serviceID != "" {
		f = f.Add("service", serviceID)
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.TaskList(cctx, client.TaskListOptions{Filters: f})
	if err != nil {
		return nil, mapErr("listing tasks", err)
	}
	out := make([]TaskSecrets, 0, len(res.Items))
	for _, t := range res.Items {
		ts := TaskSecrets{ID: t.ID, ServiceID: t.ServiceID, State: string(t.Status.State), DesiredState: string(t.DesiredState), Err: t.Status.Err}
		for _, a := range t.NetworksAttachments {
			ts.NetworkIDs = append(ts.NetworkIDs, a.Network.ID)
		}
		if cs := t.Spec.ContainerSpec; cs != nil {
			ts.Secrets = refsOf(cs.Secrets)
			if p := cs.Privileges; p != nil {
				ts.NoNewPrivileges = p.NoNewPrivileges
				if p.Seccomp != nil {
					ts.SeccompMode = string(p.Seccomp.Mode)
				}
			}
		}
		out = append(out, ts)
	}
	return out, nil
}
