package pki

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	tests := []struct {
		in      string
		want    Window
		wantErr bool
	}{
		{"168h", Window{Duration: 168 * time.Hour}, false},
		{"20%", Window{Percent: 20}, false},
		{" 12.5% ", Window{Percent: 12.5}, false},
		{"100%", Window{Percent: 100}, false},
		{"", Window{}, false},
		{"0", Window{}, false},
		{"0%", Window{}, true},
		{"101%", Window{}, true},
		{"x%", Window{}, true},
		{"7d", Window{}, true},
		{"-1h", Window{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWindow(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseWindow(%q) = %+v, %v; want %+v, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err == nil && tt.in != "" && tt.in != "0" {
				if back, _ := ParseWindow(got.String()); back != got {
					t.Errorf("ParseWindow(%q).String() = %q does not read back", tt.in, got.String())
				}
			}
		})
	}
}

func TestWindowJSON(t *testing.T) {
	var v struct{ W Window }
	if err := json.Unmarshal([]byte(`{"W":"15%"}`), &v); err != nil || v.W.Percent != 15 {
		t.Fatalf("Unmarshal 15%% = %+v, %v", v, err)
	}
	if err := json.Unmarshal([]byte(`{"W":"soon"}`), &v); err == nil {
		t.Errorf("Unmarshal soon = nil error; want one")
	}
	b, _ := json.Marshal(struct{ W Window }{Window{Duration: time.Hour}})
	if string(b) != `{"W":"1h0m0s"}` {
		t.Errorf("Marshal = %s", b)
	}
}

// TestWindowContains walks each boundary: one second before the window
// opens, the instant it opens, and expiry.
func TestWindowContains(t *testing.T) {
	nb := testNow.Add(-1 * time.Hour)
	na := nb.Add(25 * time.Hour) // Swarm: 24h expiry + 1h backdate
	pct := Window{Percent: 20}   // 20% of 25h = 5h
	dur := Window{Duration: 6 * time.Hour}
	odd := Window{Percent: 33.333} // truncated to the second: 8h19m59s... of 25h
	tests := []struct {
		name string
		w    Window
		now  time.Time
		want bool
	}{
		{"pct one second before", pct, na.Add(-5*time.Hour - time.Second), false},
		{"pct at opening", pct, na.Add(-5 * time.Hour), true},
		{"pct at expiry", pct, na, true},
		{"pct after expiry", pct, na.Add(time.Hour), true},
		{"dur one second before", dur, na.Add(-6*time.Hour - time.Second), false},
		{"dur at opening", dur, na.Add(-6 * time.Hour), true},
		{"zero window never", Window{}, na.Add(time.Hour), false},
		{"odd pct before", odd, na.Add(-odd.Lead(nb, na) - time.Second), false},
		{"odd pct at", odd, na.Add(-odd.Lead(nb, na)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.w.Contains(nb, na, tt.now); got != tt.want {
				t.Errorf("%v.Contains(nb, na, %s) = %v; want %v", tt.w, tt.now.Format(time.RFC3339), got, tt.want)
			}
		})
	}
	if got := odd.Lead(nb, na); got != got.Truncate(time.Second) {
		t.Errorf("Lead(33.333%%) = %v; want whole seconds", got)
	}
}
