package report

import (
	"testing"
)

// Worse orders pass < info < warn < fail < error, whichever side each is on; an unknown status counts as
// error, so it is never hidden.
func TestWorse(t *testing.T) {
	order := []CheckStatus{StatusPass, StatusInfo, StatusWarn, StatusFail, StatusError}
	for i, a := range order {
		for j, b := range order {
			want := order[max(i, j)]
			if got := Worse(a, b); got != want {
				t.Errorf("Worse(%s, %s) = %s; want %s", a, b, got, want)
			}
		}
	}
	if got := Worse(StatusFail, CheckStatus("bogus")); got != "bogus" {
		t.Errorf("Worse(fail, bogus) = %s; want the unknown status", got)
	}
	r := Report{Checks: []Check{{Status: StatusError}, {Status: StatusFail}}}
	if got := r.Worst(); got != StatusError {
		t.Errorf("Worst() of error then fail = %s; want error", got)
	}
}
