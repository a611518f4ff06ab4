package networks

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// Engine is what the network checks read. *swarm.Client satisfies it.
type Engine interface {
	Networks(ctx context.Context) ([]swarm.Network, error)
	Services(ctx context.Context) ([]swarm.Service, error)
	Nodes(ctx context.Context) ([]swarm.Node, error)
}

var _ Engine = (*swarm.Client)(nil)

// How a network is exempted from the encryption policy.
const (
	ExemptByConfig = "config networks.exempt"
	ExemptByLabel  = "label " + swarm.LabelEncryption + "=exempt"
)

// NetworkVerdict is one overlay network judged against the encryption policy.
type NetworkVerdict struct {
	Network  swarm.Network
	Services []string // names of the services attached to it (spec or virtual IP)
	// Exempt is true when the network is validly exempted (config list, or label with a reason).
	Exempt   bool
	ExemptBy string
	Reason   string
	// Problem is set when an exemption is not valid (a label without a reason, an unknown label value).
	Problem string
	Status  report.CheckStatus
}

// Compliant says whether the network meets the policy: encrypted, or validly exempt.
func (v NetworkVerdict) Compliant() bool { return v.Network.Encrypted || v.Exempt }

// EvaluateNetworks judges every overlay network: encrypted passes; unencrypted fails unless exempted by
// networks.exempt (by name or ID) or by the label swarmguard.encryption=exempt together with a
// swarmguard.encryption.reason label. A label exemption without a reason does not exempt.
func EvaluateNetworks(nets []swarm.Network, services []swarm.Service, c config.NetworksConfig) []NetworkVerdict {
	out := make([]NetworkVerdict, 0, len(nets))
	for _, n := range nets {
		v := NetworkVerdict{Network: n}
		for _, s := range services {
			if s.OnNetwork(n) {
				v.Services = append(v.Services, s.Name)
			}
		}
		sort.Strings(v.Services)
		if slices.Contains(c.Exempt, n.Name) || slices.Contains(c.Exempt, n.ID) {
			v.Exempt, v.ExemptBy, v.Reason = true, ExemptByConfig, "listed in networks.exempt"
		}
		if lv, ok := n.Labels[swarm.LabelEncryption]; ok {
			reason := strings.TrimSpace(n.Labels[swarm.LabelEncryptionReason])
			switch {
			case lv != "exempt":
				v.Problem = fmt.Sprintf("label %s=%q is not understood (the only value is \"exempt\")", swarm.LabelEncryption, lv)
			case reason == "":
				v.Problem = fmt.Sprintf("label %s=exempt has no %s label: the exemption is not valid", swarm.LabelEncryption, swarm.LabelEncryptionReason)
			case !v.Exempt:
				v.Exempt, v.ExemptBy, v.Reason = true, ExemptByLabel, reason
			}
		}
		switch {
		case n.Encrypted:
			v.Status = report.StatusPass
		case v.Exempt:
			v.Status = report.StatusInfo
		default:
			v.Status = report.StatusFail
		}
		out = append(out, v)
	}
	return out
}

// networkFacts are the observed values of one network, for evidence.
func networkFacts(v NetworkVerdict) map[string]string {
	n := v.Network
	f := map[string]string{
		"id":         n.ID,
		"encrypted":  strconv.FormatBool(n.Encrypted),
		"attachable": strconv.FormatBool(n.Attachable),
		"ingress":    strconv.FormatBool(n.Ingress),
		"services":   report.ListOrNone(v.Services),
		"subnets":    report.ListOrNone(n.Subnets),
	}
	if n.HasEncryptedOption {
		f["option_encrypted"] = strconv.Quote(n.EncryptedOption)
	}
	if v.Exempt {
		f["exempt_by"] = v.ExemptBy
		f["exempt_reason"] = v.Reason
	}
	if ns := n.Labels[swarm.LabelStackNamespace]; ns != "" {
		f["stack"] = ns
	}
	return f
}

// checkNetworksEncrypted is CIS 7.3.
func checkNetworksEncrypted(vs []NetworkVerdict, err error) report.Check {
	c := report.Check{ID: "networks.encrypted", CIS: "7.3", Title: "Overlay network traffic is encrypted",
		Remediation: "Recreate each unencrypted overlay network with `--opt encrypted` (`swarmguard remediate network NAME` " +
			"plans it; `--apply` moves the services to an encrypted twin), or exempt it with the labels " +
			"swarmguard.encryption=exempt and swarmguard.encryption.reason=WHY, or list it in networks.exempt."}
	if err != nil {
		return c.Errored(err)
	}
	var bad []string
	for _, v := range vs {
		e := report.Evidence{Subject: "network " + v.Network.Name, Status: v.Status, Facts: networkFacts(v)}
		switch {
		case v.Network.Encrypted:
			e.Note = "encrypted"
		case v.Exempt:
			e.Note = "not encrypted; exempt (" + v.ExemptBy + "): " + v.Reason
		default:
			e.Note = "NOT encrypted and not exempt"
			if v.Problem != "" {
				e.Note += "; " + v.Problem
			}
			bad = append(bad, v.Network.Name)
		}
		c.Evidence = append(c.Evidence, e)
	}
	switch {
	case len(vs) == 0:
		c.Status = report.StatusPass
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "swarm", Note: "no swarm-scope overlay networks exist"})
	case len(bad) > 0:
		c.Status = report.StatusFail
		c.Summary = fmt.Sprintf("%d unencrypted overlay network(s): %s", len(bad), strings.Join(bad, ", "))
	default:
		c.Status = report.StatusPass
		c.Summary = fmt.Sprintf("%d overlay network(s), each encrypted or exempt with a reason", len(vs))
	}
	return c
}

// checkNetworkExemptions reports exemptions and exemption labels that do not hold.
func checkNetworkExemptions(vs []NetworkVerdict, err error) report.Check {
	c := report.Check{ID: "networks.exemptions", Title: "Encryption exemptions are deliberate and explained",
		Remediation: "Give every exempted network a swarmguard.encryption.reason label (recreate it: network labels " +
			"cannot be changed), or remove the exemption and encrypt the network."}
	if err != nil {
		return c.Errored(err)
	}
	problems, exempt := 0, 0
	for _, v := range vs {
		switch {
		case v.Problem != "":
			problems++
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "network " + v.Network.Name, Status: report.StatusFail,
				Facts: map[string]string{"id": v.Network.ID, "encrypted": strconv.FormatBool(v.Network.Encrypted),
					swarm.LabelEncryption: v.Network.Labels[swarm.LabelEncryption]}, Note: v.Problem})
		case v.Exempt:
			exempt++
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "network " + v.Network.Name, Status: report.StatusInfo,
				Facts: map[string]string{"id": v.Network.ID, "encrypted": strconv.FormatBool(v.Network.Encrypted),
					"exempt_by": v.ExemptBy, "exempt_reason": v.Reason}})
		}
	}
	switch {
	case problems > 0:
		c.Status = report.StatusFail
		c.Summary = fmt.Sprintf("%d exemption label(s) without a valid reason", problems)
	default:
		c.Status = report.StatusPass
		c.Summary = fmt.Sprintf("%d exempt network(s), each with a reason", exempt)
		if exempt == 0 {
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "swarm", Note: "no network is exempt"})
		}
	}
	return c
}

// checkNetworksAttachable flags unencrypted attachable networks: any container on any node may join them.
func checkNetworksAttachable(vs []NetworkVerdict, err error) report.Check {
	c := report.Check{ID: "networks.attachable", Title: "Attachable overlay networks are encrypted",
		Remediation: "Standalone containers on any node can join an attachable network: encrypt it, or recreate it " +
			"without --attachable when no standalone container needs it."}
	if err != nil {
		return c.Errored(err)
	}
	bad := 0
	for _, v := range vs {
		if !v.Network.Attachable {
			continue
		}
		st := report.StatusPass
		if !v.Network.Encrypted {
			st = report.StatusWarn
			bad++
		}
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "network " + v.Network.Name, Status: st,
			Facts: map[string]string{"id": v.Network.ID, "attachable": "true", "encrypted": strconv.FormatBool(v.Network.Encrypted)}})
	}
	if bad > 0 {
		c.Status = report.StatusWarn
		c.Summary = fmt.Sprintf("%d attachable network(s) without encryption", bad)
	} else {
		c.Status = report.StatusPass
		c.Summary = fmt.Sprintf("%d attachable network(s), all encrypted", len(c.Evidence))
		if len(c.Evidence) == 0 {
			c.Summary = "no attachable overlay network"
			c.Evidence = append(c.Evidence, report.Evidence{Subject: "swarm", Note: "no attachable overlay network"})
		}
	}
	return c
}

// defaultDataPathPort is the VXLAN port the engine uses when the swarm was made without --data-path-port.
const defaultDataPathPort = 4789

// checkDataPath shows the data-path port and the default address pool (information for the auditor).
func checkDataPath(cl swarm.Cluster) report.Check {
	port := cl.DataPathPort
	portNote := ""
	if port == 0 {
		port, portNote = defaultDataPathPort, " (engine default)"
	}
	pool := cl.DefaultAddrPool
	poolText := strings.Join(pool, ", ")
	if len(pool) == 0 {
		poolText = "10.0.0.0/8 (engine default)"
	}
	size := cl.SubnetSize
	if size == 0 {
		size = 24
	}
	return report.Check{ID: "networks.data-path", Title: "Overlay data path: VXLAN port and address pool", Status: report.StatusInfo,
		Summary: fmt.Sprintf("VXLAN UDP port %d%s; pool %s, /%d per network", port, portNote, poolText, size),
		Evidence: []report.Evidence{{Subject: "swarm", Facts: map[string]string{
			"data_path_port":    strconv.Itoa(int(port)) + portNote,
			"default_addr_pool": poolText,
			"subnet_size":       strconv.Itoa(int(size)),
		}}},
		Remediation: "Allow the VXLAN port (UDP) and ESP (IP protocol 50, for encrypted networks) only between swarm nodes; " +
			"make sure the address pool does not overlap networks the nodes must reach."}
}

// Engine versions. The encrypted-overlay flaws CVE-2023-28840, CVE-2023-28841 and CVE-2023-28842 are fixed
// in 20.10.24 and 23.0.3 (there were no 21.x or 22.x releases).
var (
	cveFixed2010 = semver{20, 10, 24}
	cveFixed23   = semver{23, 0, 3}
)

// overlayCVEs names the flaws the check is about.
const overlayCVEs = "CVE-2023-28840, CVE-2023-28841, CVE-2023-28842"

type semver [3]int

func (a semver) less(b semver) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// parseEngineVersion reads the leading major.minor.patch of an engine's release string, as engines report
// it and as distributions build it: "29.8.0", "v23.0.1-rc.1", "20.10.24+dfsg1" (Debian), "28.5.2-1~debian.12"
// or "5:28.5.2-1~debian.12~bookworm" (docker-ce packages, with the package epoch), "27.3.1-ce". ok is false
// when there is none: "library-import" (a dockerd built without its version set), "dev", and "0.x" (no
// Docker release since 2014 has major 0; dev builds say 0.0.0-...).
func parseEngineVersion(s string) (semver, bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if epoch, rest, ok := strings.Cut(s, ":"); ok && epoch != "" && strings.Trim(epoch, "0123456789") == "" {
		s = rest // a Debian package epoch
	}
	end := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if end >= 0 {
		s = s[:end]
	}
	parts := strings.Split(s, ".")
	if len(parts) < 2 {
		return semver{}, false
	}
	var v semver
	for i := 0; i < 3 && i < len(parts); i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return semver{}, false
		}
		v[i] = n
	}
	if v[0] == 0 {
		return semver{}, false
	}
	return v, true
}

// OverlayCVEVulnerable says whether an engine version has the encrypted-overlay flaws; known is false when
// the version cannot be read.
func OverlayCVEVulnerable(version string) (vulnerable, known bool) {
	v, ok := parseEngineVersion(version)
	if !ok {
		return false, false
	}
	switch {
	case v.less(cveFixed2010):
		return true, true
	case v[0] == 23 && v.less(cveFixed23):
		return true, true
	}
	return false, true
}

// checkEngineCVEs checks every node's engine version against the encrypted-overlay flaws.
func checkEngineCVEs(nodes []swarm.Node, err error) report.Check {
	c := report.Check{ID: "engine.overlay-cves", Title: "No engine has the encrypted-overlay flaws " + overlayCVEs,
		Remediation: "Upgrade the Docker Engine on the nodes named to 20.10.24, 23.0.3 or later " +
			"(encrypted overlay networks may otherwise accept or send unencrypted traffic)."}
	if err != nil {
		return c.Errored(err)
	}
	var bad, unknown []string
	for _, n := range nodes {
		vuln, known := OverlayCVEVulnerable(n.EngineVersion)
		e := report.Evidence{Subject: "node " + nodeName(n), Facts: map[string]string{"engine_version": report.OrUnknown(n.EngineVersion), "state": n.State}}
		switch {
		case !known:
			e.Status, e.Note = report.StatusWarn, "version unreadable"
			unknown = append(unknown, nodeName(n))
		case vuln:
			e.Status, e.Note = report.StatusFail, "affected by "+overlayCVEs
			bad = append(bad, nodeName(n))
		default:
			e.Status = report.StatusPass
		}
		c.Evidence = append(c.Evidence, e)
	}
	switch {
	case len(bad) > 0:
		c.Status = report.StatusFail
		c.Summary = "affected engines on " + strings.Join(bad, ", ")
	case len(unknown) > 0:
		c.Status = report.StatusWarn
		c.Summary = "engine version unreadable on " + strings.Join(unknown, ", ")
	case len(nodes) == 0:
		c.Status = report.StatusInfo
		c.Summary = "no nodes listed"
	default:
		c.Status = report.StatusPass
		c.Summary = fmt.Sprintf("%d node(s), none affected", len(nodes))
	}
	return c
}

// checkEngineConsistent checks that every node runs the same engine version.
func checkEngineConsistent(nodes []swarm.Node, err error) report.Check {
	c := report.Check{ID: "engine.versions-consistent", Title: "Every node runs the same engine version",
		Remediation: "Upgrade the nodes named to one engine version; mixed versions hide fixes and complicate support."}
	if err != nil {
		return c.Errored(err)
	}
	byVersion := map[string][]string{}
	for _, n := range nodes {
		byVersion[report.OrUnknown(n.EngineVersion)] = append(byVersion[report.OrUnknown(n.EngineVersion)], nodeName(n))
	}
	versions := make([]string, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	sort.Strings(versions)
	for _, v := range versions {
		c.Evidence = append(c.Evidence, report.Evidence{Subject: "engine " + v, Facts: map[string]string{"nodes": strings.Join(byVersion[v], ", ")}})
	}
	switch len(versions) {
	case 0:
		c.Status, c.Summary = report.StatusInfo, "no nodes listed"
	case 1:
		c.Status, c.Summary = report.StatusPass, fmt.Sprintf("all %d node(s) run %s", len(nodes), versions[0])
	default:
		// Name the nodes that differ from the version most nodes run (ties: the newest release), as in the
		// middle of a rolling upgrade: "sglab-n4 runs 20.10.24+dfsg1; the other 3 nodes run 29.8.0".
		most := versions[0]
		for _, v := range versions[1:] {
			if len(byVersion[v]) > len(byVersion[most]) || (len(byVersion[v]) == len(byVersion[most]) && versionNewer(v, most)) {
				most = v
			}
		}
		var differ []string
		for _, v := range versions {
			if v != most {
				differ = append(differ, fmt.Sprintf("%s runs %s", strings.Join(byVersion[v], ", "), v))
			}
		}
		c.Status, c.Summary = report.StatusWarn, fmt.Sprintf("%d different engine versions: %s; the other %d node(s) run %s",
			len(versions), strings.Join(differ, "; "), len(byVersion[most]), most)
	}
	return c
}

// versionNewer says whether release a is newer than b; an unreadable one is never newer.
func versionNewer(a, b string) bool {
	va, oka := parseEngineVersion(a)
	vb, okb := parseEngineVersion(b)
	switch {
	case !oka:
		return false
	case !okb:
		return true
	}
	return vb.less(va)
}

func nodeName(n swarm.Node) string {
	if n.Hostname != "" {
		return n.Hostname
	}
	return n.ID
}

// Observation is what the network domain reads: the overlay networks, the services that use them, the
// nodes (their engine versions) and the swarm object (its data-path port), each with its read error.
type Observation struct {
	Cluster     swarm.Cluster
	Networks    []swarm.Network
	NetworksErr error
	Services    []swarm.Service
	ServicesErr error
	Nodes       []swarm.Node
	NodesErr    error
}

// Verdicts is the one decision of the network domain for an observation: each network's verdict, or the
// read error that leaves them undecided. The task's log and metrics and the report's checks come from it.
func Verdicts(o Observation, c config.NetworksConfig) ([]NetworkVerdict, error) {
	err := o.NetworksErr
	if err == nil {
		err = o.ServicesErr
	}
	return EvaluateNetworks(o.Networks, o.Services, c), err
}

// Section is the network domain's part of the compliance report: CIS 7.3 (overlay encryption), the
// exemptions, attachable networks, the data-path port, and the engine versions (the overlay-encryption
// CVEs and a consistent version across nodes).
func Section(o Observation, c config.NetworksConfig) report.Section {
	vs, err := Verdicts(o, c)
	return report.Section{Checks: []report.Check{
		checkNetworksEncrypted(vs, err),
		checkNetworkExemptions(vs, err),
		checkNetworksAttachable(vs, err),
		checkDataPath(o.Cluster),
		checkEngineCVEs(o.Nodes, o.NodesErr),
		checkEngineConsistent(o.Nodes, o.NodesErr),
	}}
}

// Gauges are the network domain's metrics for an observation (none when the networks could not be read).
func Gauges(o Observation, c config.NetworksConfig) []report.Gauge {
	vs, err := Verdicts(o, c)
	if err != nil {
		return nil
	}
	return NetworkGauges(vs)
}

// SectionGauges are the network domain's gauges for one observation: its metrics (Gauges) and its report
// section's check statuses, what the networks pass refreshes.
func SectionGauges(o Observation, c config.NetworksConfig) []report.Gauge {
	return append(Gauges(o, c), report.CheckGauges(Section(o, c).Checks)...)
}

// MetricNetworkEncrypted is the metric of each overlay network's encryption.
const MetricNetworkEncrypted = "swarmguard_network_encrypted"

// MetricNetworkCompliant is the policy's verdict on each overlay network: encrypted or validly exempt.
const MetricNetworkCompliant = "swarmguard_network_compliant"

// NetworkGauges are swarmguard_network_encrypted{network} (1 encrypted, 0 not) and
// swarmguard_network_compliant{network} (1 encrypted or validly exempted, 0 not: what to alert on) for
// every overlay network.
func NetworkGauges(vs []NetworkVerdict) []report.Gauge {
	out := make([]report.Gauge, 0, len(vs))
	for _, v := range vs {
		val := 0.0
		if v.Network.Encrypted {
			val = 1
		}
		ok := 0.0
		if v.Compliant() {
			ok = 1
		}
		out = append(out, report.Gauge{Name: MetricNetworkEncrypted, Help: "1 when the overlay network is encrypted, 0 when not.",
			Labels: map[string]string{"network": v.Network.Name}, Value: val},
			report.Gauge{Name: MetricNetworkCompliant, Help: "1 when the overlay network is encrypted or validly exempted (networks.exempt, or a label with a reason), 0 when not.",
				Labels: map[string]string{"network": v.Network.Name}, Value: ok})
	}
	return out
}

// Task is the controller's network pass on networks.schedule: observe the overlay networks, the
// services and the nodes, log the findings and hand the gauges to onGauges (metrics). It changes nothing:
// remediation is only ever done by a person (`swarmguard remediate network`).
func Task(eng Engine, c config.NetworksConfig, onGauges func([]report.Gauge)) operator.Task {
	return operator.Task{
		Name:     "networks",
		Schedule: c.Schedule,
		Run: func(ctx context.Context, env operator.TaskEnv) error {
			nets, err := eng.Networks(ctx)
			if err != nil {
				return fmt.Errorf("networks pass: %w", err)
			}
			svcs, err := eng.Services(ctx)
			if err != nil {
				return fmt.Errorf("networks pass: %w", err)
			}
			nodes, nodesErr := eng.Nodes(ctx)
			vs, _ := Verdicts(Observation{Networks: nets, Services: svcs, Nodes: nodes, NodesErr: nodesErr}, c)
			checks := []report.Check{checkNetworksEncrypted(vs, nil), checkNetworkExemptions(vs, nil), checkNetworksAttachable(vs, nil),
				checkEngineCVEs(nodes, nodesErr), checkEngineConsistent(nodes, nodesErr)}
			if onGauges != nil {
				onGauges(SectionGauges(Observation{Networks: nets, Services: svcs, Nodes: nodes, NodesErr: nodesErr}, c))
			}
			log := env.Log
			for _, v := range vs {
				if v.Status != report.StatusFail {
					log.Debug("overlay network compliant", "network", v.Network.Name, "encrypted", v.Network.Encrypted, "exempt", v.Exempt)
					continue
				}
				if c.RequireEncryption {
					log.Error("overlay network not encrypted", "network", v.Network.Name, "network_id", v.Network.ID,
						"services", len(v.Services), "problem", v.Problem)
				} else {
					log.Info("overlay network not encrypted (networks.require_encryption is false)", "network", v.Network.Name)
				}
			}
			for _, ch := range checks[1:] {
				if ch.Status == report.StatusFail || ch.Status == report.StatusWarn || ch.Status == report.StatusError {
					log.Warn("network check not passing", "check", ch.ID, "status", string(ch.Status), "summary", ch.Summary)
				}
			}
			// The pass's plan never holds an action (PlanFrom): there is nothing to apply. A dry run prints it;
			// otherwise the findings above are logged and the pass prints nothing.
			operator.PrintPlan(env, PlanFrom(vs, c))
			return nodesErr
		},
	}
}
