// Package guard turns a panic in a worker goroutine into an error for the one item that goroutine worked
// on (a Vault path, a secret, a service's rollout, a TLS probe), so that a bug one item meets fails that
// item and never ends the process: a panic in a goroutine nobody recovers kills every replica that meets it.
//
// The error never carries the panic's value: a value formatted into a panic may be secret material (a join
// token, a Vault field). It says what was being done, the runtime's own message for a runtime error (an
// index out of range, a nil dereference: lengths and type names, no data) or else only the value's type,
// and the function and line that panicked. It is a leaf: it imports nothing of ours.
package guard

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// ErrPanic matches every *PanicError (errors.Is).
var ErrPanic = errors.New("recovered panic")

// PanicError is a recovered panic.
type PanicError struct {
	What  string // what the goroutine was doing ("reading vault path secret/apps/db")
	Kind  string // a runtime error's message, or "panic(<type of the value>)"
	Where string // the function and file:line that panicked
	// Stack is the goroutine's stack at the panic, for the log: function names, files, lines and argument
	// words; it holds no string contents.
	Stack []byte
}

func (e *PanicError) Error() string {
	return fmt.Sprintf("%s: %s: %s at %s", e.What, ErrPanic, e.Kind, e.Where)
}

// Is makes errors.Is(err, ErrPanic) true.
func (e *PanicError) Is(target error) bool { return target == ErrPanic }

// Do calls fn and returns a panic it raised as a *PanicError (nil when fn returned).
func Do(what string, fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = Recovered(what, r)
		}
	}()
	fn()
	return nil
}

// Recovered describes r, a value recover() returned, without printing it. Call it from the deferred
// function that recovered, so that the stack still shows where the panic happened:
//
//	defer func() {
//		if r := recover(); r != nil {
//			err = guard.Recovered("probing "+addr, r)
//		}
//	}()
func Recovered(what string, r any) *PanicError {
	kind := fmt.Sprintf("panic(%T)", r)
	var re runtime.Error
	if err, ok := r.(error); ok && errors.As(err, &re) {
		kind = re.Error()
	}
	return &PanicError{What: what, Kind: kind, Where: panicSite(), Stack: debug.Stack()}
}

// panicSite is the first frame below runtime.gopanic that is not the runtime's own (runtime.panicIndex
// and friends): the line that panicked.
func panicSite() string {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(2, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	seenPanic := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			seenPanic = true
		case seenPanic && !strings.HasPrefix(f.Function, "runtime."):
			return fmt.Sprintf("%s (%s:%d)", f.Function, filepath.Base(f.File), f.Line)
		}
		if !more {
			return "unknown"
		}
	}
}
