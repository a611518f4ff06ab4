package swarm

import (
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Sentinel errors. The adapter wraps SDK errors so that errors.Is(err, ErrX) answers the question a caller has.
var (
	// ErrNotFound means the engine answered and the object does not exist. Only this error may lead to
	// treating an object as absent; any other failure is "could not read".
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists means a create found an object of that name.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict means a write lost a compare-and-swap (Docker's "update out of sequence"): re-read and decide again.
	ErrConflict = errors.New("update out of sequence")
	// ErrUnreachable means the daemon could not be reached at all.
	ErrUnreachable = errors.New("docker daemon unreachable")
	// ErrNotInSwarm means the engine is not part of a swarm.
	ErrNotInSwarm = errors.New("engine is not part of a swarm")
	// ErrNotManager means the engine is a swarm worker; swarmguard needs a manager.
	ErrNotManager = errors.New("engine is a swarm worker, not a manager")
	// ErrLocked means the manager is locked (autolock) and must be unlocked first.
	ErrLocked = errors.New("swarm manager is locked")
	// ErrInUse means the engine refused to remove an object because something still uses it.
	ErrInUse = errors.New("in use")
	// ErrCorruptLedger means the ledger's labels cannot be parsed; they are reported, never overwritten.
	ErrCorruptLedger = errors.New("ledger labels are corrupt")
)

// ConnectError explains why no usable swarm manager was reached, with what to do about it.
type ConnectError struct {
	Host string
	Err  error // one of ErrUnreachable, ErrNotInSwarm, ErrNotManager, ErrLocked
	Hint string
	// Cause is the underlying error, if any.
	Cause error
}

func (e *ConnectError) Error() string {
	msg := fmt.Sprintf("%s at %s", e.Err, e.Host)
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	if e.Hint != "" {
		msg += " (" + e.Hint + ")"
	}
	return msg
}

func (e *ConnectError) Unwrap() error { return e.Err }

// mapErr turns an SDK error into one wrapping our sentinels, with what we were doing in front.
func mapErr(doing string, err error) error {
	if err == nil {
		return nil
	}
	var sentinel error
	switch {
	case isOutOfSequence(err):
		sentinel = ErrConflict
	case client.IsErrConnectionFailed(err):
		sentinel = ErrUnreachable
	case cerrdefs.IsNotFound(err):
		sentinel = ErrNotFound
	case cerrdefs.IsConflict(err), cerrdefs.IsAlreadyExists(err):
		// The engine answers 409 both for "name already in use" and for "in use" on removal; the
		// callers that can tell the two apart do so by the operation they made.
		sentinel = ErrAlreadyExists
	}
	if sentinel != nil {
		return fmt.Errorf("%s: %w: %w", doing, sentinel, err)
	}
	return fmt.Errorf("%s: %w", doing, err)
}

// isOutOfSequence recognises a lost compare-and-swap. The engine reports it as an invalid-argument (HTTP 400 on
// older engines, 500 on some) whose only stable marker is swarmkit's message; this is the single place that
// looks at it, because no typed error is exposed for it.
func isOutOfSequence(err error) bool {
	return err != nil && strings.Contains(strings.ToLower(err.Error()), "update out of sequence")
}
