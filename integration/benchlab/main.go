//go:build integration

// Command benchlab measures the secret sync at scale on the running lab (`make bench-lab`): it builds its
// fixtures (Vault values, 1,000 mappings, 300 services with 0 replicas using 4 secrets each), runs the real
// swarmguard binary as a whole process, measures, cleans up, and prints one line per figure, `NAME VALUE`,
// last. It reads DOCKER_HOST, VAULT_ADDR and VAULT_TOKEN from the lab's .lab/env.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
)

const (
	nMappings = 1000
	nSmall    = 200
	nServices = 300
	perSvc    = 4
)

type bench struct {
	sg, dir, run string
	vault, token string
	hc           *http.Client
	figures      [][2]string
}

func main() {
	sg := flag.String("sg", "", "the swarmguard binary to measure")
	flag.Parse()
	b := &bench{sg: *sg, vault: os.Getenv("VAULT_ADDR"), token: os.Getenv("VAULT_TOKEN"), hc: &http.Client{Timeout: 30 * time.Second}}
	if b.sg == "" || b.vault == "" || b.token == "" || os.Getenv("DOCKER_HOST") == "" {
		fmt.Fprintln(os.Stderr, "benchlab: set -sg and source the lab's .lab/env (DOCKER_HOST, VAULT_ADDR, VAULT_TOKEN): make bench-lab")
		os.Exit(2)
	}
	rb := make([]byte, 3)
	_, _ = rand.Read(rb)
	b.run = "bl" + hex.EncodeToString(rb)
	var err error
	if b.dir, err = os.MkdirTemp("", "benchlab-"); err != nil {
		fail(err)
	}
	defer os.RemoveAll(b.dir)
	defer b.cleanup()
	// BENCHLAB_PART=events runs the events part alone (the secret sync's part takes long on a loaded machine).
	if os.Getenv("BENCHLAB_PART") != "events" {
		if err := b.measure(); err != nil {
			fail(err)
		}
	}
	if err := b.eventsPart(); err != nil {
		fail(err)
	}
	for _, f := range b.figures {
		fmt.Printf("%s %s\n", f[0], f[1])
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchlab:", err)
	os.Exit(1)
}

func (b *bench) figure(name string, v float64) {
	s := strconv.FormatFloat(v, 'f', -1, 64)
	if v != float64(int64(v)) {
		s = strconv.FormatFloat(v, 'f', 3, 64)
	}
	b.figures = append(b.figures, [2]string{name, s})
	fmt.Fprintf(os.Stderr, "benchlab: %s = %s\n", name, s)
}

func (b *bench) mapping(i int) string { return fmt.Sprintf("%s_%04d", b.run, i) }
func (b *bench) path(i int) string    { return fmt.Sprintf("bench/%s/%04d", b.run, i) }

func (b *bench) measure() error {
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Fprintf(os.Stderr, "benchlab: machine %d cores (%s/%s), load average %s", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, load)
	if err := os.WriteFile(filepath.Join(b.dir, "hmac.key"), []byte("benchlab-hmac-key-"+b.run), 0o600); err != nil {
		return err
	}
	if err := b.putValues("one"); err != nil {
		return err
	}
	cfgAll, cfgSmall, cfgRun := filepath.Join(b.dir, "all.yaml"), filepath.Join(b.dir, "small.yaml"), filepath.Join(b.dir, "run.yaml")
	port, err := freePort()
	if err != nil {
		return err
	}
	for _, c := range []struct {
		file    string
		n       int
		refresh string
		listen  string
	}{{cfgAll, nMappings, "", ""}, {cfgSmall, nSmall, "", ""}, {cfgRun, nMappings, "1s", fmt.Sprintf("127.0.0.1:%d", port)}} {
		if err := b.writeConfig(c.file, c.n, c.refresh, c.listen); err != nil {
			return err
		}
	}

	// The lease first: on a swarm that has none yet, the first command to take it waits out one full TTL
	// (30 s) before acting, by design (operator.Lease); that wait is not the sync's, so a one-mapping rotate
	// of its own takes it before anything is measured.
	if err := b.warmLease(); err != nil {
		return fmt.Errorf("taking the lease before measuring: %w", err)
	}

	// First sync: 1,000 new mappings, no services yet.
	r, err := b.rotate(cfgAll)
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	b.figure("first_sync_1000_s", r.wall.Seconds())

	// 300 services with 0 replicas, 4 secrets each.
	if err := b.services(); err != nil {
		return err
	}
	for _, c := range []struct {
		name, cfg string
	}{{"steady_200_s", cfgSmall}, {"steady_1000_s", cfgAll}} {
		var walls []float64
		for range 3 {
			r, err := b.rotate(c.cfg)
			if err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			if r.changed != 0 {
				return fmt.Errorf("%s: a steady pass changed %d mappings", c.name, r.changed)
			}
			walls = append(walls, r.wall.Seconds())
		}
		slices.Sort(walls)
		fmt.Fprintf(os.Stderr, "benchlab: %s runs %v\n", c.name, walls)
		b.figure(c.name, walls[1])
	}

	// What a pass cannot go below here, measured on the same fixtures.
	if err := b.floors(); err != nil {
		return fmt.Errorf("floors: %w", err)
	}

	// The controller: its first pass has all 1,000 due; RSS after 5 passes.
	pass, rss, err := b.controller(cfgRun, port)
	if err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	b.figure("controller_pass_1000_s", pass)

	// Mass change: every value changed in Vault, one pass over the 300 services.
	if err := b.putValues("two"); err != nil {
		return err
	}
	before, err := b.serviceVersions()
	if err != nil {
		return err
	}
	events, err := b.watchUpdates(before)
	if err != nil {
		return err
	}
	r, err = b.rotate(cfgAll)
	if err != nil {
		return fmt.Errorf("mass change: %w", err)
	}
	b.figure("mass_change_1000_s", r.wall.Seconds())
	b.figure("mass_change_cpu_s", r.cpu.Seconds())
	updates, err := events()
	if err != nil {
		return err
	}
	after, err := b.serviceVersions()
	if err != nil {
		return err
	}
	changed := 0
	for id, v := range after {
		if before[id] != v {
			changed++
		}
	}
	fmt.Fprintf(os.Stderr, "benchlab: mass change: %d service update events, %d of %d services at a new version\n", updates, changed, len(after))
	b.figure("service_updates_mass_change", float64(updates))
	b.figure("audit_records_mass_change", float64(r.audits))
	b.figure("controller_rss_mb", rss)
	return nil
}

// warmLease runs one rotate of a mapping of its own (value, version and Vault path removed by cleanup).
func (b *bench) warmLease() error {
	if err := b.putValue(b.warmPath(), "warm"); err != nil {
		return err
	}
	cfg := filepath.Join(b.dir, "warm.yaml")
	body := fmt.Sprintf("vault:\n  address: %s\n  auth: {method: token}\nsecrets:\n  hmac_key_file: %s\n  mappings:\n    - {name: %s_warm, from: {path: secret/%s, key: v}, keep_versions: 1}\n",
		b.vault, filepath.Join(b.dir, "hmac.key"), b.run, b.warmPath())
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		return err
	}
	start := time.Now()
	_, err := b.rotate(cfg)
	fmt.Fprintf(os.Stderr, "benchlab: lease taken by a one-mapping rotate in %s\n", time.Since(start).Round(time.Millisecond))
	return err
}

func (b *bench) warmPath() string { return fmt.Sprintf("bench/%s/warm", b.run) }

// floors measures what a steady pass cannot go below on this machine, at this moment, on the same fixtures:
// the Vault reads alone, and the reads beside the engine's three lists (managed secrets, services, tasks),
// made by a bare client (net/http over kept-alive connections, 6 reads at a time, the fastest of 4, 6 and
// 8 on the lab), the lists decoded into the Engine API's own types. No process start, configuration, lease,
// plan or output: the figures the pass's own are to be read against. Median of 3 each.
func (b *bench) floors() error {
	engine, err := engineClient()
	if err != nil {
		return err
	}
	vc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}
	reads := func(n int) error {
		return each(n, 6, func(i int) error {
			req, _ := http.NewRequest(http.MethodGet, b.vault+"/v1/secret/data/"+b.path(i), nil)
			req.Header.Set("X-Vault-Token", b.token)
			var v struct {
				Data struct {
					Data     map[string]any `json:"data"`
					Metadata struct {
						Version int `json:"version"`
					} `json:"metadata"`
				} `json:"data"`
			}
			return getJSON(vc, req, &v)
		})
	}
	lists := func() error {
		var sec []swarmtypes.Secret
		var svc []swarmtypes.Service
		var tasks []swarmtypes.Task
		filter := url.QueryEscape(`{"label":{"swarmguard.managed=true":true}}`)
		var errs [3]error
		var wg sync.WaitGroup
		for i, l := range []struct {
			path string
			into any
		}{{"/secrets?filters=" + filter, &sec}, {"/services", &svc}, {"/tasks", &tasks}} {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, "http://engine"+l.path, nil)
				errs[i] = getJSON(engine, req, l.into)
			})
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			return err
		}
		if len(sec) < nMappings || len(svc) < nServices {
			return fmt.Errorf("the engine lists %d managed secrets and %d services; want at least %d and %d", len(sec), len(svc), nMappings, nServices)
		}
		return nil
	}
	if err := reads(nMappings); err != nil { // the connections, warm
		return err
	}
	for _, f := range []struct {
		name string
		fn   func() error
	}{
		{"floor_reads_200_s", func() error { return reads(nSmall) }},
		{"floor_reads_1000_s", func() error { return reads(nMappings) }},
		{"floor_pass_200_s", func() error { return both(func() error { return reads(nSmall) }, lists) }},
		{"floor_pass_1000_s", func() error { return both(func() error { return reads(nMappings) }, lists) }},
	} {
		var walls []float64
		for range 3 {
			start := time.Now()
			if err := f.fn(); err != nil {
				return fmt.Errorf("%s: %w", f.name, err)
			}
			walls = append(walls, time.Since(start).Seconds())
		}
		slices.Sort(walls)
		b.figure(f.name, walls[1])
	}
	return nil
}

func both(f, g func() error) error {
	var ef, eg error
	var wg sync.WaitGroup
	wg.Go(func() { ef = f() })
	wg.Go(func() { eg = g() })
	wg.Wait()
	return errors.Join(ef, eg)
}

// engineClient is a bare HTTP client of the lab's engine (DOCKER_HOST, a unix socket).
func engineClient() (*http.Client, error) {
	sock, ok := strings.CutPrefix(os.Getenv("DOCKER_HOST"), "unix://")
	if !ok {
		return nil, fmt.Errorf("DOCKER_HOST %q: the floors are measured over the lab's unix socket", os.Getenv("DOCKER_HOST"))
	}
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, MaxIdleConnsPerHost: 4}, Timeout: 30 * time.Second}, nil
}

func getJSON(hc *http.Client, req *http.Request, into any) error {
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("GET %s: %s", req.URL.Path, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(into)
	_, _ = io.Copy(io.Discard, resp.Body) // read to the end, so the connection is kept alive
	return err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *bench) writeConfig(file string, n int, refresh, listen string) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "listen: %q\nvault:\n  address: %s\n  auth: {method: token}\nsecrets:\n  hmac_key_file: %s\n  mappings:\n", listen, b.vault, filepath.Join(b.dir, "hmac.key"))
	for i := range n {
		fmt.Fprintf(&sb, "    - {name: %s, from: {path: secret/%s, key: v}, keep_versions: 1", b.mapping(i), b.path(i))
		if refresh != "" {
			fmt.Fprintf(&sb, ", refresh: %s", refresh)
		}
		sb.WriteString("}\n")
	}
	return os.WriteFile(file, []byte(sb.String()), 0o600)
}

// putValues writes every mapping's Vault value, 4 writers at a time over kept-alive connections.
func (b *bench) putValues(gen string) error {
	return each(nMappings, 4, func(i int) error {
		return b.putValue(b.path(i), fmt.Sprintf("%s-%s-%d", b.run, gen, i))
	})
}

func (b *bench) putValue(path, v string) error {
	body, _ := json.Marshal(map[string]any{"data": map[string]string{"v": v}})
	req, _ := http.NewRequest(http.MethodPost, b.vault+"/v1/secret/data/"+path, bytes.NewReader(body))
	req.Header.Set("X-Vault-Token", b.token)
	resp, err := b.hc.Do(req)
	if err != nil {
		return fmt.Errorf("writing vault value %s: %w", path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("writing vault value %s: %s", path, resp.Status)
	}
	return nil
}

func each(n, limit int, fn func(i int) error) error {
	next := make(chan int)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() {
			for i := range next {
				errs[i] = fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}

type rotation struct {
	wall, cpu       time.Duration
	changed, audits int
}

// rotate runs `swarmguard rotate secret --all` as a whole process and reads what it did.
func (b *bench) rotate(cfg string) (rotation, error) {
	cmd := exec.Command(b.sg, "rotate", "secret", "--all", "--config", cfg, "--log-format", "json", "--format", "json", "--reason", "benchlab")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := rotation{wall: time.Since(start)}
	if cmd.ProcessState != nil {
		r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if err != nil {
		return r, fmt.Errorf("%w: %s", err, lastLine(errb.String()))
	}
	r.changed = strings.Count(out.String(), `"outcome": "changed"`)
	sc := bufio.NewScanner(&errb)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg    string `json:"msg"`
			Record struct {
				Kind    string            `json:"kind"`
				Details map[string]string `json:"details"`
			} `json:"record"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "audit" && l.Record.Kind == "secret" && strings.HasPrefix(l.Record.Details["secret"], b.run) {
			r.audits++
		}
	}
	return r, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

func docker(args ...string) (string, error) {
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args[:min(2, len(args))], " "), err, lastLine(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}

// services creates the 300 services, each mounting the current versions of 4 mappings.
func (b *bench) services() error {
	ls, err := docker("secret", "ls", "--filter", "label=swarmguard.managed=true", "--format", "{{.Name}}")
	if err != nil {
		return err
	}
	current := map[string]string{} // mapping -> version name
	for _, n := range strings.Fields(ls) {
		if i := strings.LastIndexByte(n, '-'); i > 0 && strings.HasPrefix(n, b.run+"_") && n[:i] != b.run+"_warm" {
			current[n[:i]] = n
		}
	}
	if len(current) != nMappings {
		return fmt.Errorf("after the first sync %d of %d mappings have a secret", len(current), nMappings)
	}
	start := time.Now()
	err = each(nServices, 4, func(i int) error {
		// --no-resolve-image: the lab has no registry; asking one for the image's digest costs each create ~4 s.
		args := []string{"service", "create", "--no-resolve-image", "--detach", "--quiet", "--name", fmt.Sprintf("%s-svc%03d", b.run, i), "--replicas", "0",
			"--label", "benchlab=" + b.run}
		for j := range perSvc {
			args = append(args, "--secret", fmt.Sprintf("source=%s,target=s%d", current[b.mapping((i*perSvc+j)%nMappings)], j))
		}
		_, err := docker(append(args, "swarmguard-testapp:lab")...)
		return err
	})
	fmt.Fprintf(os.Stderr, "benchlab: %d services created in %s\n", nServices, time.Since(start).Round(time.Millisecond))
	return err
}

// serviceVersions is each of our services' version index.
func (b *bench) serviceVersions() (map[string]string, error) {
	ids, err := docker("service", "ls", "-q", "--filter", "label=benchlab="+b.run)
	if err != nil {
		return nil, err
	}
	out, err := docker(append([]string{"service", "inspect", "--format", "{{.ID}} {{.Version.Index}}"}, strings.Fields(ids)...)...)
	if err != nil {
		return nil, err
	}
	v := map[string]string{}
	for l := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 {
			v[f[0]] = f[1]
		}
	}
	return v, nil
}

// watchUpdates follows the engine's service update events of our services from now (a live stream: the
// engine replays only its last 256 events for --since); the returned func stops it and counts them.
func (b *bench) watchUpdates(mine map[string]string) (func() (int, error), error) {
	cmd := exec.Command("docker", "events", "--filter", "type=service", "--filter", "event=update", "--format", "{{.Actor.ID}}")
	var out bytes.Buffer
	var mu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	time.Sleep(500 * time.Millisecond) // the stream is subscribed before the pass starts
	return func() (int, error) {
		time.Sleep(time.Second) // the last events arrive
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, id := range strings.Fields(out.String()) {
			if _, ok := mine[id]; ok {
				n++
			}
		}
		return n, nil
	}, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// controller runs `swarmguard run` with every mapping due each second (refresh 1s; the loop ticks every 5 s,
// so all 1,000 are due at every pass): the median duration of the passes after the first
// (swarmguard_reconcile_duration_seconds{loop="secrets"}; the first also logs in to Vault and runs beside
// every other loop's start-up pass, it is logged) and the process's RSS after 5 passes.
func (b *bench) controller(cfg string, port int) (float64, float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.sg, "run", "--config", cfg, "--log-format", "json", "--log-level", "warn")
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &errb
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	// Each pass's own duration from the histogram's sum as its count goes up; polled every second, often
	// enough to see each pass (the loop ticks every 5 s) and seldom enough not to weigh on it: a scrape
	// renders every mapping's series (5,000 with 1,000 mappings), and five a second took CPU and heap from
	// the passes being measured (Prometheus scrapes every 15 s by default).
	var passes []float64
	lastSum, lastCount := 0.0, 0
	for ctx.Err() == nil {
		sum, count, err := b.passMetrics(port)
		if err == nil && count == lastCount+1 {
			passes = append(passes, sum-lastSum)
		}
		if err == nil && count > lastCount {
			lastSum, lastCount = sum, count
		}
		if err == nil && count >= 6 {
			rss, err := rssMB(cmd.Process.Pid)
			fmt.Fprintf(os.Stderr, "benchlab: controller passes (s): %v\n", passes)
			if len(passes) < 3 {
				return 0, rss, fmt.Errorf("saw %d passes one by one; want at least 3", len(passes))
			}
			later := slices.Clone(passes[1:])
			slices.Sort(later)
			return later[len(later)/2], rss, err
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	return 0, 0, fmt.Errorf("5 secrets passes did not happen within 5 minutes: %s", lastLine(errb.String()))
}

func (b *bench) passMetrics(port int) (sum float64, count int, err error) {
	resp, err := b.hc.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		l := sc.Text()
		f := strings.Fields(l)
		if len(f) != 2 {
			continue
		}
		switch {
		case strings.HasPrefix(l, `swarmguard_reconcile_duration_seconds_sum{loop="secrets"}`):
			sum, _ = strconv.ParseFloat(f[1], 64)
		case strings.HasPrefix(l, `swarmguard_reconcile_duration_seconds_count{loop="secrets"}`):
			c, _ := strconv.ParseFloat(f[1], 64)
			count = int(c)
		}
	}
	return sum, count, sc.Err()
}

func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS")
}

// cleanup removes the services, the secrets and the Vault values of this run.
func (b *bench) cleanup() {
	if ids, err := docker("service", "ls", "-q", "--filter", "label=benchlab="+b.run); err == nil && ids != "" {
		_, _ = docker(append([]string{"service", "rm"}, strings.Fields(ids)...)...)
	}
	ls, _ := docker("secret", "ls", "--filter", "label=swarmguard.managed=true", "--format", "{{.ID}} {{.Name}}")
	var ids []string
	for l := range strings.SplitSeq(ls, "\n") {
		if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[1], b.run+"_") {
			ids = append(ids, f[0])
		}
	}
	for len(ids) > 0 {
		n := min(len(ids), 200)
		_, _ = docker(append([]string{"secret", "rm"}, ids[:n]...)...)
		ids = ids[n:]
	}
	_ = each(nMappings+1, 4, func(i int) error {
		p := b.warmPath()
		if i < nMappings {
			p = b.path(i)
		}
		req, _ := http.NewRequest(http.MethodDelete, b.vault+"/v1/secret/metadata/"+p, nil)
		req.Header.Set("X-Vault-Token", b.token)
		if resp, err := b.hc.Do(req); err == nil {
			resp.Body.Close()
		}
		return nil
	})
	fmt.Fprintln(os.Stderr, "benchlab: fixtures removed")
}
