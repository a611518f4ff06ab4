package swarm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/moby/moby/client"
)

// MinAPIVersion and MaxAPIVersion are the Engine API versions this build can speak; the client negotiates
// the highest one both sides know on its first request and never pins one.
const (
	MinAPIVersion = client.MinAPIVersion
	MaxAPIVersion = client.MaxAPIVersion
)

// DefaultAPITimeout bounds each Engine API call when the caller sets no timeout of its own.
const DefaultAPITimeout = 30 * time.Second

// Options says how to reach the engine.
type Options struct {
	// Host is the daemon address (unix:///var/run/docker.sock, tcp://host:2376). Empty means DOCKER_HOST,
	// else the local socket. TLS follows DOCKER_TLS_VERIFY and DOCKER_CERT_PATH as the docker CLI does.
	Host string
	// APITimeout bounds every single API call.
	APITimeout time.Duration
}

// Client is the Engine API adapter. It is safe for concurrent use.
type Client struct {
	api     engineAPI
	timeout time.Duration
}

// New builds a client; it does not contact the daemon (see Check).
func New(opts Options) (*Client, error) {
	cliOpts := []client.Opt{client.WithTLSClientConfigFromEnv(), client.WithHostFromEnv()}
	if opts.Host != "" {
		cliOpts = append(cliOpts, client.WithHost(opts.Host))
	}
	api, err := client.New(cliOpts...)
	if err != nil {
		return nil, fmt.Errorf("configuring docker client for %q: %w (check --host, DOCKER_HOST, DOCKER_CERT_PATH)", hostOf(opts.Host), err)
	}
	return newWithAPI(api, opts.APITimeout), nil
}

func newWithAPI(api engineAPI, timeout time.Duration) *Client {
	if timeout <= 0 {
		timeout = DefaultAPITimeout
	}
	return &Client{api: api, timeout: timeout}
}

func hostOf(h string) string {
	if h != "" {
		return h
	}
	if e := os.Getenv("DOCKER_HOST"); e != "" {
		return e
	}
	return client.DefaultDockerHost
}

// Host is the daemon address in use.
func (c *Client) Host() string { return c.api.DaemonHost() }

// APIVersion is the API version in use (the negotiated one after the first call).
func (c *Client) APIVersion() string { return c.api.ClientVersion() }

// Close releases the client's connections.
func (c *Client) Close() error { return c.api.Close() }

// call gives one API call its own deadline.
func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// Self is what the engine we talk to says about itself.
type Self struct {
	NodeID        string
	NodeAddr      string
	Role          string // "manager" or "worker"
	State         string // local node state: active, locked, inactive, pending, error
	EngineVersion string
	APIVersion    string
	Hostname      string
}

// Check contacts the engine and makes sure it is a usable swarm manager. Its error is a *ConnectError whose
// Unwrap is ErrUnreachable, ErrNotInSwarm, ErrNotManager or ErrLocked, with a hint of what to do.
func (c *Client) Check(ctx context.Context) (Self, error) {
	s, err := c.Self(ctx)
	if err != nil {
		return s, err
	}
	host := c.Host()
	switch s.State {
	case "active":
	case "locked":
		return s, &ConnectError{Host: host, Err: ErrLocked, Hint: "unlock it with `docker swarm unlock` and the unlock key (swarmguard escrows it to Vault), then retry"}
	case "inactive", "":
		return s, &ConnectError{Host: host, Err: ErrNotInSwarm, Hint: "point --host or DOCKER_HOST at a swarm manager, or create a swarm with `docker swarm init`"}
	default:
		return s, &ConnectError{Host: host, Err: ErrNotInSwarm, Hint: fmt.Sprintf("the node is in state %q; wait for it to join, or point --host at a healthy manager", s.State)}
	}
	if s.Role != "manager" {
		return s, &ConnectError{Host: host, Err: ErrNotManager, Hint: "run swarmguard against a manager: set --host or DOCKER_HOST to a manager's socket"}
	}
	return s, nil
}

// Self asks the engine who it is, without judging it.
func (c *Client) Self(ctx context.Context) (Self, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	res, err := c.api.Info(cctx, client.InfoOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) || errors.Is(err, context.DeadlineExceeded) {
			return Self{}, &ConnectError{Host: c.Host(), Err: ErrUnreachable, Cause: err,
				Hint: "is the docker daemon running? check --host / DOCKER_HOST and --api-timeout"}
		}
		return Self{}, mapErr("reading engine info", err)
	}
	in := res.Info
	s := Self{
		NodeID:        in.Swarm.NodeID,
		NodeAddr:      in.Swarm.NodeAddr,
		State:         string(in.Swarm.LocalNodeState),
		EngineVersion: in.ServerVersion,
		APIVersion:    c.api.ClientVersion(),
		Hostname:      in.Name,
	}
	switch {
	case in.Swarm.ControlAvailable:
		s.Role = "manager"
	case in.Swarm.LocalNodeState == "active":
		s.Role = "worker"
	}
	return s, nil
}
