package swarm

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/swarmguard/swarmguard/sensitive"
)

// Cluster is the swarm-wide state swarmguard reads.
type Cluster struct {
	ID                     string
	CreatedAt              time.Time
	UpdatedAt              time.Time
	Version                uint64
	NodeCertExpiry         time.Duration
	AutoLock               bool
	TrustRootPEM           string
	RootRotationInProgress bool
	ForceRotate            uint64
	ExternalCAs            int
	DataPathPort           uint32
	DefaultAddrPool        []string
	SubnetSize             uint32
	WorkerToken            sensitive.Value
	ManagerToken           sensitive.Value
}

// Node is one member of the swarm.
type Node struct {
	ID            string
	Hostname      string
	Role          string // manager | worker
	Leader        bool
	State         string // ready | down | unknown | disconnected
	StateMessage  string
	Availability  string // active | pause | drain
	EngineVersion string
	Addr          string // the node's address as the managers see it (Status.Addr)
	ManagerAddr   string // ManagerStatus.Addr, host:port of the raft/control listener; empty for workers
	Reachability  string // managers: reachable | unreachable | unknown
	Labels        map[string]string
	CreatedAt     time.Time
	// UpdatedAt is when the node object last changed; for a down node it is the best known "down since".
	UpdatedAt time.Time
	// TLS is what the node reports of its certificate: the trust root it holds and its issuer.
	TrustRootPEM    string
	IssuerSubject   []byte
	IssuerPublicKey []byte
}

// Cluster reads the swarm object (one API call).
func (c *Client) Cluster(ctx context.Context) (Cluster, error) {
	sw, err := c.inspectSwarm(ctx)
	if err != nil {
		return Cluster{}, err
	}
	return clusterFrom(sw), nil
}

func (c *Client) inspectSwarm(ctx context.Context) (swarmtypes.Swarm, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.SwarmInspect(cctx, client.SwarmInspectOptions{})
	if err != nil {
		return swarmtypes.Swarm{}, mapErr("inspecting swarm", err)
	}
	return res.Swarm, nil
}

func clusterFrom(sw swarmtypes.Swarm) Cluster {
	cl := Cluster{
		ID:                     sw.ID,
		CreatedAt:              sw.CreatedAt,
		UpdatedAt:              sw.UpdatedAt,
		Version:                sw.Version.Index,
		NodeCertExpiry:         sw.Spec.CAConfig.NodeCertExpiry,
		AutoLock:               sw.Spec.EncryptionConfig.AutoLockManagers,
		TrustRootPEM:           sw.TLSInfo.TrustRoot,
		RootRotationInProgress: sw.RootRotationInProgress,
		ForceRotate:            sw.Spec.CAConfig.ForceRotate,
		ExternalCAs:            len(sw.Spec.CAConfig.ExternalCAs),
		DataPathPort:           sw.DataPathPort,
		SubnetSize:             sw.SubnetSize,
		WorkerToken:            sensitive.New(sw.JoinTokens.Worker),
		ManagerToken:           sensitive.New(sw.JoinTokens.Manager),
	}
	for _, p := range sw.DefaultAddrPool {
		cl.DefaultAddrPool = append(cl.DefaultAddrPool, p.String())
	}
	return cl
}

// Nodes lists every node (one API call), sorted managers first, then by hostname.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.NodeList(cctx, client.NodeListOptions{})
	if err != nil {
		return nil, mapErr("listing nodes", err)
	}
	nodes := make([]Node, 0, len(res.Items))
	for _, n := range res.Items {
		nodes = append(nodes, nodeFrom(n))
	}
	sort.SliceStable(nodes, func(i, j int) bool {
		if nodes[i].Role != nodes[j].Role {
			return nodes[i].Role == "manager"
		}
		if nodes[i].Hostname != nodes[j].Hostname {
			return nodes[i].Hostname < nodes[j].Hostname
		}
		return nodes[i].ID < nodes[j].ID
	})
	return nodes, nil
}

func nodeFrom(n swarmtypes.Node) Node {
	out := Node{
		ID:              n.ID,
		Hostname:        n.Description.Hostname,
		Role:            string(n.Spec.Role),
		State:           string(n.Status.State),
		StateMessage:    n.Status.Message,
		Availability:    string(n.Spec.Availability),
		EngineVersion:   n.Description.Engine.EngineVersion,
		Addr:            n.Status.Addr,
		Labels:          n.Spec.Labels,
		CreatedAt:       n.CreatedAt,
		UpdatedAt:       n.UpdatedAt,
		TrustRootPEM:    n.Description.TLSInfo.TrustRoot,
		IssuerSubject:   n.Description.TLSInfo.CertIssuerSubject,
		IssuerPublicKey: n.Description.TLSInfo.CertIssuerPublicKey,
	}
	if m := n.ManagerStatus; m != nil {
		out.Leader = m.Leader
		out.ManagerAddr = m.Addr
		out.Reachability = string(m.Reachability)
	}
	return out
}

// maxSpecRetries bounds how often a swarm spec update re-reads after losing a compare-and-swap.
const maxSpecRetries = 5

// RotateFlags asks SwarmUpdate to rotate credentials along with the spec change.
type RotateFlags struct {
	WorkerToken  bool
	ManagerToken bool
	UnlockKey    bool
}

// updateSwarm reads the swarm, lets mutate change its spec, and writes it with the version it read
// (compare-and-swap), re-reading and trying again when another writer got there first. mutate may return
// errNoChange to skip the write (the work is already done). It returns the swarm as read before the write.
func (c *Client) updateSwarm(ctx context.Context, doing string, mutate func(*swarmtypes.Spec, swarmtypes.Swarm) error, rot RotateFlags) (swarmtypes.Swarm, error) {
	var lastErr error
	for attempt := 0; attempt < maxSpecRetries; attempt++ {
		sw, err := c.inspectSwarm(ctx)
		if err != nil {
			return sw, err
		}
		spec := sw.Spec
		if mutate != nil {
			if err := mutate(&spec, sw); err != nil {
				if errors.Is(err, errNoChange) {
					return sw, nil
				}
				return sw, err
			}
		}
		cctx, cancel := c.call(ctx)
		_, err = c.api.SwarmUpdate(cctx, client.SwarmUpdateOptions{
			Version:                sw.Version,
			Spec:                   spec,
			RotateWorkerToken:      rot.WorkerToken,
			RotateManagerToken:     rot.ManagerToken,
			RotateManagerUnlockKey: rot.UnlockKey,
		})
		cancel()
		if err == nil {
			return sw, nil
		}
		lastErr = mapErr(doing, err)
		if !errors.Is(lastErr, ErrConflict) {
			return sw, lastErr
		}
	}
	return swarmtypes.Swarm{}, fmt.Errorf("%s: gave up after %d conflicting writes: %w", doing, maxSpecRetries, lastErr)
}

// errNoChange lets a mutate function of updateSwarm say the spec already is as wanted.
var errNoChange = errors.New("no change")
