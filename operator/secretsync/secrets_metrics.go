package secretsync

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the secrets sync.
const (
	MetricSecretSync         = "swarmguard_secret_sync_total"
	MetricSecretLastSuccess  = "swarmguard_secret_last_success_timestamp_seconds"
	MetricSecretVaultVersion = "swarmguard_secret_vault_version"
	MetricSecretFailingSince = "swarmguard_secret_failing_since_timestamp_seconds"
	// MetricSecretMappings counts the configured mappings by state. It exists with no mapping too (all
	// zero), so alerts and dashboards that use it work on every controller.
	MetricSecretMappings = "swarmguard_secret_mappings"
)

// secretStates are the states of SecretState.State, each one a series of MetricSecretMappings.
var secretStates = []string{"ok", "failed", "error", "pending"}

// SecretMetrics are the secrets sync's metrics. Labels carry mapping names and outcomes only, never values.
type SecretMetrics struct {
	sync         *prometheus.CounterVec
	lastSuccess  *prometheus.GaugeVec
	vaultVersion *prometheus.GaugeVec
	failingSince *prometheus.GaugeVec
	mappings     *prometheus.GaugeVec

	mu     sync.Mutex
	state  map[string]string // mapping name -> state
	counts map[string]int    // state -> mappings in it: kept as states change, so a pass over n mappings is O(n)
}

var _ SecretsObserver = (*SecretMetrics)(nil)

// NewSecretMetrics registers the secrets sync's metrics with reg and makes each mapping's series exist.
func NewSecretMetrics(reg prometheus.Registerer, mappings []string) (*SecretMetrics, error) {
	m := &SecretMetrics{
		sync: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricSecretSync,
			Help: "Secret sync passes by mapping and result: unchanged, changed, failed (a rollout was paused or rolled back), error (a read or write failed).",
		}, []string{"secret", "result"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricSecretLastSuccess,
			Help: "Unix time of the last sync of the mapping that ended in step with Vault.",
		}, []string{"secret"}),
		vaultVersion: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricSecretVaultVersion,
			Help: "The Vault KV version the mapping's Docker secret was last synced from (0 on KV v1).",
		}, []string{"secret"}),
		failingSince: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricSecretFailingSince,
			Help: "Unix time since when the mapping's sync fails (read, write or rollout); 0 while it works.",
		}, []string{"secret"}),
		mappings: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricSecretMappings,
			Help: "Configured secret mappings by sync state: ok, failed (a rollout was paused or rolled back), error (a read or write failed), pending (not synced yet).",
		}, []string{"state"}),
		state:  map[string]string{},
		counts: map[string]int{},
	}
	for _, c := range []prometheus.Collector{m.sync, m.lastSuccess, m.vaultVersion, m.failingSince, m.mappings} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, n := range mappings {
		m.sync.WithLabelValues(n, "error")
		m.sync.WithLabelValues(n, "failed")
		m.failingSince.WithLabelValues(n).Set(0)
		m.state[n] = "pending"
	}
	for _, st := range m.state {
		m.counts[st]++
	}
	for _, st := range secretStates {
		m.mappings.WithLabelValues(st).Set(float64(m.counts[st]))
	}
	return m, nil
}

// SecretSynced implements SecretsObserver.
func (m *SecretMetrics) SecretSynced(st SecretState, outcome string) {
	if m == nil {
		return
	}
	m.sync.WithLabelValues(st.Name, outcome).Inc()
	m.mu.Lock()
	if old, ok := m.state[st.Name]; !ok || old != st.State {
		if ok {
			m.counts[old]--
			m.mappings.WithLabelValues(old).Set(float64(m.counts[old]))
		}
		m.state[st.Name] = st.State
		m.counts[st.State]++
		m.mappings.WithLabelValues(st.State).Set(float64(m.counts[st.State]))
	}
	m.mu.Unlock()
	if st.FailingSince.IsZero() {
		m.lastSuccess.WithLabelValues(st.Name).Set(float64(st.LastSuccess.Unix()))
		m.vaultVersion.WithLabelValues(st.Name).Set(float64(st.VaultVersion))
		m.failingSince.WithLabelValues(st.Name).Set(0)
	} else {
		m.failingSince.WithLabelValues(st.Name).Set(float64(st.FailingSince.Unix()))
	}
}
