package swarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// Labels swarmguard reads on networks.
const (
	// LabelEncryption set to "exempt" exempts a network from the encryption policy; it must come with
	// LabelEncryptionReason, or the exemption is itself a finding.
	LabelEncryption = "swarmguard.encryption"
	// LabelEncryptionReason says why a network is exempt.
	LabelEncryptionReason = "swarmguard.encryption.reason"
	// LabelTwinOf marks an encrypted twin network that swarmguard created for the named network.
	LabelTwinOf = "swarmguard.twin-of"
	// LabelStackNamespace marks objects deployed by `docker stack deploy`.
	LabelStackNamespace = "com.docker.stack.namespace"
)

// optEncrypted is the overlay driver option that turns on IPsec encryption of the data path.
const optEncrypted = "encrypted"

// Network is one swarm-scope overlay network.
type Network struct {
	ID         string
	Name       string
	Driver     string
	Scope      string
	Created    time.Time
	Attachable bool
	Internal   bool
	Ingress    bool
	EnableIPv6 bool
	// Encrypted is true when the overlay driver option "encrypted" is set (the engine encrypts on the
	// presence of the option; a value of "false" or "0" is read as not encrypted, the safe side).
	Encrypted bool
	// EncryptedOption is the raw option value as the engine reports it, and HasEncryptedOption whether it is set.
	EncryptedOption    string
	HasEncryptedOption bool
	Options            map[string]string
	Labels             map[string]string
	Subnets            []string
	Gateways           []string
	IPAMDriver         string
}

// ErrPartialList means the engine answered a list with part of the swarm missing. It is a failed read: a
// caller never takes what is missing from such a list for absent.
var ErrPartialList = errors.New("the engine's list is incomplete")

// Networks lists every swarm-scope overlay network, ingress included, sorted by name. The engine builds its
// answer from the swarm's list and its own, and leaves the swarm's out without an error when its manager
// cannot give it (moby's network router ignores that error: no leader, a timeout during an election); the
// answer is then only the overlay networks this node has attached, and an unencrypted network would be
// missed, not flagged. So the list is checked against the services: a network a service is attached to
// (by its spec or a virtual IP) must be in it or be another driver's; otherwise the list is read once more and
// then given up as ErrPartialList.
func (c *Client) Networks(ctx context.Context) ([]Network, error) {
	var err error
	for range 2 {
		var nets []Network
		if nets, err = c.listOverlayNetworks(ctx); err != nil {
			return nil, err
		}
		if err = c.checkNetworksComplete(ctx, nets); err == nil {
			return nets, nil
		}
		if !errors.Is(err, ErrPartialList) {
			return nil, err
		}
	}
	return nil, err
}

func (c *Client) listOverlayNetworks(ctx context.Context) ([]Network, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.NetworkList(cctx, client.NetworkListOptions{Filters: make(client.Filters).Add("driver", "overlay")})
	if err != nil {
		return nil, mapErr("listing overlay networks", err)
	}
	out := make([]Network, 0, len(res.Items))
	for _, n := range res.Items {
		if n.Driver != "overlay" || n.Scope != "swarm" {
			continue
		}
		out = append(out, networkFrom(n.Network))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// checkNetworksComplete looks up every network the services are attached to that the list lacks: one of
// another driver (a swarm-scope macvlan, say) is fine; an overlay network, or one the engine cannot find
// (its inspect falls back the same silent way), makes the list partial.
func (c *Client) checkNetworksComplete(ctx context.Context, nets []Network) error {
	services, err := c.Services(ctx)
	if err != nil {
		return fmt.Errorf("checking the overlay network list against the services: %w", err)
	}
	known := make(map[string]bool, len(nets))
	for _, n := range nets {
		known[n.ID], known[n.Name] = true, true
	}
	checked := map[string]bool{}
	for _, s := range services {
		ids := slices.Clone(s.VIPNetworks)
		for _, a := range s.Networks {
			ids = append(ids, a.Target)
		}
		for _, id := range ids {
			if id == "" || known[id] || checked[id] {
				continue
			}
			checked[id] = true
			cctx, cancel := c.call(ctx)
			res, ierr := c.api.NetworkInspect(cctx, id, client.NetworkInspectOptions{})
			cancel()
			switch {
			case ierr == nil && (res.Network.Driver != "overlay" || res.Network.Scope != "swarm"):
				continue
			case ierr != nil && !cerrdefs.IsNotFound(ierr):
				return mapErr(fmt.Sprintf("inspecting network %s (service %s is attached to it)", id, s.Name), ierr)
			}
			return fmt.Errorf("listing overlay networks: %w: service %s is attached to overlay network %s, which the list "+
				"leaves out (the engine drops the swarm's networks from its answer when its manager cannot list them, "+
				"e.g. during a leader election); read again later", ErrPartialList, s.Name, id)
		}
	}
	return nil
}

func networkFrom(n network.Network) Network {
	out := Network{
		ID:         n.ID,
		Name:       n.Name,
		Driver:     n.Driver,
		Scope:      n.Scope,
		Created:    n.Created,
		Attachable: n.Attachable,
		Internal:   n.Internal,
		Ingress:    n.Ingress,
		EnableIPv6: n.EnableIPv6,
		Options:    n.Options,
		Labels:     n.Labels,
		IPAMDriver: n.IPAM.Driver,
	}
	if v, ok := n.Options[optEncrypted]; ok {
		out.HasEncryptedOption = true
		out.EncryptedOption = v
		out.Encrypted = encryptedValue(v)
	}
	for _, cf := range n.IPAM.Config {
		if cf.Subnet.IsValid() {
			out.Subnets = append(out.Subnets, cf.Subnet.String())
		}
		if cf.Gateway.IsValid() {
			out.Gateways = append(out.Gateways, cf.Gateway.String())
		}
	}
	return out
}

// encryptedValue reads the "encrypted" option's value: the engine turns encryption on when the option is
// present; we read explicit negatives as off so that a doubtful network is reported, never passed.
func encryptedValue(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "false", "0", "no", "off":
		return false
	}
	return true
}

// NetworkSpec is what CreateNetwork creates: always a swarm-scope overlay network.
type NetworkSpec struct {
	Name       string
	Encrypted  bool
	Attachable bool
	Internal   bool
	EnableIPv6 bool
	// Subnet is the IPv4 subnet (CIDR); empty lets the managers pick a fresh one from the default address pool.
	Subnet  string
	Options map[string]string
	Labels  map[string]string
}

// CreateNetwork creates an overlay network and returns it as the engine reports it. ErrAlreadyExists when a
// network of that name exists.
func (c *Client) CreateNetwork(ctx context.Context, spec NetworkSpec) (Network, error) {
	opts := map[string]string{}
	for k, v := range spec.Options {
		opts[k] = v
	}
	if spec.Encrypted {
		opts[optEncrypted] = "" // what `docker network create --opt encrypted` sends
	} else {
		delete(opts, optEncrypted)
	}
	req := client.NetworkCreateOptions{
		Driver:     "overlay",
		Scope:      "swarm",
		Attachable: spec.Attachable,
		Internal:   spec.Internal,
		Options:    opts,
		Labels:     spec.Labels,
	}
	if spec.EnableIPv6 {
		v6 := true
		req.EnableIPv6 = &v6
	}
	if spec.Subnet != "" {
		p, err := netip.ParsePrefix(spec.Subnet)
		if err != nil {
			return Network{}, fmt.Errorf("creating network %q: subnet %q is not a CIDR prefix: %w", spec.Name, spec.Subnet, err)
		}
		req.IPAM = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{{Subnet: p}}}
	}
	// Swarm-scope networks have unique names only by convention: check first, so a retry never makes a second one.
	if existing, err := c.NetworkByName(ctx, spec.Name); err == nil {
		return existing, fmt.Errorf("creating network %q: %w (id %s)", spec.Name, ErrAlreadyExists, short(existing.ID))
	}
	cctx, cancel := c.call(ctx)
	res, err := c.api.NetworkCreate(cctx, spec.Name, req)
	cancel()
	if err != nil {
		return Network{}, mapErr(fmt.Sprintf("creating network %q", spec.Name), err)
	}
	return c.inspectNetwork(ctx, res.ID)
}

// NetworkByName returns the swarm overlay network with exactly that name; ErrNotFound when there is none,
// and an error naming the IDs when there are several (swarm allows duplicate names).
func (c *Client) NetworkByName(ctx context.Context, name string) (Network, error) {
	nets, err := c.Networks(ctx)
	if err != nil {
		return Network{}, err
	}
	var found []Network
	for _, n := range nets {
		if n.Name == name || n.ID == name {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return Network{}, fmt.Errorf("overlay network %q: %w", name, ErrNotFound)
	case 1:
		return found[0], nil
	}
	ids := make([]string, 0, len(found))
	for _, n := range found {
		ids = append(ids, n.ID)
	}
	return Network{}, fmt.Errorf("overlay network name %q is ambiguous (ids %s): name it by ID", name, strings.Join(ids, ", "))
}

func (c *Client) inspectNetwork(ctx context.Context, id string) (Network, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.NetworkInspect(cctx, id, client.NetworkInspectOptions{Scope: "swarm"})
	if err != nil {
		return Network{}, mapErr(fmt.Sprintf("inspecting network %s", short(id)), err)
	}
	return networkFrom(res.Network.Network), nil
}

// RemoveNetwork removes a network. A network still used by tasks or containers yields ErrInUse; one that is
// already gone yields ErrNotFound (callers removing it may count that as done).
func (c *Client) RemoveNetwork(ctx context.Context, id string) error {
	cctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.api.NetworkRemove(cctx, id, client.NetworkRemoveOptions{})
	if err == nil {
		return nil
	}
	if strings.Contains(strings.ToLower(err.Error()), "in use") || strings.Contains(strings.ToLower(err.Error()), "has active endpoints") {
		return fmt.Errorf("removing network %s: %w: %w", short(id), ErrInUse, err)
	}
	return mapErr(fmt.Sprintf("removing network %s", short(id)), err)
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// EngineFacts are what the engine we talk to says about where it keeps its state, so that a caller on the
// same host can read the engine's own swarm settings (listen and data-path addresses), which the API does
// not show.
type EngineFacts struct {
	NodeID        string
	NodeAddr      string // the advertise address's host, as the engine reports it
	DockerRootDir string
	Hostname      string
	// ServerVersion is the engine's release ("29.8.0", "20.10.24+dfsg1").
	ServerVersion string
	// FirewallBackend is the firewall driver the engine programs ("iptables", "nftables"); empty when the
	// engine does not say (before API 1.49, Docker 28.3).
	FirewallBackend string
}

// EngineFacts reads them (one info call).
func (c *Client) EngineFacts(ctx context.Context) (EngineFacts, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.Info(cctx, client.InfoOptions{})
	if err != nil {
		return EngineFacts{}, mapErr("reading engine info", err)
	}
	f := EngineFacts{NodeID: res.Info.Swarm.NodeID, NodeAddr: res.Info.Swarm.NodeAddr,
		DockerRootDir: res.Info.DockerRootDir, Hostname: res.Info.Name, ServerVersion: res.Info.ServerVersion}
	if fw := res.Info.FirewallBackend; fw != nil {
		f.FirewallBackend = fw.Driver
	}
	return f, nil
}

// TunnelEndpoint is one endpoint of a network as the managers' network database gossips it: the task (or
// node sandbox) and the address of the node carrying its overlay traffic (the VXLAN tunnel endpoint, which
// is the node's data-path address).
type TunnelEndpoint struct {
	Service    string
	Name       string
	EndpointIP string
	HostIP     string
	// Network is the network's name (DataPathEndpoints fills it).
	Network string
	// NodeID is the node of the task the endpoint belongs to, when it is a service task's and the task is
	// listed (DataPathEndpoints fills it); empty for a node's ingress sandbox (engines up to 20.10 gossip
	// those as service "" tasks named ingress-endpoint) and for a task already gone.
	NodeID string
}

// DataPathEndpoints are the tunnel endpoints of every swarm-scope overlay network that the engine we talk to
// has joined (a node has the endpoint tables of its own networks only), each service task's attributed to
// its node. A task's tunnel endpoint is its node's data-path address, which the API shows nowhere else:
// engines up to 20.10 also gossip every node's ingress sandbox, engines 29 and later do not (their verbose
// ingress inspect has Peers, whose addresses are the nodes' gossip, that is advertise, addresses), so there a
// node's data-path address is seen only through a task of a service on a network this node also joined.
// One network list, one verbose inspect per overlay network, one task list.
func (c *Client) DataPathEndpoints(ctx context.Context) ([]TunnelEndpoint, error) {
	nets, err := c.Networks(ctx)
	if err != nil {
		return nil, err
	}
	var out []TunnelEndpoint
	for _, n := range nets {
		if n.Scope != "swarm" {
			continue
		}
		eps, err := c.NetworkTunnelEndpoints(ctx, n.ID)
		if errors.Is(err, ErrNotFound) {
			continue // removed since the list: it has no endpoints to show
		}
		if err != nil {
			return nil, err
		}
		for _, e := range eps {
			e.Network = n.Name
			out = append(out, e)
		}
	}
	if len(out) == 0 {
		return out, nil
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.TaskList(cctx, client.TaskListOptions{})
	if err != nil {
		return nil, mapErr("listing tasks", err)
	}
	nodeOf := make(map[string]string, len(res.Items))
	for _, t := range res.Items {
		nodeOf[t.ID] = t.NodeID
	}
	for i := range out {
		// a task's endpoint is named after its container: <service>.<slot or node ID>.<task ID>
		if dot := strings.LastIndexByte(out[i].Name, '.'); dot >= 0 && out[i].Service != "" {
			out[i].NodeID = nodeOf[out[i].Name[dot+1:]]
		}
	}
	return out, nil
}

// NetworkTunnelEndpoints reads a network verbosely (one API call) and returns every endpoint the engine knows
// with its tunnel endpoint ("Host IP"). On the ingress network every node with a routing-mesh sandbox has
// one, so it shows each node's data-path address, which the API shows nowhere else.
//
// The call is made directly rather than through the SDK's NetworkInspect: engines up to at least 20.10 print
// an empty VIP as "<nil>", which the SDK's typed decoding rejects.
func (c *Client) NetworkTunnelEndpoints(ctx context.Context, networkID string) ([]TunnelEndpoint, error) {
	doing := fmt.Sprintf("inspecting network %s verbosely", short(networkID))
	d, ok := c.api.(interface {
		Dialer() func(context.Context) (net.Conn, error)
	})
	if !ok {
		return nil, fmt.Errorf("%s: the engine client cannot dial the daemon directly", doing)
	}
	dial := d.Dialer()
	hc := &http.Client{Transport: &http.Transport{
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return dial(ctx) },
		DisableKeepAlives: true,
	}}
	path := "/networks/" + url.PathEscape(networkID) + "?verbose=true&scope=swarm"
	if v := c.api.ClientVersion(); v != "" {
		path = "/v" + v + path
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://docker"+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", doing, ErrUnreachable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxVerboseNetworkBytes))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("%s: %w", doing, ErrNotFound)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("%s: engine answered %s: %s", doing, resp.Status, strings.TrimSpace(string(body)))
	}
	var raw struct {
		Services map[string]struct {
			Tasks []struct {
				Name       string
				EndpointIP string
				Info       map[string]string
			}
		}
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", doing, err)
	}
	var out []TunnelEndpoint
	for svc, s := range raw.Services {
		for _, t := range s.Tasks {
			out = append(out, TunnelEndpoint{Service: svc, Name: t.Name, EndpointIP: t.EndpointIP, HostIP: t.Info["Host IP"]})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].HostIP != out[j].HostIP {
			return out[i].HostIP < out[j].HostIP
		}
		return out[i].EndpointIP < out[j].EndpointIP
	})
	return out, nil
}

// maxVerboseNetworkBytes bounds a verbose network inspect: a few hundred bytes per endpoint, so 16 MiB is
// tens of thousands of tasks.
const maxVerboseNetworkBytes = 16 << 20
