package report

import "testing"

func TestFails(t *testing.T) {
	tests := []struct {
		worst  CheckStatus
		failOn string
		want   bool
	}{
		{StatusPass, "", false}, {StatusFail, "", false}, {StatusError, "", true},
		{StatusInfo, FailOnWarn, false}, {StatusWarn, FailOnWarn, true}, {StatusError, FailOnWarn, true},
		{StatusWarn, FailOnFail, false}, {StatusFail, FailOnFail, true}, {StatusError, FailOnFail, true},
		{StatusError, FailOnNone, false}, {"bogus", "", true},
	}
	for _, tt := range tests {
		if got := Fails(tt.worst, tt.failOn); got != tt.want {
			t.Errorf("Fails(%q, %q) = %v; want %v", tt.worst, tt.failOn, got, tt.want)
		}
	}
}
