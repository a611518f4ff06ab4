package networks

import (
	"testing"
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
		{"", false, false},
		{"dev", false, false},
	} {
		vuln, known := OverlayCVEVulnerable(tc.v)
		if vuln != tc.vuln || known != tc.known {
			t.Errorf("OverlayCVEVulnerable(%q) = %v, %v; want %v, %v", tc.v, vuln, known, tc.vuln, tc.known)
		}
	}
}
