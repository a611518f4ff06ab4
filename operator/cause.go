package operator

import (
	"context"
	"errors"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// Cause classes: what an HTTP endpoint says about a failure. Raw engine and Vault error text can hold paths,
// addresses, service names or an upstream's own words; it goes to the log, and anyone who reaches the port
// gets only one of these fixed phrases.
const (
	CauseEngineUnreachable = "engine unreachable"
	CauseNotInSwarm        = "engine not in a swarm"
	CauseNotManager        = "engine is a worker, not a manager"
	CauseLocked            = "swarm manager locked"
	CauseEngineConflict    = "engine update conflict"
	CauseEngineNotFound    = "engine object not found"
	CauseLedgerCorrupt     = "ledger labels corrupt"
	CauseVaultUnreachable  = "vault unreachable"
	CauseVaultDenied       = "vault permission denied"
	CauseVaultNotFound     = "vault path or key not found"
	CauseVaultConflict     = "vault check-and-set conflict"
	CauseInvalid           = "invalid value or mapping"
	CauseLeaseLost         = "lease lost"
	CauseTimeout           = "timeout"
	CauseCancelled         = "cancelled"
	CauseOther             = "failed (the log has the detail)"
)

// Cause is err's cause class for an HTTP body: a fixed phrase, never err's text ("" for nil).
func Cause(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrLeaseLost):
		return CauseLeaseLost
	case errors.Is(err, swarm.ErrLocked):
		return CauseLocked
	case errors.Is(err, swarm.ErrNotManager):
		return CauseNotManager
	case errors.Is(err, swarm.ErrNotInSwarm):
		return CauseNotInSwarm
	case errors.Is(err, swarm.ErrUnreachable):
		return CauseEngineUnreachable
	case errors.Is(err, swarm.ErrConflict):
		return CauseEngineConflict
	case errors.Is(err, swarm.ErrCorruptLedger):
		return CauseLedgerCorrupt
	case errors.Is(err, swarm.ErrNotFound):
		return CauseEngineNotFound
	case errors.Is(err, secrets.ErrPermissionDenied):
		return CauseVaultDenied
	case errors.Is(err, secrets.ErrNotFound):
		return CauseVaultNotFound
	case errors.Is(err, secrets.ErrConflict):
		return CauseVaultConflict
	case errors.Is(err, secrets.ErrUnreachable):
		return CauseVaultUnreachable
	case errors.Is(err, secrets.ErrInvalid):
		return CauseInvalid
	case errors.Is(err, context.DeadlineExceeded):
		return CauseTimeout
	case errors.Is(err, context.Canceled):
		return CauseCancelled
	}
	return CauseOther
}
