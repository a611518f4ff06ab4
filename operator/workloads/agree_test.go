package workloads

import (
	"slices"
	"testing"

	"github.com/swarmguard/swarmguard/operator/config"
	"github.com/swarmguard/swarmguard/operator/report"
	"github.com/swarmguard/swarmguard/swarm"
)

// TestWorkloadsAgreeWithReport walks the enforcement policy's boundaries and holds the controller's
// decision (PlanEnforcement, what Pass acts on) and the report's verdict of workloads.privileges (its
// evidence for the service) side by side: the controller changes a service only where the report fails or
// warns and names a fix (fact enforceable), sets exactly that fix, and says why when it leaves such a
// service of an opted-in set alone; nothing the report passes (or shows as info) is changed.
func TestWorkloadsAgreeWithReport(t *testing.T) {
	enforce := config.WorkloadsConfig{Mode: config.ModeEnforce}
	all := config.WorkloadsConfig{Mode: config.ModeEnforce, EnforceAll: true}
	audit := config.WorkloadsConfig{Mode: config.ModeAudit}
	opted := func(mut func(*swarm.Workload)) swarm.Workload {
		return svc(func(w *swarm.Workload) {
			w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "true"}
			if mut != nil {
				mut(w)
			}
		})
	}
	noNNP := func(w *swarm.Workload) { w.NoNewPrivileges = false }
	exempt := func(reason string) func(*swarm.Workload) {
		return func(w *swarm.Workload) {
			w.NoNewPrivileges = false
			w.Labels[swarm.LabelWorkloadExempt] = "privileges"
			if reason != "" {
				w.Labels[swarm.LabelWorkloadExemptReason] = reason
			}
		}
	}
	for _, tc := range []struct {
		name   string
		c      config.WorkloadsConfig
		api    string
		w      swarm.Workload
		failed map[string]string
		// want: the report's status, and what the controller does: "act" (with the change), "skip", "none",
		// "not settable".
		wantStatus report.CheckStatus
		want       string
		wantChange string
	}{
		{"no-new-privileges set, seccomp default", enforce, "1.56", opted(nil), nil, report.StatusPass, "none", ""},
		{"no-new-privileges unset", enforce, "1.56", opted(noNNP), nil, report.StatusWarn, "act", "no-new-privileges=true"},
		{"seccomp unconfined, no-new-privileges set", enforce, "1.56", opted(func(w *swarm.Workload) { w.Seccomp = "unconfined" }), nil,
			report.StatusFail, "act", "seccomp=default"},
		{"seccomp unconfined, no-new-privileges unset", enforce, "1.56", opted(func(w *swarm.Workload) { noNNP(w); w.Seccomp = "unconfined" }), nil,
			report.StatusFail, "act", "no-new-privileges=true, seccomp=default"},
		{"seccomp default named", enforce, "1.56", opted(func(w *swarm.Workload) { w.Seccomp = "default" }), nil, report.StatusPass, "none", ""},
		{"seccomp custom profile", enforce, "1.56", opted(func(w *swarm.Workload) { w.Seccomp = "custom" }), nil, report.StatusPass, "none", ""},
		{"AppArmor unconfined only", enforce, "1.56", opted(func(w *swarm.Workload) { w.AppArmor = "unconfined" }), nil, report.StatusFail, "skip", ""},
		{"AppArmor disabled, no-new-privileges unset", enforce, "1.56", opted(func(w *swarm.Workload) { noNNP(w); w.AppArmor = "disabled" }), nil,
			report.StatusFail, "act", "no-new-privileges=true"},
		{"API 1.43", enforce, "1.43", opted(noNNP), nil, report.StatusInfo, "not settable", ""},
		{"API 1.44", enforce, "1.44", opted(noNNP), nil, report.StatusWarn, "act", "no-new-privileges=true"},
		{"API unknown", enforce, "", opted(noNNP), nil, report.StatusInfo, "not settable", ""},
		{"exempt with a reason", enforce, "1.56", opted(exempt("setuid binary")), nil, report.StatusInfo, "skip", ""},
		{"exempt with a reason, seccomp unconfined", enforce, "1.56", opted(func(w *swarm.Workload) { exempt("strace")(w); w.Seccomp = "unconfined" }), nil,
			report.StatusInfo, "skip", ""},
		{"exempt without a reason", enforce, "1.56", opted(exempt("")), nil, report.StatusWarn, "act", "no-new-privileges=true"},
		{"exempt from another check only", enforce, "1.56", opted(func(w *swarm.Workload) {
			noNNP(w)
			w.Labels[swarm.LabelWorkloadExempt], w.Labels[swarm.LabelWorkloadExemptReason] = "read-only", "writes /tmp"
		}), nil, report.StatusWarn, "act", "no-new-privileges=true"},
		{"not opted in", enforce, "1.56", svc(noNNP), nil, report.StatusWarn, "none", ""},
		{"label enforce=false", enforce, "1.56", svc(func(w *swarm.Workload) {
			noNNP(w)
			w.Labels = map[string]string{swarm.LabelWorkloadEnforce: "false"}
		}), nil, report.StatusWarn, "none", ""},
		{"enforce_all, not opted in", all, "1.56", svc(noNNP), nil, report.StatusWarn, "act", "no-new-privileges=true"},
		{"enforce_all, hardened", all, "1.56", svc(nil), nil, report.StatusPass, "none", ""},
		{"mode audit, opted in", audit, "1.56", opted(noNNP), nil, report.StatusWarn, "none", ""},
		{"profile system, no-new-privileges unset", enforce, "1.56", opted(func(w *swarm.Workload) {
			noNNP(w)
			w.Labels[swarm.LabelWorkloadProfile] = ProfileSystem
		}), nil, report.StatusWarn, "act", "no-new-privileges=true"},
		{"profile system, hardened", enforce, "1.56", opted(func(w *swarm.Workload) { w.Labels[swarm.LabelWorkloadProfile] = ProfileSystem }), nil,
			report.StatusPass, "none", ""},
		{"mid-update", enforce, "1.56", opted(func(w *swarm.Workload) { noNNP(w); w.UpdateState = "updating" }), nil, report.StatusWarn, "skip", ""},
		{"mid-rollback", enforce, "1.56", opted(func(w *swarm.Workload) { noNNP(w); w.UpdateState = "rollback_started" }), nil, report.StatusWarn, "skip", ""},
		{"update completed", enforce, "1.56", opted(func(w *swarm.Workload) { noNNP(w); w.UpdateState = "completed" }), nil, report.StatusWarn, "act", "no-new-privileges=true"},
		{"hardened, mid-update", enforce, "1.56", opted(func(w *swarm.Workload) { w.UpdateState = "updating" }), nil, report.StatusPass, "none", ""},
		{"rollout failed at this version", enforce, "1.56", opted(noNNP), map[string]string{"id1": SpecKey(opted(noNNP))}, report.StatusWarn, "skip", ""},
		{"plugin service", enforce, "1.56", opted(func(w *swarm.Workload) { w.Container = false }), nil, report.StatusInfo, "skip", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Observation{APIVersion: tc.api, Services: []swarm.Workload{tc.w}}
			vs, err := Verdicts(o, tc.c)
			if err != nil {
				t.Fatal(err)
			}
			p := PlanEnforcement(o, vs, tc.c, tc.failed)
			var ev report.Evidence
			for _, c := range Section(o, tc.c).Checks {
				if c.ID == CheckPrivileges {
					ev = c.Evidence[0]
				}
			}
			got := "none"
			change := ""
			switch {
			case p.NotSettable != "":
				got = "not settable"
			case len(p.Actions) == 1:
				got, change = "act", p.Actions[0].Change()
			case len(p.Skipped) == 1:
				got = "skip"
				if p.Skipped[0].Why == "" {
					t.Errorf("a skip without a reason")
				}
			}
			if ev.Status != tc.wantStatus || got != tc.want || change != tc.wantChange {
				t.Errorf("report %s (%s), controller %s %q; want report %s, controller %s %q", ev.Status, ev.Note, got, change,
					tc.wantStatus, tc.want, tc.wantChange)
			}
			// The agreement, whatever the table says: the controller changes only what the report finds
			// wanting and names as the fix; an opted-in service the report finds wanting is acted on or
			// skipped with a reason; nothing the report passes or shows as info is changed.
			fixable := (ev.Status == report.StatusFail || ev.Status == report.StatusWarn) && ev.Facts[FactEnforceable] != "none" && ev.Facts[FactEnforceable] != ""
			if got == "act" && (!fixable || ev.Facts[FactEnforceable] != change) {
				t.Errorf("controller sets %q; the report (%s) names fix %q", change, ev.Status, ev.Facts[FactEnforceable])
			}
			if fixable && got != "act" && got != "skip" && (tc.w.Labels[swarm.LabelWorkloadEnforce] == "true" || tc.c.EnforceAll) && tc.c.Mode == config.ModeEnforce {
				t.Errorf("the report names fix %q for an opted-in service; the controller neither acts nor says why", ev.Facts[FactEnforceable])
			}
			opted := tc.c.Mode == config.ModeEnforce && (tc.c.EnforceAll || tc.w.Labels[swarm.LabelWorkloadEnforce] == "true")
			if opted && (ev.Status == report.StatusFail || ev.Status == report.StatusWarn) && got == "none" {
				t.Errorf("the report says %s for an opted-in service and the controller is silent", ev.Status)
			}
			if slices.Contains([]report.CheckStatus{report.StatusPass, report.StatusInfo}, ev.Status) && got == "act" {
				t.Errorf("the controller changes a service the report says %s", ev.Status)
			}
		})
	}
}
