package main

import (
	"errors"
	"testing"

	"github.com/swarmguard/swarmguard/operator"
)

func TestPlanExit(t *testing.T) {
	var acting operator.Plan
	acting.Domain = "tokens"
	acting.Add("join-token-worker", "worker join token", "rotate", "old")
	for _, tc := range []struct {
		name  string
		plans []operator.Plan
		want  int
	}{
		{"nothing to do", []operator.Plan{{Domain: "tokens"}, {Domain: "networks"}}, ExitOK},
		{"an action", []operator.Plan{{Domain: "networks"}, acting}, ExitPlanned},
		{"an error wins over an action", []operator.Plan{acting, operator.Failed("secrets", errors.New("vault down"))}, ExitFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCode(planExit(tc.plans)); got != tc.want {
				t.Errorf("exitCode(planExit(%s)) = %d; want %d", tc.name, got, tc.want)
			}
		})
	}
}

func TestPlanDetail(t *testing.T) {
	var p operator.Plan
	p.Add("ca", "root CA", "rotate the root CA", "r")
	p.Add("ca", "root CA rotation", "follow it", "r")
	if got := planDetail(p); got != "would rotate the root CA, would follow it" {
		t.Errorf("planDetail = %q", got)
	}
	if got := planDetail(operator.Plan{}); got != "nothing to do" {
		t.Errorf("planDetail(empty) = %q", got)
	}
}
