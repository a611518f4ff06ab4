package autolock

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

// lookupTimeout bounds the name resolution of the Vault address for the co-location warning: it is a
// warning, and must not hold up a rotation.
const lookupTimeout = 2 * time.Second

// VaultColocation tells whether the Vault at addr looks like a service of this same swarm. After a full
// restart every manager of an autolocked swarm is locked, no service runs, and a Vault that is one of
// them cannot start to give the key back: the escrow would be out of reach exactly when it is needed.
//
// It cannot be certain from the outside (a load balancer may front anything), so it looks for evidence
// and reports each piece it finds:
//
//  1. the host is a service's name, as other services reach it: "vault", "<stack>_vault" or
//     "tasks.vault";
//  2. the host (or an address it resolves to) is a service's virtual IP;
//  3. the port is published by a service and the host is one of this swarm's nodes (by address or
//     hostname) or a loopback address: the routing mesh answers a published port on every node;
//  4. the port is published by a service whose image is Vault or OpenBao, wherever the host is (a load
//     balancer in front of the nodes).
//
// resolved holds the addresses the host resolves to, if known. Nothing found means no warning, not a
// proof that Vault runs elsewhere.
func VaultColocation(addr string, services []swarm.ServiceEndpoint, nodes []swarm.Node, resolved []string) []string {
	host, port, ok := vaultHostPort(addr)
	if !ok {
		return nil
	}
	ips := map[string]bool{}
	if a, err := netip.ParseAddr(host); err == nil {
		ips[a.Unmap().String()] = true
	}
	for _, r := range resolved {
		if a, err := netip.ParseAddr(r); err == nil {
			ips[a.Unmap().String()] = true
		}
	}
	onNode := host == "localhost"
	for ip := range ips {
		if a, _ := netip.ParseAddr(ip); a.IsLoopback() {
			onNode = true
		}
	}
	for _, n := range nodes {
		if strings.EqualFold(n.Hostname, host) || ips[n.Addr] || ips[hostOnly(n.ManagerAddr)] {
			onNode = true
		}
	}
	var out []string
	for _, s := range services {
		if why := serviceEvidence(addr, host, port, ips, onNode, s); why != "" {
			out = append(out, why)
		}
	}
	return out
}

// serviceEvidence is the strongest reason to think the Vault at addr is service s, or "".
func serviceEvidence(addr, host string, port uint32, ips map[string]bool, onNode bool, s swarm.ServiceEndpoint) string {
	names := []string{strings.ToLower(s.Name), "tasks." + strings.ToLower(s.Name)}
	if s.Stack != "" && strings.HasPrefix(s.Name, s.Stack+"_") {
		short := strings.ToLower(strings.TrimPrefix(s.Name, s.Stack+"_"))
		names = append(names, short, "tasks."+short)
	}
	for _, n := range names {
		if host == n {
			return fmt.Sprintf("the vault address %q names service %q of this swarm", addr, s.Name)
		}
	}
	for _, vip := range s.VirtualIPs {
		if ips[vip] {
			return fmt.Sprintf("the vault address %q is virtual IP %s of service %q of this swarm", addr, vip, s.Name)
		}
	}
	published := false
	for _, p := range s.PublishedPorts {
		published = published || p == port
	}
	img := strings.ToLower(s.Image)
	switch {
	case !published:
		return ""
	case onNode:
		return fmt.Sprintf("the vault address %q is a node of this swarm and port %d is published by service %q", addr, port, s.Name)
	case strings.Contains(img, "vault") || strings.Contains(img, "openbao"):
		return fmt.Sprintf("port %d of the vault address %q is published by service %q of this swarm, which runs image %s", port, addr, s.Name, s.Image)
	}
	return ""
}

// vaultHostPort splits a Vault URL into a lower-case host and a port (the scheme's default when none).
func vaultHostPort(addr string) (string, uint32, bool) {
	u, err := url.Parse(addr)
	if err != nil || u.Host == "" {
		return "", 0, false
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	p := u.Port()
	if p == "" {
		p = "443"
		if u.Scheme == "http" {
			p = "80"
		}
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil {
		return "", 0, false
	}
	return host, uint32(n), true
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// colocationWarnings gathers what VaultColocation needs. A failed read is logged by the caller as no
// warning: the check is advice, and must never block the escrow.
func (a *Autolock) colocationWarnings(ctx context.Context, nodes []swarm.Node) []string {
	if a.VaultAddr == "" {
		return nil
	}
	services, err := a.Engine.ServiceEndpoints(ctx)
	if err != nil {
		return []string{fmt.Sprintf("could not list services to check whether vault runs in this swarm: %v", err)}
	}
	var resolved []string
	if host, _, ok := vaultHostPort(a.VaultAddr); ok && a.LookupHost != nil {
		if _, err := netip.ParseAddr(host); err != nil {
			lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
			resolved, _ = a.LookupHost(lctx, host)
			cancel()
		}
	}
	return VaultColocation(a.VaultAddr, services, nodes, resolved)
}
