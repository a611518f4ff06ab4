package main

import (
	"errors"
	"fmt"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/swarm"
)

// Exit codes, the same for every command (docs/commands.md "Exit codes").
const (
	ExitOK      = 0 // done, every check passed
	ExitFailed  = 1 // an action or check failed
	ExitUsage   = 2 // bad usage or configuration
	ExitNoSwarm = 3 // not connected to a usable swarm manager
	// ExitPlanned: `swarmguard plan` found actions to take (the swarm is not as the configuration says).
	ExitPlanned  = 4
	exitInternal = 1
)

// exitError carries an exit code with its message. silent means the message was already printed.
type exitError struct {
	code   int
	err    error
	silent bool
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, args ...any) error {
	return &exitError{code: ExitUsage, err: fmt.Errorf(format, args...)}
}

func failed(err error) error { return &exitError{code: ExitFailed, err: err} }

// silentExit ends with code and prints nothing more (the command said what there was to say).
func silentExit(code int) error { return &exitError{code: code, silent: true} }

// exitCode classifies an error into the documented exit codes.
func exitCode(err error) int {
	var ee *exitError
	var ce *swarm.ConnectError
	var ps config.Problems
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ce):
		return ExitNoSwarm
	case errors.Is(err, swarm.ErrUnreachable), errors.Is(err, swarm.ErrNotManager), errors.Is(err, swarm.ErrNotInSwarm), errors.Is(err, swarm.ErrLocked):
		return ExitNoSwarm
	case errors.As(err, &ps):
		return ExitUsage
	default:
		return ExitFailed
	}
}
