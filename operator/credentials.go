package operator

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names of the credential clocks. The runtime owns the one vector; each domain sets the kinds it
// owns (the join tokens, the unlock key, the root CA) from the decision its pass acts on.
const (
	MetricCredentialAge    = "swarmguard_credential_age_seconds"
	MetricCredentialMaxAge = "swarmguard_credential_max_age_seconds"
)

var (
	credentialAgeDesc = prometheus.NewDesc(MetricCredentialAge,
		"Age of a credential by ledger kind (join-token-worker, join-token-manager, unlock-key, ca): since its last rotation or adoption, or, for the root CA, its NotBefore.",
		[]string{"kind"}, nil)
	credentialMaxAgeDesc = prometheus.NewDesc(MetricCredentialMaxAge,
		"The policy's max age of a credential by ledger kind; 0 when it is not rotated by schedule.",
		[]string{"kind"}, nil)
)

// CredentialAge is what a domain's decision says of one credential's clock.
type CredentialAge struct {
	// Known is false when the clock has not started (never rotated nor adopted): no age series then,
	// since absent means unknown and a made-up age would page someone.
	Known  bool
	Age    time.Duration
	MaxAge time.Duration
}

// CredentialAges is the collector of the credential clocks, set by the domains after each decision.
type CredentialAges struct {
	mu   sync.Mutex
	vals map[string]CredentialAge
}

// NewCredentialAges returns an empty collector.
func NewCredentialAges() *CredentialAges { return &CredentialAges{vals: map[string]CredentialAge{}} }

// Set records a credential's clock as its domain's decision saw it. A nil receiver does nothing, so a
// domain built without metrics (the CLI) needs no check.
func (c *CredentialAges) Set(kind string, a CredentialAge) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.vals[kind] = a
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *CredentialAges) Describe(ch chan<- *prometheus.Desc) {
	ch <- credentialAgeDesc
	ch <- credentialMaxAgeDesc
}

// Collect implements prometheus.Collector.
func (c *CredentialAges) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for kind, a := range c.vals {
		if a.Known {
			ch <- prometheus.MustNewConstMetric(credentialAgeDesc, prometheus.GaugeValue, a.Age.Seconds(), kind)
		}
		ch <- prometheus.MustNewConstMetric(credentialMaxAgeDesc, prometheus.GaugeValue, a.MaxAge.Seconds(), kind)
	}
}

var _ prometheus.Collector = (*CredentialAges)(nil)
