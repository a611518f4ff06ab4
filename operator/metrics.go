package operator

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric names of the runtime. Domains add their own through Metrics.Registerer.
const (
	MetricLeaseHolder       = "swarmguard_lease_holder"
	MetricLeaseTransitions  = "swarmguard_lease_transitions_total"
	MetricReconcileDuration = "swarmguard_reconcile_duration_seconds"
	MetricReconcileErrors   = "swarmguard_reconcile_errors_total"
	// MetricLastAction is the last attempt of a ledger kind, whatever its result (ok, failed, adopted).
	MetricLastAction = "swarmguard_last_action_timestamp_seconds"
	// MetricLastSuccess is the last successful action (result ok) of a ledger kind: a failed attempt or
	// an adoption does not move it, so "time() - last success" alerts are not fooled by one.
	MetricLastSuccess = "swarmguard_last_success_timestamp_seconds"
	MetricUp          = "swarmguard_up"
)

// reconcileBuckets cover a join-token rotation (tens of milliseconds) up to a secret rollout across a
// large service (minutes).
var reconcileBuckets = []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// Metrics are the runtime's Prometheus metrics, in a registry of their own (no global state), with the Go
// and process collectors.
//
// Domains register their own collectors with Registerer (for example a gauge vector of findings, set at the
// end of each pass). Names must start with "swarmguard_" and label values must never hold secret values.
type Metrics struct {
	reg *prometheus.Registry

	leaseHolder       *prometheus.GaugeVec
	leaseTransitions  prometheus.Counter
	reconcileDuration *prometheus.HistogramVec
	reconcileErrors   *prometheus.CounterVec
	lastAction        *prometheus.GaugeVec
	lastSuccess       *prometheus.GaugeVec
	credentials       *CredentialAges
	up                *prometheus.GaugeVec
}

// NewMetrics builds the registry and registers the runtime's metrics.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		leaseHolder: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricLeaseHolder,
			Help: "1 when this replica holds the swarmguard lease and acts, 0 when it stands by.",
		}, []string{"node"}),
		leaseTransitions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricLeaseTransitions,
			Help: "Changes of the lease holder seen by this replica (takes, losses, hand-overs, releases).",
		}),
		reconcileDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricReconcileDuration,
			Help:    "Duration of one reconcile pass of a loop, by loop.",
			Buckets: reconcileBuckets,
		}, []string{"loop"}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricReconcileErrors,
			Help: "Reconcile passes that failed, by loop; the loop retries with backoff.",
		}, []string{"loop"}),
		lastAction: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricLastAction,
			Help: "Unix time of the last attempt recorded in the ledger, by ledger kind, whatever its result (ok, failed, adopted).",
		}, []string{"kind"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricLastSuccess,
			Help: "Unix time of the last successful action (result ok) recorded in the ledger, by ledger kind.",
		}, []string{"kind"}),
		credentials: NewCredentialAges(),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricUp,
			Help: "1 while the runtime runs; role is holder, standby or unknown.",
		}, []string{"role"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.leaseHolder, m.leaseTransitions, m.reconcileDuration, m.reconcileErrors, m.lastAction, m.lastSuccess, m.credentials, m.up,
	)
	return m
}

// Registry is the registry the /metrics endpoint serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Registerer is where domains register their own collectors.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// InitLoop makes a loop's series exist (at zero) before its first pass, so dashboards and alerts see it.
func (m *Metrics) InitLoop(loop string) {
	if m == nil {
		return
	}
	m.reconcileErrors.WithLabelValues(loop)
	m.reconcileDuration.WithLabelValues(loop)
}

// SetRole records this replica's lease role.
func (m *Metrics) SetRole(node, role string) {
	if m == nil {
		return
	}
	v := 0.0
	if role == RoleHolder {
		v = 1
	}
	m.leaseHolder.Reset()
	m.leaseHolder.WithLabelValues(node).Set(v)
	m.up.Reset()
	m.up.WithLabelValues(role).Set(1)
}

// LeaseTransition counts a change of holder.
func (m *Metrics) LeaseTransition() {
	if m != nil {
		m.leaseTransitions.Inc()
	}
}

// ObservePass records one pass of a loop.
func (m *Metrics) ObservePass(loop string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.reconcileDuration.WithLabelValues(loop).Observe(d.Seconds())
	if err != nil {
		m.reconcileErrors.WithLabelValues(loop).Inc()
	}
}

// Action records the time of an attempt of a ledger kind.
func (m *Metrics) Action(kind string, at time.Time) {
	if m != nil {
		m.lastAction.WithLabelValues(kind).Set(float64(at.UnixNano()) / 1e9)
	}
}

// Success records the time of a successful action of a ledger kind.
func (m *Metrics) Success(kind string, at time.Time) {
	if m != nil {
		m.lastSuccess.WithLabelValues(kind).Set(float64(at.UnixNano()) / 1e9)
	}
}

// Credentials is the credential-clock collector the domains set (nil for a nil Metrics).
func (m *Metrics) Credentials() *CredentialAges {
	if m == nil {
		return nil
	}
	return m.credentials
}
