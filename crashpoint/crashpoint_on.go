//go:build crashhook

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Enabled says whether this build carries the crash hook (build tag crashhook).
const Enabled = true

// env names the step to die at: "STEP" (its first hit) or "STEP#N" (its N-th hit, from 1).
const env = "SG_TEST_CRASH"

var (
	mu   sync.Mutex
	hits = map[string]int{}
)

// At marks the named step of an action. When SG_TEST_CRASH names this step (and hit), the process prints
// "crashpoint: killed at STEP" to stderr and kills itself with SIGKILL: nothing after this line runs, no
// deferred function, no flush, as when a node loses power.
func At(step string) {
	want := os.Getenv(env)
	if want == "" {
		return
	}
	name, nth := want, 1
	if i := strings.LastIndexByte(want, '#'); i >= 0 {
		n, err := strconv.Atoi(want[i+1:])
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "crashpoint: %s=%q: the hit count after # must be a positive number\n", env, want)
			os.Exit(2)
		}
		name, nth = want[:i], n
	}
	if name != step {
		return
	}
	mu.Lock()
	hits[step]++
	n := hits[step]
	mu.Unlock()
	if n != nth {
		return
	}
	fmt.Fprintf(os.Stderr, "crashpoint: killed at %s\n", want)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way; never return into the next step
}
