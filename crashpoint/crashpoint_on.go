//go:build crashhook

package crashpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Enabled says whether this build carries the crash hook (build tag crashhook).
const Enabled = true

// env names the step to die at: "STEP" (its first hit) or "STEP#N" (its N-th hit, from 1).
const env = "SG_TEST_CRASH"

// holdEnv names a step to pause at, "STEP=FILE": at the step's first hit the process creates FILE.reached
// and waits while FILE exists (at most holdMax), so a drill can change the world at that exact point (stop
// Vault, cut a node's link) and then let the process go on, as when a dependency fails mid-action.
const holdEnv = "SG_TEST_HOLD"

// holdMax bounds a hold whose test went away without removing its file.
const holdMax = 5 * time.Minute

var (
	mu   sync.Mutex
	hits = map[string]int{}
	held = map[string]bool{}
)

// At marks the named step of an action. When SG_TEST_CRASH names this step (and hit), the process prints
// "crashpoint: killed at STEP" to stderr and kills itself with SIGKILL: nothing after this line runs, no
// deferred function, no flush, as when a node loses power.
func At(step string) {
	hold(step)
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

// hold pauses at step when SG_TEST_HOLD names it (its first hit only).
func hold(step string) {
	name, file, ok := strings.Cut(os.Getenv(holdEnv), "=")
	if !ok || name != step || file == "" {
		return
	}
	mu.Lock()
	first := !held[step]
	held[step] = true
	mu.Unlock()
	if !first {
		return
	}
	if err := os.WriteFile(file+".reached", nil, 0o600); err != nil {
		fmt.Fprintf(os.Stderr, "crashpoint: %s: %v\n", holdEnv, err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "crashpoint: holding at %s\n", step)
	for deadline := time.Now().Add(holdMax); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(file); os.IsNotExist(err) {
			break
		}
	}
	fmt.Fprintf(os.Stderr, "crashpoint: released at %s\n", step)
}
