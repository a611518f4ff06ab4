package cluster

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/swarmguard/swarmguard/guard"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
)

// ListenProbe is one TLS probe of the swarm port on an address that is no node's management address (a
// data-path address, from the ingress network's tunnel endpoints). A manager that listens on every
// interface answers there; one bound to its advertise address does not.
type ListenProbe struct {
	Addr string
	// NodeID is the node whose certificate (verified against the swarm's root CA) answered; "" when none did.
	NodeID string
	// Refused means nothing listens there.
	Refused bool
	// Err is any other outcome (a timeout, a failed handshake).
	Err string
}

// swarmPort is the port managers serve the swarm's control plane on.
const swarmPort = "2377"

// maxListenProbes bounds the probes run at once.
const maxListenProbes = 8

// listenProbeTargets are the tunnel addresses that are no node's management address (nor the local node's
// own data-path address, known from its state file).
func listenProbeTargets(in ReportInput) []string {
	mgmt := map[string]bool{}
	for _, n := range in.Nodes {
		for _, a := range mgmtAddrs(n) {
			mgmt[a] = true
		}
	}
	seen := map[string]bool{}
	if in.Local.Err == nil && in.Local.DataPathAddr != "" {
		seen[addrHost(in.Local.DataPathAddr)] = true // known from the state file: no probe needed
	}
	var out []string
	for _, t := range in.Tunnels {
		if t.HostIP == "" || mgmt[t.HostIP] || seen[t.HostIP] {
			continue
		}
		seen[t.HostIP] = true
		out = append(out, t.HostIP)
	}
	sort.Strings(out)
	return out
}

// probeListenAddrs probes port 2377 on every data-path address that is not a management address.
func probeListenAddrs(ctx context.Context, prober pki.Prober, in ReportInput) []ListenProbe {
	if in.TunnelsErr != nil || in.NodesErr != nil {
		return nil
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(in.Cluster.TrustRootPEM)) {
		return nil
	}
	targets := listenProbeTargets(in)
	out := make([]ListenProbe, len(targets))
	sem := make(chan struct{}, maxListenProbes)
	var wg sync.WaitGroup
	for i, ip := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			p := ListenProbe{Addr: net.JoinHostPort(ip, swarmPort)}
			var chain []*x509.Certificate
			var err error
			if perr := guard.Do("probing "+p.Addr, func() { chain, err = prober.Probe(ctx, p.Addr, roots) }); perr != nil {
				chain, err = nil, perr // this probe's error: the check says "not determinable" for it
			}
			switch {
			case err == nil && len(chain) > 0:
				p.NodeID = chain[0].Subject.CommonName // swarm node certificates name the node ID
			case errors.Is(err, syscall.ECONNREFUSED):
				p.Refused = true
			case err != nil:
				p.Err = err.Error()
			}
			out[i] = p
		}()
	}
	wg.Wait()
	return out
}

// checkListenAddr is CIS 7.2: every manager's swarm port bound to a specific address. Two sources: the
// engine's own state file for the manager swarmguard runs beside (its ListenAddr), and for the others a TLS
// probe of port 2377 on the nodes' data-path addresses (the ingress network's tunnel endpoints): a manager
// listening on every interface answers on its data-path address too, with its own certificate. A manager
// whose data path shares its management address has no other known address to probe: not determinable.
func checkListenAddr(in ReportInput) report.Check {
	c := report.Check{ID: "swarm.listen-address", CIS: "7.2", Title: "Swarm ports are bound to a specific interface",
		Remediation: "Give each manager a specific listen address: `docker swarm init|join --listen-addr <IP>:2377`; " +
			"an existing manager must be demoted, leave and rejoin with it. Managers whose data path shares the management " +
			"address can be verified only by running `swarmguard report` on their host (or by mounting " +
			"/var/lib/docker/swarm/docker-state.json read-only into the controller)."}
	if in.NodesErr != nil {
		return c.Errored(in.NodesErr)
	}
	local := in.Local
	tunnelIPs := map[string]bool{}
	for _, t := range in.Tunnels {
		tunnelIPs[t.HostIP] = true
	}
	answered := map[string][]string{} // node ID -> data-path addresses it answered on
	quiet := in.ListenProbed
	var probeNotes []string
	for _, p := range in.ListenProbes {
		switch {
		case p.NodeID != "":
			answered[p.NodeID] = append(answered[p.NodeID], p.Addr)
			probeNotes = append(probeNotes, p.Addr+" answered as "+p.NodeID)
		case p.Refused:
			probeNotes = append(probeNotes, p.Addr+" refused")
		default:
			quiet = false
			probeNotes = append(probeNotes, p.Addr+": "+p.Err)
		}
	}
	// Nodes (any role) whose data path is separate and not known otherwise: their data-path addresses are the
	// probed ones; all are accounted for when there are as many probed addresses as such nodes.
	separate := 0
	for _, n := range in.Nodes {
		if n.ID == local.NodeID && local.Err == nil {
			continue
		}
		shared := false
		for _, a := range mgmtAddrs(n) {
			shared = shared || tunnelIPs[a]
		}
		if !shared {
			separate++
		}
	}
	accounted := in.ListenProbed && len(in.ListenProbes) >= separate

	var failed, unknown, passed []string
	for _, n := range in.Nodes {
		if n.Role != "manager" {
			continue
		}
		name := nodeName(n)
		e := report.Evidence{Subject: "manager " + name, Facts: map[string]string{"advertise_addr": report.OrUnknown(n.ManagerAddr)}}
		shared := false
		for _, a := range mgmtAddrs(n) {
			shared = shared || tunnelIPs[a]
		}
		switch {
		case n.ID == local.NodeID && local.Err == nil:
			e.Facts["listen_addr"], e.Facts["source"] = report.OrUnknown(local.ListenAddr), local.Source
			if unspecified(local.ListenAddr) {
				e.Status, e.Note = report.StatusFail, "listens on every interface"
			} else {
				e.Status, e.Note = report.StatusPass, "bound to "+addrHost(local.ListenAddr)
			}
		case len(answered[n.ID]) > 0:
			e.Facts["answers_on"] = strings.Join(answered[n.ID], ", ")
			e.Facts["source"] = "TLS probe of its data-path address"
			e.Status, e.Note = report.StatusFail, "answers on an address other than its advertise address: not bound to one interface"
		case !in.ListenProbed:
			e.Status, e.Note = report.StatusInfo, "not determinable: "+listenUnknownWhy(in, local)
		case shared:
			e.Status, e.Note = report.StatusInfo, "not determinable from here: its data path shares the management address, so no other address of it is known to probe"
		case quiet && accounted:
			e.Facts["source"] = "TLS probes of the nodes' data-path addresses"
			e.Status, e.Note = report.StatusPass, "does not answer on its data-path address"
		default:
			e.Status, e.Note = report.StatusInfo, "not determinable: not every data-path address could be probed"
		}
		switch e.Status {
		case report.StatusFail:
			failed = append(failed, name)
		case report.StatusPass:
			passed = append(passed, name)
		default:
			unknown = append(unknown, name)
		}
		c.Evidence = append(c.Evidence, e)
	}
	if len(probeNotes) > 0 {
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "probes of port " + swarmPort, Facts: map[string]string{"results": strings.Join(probeNotes, "; ")},
			Note: "on the data-path addresses (ingress tunnel endpoints) that are no node's management address"})
	}
	switch {
	case len(failed) > 0:
		c.Status, c.Summary = report.StatusFail, "not bound to one interface: "+strings.Join(failed, ", ")
	case len(unknown) > 0:
		c.Status, c.Summary = report.StatusInfo, "not determinable for "+strings.Join(unknown, ", ")
		if len(passed) > 0 {
			c.Summary += "; bound: " + strings.Join(passed, ", ")
		}
	case len(passed) == 0:
		c.Status, c.Summary = report.StatusInfo, "no managers listed"
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%d manager(s) bound to a specific address: %s", len(passed), strings.Join(passed, ", "))
	}
	return c
}

func listenUnknownWhy(in ReportInput, local LocalSwarmState) string {
	switch {
	case in.TunnelsErr != nil:
		return "no data-path address to probe (" + in.TunnelsErr.Error() + ")"
	case local.Err != nil:
		return "the engine's state file is unreadable here (" + local.Err.Error() + ") and no probe ran"
	}
	return "no probe ran"
}
