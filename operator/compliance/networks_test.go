package compliance

import (
	"strings"
	"testing"

	"github.com/swarmguard/swarmguard/operator/networks"
	"github.com/swarmguard/swarmguard/operator/report"
)

func TestEvaluateNetworks(t *testing.T) {
	in, cfg := sampleInput(t)
	vs := networks.EvaluateNetworks(in.Networks, in.Services, cfg.Networks)
	want := map[string]struct {
		status report.CheckStatus
		exempt bool
		svcs   string
	}{
		"backend": {report.StatusFail, false, "api, web"},
		"secure":  {report.StatusPass, false, "web"},
		"legacy":  {report.StatusInfo, true, "none"},
		"lazy":    {report.StatusFail, false, "none"}, // exemption label without a reason does not exempt
		"ingress": {report.StatusInfo, true, "web"},   // exempt by config; web has a VIP on it
	}
	for _, v := range vs {
		w := want[v.Network.Name]
		if v.Status != w.status || v.Exempt != w.exempt || report.ListOrNone(v.Services) != w.svcs {
			t.Errorf("networks.EvaluateNetworks(%s) = %s exempt=%v services=%s; want %s exempt=%v services=%s",
				v.Network.Name, v.Status, v.Exempt, report.ListOrNone(v.Services), w.status, w.exempt, w.svcs)
		}
	}
	r := Build(in, cfg)
	if c := checkByID(t, r, "networks.exemptions"); c.Status != report.StatusFail || !strings.Contains(evidenceText(c), "lazy") {
		t.Errorf("networks.exemptions = %s %s; want fail naming lazy", c.Status, evidenceText(c))
	}
	c := checkByID(t, r, "networks.encrypted")
	if !strings.Contains(evidenceText(c), "backend") || !strings.Contains(c.Summary, "backend") {
		t.Errorf("7.3 evidence does not name backend: %s", evidenceText(c))
	}
}
