//go:build integration

package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/swarmguard/swarmguard/operator"
	"github.com/swarmguard/swarmguard/operator/secretsync"
	"github.com/swarmguard/swarmguard/secrets"
)

// These tests show issue 5's "Must show" on the lab's real engine and real Vault. Each test uses names
// with a random run ID under secret/apps/ (the path configs/vault-policy.hcl grants), and removes its
// services and secrets afterwards.

func runID(t *testing.T) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// vaultDo calls Vault's HTTP API with the lab's root token and returns the JSON answer.
func vaultDo(t *testing.T, env map[string]string, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	// Not t.Context(): clean-ups call this after the test's context ended.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, env["VAULT_ADDR"]+"/v1/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Vault-Token", env["VAULT_TOKEN"])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("vault %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func vaultPut(t *testing.T, env map[string]string, path string, data map[string]string) {
	t.Helper()
	code, out := vaultDo(t, env, http.MethodPost, "secret/data/"+path, map[string]any{"data": data})
	if code/100 != 2 {
		t.Fatalf("writing secret/%s to vault: %d %v", path, code, out["errors"])
	}
}

// secretsFixture is one test's mapping, config and the outputs to scan for values.
type secretsFixture struct {
	t       *testing.T
	env     map[string]string
	run     string
	name    string // mapping name
	path    string // vault path under secret/
	dir     string
	config  string
	values  []string
	outputs []string
	mu      sync.Mutex
}

func newSecretsFixture(t *testing.T, prefix string, extraYAML string) *secretsFixture {
	env := labEnv(t)
	f := &secretsFixture{t: t, env: env, run: runID(t), dir: t.TempDir()}
	f.name = prefix + "_" + f.run
	f.path = "apps/it-" + f.run + "/" + prefix
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	if err := os.WriteFile(filepath.Join(f.dir, "hmac.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	f.writeConfig("vault:\n  address: "+env["VAULT_ADDR"]+"\n  auth: {method: token}\n", extraYAML)
	t.Cleanup(f.cleanup)
	return f
}

func (f *secretsFixture) writeConfig(vaultYAML, extraYAML string) {
	f.config = filepath.Join(f.dir, "swarmguard.yaml")
	cfg := vaultYAML + fmt.Sprintf(`secrets:
  hmac_key_file: %s
  rollout_timeout: 90s
  mappings:
    - name: %s
      from: {path: secret/%s, key: password}
      keep_versions: 1
%s`, filepath.Join(f.dir, "hmac.key"), f.name, f.path, extraYAML)
	if err := os.WriteFile(f.config, []byte(cfg), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// put writes a new value and remembers it for the leak scan.
func (f *secretsFixture) put(v string) {
	f.values = append(f.values, v)
	vaultPut(f.t, f.env, f.path, map[string]string{"password": v, "user": "app"})
}

// sg runs swarmguard with the fixture's config and keeps everything it printed.
func (f *secretsFixture) sg(extra []string, args ...string) result {
	f.t.Helper()
	r := runSG(f.t, f.env, extra, append(args, "--config", f.config, "--log-level", "debug")...)
	f.mu.Lock()
	f.outputs = append(f.outputs, r.Stdout, r.Stderr)
	f.mu.Unlock()
	return r
}

func (f *secretsFixture) mustSG(args ...string) result {
	f.t.Helper()
	r := f.sg(nil, args...)
	if r.Code != 0 {
		f.t.Fatalf("swarmguard %v exited %d\nstdout:\n%s\nstderr:\n%s", args, r.Code, r.Stdout, r.Stderr)
	}
	return r
}

// versions lists the mapping's Docker secrets: name -> labels.
func (f *secretsFixture) versions() map[string]map[string]string {
	f.t.Helper()
	out := mustDocker(f.t, f.env, "", "secret", "ls", "--filter", "label=swarmguard.secret="+f.name, "--format", "{{.ID}}")
	vs := map[string]map[string]string{}
	for _, id := range strings.Fields(out) {
		js := mustDocker(f.t, f.env, "", "secret", "inspect", "--format", "{{.Spec.Name}} {{json .Spec.Labels}}", id)
		name, labels, _ := strings.Cut(js, " ")
		m := map[string]string{}
		if err := json.Unmarshal([]byte(labels), &m); err != nil {
			f.t.Fatalf("labels of %s: %v", name, err)
		}
		vs[name] = m
		f.mu.Lock()
		f.outputs = append(f.outputs, js)
		f.mu.Unlock()
	}
	return vs
}

func (f *secretsFixture) versionNamed(vaultVersion string) string {
	f.t.Helper()
	for n, l := range f.versions() {
		if l["swarmguard.vault-version"] == vaultVersion {
			return n
		}
	}
	f.t.Fatalf("no Docker secret of %s at vault version %s: %v", f.name, vaultVersion, f.versions())
	return ""
}

func (f *secretsFixture) cleanup() {
	// Services first (they hold the secrets), then the secrets.
	svcs, _ := docker(f.t, f.env, "", "service", "ls", "-q", "--filter", "label=sgsec-run="+f.run)
	for _, s := range strings.Fields(svcs) {
		_, _ = docker(f.t, f.env, "", "service", "rm", s)
	}
	// a secret stays in use until the removed services' tasks are gone; clean-up gives up quietly after 60 s
	poll(60*time.Second, func() bool {
		ids, _ := docker(f.t, f.env, "", "secret", "ls", "-q", "--filter", "label=swarmguard.secret="+f.name)
		if strings.TrimSpace(ids) == "" {
			return true
		}
		_, err := docker(f.t, f.env, "", append([]string{"secret", "rm"}, strings.Fields(ids)...)...)
		return err == nil
	})
	// Every output, log and label these tests saw: no secret value may be in any of them.
	secretScan(f.t, f.outputs, f.values...)
}

// service creates a service labelled with the run ID, for clean-up.
func (f *secretsFixture) service(name string, args ...string) string {
	f.t.Helper()
	full := "sgsec-" + name + "-" + f.run
	base := []string{"service", "create", "--detach", "--name", full, "--label", "sgsec-run=" + f.run, "--no-resolve-image",
		"--stop-grace-period", "1s", "--update-delay", "0s", "--update-monitor", "2s", "--update-order", "stop-first"}
	mustDocker(f.t, f.env, "", append(base, args...)...)
	return full
}

// serviceSecrets returns a service's secret refs as "name>target uid:gid mode".
func (f *secretsFixture) serviceSecrets(svc string) []string {
	f.t.Helper()
	out := mustDocker(f.t, f.env, "", "service", "inspect", "--format",
		`{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}>{{.File.Name}} {{.File.UID}}:{{.File.GID}} {{printf "%o" .File.Mode}};{{end}}`, svc)
	var refs []string
	for _, r := range strings.Split(out, ";") {
		if r = strings.TrimSpace(r); r != "" {
			refs = append(refs, r)
		}
	}
	return refs
}

func (f *secretsFixture) serviceVersion(svc string) string {
	return mustDocker(f.t, f.env, "", "service", "inspect", "--format", "{{.Version.Index}}", svc)
}

// prints waits until every running task of svc prints FILE=want as its latest line.
func (f *secretsFixture) prints(svc, file, want string) {
	f.t.Helper()
	var last string
	eventually(f.t, 90*time.Second, fmt.Sprintf("%s prints %s", svc, file), func() bool {
		// The tasks may run on any node: look at each node's containers.
		n := 0
		for _, node := range strings.Fields(f.env["LAB_NODES"]) {
			ids, err := docker(f.t, f.env, node, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc, "--filter", "status=running")
			if err != nil {
				continue // a node a test stopped
			}
			for _, id := range strings.Fields(ids) {
				out, err := docker(f.t, f.env, node, "logs", "--tail", "1", id)
				last = out
				if err != nil || strings.TrimSpace(out) != file+"="+want {
					return false
				}
				n++
			}
		}
		return n > 0
	})
	_ = last
}

func TestSecretsSyncRotateRollsServices(t *testing.T) {
	f := newSecretsFixture(t, "db", "")
	v1, v2, v3 := "it-one-"+f.run, "it-two-"+f.run, "it-three-"+f.run
	f.put(v1)
	// A opts in by label: the first pass adds the secret at its labelled target.
	a := f.service("a", "--label", "swarmguard.secrets="+f.name, "--label", "swarmguard.secrets."+f.name+".target=db_password",
		"swarmguard-testapp:lab", "print", "/run/secrets/db_password")
	f.mustSG("rotate", "secret", f.name, "--reason", "first sync")

	vs := f.versions()
	n1 := f.versionNamed("1")
	if len(vs) != 1 || !strings.HasPrefix(n1, f.name+"-") || len(n1) != len(f.name)+9 {
		t.Fatalf("after pass 1: secrets %v; want one named %s-<8 hex>", vs, f.name)
	}
	l := vs[n1]
	if l["swarmguard.managed"] != "true" || l["swarmguard.secret"] != f.name || l["swarmguard.source"] != "secret/"+f.path+"#password" ||
		len(l["swarmguard.hmac"]) != 64 || !strings.HasPrefix(l["swarmguard.hmac"], strings.TrimPrefix(n1, f.name+"-")) {
		t.Errorf("labels of %s = %v", n1, l)
	}
	if refs := f.serviceSecrets(a); !slices.Equal(refs, []string{n1 + ">db_password 0:0 444"}) {
		t.Errorf("service a refs = %v; want %s at db_password", refs, n1)
	}
	f.prints(a, "/run/secrets/db_password", v1)

	// B shares v1 with its own target, owner and mode; C opts in at an absolute target.
	b := f.service("b", "--secret", "source="+n1+",target=pw,uid=1000,gid=1001,mode=0400",
		"swarmguard-testapp:lab", "print", "/run/secrets/pw")
	c := f.service("c", "--label", "swarmguard.secrets=other,"+f.name, "--label", "swarmguard.secrets."+f.name+".target=/etc/app/db.pw",
		"swarmguard-testapp:lab", "print", "/etc/app/db.pw")
	f.prints(b, "/run/secrets/pw", v1)

	f.put(v2)
	plan := f.mustSG("secrets", "plan", "--format", "json")
	var planned []struct {
		Mapping string `json:"mapping"`
		Plan    struct {
			Create  *struct{ Name string } `json:"create"`
			Updates []struct {
				ServiceName string `json:"service_name"`
				Added       bool   `json:"added"`
			} `json:"updates"`
		} `json:"plan"`
	}
	if err := json.Unmarshal([]byte(plan.Stdout), &planned); err != nil || len(planned) != 1 || planned[0].Plan.Create == nil || len(planned[0].Plan.Updates) != 3 {
		t.Fatalf("secrets plan = %s (%v); want one create and 3 updates", plan.Stdout, err)
	}
	if len(f.versions()) != 1 {
		t.Fatalf("secrets plan changed something: %v", f.versions())
	}

	f.mustSG("rotate", "secret", f.name, "--reason", "password changed")
	n2 := f.versionNamed("2")
	if refs := f.serviceSecrets(a); !slices.Equal(refs, []string{n2 + ">db_password 0:0 444"}) {
		t.Errorf("service a refs = %v; want %s", refs, n2)
	}
	if refs := f.serviceSecrets(b); !slices.Equal(refs, []string{n2 + ">pw 1000:1001 400"}) {
		t.Errorf("service b refs = %v; want %s with target, uid, gid and mode kept", refs, n2)
	}
	if refs := f.serviceSecrets(c); !slices.Equal(refs, []string{n2 + ">/etc/app/db.pw 0:0 444"}) {
		t.Errorf("service c refs = %v; want %s added at /etc/app/db.pw", refs, n2)
	}
	f.prints(a, "/run/secrets/db_password", v2)
	f.prints(b, "/run/secrets/pw", v2)
	f.prints(c, "/etc/app/db.pw", v2)
	// v1 stays while the services' previous specs (docker service rollback) refer to it.
	if _, ok := f.versions()[n1]; !ok {
		t.Errorf("v1 %s removed while previous specs refer to it", n1)
	}

	// v3: now nothing refers to v1 any more (previous specs name v2), and keep_versions 1 lets it go.
	f.put(v3)
	f.mustSG("rotate", "secret", f.name)
	n3 := f.versionNamed("3")
	vs = f.versions()
	if _, ok := vs[n1]; ok || len(vs) != 2 {
		t.Errorf("after v3: secrets %v; want %s gone, %s (previous specs) and %s", keys(vs), n1, n2, n3)
	}
	f.prints(a, "/run/secrets/db_password", v3)

	cur := f.mustSG("secrets", "current", "--format", "env")
	want := strings.ToUpper(f.name) + "_SECRET=" + n3
	if strings.TrimSpace(cur.Stdout) != want {
		t.Errorf("secrets current = %q; want %q", cur.Stdout, want)
	}
	// A steady pass changes nothing.
	before := f.serviceVersion(a)
	r := f.mustSG("rotate", "secret", "--all", "--format", "json")
	if !strings.Contains(r.Stdout, `"outcome": "unchanged"`) || f.serviceVersion(a) != before {
		t.Errorf("steady pass: %s; service version %s -> %s", r.Stdout, before, f.serviceVersion(a))
	}
	// The ledger says what happened, without values.
	st := f.mustSG("status", "--format", "json")
	if !strings.Contains(st.Stdout, `"kind": "secret"`) {
		t.Errorf("status has no secret ledger entry:\n%s", st.Stdout)
	}
}

func keys(m map[string]map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

// failifSource is a tiny program for an image whose tasks fail on a "bad" secret: it prints the file
// every second and exits 1 when the content starts with "bad".
const failifSource = `package main

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	for {
		b, err := os.ReadFile(os.Args[1])
		if err != nil || strings.HasPrefix(string(b), "bad") {
			fmt.Fprintln(os.Stderr, "failif: bad secret")
			os.Exit(1)
		}
		fmt.Printf("%s=%s\n", os.Args[1], strings.TrimSpace(string(b)))
		select {
		case <-sig:
			return
		case <-time.After(time.Second):
		}
	}
}
`

var failifOnce sync.Once

// failifImage builds sgsec-failif:lab and loads it into every lab node.
func failifImage(t *testing.T, env map[string]string) string {
	const image = "sgsec-failif:lab"
	var err error
	failifOnce.Do(func() {
		dir, e := os.MkdirTemp("", "failif-")
		if e != nil {
			err = e
			return
		}
		defer os.RemoveAll(dir)
		if e = os.WriteFile(filepath.Join(dir, "main.go"), []byte(failifSource), 0o600); e != nil {
			err = e
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(dir, "failif"), "main.go")
		build.Dir = dir
		build.Env = append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
		if out, e := build.CombinedOutput(); e != nil {
			err = fmt.Errorf("building failif: %v\n%s", e, out)
			return
		}
		tarFile := filepath.Join(dir, "failif.tar")
		if out, e := exec.Command("tar", "-C", dir, "-cf", tarFile, "failif").CombinedOutput(); e != nil {
			err = fmt.Errorf("tar: %v\n%s", e, out)
			return
		}
		for _, node := range strings.Fields(env["LAB_NODES"]) {
			if out, e := docker(t, env, node, "import", "--change", `ENTRYPOINT ["/failif"]`, tarFile, image); e != nil {
				err = fmt.Errorf("docker import on %s: %v\n%s", node, e, out)
				return
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return image
}

func TestSecretsSyncFailedRolloutKeepsOldSecret(t *testing.T) {
	f := newSecretsFixture(t, "flaky", "")
	image := failifImage(t, f.env)
	good, bad := "good-"+f.run, "bad-"+f.run
	f.put(good)
	f.mustSG("rotate", "secret", f.name)
	n1 := f.versionNamed("1")
	// f1 rolls back when its new tasks fail; f2 (sorted after it) shares the secret.
	f1 := f.service("f1", "--secret", "source="+n1+",target=pw", "--update-failure-action", "rollback",
		"--update-max-failure-ratio", "0", "--restart-max-attempts", "0", "--restart-condition", "on-failure", image, "/run/secrets/pw")
	f2 := f.service("f2", "--secret", "source="+n1+",target=pw", "swarmguard-testapp:lab", "print", "/run/secrets/pw")
	f.prints(f1, "/run/secrets/pw", good)
	f.prints(f2, "/run/secrets/pw", good)
	f2Version := f.serviceVersion(f2)

	f.put(bad)
	r := f.sg(nil, "rotate", "secret", f.name, "--reason", "bad value")
	if r.Code != 1 {
		t.Fatalf("rotate with a failing service exited %d; want 1\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "failed") || !strings.Contains(r.Stdout, f1) {
		t.Errorf("rotate output does not name the failed rollout:\n%s", r.Stdout)
	}
	if !strings.Contains(r.Stderr, `"msg":"secret rollout failed"`) {
		t.Errorf("no error log of the failed rollout:\n%s", r.Stderr)
	}
	// The old secret is kept and in use; f1 is back on it, f2 was not touched.
	if _, ok := f.versions()[n1]; !ok {
		t.Fatalf("old secret %s removed", n1)
	}
	eventually(t, 60*time.Second, f1+" back on the old secret", func() bool {
		refs := f.serviceSecrets(f1)
		return len(refs) == 1 && strings.HasPrefix(refs[0], n1+">")
	})
	f.prints(f1, "/run/secrets/pw", good)
	if got := f.serviceVersion(f2); got != f2Version {
		t.Errorf("service %s changed (version %s -> %s); a failed mapping must touch no further service", f2, f2Version, got)
	}
	if refs := f.serviceSecrets(f2); len(refs) != 1 || !strings.HasPrefix(refs[0], n1+">") {
		t.Errorf("service %s refs = %v; want the old %s", f2, refs, n1)
	}
	if out, err := docker(t, f.env, "", "secret", "rm", n1); err == nil {
		t.Errorf("docker removed the old secret %s: it is not in use (%s)", n1, out)
	}
	if _, ok := f.versions()[n1]; !ok {
		t.Errorf("the old secret %s is not in use: docker removed it", n1)
	}
	st := f.mustSG("status", "--format", "json")
	if !strings.Contains(st.Stdout, `"result": "failed"`) {
		t.Errorf("the ledger has no failed secret entry:\n%s", st.Stdout)
	}
}

func TestSecretsSyncCrashAfterCreate(t *testing.T) {
	f := newSecretsFixture(t, "crash", "")
	f.put("first-" + f.run)
	svc := f.service("k", "--label", "swarmguard.secrets="+f.name, "swarmguard-testapp:lab", "print", "/run/secrets/"+f.name)
	f.mustSG("rotate", "secret", f.name)
	n1 := f.versionNamed("1")
	f.prints(svc, "/run/secrets/"+f.name, "first-"+f.run)

	f.put("second-" + f.run)
	r := f.sg([]string{"SG_TEST_CRASH=secret.after-create"}, "rotate", "secret", f.name)
	if r.Code == 0 {
		t.Fatalf("the crash hook did not kill swarmguard:\n%s", r.Stderr)
	}
	vs := f.versions()
	if len(vs) != 2 {
		t.Fatalf("after the crash: secrets %v; want v1 and the new one", keys(vs))
	}
	if refs := f.serviceSecrets(svc); len(refs) != 1 || !strings.HasPrefix(refs[0], n1+">") {
		t.Fatalf("after the crash the service refs = %v; want still %s", refs, n1)
	}
	// The next pass finds the secret there and finishes the rollout: exactly one new secret.
	f.mustSG("rotate", "secret", f.name)
	n2 := f.versionNamed("2")
	vs = f.versions()
	if len(vs) != 2 {
		t.Errorf("after the repair: secrets %v; want exactly %s and %s", keys(vs), n1, n2)
	}
	if refs := f.serviceSecrets(svc); len(refs) != 1 || !strings.HasPrefix(refs[0], n2+">") {
		t.Errorf("after the repair the service refs = %v; want %s", refs, n2)
	}
	f.prints(svc, "/run/secrets/"+f.name, "second-"+f.run)
}

// A kill after the service was pointed at the new version (its rollout not followed yet), and one before
// the old version's removal: the next pass creates nothing, keeps the service where it is, and finishes.
func TestSecretsSyncCrashAfterRepointBeforeRemove(t *testing.T) {
	f := newSecretsFixture(t, "crash2", "")
	f.put("first-" + f.run)
	svc := f.service("k", "--label", "swarmguard.secrets="+f.name, "swarmguard-testapp:lab", "print", "/run/secrets/"+f.name)
	f.mustSG("rotate", "secret", f.name)
	n1 := f.versionNamed("1")

	f.put("second-" + f.run)
	if r := f.sg([]string{"SG_TEST_CRASH=secret.after-repoint"}, "rotate", "secret", f.name); r.Code == 0 ||
		!strings.Contains(r.Stderr, "crashpoint: killed at secret.after-repoint") {
		t.Fatalf("the crash hook did not kill swarmguard after the repoint (exit %d):\n%s", r.Code, r.Stderr)
	}
	n2 := f.versionNamed("2")
	if refs := f.serviceSecrets(svc); len(refs) != 1 || !strings.HasPrefix(refs[0], n2+">") {
		t.Fatalf("after the kill the service refs = %v; want %s (the repoint was done)", refs, n2)
	}
	f.mustSG("rotate", "secret", f.name)
	if vs := f.versions(); len(vs) != 2 {
		t.Errorf("after the next pass: secrets %v; want exactly %s and %s (no duplicate version)", keys(vs), n1, n2)
	}
	if refs := f.serviceSecrets(svc); len(refs) != 1 || !strings.HasPrefix(refs[0], n2+">") {
		t.Errorf("after the next pass the service refs = %v; want %s", refs, n2)
	}
	f.prints(svc, "/run/secrets/"+f.name, "second-"+f.run)

	f.put("third-" + f.run)
	if r := f.sg([]string{"SG_TEST_CRASH=secret.before-remove"}, "rotate", "secret", f.name); r.Code == 0 ||
		!strings.Contains(r.Stderr, "crashpoint: killed at secret.before-remove") {
		t.Fatalf("the crash hook did not kill swarmguard before the removal (exit %d):\n%s", r.Code, r.Stderr)
	}
	n3 := f.versionNamed("3")
	if vs := f.versions(); len(vs) != 3 {
		t.Fatalf("after the kill before the removal: secrets %v; want %s, %s and %s", keys(vs), n1, n2, n3)
	}
	f.mustSG("rotate", "secret", f.name)
	vs := f.versions()
	if _, old := vs[n1]; len(vs) != 2 || old {
		t.Errorf("after the next pass: secrets %v; want exactly %s and %s (%s removed, nothing new)", keys(vs), n2, n3, n1)
	}
	if refs := f.serviceSecrets(svc); len(refs) != 1 || !strings.HasPrefix(refs[0], n3+">") {
		t.Errorf("after the next pass the service refs = %v; want %s", refs, n3)
	}
	f.prints(svc, "/run/secrets/"+f.name, "third-"+f.run)
}

func TestSecretsSyncAppRoleAndRenewal(t *testing.T) {
	f := newSecretsFixture(t, "approle", "")
	env := f.env
	policy, err := os.ReadFile(filepath.Join(repoRoot(), "configs", "vault-policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	if code, out := vaultDo(t, env, http.MethodPost, "sys/auth/approle", map[string]any{"type": "approle"}); code/100 != 2 &&
		!strings.Contains(fmt.Sprint(out["errors"]), "path is already in use") {
		t.Fatalf("enabling approle: %d %v", code, out)
	}
	pol := "swarmguard-it-" + f.run
	if code, out := vaultDo(t, env, http.MethodPut, "sys/policies/acl/"+pol, map[string]any{"policy": string(policy)}); code/100 != 2 {
		t.Fatalf("writing the policy: %d %v", code, out)
	}
	role := "swarmguard-" + f.run
	// First an hour-long token, so that only a revocation can end the CLI's token before the check below.
	if code, out := vaultDo(t, env, http.MethodPost, "auth/approle/role/"+role, map[string]any{
		"token_policies": pol, "token_ttl": "1h", "token_max_ttl": "2h"}); code/100 != 2 {
		t.Fatalf("creating the role: %d %v", code, out)
	}
	t.Cleanup(func() {
		vaultDo(t, env, http.MethodDelete, "auth/approle/role/"+role, nil)
		vaultDo(t, env, http.MethodDelete, "sys/policies/acl/"+pol, nil)
	})
	_, rid := vaultDo(t, env, http.MethodGet, "auth/approle/role/"+role+"/role-id", nil)
	_, sid := vaultDo(t, env, http.MethodPost, "auth/approle/role/"+role+"/secret-id", map[string]any{})
	roleID, _ := rid["data"].(map[string]any)["role_id"].(string)
	secretID, _ := sid["data"].(map[string]any)["secret_id"].(string)
	if roleID == "" || secretID == "" {
		t.Fatalf("no role or secret ID: %v %v", rid, sid)
	}
	f.values = append(f.values, secretID)
	roleFile, sidFile := filepath.Join(f.dir, "role_id"), filepath.Join(f.dir, "secret_id")
	_ = os.WriteFile(roleFile, []byte(roleID), 0o600)
	_ = os.WriteFile(sidFile, []byte(secretID), 0o600)
	f.writeConfig(fmt.Sprintf("vault:\n  address: %s\n  auth: {method: approle, role_id_file: %s, secret_id_file: %s}\n", env["VAULT_ADDR"], roleFile, sidFile), "")

	// The CLI logs in with AppRole and syncs under the least policy.
	f.put("approle-" + f.run)
	r := f.sg([]string{"VAULT_TOKEN="}, "rotate", "secret", f.name)
	if r.Code != 0 || !strings.Contains(r.Stderr, `"method":"approle"`) {
		t.Fatalf("rotate with approle exited %d:\n%s\n%s", r.Code, r.Stdout, r.Stderr)
	}
	f.versionNamed("1")
	// The command revoked the token it logged in for: none of the role's tokens is live after it.
	if n := liveRoleTokens(t, env, role); n != 0 || !strings.Contains(r.Stderr, "vault token revoked") {
		t.Fatalf("after the command exited: %d live token(s) of role %s; want 0 (revoked at exit)\n%s", n, role, r.Stderr)
	}

	// In-process: a 3 s token renews, reaches its 6 s max TTL, and the client logs in again; reads go on.
	if code, out := vaultDo(t, env, http.MethodPost, "auth/approle/role/"+role, map[string]any{
		"token_policies": pol, "token_ttl": "3s", "token_max_ttl": "6s"}); code/100 != 2 {
		t.Fatalf("shortening the role's token TTL: %d %v", code, out)
	}
	var logs syncBuffer
	v, err := secrets.NewVault(secrets.VaultConfig{Address: env["VAULT_ADDR"], Auth: secrets.AuthConfig{Method: secrets.AuthAppRole,
		RoleIDFile: roleFile, SecretIDFile: sidFile}}, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Login(t.Context()); err != nil {
		t.Fatalf("approle login: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = v.Run(ctx); close(done) }()
	eventually(t, 40*time.Second, "a renewal and a re-login", func() bool {
		st := v.Stats()
		return st.Renewals >= 1 && st.Relogins >= 1
	})
	val, err := v.KV().Read(t.Context(), "secret/"+f.path)
	cancel()
	<-done
	if err != nil {
		t.Fatalf("read after re-login: %v", err)
	}
	if pw, _ := val.Field("password"); pw.Reveal() != "approle-"+f.run {
		t.Errorf("read after re-login gave another value")
	}
	t.Logf("renewal stats: %+v", v.Stats())
	// Outside the policy: permission denied naming the path and the policy file.
	vaultPut(t, env, "other/it-"+f.run, map[string]string{"password": "x"})
	_, err = v.KV().Read(t.Context(), "secret/other/it-"+f.run)
	if !errors.Is(err, secrets.ErrPermissionDenied) || !strings.Contains(err.Error(), "secret/data/other/it-"+f.run) || !strings.Contains(err.Error(), "configs/vault-policy.hcl") {
		t.Errorf("read outside the policy = %v; want permission denied naming the path and configs/vault-policy.hcl", err)
	}
	f.outputs = append(f.outputs, logs.String(), fmt.Sprint(err))
	secretScan(t, []string{logs.String()}, roleID)
}

// liveRoleTokens counts the live Vault tokens an AppRole role issued: it lists every token accessor (root
// token) and looks each up. An accessor that expired between the list and the lookup is not counted;
// any other failed lookup fails the test.
func liveRoleTokens(t *testing.T, env map[string]string, role string) int {
	t.Helper()
	code, out := vaultDo(t, env, "LIST", "auth/token/accessors", nil)
	data, _ := out["data"].(map[string]any)
	keys, ok := data["keys"].([]any)
	if code != http.StatusOK || !ok {
		t.Fatalf("listing the token accessors: %d %v", code, out)
	}
	n := 0
	for _, k := range keys {
		code, info := vaultDo(t, env, http.MethodPost, "auth/token/lookup-accessor", map[string]any{"accessor": k})
		if code == http.StatusBadRequest {
			continue // expired or revoked since the list
		}
		d, _ := info["data"].(map[string]any)
		if code != http.StatusOK || d == nil {
			t.Fatalf("looking up accessor %v: %d %v", k, code, info)
		}
		if meta, _ := d["meta"].(map[string]any); meta["role_name"] == role {
			n++
		}
	}
	return n
}

// syncBuffer is a bytes.Buffer safe for the renewal goroutine's logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSecretsSyncKVv1(t *testing.T) {
	f := newSecretsFixture(t, "legacy", "")
	mount := "kv1-" + f.run
	if code, out := vaultDo(t, f.env, http.MethodPost, "sys/mounts/"+mount, map[string]any{"type": "kv", "options": map[string]any{"version": "1"}}); code/100 != 2 {
		t.Fatalf("mounting kv v1: %d %v", code, out)
	}
	t.Cleanup(func() { vaultDo(t, f.env, http.MethodDelete, "sys/mounts/"+mount, nil) })
	f.path = "../" + mount + "/app" // the fixture's config says secret/<path>; point it at the v1 mount instead
	f.writeConfig("vault:\n  address: "+f.env["VAULT_ADDR"]+"\n  auth: {method: token}\n", "")
	cfg, _ := os.ReadFile(f.config)
	_ = os.WriteFile(f.config, []byte(strings.ReplaceAll(string(cfg), "secret/../", "")), 0o600)
	v := "legacy-" + f.run
	f.values = append(f.values, v)
	if code, out := vaultDo(t, f.env, http.MethodPost, mount+"/app", map[string]any{"password": v}); code/100 != 2 {
		t.Fatalf("writing kv v1: %d %v", code, out)
	}
	f.mustSG("rotate", "secret", f.name)
	n := f.versionNamed("0") // KV v1 keeps no versions: the label says 0
	if l := f.versions()[n]; l["swarmguard.source"] != mount+"/app#password" {
		t.Errorf("labels of %s = %v", n, l)
	}
	// Same value, same name: a second pass changes nothing.
	r := f.mustSG("rotate", "secret", f.name, "--format", "json")
	if !strings.Contains(r.Stdout, `"outcome": "unchanged"`) {
		t.Errorf("second pass over an unchanged kv v1 value: %s", r.Stdout)
	}
}

// freePort returns a loopback address nothing listens on.
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestSecretsSyncController(t *testing.T) {
	f := newSecretsFixture(t, "ctl", "      refresh: 2s\n")
	v1, v2 := "ctl-one-"+f.run, "ctl-two-"+f.run
	f.put(v1)
	svc := f.service("w", "--label", "swarmguard.secrets="+f.name, "swarmguard-testapp:lab", "print", "/run/secrets/"+f.name)
	cfg, _ := os.ReadFile(f.config)
	listen, stop := f.controller(cfg)
	defer stop()

	// The controller adds v1 by itself, then follows a change in Vault on the mapping's refresh.
	f.prints(svc, "/run/secrets/"+f.name, v1)
	f.put(v2)
	f.prints(svc, "/run/secrets/"+f.name, v2)
	n2 := f.versionNamed("2")
	if refs := f.serviceSecrets(svc); len(refs) != 1 || !strings.HasPrefix(refs[0], n2+">") {
		t.Errorf("service refs = %v; want %s", refs, n2)
	}
	var metrics string
	eventually(t, 30*time.Second, "metrics of the mapping at vault version 2", func() bool {
		b, err := httpGet("http://" + listen + "/metrics")
		if err != nil {
			return false
		}
		metrics = b
		return strings.Contains(metrics, `swarmguard_secret_vault_version{secret="`+f.name+`"} 2`)
	})
	for _, m := range []string{`swarmguard_secret_sync_total{result="changed",secret="` + f.name + `"}`,
		`swarmguard_secret_last_success_timestamp_seconds{secret="` + f.name + `"}`} {
		if !strings.Contains(metrics, m) {
			t.Errorf("metrics have no %s", m)
		}
	}
	f.outputs = append(f.outputs, metrics)
	st := f.secretsStatus(listen, "ok", func(s secretsync.SecretState) bool { return s.VaultVersion == 2 })
	if st.Current != n2 || st.LastSuccess.IsZero() || !st.FailingSince.IsZero() {
		t.Errorf("/status/secrets = %+v; want current %s, a last success, not failing", st, n2)
	}

	// Vault's value loses the mapped key: the mapping fails, says why and since when; the service keeps v2.
	vaultPut(t, f.env, f.path, map[string]string{"user": "app"})
	failedAt := time.Now()
	st = f.secretsStatus(listen, "error", nil)
	// /status/secrets serves the cause class only (the detail, naming the key, is in the log).
	if st.FailingSince.IsZero() || st.FailingSince.Before(failedAt.Add(-time.Second)) || st.Error != operator.CauseVaultNotFound || st.Current != n2 {
		t.Errorf("/status/secrets after the key went missing = %+v; want error %q since about %s, current still %s", st, operator.CauseVaultNotFound, failedAt.Format(time.RFC3339), n2)
	}
	f.prints(svc, "/run/secrets/"+f.name, v2)
	stop()
	if !strings.Contains(f.outputs[len(f.outputs)-1], `"msg":"pointed service at new secret version"`) {
		t.Errorf("controller logs do not tell of the rollout:\n%s", f.outputs[len(f.outputs)-1])
	}

	// A controller that cannot reach Vault at all: every mapping says so, since its first pass, and no
	// Docker object changes.
	down := regexp.MustCompile(`(?m)^  address: .*$`).ReplaceAll(cfg, []byte("  address: http://"+freePort(t)))
	before := f.secretNames()
	listen, stop = f.controller(down)
	defer stop()
	st = f.secretsStatus(listen, "error", nil)
	if st.FailingSince.IsZero() || st.Error != operator.CauseVaultUnreachable {
		t.Errorf("/status/secrets with Vault unreachable = %+v; want error %q, with failing_since", st, operator.CauseVaultUnreachable)
	}
	eventually(t, 30*time.Second, "the failing-since metric", func() bool {
		m, err := httpGet("http://" + listen + "/metrics")
		return err == nil && strings.Contains(m, `swarmguard_secret_failing_since_timestamp_seconds{secret="`+f.name+`"}`)
	})
	stop()
	if after := f.secretNames(); !slices.Equal(before, after) {
		t.Errorf("secrets changed while Vault was unreachable: %v, then %v", before, after)
	}
}

// controller starts `swarmguard run` with this config (a listen address of its own added) and returns that
// address and a stop function (SIGINT, wait, keep the output for the value scan; safe to call twice).
func (f *secretsFixture) controller(cfg []byte) (string, func()) {
	t := f.t
	listen := freePort(t)
	file := filepath.Join(f.dir, "controller-"+strings.ReplaceAll(listen, ":", "-")+".yaml")
	if err := os.WriteFile(file, append([]byte("listen: "+listen+"\n"), cfg...), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cmd := exec.CommandContext(ctx, swarmguardBin(t), "run", "--config", file, "--log-level", "debug")
	cmd.Env = baseEnv(f.env)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	return listen, func() {
		if !stopped {
			stopped = true
			cancel()
			_ = cmd.Wait()
			f.outputs = append(f.outputs, out.String(), errb.String())
		}
	}
}

// secretsStatus waits for the controller's /status/secrets to show the fixture's mapping in state (and
// matching ok, when given) while this replica holds the lease, and returns it.
func (f *secretsFixture) secretsStatus(listen, state string, ok func(secretsync.SecretState) bool) secretsync.SecretState {
	var got secretsync.SecretState
	var last string
	eventually(f.t, 60*time.Second, "mapping "+f.name+" "+state+" in /status/secrets", func() bool {
		b, err := httpGet("http://" + listen + "/status/secrets")
		last = b
		var st secretsync.SecretsStatus
		if err != nil || json.Unmarshal([]byte(b), &st) != nil || st.Role != operator.RoleHolder {
			return false
		}
		for _, s := range st.Secrets {
			if s.Name == f.name && s.State == state && (ok == nil || ok(s)) {
				got = s
				return true
			}
		}
		return false
	})
	f.mu.Lock()
	f.outputs = append(f.outputs, last)
	f.mu.Unlock()
	f.t.Logf("/status/secrets: %s %s, vault version %d, current %s, failing since %s, error %q", got.Name, got.State, got.VaultVersion, got.Current,
		got.FailingSince.Format(time.RFC3339), got.Error)
	return got
}

// secretNames lists the fixture's Docker secrets (all its versions).
func (f *secretsFixture) secretNames() []string {
	out := mustDocker(f.t, f.env, "", "secret", "ls", "--format", "{{.Name}}", "--filter", "name="+f.name)
	names := strings.Fields(out)
	slices.Sort(names)
	return names
}

// TestSecretsSyncLabSteadyPass times a steady-state pass (nothing changed) over 200 mappings and 50
// services on the lab's real engine and Vault: the benchmark on real hardware.
func TestSecretsSyncLabSteadyPass(t *testing.T) {
	const nMappings, nServices = 200, 50
	f := newSecretsFixture(t, "bench", "")
	var sb strings.Builder
	sb.WriteString("vault:\n  address: " + f.env["VAULT_ADDR"] + "\n  auth: {method: token}\n")
	sb.WriteString("secrets:\n  hmac_key_file: " + filepath.Join(f.dir, "hmac.key") + "\n  rollout_timeout: 60s\n  mappings:\n")
	for i := range nMappings {
		p := fmt.Sprintf("apps/it-%s/bench%03d", f.run, i)
		v := fmt.Sprintf("bench-%s-%03d", f.run, i)
		f.values = append(f.values, v)
		vaultPut(t, f.env, p, map[string]string{"password": v})
		fmt.Fprintf(&sb, "    - {name: b%03d_%s, from: {path: secret/%s, key: password}, keep_versions: 1}\n", i, f.run, p)
	}
	_ = os.WriteFile(f.config, []byte(sb.String()), 0o600)
	t.Cleanup(func() {
		ids, _ := docker(t, f.env, "", "secret", "ls", "-q", "--filter", "label=swarmguard.source")
		var mine []string
		for _, id := range strings.Fields(ids) {
			if n, _ := docker(t, f.env, "", "secret", "inspect", "--format", "{{.Spec.Name}}", id); strings.Contains(n, "_"+f.run+"-") {
				mine = append(mine, id)
			}
		}
		if len(mine) > 0 {
			_, _ = docker(t, f.env, "", append([]string{"secret", "rm"}, mine...)...)
		}
	})
	// First pass creates the 200 secrets; services then use them (4 each, spread over all mappings).
	f.mustSG("rotate", "secret", "--all")
	for i := range nServices {
		var args []string
		for j := range 4 {
			k := (i*4 + j) % nMappings
			args = append(args, "--label", fmt.Sprintf("swarmguard.secrets.b%03d_%s.target=s%d", k, f.run, j))
		}
		names := make([]string, 4)
		for j := range 4 {
			names[j] = fmt.Sprintf("b%03d_%s", (i*4+j)%nMappings, f.run)
		}
		args = append(args, "--label", "swarmguard.secrets="+strings.Join(names, ","), "--replicas", "0", "swarmguard-testapp:lab")
		f.service(fmt.Sprintf("b%02d", i), args...)
	}
	// Adds the secrets to the services (0 replicas: nothing to roll, the spec alone).
	f.mustSG("rotate", "secret", "--all")
	start := time.Now()
	r := f.mustSG("rotate", "secret", "--all", "--format", "json")
	wall := time.Since(start)
	if n := strings.Count(r.Stdout, `"outcome": "unchanged"`); n != nMappings {
		t.Fatalf("steady pass: %d of %d mappings unchanged", n, nMappings)
	}
	t.Logf("steady-state pass on the lab: %d mappings, %d services: %s wall time (one process: start, vault login, 3 engine lists, %d vault reads)",
		nMappings, nServices, wall.Round(time.Millisecond), nMappings)
}

// Three mappings changed at once over two services that use all three: one pass updates each service once,
// with all three changes (its previous spec is the one before the pass, all old versions), and leaves the
// service's own secret whose name only looks like a version (<mapping>-20240101, not labelled) alone.
func TestSecretsSyncOneUpdatePerServiceOnTheLab(t *testing.T) {
	f := newSecretsFixture(t, "one", "")
	names := []string{f.name, f.name + "_b", f.name + "_c"}
	var sb strings.Builder
	sb.WriteString("vault:\n  address: " + f.env["VAULT_ADDR"] + "\n  auth: {method: token}\n")
	sb.WriteString("secrets:\n  hmac_key_file: " + filepath.Join(f.dir, "hmac.key") + "\n  rollout_timeout: 60s\n  mappings:\n")
	put := func(gen string) {
		for i, n := range names {
			v := fmt.Sprintf("%s-%s-%d", gen, f.run, i)
			f.values = append(f.values, v)
			vaultPut(t, f.env, f.path+"/"+strconv.Itoa(i), map[string]string{"password": v})
			if gen == "one" {
				fmt.Fprintf(&sb, "    - {name: %s, from: {path: secret/%s/%d, key: password}, keep_versions: 1}\n", n, f.path, i)
			}
		}
	}
	put("one")
	if err := os.WriteFile(f.config, []byte(sb.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	own := f.name + "-20240101"
	ownFile := filepath.Join(f.dir, "own")
	if err := os.WriteFile(ownFile, []byte("own-value-"+f.run), 0o600); err != nil {
		t.Fatal(err)
	}
	mustDocker(t, f.env, "", "secret", "create", own, ownFile)
	f.values = append(f.values, "own-value-"+f.run)
	t.Cleanup(func() {
		// before the fixture's clean-up: the services, then the other mappings' secrets and ours
		svcs, _ := docker(t, f.env, "", "service", "ls", "-q", "--filter", "label=sgsec-run="+f.run)
		for _, s := range strings.Fields(svcs) {
			_, _ = docker(t, f.env, "", "service", "rm", s)
		}
		poll(60*time.Second, func() bool {
			var ids []string
			for _, n := range names[1:] {
				out, _ := docker(t, f.env, "", "secret", "ls", "-q", "--filter", "label=swarmguard.secret="+n)
				ids = append(ids, strings.Fields(out)...)
			}
			if len(ids) == 0 {
				return true
			}
			_, err := docker(t, f.env, "", append([]string{"secret", "rm"}, ids...)...)
			return err == nil
		})
		_, _ = docker(t, f.env, "", "secret", "rm", own)
	})
	f.mustSG("rotate", "secret", "--all")
	current := func() []string {
		out := mustDocker(t, f.env, "", "secret", "ls", "--filter", "label=swarmguard.managed=true", "--format", "{{.Name}}")
		var got []string
		for _, n := range names {
			for _, s := range strings.Fields(out) {
				if strings.HasPrefix(s, n+"-") && len(s) == len(n)+9 {
					got = append(got, s)
				}
			}
		}
		return got
	}
	old := current()
	if len(old) != 3 {
		t.Fatalf("after the first sync the versions are %v; want one per mapping", old)
	}
	var svcs []string
	for _, s := range []string{"u1", "u2"} {
		args := []string{"--replicas", "0"}
		for i, n := range old {
			args = append(args, "--secret", fmt.Sprintf("source=%s,target=m%d", n, i))
		}
		args = append(args, "--secret", "source="+own+",target=own", "swarmguard-testapp:lab")
		svcs = append(svcs, f.service(s, args...))
	}
	put("two")
	r := f.mustSG("rotate", "secret", "--all", "--format", "json")
	if n := strings.Count(r.Stdout, `"outcome": "changed"`); n != 3 {
		t.Fatalf("rotate changed %d mappings; want 3:\n%s", n, r.Stdout)
	}
	now := current()
	var fresh []string
	for _, n := range now {
		if !slices.Contains(old, n) {
			fresh = append(fresh, n)
		}
	}
	if len(fresh) != 3 {
		t.Fatalf("new versions %v (all %v); want one per mapping", fresh, now)
	}
	for _, svc := range svcs {
		spec := mustDocker(t, f.env, "", "service", "inspect", "--format", `{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}`, svc)
		prev := mustDocker(t, f.env, "", "service", "inspect", "--format", `{{range .PreviousSpec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}`, svc)
		if got, want := sortedFields(spec), sortedFields(strings.Join(append(slices.Clone(fresh), own), " ")); !slices.Equal(got, want) {
			t.Errorf("service %s uses %v; want the new versions and its own %s: %v", svc, got, own, want)
		}
		if got, want := sortedFields(prev), sortedFields(strings.Join(append(slices.Clone(old), own), " ")); !slices.Equal(got, want) {
			t.Errorf("service %s's previous spec uses %v; want all old versions %v (one update with all three changes)", svc, got, want)
		}
	}
}

func sortedFields(s string) []string {
	f := strings.Fields(s)
	slices.Sort(f)
	return f
}
