package networks

import (
	"testing"

	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestOverlayCVEVulnerable(t *testing.T) {
	for _, tc := range []struct {
		v           string
		vuln, known bool
	}{
		{"20.10.23", true, true},
		{"20.10.24+dfsg1", false, true},
		{"20.10.24", false, true},
		{"19.03.15", true, true},
		{"23.0.0", true, true},
		{"23.0.2", true, true},
		{"23.0.3", false, true},
		{"24.0.7", false, true},
		{"28.5.2", false, true},
		{"v23.0.1-rc.1", true, true},
		// current releases and how distributions build them
		{"29.8.0", false, true},
		{"29.0.0-rc.1", false, true},
		{"27.3.1-ce", false, true},
		{"28.5.2-1~debian.12", false, true},
		{"5:28.5.2-1~debian.12~bookworm", false, true},
		{"5:20.10.23~3-0~debian-bullseye", true, true},
		{"20.10.24+dfsg1-1+deb12u1", false, true},
		{"20.10.21+dfsg1", true, true},
		{"23.0.2-0ubuntu1~22.04.1", true, true},
		{"18.09.1", true, true},
		{" 24.0.7 ", false, true},
		// not release numbers
		{"", false, false},
		{"dev", false, false},
		{"library-import", false, false},
		{"0.0.0-20250101000000-abcdef", false, false},
		{"29", false, false},
		{"x:29.8.0", false, false},
	} {
		vuln, known := OverlayCVEVulnerable(tc.v)
		if vuln != tc.vuln || known != tc.known {
			t.Errorf("OverlayCVEVulnerable(%q) = %v, %v; want %v, %v", tc.v, vuln, known, tc.vuln, tc.known)
		}
	}
}

func TestEngineConsistentNamesTheNodesThatDiffer(t *testing.T) {
	node := func(h, v string) swarm.Node { return swarm.Node{ID: h, Hostname: h, EngineVersion: v} }
	for _, tc := range []struct {
		name   string
		nodes  []swarm.Node
		status report.CheckStatus
		want   string
	}{
		{"one version", []swarm.Node{node("m1", "29.8.0"), node("w1", "29.8.0")}, report.StatusPass, "all 2 node(s) run 29.8.0"},
		{"rolling upgrade: the worker left behind", []swarm.Node{node("m1", "29.8.0"), node("m2", "29.8.0"), node("m3", "29.8.0"), node("w1", "20.10.24+dfsg1")},
			report.StatusWarn, "2 different engine versions: w1 runs 20.10.24+dfsg1; the other 3 node(s) run 29.8.0"},
		{"a tie names the older ones", []swarm.Node{node("m1", "20.10.24+dfsg1"), node("m2", "29.8.0")},
			report.StatusWarn, "2 different engine versions: m1 runs 20.10.24+dfsg1; the other 1 node(s) run 29.8.0"},
		{"three versions", []swarm.Node{node("a", "28.5.2"), node("b", "29.8.0"), node("c", "29.8.0"), node("d", "")},
			report.StatusWarn, "3 different engine versions: a runs 28.5.2; d runs unknown; the other 2 node(s) run 29.8.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := checkEngineConsistent(tc.nodes, nil)
			if c.Status != tc.status || c.Summary != tc.want {
				t.Errorf("checkEngineConsistent = %s %q; want %s %q", c.Status, c.Summary, tc.status, tc.want)
			}
		})
	}
}
