package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// Sensitive holds a secret value read from the swarm (a join token, the unlock key). Every way of printing
// it (String, %v, %s, %q, %#v, JSON, slog) shows "REDACTED"; Reveal is the one explicit way out.
type Sensitive struct{ v string }

// NewSensitive wraps a secret value.
func NewSensitive(v string) Sensitive { return Sensitive{v: v} }

// Reveal returns the secret value. Call it only to hand the value to where it must go (the engine, Vault,
// or a terminal when the operator asked with --show).
func (s Sensitive) Reveal() string { return s.v }

// IsZero reports whether no value is held.
func (s Sensitive) IsZero() bool { return s.v == "" }

// Fingerprint is the hex SHA-256 of the value: safe to log, store in the ledger and compare.
func (s Sensitive) Fingerprint() string {
	if s.v == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(s.v))
	return hex.EncodeToString(sum[:])
}

// Short is the first 12 hex digits of the fingerprint, for people.
func (s Sensitive) Short() string {
	f := s.Fingerprint()
	if len(f) > 12 {
		return f[:12]
	}
	return f
}

// Masked shows the value's non-secret prefix up to the first '-' block for tokens, the last four
// characters and the short fingerprint: `SWMTKN-1-…a1b2 (sha256:0123456789ab)`.
func (s Sensitive) Masked() string {
	if s.v == "" {
		return ""
	}
	prefix := ""
	if len(s.v) > 9 && s.v[:9] == "SWMTKN-1-" {
		prefix = "SWMTKN-1-"
	} else if len(s.v) > 8 && s.v[:8] == "SWMKEY-1" {
		prefix = "SWMKEY-1-"
	}
	last := s.v
	if len(last) > 4 {
		last = last[len(last)-4:]
	}
	return fmt.Sprintf("%s…%s (sha256:%s)", prefix, last, s.Short())
}

const redacted = "REDACTED"

func (s Sensitive) String() string               { return redacted }
func (s Sensitive) GoString() string             { return redacted }
func (s Sensitive) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (s Sensitive) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (s Sensitive) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }
func (s Sensitive) MarshalText() ([]byte, error) { return []byte(redacted), nil }
