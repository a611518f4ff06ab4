package certs

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmguard/swarmguard/pki"
)

func TestCertsMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m, err := RegisterMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := RegisterMetrics(reg); err != nil || again != m {
		t.Fatalf("RegisterMetrics again = %p, %v; want the first collector", again, err)
	}
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("before the first pass: %d families, %v; want none", len(mfs), err)
	}
	nb := time.Unix(1700000000, 0)
	m.SetPolicy(pki.Policy{WarnBefore: pki.MustWindow("50%"), CriticalBefore: pki.MustWindow("10m")})
	m.Update(pki.Inventory{
		CA:                     pki.CAInfo{CertFacts: pki.CertFacts{NotAfter: time.Unix(2000000000, 0)}},
		RootRotationInProgress: true,
		Nodes: []pki.NodeCert{
			{ID: "id1", Hostname: "m1", Role: "manager", Known: true, Cert: pki.CertFacts{NotBefore: nb, NotAfter: nb.Add(time.Hour)}},
			{ID: "id2", Hostname: "m1", Role: "manager", Known: true, Cert: pki.CertFacts{NotBefore: nb, NotAfter: nb.Add(2 * time.Hour)}},
			{ID: "id3", Hostname: "w1", Role: "worker"}, // unknown: no series
		},
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got = append(got, fmt.Sprintf("%s{%s} %g", mf.GetName(), strings.Join(labels, ","), mt.GetGauge().GetValue()))
		}
	}
	want := []string{
		"swarmguard_ca_not_after_timestamp_seconds{} 2e+09",
		"swarmguard_ca_rotation_in_progress{} 1",
		// the policy's windows: 50% of the validity, and 10 minutes, before NotAfter
		"swarmguard_cert_critical_at_timestamp_seconds{node=id2,role=manager} 1.7000066e+09",
		"swarmguard_cert_critical_at_timestamp_seconds{node=m1,role=manager} 1.700003e+09",
		"swarmguard_cert_not_after_timestamp_seconds{node=id2,role=manager} 1.7000072e+09",
		"swarmguard_cert_not_after_timestamp_seconds{node=m1,role=manager} 1.7000036e+09",
		"swarmguard_cert_not_before_timestamp_seconds{node=id2,role=manager} 1.7e+09",
		"swarmguard_cert_not_before_timestamp_seconds{node=m1,role=manager} 1.7e+09",
		"swarmguard_cert_warn_at_timestamp_seconds{node=id2,role=manager} 1.7000036e+09",
		"swarmguard_cert_warn_at_timestamp_seconds{node=m1,role=manager} 1.7000018e+09",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("gathered:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
