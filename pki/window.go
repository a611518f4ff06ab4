package pki

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Window is how long before a certificate's NotAfter a warning (or a critical
// finding) starts: either a fixed duration or a percentage of the
// certificate's validity. The zero Window is "off".
type Window struct {
	Duration time.Duration
	Percent  float64 // 0 < Percent <= 100 when set
}

// ParseWindow reads "168h" (a Go duration) or "20%" (of the validity).
func ParseWindow(s string) (Window, error) {
	s = strings.TrimSpace(s)
	if s == "" || s == "0" {
		return Window{}, nil
	}
	if p, ok := strings.CutSuffix(s, "%"); ok {
		v, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || v <= 0 || v > 100 {
			return Window{}, fmt.Errorf("%q is not a percentage between 0 and 100 (example: 20%%)", s)
		}
		return Window{Percent: v}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return Window{}, fmt.Errorf("%q is neither a duration nor a percentage (example: 168h or 20%%)", s)
	}
	return Window{Duration: d}, nil
}

// MustWindow is ParseWindow for constants; it panics on a bad value.
func MustWindow(s string) Window {
	w, err := ParseWindow(s)
	if err != nil {
		panic(err)
	}
	return w
}

// IsZero reports whether the window is off.
func (w Window) IsZero() bool { return w.Duration == 0 && w.Percent == 0 }

// String renders the window as ParseWindow reads it.
func (w Window) String() string {
	switch {
	case w.Percent > 0:
		return strconv.FormatFloat(w.Percent, 'f', -1, 64) + "%"
	case w.Duration > 0:
		return w.Duration.String()
	default:
		return "0"
	}
}

// MarshalText makes a Window print as its String in JSON and YAML.
func (w Window) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText reads what ParseWindow reads.
func (w *Window) UnmarshalText(b []byte) error {
	v, err := ParseWindow(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// Lead is how long before notAfter the window opens for a certificate valid
// from notBefore to notAfter. A percentage is truncated to the second so that
// boundaries are exact.
func (w Window) Lead(notBefore, notAfter time.Time) time.Duration {
	if w.Percent > 0 {
		validity := notAfter.Sub(notBefore)
		return time.Duration(float64(validity) * w.Percent / 100).Truncate(time.Second)
	}
	return w.Duration
}

// Opens is the instant the window opens: notAfter minus the lead.
func (w Window) Opens(notBefore, notAfter time.Time) time.Time {
	return notAfter.Add(-w.Lead(notBefore, notAfter))
}

// Contains reports whether now is inside the window: from its opening
// (inclusive) onwards. An expired certificate is inside every non-zero window.
func (w Window) Contains(notBefore, notAfter, now time.Time) bool {
	if w.IsZero() {
		return false
	}
	return !now.Before(w.Opens(notBefore, notAfter))
}
