package swarm

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	swarmtypes "github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
)

// fakeEngine is a small Docker Engine API over HTTP: enough of /info and /configs to test the adapter
// through the real SDK (the network is faked, not the SDK).
type fakeEngine struct {
	mu       sync.Mutex
	info     system.Info
	configs  map[string]*swarmtypes.Config
	nextID   int
	conflict int // answer this many config updates with "update out of sequence"
	calls    map[string]int
}

func newFakeEngine(t *testing.T) (*fakeEngine, *Client) {
	t.Helper()
	f := &fakeEngine{configs: map[string]*swarmtypes.Config{}, calls: map[string]int{}}
	f.info.Swarm = swarmtypes.Info{NodeID: "node1", LocalNodeState: "active", ControlAvailable: true}
	return f, serveFake(t, f)
}

func (f *fakeEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := apiPath(w, r)
	f.calls[r.Method+" "+path]++
	switch {
	case path == "/_ping":
		_, _ = w.Write([]byte("OK"))
	case path == "/info":
		_ = json.NewEncoder(w).Encode(f.info)
	case r.Method == http.MethodGet && path == "/configs":
		var filters map[string]map[string]bool
		_ = json.Unmarshal([]byte(r.URL.Query().Get("filters")), &filters)
		out := []swarmtypes.Config{}
		for _, c := range f.configs {
			if names := filters["name"]; len(names) > 0 && !names[c.Spec.Name] {
				continue
			}
			out = append(out, *c)
		}
		_ = json.NewEncoder(w).Encode(out)
	case r.Method == http.MethodPost && path == "/configs/create":
		var spec swarmtypes.ConfigSpec
		_ = json.NewDecoder(r.Body).Decode(&spec)
		for _, c := range f.configs {
			if c.Spec.Name == spec.Name {
				http.Error(w, `{"message":"rpc error: code = AlreadyExists desc = config `+spec.Name+` already exists"}`, http.StatusConflict)
				return
			}
		}
		f.nextID++
		id := "cfg" + strconv.Itoa(f.nextID)
		f.configs[id] = &swarmtypes.Config{ID: id, Meta: swarmtypes.Meta{Version: swarmtypes.Version{Index: 1}}, Spec: spec}
		_ = json.NewEncoder(w).Encode(map[string]string{"ID": id})
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/configs/"):
		c, ok := f.configs[strings.TrimPrefix(path, "/configs/")]
		if !ok {
			http.Error(w, `{"message":"config not found"}`, http.StatusNotFound)
			return
		}
		_ = json.NewEncoder(w).Encode(c)
	case r.Method == http.MethodPost && strings.HasSuffix(path, "/update") && strings.HasPrefix(path, "/configs/"):
		c, ok := f.configs[strings.TrimSuffix(strings.TrimPrefix(path, "/configs/"), "/update")]
		if !ok {
			http.Error(w, `{"message":"config not found"}`, http.StatusNotFound)
			return
		}
		v, _ := strconv.ParseUint(r.URL.Query().Get("version"), 10, 64)
		if f.conflict > 0 || v != c.Version.Index {
			if f.conflict > 0 {
				f.conflict--
			}
			http.Error(w, `{"message":"rpc error: code = Unknown desc = update out of sequence"}`, http.StatusInternalServerError)
			return
		}
		var spec swarmtypes.ConfigSpec
		_ = json.NewDecoder(r.Body).Decode(&spec)
		c.Spec = spec
		c.Version.Index++
	default:
		http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
	}
}

// serveFake starts h as a Docker Engine API server for the test and returns a real client pointed at it:
// the network is faked, not the SDK.
func serveFake(t *testing.T, h http.Handler) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Options{Host: "tcp://" + strings.TrimPrefix(srv.URL, "http://"), APITimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apiPath is the request's path without its /v1.NN version prefix; every fake answers the API version 1.41.
func apiPath(w http.ResponseWriter, r *http.Request) string {
	w.Header().Set("Api-Version", "1.41")
	path := r.URL.Path
	if i := strings.Index(path[1:], "/"); strings.HasPrefix(path, "/v1.") && i > 0 {
		path = path[i+1:]
	}
	return path
}
