package swarm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// LabelSecretManaged marks the Docker secrets swarmguard manages (the secrets sync).
const LabelSecretManaged = "swarmguard.managed"

// Secret is a Docker secret's metadata; the engine never returns the data.
type Secret struct {
	ID        string
	Name      string
	Labels    map[string]string
	CreatedAt time.Time
}

// ManagedSecrets lists the secrets labelled swarmguard.managed=true (one API call).
func (c *Client) ManagedSecrets(ctx context.Context) ([]Secret, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.SecretList(cctx, client.SecretListOptions{Filters: client.Filters{}.Add("label", LabelSecretManaged+"=true")})
	if err != nil {
		return nil, mapErr("listing secrets", err)
	}
	out := make([]Secret, 0, len(res.Items))
	for _, s := range res.Items {
		out = append(out, Secret{ID: s.ID, Name: s.Spec.Name, Labels: s.Spec.Labels, CreatedAt: s.CreatedAt})
	}
	return out, nil
}

// CreateSecret creates a secret. A name in use already is ErrAlreadyExists.
func (c *Client) CreateSecret(ctx context.Context, name string, data []byte, labels map[string]string) (string, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.SecretCreate(cctx, client.SecretCreateOptions{Spec: swarmtypes.SecretSpec{
		Annotations: swarmtypes.Annotations{Name: name, Labels: labels}, Data: data}})
	if err != nil {
		// The SDK error carries the engine's message, which names the secret, never its data.
		return "", mapErr(fmt.Sprintf("creating secret %s", name), err)
	}
	return res.ID, nil
}

// RemoveSecret removes a secret. One that a service uses is ErrInUse; a missing one ErrNotFound.
func (c *Client) RemoveSecret(ctx context.Context, id string) error {
	cctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.api.SecretRemove(cctx, id, client.SecretRemoveOptions{})
	if err == nil {
		return nil
	}
	// swarmkit refuses with InvalidArgument ("secret x is in use by the following service: y"), some
	// engines with a conflict; the message is the only mark that tells it from a bad request.
	if cerrdefs.IsConflict(err) || (cerrdefs.IsInvalidArgument(err) && strings.Contains(err.Error(), "in use")) {
		return fmt.Errorf("removing secret %s: %w: %w", id, ErrInUse, err)
	}
	mapped := mapErr(fmt.Sprintf("removing secret %s", id), err)
	if errors.Is(mapped, ErrAlreadyExists) {
		return fmt.Errorf("removing secret %s: %w: %w", id, ErrInUse, err)
	}
	return mapped
}
