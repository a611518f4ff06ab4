package certs

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/internal/ledgertest"
	"github.com/swarmguard/swarmguard/operator/internal/testpki"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/pki"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestCAAgreeWithReport walks the CA age policy's boundaries and holds the controller's action (does the
// scheduled pass start a rotation) and the report's verdict (pki.ca-age) side by side. Both count from the
// later of the root's NotBefore and the ledger's newest CA entry, and both say due at the max age.
func TestCAAgreeWithReport(t *testing.T) {
	const maxAge = 8760 * time.Hour
	now := certsNowT
	for _, tc := range []struct {
		name       string
		rootAge    time.Duration
		ledgerAge  time.Duration // 0: no ledger entry
		inProgress bool
		wantFail   bool
		wantStart  bool
	}{
		{"one second before max age", maxAge - time.Second, 0, false, false, false},
		{"exactly at max age", maxAge, 0, false, true, true},
		{"one second past max age", maxAge + time.Second, 0, false, true, true},
		{"missing ledger entry: NotBefore counts", 2 * maxAge, 0, false, true, true},
		{"ledger rotation newer than NotBefore", 2 * maxAge, time.Hour, false, false, false},
		{"ledger entry exactly at max age", 2 * maxAge, maxAge, false, true, true},
		{"overdue, rotation in progress: follow, do not restart", maxAge + time.Second, 0, true, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := testpki.NewRoot(t, 1, now.Add(-tc.rootAge))
			var entries []swarm.Entry
			if tc.ledgerAge > 0 {
				entries = []swarm.Entry{{Kind: swarm.KindCA, At: now.Add(-tc.ledgerAge), Result: swarm.ResultOK, Details: map[string]string{"action": "completed"}}}
			}
			c := certsPKIConf(config.ModeEnforce)
			c.CA.MaxAge = config.Duration(maxAge)
			eng := &fakeCertsEngine{states: []swarm.CAState{{TrustRootPEM: root.PEM, RootRotationInProgress: tc.inProgress}}, rotateRes: swarm.RotateCAResult{Started: true, ForceRotate: 1}}
			start, err := ScheduledCARotation(t.Context(), eng, ledgertest.New(entries...), c, operator.TaskEnv{Actor: "node1", Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			verdict := checkCAAge(swarm.Cluster{TrustRootPEM: root.PEM, RootRotationInProgress: tc.inProgress}, entries, nil, c.CA, now)
			if start.Started != tc.wantStart || (verdict.Status == report.StatusFail) != tc.wantFail {
				t.Errorf("controller started %v, report %s (%s); want started %v, fail %v", start.Started, verdict.Status, verdict.Summary, tc.wantStart, tc.wantFail)
			}
			if start.Started && verdict.Status != report.StatusFail {
				t.Errorf("the controller rotates a root the report passes")
			}
		})
	}
}

// TestCAKeyAgreeWithReport holds the controller's CA key finding (pki.Evaluate: ca-weak-key) and the
// report's pki.ca-key-strength side by side, an unknown algorithm included (weak in both).
func TestCAKeyAgreeWithReport(t *testing.T) {
	strong, err := pki.ParseCertificate([]byte(testpki.NewRoot(t, 1, certsNowT).PEM))
	if err != nil {
		t.Fatal(err)
	}
	unknown := &x509.Certificate{Subject: pkix.Name{CommonName: "swarm-ca"}, PublicKey: struct{}{}, NotBefore: certsNowT, NotAfter: certsNowT.Add(time.Hour)}
	for _, tc := range []struct {
		name     string
		cert     *x509.Certificate
		wantWeak bool
	}{{"ECDSA P-256", strong, false}, {"unknown algorithm", unknown, true}} {
		t.Run(tc.name, func(t *testing.T) {
			p, _ := PKIPolicy(certsPKIConf(config.ModeAudit))
			controllerWeak := false
			for _, f := range pki.Evaluate(pki.Inventory{CA: pki.CAInfo{CertFacts: pki.Facts(tc.cert), Cert: tc.cert}}, p, certsNowT) {
				controllerWeak = controllerWeak || f.ID == pki.FindingCAWeakKey
			}
			verdict := keyStrengthVerdict(report.Check{ID: "pki.ca-key-strength"}, tc.cert)
			if controllerWeak != tc.wantWeak || (verdict.Status == report.StatusFail) != controllerWeak {
				t.Errorf("controller weak %v, report %s (%s); want weak %v in both", controllerWeak, verdict.Status, verdict.Summary, tc.wantWeak)
			}
		})
	}
}
