package certs

import (
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/testpki"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

func TestNodeCertExpiryAndCA(t *testing.T) {
	p := config.PKIConfig{NodeCertExpiry: config.Duration(720 * time.Hour)}
	for _, tc := range []struct {
		got  time.Duration
		want report.CheckStatus
	}{{720 * time.Hour, report.StatusPass}, {24 * time.Hour, report.StatusPass}, {2160 * time.Hour, report.StatusFail}, {0, report.StatusWarn}} {
		if s := checkNodeCertExpiry(swarm.Cluster{NodeCertExpiry: tc.got}, p).Status; s != tc.want {
			t.Errorf("checkNodeCertExpiry(%s) = %s; want %s", tc.got, s, tc.want)
		}
	}
	old := swarm.Cluster{TrustRootPEM: testpki.CAPEM(t, fixedNow.Add(-100*24*time.Hour))}
	ca := config.CAConfig{MaxAge: config.Duration(30 * 24 * time.Hour)}
	if s := checkCAAge(old, nil, nil, ca, fixedNow).Status; s != report.StatusFail {
		t.Errorf("checkCAAge(100 days, max 30) = %s; want fail", s)
	}
	rotated := []swarm.Entry{{Kind: swarm.KindCA, At: fixedNow.Add(-24 * time.Hour), Result: swarm.ResultOK}}
	if s := checkCAAge(old, rotated, nil, ca, fixedNow).Status; s != report.StatusPass {
		t.Errorf("checkCAAge(rotated a day ago per ledger) = %s; want pass", s)
	}
	if s := checkCAAge(old, nil, nil, config.CAConfig{}, fixedNow).Status; s != report.StatusWarn {
		t.Errorf("checkCAAge(no policy) = %s; want warn", s)
	}
	if s := checkCAKeyStrength(old).Status; s != report.StatusPass {
		t.Errorf("checkCAKeyStrength(P-256) = %s; want pass", s)
	}
}

// fixedNow is the report time of the tests.
var fixedNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
