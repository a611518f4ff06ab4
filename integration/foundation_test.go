//go:build integration

package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"

	"github.com/swarmguard/swarmguard/swarm"
)

// TestFoundationStatus: status --format json on the lab lists every node with its role, exactly one leader,
// the CA's not_after, the node-certificate expiry and the autolock state.
func TestFoundationStatus(t *testing.T) {
	env := labEnv(t)
	r := runSG(t, env, nil, "status", "--format", "json")
	if r.Code != 0 {
		t.Fatalf("status: exit %d\n%s", r.Code, r.Stderr)
	}
	var st struct {
		Swarm struct {
			ID        string    `json:"id"`
			CreatedAt time.Time `json:"created_at"`
		} `json:"swarm"`
		Self struct {
			NodeID string `json:"node_id"`
			Role   string `json:"role"`
		} `json:"self"`
		Nodes []struct {
			ID, Hostname, Role, State, Availability, Addr string
			Leader                                        bool
			EngineVersion                                 string `json:"engine_version"`
		} `json:"nodes"`
		CA struct {
			NotAfter time.Time `json:"not_after"`
			Subject  string    `json:"subject"`
		} `json:"ca"`
		NodeCertExpiry *string `json:"node_cert_expiry"`
		Autolock       *bool   `json:"autolock"`
		Ledger         []any   `json:"ledger"`
		Lease          *struct {
			Name string `json:"name"`
		} `json:"lease"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, r.Stdout)
	}
	nodes := len(strings.Fields(mustDocker(t, env, "", "node", "ls", "-q")))
	leaders, managers := 0, 0
	for _, n := range st.Nodes {
		if n.Leader {
			leaders++
		}
		if n.Role == "manager" {
			managers++
		}
		if n.ID == "" || n.Hostname == "" || n.State == "" || n.EngineVersion == "" || n.Addr == "" {
			t.Errorf("node %+v lacks a field", n)
		}
	}
	if len(st.Nodes) != nodes || leaders != 1 || managers < 1 {
		t.Errorf("status: %d nodes (docker node ls: %d), %d leaders (want 1), %d managers", len(st.Nodes), nodes, leaders, managers)
	}
	if st.Swarm.ID == "" || st.Swarm.CreatedAt.IsZero() || st.Self.Role != "manager" || st.Self.NodeID == "" {
		t.Errorf("swarm/self = %+v %+v", st.Swarm, st.Self)
	}
	// The subject is swarm-ca unless an earlier test handed in a CA of its own (rotate ca --cert).
	if st.CA.NotAfter.Before(time.Now()) || st.CA.Subject == "" {
		t.Errorf("ca = %+v; want a valid root CA with a subject", st.CA)
	}
	want := mustDocker(t, env, "", "info", "--format", "{{.Swarm.Cluster.ID}}")
	if st.Swarm.ID != want {
		t.Errorf("swarm.id = %q; docker info says %q", st.Swarm.ID, want)
	}
	if st.NodeCertExpiry == nil || *st.NodeCertExpiry == "" || st.Autolock == nil || st.Ledger == nil || st.Lease == nil || st.Lease.Name != "swarmguard-lease" {
		t.Errorf("node_cert_expiry %v, autolock %v, ledger %v, lease %v: want all present", st.NodeCertExpiry, st.Autolock, st.Ledger, st.Lease)
	}
	tbl := runSG(t, env, nil, "status")
	if tbl.Code != 0 || !strings.Contains(tbl.Stdout, "leader") || !strings.Contains(tbl.Stdout, st.Swarm.ID) {
		t.Errorf("status (table): exit %d\n%s", tbl.Code, tbl.Stdout)
	}
}

// TestFoundationVault: the lab's real Vault takes a KV v2 write and gives it back through vault/api.
func TestFoundationVault(t *testing.T) {
	env := labEnv(t)
	cfg := vault.DefaultConfig()
	cfg.Address = env["VAULT_ADDR"]
	c, err := vault.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(env["VAULT_TOKEN"])
	path := fmt.Sprintf("foundation/%d", time.Now().UnixNano())
	kv := c.KVv2("secret")
	if _, err := kv.Put(t.Context(), path, map[string]any{"answer": "42"}); err != nil {
		t.Fatalf("KV v2 put: %v", err)
	}
	s, err := kv.Get(t.Context(), path)
	if err != nil || s.Data["answer"] != "42" || s.VersionMetadata == nil || s.VersionMetadata.Version != 1 {
		t.Fatalf("KV v2 get = %+v, %v; want answer=42 at version 1", s, err)
	}
}

// TestFoundationLedgerConcurrent: 8 writers, spread over the managers, each append 10 entries of one kind.
func TestFoundationLedgerConcurrent(t *testing.T) {
	env := labEnv(t)
	managers := managerSockets(t, env)
	for _, tc := range []struct {
		bound, want int
	}{{100, 80}, {20, 20}} {
		t.Run(fmt.Sprintf("bound %d", tc.bound), func(t *testing.T) {
			name := fmt.Sprintf("sg-ledger-it-%d", time.Now().UnixNano())
			var wg sync.WaitGroup
			errs := make(chan error, 80)
			for w := 0; w < 8; w++ {
				c, err := swarm.New(swarm.Options{Host: managers[w%len(managers)], APITimeout: 30 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				l := c.NewLedger(name, tc.bound)
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < 10; i++ {
						_, err := l.Append(t.Context(), swarm.Entry{Kind: swarm.KindSecret, At: time.Now(), Actor: fmt.Sprintf("writer-%d", w), Reason: fmt.Sprintf("%d-%d", w, i), Result: swarm.ResultOK})
						if err != nil {
							errs <- err
						}
					}
				}(w)
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("append: %v", err)
			}
			c, _ := swarm.New(swarm.Options{Host: env["DOCKER_HOST"]})
			defer c.Close()
			t.Cleanup(func() {
				if obj, err := c.ConfigByName(t.Context(), name); err == nil {
					_ = c.RemoveConfig(t.Context(), obj.ID)
				}
			})
			entries, err := c.NewLedger(name, tc.bound).Entries(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if len(entries) != tc.want {
				t.Fatalf("ledger holds %d entries; want %d", len(entries), tc.want)
			}
			// The newest tc.want by sequence: sequences are 81-want .. 80, each writer's entries in its own order.
			seen := map[string]bool{}
			for i, e := range entries {
				if e.Seq != uint64(80-tc.want+1+i) {
					t.Errorf("entry %d has seq %d; want %d (the newest %d remain)", i, e.Seq, 80-tc.want+1+i, tc.want)
				}
				if seen[e.Reason] {
					t.Errorf("entry %q recorded twice", e.Reason)
				}
				seen[e.Reason] = true
			}
		})
	}
}

// managerSockets returns the lab sockets of the managers, in node order.
func managerSockets(t *testing.T, env map[string]string) []string {
	t.Helper()
	var out []string
	for _, s := range strings.Fields(env["LAB_NODES"]) {
		if v, err := docker(t, env, s, "info", "--format", "{{.Swarm.ControlAvailable}}"); err == nil && v == "true" {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatal("no manager in the lab")
	}
	return out
}

// workerSocket returns the lab socket of a worker node.
func workerSocket(t *testing.T, env map[string]string) string {
	t.Helper()
	for _, s := range strings.Fields(env["LAB_NODES"]) {
		if v, err := docker(t, env, s, "info", "--format", "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}"); err == nil && v == "active false" {
			return s
		}
	}
	t.Fatal("no worker in the lab")
	return ""
}

// TestFoundationBadInput: each wrong environment or input gets a clear message and its exit code, and
// changes nothing.
func TestFoundationBadInput(t *testing.T) {
	env := labEnv(t)
	t.Run("daemon unreachable", func(t *testing.T) {
		r := runSG(t, env, nil, "status", "--host", "unix:///nonexistent/docker.sock", "--api-timeout", "3s")
		if r.Code != 3 || !strings.Contains(r.Stderr, "docker daemon unreachable") || !strings.Contains(r.Stderr, "is the docker daemon running") {
			t.Errorf("status on a missing socket: exit %d, %q; want 3 with a hint", r.Code, r.Stderr)
		}
	})
	t.Run("worker node", func(t *testing.T) {
		r := runSG(t, env, nil, "status", "--host", workerSocket(t, env))
		if r.Code != 3 || !strings.Contains(r.Stderr, "worker") || !strings.Contains(r.Stderr, "manager") {
			t.Errorf("status on a worker: exit %d, %q; want 3 saying to use a manager", r.Code, r.Stderr)
		}
	})
	t.Run("engine not in a swarm", func(t *testing.T) {
		out := lab(t, env, "node", "add", "bare")
		f := strings.Fields(out)
		if len(f) < 2 {
			t.Fatalf("lab node add bare printed %q; want N SOCKET", out)
		}
		t.Cleanup(func() { lab(t, env, "node", "remove", f[0]) })
		r := runSG(t, env, nil, "status", "--host", "unix://"+strings.TrimPrefix(f[1], "unix://"))
		if r.Code != 3 || !strings.Contains(r.Stderr, "not part of a swarm") || !strings.Contains(r.Stderr, "docker swarm init") {
			t.Errorf("status on a bare engine: exit %d, %q; want 3 with what to do", r.Code, r.Stderr)
		}
	})
	t.Run("corrupt ledger labels", func(t *testing.T) {
		name := fmt.Sprintf("sg-corrupt-%d", time.Now().UnixNano())
		mustDocker(t, env, "", "config", "create", "--label", "swarmguard.schema=1", "--label", "swarmguard.seq=1",
			"--label", "swarmguard.entry.000000000001={broken", name, "/etc/hostname")
		t.Cleanup(func() { _, _ = docker(t, env, "", "config", "rm", name) })
		before := mustDocker(t, env, "", "config", "inspect", "--format", "{{.Version.Index}}", name)
		r := runSG(t, env, []string{"SWARMGUARD_LEDGER_NAME=" + name}, "status", "--format", "json")
		if r.Code != 1 || !strings.Contains(r.Stderr, "swarmguard.entry.000000000001") || !strings.Contains(r.Stderr, "will not overwrite") {
			t.Errorf("status on a corrupt ledger: exit %d, %q; want 1 naming the label", r.Code, r.Stderr)
		}
		if !strings.Contains(r.Stdout, `"ledger_error"`) {
			t.Errorf("status JSON does not report the ledger error:\n%s", r.Stdout)
		}
		if after := mustDocker(t, env, "", "config", "inspect", "--format", "{{.Version.Index}}", name); after != before {
			t.Errorf("corrupt ledger rewritten: version %s -> %s", before, after)
		}
	})
	t.Run("malformed config", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "bad.yaml")
		if err := os.WriteFile(f, []byte("tokens: [\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		r := runSG(t, env, nil, "status", "--config", f)
		if r.Code != 2 || !strings.Contains(r.Stderr, f) {
			t.Errorf("status with a malformed config: exit %d, %q; want 2 naming the file", r.Code, r.Stderr)
		}
	})
	t.Run("unreadable config", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "secret.yaml")
		if err := os.WriteFile(f, []byte("listen: ':1'\n"), 0o000); err != nil {
			t.Fatal(err)
		}
		// Root reads any file; a directory is unreadable as a file for everyone.
		r := runSG(t, env, nil, "status", "--config", filepath.Dir(f))
		if r.Code != 2 || !strings.Contains(r.Stderr, "config file") {
			t.Errorf("status with an unreadable config: exit %d, %q; want 2", r.Code, r.Stderr)
		}
	})
	t.Run("unknown flag", func(t *testing.T) {
		r := runSG(t, env, nil, "status", "--colour")
		if r.Code != 2 || !strings.Contains(r.Stderr, "unknown flag: --colour") {
			t.Errorf("status --colour: exit %d, %q; want 2", r.Code, r.Stderr)
		}
	})
}
