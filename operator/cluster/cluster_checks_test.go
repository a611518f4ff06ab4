package cluster

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestManagerCount(t *testing.T) {
	for _, tc := range []struct {
		name     string
		managers int
		want     report.CheckStatus
	}{
		{"one manager", 1, report.StatusWarn},
		{"two managers", 2, report.StatusWarn},
		{"three managers", 3, report.StatusPass},
		{"four managers", 4, report.StatusWarn},
		{"five managers", 5, report.StatusPass},
		{"seven managers", 7, report.StatusPass},
		{"eight managers", 8, report.StatusFail},
		{"nine managers", 9, report.StatusFail},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var nodes []swarm.Node
			for i := 0; i < tc.managers; i++ {
				nodes = append(nodes, swarm.Node{ID: "m" + strconv.Itoa(i), Hostname: "m" + strconv.Itoa(i), Role: "manager", Reachability: "reachable"})
			}
			nodes = append(nodes, swarm.Node{ID: "w", Hostname: "w", Role: "worker"})
			if got := checkManagerCount(nodes, nil).Status; got != tc.want {
				t.Errorf("checkManagerCount(%d managers) = %s; want %s", tc.managers, got, tc.want)
			}
		})
	}
	if got := checkManagerCount(nil, errors.New("boom")).Status; got != report.StatusError {
		t.Errorf("checkManagerCount(read error) = %s; want error", got)
	}
}

func TestListenAndDataPath(t *testing.T) {
	one := []swarm.Node{{ID: "n1", Hostname: "m1", Role: "manager"}}
	three := append(one, swarm.Node{ID: "n2", Hostname: "m2", Role: "manager"}, swarm.Node{ID: "n3", Hostname: "w1", Role: "worker"})
	st := func(listen, adv, data string) LocalSwarmState {
		return LocalSwarmState{NodeID: "n1", Hostname: "m1", Source: "state.json", ListenAddr: listen, AdvertiseAddr: adv, DataPathAddr: data}
	}
	unreadable := LocalSwarmState{Err: errors.New("not on the engine's host")}
	for _, tc := range []struct {
		name         string
		nodes        []swarm.Node
		local        LocalSwarmState
		listen, data report.CheckStatus
	}{
		{"single node, wildcard, shared", one, st("0.0.0.0:2377", "10.0.0.11:2377", ""), report.StatusFail, report.StatusFail},
		{"single node, specific, separated", one, st("10.0.0.11:2377", "10.0.0.11:2377", "192.168.5.11"), report.StatusPass, report.StatusPass},
		{"single node, interface name", one, st("eth0:2377", "eth0:2377", "eth1"), report.StatusPass, report.StatusPass},
		{"single node, ipv6 wildcard", one, st("[::]:2377", "10.0.0.11:2377", "10.0.0.11"), report.StatusFail, report.StatusFail},
		{"several nodes, local good", three, st("10.0.0.11:2377", "10.0.0.11:2377", "192.168.5.11"), report.StatusInfo, report.StatusInfo},
		{"several nodes, local bad", three, st("0.0.0.0:2377", "10.0.0.11:2377", ""), report.StatusFail, report.StatusFail},
		{"state unreadable", one, unreadable, report.StatusInfo, report.StatusInfo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := checkListenAddr(ReportInput{Nodes: tc.nodes, Local: tc.local, TunnelsErr: errors.New("no ingress")}).Status; got != tc.listen {
				t.Errorf("checkListenAddr = %s; want %s", got, tc.listen)
			}
			if got := checkDataPathSeparated(tc.nodes, nil, tc.local, nil, errors.New("no ingress")).Status; got != tc.data {
				t.Errorf("checkDataPathSeparated = %s; want %s", got, tc.data)
			}
		})
	}
}

func TestParseLocalSwarmState(t *testing.T) {
	data := []byte(`{"LocalAddr":"10.99.6.11","ListenAddr":"0.0.0.0:2377","AdvertiseAddr":"10.99.6.11:2377","DataPathAddr":"","DataPathPort":4789}`)
	st := ParseLocalSwarmState(data, "x.json", swarm.EngineFacts{NodeID: "n1", NodeAddr: "10.99.6.11"})
	if st.Err != nil || st.ListenAddr != "0.0.0.0:2377" || st.AdvertiseAddr != "10.99.6.11:2377" {
		t.Errorf("ParseLocalSwarmState = %+v", st)
	}
	st = ParseLocalSwarmState(data, "x.json", swarm.EngineFacts{NodeID: "n1", NodeAddr: "10.99.6.12"})
	if st.Err == nil {
		t.Errorf("ParseLocalSwarmState(another engine's file) = nil error; want a mismatch")
	}
	if st := ParseLocalSwarmState([]byte("{"), "x.json", swarm.EngineFacts{}); st.Err == nil {
		t.Errorf("ParseLocalSwarmState(bad JSON) = nil error")
	}
}

func TestLooksLikeCredential(t *testing.T) {
	for name, want := range map[string]bool{
		"DB_PASSWORD": true, "API_TOKEN": true, "AWS_SECRET_ACCESS_KEY": true, "PASSWORD_FILE": false,
		"LOG_LEVEL": false, "PWD": false, "MYSQL_ROOT_PASSWORD": true, "PATH": false, "DBPASSWORD": true,
		"BASIC_AUTH": true, "DB_PASS": true, "API_KEY": true, "STRIPE_API_KEY": true, "GPG_PASSPHRASE": true,
		"AUTHOR_NAME": false, "KEYBOARD_LAYOUT": false, "PASSENGER_COUNT": false, "OAUTH_TOKEN_URL": false,
		"TOKEN_TTL": false, "SORT_KEY": false, "DB_USER": false, "JWT_SECRET": true,
	} {
		if got := LooksLikeCredential(name); got != want {
			t.Errorf("LooksLikeCredential(%q) = %v; want %v", name, got, want)
		}
	}
}

func TestDataPathFromTunnels(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "n1", Hostname: "m1", Role: "manager", Addr: "10.0.0.11", ManagerAddr: "10.0.0.11:2377"},
		{ID: "n2", Hostname: "m2", Role: "manager", Addr: "10.0.0.12", ManagerAddr: "10.0.0.12:2377"},
		{ID: "n3", Hostname: "w1", Role: "worker", Addr: "10.0.0.21"},
	}
	tun := func(ips ...string) []swarm.TunnelEndpoint {
		var out []swarm.TunnelEndpoint
		for _, ip := range ips {
			out = append(out, swarm.TunnelEndpoint{Name: "ingress-endpoint", HostIP: ip})
		}
		return out
	}
	// task(node, ip, ...): service task endpoints as DataPathEndpoints attributes them
	task := func(pairs ...string) []swarm.TunnelEndpoint {
		var out []swarm.TunnelEndpoint
		for i := 0; i+1 < len(pairs); i += 2 {
			out = append(out, swarm.TunnelEndpoint{Service: "beacon", Name: "beacon." + pairs[i] + ".t" + pairs[i], HostIP: pairs[i+1],
				Network: "swarmguard_default", NodeID: pairs[i]})
		}
		return out
	}
	noLocal := LocalSwarmState{Err: errors.New("not on the host")}
	sepLocal := LocalSwarmState{NodeID: "n1", Hostname: "m1", ListenAddr: "10.0.0.11:2377", AdvertiseAddr: "10.0.0.11:2377", DataPathAddr: "10.1.0.11"}
	for _, tc := range []struct {
		name    string
		local   LocalSwarmState
		tunnels []swarm.TunnelEndpoint
		err     error
		want    report.CheckStatus
		text    string
	}{
		{"all separated", noLocal, tun("10.1.0.11", "10.1.0.12", "10.1.0.21"), nil, report.StatusPass, "all 3 node(s)"},
		{"all separated, local from its state file", sepLocal, tun("10.1.0.11", "10.1.0.12", "10.1.0.21"), nil, report.StatusPass, "all 3"},
		{"one shares", noLocal, tun("10.1.0.11", "10.0.0.12", "10.1.0.21"), nil, report.StatusFail, "on m2"},
		{"none separated", noLocal, tun("10.0.0.11", "10.0.0.12", "10.0.0.21"), nil, report.StatusFail, "m1, m2, w1"},
		{"a node without endpoint (down)", noLocal, tun("10.1.0.11", "10.1.0.12"), nil, report.StatusInfo, "not determinable"},
		{"no ingress, no state file", noLocal, nil, errors.New("no ingress network"), report.StatusInfo, "not determinable for m1, m2, w1"},
		{"state file says shared", LocalSwarmState{NodeID: "n1", Hostname: "m1", AdvertiseAddr: "10.0.0.11:2377"}, tun("10.1.0.12", "10.1.0.21"), nil, report.StatusFail, "on m1"},
		// engines 29+: no ingress sandboxes, only service tasks, each attributed to its node
		{"29: every node's task separated", noLocal, task("n1", "10.1.0.11", "n2", "10.1.0.12", "n3", "10.1.0.21"), nil, report.StatusPass, "all 3 node(s)"},
		{"29: one task on its management address", noLocal, task("n1", "10.1.0.11", "n2", "10.0.0.12", "n3", "10.1.0.21"), nil, report.StatusFail, "on m2"},
		{"29: none separated (the lab)", noLocal, task("n1", "10.0.0.11", "n2", "10.0.0.12", "n3", "10.0.0.21"), nil, report.StatusFail, "m1, m2, w1"},
		{"29: a node with no task visible", noLocal, task("n1", "10.1.0.11", "n2", "10.1.0.12"), nil, report.StatusInfo, "not determinable for w1"},
		// a task's address is its node's, not a spare one that would account for another node
		{"29: a task's address does not vouch for a node without one", noLocal,
			append(task("n1", "10.1.0.11", "n2", "10.1.0.12"), swarm.TunnelEndpoint{Name: "ingress-endpoint", HostIP: "10.1.0.12"}), nil, report.StatusInfo, "not determinable for w1"},
		{"mixed lab: 29 managers by task, the 20.10 worker by its sandbox", noLocal,
			append(task("n1", "10.0.0.11", "n2", "10.0.0.12"), tun("10.0.0.21")...), nil, report.StatusFail, "m1, m2, w1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkDataPathSeparated(nodes, nil, tc.local, tc.tunnels, tc.err)
			if c.Status != tc.want || !strings.Contains(c.Summary, tc.text) {
				t.Errorf("checkDataPathSeparated = %s %q; want %s containing %q\n%s", c.Status, c.Summary, tc.want, tc.text, evidenceText(c))
			}
		})
	}
}

func TestListenAddrFromProbes(t *testing.T) {
	nodes := []swarm.Node{
		{ID: "n1", Hostname: "m1", Role: "manager", Addr: "10.0.0.11", ManagerAddr: "10.0.0.11:2377"},
		{ID: "n2", Hostname: "m2", Role: "manager", Addr: "10.0.0.12", ManagerAddr: "10.0.0.12:2377"},
		{ID: "n3", Hostname: "m3", Role: "manager", Addr: "10.0.0.13", ManagerAddr: "10.0.0.13:2377"},
	}
	tun := func(ips ...string) []swarm.TunnelEndpoint {
		var out []swarm.TunnelEndpoint
		for _, ip := range ips {
			out = append(out, swarm.TunnelEndpoint{HostIP: ip})
		}
		return out
	}
	local := LocalSwarmState{NodeID: "n1", Hostname: "m1", ListenAddr: "10.0.0.11:2377", AdvertiseAddr: "10.0.0.11:2377", DataPathAddr: "10.1.0.11"}
	refused := func(ip string) ListenProbe { return ListenProbe{Addr: ip + ":2377", Refused: true} }
	for _, tc := range []struct {
		name string
		in   ReportInput
		want report.CheckStatus
		text string
	}{
		{"all bound", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true,
			ListenProbes: []ListenProbe{refused("10.1.0.12"), refused("10.1.0.13")}}, report.StatusPass, "3 manager(s) bound"},
		{"one answers on its data path", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true,
			ListenProbes: []ListenProbe{{Addr: "10.1.0.12:2377", NodeID: "n2"}, refused("10.1.0.13")}}, report.StatusFail, "m2"},
		{"a probe timed out", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true,
			ListenProbes: []ListenProbe{refused("10.1.0.12"), {Addr: "10.1.0.13:2377", Err: "i/o timeout"}}}, report.StatusInfo, "not determinable for m2, m3"},
		{"data path shared: nothing to probe", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.0.0.12", "10.0.0.13"), ListenProbed: true},
			report.StatusInfo, "not determinable for m2, m3; bound: m1"},
		{"a node without endpoint", ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.1.0.12"), ListenProbed: true,
			ListenProbes: []ListenProbe{refused("10.1.0.12")}}, report.StatusInfo, "not determinable"},
		{"local wildcard", ReportInput{Nodes: nodes, Local: LocalSwarmState{NodeID: "n1", Hostname: "m1", ListenAddr: "0.0.0.0:2377", AdvertiseAddr: "10.0.0.11:2377"},
			Tunnels: tun("10.0.0.11", "10.1.0.12", "10.1.0.13"), ListenProbed: true, ListenProbes: []ListenProbe{refused("10.1.0.12"), refused("10.1.0.13")}}, report.StatusFail, "m1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkListenAddr(tc.in)
			if c.Status != tc.want || !strings.Contains(c.Summary, tc.text) {
				t.Errorf("checkListenAddr = %s %q; want %s containing %q\n%s", c.Status, c.Summary, tc.want, tc.text, evidenceText(c))
			}
		})
	}
	in := ReportInput{Nodes: nodes, Local: local, Tunnels: tun("10.1.0.11", "10.0.0.12", "10.1.0.13")}
	if got := listenProbeTargets(in); !slices.Equal(got, []string{"10.1.0.13"}) {
		t.Errorf("listenProbeTargets = %v", got)
	}
}

func evidenceText(c report.Check) string {
	var parts []string
	for _, e := range c.Evidence {
		parts = append(parts, report.EvidenceLine(e))
	}
	return strings.Join(parts, "; ")
}

func TestFirewallBackend(t *testing.T) {
	nodes := []swarm.Node{{ID: "n1", Hostname: "m1"}, {ID: "n2", Hostname: "m2"}}
	enc := []swarm.Network{{Name: "secure", Encrypted: true}}
	plain := []swarm.Network{{Name: "plain"}}
	for _, tc := range []struct {
		name string
		eng  swarm.EngineFacts
		err  error
		nets []swarm.Network
		want report.CheckStatus
		text string
	}{
		{"iptables", swarm.EngineFacts{NodeID: "n1", FirewallBackend: "iptables", ServerVersion: "29.8.0"}, nil, enc, report.StatusPass, "m1 uses iptables"},
		{"nftables with encrypted overlays", swarm.EngineFacts{NodeID: "n1", FirewallBackend: "nftables"}, nil, enc, report.StatusWarn, "experimental"},
		{"nftables without", swarm.EngineFacts{NodeID: "n1", FirewallBackend: "nftables"}, nil, plain, report.StatusPass, "nftables"},
		{"20.10 does not say", swarm.EngineFacts{NodeID: "n1", ServerVersion: "20.10.24+dfsg1"}, nil, enc, report.StatusInfo, "does not report"},
		{"info unreadable", swarm.EngineFacts{}, errors.New("reading engine info: engine unreachable"), enc, report.StatusError, "unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkFirewallBackend(nodes, nil, tc.eng, tc.err, tc.nets)
			if c.Status != tc.want || !strings.Contains(c.Summary, tc.text) {
				t.Fatalf("checkFirewallBackend = %s %q; want %s containing %q", c.Status, c.Summary, tc.want, tc.text)
			}
			if tc.err == nil && (len(c.Evidence) != 2 || c.Evidence[1].Subject != "node m2" || c.Evidence[1].Status != report.StatusInfo) {
				t.Errorf("evidence = %+v; want the asked node, then m2 as not observable", c.Evidence)
			}
		})
	}
}
