package guard

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const secret = "SWMTKN-1-3pu6hszjas19xyp7ghgosyx9k8atbfcr8p2is99znpy26u2lkl-1awxwuwd3z9j1z3puu7rcgdbx"

func panicWith(v any) { panic(v) }

func TestDo(t *testing.T) {
	var nilMap map[string]int
	var idx []int
	tests := []struct {
		name     string
		fn       func()
		wantKind string
	}{
		{"string value", func() { panicWith("bad token " + secret) }, "panic(string)"},
		{"error value", func() { panicWith(fmt.Errorf("reading %s", secret)) }, "panic(*errors.errorString)"},
		{"runtime error", func() { nilMap[secret]++ }, "assignment to entry in nil map"},
		{"index", func() { _ = idx[len(secret)] }, fmt.Sprintf("runtime error: index out of range [%d] with length 0", len(secret))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Do("reading vault path secret/x", tt.fn)
			var pe *PanicError
			if !errors.As(err, &pe) || !errors.Is(err, ErrPanic) {
				t.Fatalf("Do(%s) = %v; want a *PanicError matching ErrPanic", tt.name, err)
			}
			if pe.Kind != tt.wantKind {
				t.Errorf("Kind = %q; want %q", pe.Kind, tt.wantKind)
			}
			if !strings.Contains(pe.Where, "guard_test.go:") {
				t.Errorf("Where = %q; want the test's line that panicked", pe.Where)
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "reading vault path secret/x: recovered panic: ") {
				t.Errorf("Error() = %q; want what was done first", msg)
			}
			for _, out := range []string{msg, fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", pe.Kind+pe.Where), string(pe.Stack)} {
				if strings.Contains(out, secret) || strings.Contains(out, secret[:20]) {
					t.Fatalf("the panic's secret value shows in %q", out)
				}
			}
		})
	}
	if err := Do("nothing", func() {}); err != nil {
		t.Errorf("Do(no panic) = %v; want nil", err)
	}
}
