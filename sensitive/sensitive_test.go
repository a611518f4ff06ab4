package sensitive

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestValueNeverPrints(t *testing.T) {
	const leak = "SWMTKN-1-abcdef-verysecretpart"
	v := New(leak)
	for _, s := range []string{fmt.Sprint(v), fmt.Sprintf("%q %x %#v", v, v, v), v.String(), v.Masked()} {
		if strings.Contains(s, "verysecretpart") {
			t.Errorf("printed %q; want no secret", s)
		}
	}
	if got := v.Masked(); !strings.HasPrefix(got, "SWMTKN-1-…part (sha256:") {
		t.Errorf("Masked() = %q; want the SWMTKN-1- prefix, the last four and the short fingerprint", got)
	}
	if v.Short() != v.Fingerprint()[:12] || Short("abc") != "abc" {
		t.Errorf("Short() = %q; want the first 12 hex digits of %q", v.Short(), v.Fingerprint())
	}
}

func TestRedactErr(t *testing.T) {
	base := errors.New("root")
	err := RedactErr(fmt.Errorf("server said SWMKEY-1-secret: %w", base), New("SWMKEY-1-secret"), New("short"))
	if got := err.Error(); got != "server said REDACTED: root" {
		t.Errorf("RedactErr() = %q; want the value cut out", got)
	}
	if !errors.Is(err, base) {
		t.Errorf("errors.Is(RedactErr(), base) = false; want the chain kept")
	}
	if plain := errors.New("nothing here"); RedactErr(plain, New("SWMKEY-1-secret")) != plain {
		t.Errorf("RedactErr() of an error without the value changed it")
	}
}
