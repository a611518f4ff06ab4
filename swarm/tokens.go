package swarm

import (
	"context"
	"errors"
	"fmt"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"

	"github.com/swarmguard/swarmguard/sensitive"
)

// Join-token kinds, as the CLI names them.
const (
	TokenWorker  = "worker"
	TokenManager = "manager"
)

// ErrNotRotated means the engine accepted a rotation but the credential read back is the one it replaced.
var ErrNotRotated = errors.New("the engine did not change the credential")

// TokenRotation is what one join-token rotation changed. Old and New are the tokens themselves: keep them
// in memory, print them only masked.
type TokenRotation struct {
	Kind string // TokenWorker or TokenManager
	Old  sensitive.Value
	New  sensitive.Value
	// SwarmID names the swarm the token admits to.
	SwarmID string
}

// RotateJoinTokens rotates the worker token, the manager token or both in one compare-and-swap spec write,
// then reads the swarm again and returns, per rotated kind, the token it replaced and the new one.
// The spec itself is written back unchanged.
func (c *Client) RotateJoinTokens(ctx context.Context, worker, manager bool) ([]TokenRotation, error) {
	if !worker && !manager {
		return nil, nil
	}
	before, err := c.updateSwarm(ctx, "rotating join tokens", nil, RotateFlags{WorkerToken: worker, ManagerToken: manager})
	if err != nil {
		return c.rotationOutcome(ctx, before, err, worker, manager)
	}
	after, err := readBack(ctx, c.inspectSwarm)
	if err != nil {
		return nil, fmt.Errorf("reading the new join tokens: %w (the rotation itself was accepted)", err)
	}
	return tokenRotations(before, after, worker, manager)
}

// Reading back what an accepted change produced (the new join token, the new unlock key) is retried: the
// change has happened whatever comes next, and its record (ledger entry, escrow) needs what it produced. A
// read can fail for reasons that pass in a moment: the process was paused past its call timeout, or the pass
// was cancelled because the lease was lost meanwhile. Measured on the lab (TestRuntimeRaceRotations, a holder
// frozen between its accepted rotation and the read): without this, the rotation was recorded as failed with no
// fingerprint and the next holder adopted the token as changed outside the ledger. The retries run on a context
// that ignores the pass's cancellation (a read changes nothing), each bounded by readBackTimeout.
const (
	readBackAttempts = 3
	readBackPause    = 500 * time.Millisecond
	readBackTimeout  = 5 * time.Second
)

func readBack[T any](ctx context.Context, read func(context.Context) (T, error)) (T, error) {
	v, err := read(ctx)
	for i := 1; err != nil && i < readBackAttempts; i++ {
		time.Sleep(readBackPause) // not cut short by ctx: it is the record of a change already made
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readBackTimeout)
		v, err = read(rctx)
		cancel()
	}
	return v, err
}

// rotationOutcome decides what a rotation whose answer was lost did. A write that timed out may have been
// applied (measured on the lab: a holder paused during its POST /swarm/update found, once resumed, the token
// rotated and its own call failed with "context deadline exceeded"). The write was made against before's
// version, so when the swarm read back is at a later version, the asked-for tokens changed and the others
// did not, the write was this one: the rotation is returned, to be recorded as done. A later version, not
// exactly the next one: versions are Raft indexes shared by every object of the store, and the lease's
// config object alone is written every few seconds, so the swarm's next version is never before's + 1.
// Anything else keeps the error: a refusal, a conflict, or a change this caller cannot claim (a token it
// did not ask for changed too: the next holder adopts it).
func (c *Client) rotationOutcome(ctx context.Context, before swarmtypes.Swarm, err error, worker, manager bool) ([]TokenRotation, error) {
	if before.ID == "" || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnreachable)) {
		return nil, err
	}
	after, rerr := readBack(ctx, c.inspectSwarm)
	if rerr != nil {
		return nil, fmt.Errorf("%w (reading back whether it was applied: %v)", err, rerr)
	}
	if after.Version.Index <= before.Version.Index ||
		(!worker && after.JoinTokens.Worker != before.JoinTokens.Worker) ||
		(!manager && after.JoinTokens.Manager != before.JoinTokens.Manager) {
		return nil, err
	}
	rots, terr := tokenRotations(before, after, worker, manager)
	if terr != nil {
		return nil, err
	}
	return rots, nil
}

func tokenRotations(before, after swarmtypes.Swarm, worker, manager bool) ([]TokenRotation, error) {
	var out []TokenRotation
	add := func(kind, old, cur string) error {
		r := TokenRotation{Kind: kind, Old: sensitive.New(old), New: sensitive.New(cur), SwarmID: after.ID}
		if cur == "" || cur == old {
			return fmt.Errorf("rotating the %s join token: %w (sha256:%s before and after)", kind, ErrNotRotated, r.New.Short())
		}
		out = append(out, r)
		return nil
	}
	if worker {
		if err := add(TokenWorker, before.JoinTokens.Worker, after.JoinTokens.Worker); err != nil {
			return out, err
		}
	}
	if manager {
		if err := add(TokenManager, before.JoinTokens.Manager, after.JoinTokens.Manager); err != nil {
			return out, err
		}
	}
	return out, nil
}
