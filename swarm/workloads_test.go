package swarm

import (
	"testing"

	"github.com/moby/moby/api/types/mount"
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
