// Package domaintest holds the test helpers the domain packages' tests share (operator/tokens,
// operator/autolock, ...): a task environment on a fixed clock, a ledger entry carrying a fingerprint, and the
// check that no output holds a secret value. It imports operator, so operator's own tests cannot use it.
package domaintest

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/swarm"
)

// Actor is the actor of Env.
const Actor = "node-a"

// Env is a pass's environment: actor Actor, the clock stopped at now, debug logs written to log.
func Env(now time.Time, log *bytes.Buffer) operator.TaskEnv {
	return operator.TaskEnv{Actor: Actor, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

// Entry is a ledger entry of kind with result at at, recording fp as the credential in force after it.
func Entry(kind, result string, at time.Time, fp string) swarm.Entry {
	return swarm.Entry{Kind: kind, At: at, Result: result, Details: map[string]string{operator.DetailFingerprint: fp}}
}

// NoSecret fails t when an output holds marker, the part every fake secret value of a test carries.
func NoSecret(t testing.TB, outputs []string, marker string) {
	t.Helper()
	for i, o := range outputs {
		if strings.Contains(o, marker) {
			t.Errorf("output %d holds a secret value", i)
		}
	}
}

// Kinds are the ledger kinds of a plan's actions, in order: what the pass that follows it must record.
func Kinds(p operator.Plan) []string {
	var out []string
	for _, a := range p.Actions {
		out = append(out, a.Kind)
	}
	return out
}
