package swarm

import (
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/network"
	swarmtypes "github.com/moby/moby/api/types/swarm"
)

// netEngine fakes the Engine API's network and service endpoints over HTTP, so the adapter is tested through
// the real SDK.
type netEngine struct {
	mu       sync.Mutex
	networks []network.Summary
	service  swarmtypes.Service
	conflict int // answer this many service updates with "update out of sequence"
	updates  []swarmtypes.ServiceSpec
	versions []string
	lists    int                        // GET /networks answered
	inspects map[string]network.Inspect // GET /networks/{id} answers (non-verbose); "boom" answers 500
}

func newNetEngine(t *testing.T) (*netEngine, *Client) {
	t.Helper()
	f := &netEngine{}
	return f, serveFake(t, f)
}

func (f *netEngine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	path := apiPath(w, r)
	switch {
	case path == "/_ping":
		_, _ = w.Write([]byte("OK"))
	case r.Method == http.MethodGet && path == "/networks":
		f.lists++
		_ = json.NewEncoder(w).Encode(f.networks)
	case r.Method == http.MethodGet && path == "/networks/boom":
		http.Error(w, `{"message":"rpc error: code = DeadlineExceeded desc = context deadline exceeded"}`, http.StatusInternalServerError)
	case r.Method == http.MethodGet && strings.HasPrefix(path, "/networks/") && f.inspects[strings.TrimPrefix(path, "/networks/")].ID != "":
		_ = json.NewEncoder(w).Encode(f.inspects[strings.TrimPrefix(path, "/networks/")])
	case r.Method == http.MethodGet && path == "/services":
		_ = json.NewEncoder(w).Encode([]swarmtypes.Service{f.service})
	case r.Method == http.MethodGet && path == "/services/"+f.service.ID:
		_ = json.NewEncoder(w).Encode(f.service)
	case r.Method == http.MethodPost && path == "/services/"+f.service.ID+"/update":
		f.versions = append(f.versions, r.URL.Query().Get("version"))
		if f.conflict > 0 {
			f.conflict--
			f.service.Version.Index++ // someone else wrote
			http.Error(w, `{"message":"rpc error: code = Unknown desc = update out of sequence"}`, http.StatusInternalServerError)
			return
		}
		var spec swarmtypes.ServiceSpec
		_ = json.NewDecoder(r.Body).Decode(&spec)
		f.updates = append(f.updates, spec)
		f.service.Spec = spec
		f.service.Version.Index++
		_ = json.NewEncoder(w).Encode(swarmtypes.ServiceUpdateResponse{})
	case r.Method == http.MethodGet && path == "/tasks":
		_ = json.NewEncoder(w).Encode([]swarmtypes.Task{{ID: "t1", NodeID: "node-b"}, {ID: "t2", NodeID: "node-c"}})
	case r.Method == http.MethodGet && path == "/networks/app" && r.URL.Query().Get("verbose") == "true":
		// as engines 29 print it: Peers (gossip addresses), and service tasks only (no ingress sandboxes)
		_, _ = w.Write([]byte(`{"Name":"app","Id":"app","Peers":[{"Name":"b-1f2e","IP":"10.0.0.12"}],` +
			`"Services":{"web":{"VIP":"10.2.0.2","Ports":[],"LocalLBIndex":3,"Tasks":[` +
			`{"Name":"web.1.t1","EndpointID":"e3","EndpointIP":"10.2.0.3","Info":{"Host IP":"10.1.0.12"}},` +
			`{"Name":"web.2.t9","EndpointID":"e4","EndpointIP":"10.2.0.4","Info":{"Host IP":"10.1.0.14"}}]}}}`))
	case r.Method == http.MethodGet && path == "/networks/gone":
		http.Error(w, `{"message":"network gone not found"}`, http.StatusNotFound)
	case r.Method == http.MethodGet && path == "/networks/ing" && r.URL.Query().Get("verbose") == "true":
		// as engine 20.10 prints it: an empty VIP is "<nil>", which the SDK's typed decoding rejects
		_, _ = w.Write([]byte(`{"Name":"ingress","Id":"ing","Ingress":true,"Peers":[{"Name":"a","IP":"10.0.0.11"}],` +
			`"Services":{"":{"VIP":"<nil>","Ports":[],"LocalLBIndex":0,"Tasks":[` +
			`{"Name":"ingress-endpoint","EndpointID":"e2","EndpointIP":"10.0.0.3","Info":{"Host IP":"10.1.0.12"}},` +
			`{"Name":"ingress-endpoint","EndpointID":"e1","EndpointIP":"10.0.0.2","Info":{"Host IP":"10.1.0.11"}}]}}}`))
	case r.Method == http.MethodDelete && strings.HasPrefix(path, "/networks/"):
		http.Error(w, `{"message":"rpc error: code = FailedPrecondition desc = network x is in use by task y"}`, http.StatusInternalServerError)
	default:
		http.Error(w, `{"message":"not found"}`, http.StatusNotFound)
	}
}

func TestNetworks(t *testing.T) {
	f, c := newNetEngine(t)
	f.networks = []network.Summary{
		{Network: network.Network{ID: "b", Name: "plain", Driver: "overlay", Scope: "swarm", Attachable: true}},
		{Network: network.Network{ID: "a", Name: "enc", Driver: "overlay", Scope: "swarm", Options: map[string]string{"encrypted": ""}}},
		{Network: network.Network{ID: "c", Name: "off", Driver: "overlay", Scope: "swarm", Options: map[string]string{"encrypted": "false"}}},
		{Network: network.Network{ID: "d", Name: "local-overlay", Driver: "overlay", Scope: "local"}},
	}
	nets, err := c.Networks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, n := range nets {
		got = append(got, n.Name+"="+strconv.FormatBool(n.Encrypted))
	}
	if want := []string{"enc=true", "off=false", "plain=false"}; !slices.Equal(got, want) {
		t.Errorf("Networks() = %v; want %v", got, want)
	}
	if err := c.RemoveNetwork(t.Context(), "b"); !errors.Is(err, ErrInUse) {
		t.Errorf("RemoveNetwork(busy) = %v; want ErrInUse", err)
	}
}

// The engine answers GET /networks without the swarm's networks when its manager cannot list them (it ignores
// that error); a network a service is attached to then is missing, and the list must fail, not pass it as absent.
func TestNetworksPartialList(t *testing.T) {
	attached := func(targets ...string) swarmtypes.Service {
		s := swarmtypes.Service{ID: "svc1", Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "web"}}}
		for _, id := range targets {
			s.Spec.TaskTemplate.Networks = append(s.Spec.TaskTemplate.Networks, swarmtypes.NetworkAttachmentConfig{Target: id})
		}
		return s
	}
	listed := []network.Summary{{Network: network.Network{ID: "n1enc", Name: "enc", Driver: "overlay", Scope: "swarm"}}}
	for _, tc := range []struct {
		name     string
		service  swarmtypes.Service
		inspects map[string]network.Inspect
		wantErr  error // nil: the list is whole
		wantMsg  string
	}{
		{name: "every attached network listed", service: attached("n1enc")},
		{name: "attached by name", service: attached("enc")},
		{name: "a swarm-scope macvlan is not an overlay network", service: attached("n1enc", "mac"),
			inspects: map[string]network.Inspect{"mac": {Network: network.Network{ID: "mac", Name: "mac", Driver: "macvlan", Scope: "swarm"}}}},
		{name: "an overlay network left out", service: attached("n1enc", "plain"),
			inspects: map[string]network.Inspect{"plain": {Network: network.Network{ID: "plain", Name: "plain", Driver: "overlay", Scope: "swarm"}}},
			wantErr:  ErrPartialList, wantMsg: "service web is attached to overlay network plain"},
		{name: "a network the engine cannot find either", service: attached("gone1"),
			wantErr: ErrPartialList, wantMsg: "overlay network gone1"},
		{name: "a failed inspect is a failed read", service: attached("boom"),
			wantMsg: "inspecting network boom (service web is attached to it)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newNetEngine(t)
			f.networks, f.service, f.inspects = listed, tc.service, tc.inspects
			nets, err := c.Networks(t.Context())
			if tc.wantErr == nil && tc.wantMsg == "" {
				if err != nil || len(nets) != 1 || f.lists != 1 {
					t.Fatalf("Networks() = %v, %v after %d lists; want [enc] after 1", nets, err, f.lists)
				}
				return
			}
			if err == nil || nets != nil {
				t.Fatalf("Networks() = %v, nil; want an error", nets)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Errorf("Networks() error %q does not say %q", err, tc.wantMsg)
			}
			if tc.wantErr != nil && (!errors.Is(err, tc.wantErr) || f.lists != 2) {
				t.Errorf("Networks() = %v after %d lists; want %v after reading the list twice", err, f.lists, tc.wantErr)
			}
			if tc.wantErr == nil && errors.Is(err, ErrPartialList) {
				t.Errorf("Networks() = %v; a failed inspect is not a partial list", err)
			}
		})
	}
}

func TestAttachDetachKeepsAliasesWithCAS(t *testing.T) {
	f, c := newNetEngine(t)
	f.service = swarmtypes.Service{ID: "svc1", Meta: swarmtypes.Meta{Version: swarmtypes.Version{Index: 10}},
		Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "api"}, TaskTemplate: swarmtypes.TaskSpec{
			ContainerSpec: &swarmtypes.ContainerSpec{Image: "app:1", Env: []string{"DB_PASSWORD=hunter2", "MODE=x"}},
			Networks:      []swarmtypes.NetworkAttachmentConfig{{Target: "old", Aliases: []string{"api", "db-client"}}, {Target: "keep"}}}}}
	f.conflict = 1
	changed, err := c.AttachNetwork(t.Context(), "svc1", "twin", []string{"api", "db-client"})
	if err != nil || !changed {
		t.Fatalf("AttachNetwork = %v, %v", changed, err)
	}
	if want := []string{"10", "11"}; !slices.Equal(f.versions, want) {
		t.Errorf("update versions = %v; want %v (retry with the re-read version)", f.versions, want)
	}
	changed, err = c.AttachNetwork(t.Context(), "svc1", "twin", nil)
	if err != nil || changed {
		t.Errorf("AttachNetwork again = %v, %v; want no change", changed, err)
	}
	if _, err := c.DetachNetwork(t.Context(), "svc1", Network{ID: "old", Name: "old-name"}); err != nil {
		t.Fatal(err)
	}
	got := f.service.Spec.TaskTemplate.Networks
	if len(got) != 2 || got[0].Target != "keep" || got[1].Target != "twin" || !slices.Equal(got[1].Aliases, []string{"api", "db-client"}) {
		t.Errorf("networks after attach+detach = %+v", got)
	}
	if f.service.Spec.TaskTemplate.ContainerSpec.Image != "app:1" {
		t.Errorf("image changed to %q: the update must not resolve or pin it", f.service.Spec.TaskTemplate.ContainerSpec.Image)
	}
	svcs, err := c.Services(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(svcs[0].EnvNames, []string{"DB_PASSWORD", "MODE"}) {
		t.Errorf("EnvNames = %v", svcs[0].EnvNames)
	}
	if strings.Contains(strings.Join(svcs[0].EnvNames, ","), "hunter2") {
		t.Errorf("an environment value left the adapter")
	}
}

// TestDataPathEndpoints: every swarm overlay network's tunnel endpoints, each service task's attributed to its
// node through the task list; a node's ingress sandbox (20.10) and a task no longer listed stay unattributed;
// a network removed between list and inspect is skipped, not an error; local-scope overlays are not read.
func TestDataPathEndpoints(t *testing.T) {
	f, c := newNetEngine(t)
	f.networks = []network.Summary{
		{Network: network.Network{ID: "ing", Name: "ingress", Driver: "overlay", Scope: "swarm"}},
		{Network: network.Network{ID: "app", Name: "app", Driver: "overlay", Scope: "swarm"}},
		{Network: network.Network{ID: "gone", Name: "gone", Driver: "overlay", Scope: "swarm"}},
		{Network: network.Network{ID: "loc", Name: "local-overlay", Driver: "overlay", Scope: "local"}},
	}
	eps, err := c.DataPathEndpoints(t.Context())
	if err != nil {
		t.Fatalf("DataPathEndpoints = %v", err)
	}
	var got []string
	for _, e := range eps {
		got = append(got, e.Network+"/"+e.Name+"@"+e.HostIP+"="+e.NodeID)
	}
	want := []string{"app/web.1.t1@10.1.0.12=node-b", "app/web.2.t9@10.1.0.14=",
		"ingress/ingress-endpoint@10.1.0.11=", "ingress/ingress-endpoint@10.1.0.12="}
	if !slices.Equal(got, want) {
		t.Errorf("DataPathEndpoints = %v; want %v", got, want)
	}
}

func TestNetworkTunnelEndpoints(t *testing.T) {
	_, c := newNetEngine(t)
	eps, err := c.NetworkTunnelEndpoints(t.Context(), "ing")
	if err != nil {
		t.Fatalf("NetworkTunnelEndpoints = %v", err)
	}
	if len(eps) != 2 || eps[0].HostIP != "10.1.0.11" || eps[1].HostIP != "10.1.0.12" || eps[0].Name != "ingress-endpoint" {
		t.Errorf("NetworkTunnelEndpoints = %+v", eps)
	}
	if _, err := c.NetworkTunnelEndpoints(t.Context(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("NetworkTunnelEndpoints(missing) = %v; want ErrNotFound", err)
	}
}
