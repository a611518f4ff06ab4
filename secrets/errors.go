package secrets

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Sentinel errors. Callers use errors.Is; a failed read is never "absent":
// only ErrNotFound means the thing is not there.
var (
	// ErrNotFound: the path, version or key does not exist in Vault.
	ErrNotFound = errors.New("not found")
	// ErrPermissionDenied: Vault refused the token for this path.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrUnreachable: Vault could not be asked, or answered that it cannot
	// serve now (sealed, standby, 5xx). Nothing may be concluded from it.
	ErrUnreachable = errors.New("vault unreachable")
	// ErrConflict: a KV v2 check-and-set did not match the current version.
	ErrConflict = errors.New("check-and-set conflict")
	// ErrInvalid: bad input (mapping, template, value too large).
	ErrInvalid = errors.New("invalid")
)

// PolicyFile is the least policy swarmguard needs, shipped in the repository.
const PolicyFile = "configs/vault-policy.hcl"

// vaultError turns what the Vault client returned into one of the sentinels,
// with a message that says what we did and what to do. op is a lower-case
// verb phrase ("reading", "writing"), path the API path we used.
func vaultError(op, path string, err error) error {
	if err == nil {
		return nil
	}
	var re *api.ResponseError
	if errors.As(err, &re) {
		switch {
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%s %q: %w: the vault token may not do this; attach the policy in %s to swarmguard's token or role",
				op, path, ErrPermissionDenied, PolicyFile)
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("%s %q: %w", op, path, ErrNotFound)
		case re.StatusCode == http.StatusBadRequest && mentions(re, "check-and-set"):
			// Vault answers a CAS mismatch with a plain 400; its message is the only mark.
			return fmt.Errorf("%s %q: %w", op, path, ErrConflict)
		case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%s %q: %w: vault answered %d%s", op, path, ErrUnreachable, re.StatusCode, vaultMessages(re))
		default:
			return fmt.Errorf("%s %q: vault answered %d%s", op, path, re.StatusCode, vaultMessages(re))
		}
	}
	if errors.Is(err, errVaultRedirect) {
		// The redirect's Location is not repeated: it is the server's text, not ours.
		return fmt.Errorf("%s %q: %w, which swarmguard does not follow (it would send the token on): set vault.address to the active node or its load balancer",
			op, path, errVaultRedirect)
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrUnreachable) || errors.Is(err, ErrConflict) {
		return fmt.Errorf("%s %q: %w", op, path, err)
	}
	// Transport errors: refused, DNS, TLS, timeout, cancelled.
	return fmt.Errorf("%s %q: %w: %w", op, path, ErrUnreachable, err)
}

func mentions(re *api.ResponseError, s string) bool {
	for _, e := range re.Errors {
		if strings.Contains(e, s) {
			return true
		}
	}
	return false
}

// vaultMessages gives Vault's own error strings, never a raw body (which
// could echo a request).
func vaultMessages(re *api.ResponseError) string {
	if re.RawError || len(re.Errors) == 0 {
		return ""
	}
	return ": " + strings.Join(re.Errors, "; ")
}
