package operator

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/swarm"
)

// fuzzLabels turns fuzz input into a label set: one "key=value" per line.
func fuzzLabels(s string) map[string]string {
	labels := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			labels[k] = v
		}
	}
	return labels
}

// FuzzLeaseLabels: whatever labels the lease object carries (another version, a person's edit, a hostile
// writer), reading it and ticking on it never panics, the role is one of the three, and a replica holds it
// only once it has written its own record.
func FuzzLeaseLabels(f *testing.F) {
	f.Add("swarmguard.lease.schema=1\nswarmguard.lease.holder=n0/i-n0\nswarmguard.lease.seq=7\nswarmguard.lease.ttl=30s\nswarmguard.lease.actor=operator:n0\nswarmguard.lease.what=controller")
	f.Add("swarmguard.lease.holder=\nswarmguard.lease.seq=18446744073709551615\nswarmguard.lease.ttl=-5s")
	f.Add("swarmguard.lease.holder=n1/i-n1\nswarmguard.lease.seq=x\nswarmguard.lease.ttl=9999999999h")
	f.Add("swarmguard.lease.holder=n0/i-n0\nswarmguard.lease.request=n1/i-n1\nswarmguard.lease.request.ttl=0s\nswarmguard.lease.request.actor=cli:x")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		s, clk := newFakeStore(), newFakeClock()
		s.objs["swarmguard-lease"] = swarm.ConfigObject{ID: "id", Name: "swarmguard-lease", Version: 3, Labels: fuzzLabels(text)}
		if _, err := ReadLease(t.Context(), s, "swarmguard-lease"); err != nil {
			t.Fatalf("ReadLease() = %v; want the labels shown as they are", err)
		}
		l := newTestLease(s, "n1", clk.Now)
		for range 3 {
			st, _ := l.Tick(t.Context())
			if !slices.Contains([]string{RoleHolder, RoleStandby, RoleUnknown}, st.Role) {
				t.Fatalf("role = %q", st.Role)
			}
			if st.Role == RoleHolder && s.holder("swarmguard-lease") != l.ID() {
				t.Fatalf("holder by status, but the object names %q", s.holder("swarmguard-lease"))
			}
			clk.Advance(time.Minute)
		}
		_ = ReadinessText(Readiness{Lease: l.Status(), Engine: "ok", Config: "ok"})
	})
}
