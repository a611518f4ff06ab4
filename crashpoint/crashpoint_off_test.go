//go:build !crashhook

package crashpoint

import "testing"

// TestAtIsInert: without the tag, a named step survives even with the variable naming it.
func TestAtIsInert(t *testing.T) {
	t.Setenv("SG_TEST_CRASH", "unit.step")
	At("unit.step") // with the hook compiled in, this would kill the test binary
	if Enabled {
		t.Fatal("Enabled = true in a build without the crashhook tag")
	}
}
