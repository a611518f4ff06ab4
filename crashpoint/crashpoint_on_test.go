//go:build crashhook

package crashpoint

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAtKillsAtTheNamedHit re-runs this test binary as a child that passes step "a" three times and then
// prints "survived"; SG_TEST_CRASH=a#2 must kill it at the second hit.
func TestAtKillsAtTheNamedHit(t *testing.T) {
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		for range 3 {
			At("b")
			At("a")
		}
		os.Stdout.WriteString("survived\n")
		return
	}
	for _, tc := range []struct {
		env      string
		killed   bool
		wantText string
	}{
		{"a#2", true, "crashpoint: killed at a#2"},
		{"a", true, "crashpoint: killed at a"},
		{"a#4", false, "survived"},
		{"c", false, "survived"},
	} {
		t.Run(tc.env, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestAtKillsAtTheNamedHit$")
			cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", "SG_TEST_CRASH="+tc.env)
			out, err := cmd.CombinedOutput()
			if killed := err != nil; killed != tc.killed {
				t.Errorf("SG_TEST_CRASH=%s: killed = %v (%v); want %v\n%s", tc.env, killed, err, tc.killed, out)
			}
			if !strings.Contains(string(out), tc.wantText) {
				t.Errorf("SG_TEST_CRASH=%s: output %q; want %q", tc.env, out, tc.wantText)
			}
		})
	}
}
