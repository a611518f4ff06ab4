// Package sensitive holds secret material (a join token, the unlock key, a Vault field, a CA key) so that it
// cannot be printed by accident. It is a leaf: the swarm and secrets adapters both import it, so the value a
// swarm read returns is the value a Vault write takes, with one fingerprint everywhere.
package sensitive

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// redacted is what every printing path of a Value writes.
const redacted = "REDACTED"

// shortLen is how many hex digits of a fingerprint people see.
const shortLen = 12

// Value is secret material. Every way of printing it (String, GoString, Format with any verb, slog's
// LogValue, JSON and text marshalling) writes "REDACTED"; only Bytes and Reveal give the content, for the
// one place that must send it on.
type Value struct{ b []byte }

// New wraps a secret string.
func New(s string) Value { return Value{b: []byte(s)} }

// FromBytes wraps b. The caller must not modify b afterwards.
func FromBytes(b []byte) Value { return Value{b: b} }

// Bytes returns the content. Never log or format it.
func (s Value) Bytes() []byte { return s.b }

// Reveal returns the content as a string. Call it only to hand the value to where it must go (the engine,
// Vault, or a terminal when the operator asked with --show).
func (s Value) Reveal() string { return string(s.b) }

// Len is the content's length in bytes; safe to print.
func (s Value) Len() int { return len(s.b) }

// IsZero reports whether there is no content.
func (s Value) IsZero() bool { return len(s.b) == 0 }

// Equal compares in constant time.
func (s Value) Equal(o Value) bool { return subtle.ConstantTimeCompare(s.b, o.b) == 1 }

// Fingerprint is the hex SHA-256 of the value ("" when empty): safe to log, store in the ledger and in
// Vault, and compare.
func (s Value) Fingerprint() string {
	if len(s.b) == 0 {
		return ""
	}
	sum := sha256.Sum256(s.b)
	return hex.EncodeToString(sum[:])
}

// Short is the first 12 hex digits of the fingerprint, for people.
func (s Value) Short() string { return Short(s.Fingerprint()) }

// Short is the first 12 hex digits of a fingerprint, for people.
func Short(fingerprint string) string {
	if len(fingerprint) > shortLen {
		return fingerprint[:shortLen]
	}
	return fingerprint
}

// Masked shows the value's non-secret prefix (SWMTKN-1- for join tokens, SWMKEY-1- for unlock keys), the
// last four characters and the short fingerprint: `SWMTKN-1-…a1b2 (sha256:0123456789ab)`.
func (s Value) Masked() string {
	v := string(s.b)
	if v == "" {
		return ""
	}
	prefix := ""
	if len(v) > 9 && v[:9] == "SWMTKN-1-" {
		prefix = "SWMTKN-1-"
	} else if len(v) > 8 && v[:8] == "SWMKEY-1" {
		prefix = "SWMKEY-1-"
	}
	last := v
	if len(last) > 4 {
		last = last[len(last)-4:]
	}
	return fmt.Sprintf("%s…%s (sha256:%s)", prefix, last, s.Short())
}

// String implements fmt.Stringer.
func (Value) String() string { return redacted }

// GoString implements fmt.GoStringer.
func (Value) GoString() string { return redacted }

// Format implements fmt.Formatter for every verb, %x and %q included.
func (Value) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue implements slog.LogValuer.
func (Value) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON implements json.Marshaler.
func (Value) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (YAML and others).
func (Value) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// minRedactLen is the shortest value RedactErr cuts out of a message: shorter ones would cut ordinary words.
const minRedactLen = 8

// redactedErr is an error whose text had secret values cut out. It keeps the chain for errors.Is.
type redactedErr struct {
	msg string
	err error
}

func (e *redactedErr) Error() string { return e.msg }
func (e *redactedErr) Unwrap() error { return e.err }

// RedactErr returns err with any of values replaced by REDACTED in its text: a second line of defence for
// errors that travel to a terminal or a log (nothing we call should echo a value, but a server might).
func RedactErr(err error, values ...Value) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, v := range values {
		if s := v.Reveal(); len(s) >= minRedactLen && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, redacted)
			changed = true
		}
	}
	if !changed {
		return err
	}
	var re *redactedErr
	if errors.As(err, &re) {
		return &redactedErr{msg: msg, err: re.err}
	}
	return &redactedErr{msg: msg, err: err}
}
