package operator

import (
	"errors"
	"strings"
)

// tokShort is the first 12 hex digits of a fingerprint.
func tokShort(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

func tokJoinWhys(whys []string) string { return strings.Join(whys, "; ") }

// redactedErr is an error whose text had secret values cut out. It keeps the chain for errors.Is.
type redactedErr struct {
	msg string
	err error
}

func (e *redactedErr) Error() string { return e.msg }
func (e *redactedErr) Unwrap() error { return e.err }

// tokRedactErr returns err with any of values replaced by REDACTED in its text: a second line of defence
// for errors that travel to a terminal or a log (nothing we call should echo a value, but a server might).
func tokRedactErr(err error, values ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	changed := false
	for _, v := range values {
		if len(v) >= 8 && strings.Contains(msg, v) {
			msg = strings.ReplaceAll(msg, v, "REDACTED")
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
