package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// LocalSwarmState is the swarm settings the engine we talk to keeps in <data-root>/swarm/docker-state.json:
// the only place its listen address and data-path address can be read (the Engine API does not show them).
// It can be read only when swarmguard runs on that engine's host.
type LocalSwarmState struct {
	NodeID        string
	Hostname      string
	Source        string // the file it was read from
	ListenAddr    string
	AdvertiseAddr string
	DataPathAddr  string
	DataPathPort  uint32
	// Err says why the state could not be read; the other fields are then empty.
	Err error
}

// ParseLocalSwarmState reads docker-state.json and checks that it belongs to the engine described by facts
// (its advertise address must be the engine's node address), so a file of another engine on the same host
// is never taken for this one's.
func ParseLocalSwarmState(data []byte, source string, facts swarm.EngineFacts) LocalSwarmState {
	st := LocalSwarmState{NodeID: facts.NodeID, Hostname: facts.Hostname, Source: source}
	var raw struct {
		ListenAddr    string
		AdvertiseAddr string
		DataPathAddr  string
		DataPathPort  uint32
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		st.Err = fmt.Errorf("parsing %s: %w", source, err)
		return st
	}
	adv := addrHost(raw.AdvertiseAddr)
	if facts.NodeAddr != "" && adv != "" && adv != facts.NodeAddr && !looksLikeInterface(adv) {
		st.Err = fmt.Errorf("%s advertises %s but the engine reports node address %s: it belongs to another engine", source, raw.AdvertiseAddr, facts.NodeAddr)
		return st
	}
	st.ListenAddr, st.AdvertiseAddr, st.DataPathAddr, st.DataPathPort = raw.ListenAddr, raw.AdvertiseAddr, raw.DataPathAddr, raw.DataPathPort
	return st
}

func addrHost(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

// looksLikeInterface says whether an address is an interface name (eth0) rather than an IP.
func looksLikeInterface(h string) bool { return h != "" && net.ParseIP(h) == nil }

// unspecified says whether a listen address binds every interface (0.0.0.0, ::, or no host).
func unspecified(addr string) bool {
	h := addrHost(addr)
	if h == "" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsUnspecified()
}

// maxManagers is the largest manager count CIS 7.1 and Docker's documentation accept: more managers make
// every Raft write slower without adding useful fault tolerance.
const maxManagers = 7

// checkManagerCount is CIS 7.1.
func checkManagerCount(nodes []swarm.Node, err error) report.Check {
	c := report.Check{ID: "swarm.manager-count", CIS: "7.1", Title: "The swarm has an odd number of managers, at most 7",
		Remediation: "Run an odd number of managers, 3 or 5 (7 at most): `docker node promote` / `docker node demote`. " +
			"A single manager has no fault tolerance; an even count tolerates no more failures than one fewer."}
	if err != nil {
		return c.Errored(err)
	}
	managers, unreachable := 0, 0
	for _, n := range nodes {
		if n.Role != "manager" {
			continue
		}
		managers++
		facts := map[string]string{"reachability": report.OrUnknown(n.Reachability), "addr": report.OrUnknown(n.ManagerAddr), "state": n.State}
		if n.Leader {
			facts["leader"] = "true"
		}
		if n.Reachability == "unreachable" {
			unreachable++
		}
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "manager " + nodeName(n), Facts: facts})
	}
	tolerate := (managers - 1) / 2
	c.Evidence = append(c.Evidence, report.Evidence{Subject: "swarm", Facts: map[string]string{
		"managers": strconv.Itoa(managers), "nodes": strconv.Itoa(len(nodes)),
		"unreachable_managers": strconv.Itoa(unreachable), "failures_tolerated": strconv.Itoa(tolerate)}})
	switch {
	case managers > maxManagers:
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("%d managers: more than %d", managers, maxManagers)
	case managers <= 1:
		c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("%d manager: no fault tolerance", managers)
	case managers%2 == 0:
		c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("%d managers: an even count tolerates only %d failure(s), as %d would", managers, tolerate, managers-1)
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%d managers, tolerating %d failure(s)", managers, tolerate)
	}
	return c
}

// checkDataPathSeparated is CIS 7.9: management and data plane traffic on different addresses. A node's
// management address is its Status.Addr / ManagerStatus.Addr; its data-path address shows in three places:
//   - the engine's own state file, for the node swarmguard runs beside;
//   - a service task's tunnel endpoint on any overlay network the engine we talk to has joined, attributed to
//     the task's node (engines 29 and later show nothing else; swarmguard's stack runs a beacon task on every
//     node so that every node has one);
//   - a node's ingress sandbox, which engines up to 20.10 gossip as a task of service "" with no node: a
//     tunnel address that is a node's management address means that node is not separated, and when every
//     node left is accounted for by such addresses that are nobody's management address, all are.
//
// The verbose inspect's Peers are the nodes' gossip addresses, which are their advertise (management)
// addresses whatever their data path: they decide nothing here.
func checkDataPathSeparated(nodes []swarm.Node, nodesErr error, local LocalSwarmState, tunnels []swarm.TunnelEndpoint, tunnelsErr error) report.Check {
	c := report.Check{ID: "swarm.data-path-separated", CIS: "7.9", Title: "Management and data plane traffic are separated",
		Remediation: "Join each node with `--data-path-addr <address on the data network>` (different from --advertise-addr), " +
			"so that overlay (VXLAN) traffic does not share the management interface; a node must leave and rejoin to change it."}
	if nodesErr != nil {
		return c.Errored(nodesErr)
	}
	mgmtOf := map[string]string{} // management address -> node
	for _, n := range nodes {
		for _, a := range mgmtAddrs(n) {
			mgmtOf[a] = nodeName(n)
		}
	}
	byNode := map[string][]swarm.TunnelEndpoint{} // node ID -> its tasks' endpoints
	attributed := map[string]bool{}               // tunnel addresses some task puts on a known node
	sandboxIPs := map[string]bool{}               // tunnel addresses of ingress sandboxes (no node named)
	for _, t := range tunnels {
		switch {
		case t.HostIP == "":
		case t.NodeID != "":
			byNode[t.NodeID] = append(byNode[t.NodeID], t)
			attributed[t.HostIP] = true
		case t.Service == "":
			sandboxIPs[t.HostIP] = true
		}
	}
	localData := ""
	if local.Err == nil {
		localData = addrHost(local.DataPathAddr) // the local node's own, known from its state file
	}
	var unattributed []string // sandbox addresses that are nobody's management or known data-path address
	for ip := range sandboxIPs {
		if _, ok := mgmtOf[ip]; !ok && ip != localData && !attributed[ip] {
			unattributed = append(unattributed, ip)
		}
	}
	sort.Strings(unattributed)
	var failed, candidates, unobserved []string
	isCandidate := map[string]bool{}
	for _, n := range nodes {
		name := nodeName(n)
		mg := mgmtAddrs(n)
		e := report.Evidence{Subject: "node " + name, Facts: map[string]string{"management_addr": report.ListOrNone(mg)}}
		switch {
		case n.ID == local.NodeID && local.Err == nil:
			data := addrHost(local.DataPathAddr)
			e.Facts["data_path_addr"] = dataPathText(local.DataPathAddr)
			e.Facts["source"] = local.Source
			if data == "" || data == addrHost(local.AdvertiseAddr) || mgmtOf[data] != "" {
				e.Status, e.Note = report.StatusFail, "data path uses the management address"
				failed = append(failed, name)
			} else {
				e.Status, e.Note = report.StatusPass, "data path on "+data
			}
		case tunnelsErr != nil:
			e.Status, e.Note = report.StatusInfo, "not observable: "+tunnelsErr.Error()
			unobserved = append(unobserved, name)
		case len(byNode[n.ID]) > 0:
			t := byNode[n.ID][0]
			for _, x := range byNode[n.ID] {
				if slices.Contains(mg, x.HostIP) {
					t = x // one on the management address decides
					break
				}
			}
			e.Facts["data_path_addr"] = t.HostIP
			e.Facts["source"] = fmt.Sprintf("tunnel endpoint of task %s on network %s", t.Name, t.Network)
			if slices.Contains(mg, t.HostIP) || mgmtOf[t.HostIP] != "" {
				e.Status, e.Note = report.StatusFail, "its overlay tunnel endpoint is its management address "+t.HostIP
				failed = append(failed, name)
			} else {
				e.Status, e.Note = report.StatusPass, "data path on "+t.HostIP
			}
		default:
			shared := ""
			for _, a := range mg {
				if sandboxIPs[a] {
					shared = a
				}
			}
			if shared != "" {
				e.Facts["data_path_addr"] = shared
				e.Facts["source"] = "ingress network tunnel endpoint"
				e.Status, e.Note = report.StatusFail, "its ingress tunnel endpoint is its management address "+shared
				failed = append(failed, name)
			} else {
				candidates = append(candidates, name)
				isCandidate[e.Subject] = true
			}
		}
		c.Evidence = append(c.Evidence, e)
	}
	// Nodes left are separated if there are enough sandbox tunnel addresses that are nobody's management
	// address to account for them (a down node may have none).
	if len(candidates) > 0 {
		if len(unattributed) >= len(candidates) {
			for i := range c.Evidence {
				if !isCandidate[c.Evidence[i].Subject] {
					continue
				}
				e := &c.Evidence[i]
				e.Facts["data_path_addr"] = "one of " + strings.Join(unattributed, ", ")
				e.Facts["source"] = "ingress network tunnel endpoints"
				e.Status, e.Note = report.StatusPass, "its management address carries no overlay tunnel"
			}
		} else {
			for i := range c.Evidence {
				if !isCandidate[c.Evidence[i].Subject] {
					continue
				}
				c.Evidence[i].Status = report.StatusInfo
				c.Evidence[i].Note = "no overlay tunnel endpoint of this node is visible here (is it down? on engines 29 and later only a " +
					"service task on an overlay network this manager joined shows one: swarmguard's stack runs a beacon on every node): not determinable"
				unobserved = append(unobserved, strings.TrimPrefix(c.Evidence[i].Subject, "node "))
			}
		}
	}
	if len(tunnels) > 0 {
		per := map[string]map[string]bool{}
		for _, t := range tunnels {
			if t.HostIP == "" {
				continue
			}
			net := t.Network
			if net == "" {
				net = "ingress"
			}
			if per[net] == nil {
				per[net] = map[string]bool{}
			}
			per[net][t.HostIP] = true
		}
		nets := make([]string, 0, len(per))
		for n := range per {
			nets = append(nets, n)
		}
		sort.Strings(nets)
		for _, n := range nets {
			ips := make([]string, 0, len(per[n]))
			for ip := range per[n] {
				ips = append(ips, ip)
			}
			sort.Strings(ips)
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "network " + n, Facts: map[string]string{"tunnel_endpoints": strings.Join(ips, ", ")},
				Note: "the tunnel address of a task or routing-mesh sandbox is its node's data-path address"})
		}
	}
	switch {
	case len(failed) > 0:
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("data-plane traffic uses the management address on %s", strings.Join(failed, ", "))
	case len(unobserved) > 0:
		c.Status, c.Summary = report.StatusInfo, fmt.Sprintf("not determinable for %s", strings.Join(unobserved, ", "))
	case len(nodes) == 0:
		c.Status, c.Summary = report.StatusInfo, "no nodes listed"
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("all %d node(s) carry overlay traffic on an address other than their management address", len(nodes))
	}
	return c
}

// mgmtAddrs are a node's management addresses: the address the managers see it at, and its raft address.
func mgmtAddrs(n swarm.Node) []string {
	var out []string
	for _, a := range []string{n.Addr, addrHost(n.ManagerAddr)} {
		if a != "" && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out
}

func dataPathText(s string) string {
	if s == "" {
		return "none (the advertise address is used)"
	}
	return s
}

// Credential-looking environment variable names: a word anywhere in the name (DBPASSWORD too), a whole
// part between separators (BASIC_AUTH, DB_PASS), or a pair of parts (AWS_SECRET_ACCESS_KEY, API_KEY).
var (
	credentialSubstrings = []string{"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL", "PRIVATEKEY"}
	credentialParts      = map[string]bool{"PASS": true, "PWD": true, "AUTH": true, "KEY": false}
	credentialKeyPrefix  = map[string]bool{"API": true, "ACCESS": true, "PRIVATE": true, "SECRET": true, "ENCRYPTION": true,
		"SIGNING": true, "MASTER": true, "LICENSE": true, "CLIENT": true, "SSH": true, "TLS": true}
	// nonCredentialSuffixes name something about a credential that is not one (where to find it, its size).
	nonCredentialSuffixes = []string{"_FILE", "_PATH", "_DIR", "_URL", "_URI", "_HOST", "_PORT", "_USER", "_USERNAME",
		"_NAME", "_ENDPOINT", "_TTL", "_EXPIRY", "_LENGTH", "_ID", "_TYPE", "_HEADER", "_ENABLED"}
)

// LooksLikeCredential says whether an environment variable's name suggests it carries a credential. Names
// ending in _FILE point at a file (the Docker secrets convention) and are not credentials themselves.
func LooksLikeCredential(name string) bool {
	u := strings.ToUpper(name)
	if u == "PWD" || u == "OLDPWD" {
		return false // the shell's working directory
	}
	for _, suf := range nonCredentialSuffixes {
		if strings.HasSuffix(u, suf) {
			return false
		}
	}
	for _, w := range credentialSubstrings {
		if strings.Contains(u, w) {
			return true
		}
	}
	parts := strings.FieldsFunc(u, func(r rune) bool { return r == '_' || r == '-' || r == '.' })
	for i, p := range parts {
		if credentialParts[p] {
			return true
		}
		if p == "KEY" && i > 0 && credentialKeyPrefix[parts[i-1]] {
			return true
		}
	}
	return false
}

// checkSecretsInEnv is CIS 7.4. Evidence names the variables, never their values (the adapter drops them).
func checkSecretsInEnv(services []swarm.Service, err error) report.Check {
	c := report.Check{ID: "services.secrets", CIS: "7.4", Title: "Credentials are given to services as Docker secrets, not environment variables",
		Remediation: "Move each named variable into a Docker secret (`docker secret create`, `--secret`, or swarmguard's Vault sync) " +
			"and have the application read it from /run/secrets (many images accept NAME_FILE)."}
	if err != nil {
		return c.Errored(err)
	}
	flagged, withSecrets := 0, 0
	for _, s := range services {
		var names []string
		for _, n := range s.EnvNames {
			if LooksLikeCredential(n) {
				names = append(names, n)
			}
		}
		if len(s.SecretNames) > 0 {
			withSecrets++
		}
		if len(names) == 0 {
			continue
		}
		flagged++
		sort.Strings(names)
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "service " + s.Name, Status: report.StatusFail, Facts: map[string]string{
			"env_names": strings.Join(names, ", "), "docker_secrets": strconv.Itoa(len(s.SecretNames))},
			Note: "credential-like environment variables (values not shown)"})
	}
	c.Evidence = append(c.Evidence, report.Evidence{Subject: "swarm", Facts: map[string]string{
		"services": strconv.Itoa(len(services)), "services_with_docker_secrets": strconv.Itoa(withSecrets),
		"services_with_credential_env": strconv.Itoa(flagged)}})
	if flagged > 0 {
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("%d service(s) pass credential-like environment variables", flagged)
	} else {
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%d service(s), none with credential-like environment variables", len(services))
	}
	return c
}

// nodeName is how evidence names a node: its hostname, else its ID.
func nodeName(n swarm.Node) string {
	if n.Hostname != "" {
		return n.Hostname
	}
	return n.ID
}

// Section is the swarm-level checks of the compliance report, those of no single domain: CIS 7.1 (manager
// count), 7.2 (listen address), 7.4 (credentials in environment variables) and 7.9 (data path separated).
func Section(in ReportInput) report.Section {
	return report.Section{Checks: []report.Check{
		checkManagerCount(in.Nodes, in.NodesErr),
		checkListenAddr(in),
		checkSecretsInEnv(in.Services, in.ServicesErr),
		checkDataPathSeparated(in.Nodes, in.NodesErr, in.Local, in.Tunnels, in.TunnelsErr),
		checkFirewallBackend(in.Nodes, in.NodesErr, in.Engine, in.EngineErr, in.Networks),
	}}
}

// checkFirewallBackend says which firewall backend each engine programs, where the engine tells: the Engine
// API shows it (FirewallBackend, from API 1.49, Docker 28.3) only for the engine it is asked, so the other
// nodes show as not observable from here (run the report against them). Encrypted overlay networks on the
// nftables backend are experimental in Docker 29, so nftables with encrypted overlays is a warning.
func checkFirewallBackend(nodes []swarm.Node, nodesErr error, eng swarm.EngineFacts, engErr error, nets []swarm.Network) report.Check {
	c := report.Check{ID: "engine.firewall-backend", Title: "The firewall backend each engine uses is known and supports encrypted overlays",
		Remediation: "Run the report against each node (DOCKER_HOST) to see its backend; on nftables, keep encrypted overlay networks " +
			"on iptables engines (dockerd --firewall-backend=iptables) until nftables support for them is no longer experimental."}
	if engErr != nil {
		return c.Errored(engErr)
	}
	encrypted := 0
	for _, n := range nets {
		if n.Encrypted {
			encrypted++
		}
	}
	local := eng.Hostname
	for _, n := range nodes {
		if n.ID == eng.NodeID {
			local = nodeName(n)
		}
	}
	e := report.Evidence{Subject: "node " + report.OrUnknown(local), Facts: map[string]string{"engine_version": report.OrUnknown(eng.ServerVersion),
		"firewall_backend": report.OrUnknown(eng.FirewallBackend), "source": "the engine's /info (the node this report asked)"}}
	switch eng.FirewallBackend {
	case "":
		e.Status, e.Note = report.StatusInfo, "this engine does not report its firewall backend (before API 1.49, Docker 28.3: iptables)"
		c.Status, c.Summary = report.StatusInfo, fmt.Sprintf("%s (engine %s) does not report its firewall backend", report.OrUnknown(local), report.OrUnknown(eng.ServerVersion))
	case "nftables":
		if encrypted > 0 {
			e.Status, e.Note = report.StatusWarn, fmt.Sprintf("nftables, with %d encrypted overlay network(s): experimental on this backend", encrypted)
			c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("%s uses nftables, on which encrypted overlay networks are experimental", report.OrUnknown(local))
		} else {
			e.Status, e.Note = report.StatusPass, "nftables; no encrypted overlay network"
			c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%s uses nftables; no encrypted overlay network relies on it", report.OrUnknown(local))
		}
	default:
		e.Status = report.StatusPass
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%s uses %s", report.OrUnknown(local), eng.FirewallBackend)
	}
	c.Evidence = append(c.Evidence, e)
	if nodesErr == nil {
		for _, n := range nodes {
			if n.ID == eng.NodeID {
				continue
			}
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "node " + nodeName(n), Status: report.StatusInfo,
				Facts: map[string]string{"engine_version": report.OrUnknown(n.EngineVersion)},
				Note:  "not observable from this node's API: run the report against it"})
		}
	}
	return c
}
