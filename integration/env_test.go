//go:build integration

package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the checkout this file belongs to.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(file))
}

// labEnv reads the lab's env file ($LAB_ENV_FILE, default .lab/env): DOCKER_HOST, LAB_NODES, LAB_DATA,
// LAB_CONTROL_SOCKETS, VAULT_ADDR, VAULT_TOKEN, LAB_SCRIPT, ... A missing lab fails the test: an integration
// test never passes by skipping.
func labEnv(t testing.TB) map[string]string {
	t.Helper()
	path := labEnvFile()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no lab: %v (start one with `make lab`)", err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		env[k] = strings.Trim(v, `"'`)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	for _, k := range []string{"DOCKER_HOST", "LAB_NODES", "LAB_DATA", "VAULT_ADDR", "VAULT_TOKEN"} {
		if env[k] == "" {
			t.Fatalf("lab env %s has no %s", path, k)
		}
	}
	return env
}

// labEnvFile is the path of the lab's env file.
func labEnvFile() string {
	if p := os.Getenv("LAB_ENV_FILE"); p != "" {
		return p
	}
	return filepath.Join(repoRoot(), ".lab", "env")
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildOut  []byte
)

// swarmguardBin builds the binary once per test process, with the crash hook (build tag crashhook: the
// crash-point harness sets SG_TEST_CRASH; the production binary has no hook).
func swarmguardBin(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "swarmguard-it-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "swarmguard")
		cmd := exec.Command("go", "build", "-race", "-tags", "crashhook", "-o", binPath, "./cmd/swarmguard")
		cmd.Dir = repoRoot()
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("building swarmguard: %v\n%s", buildErr, buildOut)
	}
	return binPath
}

// result is one run of the binary.
type result struct {
	Stdout, Stderr string
	Code           int
}

// runSG runs swarmguard with the lab's environment plus extra ("K=V"), capturing everything it prints.
func runSG(t testing.TB, env map[string]string, extra []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, swarmguardBin(t), args...)
	cmd.Env = append(baseEnv(env), extra...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("running swarmguard %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	r := result{Stdout: out.String(), Stderr: errb.String(), Code: code}
	t.Logf("swarmguard %s -> exit %d", strings.Join(args, " "), code)
	return r
}

// baseEnv is the process environment with the lab's DOCKER_HOST, VAULT_ADDR and VAULT_TOKEN, and no
// SWARMGUARD_* variables of the caller's.
func baseEnv(env map[string]string) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "SWARMGUARD_") || k == "DOCKER_HOST" || k == "VAULT_ADDR" || k == "VAULT_TOKEN" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "DOCKER_HOST="+env["DOCKER_HOST"], "VAULT_ADDR="+env["VAULT_ADDR"], "VAULT_TOKEN="+env["VAULT_TOKEN"])
}

// docker runs the docker CLI against the lab (host: a socket, or "" for DOCKER_HOST).
func docker(t testing.TB, env map[string]string, host string, args ...string) (string, error) {
	t.Helper()
	if host == "" {
		host = env["DOCKER_HOST"]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"-H", host}, args...)...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// mustDocker is docker that fails the test on error.
func mustDocker(t testing.TB, env map[string]string, host string, args ...string) string {
	t.Helper()
	out, err := docker(t, env, host, args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// lab runs the lab script (node stop/start/add, vault stop/start) for this lab.
func lab(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	script := env["LAB_SCRIPT"]
	if script == "" {
		script = filepath.Join(repoRoot(), "integration", "lab", "lab")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, args...)
	cmd.Env = os.Environ()
	for _, k := range []string{"LAB_NAME", "LAB_SUBNET", "LAB_VAULT_PORT", "LAB_ENV_FILE"} {
		if v := env[k]; v != "" {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("lab %s: %v\n%s%s", strings.Join(args, " "), err, out.String(), errb.String())
	}
	return strings.TrimSpace(out.String())
}

// secretScan fails the test when any of values appears in any of outputs. Empty values are ignored.
func secretScan(t testing.TB, outputs []string, values ...string) {
	t.Helper()
	for _, v := range values {
		if v == "" {
			continue
		}
		for i, o := range outputs {
			if strings.Contains(o, v) {
				t.Errorf("output %d holds a secret value (%d bytes, starting %q…)", i, len(v), v[:min(4, len(v))])
			}
		}
	}
}

// httpGet returns the body of a GET (an HTTP error status is an error).
func httpGet(url string) (string, error) {
	resp, err := http.Get(url) //nolint:noctx // short test probes, each inside an eventually loop
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode >= 300 {
		err = fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// poll calls cond every 250 ms until it is true (poll returns true) or timeout has passed (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(250 * time.Millisecond)
	}
	return false
}

// eventually polls cond until it is true, and fails the test when timeout passes first.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !poll(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}
