package secretsync

import (
	"fmt"
	"testing"

	"github.com/swarmguard/swarmguard/secrets"
	"github.com/swarmguard/swarmguard/swarm"
)

// BenchmarkSteadyStatePass is a pass over 1,000 mappings and 300 services
// where nothing changed: it must cost a fixed handful of Engine list calls,
// no writes, and one Vault read per mapping.
func BenchmarkSteadyStatePass(b *testing.B) {
	const nMappings, nServices = 1000, 300
	e, src := newFakeEngine(), &fakeSource{}
	mappings := make([]secrets.Mapping, nMappings)
	names := make([]string, nMappings)
	ids := make([]string, nMappings)
	for i := range mappings {
		m := secrets.Mapping{Name: fmt.Sprintf("app%04d_password", i), FromPath: fmt.Sprintf("secret/apps/a%04d", i), FromKey: "password", KeepVersions: 2}
		mappings[i] = m
		src.put(m.FromPath, 3, map[string]string{"password": fmt.Sprintf("value-%d", i)})
		d, err := m.Desire(hmacKey, src.values[m.FromPath])
		if err != nil {
			b.Fatal(err)
		}
		names[i], ids[i] = d.Name, e.addSecret(d.Name, d.Labels)
		old, _ := m.Desire(hmacKey, secrets.NewValue(m.FromPath, 2, map[string]string{"password": fmt.Sprintf("old-%d", i)}))
		e.addSecret(old.Name, old.Labels) // an older version kept by keep_versions
	}
	for i := range nServices {
		svc := swarm.ServiceSecrets{ID: fmt.Sprintf("svc%03d", i), Name: fmt.Sprintf("service-%03d", i), Version: 5, Labels: map[string]string{"app": "x"}}
		for j := range 4 { // each service uses 4 secrets; 1,200 refs cover every mapping
			k := (i*4 + j) % nMappings
			svc.Secrets = append(svc.Secrets, swarm.SecretRef{SecretID: ids[k], SecretName: names[k], File: fmt.Sprintf("s%d", j), UID: "0", GID: "0", Mode: 0o444})
		}
		svc.PreviousSecrets = svc.Secrets
		e.addService(svc)
		for r := range 2 {
			e.tasks = append(e.tasks, swarm.TaskSecrets{ID: fmt.Sprintf("t%d-%d", i, r), ServiceID: svc.ID, State: "running", DesiredState: "running", Secrets: svc.Secrets})
		}
	}
	s := &Syncer{Engine: e, Source: src, Key: hmacKey}
	ctx := b.Context()
	// One pass to check it is steady.
	for _, r := range s.Pass(ctx, mappings, Options{}) {
		if r.Outcome != OutcomeUnchanged {
			b.Fatalf("mapping %s: %s %v; want unchanged", r.Mapping, r.Outcome, r.Err)
		}
	}
	e.calls, src.reads = nil, 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Pass(ctx, mappings, Options{})
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(len(e.calls))/n, "engine_calls/op")
	b.ReportMetric(float64(len(e.writes()))/n, "engine_writes/op")
	b.ReportMetric(float64(src.reads)/n, "vault_reads/op")
	if len(e.writes()) != 0 || len(e.calls) != 3*b.N {
		b.Fatalf("calls per pass = %v; want 3 lists and no writes", e.calls[:min(len(e.calls), 10)])
	}
}
