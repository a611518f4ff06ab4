package report

import (
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// GaugeCollector exports the latest Gauges (swarmguard_check_status{check},
// swarmguard_network_encrypted{network}) as a Prometheus collector, in parts: each domain's pass sets its
// own part (SetPart) from its own observation, on its own schedule, and no pass touches another's. A series
// that disappears from one set of a part to the next (a removed network) disappears from /metrics too.
// Register it with the runtime's registry: a.metrics().Registerer().MustRegister(c).
type GaugeCollector struct {
	mu    sync.Mutex
	parts map[string][]Gauge
}

// NewGaugeCollector returns an empty collector.
func NewGaugeCollector() *GaugeCollector { return &GaugeCollector{parts: map[string][]Gauge{}} }

// Set replaces the exported gauges of the unnamed part.
func (c *GaugeCollector) Set(g []Gauge) { c.SetPart("", g) }

// SetPart replaces the gauges of one part (a domain's name), leaving the other parts as they are.
func (c *GaugeCollector) SetPart(part string, g []Gauge) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.parts[part] = append([]Gauge(nil), g...)
}

// Part returns a function that sets one part: what a domain's pass is handed (its gauges hook).
func (c *GaugeCollector) Part(part string) func([]Gauge) {
	return func(g []Gauge) { c.SetPart(part, g) }
}

// Describe sends nothing: the series change with the swarm (networks come and go), so this is an unchecked
// collector.
func (c *GaugeCollector) Describe(chan<- *prometheus.Desc) {}

// Collect sends the current gauges.
func (c *GaugeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	names := make([]string, 0, len(c.parts))
	for n := range c.parts {
		names = append(names, n)
	}
	sort.Strings(names)
	var gauges []Gauge
	for _, n := range names {
		gauges = append(gauges, c.parts[n]...)
	}
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
			continue // two networks of one name, or two parts with one series: report the first, never a duplicate
		}
		seen[id] = true
		desc := prometheus.NewDesc(g.Name, g.Help, keys, nil)
		if m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, g.Value, vals...); err == nil {
			ch <- m
		}
	}
}

var _ prometheus.Collector = (*GaugeCollector)(nil)
