//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// metricNameRe finds the swarmguard metric names a PromQL expression uses.
var metricNameRe = regexp.MustCompile(`\bswarmguard_[a-z0-9_]+`)

// chartMetricNames are the swarmguard metrics that charts/swarmguard/dashboard.json and alerts.yml name
// in their expressions (expr, query), with histogram suffixes kept.
func chartMetricNames(t *testing.T) []string {
	t.Helper()
	var texts []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, c := range x {
				if s, ok := c.(string); ok && (k == "expr" || k == "query") {
					texts = append(texts, s)
					continue
				}
				walk(c)
			}
		case []any:
			for _, c := range x {
				walk(c)
			}
		}
	}
	dir := filepath.Join(repoRoot(), "charts", "swarmguard")
	var dash, rules any
	b, err := os.ReadFile(filepath.Join(dir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	if b, err = os.ReadFile(filepath.Join(dir, "alerts.yml")); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	walk(dash)
	walk(rules)
	set := map[string]bool{}
	for _, s := range texts {
		for _, n := range metricNameRe.FindAllString(s, -1) {
			set[n] = true
		}
	}
	names := make([]string, 0, len(set))
	for n := range set {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// exportedFamilies are the metric families of a scrape (its # TYPE lines).
func exportedFamilies(body string) map[string]bool {
	have := map[string]bool{}
	for _, l := range strings.Split(body, "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			have[f[2]] = true
		}
	}
	return have
}

func missingFamilies(names []string, have map[string]bool) []string {
	var missing []string
	for _, n := range names {
		base := n
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if strings.HasSuffix(n, suf) && have[strings.TrimSuffix(n, suf)] {
				base = strings.TrimSuffix(n, suf)
			}
		}
		if !have[base] {
			missing = append(missing, n)
		}
	}
	return missing
}

// TestChartsMetricsExported: every metric the dashboard and the alert rules name is exported by a real
// controller (`swarmguard run`) on the lab, with a minimal config (no secret mapping, no Vault), and the
// scrape is promtool-clean. A successful rotation first, so the last-success metric has a series.
func TestChartsMetricsExported(t *testing.T) {
	env := labEnv(t)
	names := chartMetricNames(t)
	if len(names) < 15 {
		t.Fatalf("the charts name only %d swarmguard metrics: %v", len(names), names)
	}
	cfg := crConfig(t, env, "")
	if r := runSG(t, env, nil, "rotate", "join-token", "worker", "--reason", "integration: charts metrics", "--config", cfg); r.Code != 0 {
		t.Fatalf("rotate join-token worker = exit %d: %s", r.Code, r.Stderr)
	}
	rep := rtStartReplica(t, env, env["DOCKER_HOST"], 1, cfg)
	addr := fmt.Sprintf("127.0.0.1:%d", rep.port)
	var body string
	var missing []string
	ok := poll(90*time.Second, func() bool {
		b, err := httpGet("http://" + addr + "/metrics")
		if err != nil {
			return false
		}
		body = b
		missing = missingFamilies(names, exportedFamilies(body))
		return len(missing) == 0
	})
	if !ok {
		t.Fatalf("named in the dashboard or the rules but not exported by run: %v\n/metrics:\n%s\nlogs:\n%s", missing, body, rep.log.String())
	}
	t.Logf("all %d metrics the dashboard and the rules name are exported: %s", len(names), strings.Join(names, " "))
	lint := exec.Command(rtPromtool(t), "check", "metrics")
	lint.Stdin = strings.NewReader(body)
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
