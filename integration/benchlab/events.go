//go:build integration

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
)

// The events part: a stack of nEventServices opted-in services deployed at once while the controller runs
// (workloads.mode enforce, its schedule an hour away, so only events act). The services have 0 replicas,
// like the secret sync's: what is measured is the controller (event, coalescing, judgement, update), not
// how fast this shared 2-core machine starts 100 containers; with tasks, each service is hardened once its
// tasks run (measured here with 1 replica each: 63 of 100 hardened 90 s after the deploy, the rest still
// starting their containers).
const (
	nEventServices = 100
	eventsDeadline = 90 * time.Second
	// clkTck is the kernel's USER_HZ for /proc/<pid>/stat's utime and stime (100 on Linux).
	clkTck = 100
)

// eventsPart runs the events benchmark: event_to_enforced_p50_s and _p99_s (from the return of `docker
// stack deploy` to each service's spec holding no-new-privileges), event_controller_cpu_s (the controller's
// CPU in the minute after the deploy), event_service_updates (the hardenings it made: want 100) and
// event_updates_after_last (hardenings after the last service was hardened, within that minute: want 0).
func (b *bench) eventsPart() error {
	hc, err := engineClient()
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	cfg := filepath.Join(b.dir, "events.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("listen: \"127.0.0.1:%d\"\nworkloads: {mode: enforce, schedule: \"@every 1h\"}\n", port)), 0o600); err != nil {
		return err
	}
	stack := b.run + "ev"
	var sb strings.Builder
	sb.WriteString("version: \"3.8\"\nservices:\n")
	for i := range nEventServices {
		fmt.Fprintf(&sb, "  s%03d:\n    image: swarmguard-testapp:lab\n    command: [\"sleep\"]\n    stop_grace_period: 1s\n"+
			"    deploy:\n      replicas: 0\n      labels: {swarmguard.workloads.enforce: \"true\"}\n", i)
	}
	file := filepath.Join(b.dir, "events-stack.yml")
	if err := os.WriteFile(file, []byte(sb.String()), 0o600); err != nil {
		return err
	}
	defer func() {
		_, _ = docker("stack", "rm", stack)
		fmt.Fprintln(os.Stderr, "benchlab: events stack removed")
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.sg, "run", "--config", cfg, "--log-format", "json", "--log-level", "info")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	var mu sync.Mutex
	var hardenings []time.Time // when the controller logged each hardening it made
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), `"msg":"hardening service"`) && strings.Contains(sc.Text(), stack+"_") {
				mu.Lock()
				hardenings = append(hardenings, time.Now())
				mu.Unlock()
			}
		}
	}()
	if err := b.waitMetric(ctx, port, "swarmguard_lease_holder{"); err != nil {
		return fmt.Errorf("the controller did not take the lease: %w", err)
	}
	// Its take-over passes are over once the full pass of the event stream's connection has run: from
	// here only events act.
	if err := b.waitMetric(ctx, port, `swarmguard_event_reconciles_total{kind="full",loop="workloads"}`); err != nil {
		return fmt.Errorf("the workloads loop ran no full pass for the event stream: %w", err)
	}

	cpu0, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return err
	}
	if _, err := docker("stack", "deploy", "--resolve-image", "never", "-c", file, stack); err != nil {
		return err
	}
	t0 := time.Now()
	took := map[string]float64{}
	for len(took) < nEventServices && time.Since(t0) < eventsDeadline {
		svcs, err := stackServices(hc, stack)
		if err != nil {
			return err
		}
		now := time.Since(t0).Seconds()
		for _, s := range svcs {
			if _, done := took[s.Spec.Name]; done {
				continue
			}
			if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && cs.Privileges != nil && cs.Privileges.NoNewPrivileges {
				took[s.Spec.Name] = now
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	allAt := time.Now()
	if len(took) < nEventServices {
		return fmt.Errorf("%d of %d services hardened %s after the deploy", len(took), nEventServices, eventsDeadline)
	}
	time.Sleep(time.Until(t0.Add(time.Minute)))
	cpu1, err := cpuSeconds(cmd.Process.Pid)
	if err != nil {
		return err
	}
	mu.Lock()
	n, after := len(hardenings), 0
	for _, h := range hardenings {
		if h.After(allAt) {
			after++
		}
	}
	mu.Unlock()
	ds := make([]float64, 0, len(took))
	for _, d := range took {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	b.figure("event_to_enforced_p50_s", ds[len(ds)/2])
	b.figure("event_to_enforced_p99_s", ds[(len(ds)*99+99)/100-1])
	b.figure("event_controller_cpu_s", cpu1-cpu0)
	b.figure("event_service_updates", float64(n))
	b.figure("event_updates_after_last", float64(after))
	return nil
}

// waitMetric polls the controller's /metrics until a series starting with prefix is at least 1.
func (b *bench) waitMetric(ctx context.Context, port int, prefix string) error {
	for ctx.Err() == nil {
		resp, err := b.hc.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if err == nil {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(make([]byte, 1<<20), 1<<20)
			for sc.Scan() {
				f := strings.Fields(sc.Text())
				if len(f) == 2 && strings.HasPrefix(sc.Text(), prefix) {
					if v, perr := strconv.ParseFloat(f[1], 64); perr == nil && v >= 1 {
						resp.Body.Close()
						return nil
					}
				}
			}
			resp.Body.Close()
		}
		time.Sleep(500 * time.Millisecond)
	}
	return ctx.Err()
}

func stackServices(hc *http.Client, stack string) ([]swarmtypes.Service, error) {
	f := url.QueryEscape(fmt.Sprintf(`{"label":["com.docker.stack.namespace=%s"]}`, stack))
	req, err := http.NewRequest(http.MethodGet, "http://docker/v1.44/services?filters="+f, nil)
	if err != nil {
		return nil, err
	}
	var svcs []swarmtypes.Service
	return svcs, getJSON(hc, req, &svcs)
}

// cpuSeconds is the process's user plus system CPU time.
func cpuSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	st, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	return (u + st) / clkTck, nil
}
