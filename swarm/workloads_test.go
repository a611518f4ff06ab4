package swarm

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	swarmtypes "github.com/moby/moby/api/types/swarm"
)

func TestAPIAtLeast(t *testing.T) {
	for _, tc := range []struct {
		v, min string
		want   bool
	}{
		{"1.56", "1.44", true}, {"1.44", "1.44", true}, {"1.41", "1.44", false}, {"v1.45", "1.44", true},
		{"2.0", "1.44", true}, {"", "1.44", false}, {"x.y", "1.44", false},
	} {
		if got := APIAtLeast(tc.v, tc.min); got != tc.want {
			t.Errorf("APIAtLeast(%q, %q) = %v; want %v", tc.v, tc.min, got, tc.want)
		}
	}
}

func TestWorkloadFrom(t *testing.T) {
	one := uint64(1)
	s := swarmtypes.Service{ID: "s1", Spec: swarmtypes.ServiceSpec{
		Annotations: swarmtypes.Annotations{Name: "web", Labels: map[string]string{"a": "b"}},
		Mode:        swarmtypes.ServiceMode{Replicated: &swarmtypes.ReplicatedService{Replicas: &one}},
		TaskTemplate: swarmtypes.TaskSpec{
			ContainerSpec: &swarmtypes.ContainerSpec{Image: "nginx:1", User: "101", ReadOnly: true,
				CapabilityAdd: []string{"NET_ADMIN"}, CapabilityDrop: []string{"ALL"}, Sysctls: map[string]string{"net.ipv4.ip_forward": "1"},
				Env:    []string{"PASSWORD=hunter2"},
				Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/var/run/docker.sock", Target: "/var/run/docker.sock", ReadOnly: true}},
				Privileges: &swarmtypes.Privileges{NoNewPrivileges: true, Seccomp: &swarmtypes.SeccompOpts{Mode: swarmtypes.SeccompModeUnconfined},
					AppArmor: &swarmtypes.AppArmorOpts{Mode: swarmtypes.AppArmorModeDefault}}},
			Resources: &swarmtypes.ResourceRequirements{Limits: &swarmtypes.Limit{NanoCPUs: 5e8, MemoryBytes: 64 << 20, Pids: 100}},
			Networks:  []swarmtypes.NetworkAttachmentConfig{{Target: "hostnetid"}},
		},
	}}
	w := workloadFrom(s, map[string]bool{"host": true, "hostnetid": true})
	if !w.Container || w.User != "101" || !w.ReadOnly || w.CapAdd[0] != "NET_ADMIN" || w.CapDrop[0] != "ALL" || !w.HostNetwork ||
		w.MemoryLimit != 64<<20 || w.NanoCPUs != 5e8 || w.PidsLimit != 100 || !w.NoNewPrivileges || w.Seccomp != "unconfined" ||
		w.AppArmor != "default" || len(w.Mounts) != 1 || w.Mounts[0].Type != "bind" || !w.Mounts[0].ReadOnly || w.Replicas == nil {
		t.Errorf("workloadFrom(...) = %+v; want every field read", w)
	}
	if got := workloadFrom(swarmtypes.Service{}, nil); got.Container {
		t.Errorf("workloadFrom(no container spec).Container = true; want false")
	}
}

func TestWorkloadFromNewFields(t *testing.T) {
	three := uint64(3)
	s := swarmtypes.Service{Spec: swarmtypes.ServiceSpec{
		TaskTemplate: swarmtypes.TaskSpec{
			ContainerSpec: &swarmtypes.ContainerSpec{Image: "app:1",
				Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -u admin:hunter2 localhost"}},
				Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/srv", Target: "/srv", BindOptions: &mount.BindOptions{Propagation: mount.PropagationRShared}},
					{Type: mount.TypeVolume, Source: "data", Target: "/data"}}},
			RestartPolicy: &swarmtypes.RestartPolicy{Condition: swarmtypes.RestartPolicyConditionOnFailure, MaxAttempts: &three},
		},
		EndpointSpec: &swarmtypes.EndpointSpec{Ports: []swarmtypes.PortConfig{{Protocol: "tcp", TargetPort: 8080, PublishedPort: 80, PublishMode: swarmtypes.PortConfigPublishModeIngress}}},
	}}
	w := workloadFrom(s, nil)
	if w.Healthcheck != HealthSet || w.RestartCondition != "on-failure" || w.RestartMaxAttempts != 3 ||
		len(w.Mounts) != 2 || w.Mounts[0].Propagation != "rshared" || w.Mounts[1].Propagation != "" ||
		len(w.Ports) != 1 || w.Ports[0] != (WorkloadPort{Protocol: "tcp", Target: 8080, Published: 80, Mode: "ingress"}) {
		t.Errorf("workloadFrom(...) = %+v; want health, restart policy, propagation and ports read", w)
	}
	if strings.Contains(fmt.Sprintf("%+v", w), "hunter2") {
		t.Errorf("workloadFrom(...) = %+v carries the health command", w)
	}
	for _, tc := range []struct {
		test []string
		want string
	}{{nil, HealthInherit}, {[]string{"NONE"}, HealthDisabled}, {[]string{"CMD", "true"}, HealthSet}} {
		s.Spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: tc.test}
		if got := workloadFrom(s, nil).Healthcheck; got != tc.want {
			t.Errorf("workloadFrom(health test %v).Healthcheck = %q; want %q", tc.test, got, tc.want)
		}
	}
	s.Spec.TaskTemplate.RestartPolicy = nil
	if w := workloadFrom(s, nil); w.RestartCondition != "" || w.RestartMaxAttempts != 0 {
		t.Errorf("workloadFrom(no restart policy) = %q/%d; want \"\"/0", w.RestartCondition, w.RestartMaxAttempts)
	}
}

// Engines from Docker 23 store --network host as the swarm-scope host network's ID, which GET /networks
// (the local host network only) does not list: the adapter must inspect it.
func TestWorkloadsHostNetwork(t *testing.T) {
	on := func(targets ...string) swarmtypes.Service {
		s := swarmtypes.Service{ID: "svc1", Spec: swarmtypes.ServiceSpec{Annotations: swarmtypes.Annotations{Name: "web"},
			TaskTemplate: swarmtypes.TaskSpec{ContainerSpec: &swarmtypes.ContainerSpec{Image: "app:1"}}}}
		for _, id := range targets {
			s.Spec.TaskTemplate.Networks = append(s.Spec.TaskTemplate.Networks, swarmtypes.NetworkAttachmentConfig{Target: id})
		}
		return s
	}
	local := []network.Summary{{Network: network.Network{ID: "localhostid", Name: "host", Driver: "host", Scope: "local"}}}
	inspects := map[string]network.Inspect{
		"swhost": {Network: network.Network{ID: "swhost", Name: "host", Driver: "host", Scope: "swarm"}},
		"app":    {Network: network.Network{ID: "app", Name: "app", Driver: "overlay", Scope: "swarm"}},
	}
	for _, tc := range []struct {
		name    string
		service swarmtypes.Service
		want    bool
		wantErr string
	}{
		{name: "swarm-scope host network ID (Docker 23 and later)", service: on("swhost"), want: true},
		{name: "the local host network's ID", service: on("localhostid"), want: true},
		{name: "by name", service: on("host"), want: true},
		{name: "an overlay network", service: on("app"), want: false},
		{name: "no network", service: on(), want: false},
		{name: "a network the engine does not find", service: on("gone"), want: false},
		{name: "a failed inspect is a failed read", service: on("app", "boom"), wantErr: "inspecting network boom (service web is attached to it)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, c := newNetEngine(t)
			f.networks, f.service, f.inspects = local, tc.service, inspects
			ws, err := c.Workloads(t.Context())
			if tc.wantErr != "" {
				if err == nil || ws != nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Workloads() = %v, %v; want no workloads and an error saying %q", ws, err, tc.wantErr)
				}
				return
			}
			if err != nil || len(ws) != 1 {
				t.Fatalf("Workloads() = %v, %v; want one workload", ws, err)
			}
			if ws[0].HostNetwork != tc.want {
				t.Errorf("Workloads()[0].HostNetwork = %v; want %v", ws[0].HostNetwork, tc.want)
			}
		})
	}
}

func TestImageConfig(t *testing.T) {
	c := serveFake(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch apiPath(w, r) {
		case "/_ping":
			_, _ = w.Write([]byte("OK"))
		case "/images/healthy:1/json":
			_, _ = w.Write([]byte(`{"Id":"sha256:1","Config":{"User":"app","Healthcheck":{"Test":["CMD","/probe","--token=s3cret"]}}}`))
		case "/images/plain:1/json":
			_, _ = w.Write([]byte(`{"Id":"sha256:2","Config":{}}`))
		case "/images/boom:1/json":
			http.Error(w, `{"message":"context deadline exceeded"}`, http.StatusInternalServerError)
		default:
			http.Error(w, `{"message":"No such image"}`, http.StatusNotFound)
		}
	}))
	for _, tc := range []struct {
		ref       string
		want      ImageConfig
		wantFound bool
		wantErr   bool
	}{
		{"healthy:1", ImageConfig{User: "app", Healthcheck: HealthSet}, true, false},
		{"plain:1", ImageConfig{}, true, false},
		{"absent:1", ImageConfig{}, false, false},
		{"boom:1", ImageConfig{}, false, true},
	} {
		got, found, err := c.ImageConfig(t.Context(), tc.ref)
		if got != tc.want || found != tc.wantFound || (err != nil) != tc.wantErr {
			t.Errorf("ImageConfig(%q) = %+v, %v, %v; want %+v, %v, error %v", tc.ref, got, found, err, tc.want, tc.wantFound, tc.wantErr)
		}
	}
}
