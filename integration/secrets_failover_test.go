//go:build integration

package integration

import (
	"strings"
	"testing"
	"time"
)

// TestSecretsSyncFailedRolloutNotRetriedAfterFailovers: a rollout that failed (f1 rolled back) is not rolled
// again by the next holders: each `run --once` is a new process that knows the failure only from the
// ledger, and each records it again with the service that failed, so the one after it knows it too
// (issue 21, finding 1: the second new holder rolled the bad value onto f1 again).
func TestSecretsSyncFailedRolloutNotRetriedAfterFailovers(t *testing.T) {
	f := newSecretsFixture(t, "failover", "")
	image := failifImage(t, f.env)
	good, bad := "good-"+f.run, "bad-"+f.run
	f.put(good)
	f.mustSG("rotate", "secret", f.name)
	n1 := f.versionNamed("1")
	f1 := f.service("f1", "--secret", "source="+n1+",target=pw", "--update-failure-action", "rollback",
		"--update-max-failure-ratio", "0", "--restart-max-attempts", "0", "--restart-condition", "on-failure", image, "/run/secrets/pw")
	f.prints(f1, "/run/secrets/pw", good)

	f.put(bad)
	if r := f.sg(nil, "rotate", "secret", f.name, "--reason", "bad value"); r.Code != 1 {
		t.Fatalf("rotate with a failing service exited %d; want 1\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	eventually(t, 90*time.Second, f1+" back on the old secret", func() bool {
		refs := f.serviceSecrets(f1)
		return len(refs) == 1 && strings.HasPrefix(refs[0], n1+">")
	})
	before := f.serviceVersion(f1)
	for holder := 2; holder <= 3; holder++ {
		r := f.sg(nil, "run", "--once")
		if got := f.serviceVersion(f1); got != before {
			t.Fatalf("holder %d (run --once) updated %s again (version %s -> %s): a rollout known to fail was retried\n%s\n%s",
				holder, f1, before, got, r.Stdout, r.Stderr)
		}
		if !strings.Contains(r.Stdout, "secret "+f.name+": failed") {
			t.Errorf("holder %d: run --once does not say the mapping failed:\n%s", holder, r.Stdout)
		}
	}
}
