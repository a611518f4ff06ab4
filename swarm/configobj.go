package swarm

import (
	"context"
	"fmt"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"
)

// ConfigObject is a swarm config object used as a small compare-and-swap store: its labels carry the state,
// its Version is the CAS token. swarmguard keeps the ledger ("swarmguard-state") and the lease
// ("swarmguard-lease") in two such objects.
type ConfigObject struct {
	ID        string
	Name      string
	Version   uint64
	Labels    map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ConfigByName returns the config object with exactly that name, or ErrNotFound.
func (c *Client) ConfigByName(ctx context.Context, name string) (ConfigObject, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ConfigList(cctx, client.ConfigListOptions{Filters: make(client.Filters).Add("name", name)})
	if err != nil {
		return ConfigObject{}, mapErr(fmt.Sprintf("listing config %q", name), err)
	}
	for _, cf := range res.Items {
		if cf.Spec.Name == name { // the name filter matches prefixes too
			return configFrom(cf), nil
		}
	}
	return ConfigObject{}, fmt.Errorf("config %q: %w", name, ErrNotFound)
}

// CreateConfig creates a config object with the given labels and a fixed explanatory body.
// ErrAlreadyExists when another writer created it first.
func (c *Client) CreateConfig(ctx context.Context, name string, labels map[string]string, body string) (ConfigObject, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ConfigCreate(cctx, client.ConfigCreateOptions{Spec: swarmtypes.ConfigSpec{
		Annotations: swarmtypes.Annotations{Name: name, Labels: labels},
		Data:        []byte(body),
	}})
	if err != nil {
		return ConfigObject{}, mapErr(fmt.Sprintf("creating config %q", name), err)
	}
	return c.inspectConfig(ctx, res.ID)
}

func (c *Client) inspectConfig(ctx context.Context, id string) (ConfigObject, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.ConfigInspect(cctx, id, client.ConfigInspectOptions{})
	if err != nil {
		return ConfigObject{}, mapErr(fmt.Sprintf("inspecting config %s", id), err)
	}
	return configFrom(res.Config), nil
}

// UpdateConfigLabels replaces the labels of a config object, written with the version it was read at.
// ErrConflict when someone else wrote in between: re-read and decide again.
func (c *Client) UpdateConfigLabels(ctx context.Context, obj ConfigObject, labels map[string]string) error {
	cctx, cancel := c.call(ctx)
	defer cancel()
	// The engine accepts only label changes on a config; it needs the rest of the spec unchanged.
	res, err := c.api.ConfigInspect(cctx, obj.ID, client.ConfigInspectOptions{})
	if err != nil {
		return mapErr(fmt.Sprintf("inspecting config %q", obj.Name), err)
	}
	spec := res.Config.Spec
	spec.Labels = labels
	_, err = c.api.ConfigUpdate(cctx, obj.ID, client.ConfigUpdateOptions{Version: swarmtypes.Version{Index: obj.Version}, Spec: spec})
	if err != nil {
		return mapErr(fmt.Sprintf("updating config %q", obj.Name), err)
	}
	return nil
}

// RemoveConfig removes a config object by ID.
func (c *Client) RemoveConfig(ctx context.Context, id string) error {
	cctx, cancel := c.call(ctx)
	defer cancel()
	if _, err := c.api.ConfigRemove(cctx, id, client.ConfigRemoveOptions{}); err != nil {
		return mapErr(fmt.Sprintf("removing config %s", id), err)
	}
	return nil
}

func configFrom(cf swarmtypes.Config) ConfigObject {
	labels := make(map[string]string, len(cf.Spec.Labels))
	for k, v := range cf.Spec.Labels {
		labels[k] = v
	}
	return ConfigObject{ID: cf.ID, Name: cf.Spec.Name, Version: cf.Version.Index, Labels: labels, CreatedAt: cf.CreatedAt, UpdatedAt: cf.UpdatedAt}
}
