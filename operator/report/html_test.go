package report

import "testing"

// The certificate chart's days axis is marked in round steps (moved here with the chart from pki's own
// report, which `report certs` no longer has).
func TestTickStep(t *testing.T) {
	tests := []struct{ max, want float64 }{{1.04, 0.25}, {2, 0.5}, {90.04, 30}, {365, 90}, {7300, 1825}, {100000, 20000}}
	for _, tt := range tests {
		if got := tickStep(tt.max); got != tt.want {
			t.Errorf("tickStep(%v) = %v; want %v", tt.max, got, tt.want)
		}
	}
}
