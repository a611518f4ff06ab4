package externalca

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the bridge's request counters and latency.
type Metrics struct {
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the bridge's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmguard_external_ca_requests_total",
			Help: "Sign requests the external CA bridge answered, by result: issued, refused (the caller or its request), failed (Vault or the swarm; swarmkit retries).",
		}, []string{"result"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "swarmguard_external_ca_failures_total",
			Help: "Sign requests the external CA bridge did not answer with a certificate, by reason.",
		}, []string{"result", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "swarmguard_external_ca_request_duration_seconds",
			Help:    "Time to answer a sign request, Vault's signing included.",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5},
		}, []string{"result"}),
	}
	for _, r := range []string{"issued", "refused", "failed"} {
		m.requests.WithLabelValues(r)
	}
	reg.MustRegister(m.requests, m.failures, m.latency)
	return m
}

func (m *Metrics) observe(result, reason string, d time.Duration) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(result).Inc()
	if result != "issued" {
		m.failures.WithLabelValues(result, reason).Inc()
	}
	m.latency.WithLabelValues(result).Observe(d.Seconds())
}
