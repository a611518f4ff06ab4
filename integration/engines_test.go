//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// apiAtLeast says whether an Engine API version ("1.56") is at least major.minor.
func apiAtLeast(v string, major, minor int) bool {
	a, b, _ := strings.Cut(v, ".")
	ma, err1 := strconv.Atoi(a)
	mi, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}

// engineGetJSON reads an Engine API path from a lab node (host: a socket, or "" for DOCKER_HOST) and decodes
// its JSON, for fields the docker CLI on the host may not know.
func engineGetJSON(t *testing.T, env map[string]string, host, path string, v any) {
	t.Helper()
	if host == "" {
		host = env["DOCKER_HOST"]
	}
	sock := strings.TrimPrefix(host, "unix://")
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		},
	}}
	resp, err := hc.Get("http://docker" + path)
	if err != nil {
		t.Fatalf("GET %s on %s: %v", path, host, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s on %s: %s\n%s", path, host, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s on %s: %v\n%s", path, host, err, b)
	}
}

// labNodeEngines maps each lab node's socket to the engine the lab started on it (LAB_NODE_ENGINES: current
// or 20.10, in the order of LAB_NODES).
func labNodeEngines(t *testing.T, env map[string]string) map[string]string {
	t.Helper()
	socks, engines := strings.Fields(env["LAB_NODES"]), strings.Fields(env["LAB_NODE_ENGINES"])
	if len(socks) != len(engines) {
		t.Fatalf("lab env: %d nodes but %d engines (LAB_NODE_ENGINES=%q); restart the lab with this checkout's lab script",
			len(socks), len(engines), env["LAB_NODE_ENGINES"])
	}
	out := map[string]string{}
	for i, s := range socks {
		out[s] = engines[i]
	}
	return out
}

// TestEnginesMixedLab: whatever engines the lab's nodes run (all current, all 20.10, or, as in the middle of a
// rolling upgrade, the managers on the current engine and the worker on 20.10), swarmguard shows each node's
// version as that node's own engine reports it; engine.versions-consistent passes exactly when they all agree
// and otherwise names the nodes of each version; the certificate inventory covers every node; and a secret
// rollout reaches a task on the worker. `make test` runs it on the current lab, the 20.10 lab and a mixed
// one (MIXED_TESTS).
func TestEnginesMixedLab(t *testing.T) {
	env := labEnv(t)
	engines := labNodeEngines(t, env)
	own := map[string]string{}         // hostname -> the version its own engine reports
	byVersion := map[string][]string{} // version -> hostnames
	engineOf := map[string]string{}    // hostname -> lab engine
	for sock, e := range engines {
		host := mustDocker(t, env, sock, "info", "--format", "{{.Name}}")
		v := mustDocker(t, env, sock, "version", "--format", "{{.Server.Version}}")
		api := mustDocker(t, env, sock, "version", "--format", "{{.Server.APIVersion}}")
		own[host], engineOf[host] = v, e
		byVersion[v] = append(byVersion[v], host)
		switch e {
		case "20.10":
			if !strings.HasPrefix(v, "20.10.") {
				t.Errorf("%s is a 20.10 node of the lab but its engine says %s", host, v)
			}
		case "current":
			if strings.HasPrefix(v, "20.") || !apiAtLeast(api, 1, 47) {
				t.Errorf("%s is a current node of the lab but its engine says %s (API %s)", host, v, api)
			}
		}
		t.Logf("%s: lab engine %s, Docker %s, API %s", host, e, v, api)
	}

	// status: one engine version per node, as the node itself says it.
	r := runSG(t, env, nil, "status", "--format", "json")
	if r.Code != 0 {
		t.Fatalf("status exited %d: %s", r.Code, r.Stderr)
	}
	var st struct {
		Nodes []struct {
			Hostname      string `json:"hostname"`
			EngineVersion string `json:"engine_version"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, r.Stdout)
	}
	if len(st.Nodes) != len(own) {
		t.Errorf("status lists %d nodes; the lab has %d", len(st.Nodes), len(own))
	}
	for _, n := range st.Nodes {
		if own[n.Hostname] != n.EngineVersion {
			t.Errorf("status: %s engine_version %q; its engine says %q", n.Hostname, n.EngineVersion, own[n.Hostname])
		}
	}

	// report: versions-consistent names the nodes of each version when they differ.
	rep, _ := crRun(t, env, "", nil, "--config", crConfig(t, env, ""))
	want := "pass"
	if len(byVersion) > 1 {
		want = "warn"
	}
	c := crWant(t, rep, "engine.versions-consistent", want)
	for v, hosts := range byVersion {
		sort.Strings(hosts)
		found := false
		for _, e := range c.Evidence {
			if e.Subject == "engine "+v {
				found = true
				for _, h := range hosts {
					if !strings.Contains(e.Facts["nodes"], h) {
						t.Errorf("versions-consistent evidence for %s = %q; want node %s", v, e.Facts["nodes"], h)
					}
				}
			}
		}
		if !found {
			t.Errorf("versions-consistent has no evidence for engine %s (nodes %v): %s", v, hosts, c.evidenceJSON())
		}
		if want == "warn" && !strings.Contains(c.Summary, v) {
			t.Errorf("versions-consistent summary %q does not name version %s", c.Summary, v)
		}
	}
	// Every engine the lab runs has the encrypted-overlay fixes: the check reads every release string.
	crWant(t, rep, "engine.overlay-cves", "pass")

	// the certificate inventory covers every node, whatever its engine
	ccfg := certsConfig(t, env, "sgit-engines", "")
	var missing []string
	eventually(t, 60*time.Second, "the certificate inventory to show every node's expiry", func() bool {
		certs := certsRunReport(t, env, ccfg)
		withExpiry := map[string]bool{}
		for _, n := range certs.Nodes {
			withExpiry[n.Hostname] = n.NotAfter != nil
		}
		missing = missing[:0]
		for h := range own {
			if !withExpiry[h] {
				missing = append(missing, h+" (engine "+engineOf[h]+")")
			}
		}
		if len(missing) > 0 {
			t.Logf("not yet: no certificate expiry for %v", missing)
		}
		return len(missing) == 0
	})

	// a secret rollout onto a task pinned to the worker
	worker := workerSocket(t, env)
	wname := mustDocker(t, env, worker, "info", "--format", "{{.Name}}")
	f := newSecretsFixture(t, "eng", "")
	v1, v2 := "eng-one-"+f.run, "eng-two-"+f.run
	f.put(v1)
	svc := f.service("w", "--constraint", "node.hostname=="+wname,
		"--label", "swarmguard.secrets="+f.name, "--label", "swarmguard.secrets."+f.name+".target=pw",
		"swarmguard-testapp:lab", "print", "/run/secrets/pw")
	f.mustSG("rotate", "secret", f.name, "--reason", "engines: first sync")
	f.prints(svc, "/run/secrets/pw", v1)
	f.put(v2)
	f.mustSG("rotate", "secret", f.name, "--reason", "engines: rotation")
	f.prints(svc, "/run/secrets/pw", v2)
	ids := mustDocker(t, env, worker, "ps", "-q", "--filter", "label=com.docker.swarm.service.name="+svc, "--filter", "status=running")
	if strings.TrimSpace(ids) == "" {
		t.Errorf("no running task of %s on the worker %s (engine %s)", svc, wname, engineOf[wname])
	}
}
