package report

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// GaugeCollector exports the latest set of Gauges (swarmguard_check_status{check},
// swarmguard_network_encrypted{network}) as a Prometheus collector. The pass that computes them calls Set;
// a series that disappears from one set to the next (a removed network) disappears from /metrics too.
// Register it with the runtime's registry: a.metrics().Registerer().MustRegister(c).
type GaugeCollector struct {
	mu     sync.Mutex
	gauges []Gauge
}

// NewGaugeCollector returns an empty collector.
func NewGaugeCollector() *GaugeCollector { return &GaugeCollector{} }

// Set replaces the exported gauges.
func (c *GaugeCollector) Set(g []Gauge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gauges = append([]Gauge(nil), g...)
}

// Describe sends nothing: the series change with the swarm (networks come and go), so this is an unchecked
// collector.
func (c *GaugeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the current gauges.
func (c *GaugeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	gauges := c.gauges
	c.mu.Unlock()
	seen := map[string]bool{}
	for _, g := range gauges {
		keys := make([]string, 0, len(g.Labels))
		for k := range g.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		vals := make([]string, 0, len(keys))
		for _, k := range keys {
			vals = append(vals, g.Labels[k])
		}
		id := g.Name + "\x00" + strings.Join(vals, "\x00")
		if seen[id] {
			continue // two networks of one name: report the first, never a duplicate series
		}
		seen[id] = true
		desc := prometheus.NewDesc(g.Name, g.Help, keys, nil)
		if m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, g.Value, vals...); err == nil {
			ch <- m
		}
	}
}

var _ prometheus.Collector = (*GaugeCollector)(nil)
