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
