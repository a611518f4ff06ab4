package main

import (
	"runtime/debug"
	"testing"

	"github.com/spf13/cobra"
)

// A one-shot command collects less often; the controller and an operator's GOGC keep theirs.
func TestOneShotGC(t *testing.T) {
	t.Cleanup(func() { debug.SetGCPercent(100) })
	for _, tc := range []struct {
		use, gogc string
		want      int
	}{{"rotate", "", oneShotGCPercent}, {"run", "", 100}, {"report", "50", 100}} {
		t.Run(tc.use+"/GOGC="+tc.gogc, func(t *testing.T) {
			t.Setenv("GOGC", tc.gogc)
			debug.SetGCPercent(100)
			oneShotGC(&cobra.Command{Use: tc.use})
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent after %s with GOGC=%q = %d; want %d", tc.use, tc.gogc, got, tc.want)
			}
		})
	}
}
