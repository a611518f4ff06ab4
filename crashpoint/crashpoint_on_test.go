//go:build crashhook

package crashpoint

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

// TestAtHoldsUntilReleased: with SG_TEST_HOLD=a=FILE the child stops at its first "a" (FILE.reached
// appears, nothing after it has run) and goes on once FILE is removed; later hits do not hold again.
func TestAtHoldsUntilReleased(t *testing.T) {
	if os.Getenv("CRASHPOINT_CHILD") == "1" {
		for range 2 {
			At("a")
			os.Stdout.WriteString("after a\n")
		}
		return
	}
	file := filepath.Join(t.TempDir(), "hold")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAtHoldsUntilReleased$")
	cmd.Env = append(os.Environ(), "CRASHPOINT_CHILD=1", "SG_TEST_HOLD=a="+file)
	// The child writes to a file, not a pipe the test would read while it runs.
	outFile, err := os.Create(file + ".out")
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	out := func() string { b, _ := os.ReadFile(file + ".out"); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(file + ".reached"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the child never reached the hold: %s", out())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(out(), "after a") {
		t.Errorf("the child went past the held step before its release: %q", out())
	}
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, out())
	}
	if got := strings.Count(out(), "after a"); got != 2 || strings.Count(out(), "crashpoint: holding at a") != 1 {
		t.Errorf("output %q; want one hold and both steps done after the release", out())
	}
}
