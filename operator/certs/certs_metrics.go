package certs

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/swarmguard/swarmguard/pki"
)

// Metrics exports the certificate inventory:
//
//	swarmguard_cert_not_after_timestamp_seconds{node,role}
//	swarmguard_cert_not_before_timestamp_seconds{node,role}
//	swarmguard_cert_warn_at_timestamp_seconds{node,role}      (when the policy's warn window opens)
//	swarmguard_cert_critical_at_timestamp_seconds{node,role}  (when the policy's critical window opens)
//	swarmguard_ca_not_after_timestamp_seconds
//	swarmguard_ca_rotation_in_progress
//
// It is a collector over the last inventory, swapped whole by Update, so a scrape never sees half a pass.
// A node whose certificate could not be read has no series (absent means unknown; a made-up value would
// page someone), and before the first pass nothing is exported.
type Metrics struct {
	mu     sync.Mutex
	last   *pki.MetricValues
	policy pki.Policy
}

var (
	certNotAfterDesc = prometheus.NewDesc("swarmguard_cert_not_after_timestamp_seconds",
		"NotAfter of each node's certificate, Unix seconds.", []string{"node", "role"}, nil)
	certNotBeforeDesc = prometheus.NewDesc("swarmguard_cert_not_before_timestamp_seconds",
		"NotBefore of each node's certificate, Unix seconds.", []string{"node", "role"}, nil)
	certWarnAtDesc = prometheus.NewDesc("swarmguard_cert_warn_at_timestamp_seconds",
		"When each node's certificate enters the warn window of pki.warn_before, Unix seconds (alert on time() >= it).", []string{"node", "role"}, nil)
	certCriticalAtDesc = prometheus.NewDesc("swarmguard_cert_critical_at_timestamp_seconds",
		"When each node's certificate enters the critical window of pki.critical_before, Unix seconds (alert on time() >= it).", []string{"node", "role"}, nil)
	caNotAfterDesc = prometheus.NewDesc("swarmguard_ca_not_after_timestamp_seconds",
		"NotAfter of the swarm's root CA, Unix seconds.", nil, nil)
	caRotationDesc = prometheus.NewDesc("swarmguard_ca_rotation_in_progress",
		"1 while a root CA rotation is in progress, else 0.", nil, nil)
)

// NewMetrics returns an empty collector; register it, then call Update after each pass.
func NewMetrics() *Metrics { return &Metrics{policy: pki.DefaultPolicy()} }

// RegisterMetrics registers a new collector with r, or returns the one already registered there
// (building the controller's tasks twice must not fail on duplicate metrics).
func RegisterMetrics(r prometheus.Registerer) (*Metrics, error) {
	m := NewMetrics()
	if err := r.Register(m); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*Metrics); ok {
				return existing, nil
			}
		}
		return nil, fmt.Errorf("registering certificate metrics: %w", err)
	}
	return m, nil
}

// SetPolicy sets the policy whose warn and critical windows the window metrics follow (DefaultPolicy's
// until called).
func (m *Metrics) SetPolicy(p pki.Policy) {
	m.mu.Lock()
	m.policy = p
	m.mu.Unlock()
}

// Update replaces the exported values with those of inv. Its signature fits Task's onInventory.
func (m *Metrics) Update(inv pki.Inventory) {
	v := inv.Metrics()
	m.mu.Lock()
	m.last = &v
	m.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- certNotAfterDesc
	ch <- certNotBeforeDesc
	ch <- certWarnAtDesc
	ch <- certCriticalAtDesc
	ch <- caNotAfterDesc
	ch <- caRotationDesc
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	v, p := m.last, m.policy
	m.mu.Unlock()
	if v == nil {
		return
	}
	seen := map[[2]string]bool{}
	for _, c := range v.Certs {
		key := [2]string{c.Node, c.Role}
		if seen[key] {
			// Two nodes with one hostname: label the later one by its ID so no series is dropped.
			key[0] = c.NodeID
		}
		seen[key] = true
		ch <- prometheus.MustNewConstMetric(certNotAfterDesc, prometheus.GaugeValue, c.NotAfter, key[0], key[1])
		ch <- prometheus.MustNewConstMetric(certNotBeforeDesc, prometheus.GaugeValue, c.NotBefore, key[0], key[1])
		nb, na := time.Unix(int64(c.NotBefore), 0), time.Unix(int64(c.NotAfter), 0)
		for _, w := range []struct {
			desc *prometheus.Desc
			win  pki.Window
		}{{certWarnAtDesc, p.WarnBefore}, {certCriticalAtDesc, p.CriticalBefore}} {
			if !w.win.IsZero() { // no window configured: no series, never an alert
				ch <- prometheus.MustNewConstMetric(w.desc, prometheus.GaugeValue, float64(w.win.Opens(nb, na).Unix()), key[0], key[1])
			}
		}
	}
	if v.CAKnown {
		ch <- prometheus.MustNewConstMetric(caNotAfterDesc, prometheus.GaugeValue, v.CANotAfter)
	}
	ch <- prometheus.MustNewConstMetric(caRotationDesc, prometheus.GaugeValue, v.RotationInProgress)
}
