package operator

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
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

// ReportInput is everything one report is built from: what was read and every read error.
type ReportInput struct {
	Now         time.Time
	Cluster     swarm.Cluster
	Nodes       []swarm.Node
	NodesErr    error
	Networks    []swarm.Network
	NetworksErr error
	Services    []swarm.Service
	ServicesErr error
	Ledger      []swarm.Entry
	LedgerErr   error
	Local       LocalSwarmState
	// Tunnels are the ingress network's endpoints with their tunnel (data-path) addresses, one per node
	// with a routing-mesh sandbox; TunnelsErr says why they could not be read.
	Tunnels    []swarm.TunnelEndpoint
	TunnelsErr error
	// ListenProbes are TLS probes of port 2377 on the nodes' data-path addresses (ListenProbed: they ran).
	ListenProbes []ListenProbe
	ListenProbed bool
	// Domains are the checks other domains contribute (tokens, autolock, certificates, secrets sync), by
	// domain name; a domain absent from the map is reported as not available in this build.
	Domains map[string]DomainResult
}

// DomainResult is one other domain's contribution to the report.
type DomainResult struct {
	Checks []report.Check
	Err    error
	// CertDays feeds the certificate chart (certificates domain only).
	CertDays     []report.CertDaysBar
	CertDaysNote string
}

// ReportEngine is what the report reads from the engine. *swarm.Client satisfies it.
type ReportEngine interface {
	Cluster(ctx context.Context) (swarm.Cluster, error)
	Nodes(ctx context.Context) ([]swarm.Node, error)
	Networks(ctx context.Context) ([]swarm.Network, error)
	Services(ctx context.Context) ([]swarm.Service, error)
	NetworkTunnelEndpoints(ctx context.Context, networkID string) ([]swarm.TunnelEndpoint, error)
}

var _ ReportEngine = (*swarm.Client)(nil)

// GatherReport reads the swarm for a report: the swarm object must be readable (the report identifies the
// swarm by it); any other read failure is kept and shows as `error` in the checks that needed it.
func GatherReport(ctx context.Context, eng ReportEngine, ledger LedgerStore, o GatherOptions, now time.Time) (ReportInput, error) {
	in := ReportInput{Now: now, Local: o.Local, Domains: map[string]DomainResult{}}
	var err error
	if in.Cluster, err = eng.Cluster(ctx); err != nil {
		return in, err
	}
	in.Nodes, in.NodesErr = eng.Nodes(ctx)
	in.Networks, in.NetworksErr = eng.Networks(ctx)
	in.Services, in.ServicesErr = eng.Services(ctx)
	in.TunnelsErr = fmt.Errorf("the swarm has no ingress network, whose endpoints show each node's data-path address")
	if in.NetworksErr != nil {
		in.TunnelsErr = in.NetworksErr
	}
	for _, n := range in.Networks {
		if n.Ingress {
			in.Tunnels, in.TunnelsErr = eng.NetworkTunnelEndpoints(ctx, n.ID)
			break
		}
	}
	if o.Prober != nil {
		in.ListenProbes, in.ListenProbed = probeListenAddrs(ctx, o.Prober, in), in.TunnelsErr == nil && in.NodesErr == nil
	}
	if ledger != nil {
		in.Ledger, in.LedgerErr = ledger.Entries(ctx)
	} else {
		in.LedgerErr = fmt.Errorf("no ledger configured")
	}
	return in, nil
}

// Domain names of the report's contributed sections.
const (
	DomainTokens   = "tokens"
	DomainAutolock = "autolock"
	DomainCerts    = "certs"
	DomainSecrets  = "secrets"
)

// domainPlaceholders are the checks shown when a domain contributes nothing in this build.
var domainPlaceholders = map[string][]report.Check{
	DomainTokens:   {{ID: "tokens.age", Title: "Join tokens rotated within their max ages"}},
	DomainAutolock: {{ID: "autolock.escrow", Title: "The unlock key is escrowed to Vault and is the swarm's current key"}},
	DomainCerts: {
		{ID: "pki.node-certs", Title: "Every node's certificate is inside its validity window"},
		{ID: "pki.down-nodes", Title: "No down node's certificate lapses while it is down"},
	},
	DomainSecrets: {{ID: "secrets.sync", Title: "Synced secrets are fresh and without failures"}},
}

// BuildReport evaluates every check on what was read. It is a pure function of in and c.
func BuildReport(in ReportInput, c config.Config) report.Report {
	now := in.Now.UTC()
	vs := EvaluateNetworks(in.Networks, in.Services, c.Networks)
	netErr := in.NetworksErr
	if netErr == nil && in.ServicesErr != nil {
		netErr = in.ServicesErr
	}
	r := report.Report{GeneratedAt: now, SwarmID: in.Cluster.ID, Benchmark: report.Benchmark}
	r.Checks = append(r.Checks,
		checkManagerCount(in.Nodes, in.NodesErr),
		checkListenAddr(in),
		checkNetworksEncrypted(vs, netErr),
		checkSecretsInEnv(in.Services, in.ServicesErr),
		checkAutolock(in.Cluster),
		checkUnlockKeyAge(in.Cluster, in.Ledger, in.LedgerErr, c.Autolock, now),
		checkNodeCertExpiry(in.Cluster, c.PKI),
		checkCAAge(in.Cluster, in.Ledger, in.LedgerErr, c.PKI.CA, now),
		checkDataPathSeparated(in.Nodes, in.NodesErr, in.Local, in.Tunnels, in.TunnelsErr),
	)
	r.Checks = append(r.Checks,
		checkNetworkExemptions(vs, netErr),
		checkNetworksAttachable(vs, netErr),
		checkDataPath(in.Cluster),
		checkEngineCVEs(in.Nodes, in.NodesErr),
		checkEngineConsistent(in.Nodes, in.NodesErr),
		checkCAKeyStrength(in.Cluster),
	)
	for _, d := range []string{DomainTokens, DomainAutolock, DomainCerts, DomainSecrets} {
		res, ok := in.Domains[d]
		switch {
		case !ok:
			for _, p := range domainPlaceholders[d] {
				p.Status = report.StatusInfo
				p.Summary = "not available in this build"
				p.Evidence = []report.Evidence{{Subject: d, Note: "the " + d + " domain contributes no findings in this build of swarmguard"}}
				p.Remediation = "Use a swarmguard build that includes the " + d + " domain."
				r.Checks = append(r.Checks, p)
			}
		case res.Err != nil && len(res.Checks) == 0:
			for _, p := range domainPlaceholders[d] {
				r.Checks = append(r.Checks, p.Errored(res.Err))
			}
		default:
			r.Checks = append(r.Checks, res.Checks...)
		}
		if d == DomainCerts && ok {
			r.Charts.CertDays, r.Charts.CertDaysNote = res.CertDays, res.CertDaysNote
		}
	}
	if _, ok := in.Domains[DomainCerts]; !ok {
		r.Charts.CertDaysNote = "certificate inventory not available in this build"
	}
	r.Charts.Ages = ageBars(in, c, now)
	for i := range r.Checks {
		report.SortEvidence(&r.Checks[i])
		if r.Checks[i].Evidence == nil {
			r.Checks[i].Evidence = []report.Evidence{}
		}
		switch r.Checks[i].Status {
		case report.StatusPass:
			r.Summary.Pass++
		case report.StatusWarn:
			r.Summary.Warn++
		case report.StatusFail:
			r.Summary.Fail++
		case report.StatusInfo:
			r.Summary.Info++
		default:
			r.Checks[i].Status = report.StatusError
			r.Summary.Error++
		}
	}
	return r
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
		facts := map[string]string{"reachability": orNone(n.Reachability), "addr": orNone(n.ManagerAddr), "state": n.State}
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

// checkDataPathSeparated is CIS 7.9: management and data plane traffic on different addresses. Two sources:
// the engine's own state file for the node swarmguard runs beside, and, for every node, the ingress
// network's endpoints, whose tunnel address is the node's data-path address (a node's management address is
// its Status.Addr / ManagerStatus.Addr). A tunnel address that is a node's management address means that node
// is not separated; when every node is accounted for by tunnel addresses that are nobody's management
// address, all are.
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
	tunnelIPs := map[string]bool{}
	for _, t := range tunnels {
		if t.HostIP != "" {
			tunnelIPs[t.HostIP] = true
		}
	}
	var unattributed []string // tunnel addresses that are nobody's management address
	localData := ""
	if local.Err == nil {
		localData = addrHost(local.DataPathAddr) // the local node's own, known from its state file
	}
	for ip := range tunnelIPs {
		if _, ok := mgmtOf[ip]; !ok && ip != localData {
			unattributed = append(unattributed, ip)
		}
	}
	sort.Strings(unattributed)
	var failed, candidates, unobserved []string
	isCandidate := map[string]bool{}
	for _, n := range nodes {
		name := nodeName(n)
		mg := mgmtAddrs(n)
		e := report.Evidence{Subject: "node " + name, Facts: map[string]string{"management_addr": listOrNone(mg)}}
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
		default:
			shared := ""
			for _, a := range mg {
				if tunnelIPs[a] {
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
	// Nodes whose management address is not a tunnel endpoint are separated if there are enough tunnel
	// endpoints that are nobody's management address to account for them (a down node may have none).
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
				c.Evidence[i].Note = "no ingress tunnel endpoint accounts for it (is it down?): not determinable"
				unobserved = append(unobserved, strings.TrimPrefix(c.Evidence[i].Subject, "node "))
			}
		}
	}
	if len(tunnels) > 0 {
		ips := make([]string, 0, len(tunnelIPs))
		for ip := range tunnelIPs {
			ips = append(ips, ip)
		}
		sort.Strings(ips)
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "ingress network", Facts: map[string]string{"tunnel_endpoints": strings.Join(ips, ", ")},
			Note: "each node's routing-mesh sandbox; its tunnel address is the node's data-path address"})
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

// checkAutolock is CIS 7.5.
func checkAutolock(cl swarm.Cluster) report.Check {
	c := report.Check{ID: "autolock.enabled", CIS: "7.5", Title: "Managers run in autolock mode",
		Remediation: "`docker swarm update --autolock=true` (or autolock.mode: enforce), and keep the unlock key in a safe " +
			"place (swarmguard escrows it to Vault)."}
	c.Evidence = []report.Evidence{{Subject: "swarm", Facts: map[string]string{"autolock": strconv.FormatBool(cl.AutoLock)}}}
	if cl.AutoLock {
		c.Status, c.Summary = report.StatusPass, "autolock is on"
	} else {
		c.Status, c.Summary = report.StatusFail, "autolock is off: a stolen manager disk holds the Raft keys in clear"
	}
	return c
}

// credentialAge is when a credential was last set: the newest ok ledger entry, else the newest adoption (a
// lower bound of its age).
func credentialAge(entries []swarm.Entry, kind string, now time.Time) (age time.Duration, e swarm.Entry, ok bool) {
	if e, ok = swarm.Latest(entries, kind, swarm.ResultOK, swarm.ResultAdopted); !ok {
		return 0, e, false
	}
	return now.Sub(e.At), e, true
}

// checkUnlockKeyAge is CIS 7.6.
func checkUnlockKeyAge(cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, c config.AutolockConfig, now time.Time) report.Check {
	ch := report.Check{ID: "autolock.key-age", CIS: "7.6", Title: "The unlock key is rotated within its max age",
		Remediation: "`swarmguard rotate unlock-key --reason ...` (it escrows the new key and records the rotation), " +
			"and set autolock.rotate.max_age so the controller rotates it on schedule."}
	maxAge := c.Rotate.MaxAge.D()
	ch.Evidence = []report.Evidence{{Subject: "policy", Facts: map[string]string{"autolock.rotate.max_age": report.DurationOrNone(maxAge), "autolock": strconv.FormatBool(cl.AutoLock)}}}
	if !cl.AutoLock {
		ch.Status, ch.Summary = report.StatusFail, "autolock is off: there is no unlock key to rotate"
		return ch
	}
	if ledgerErr != nil {
		return ch.Errored(fmt.Errorf("reading the ledger: %w", ledgerErr))
	}
	return ageCheck(ch, entries, swarm.KindUnlockKey, "unlock key", maxAge, now)
}

func ageCheck(ch report.Check, entries []swarm.Entry, kind, what string, maxAge time.Duration, now time.Time) report.Check {
	age, e, ok := credentialAge(entries, kind, now)
	if !ok {
		ch.Status, ch.Summary = report.StatusWarn, "no rotation of the "+what+" is recorded in the ledger: its age is unknown"
		ch.Evidence = append(ch.Evidence, report.Evidence{Subject: "ledger kind " + kind, Status: report.StatusWarn, Note: "no entry"})
		return ch
	}
	facts := map[string]string{"at": e.At.UTC().Format(time.RFC3339), "result": e.Result, "actor": e.Actor, "age": report.RoundAge(age)}
	note := ""
	if e.Result == swarm.ResultAdopted {
		note = "first seen by swarmguard then; the " + what + " is at least this old"
	}
	ch.Evidence = append(ch.Evidence, report.Evidence{Subject: "ledger kind " + kind, Facts: facts, Note: note})
	switch {
	case maxAge <= 0:
		ch.Status, ch.Summary = report.StatusWarn, fmt.Sprintf("%s age %s; no max age is configured", what, report.RoundAge(age))
	case age > maxAge:
		ch.Status, ch.Summary = report.StatusFail, fmt.Sprintf("%s is %s old, over its max age %s", what, report.RoundAge(age), report.DurationOrNone(maxAge))
	default:
		ch.Status, ch.Summary = report.StatusPass, fmt.Sprintf("%s is %s old, within %s", what, report.RoundAge(age), report.DurationOrNone(maxAge))
	}
	return ch
}

// checkNodeCertExpiry is CIS 7.7: the cluster's node certificate validity within the policy.
func checkNodeCertExpiry(cl swarm.Cluster, p config.PKIConfig) report.Check {
	c := report.Check{ID: "pki.node-cert-expiry", CIS: "7.7", Title: "Node certificates are rotated within the policy's validity",
		Remediation: "`docker swarm update --cert-expiry <duration>` (or pki.mode: enforce with pki.node_cert_expiry); " +
			"nodes renew between 50% and 80% of the validity, so a shorter expiry rotates them more often."}
	want := p.NodeCertExpiry.D()
	got := cl.NodeCertExpiry
	c.Evidence = []report.Evidence{{Subject: "swarm", Facts: map[string]string{"node_cert_expiry": report.DurationOrNone(got), "pki.node_cert_expiry": report.DurationOrNone(want)}}}
	switch {
	case got <= 0:
		c.Status, c.Summary = report.StatusWarn, "the cluster reports no node certificate expiry"
	case want <= 0:
		c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("node certificates are valid for %s; no policy (pki.node_cert_expiry) to compare with", report.DurationOrNone(got))
	case got > want:
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("node certificates are valid for %s, longer than the policy's %s", report.DurationOrNone(got), report.DurationOrNone(want))
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("node certificates are valid for %s, within the policy's %s", report.DurationOrNone(got), report.DurationOrNone(want))
	}
	return c
}

// checkCAAge is CIS 7.8: the root CA's age, from the later of its NotBefore and the newest CA rotation in the ledger.
func checkCAAge(cl swarm.Cluster, entries []swarm.Entry, ledgerErr error, p config.CAConfig, now time.Time) report.Check {
	c := report.Check{ID: "pki.ca-age", CIS: "7.8", Title: "The root CA is rotated within its max age",
		Remediation: "`swarmguard rotate ca --reason ...` (or `docker swarm ca --rotate`), and set pki.ca.max_age so the " +
			"controller rotates it on schedule."}
	maxAge := p.MaxAge.D()
	ca, err := parseRoot(cl.TrustRootPEM)
	if err != nil {
		return c.Errored(fmt.Errorf("reading the swarm's root CA: %w", err))
	}
	since := ca.NotBefore
	src := "CA certificate NotBefore"
	facts := map[string]string{"not_before": ca.NotBefore.UTC().Format(time.RFC3339), "not_after": ca.NotAfter.UTC().Format(time.RFC3339),
		"serial": ca.SerialNumber.Text(16), "pki.ca.max_age": report.DurationOrNone(maxAge),
		"root_rotation_in_progress": strconv.FormatBool(cl.RootRotationInProgress)}
	if ledgerErr == nil {
		if e, ok := swarm.Latest(entries, swarm.KindCA, swarm.ResultOK); ok {
			facts["ledger_rotated_at"] = e.At.UTC().Format(time.RFC3339)
			if e.At.After(since) {
				since, src = e.At, "ledger kind ca"
			}
		}
	} else {
		facts["ledger"] = "unreadable: " + ledgerErr.Error()
	}
	age := now.Sub(since)
	facts["age"], facts["age_from"] = report.RoundAge(age), src
	c.Evidence = []report.Evidence{{Subject: "root CA " + ca.Subject.CommonName, Facts: facts}}
	switch {
	case maxAge <= 0:
		c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("root CA is %s old; no max age (pki.ca.max_age) is configured", report.RoundAge(age))
	case age > maxAge:
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("root CA is %s old, over its max age %s", report.RoundAge(age), report.DurationOrNone(maxAge))
	default:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("root CA is %s old, within %s", report.RoundAge(age), report.DurationOrNone(maxAge))
	}
	return c
}

// Minimum CA key strengths (NIST SP 800-57: 112-bit security until 2030).
const (
	minRSABits = 2048
	minECBits  = 256
)

// checkCAKeyStrength checks the root CA's public key.
func checkCAKeyStrength(cl swarm.Cluster) report.Check {
	c := report.Check{ID: "pki.ca-key-strength", Title: "The root CA key is strong enough",
		Remediation: fmt.Sprintf("Rotate to a CA with an ECDSA P-256 (or larger) or RSA %d-bit (or larger) key: `docker swarm ca --rotate` "+
			"makes a P-256 key; a CA handed in with --ca-cert/--ca-key must meet the same bar.", minRSABits)}
	ca, err := parseRoot(cl.TrustRootPEM)
	if err != nil {
		return c.Errored(fmt.Errorf("reading the swarm's root CA: %w", err))
	}
	algo, bits := keyStrength(ca)
	c.Evidence = []report.Evidence{{Subject: "root CA " + ca.Subject.CommonName, Facts: map[string]string{
		"key_algorithm": algo, "key_bits": strconv.Itoa(bits), "signature_algorithm": ca.SignatureAlgorithm.String()}}}
	weak := false
	switch algo {
	case "RSA":
		weak = bits < minRSABits
	case "ECDSA":
		weak = bits < minECBits
	case "Ed25519":
	default:
		c.Status, c.Summary = report.StatusWarn, "unknown key algorithm "+algo
		return c
	}
	if weak {
		c.Status, c.Summary = report.StatusFail, fmt.Sprintf("%s %d-bit key is too weak", algo, bits)
	} else {
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("%s %d-bit key", algo, bits)
	}
	return c
}

func keyStrength(cert *x509.Certificate) (string, int) {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	}
	return cert.PublicKeyAlgorithm.String(), 0
}

// ageBars are the HTML chart's credential ages: join tokens, unlock key and CA against their max ages.
func ageBars(in ReportInput, c config.Config, now time.Time) []report.AgeBar {
	var out []report.AgeBar
	add := func(name, kind string, maxAge time.Duration) {
		b := report.AgeBar{Name: name, MaxAge: maxAge}
		if in.LedgerErr != nil {
			b.Note = "ledger unreadable"
			out = append(out, b)
			return
		}
		age, _, ok := credentialAge(in.Ledger, kind, now)
		if !ok {
			b.Note = "no ledger entry"
		} else {
			b.Age, b.Known = age, true
		}
		b.Status = barStatus(b)
		out = append(out, b)
	}
	add("worker join token", swarm.KindJoinTokenWorker, c.Tokens.Worker.MaxAge.D())
	add("manager join token", swarm.KindJoinTokenManager, c.Tokens.Manager.MaxAge.D())
	if in.Cluster.AutoLock {
		add("unlock key", swarm.KindUnlockKey, c.Autolock.Rotate.MaxAge.D())
	} else {
		out = append(out, report.AgeBar{Name: "unlock key", MaxAge: c.Autolock.Rotate.MaxAge.D(), Note: "autolock off"})
	}
	if ca, err := parseRoot(in.Cluster.TrustRootPEM); err == nil {
		since := ca.NotBefore
		if e, ok := swarm.Latest(in.Ledger, swarm.KindCA, swarm.ResultOK); ok && e.At.After(since) {
			since = e.At
		}
		b := report.AgeBar{Name: "root CA", Age: now.Sub(since), MaxAge: c.PKI.CA.MaxAge.D(), Known: true}
		b.Status = barStatus(b)
		out = append(out, b)
	}
	return out
}

func barStatus(b report.AgeBar) report.CheckStatus {
	switch {
	case !b.Known:
		return report.StatusInfo
	case b.MaxAge <= 0:
		return report.StatusWarn
	case b.Age > b.MaxAge:
		return report.StatusFail
	}
	return report.StatusPass
}

// ReportGauges are the report's metrics: every check's status and every overlay network's encryption.
func ReportGauges(r report.Report, in ReportInput, c config.Config) []report.Gauge {
	g := report.CheckGauges(r.Checks)
	if in.NetworksErr == nil && in.ServicesErr == nil {
		g = append(g, NetworkGauges(EvaluateNetworks(in.Networks, in.Services, c.Networks))...)
	}
	return g
}
