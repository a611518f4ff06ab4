package pki

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// ids lists finding ids for one node ("" = cluster-wide).
func ids(fs []Finding, node string) []string {
	var out []string
	for _, f := range fs {
		if f.Node == node {
			out = append(out, f.ID)
		}
	}
	return out
}

func knownNode(id, state string, nb, na time.Time) NodeCert {
	return NodeCert{ID: id, Hostname: "host-" + id, Role: RoleWorker, State: state, Known: true,
		Cert: CertFacts{NotBefore: nb, NotAfter: na}, Source: SourceControlAPI, IssuerKnown: true, IssuerCurrent: true}
}

// TestEvaluateNodeWindows checks each boundary of the warn and critical
// windows, for a duration and a percentage policy.
func TestEvaluateNodeWindows(t *testing.T) {
	nb := testNow.Add(-80 * day)
	na := nb.Add(90 * day)                                                              // 10 days left at testNow
	pct := Policy{WarnBefore: Window{Percent: 20}, CriticalBefore: Window{Percent: 10}} // 18d, 9d
	dur := Policy{WarnBefore: Window{Duration: 168 * time.Hour}, CriticalBefore: Window{Duration: 48 * time.Hour}}
	sec := time.Second
	tests := []struct {
		name string
		p    Policy
		now  time.Time
		want []string
	}{
		{"pct: 1s before warn", pct, na.Add(-18*day - sec), nil},
		{"pct: warn opens", pct, na.Add(-18 * day), []string{FindingCertWarn}},
		{"pct: 1s before critical", pct, na.Add(-9*day - sec), []string{FindingCertWarn}},
		{"pct: critical opens", pct, na.Add(-9 * day), []string{FindingCertCritical}},
		{"pct: 1s before expiry", pct, na.Add(-sec), []string{FindingCertCritical}},
		{"pct: expiry instant", pct, na, []string{FindingCertExpired}},
		{"dur: 1s before warn", dur, na.Add(-7*day - sec), nil},
		{"dur: warn opens", dur, na.Add(-7 * day), []string{FindingCertWarn}},
		{"dur: critical opens", dur, na.Add(-2 * day), []string{FindingCertCritical}},
		{"no windows: only expiry", Policy{}, na.Add(-sec), nil},
		{"no windows: expired", Policy{}, na.Add(sec), []string{FindingCertExpired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := Inventory{Nodes: []NodeCert{knownNode("n1", StateReady, nb, na)}, CA: goodCA()}
			got := ids(Evaluate(inv, tt.p, tt.now), "n1")
			if !slices.Equal(got, tt.want) {
				t.Errorf("Evaluate(now=%s) = %v; want %v", tt.now.Format(time.RFC3339), got, tt.want)
			}
		})
	}
}

func goodCA() CAInfo {
	return CAInfo{CertFacts: CertFacts{Subject: "CN=swarm-ca", Serial: "1", KeyAlgorithm: "ECDSA", KeyBits: 256,
		NotBefore: testNow.Add(-30 * day), NotAfter: testNow.Add(7000 * day)}}
}

func TestLikelyBack(t *testing.T) {
	tests := []struct {
		name      string
		downSince time.Time
		floor     time.Duration
		want      time.Time
	}{
		{"down 10 days: back in 10 more", testNow.Add(-10 * day), 0, testNow.Add(10 * day)},
		{"down an hour: floor of a day", testNow.Add(-time.Hour), 0, testNow.Add(day)},
		{"unknown since: floor", time.Time{}, 0, testNow.Add(day)},
		{"custom floor", testNow.Add(-time.Hour), 3 * day, testNow.Add(3 * day)},
		{"clock skew: since in the future", testNow.Add(time.Hour), 0, testNow.Add(day)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LikelyBack(tt.downSince, testNow, tt.floor); !got.Equal(tt.want) {
				t.Errorf("LikelyBack(%v, now, %v) = %v; want %v", tt.downSince, tt.floor, got, tt.want)
			}
		})
	}
}

func TestEvaluateDownNode(t *testing.T) {
	nb := testNow.Add(-80 * day)
	p := Policy{} // windows off: only the down-node rule speaks
	tests := []struct {
		name      string
		state     string
		downSince time.Time
		notAfter  time.Time
		want      []string
	}{
		{"down 10d, lapses in 10d (exactly when likely back)", StateDown, testNow.Add(-10 * day), testNow.Add(10 * day), []string{FindingCertLapsesWhileDown}},
		{"down 10d, lapses in 10d+1s", StateDown, testNow.Add(-10 * day), testNow.Add(10*day + time.Second), nil},
		{"down 1h, lapses in 23h (floor)", StateDown, testNow.Add(-time.Hour), testNow.Add(23 * time.Hour), []string{FindingCertLapsesWhileDown}},
		{"down since unknown, lapses in 2d", StateDown, time.Time{}, testNow.Add(2 * day), nil},
		{"disconnected counts as down", "disconnected", testNow.Add(-5 * day), testNow.Add(4 * day), []string{FindingCertLapsesWhileDown}},
		{"ready node never", StateReady, time.Time{}, testNow.Add(time.Hour), nil},
		{"already lapsed: expired only", StateDown, testNow.Add(-10 * day), testNow.Add(-time.Second), []string{FindingCertExpired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := knownNode("n1", tt.state, nb, tt.notAfter)
			n.DownSince = tt.downSince
			fs := Evaluate(Inventory{Nodes: []NodeCert{n}, CA: goodCA()}, p, testNow)
			if got := ids(fs, "n1"); !slices.Equal(got, tt.want) {
				t.Errorf("Evaluate = %v; want %v (%v)", got, tt.want, fs)
			}
		})
	}
}

func TestEvaluateCAAndCluster(t *testing.T) {
	ca := func(mut func(*CAInfo)) CAInfo { c := goodCA(); mut(&c); return c }
	tests := []struct {
		name string
		inv  Inventory
		p    Policy
		want []string
	}{
		{"healthy", Inventory{CA: goodCA()}, Policy{CAMaxAge: 8760 * time.Hour}, nil},
		{"unreadable", Inventory{CA: CAInfo{Err: ErrNoCertificate}}, Policy{}, []string{FindingCAUnreadable}},
		{"expiring within a year", Inventory{CA: ca(func(c *CAInfo) { c.NotAfter = testNow.Add(365 * day) })}, Policy{}, []string{FindingCAExpiring}},
		{"a year and a second left", Inventory{CA: ca(func(c *CAInfo) { c.NotAfter = testNow.Add(365*day + time.Second) })}, Policy{}, nil},
		{"expired", Inventory{CA: ca(func(c *CAInfo) { c.NotAfter = testNow })}, Policy{}, []string{FindingCAExpired}},
		{"max age exactly", Inventory{CA: ca(func(c *CAInfo) { c.NotBefore = testNow.Add(-30 * day) })}, Policy{CAMaxAge: 30 * day}, nil},
		{"max age passed", Inventory{CA: ca(func(c *CAInfo) { c.NotBefore = testNow.Add(-30*day - time.Second) })}, Policy{CAMaxAge: 30 * day}, []string{FindingCAMaxAge}},
		{"weak rsa", Inventory{CA: ca(func(c *CAInfo) { c.KeyAlgorithm, c.KeyBits = "RSA", 1024 })}, Policy{}, []string{FindingCAWeakKey}},
		{"rotation running", Inventory{CA: goodCA(), RootRotationInProgress: true}, Policy{}, []string{FindingCARotation}},
		{"expiry drift", Inventory{CA: goodCA(), NodeCertExpiry: 2160 * time.Hour}, Policy{NodeCertExpiry: 24 * time.Hour}, []string{FindingNodeCertExpiry}},
		{"expiry matches", Inventory{CA: goodCA(), NodeCertExpiry: 24 * time.Hour}, Policy{NodeCertExpiry: 24 * time.Hour}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ids(Evaluate(tt.inv, tt.p, testNow), ""); !slices.Equal(got, tt.want) {
				t.Errorf("Evaluate = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestEvaluateIssuerAndUnknown(t *testing.T) {
	old := knownNode("old", StateReady, testNow.Add(-day), testNow.Add(80*day))
	old.IssuerCurrent = false
	unk := NodeCert{ID: "unk", Hostname: "w", Role: RoleWorker, Source: SourceUnknown, Reason: "control API: not listed"}
	inv := Inventory{CA: goodCA(), Nodes: []NodeCert{old, unk}}
	fs := Evaluate(inv, DefaultPolicy(), testNow)
	want := []Finding{
		{ID: FindingCertOldIssuer, Severity: SeverityWarn, Node: "old", Message: "host-old: certificate issued by an old root CA"},
		{ID: FindingCertUnknown, Severity: SeverityInfo, Node: "unk", Message: "w: certificate not read: control API: not listed"},
	}
	if !slices.Equal(fs, want) {
		t.Errorf("Evaluate = %+v; want %+v", fs, want)
	}
	inv.RootRotationInProgress = true
	fs = Evaluate(inv, DefaultPolicy(), testNow)
	for _, f := range fs {
		if f.ID == FindingCertOldIssuer && (f.Severity != SeverityInfo || !strings.Contains(f.Message, "rotation in progress")) {
			t.Errorf("during rotation: %+v; want info about the rotation", f)
		}
	}
}

func TestSortFindings(t *testing.T) {
	fs := []Finding{
		{ID: "b", Severity: SeverityInfo, Node: "2"},
		{ID: "a", Severity: SeverityWarn, Node: "1"},
		{ID: "z", Severity: SeverityCritical},
		{ID: "a", Severity: SeverityWarn, Node: "0"},
	}
	SortFindings(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID+f.Node)
	}
	if want := []string{"z", "a0", "a1", "b2"}; !slices.Equal(got, want) {
		t.Errorf("SortFindings = %v; want %v", got, want)
	}
}
